//! A flow on a ring: what it has in flight (a linked chain, a send bundle, or a coalesced
//! zero-copy send), how a short or interrupted send resumes in order, and when it is done.

use super::bundle::{drop_front, Bundle};
use super::completion::{Op, Tag};
use super::end::{EndRecv, EndRequest};
use super::strategy::UringSend;
use crate::error::{Error, Result};
use crate::sock::{self, IO_TIMEOUT};
use crate::spec::UringOrdering;
use crate::uring_sys::bufring::buf_ring_head;
use crate::window::Window;
use crate::zerocopy_stats::ZeroCopyStats;
use io_uring::{opcode, squeue, types};
use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

/// Resubmissions of a chain in a row that made no progress before the flow gives up.
pub(super) const MAX_STALLS: u32 = 1000;
/// One send of the flow's current chain.
#[derive(Clone, Copy, Debug)]
pub(super) struct Link {
    pub(super) buf: u16,
    /// Bytes of the buffer (its messages x the message size).
    pub(super) len: u32,
    pub(super) done: u32,
    pub(super) res: Option<i32>,
}

/// A flow on a ring.
pub(super) struct Flow {
    pub(super) flow: u32,
    pub(super) strategy: Box<dyn UringSend>,
    /// The chain in flight (or, after a short send, its unfinished tail, to resubmit).
    pub(super) chain: Vec<Link>,
    /// SQEs of the chain not yet completed.
    pub(super) pending: usize,
    /// The chain's tail must be resubmitted once `pending` reaches 0.
    pub(super) resubmit: bool,
    pub(super) seq: u64,
    pub(super) first_in_window: Option<u64>,
    /// `seq` when the window ended (the flow sends on until the receiver asks for the end).
    pub(super) end_of_window: Option<u64>,
    /// The receive of the receiver's end request.
    pub(super) end: EndRequest,
    /// No new messages: the receiver asked for the end, or the flow failed.
    pub(super) stopped: bool,
    /// When the last send completed (start of the bounded notification drain).
    pub(super) drain_since: Option<Instant>,
    pub(super) stalls: u32,
    pub(super) retries: u64,
    /// Send SQEs submitted inside the measured window (the record's `calls`).
    pub(super) calls_in_window: u64,
    pub(super) error: Option<Error>,
    /// Present when the flow sends bundles instead of chains.
    pub(super) bundle: Option<Bundle>,
    /// Present with `--timestamps` (from the flow's first message on).
    pub(super) stamps: Option<super::stamp::FlowStamps>,
}

impl Flow {
    /// Flow `flow` with `strategy`, nothing in flight yet; an error if `ordering` asks for
    /// bundles of a strategy without a bundle form.
    pub(super) fn new(
        flow: u32,
        strategy: Box<dyn UringSend>,
        depth: usize,
        ordering: UringOrdering,
    ) -> Result<Flow> {
        if ordering == UringOrdering::Bundle && strategy.bundle().is_none() {
            return Err(Error::InvalidSpec(
                "this mode has no send-bundle form: use --uring-ordering link".into(),
            ));
        }
        Ok(Flow {
            flow,
            strategy,
            chain: Vec::with_capacity(depth),
            pending: 0,
            resubmit: false,
            seq: 0,
            first_in_window: None,
            end_of_window: None,
            end: EndRequest::new(),
            stopped: false,
            drain_since: None,
            stalls: 0,
            retries: 0,
            calls_in_window: 0,
            error: None,
            bundle: (ordering == UringOrdering::Bundle).then(|| Bundle::new(depth)),
            stamps: None,
        })
    }

    pub(super) fn idle(&self) -> bool {
        self.pending == 0
    }

    /// Nothing left to send: no chain, no bundle segments.
    pub(super) fn drained(&self) -> bool {
        self.chain.is_empty() && self.bundle.as_ref().is_none_or(Bundle::is_empty)
    }

    pub(super) fn finished(&self) -> bool {
        self.pending == 0 && self.drained() && self.stopped && self.owed() == 0
    }

