//! What a send path is on the blocking engine: one type per mode implementing
//! [`BlockingSend`], one blocking send call (or more, for a short send) per message.

use crate::error::Result;
use crate::zerocopy::stats::ZeroCopyStats;
use std::os::fd::RawFd;

/// One send strategy of the blocking engine.
pub trait BlockingSend: Send {
    /// Sends message `seq` stamped `send_ts_ns`; when it returns, every byte of the message has
    /// been handed to the kernel (short sends are resumed, never interleaved).
    fn send(&mut self, fd: RawFd, seq: u64, send_ts_ns: u64) -> Result<()>;

    /// Ends the flow: waits (bounded) until the kernel has released every buffer it still
    /// holds, and returns the zero-copy accounting, if the strategy does zero-copy.
    fn finish(&mut self, _fd: RawFd) -> Result<Option<ZeroCopyStats>> {
        Ok(None)
    }
}
