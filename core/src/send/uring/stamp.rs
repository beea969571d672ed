//! `--timestamps` on io_uring. SO_TIMESTAMPING stamps a send *call*: its TX flags are read
//! when the kernel runs the call, and OPT_ID names the call's last byte. A ring sends many
//! messages per call (a coalesced send, a bundle) and many calls at once (a linked chain), so
//! the loop shapes its sends around each sample (`stamps::is_sample`, the messages the
//! receiver stamps too; `RunSpec::stamp_every` makes `every` a multiple of the messages per
//! send, so that sends of a whole depth end on samples and are not cut short):
//! - the sample is the last message of its call: a coalesced send or a bundle is cut after it;
//! - in a linked chain only the first link may carry it: a later link stops before it, and the
//!   sample goes out in the next chain, which ends with it.
//!
//! The sample's call carries MSG_EOR, so that TCP appends nothing after it (a later sample in
//! the same packet would take over its stamps).
//!
//! Invariant: the socket is armed from the preparation of the sample's call until every byte
//! through the sample has been sent (its CQEs, and any tail resubmitted after a short send),
//! and nothing else of the flow is in flight meanwhile (a flow submits only when idle). The
//! stamp that names the sample's last byte is then the sample's; a short send's earlier call
//! is stamped too, under another key, and counted unmatched.

use crate::error::{Error, Result};
use crate::send::lifecycle::ZC_DRAIN_TIMEOUT;
use crate::stamps::TxStamper;
use crate::time::now_ns;
use crate::zerocopy::{read_errqueue, ErrEvent};
use sendpath_record::end_v1::TxStages;
use std::os::fd::RawFd;

/// Longest wait, for all flows of a ring together, for the last stamps (ACKs above all, which
/// come after the last send).
const STAMP_DRAIN_NS: u64 = 200_000_000;

/// One flow's stamping on a ring.
pub(super) struct FlowStamps {
    fd: RawFd,
    msg_len: u64,
    st: TxStamper,
    /// The sample whose call is armed: (seq, the clock when it was prepared, in the window).
    armed: Option<(u64, u64, bool)>,
}

impl FlowStamps {
    /// Starts on `fd` before the flow's first message (OPT_ID's origin is the next byte).
    pub(super) fn new(fd: RawFd, every: u64, msg_len: usize) -> Result<FlowStamps> {
        Ok(FlowStamps {
            fd,
            msg_len: msg_len as u64,
            st: TxStamper::new(fd, every).map_err(|e| Error::io("enable SO_TIMESTAMPING", e))?,
            armed: None,
        })
    }

    /// How many messages (at most `max`) the call at chain position `pos` may carry from
    /// `seq`: up to and including the next sample, or (`pos` > 0 of a linked chain) up to
    /// it only. 0: the chain ends here. A bundle (one call) may end with the sample anywhere.
    pub(super) fn limit(&self, pos: usize, seq: u64, max: usize, one_call: bool) -> usize {
        let before = (self.st.next_sample(seq) - seq).min(usize::MAX as u64 / 2) as usize;
        if pos == 0 || one_call {
            max.min(before + 1)
        } else {
            max.min(before)
        }
    }

    /// Messages `seq..seq + n` were prepared at `now`: if the last is a sample, arms the socket
    /// and returns true (nothing may follow it in this submission).
    pub(super) fn prepared(
        &mut self,
        seq: u64,
        n: usize,
        now: u64,
        in_window: bool,
    ) -> Result<bool> {
        if n == 0 || !self.st.wants(seq + n as u64 - 1) {
            return Ok(false);
        }
        let last = seq + n as u64 - 1;
        self.st
            .arm(self.fd)
            .map_err(|e| Error::io("arm SO_TIMESTAMPING", e))?;
        self.armed = Some((last, now, in_window));
        Ok(true)
    }

    /// Whether a sample's call is armed (it ends the submission in flight).
    pub(super) fn armed(&self) -> bool {
        self.armed.is_some()
    }

    /// Everything the flow had in flight is sent: an armed sample's call is over, so the
    /// socket is disarmed, the sample awaits its stamps, and those already queued are read.
    pub(super) fn all_sent(&mut self) -> Result<()> {
        let Some((seq, user, in_window)) = self.armed.take() else {
            return Ok(());
        };
        self.st
            .sampled(self.fd, seq, user, (seq + 1) * self.msg_len, in_window)
            .map_err(|e| Error::io("disarm SO_TIMESTAMPING", e))?;
        self.reap()
    }

    /// Folds every stamp in the socket's error queue (io_uring's zero-copy notifications are
    /// CQEs, so the queue holds stamps only).
    fn reap(&mut self) -> Result<()> {
        while let Some(e) = read_errqueue(self.fd)? {
            match e {
                ErrEvent::Stamp(s) => self.st.on_stamp(s),
                ErrEvent::Zerocopy(c) => {
                    return Err(Error::Kernel(format!(
                        "a MSG_ZEROCOPY completion [{}, {}] on an io_uring socket",
                        c.lo, c.hi
                    )))
                }
            }
        }
        Ok(())
    }
}

/// Each flow's stages (None where the flow was not stamped), once its last stamps are in or
/// [`STAMP_DRAIN_NS`] has passed (for all flows together).
pub(super) fn finish(mut flows: Vec<Option<FlowStamps>>) -> Vec<Option<TxStages>> {
    let until = now_ns() + STAMP_DRAIN_NS.min(ZC_DRAIN_TIMEOUT.as_nanos() as u64);
    loop {
        let mut waiting = false;
        for s in flows.iter_mut().flatten() {
            if s.reap().is_ok() {
                waiting |= s.st.waiting();
            }
        }
        if !waiting || now_ns() >= until {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    flows
        .into_iter()
        .map(|s| s.map(|s| s.st.finish()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamps(every: u64) -> FlowStamps {
        FlowStamps {
            fd: -1,
            msg_len: 100,
            st: TxStamper::for_test(every),
            armed: None,
        }
    }

    #[test]
    fn calls_are_cut_so_that_a_sample_ends_its_call() {
        // Samples: 7, 15, 23, ...
        let s = stamps(8);
        // Coalesced (one link of up to 32 messages) from seq 3: through sample 7, 5 messages.
        assert_eq!(s.limit(0, 3, 32, false), 5);
        // Sends of a whole run are never cut: from 8, 8 messages end on sample 15.
        assert_eq!(s.limit(0, 8, 8, false), 8);
        // From a sample: it alone.
        assert_eq!(s.limit(0, 15, 32, false), 1);
        // A later link of a chain stops before the sample, and ends the chain on it.
        assert_eq!(s.limit(3, 5, 1, false), 1);
        assert_eq!(s.limit(4, 7, 1, false), 0);
        // A bundle (one call) ends with it wherever it falls.
        assert_eq!(s.limit(4, 7, 1, true), 1);
        // Far from a sample the strategy's own limit holds.
        assert_eq!(s.limit(0, 8, 4, false), 4);
    }
}