    /// Zero-copy notifications the kernel still owes this flow.
    pub(super) fn owed(&self) -> u64 {
        self.strategy.zero_copy_ref().map_or(0, |z| z.owed())
    }

    /// The flow's zero-copy accounting, if it sends zero-copy.
    pub(super) fn zerocopy(&self) -> Option<ZeroCopyStats> {
        self.strategy.zero_copy_ref().map(|z| z.stats())
    }

    /// Every CQE of the bundle (and the loose send before it) is in: keeps what is unsent for
    /// resubmission, in order, or ends the flow on an error. `ring_fd` reads the kernel's
    /// buffer-ring head after a short bundle.
    pub(super) fn settle_bundle(&mut self, ring_fd: RawFd) {
        let Some(b) = self.bundle.as_mut() else {
            return;
        };
        if self.error.is_some() {
            // Failed while the bundle was in flight (e.g. its byte accounting broke): send
            // nothing more.
            b.clear();
            b.loose_res = None;
            b.bundle_res = None;
            return;
        }
        let mut progress = b.bundle_sent > 0;
        // A call that failed (rather than one the kernel ended early): counted in send_errors.
        let failed_call = b.loose_res.is_some_and(|r| r < 0) || b.bundle_res.is_some_and(|r| r < 0);
        let mut error = None;
        let retryable = |r: i32| r == -libc::ECANCELED || r == -libc::EINTR || r == -libc::EAGAIN;
        if let Some(r) = b.loose_res.take() {
            match r {
                r if r > 0 => {
                    progress = true;
                    if !drop_front(&mut b.loose, r as u32) {
                        error = Some(Error::Kernel(format!(
                            "io_uring sendmsg on flow {} reported more bytes than it was given",
                            self.flow
                        )));
                    }
                }
                0 => {
                    error = Some(Error::PeerClosed(format!(
                        "io_uring send on flow {} made no progress (0 bytes)",
                        self.flow
                    )))
                }
                r if retryable(r) => {}
                r => {
                    error = Some(sock::classify(
                        io::Error::from_raw_os_error(-r),
                        "io_uring send",
                    ))
                }
            }
        }
        if let Some(r) = b.bundle_res.take() {
            match r {
                0 if b.bundle_sent == 0 => {
                    error.get_or_insert(Error::PeerClosed(format!(
                        "io_uring send bundle on flow {} made no progress (0 bytes)",
                        self.flow
                    )));
                }
                r if r >= 0 || retryable(r) => {}
                r if r == -libc::EINVAL => {
                    error.get_or_insert(Error::Unsupported(format!(
                        "the kernel rejected the io_uring send bundle (EINVAL; bundles need Linux >= 6.10): use --uring-ordering link (flow {})",
                        self.flow
                    )));
                }
                r => {
                    error.get_or_insert(sock::classify(
                        io::Error::from_raw_os_error(-r),
                        "io_uring send bundle",
                    ));
                }
            }
        }
        if error.is_none() {
            if b.queued.is_empty() {
                // Every entry was sent: the kernel's head is our tail.
                b.head = b.ring.tail();
            } else {
                match buf_ring_head(ring_fd, b.bgid) {
                    Ok(head) => {
                        if let Err(e) = b.resync(head) {
                            error = Some(e);
                        }
                    }
                    Err(e) => error = Some(Error::io(
                        "read a send buffer ring's head (IORING_REGISTER_PBUF_STATUS, Linux 6.8)",
                        e,
                    )),
                }
            }
        }
        b.popped = 0;
        b.bundle_sent = 0;
        if let Some(e) = error {
            b.clear();
            self.fail(e);
            return;
        }
        if b.is_empty() {
            self.stalls = 0;
            return;
        }
        self.retries += u64::from(failed_call);
        self.stalls = if progress { 0 } else { self.stalls + 1 };
        if self.stalls > MAX_STALLS {
            b.clear();
            self.fail(Error::Timeout(format!(
                "io_uring send bundles on flow {} were interrupted {MAX_STALLS} times in a row without progress",
                self.flow
            )));
        } else {
            self.resubmit = true;
        }
    }

