//! The linked chain: the `link` ordering (up to `depth` SQEs of one message each, linked with
//! `IOSQE_IO_LINK` and `MSG_WAITALL`) and `coalesce` (one SQE carrying the batch's messages
//! back to back: a chain of one link). One chain in flight per flow; its unfinished tail is
//! resubmitted, in order, before anything new.

use super::carrier::{Carrier, Moment, Sq};
use super::completion::{Op, Tag};
use super::state::{retryable, FlowState};
use crate::error::Error;
use crate::sock;
use io_uring::{squeue, types};
use std::io;
use std::os::fd::RawFd;

/// One send of the flow's current chain.
#[derive(Clone, Copy, Debug)]
pub(super) struct Link {
    pub(super) buf: u16,
    /// Bytes of the buffer (its messages x the message size).
    pub(super) len: u32,
    pub(super) done: u32,
    pub(super) res: Option<i32>,
}

/// A flow's chain.
pub(super) struct Chain {
    /// Links per chain, and messages per link (`link`: depth x 1; `coalesce`: 1 x batch).
    links: usize,
    per_link: usize,
    msg_len: u32,
    /// The chain in flight (or, after a short send, its unfinished tail, to resubmit).
    pub(super) chain: Vec<Link>,
    /// SQEs of the chain not yet completed.
    pending: usize,
    /// The chain's tail must be resubmitted once `pending` reaches 0.
    pub(super) resubmit: bool,
}

impl Chain {
    /// Chains of `links` links of up to `per_link` messages of `msg_len` bytes.
    pub(super) fn new(links: usize, per_link: usize, msg_len: u32) -> Chain {
        Chain {
            links,
            per_link,
            msg_len,
            chain: Vec::with_capacity(links),
            pending: 0,
            resubmit: false,
        }
    }

    /// Takes the flow's next messages into a new chain (one link each, or up to `per_link`
    /// in one), stopping early at a sample (it ends a chain of its own, stamp.rs) or when no
    /// buffer is free.
    fn fill(&mut self, f: &mut FlowState, at: &Moment) {
        let in_window = f.taking(at.now, at.window);
        self.chain.clear();
        for pos in 0..self.links {
            let max = f
                .stamps
                .as_ref()
                .map_or(self.per_link, |s| s.limit(pos, f.seq, self.per_link, false));
            if max == 0 {
                // A sample follows: it ends a chain of its own (stamp.rs).
                break;
            }
            let Some((buf, n)) = f.strategy.prepare(pos, f.seq, at.ts, max) else {
                break;
            };
            self.chain.push(Link {
                buf,
                len: n as u32 * self.msg_len,
                done: 0,
                res: None,
            });
            let first = f.seq;
            f.seq += n as u64;
            if f.took(first, n, at.now, in_window) {
                break;
            }
        }
    }

    /// Every CQE of the chain is in: keeps the unfinished tail (short, interrupted or
    /// cancelled sends, in order) for resubmission, or clears the chain.
    pub(super) fn settle(&mut self, f: &mut FlowState) {
        let mut keep_from = None;
        let mut progress = false;
        for (i, l) in self.chain.iter_mut().enumerate() {
            let res = l.res.take().unwrap_or(-libc::ECANCELED);
            let left = l.len - l.done;
            if keep_from.is_some() {
                if res >= 0 {
                    // A link ran after a broken one: the stream may be reordered.
                    f.fail(Error::Integrity(format!(
                        "io_uring send ran after a broken link on flow {} (res {res})",
                        f.flow
                    )));
                }
                continue;
            }
            match res {
                r if r >= 0 && r as u32 >= left => progress = true,
                r if r > 0 => {
                    l.done += r as u32;
                    progress = true;
                    keep_from = Some(i);
                }
                0 => {
                    f.fail(Error::PeerClosed(format!(
                        "io_uring send on flow {} made no progress (0 bytes)",
                        f.flow
                    )));
                    keep_from = Some(i);
                }
                r if retryable(r) => keep_from = Some(i),
                r if r == -libc::EINVAL && l.done == 0 => {
                    f.fail(Error::Unsupported(format!(
                        "the kernel rejected the io_uring send (EINVAL); SEND_ZC with \
                         IORING_SEND_ZC_REPORT_USAGE needs Linux >= 6.2 (flow {})",
                        f.flow
                    )));
                    keep_from = Some(i);
                }
                r => {
                    let e = io::Error::from_raw_os_error(-r);
                    f.fail(sock::classify(e, "io_uring send"));
                    keep_from = Some(i);
                }
            }
        }
        match keep_from {
            // Every chain the loop resubmits counts as a retried call.
            Some(k) if f.error.is_none() => {
                self.chain.drain(..k);
                self.resubmit = f.retry(progress, true, "io_uring sends");
                if !self.resubmit {
                    self.chain.clear();
                }
            }
            _ => {
                self.chain.clear();
                f.stalls = 0;
            }
        }
    }
}

impl Carrier for Chain {
    fn pending(&self) -> usize {
        self.pending
    }

    fn drained(&self) -> bool {
        self.chain.is_empty()
    }

    fn sqes(&self) -> usize {
        self.links
    }

