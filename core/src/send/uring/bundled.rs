//! The `bundle` ordering: one `Send` bundle in flight per flow over its provided-buffer ring
//! (the messages' segments are ring entries, [`Bundle`]), and the loose bytes of an entry a
//! short bundle stopped inside as one plain `SendMsg` linked before the next bundle.

use super::bundle::{drop_front, Bundle};
use super::carrier::{Carrier, Moment, Sq};
use super::completion::{Op, Tag};
use super::state::{retryable, FlowState};
use crate::error::{Error, Result};
use crate::sock;
use crate::uring_sys::bufring::buf_ring_head;
use io_uring::{opcode, squeue, types, IoUring};
use std::io;
use std::os::fd::RawFd;

/// A flow's send bundles.
pub(super) struct Bundled {
    b: Bundle,
    /// Messages per bundle.
    depth: usize,
    /// SQEs (the loose send, the bundle) not yet completed.
    pending: usize,
    /// What is unsent must go out before anything new, once `pending` reaches 0.
    resubmit: bool,
}

impl Bundled {
    /// Bundles of up to `depth` messages.
    pub(super) fn new(depth: usize) -> Bundled {
        Bundled {
            b: Bundle::new(depth),
            depth,
            pending: 0,
            resubmit: false,
        }
    }

    /// Puts the flow's next `depth` messages into the ring, stopping early at a sample (it
    /// ends the bundle, see stamp.rs) or when no buffer is free.
    fn fill(&mut self, f: &mut FlowState, at: &Moment) {
        let in_window = f.taking(at.now, at.window);
        for pos in 0..self.depth {
            let Some((buf, _)) = f.strategy.prepare(pos, f.seq, at.ts, 1) else {
                break;
            };
            // carrier_for made bundles only for a strategy with a bundle form.
            let Some(bundled) = f.strategy.bundle() else {
                break;
            };
            let [head, rest] = bundled.segments(buf);
            self.b.push(head);
            self.b.push(rest);
            f.seq += 1;
            if f.took(f.seq - 1, 1, at.now, in_window) {
                break;
            }
        }
    }

    /// Every CQE of the bundle (and the loose send before it) is in: keeps what is unsent for
    /// resubmission, in order, or ends the flow on an error. `ring_fd` reads the kernel's
    /// buffer-ring head after a short bundle.
    fn settle(&mut self, f: &mut FlowState, ring_fd: RawFd) {
        let b = &mut self.b;
        if f.error.is_some() {
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
        if let Some(r) = b.loose_res.take() {
            match r {
                r if r > 0 => {
                    progress = true;
                    if !drop_front(&mut b.loose, r as u32) {
                        error = Some(Error::Kernel(format!(
                            "io_uring sendmsg on flow {} reported more bytes than it was given",
                            f.flow
                        )));
                    }
                }
                0 => {
                    error = Some(Error::PeerClosed(format!(
                        "io_uring send on flow {} made no progress (0 bytes)",
                        f.flow
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
                        f.flow
                    )));
                }
                r if r >= 0 || retryable(r) => {}
                r if r == -libc::EINVAL => {
                    error.get_or_insert(Error::Unsupported(format!(
                        "the kernel rejected the io_uring send bundle (EINVAL; bundles need Linux >= 6.10): use --uring-ordering link (flow {})",
                        f.flow
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
            return f.fail(e);
        }
        if b.is_empty() {
            f.stalls = 0;
            return;
        }
        self.resubmit = f.retry(progress, failed_call, "io_uring send bundles");
        if !self.resubmit {
            b.clear();
        }
    }
}

impl Carrier for Bundled {
    fn pending(&self) -> usize {
        self.pending
    }

    fn drained(&self) -> bool {
        self.b.is_empty()
    }

    fn sqes(&self) -> usize {
        2
    }

    /// Fills an idle flow's ring with its next `depth` messages (unless unsent bytes are
    /// left) and submits the loose bytes and the bundle (nothing while the SQ is full).
    fn submit(&mut self, f: &mut FlowState, li: usize, at: &Moment, sq: &mut Sq<'_>) {
        if sq.capacity() - sq.len() < 2 {
            return;
        }
        if self.resubmit {
            self.resubmit = false;
        } else if !f.stopped && self.b.is_empty() {
            self.fill(f, at);
        }
        let b = &mut self.b;
        if b.is_empty() {
            return;
        }
        b.ring.publish();
        let fd = types::Fixed(li as u32);
        let armed = f.sample_armed();
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
            f.submitted(1, at.now, at.window);
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
            f.submitted(1, at.now, at.window);
        }
    }

    fn on_sent(&mut self, f: &mut FlowState, op: Op, res: i32, more: bool, ring_fd: RawFd) {
        let loose = match op {
            Op::Loose => true,
            Op::Bundle => false,
            _ => {
                return f.fail(Error::Internal(format!(
                    "a chain's CQE on flow {}, which sends bundles",
                    f.flow
                )))
            }
        };
        if let Err(e) = self.b.on_sent(loose, res, more) {
            f.fail(e);
        }
        if more && !loose {
            // The bundle goes on with the entries left: more CQEs follow.
            return;
        }
        self.pending = self.pending.saturating_sub(1);
        if self.pending == 0 {
            self.settle(f, ring_fd);
            if !self.resubmit && self.drained() {
                f.all_sent();
            }
        }
    }

    fn register(&mut self, ring: &IoUring, li: u16) -> Result<()> {
        self.b.bgid = li;
        self.b
            .ring
            .register(ring, li)
            .map_err(|e| Error::io("register a provided-buffer ring for send bundles", e))
    }

    fn needs_bundles(&self) -> bool {
        true
    }
}