    /// Fills an idle bundle flow's ring with its next `depth` messages (unless unsent bytes
    /// are left) and submits the loose bytes and the bundle (nothing while the SQ is full).
    pub(super) fn submit_bundle(
        &mut self,
        li: usize,
        depth: usize,
        now: u64,
        window: &Window,
        ts: u64,
        sq: &mut squeue::SubmissionQueue<'_>,
    ) {
        if sq.capacity() - sq.len() < 2 {
            return;
        }
        let Some(b) = self.bundle.as_mut() else {
            return;
        };
        if self.resubmit {
            self.resubmit = false;
        } else if !self.stopped && b.is_empty() {
            if self.first_in_window.is_none() && now >= window.start && now < window.end {
                self.first_in_window = Some(self.seq);
            }
            let in_window = now >= window.start && now < window.end;
            for pos in 0..depth {
                let Some((buf, _)) = self.strategy.prepare(pos, self.seq, ts, 1) else {
                    break;
                };
                // Flow::new made a bundle flow only of a strategy with a bundle form.
                let Some(bundled) = self.strategy.bundle() else {
                    break;
                };
                let [head, rest] = bundled.segments(buf);
                b.push(head);
                b.push(rest);
                self.seq += 1;
                // A sample ends the bundle (see stamp.rs).
                match self
                    .stamps
                    .as_mut()
                    .map(|s| s.prepared(self.seq - 1, 1, now, in_window))
                {
                    Some(Ok(true)) => break,
                    Some(Err(e)) => {
                        self.error.get_or_insert(e);
                        self.stopped = true;
                        break;
                    }
                    _ => {}
                }
            }
        }
        if b.is_empty() {
            return;
        }
        b.ring.publish();
        let fd = types::Fixed(li as u32);
        let armed = self.stamps.as_ref().is_some_and(|s| s.armed());
        if !b.loose.is_empty() {
            let n = b.loose.len().min(b.loose_iov.len());
            for (iov, &(p, len)) in b.loose_iov.iter_mut().zip(b.loose.iter()) {
                *iov = libc::iovec {
                    iov_base: p as *mut libc::c_void,
                    iov_len: len as usize,
                };
            }
            b.loose_msg.msg_iov = b.loose_iov.as_mut_ptr();
            b.loose_msg.msg_iovlen = n as _;
            // The bundle may follow only if this send covers every loose byte.
            let then_bundle = n == b.loose.len() && !b.queued.is_empty();
            // The last call of an armed submission ends with its sample: MSG_EOR.
            let eor = if armed && !then_bundle {
                libc::MSG_EOR
            } else {
                0
            };
            let mut e = opcode::SendMsg::new(fd, &*b.loose_msg)
                .flags((libc::MSG_WAITALL | eor) as u32)
                .build()
                .user_data(Tag::of(li, Op::Loose).encode());
            if then_bundle {
                e = e.flags(squeue::Flags::IO_LINK);
            }
            // SAFETY: the iovecs, the msghdr and the bytes they name stay alive and unchanged
            // until this send's CQE (the flow submits nothing else before it).
            unsafe { sq.push(&e) }.expect("room checked above");
            self.pending += 1;
            self.calls_in_window += u64::from(window.contains(now));
            if !then_bundle {
                return;
            }
        }
        if !b.queued.is_empty() {
            let e = opcode::SendBundle::new(fd, b.bgid)
                .flags(if armed { libc::MSG_EOR } else { 0 })
                .build()
                .user_data(Tag::of(li, Op::Bundle).encode());
            // SAFETY: every segment in the buffer ring stays alive and unchanged until the
            // flow is drained.
            unsafe { sq.push(&e) }.expect("room checked above");
            self.pending += 1;
            self.calls_in_window += u64::from(window.contains(now));
        }
    }