    fn submit(&mut self, f: &mut FlowState, li: usize, at: &Moment, sq: &mut Sq<'_>) {
        // The unfinished tail of the last chain goes first, as a chain of its own: `resubmit`
        // holds until it is in the SQ, so nothing new replaces it.
        if !self.resubmit && !f.stopped && sq.capacity() - sq.len() >= self.links {
            self.fill(f, at);
        }
        if self.chain.is_empty() || self.pending > 0 || sq.capacity() - sq.len() < self.chain.len()
        {
            return;
        }
        let last = self.chain.len() - 1;
        // An armed chain ends with its sample: its call gets MSG_EOR.
        let armed = f.sample_armed();
        for (pos, l) in self.chain.iter().enumerate() {
            let eor = armed && pos == last;
            let mut e = f
                .strategy
                .sqe(types::Fixed(li as u32), l.buf, l.done, at.now, eor)
                .user_data(Tag::link(li, pos, l.buf).encode());
            if pos < last {
                e = e.flags(squeue::Flags::IO_LINK);
            }
            // SAFETY: every buffer the entry names is owned by the flow's strategy and is not
            // handed out again before this send's CQE (and, for zero-copy, its notification)
            // arrives.
            unsafe { sq.push(&e) }.expect("room checked above");
        }
        self.pending = self.chain.len();
        self.resubmit = false;
        f.submitted(self.chain.len(), at.now, at.window);
    }

    fn on_sent(&mut self, f: &mut FlowState, op: Op, res: i32, _more: bool, _ring_fd: RawFd) {
        let Op::Link(pos) = op else {
            return f.fail(Error::Internal(format!(
                "a send-bundle CQE on flow {}, which sends chains",
                f.flow
            )));
        };
        if let Some(l) = self.chain.get_mut(usize::from(pos)) {
            l.res = Some(res);
        }
        self.pending = self.pending.saturating_sub(1);
        if self.pending == 0 {
            self.settle(f);
            if !self.resubmit && self.drained() {
                f.all_sent();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::uring::modes::a1::A1UringSend;

    fn chain(results: &[i32]) -> (Chain, FlowState) {
        let f = FlowState::new(0, Box::new(A1UringSend::new(64, results.len(), 1, false)));
        let mut c = Chain::new(results.len(), 1, 64);
        c.chain = results
            .iter()
            .enumerate()
            .map(|(i, r)| Link {
                buf: i as u16,
                len: 64,
                done: 0,
                res: Some(*r),
            })
            .collect();
        (c, f)
    }

    #[test]
    fn short_send_keeps_the_unfinished_tail_in_order() {
        // Link 1 sent 10 of 64 bytes and broke the chain; link 2 was cancelled.
        let (mut c, mut f) = chain(&[64, 10, -libc::ECANCELED]);
        c.settle(&mut f);
        assert!(c.resubmit && f.error.is_none());
        let tail: Vec<(u16, u32)> = c.chain.iter().map(|l| (l.buf, l.done)).collect();
        assert_eq!(
            tail,
            vec![(1, 10), (2, 0)],
            "resume link 1 at byte 10, then link 2"
        );
        // The resubmitted tail completes: the chain is cleared.
        for l in &mut c.chain {
            l.res = Some(64 - l.done as i32);
        }
        c.resubmit = false;
        c.settle(&mut f);
        assert!(c.chain.is_empty() && !c.resubmit && f.error.is_none());
        assert_eq!(f.retries, 1);
    }

    #[test]
    fn a_send_after_a_broken_link_is_an_integrity_error() {
        let (mut c, mut f) = chain(&[10, 64]);
        c.settle(&mut f);
        assert!(
            matches!(f.error, Some(Error::Integrity(_))),
            "{:?}",
            f.error
        );
        assert!(f.stopped && c.chain.is_empty());
    }

    #[test]
    fn errors_end_the_flow_and_interruptions_are_retried() {
        let (mut c, mut f) = chain(&[-libc::ECONNRESET, -libc::ECANCELED]);
        c.settle(&mut f);
        assert!(
            matches!(f.error, Some(Error::PeerClosed(_))),
            "{:?}",
            f.error
        );
        let (mut c, mut f) = chain(&[-libc::EINTR]);
        c.settle(&mut f);
        assert!(c.resubmit && f.error.is_none() && c.chain.len() == 1);
        let (mut c, mut f) = chain(&[0]);
        c.settle(&mut f);
        assert!(f.error.is_some(), "0 bytes is no progress");
    }

    #[test]
    fn a_short_coalesced_send_resumes_inside_its_run() {
        // One link carrying 4 messages of 64 B sent 100 bytes: the rest goes out again from
        // byte 100 of the same run.
        let (mut c, mut f) = chain(&[100]);
        c.chain[0].len = 256;
        c.settle(&mut f);
        assert!(c.resubmit && f.error.is_none());
        assert_eq!(
            (c.chain[0].buf, c.chain[0].done, c.chain[0].len),
            (0, 100, 256)
        );
        c.chain[0].res = Some(156);
        c.resubmit = false;
        c.settle(&mut f);
        assert!(c.chain.is_empty() && f.error.is_none());
    }
}
