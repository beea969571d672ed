//! What a send path is on the blocking engine: one type per mode implementing
//! [`BlockingSend`], one blocking send call (or more, for a short send) per message.

use crate::error::Result;
use sendpath_record::end_v1::ZeroCopyStats;
use std::os::fd::RawFd;

/// What one [`BlockingSend::send`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Messages handed to the kernel (at least 1, at most the `n` asked for).
    pub messages: usize,
    /// Send calls that carried them (one per batch, more after a short send).
    pub calls: u64,
}

/// One send strategy of the blocking engine.
pub trait BlockingSend: Send {
    /// Sends messages `seq..seq + n` (`n` at most the batch the strategy was built for; 1
    /// for rr and rate) stamped `send_ts_ns`, in one send call (more only to resume a short
    /// one, never interleaved); when it returns, every byte of the messages it reports has
    /// been handed to the kernel. A zero-copy strategy may send fewer than `n` (a batch of
    /// slots does not wrap around its pool).
    fn send(&mut self, fd: RawFd, seq: u64, n: usize, send_ts_ns: u64) -> Result<Sent>;

    /// Sends the next messages with `MSG_EOR` (`--timestamps`: a sampled message's call, so
    /// that TCP appends no later data to its last packet; a later sample's data in the same
    /// packet would take over its stamps). Strategies that cannot ignore it.
    fn set_eor(&mut self, _eor: bool) {}

    /// Moves the TX timestamps waiting in `fd`'s error queue into `out` (`--timestamps`).
    /// The error queue has one reader: a strategy that reads it for its own reasons (A3's
    /// zero-copy completions) keeps the timestamps it meets and hands them over here.
    fn reap_stamps(&mut self, fd: RawFd, out: &mut Vec<crate::stamps::Stamp>) -> Result<()> {
        while let Some(e) = crate::zerocopy::read_errqueue(fd)? {
            match e {
                crate::zerocopy::ErrEvent::Stamp(s) => out.push(s),
                crate::zerocopy::ErrEvent::Zerocopy(c) => {
                    return Err(crate::error::Error::Kernel(format!(
                        "a zero-copy completion [{}, {}] for a strategy that never sent zero-copy",
                        c.lo, c.hi
                    )))
                }
            }
        }
        Ok(())
    }

    /// Ends the flow: waits (bounded) until the kernel has released every buffer it still
    /// holds, and returns the zero-copy accounting, if the strategy does zero-copy.
    fn finish(&mut self, _fd: RawFd) -> Result<Option<ZeroCopyStats>> {
        Ok(None)
    }
}