    /// The window is over: remembers where it ended, and stops once the receiver asked for the
    /// end frame (or fails if it has not asked by `end_deadline`).
    pub(super) fn past_window(&mut self, now: u64, end_deadline: u64) {
        self.end_of_window.get_or_insert(self.seq);
        if self.end.state() == EndRecv::Asked {
            self.stopped = true;
        } else if now >= end_deadline && !self.stopped {
            self.fail(Error::Timeout(format!(
                "the receiver of flow {} did not ask for the end frame within {} s of the window's end",
                self.flow,
                IO_TIMEOUT.as_secs()
            )));
        }
    }

    /// The end request's receive completed with `res`.
    pub(super) fn on_end_request(&mut self, res: i32) {
        if let Err(e) = self.end.on_recv(res, self.flow) {
            self.fail(e);
        }
    }

    /// Position `pos` of the chain completed with `res`; the last CQE of the chain settles it.
    pub(super) fn on_link_sent(&mut self, pos: usize, res: i32) {
        if let Some(l) = self.chain.get_mut(pos) {
            l.res = Some(res);
        }
        self.pending = self.pending.saturating_sub(1);
        if self.pending == 0 {
            self.settle();
            self.after_settle();
        }
    }

    /// A CQE of the loose send (`loose`) or of the bundle completed with `res`, `more`
    /// following (a bundle going on); the last CQE of the submission settles it.
    pub(super) fn on_bundle_sent(&mut self, loose: bool, res: i32, more: bool, ring_fd: RawFd) {
        let Some(b) = self.bundle.as_mut() else {
            return self.fail(Error::Internal(format!(
                "a send-bundle CQE on flow {}, which sends chains",
                self.flow
            )));
        };
        if let Err(e) = b.on_sent(loose, res, more) {
            self.fail(e);
        }
        if more && !loose {
            return;
        }
        self.pending = self.pending.saturating_sub(1);
        if self.pending == 0 {
            self.settle_bundle(ring_fd);
            self.after_settle();
        }
    }

    pub(super) fn fail(&mut self, e: Error) {
        self.stopped = true;
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// After the flow's CQEs settled: if nothing is left to send, an armed sample's call is
    /// over (see stamp.rs).
    pub(super) fn after_settle(&mut self) {
        if self.resubmit || !self.drained() {
            return;
        }
        if let Some(s) = self.stamps.as_mut() {
            if let Err(e) = s.all_sent() {
                self.fail(e);
            }
        }
    }

    /// Every CQE of the chain is in: keeps the unfinished tail (short, interrupted or
    /// cancelled sends, in order) for resubmission, or clears the chain.
    pub(super) fn settle(&mut self) {
        let mut keep_from = None;
        let mut progress = false;
        for (i, l) in self.chain.iter_mut().enumerate() {
            let res = l.res.take().unwrap_or(-libc::ECANCELED);
            let left = l.len - l.done;
            if keep_from.is_some() {
                if res >= 0 {
                    // A link ran after a broken one: the stream may be reordered.
                    self.error.get_or_insert(Error::Integrity(format!(
                        "io_uring send ran after a broken link on flow {} (res {res})",
                        self.flow
                    )));
                    self.stopped = true;
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
                    self.error.get_or_insert(Error::PeerClosed(format!(
                        "io_uring send on flow {} made no progress (0 bytes)",
                        self.flow
                    )));
                    self.stopped = true;
                    keep_from = Some(i);
                }
                r if r == -libc::ECANCELED || r == -libc::EINTR || r == -libc::EAGAIN => {
                    keep_from = Some(i)
                }
                r if r == -libc::EINVAL && l.done == 0 => {
                    self.error.get_or_insert(Error::Unsupported(format!(
                        "the kernel rejected the io_uring send (EINVAL); SEND_ZC with \
                         IORING_SEND_ZC_REPORT_USAGE needs Linux >= 6.2 (flow {})",
                        self.flow
                    )));
                    self.stopped = true;
                    keep_from = Some(i);
                }
                r => {
                    let e = io::Error::from_raw_os_error(-r);
                    self.error.get_or_insert(sock::classify(e, "io_uring send"));
                    self.stopped = true;
                    keep_from = Some(i);
                }
            }
        }
        match keep_from {
            Some(k) if self.error.is_none() => {
                self.chain.drain(..k);
                self.retries += 1;
                self.stalls = if progress { 0 } else { self.stalls + 1 };
                if self.stalls > MAX_STALLS {
                    self.fail(Error::Timeout(format!(
                        "io_uring sends on flow {} were interrupted {MAX_STALLS} times in a row without progress",
                        self.flow
                    )));
                    self.chain.clear();
                } else {
                    self.resubmit = true;
                }
            }
            _ => {
                self.chain.clear();
                self.stalls = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::uring::modes::a1::A1UringSend;

    fn flow(results: &[i32]) -> Flow {
        let mut f = Flow::new(
            0,
            Box::new(A1UringSend::new(64, results.len(), 1, false)),
            results.len(),
            UringOrdering::Link,
        )
        .unwrap();
        f.chain = results
            .iter()
            .enumerate()
            .map(|(i, r)| Link {
                buf: i as u16,
                len: 64,
                done: 0,
                res: Some(*r),
            })
            .collect();
        f
    }

    #[test]
    fn short_send_keeps_the_unfinished_tail_in_order() {
        // Link 1 sent 10 of 64 bytes and broke the chain; link 2 was cancelled.
        let mut f = flow(&[64, 10, -libc::ECANCELED]);
        f.settle();
        assert!(f.resubmit && f.error.is_none());
        let tail: Vec<(u16, u32)> = f.chain.iter().map(|l| (l.buf, l.done)).collect();
        assert_eq!(
            tail,
            vec![(1, 10), (2, 0)],
            "resume link 1 at byte 10, then link 2"
        );
        // The resubmitted tail completes: the chain is cleared.
        for l in &mut f.chain {
            l.res = Some(64 - l.done as i32);
        }
        f.resubmit = false;
        f.settle();
        assert!(f.chain.is_empty() && !f.resubmit && f.error.is_none());
        assert_eq!(f.retries, 1);
    }

    #[test]
    fn a_send_after_a_broken_link_is_an_integrity_error() {
        let mut f = flow(&[10, 64]);
        f.settle();
        assert!(
            matches!(f.error, Some(Error::Integrity(_))),
            "{:?}",
            f.error
        );
        assert!(f.stopped && f.chain.is_empty());
    }

    #[test]
    fn errors_end_the_flow_and_interruptions_are_retried() {
        let mut f = flow(&[-libc::ECONNRESET, -libc::ECANCELED]);
        f.settle();
        assert!(
            matches!(f.error, Some(Error::PeerClosed(_))),
            "{:?}",
            f.error
        );
        let mut f = flow(&[-libc::EINTR]);
        f.settle();
        assert!(f.resubmit && f.error.is_none() && f.chain.len() == 1);
        let mut f = flow(&[0]);
        f.settle();
        assert!(f.error.is_some(), "0 bytes is no progress");
    }

    #[test]
    fn a_short_coalesced_send_resumes_inside_its_run() {
        // One link carrying 4 messages of 64 B sent 100 bytes: the rest goes out again from
        // byte 100 of the same run.
        let mut f = flow(&[100]);
        f.chain[0].len = 256;
        f.settle();
        assert!(f.resubmit && f.error.is_none());
        assert_eq!(
            (f.chain[0].buf, f.chain[0].done, f.chain[0].len),
            (0, 100, 256)
        );
        f.chain[0].res = Some(156);
        f.resubmit = false;
        f.settle();
        assert!(f.chain.is_empty() && f.error.is_none());
    }

    #[test]
    fn bundles_of_a_strategy_without_a_bundle_form_are_refused() {
        let zc = crate::send::uring::modes::a3::A3UringSendZc::new(64, 4, false, false);
        let e = Flow::new(0, Box::new(zc), 4, UringOrdering::Bundle)
            .err()
            .unwrap();
        assert!(e.to_string().contains("no send-bundle form"), "{e}");
    }
}
