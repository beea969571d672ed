//! A flow's send-bundle state: the messages queued in its provided-buffer ring, and how a
//! short bundle is resumed exactly where it stopped (Linux 6.18 consumes every entry a short
//! bundle selected, sent or not).

use crate::error::{Error, Result};
use crate::uring_sys::bufring::BufRing;
use std::collections::VecDeque;

/// Most segments one `SendMsg` carries (the kernel's UIO_MAXIOV).
const MAX_IOV: usize = 1024;

/// A byte range of a message buffer: where it starts and how many bytes are left.
pub(super) type Seg = (*const u8, u32);

/// Drops `n` bytes from the front of `q` (segments shrink in place). False if `q` held fewer.
pub(super) fn drop_front(q: &mut VecDeque<Seg>, mut n: u32) -> bool {
    while n > 0 {
        let Some(front) = q.front_mut() else {
            return false;
        };
        let take = front.1.min(n);
        // SAFETY: take <= the bytes left in the segment.
        front.0 = unsafe { front.0.add(take as usize) };
        front.1 -= take;
        n -= take;
        if front.1 == 0 {
            q.pop_front();
        }
    }
    true
}

/// A flow's send-bundle state. Invariants: `queued` is exactly the kernel's ring entries
/// [`head`, `ring.tail`) while no bundle is in flight; `loose` holds, in stream order, bytes
/// that precede every queued entry; every segment belongs to a message buffer that is not
/// handed out again until both are empty.
pub(super) struct Bundle {
    pub(super) ring: BufRing,
    /// The buffer group id (the flow's index on its ring).
    pub(super) bgid: u16,
    /// The kernel's head when the bundle in flight was submitted.
    pub(super) head: u16,
    /// Segments in the kernel's buffer ring not yet sent, in ring order.
    pub(super) queued: VecDeque<Seg>,
    /// Bytes of the front queued segment the bundle in flight has sent.
    pub(super) front_sent: u32,
    /// Whole entries the bundle in flight has sent (popped from `queued`).
    pub(super) popped: usize,
    /// Unsent bytes whose ring entries a short bundle consumed anyway: they go out first, as
    /// one `SendMsg` (MSG_WAITALL) linked before the next bundle.
    pub(super) loose: VecDeque<Seg>,
    /// The iovecs and msghdr of the loose `SendMsg` (boxed: the kernel reads them in flight).
    pub(super) loose_iov: Box<[libc::iovec]>,
    pub(super) loose_msg: Box<libc::msghdr>,
    pub(super) loose_res: Option<i32>,
    /// The bundle's final result (its CQE without `F_MORE`).
    pub(super) bundle_res: Option<i32>,
    /// Bytes the bundle in flight sent, over all its CQEs.
    pub(super) bundle_sent: u64,
}

impl Bundle {
    pub(super) fn new(messages: usize) -> Bundle {
        Bundle {
            ring: BufRing::new(2 * messages),
            bgid: 0,
            head: 0,
            queued: VecDeque::with_capacity(2 * messages),
            front_sent: 0,
            popped: 0,
            loose: VecDeque::new(),
            loose_iov: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                (2 * messages).min(MAX_IOV)
            ]
            .into_boxed_slice(),
            // SAFETY: msghdr is plain data; zeroed is valid (no name, no control).
            loose_msg: Box::new(unsafe { std::mem::zeroed() }),
            loose_res: None,
            bundle_res: None,
            bundle_sent: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.loose.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.queued.clear();
        self.loose.clear();
        self.front_sent = 0;
    }

    pub(super) fn push(&mut self, seg: &[u8]) {
        if !seg.is_empty() {
            self.ring.push(seg, self.queued.len() as u16);
            self.queued.push_back((seg.as_ptr(), seg.len() as u32));
        }
    }

    /// A CQE of the loose send (`loose`) or of the bundle completed with `res`, `more`
    /// following: takes the bytes the bundle sent off its entries, and keeps each call's
    /// result for [`settle_bundle`](super::flow::Flow::settle_bundle).
    pub(super) fn on_sent(&mut self, loose: bool, res: i32, more: bool) -> Result<()> {
        if loose {
            self.loose_res = Some(res);
            return Ok(());
        }
        let consumed = if res > 0 {
            self.consume(res as u32)
        } else {
            Ok(())
        };
        if !more {
            self.bundle_res = Some(res);
        }
        consumed?;
        if more && self.front_sent != 0 {
            // The kernel goes on with a bundle only after sending all it selected.
            return Err(Error::Integrity(format!(
                "a send bundle went on after sending part of an entry ({} bytes)",
                self.front_sent
            )));
        }
        Ok(())
    }

    /// A bundle CQE reported `n` bytes sent: they are the front of `queued`, in order.
    pub(super) fn consume(&mut self, mut n: u32) -> Result<()> {
        self.bundle_sent += n as u64;
        while n > 0 {
            let Some(&(_, len)) = self.queued.front() else {
                return Err(Error::Kernel(format!(
                    "a send bundle reported {n} bytes more than its buffer ring held"
                )));
            };
            let take = (len - self.front_sent).min(n);
            self.front_sent += take;
            n -= take;
            if self.front_sent == len {
                self.queued.pop_front();
                self.front_sent = 0;
                self.popped += 1;
            }
        }
        Ok(())
    }

    /// After a bundle that left entries unsent: learns from the kernel's head which of them
    /// it consumed anyway (it may consume every entry it selected), moves their unsent bytes
    /// to `loose`, and rewrites a partly sent front entry the kernel kept, so that the next
    /// bundle starts exactly where this one stopped.
    pub(super) fn resync(&mut self, kernel_head: u16) -> Result<()> {
        let consumed = kernel_head.wrapping_sub(self.head) as usize;
        let unsent = consumed
            .checked_sub(self.popped)
            .filter(|&u| u <= self.queued.len());
        let Some(unsent) = unsent else {
            return Err(Error::Kernel(format!(
                "send bundle ring out of step: the kernel consumed {consumed} entries, {} were sent whole and {} were queued",
                self.popped,
                self.queued.len()
            )));
        };
        for _ in 0..unsent {
            let (p, len) = self.queued.pop_front().expect("checked above");
            // SAFETY: front_sent < len (0 after the first).
            self.loose.push_back((
                unsafe { p.add(self.front_sent as usize) },
                len - self.front_sent,
            ));
            self.front_sent = 0;
        }
        if self.front_sent > 0 {
            // The kernel kept the entry: no bundle is in flight, so rewriting it is safe.
            let front = self
                .queued
                .front_mut()
                .expect("front_sent implies a segment");
            // SAFETY: front_sent < the segment's length.
            *front = (
                unsafe { front.0.add(self.front_sent as usize) },
                front.1 - self.front_sent,
            );
            // No bundle is in flight, so the kernel is not selecting entries.
            let e = self.ring.entry_mut(kernel_head);
            e.set_addr(front.0 as u64);
            e.set_len(front.1);
            self.front_sent = 0;
        }
        self.head = kernel_head;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle flow with `n` queued 100-byte segments, as if submitted at kernel head 0.
    fn bundle_with(n: usize) -> (Bundle, Vec<Vec<u8>>) {
        let bufs: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 100]).collect();
        let mut b = Bundle::new(n);
        for buf in &bufs {
            b.push(buf);
        }
        (b, bufs)
    }

    #[test]
    fn short_bundle_moves_consumed_unsent_entries_to_loose() {
        // 2.5 of 6 segments sent, and the kernel consumed all 6 entries (as Linux 6.18 does
        // after a short bundle): the rest of segment 2 and segments 3..6 must go out loose.
        let (mut b, bufs) = bundle_with(6);
        b.consume(250).unwrap();
        assert_eq!((b.popped, b.front_sent, b.queued.len()), (2, 50, 4));
        b.resync(6).unwrap();
        assert!(b.queued.is_empty());
        let loose: Vec<(usize, u32)> = b.loose.iter().map(|&(p, l)| (p as usize, l)).collect();
        let mut want = vec![(bufs[2].as_ptr() as usize + 50, 50)];
        want.extend((3..6).map(|i| (bufs[i].as_ptr() as usize, 100)));
        assert_eq!(loose, want);
        assert_eq!(b.head, 6);
        // A loose send that stops half way keeps the rest in order.
        assert!(drop_front(&mut b.loose, 120));
        assert_eq!(b.loose.front().unwrap().1, 30);
        assert_eq!(b.loose.len(), 3);
        assert!(!drop_front(&mut b.loose, 1000), "more than was given");
    }

    #[test]
    fn short_bundle_rewrites_the_partly_sent_entry_the_kernel_kept() {
        // 2.5 segments sent, the kernel consumed only the 2 whole ones: the entry at its head
        // must now start at byte 50 of segment 2, so nothing is sent twice.
        let (mut b, bufs) = bundle_with(4);
        b.consume(250).unwrap();
        b.resync(2).unwrap();
        assert!(b.loose.is_empty());
        assert_eq!(b.queued.len(), 2);
        let want = bufs[2].as_ptr() as u64 + 50;
        assert_eq!(b.queued.front().unwrap().0 as u64, want);
        let e = b.ring.entry_mut(2);
        assert_eq!((e.addr(), e.len()), (want, 50));
        assert_eq!(b.front_sent, 0);
    }

    #[test]
    fn bundle_ring_out_of_step_is_an_error() {
        let (mut b, _) = bundle_with(4);
        b.consume(200).unwrap();
        assert!(
            b.resync(1).is_err(),
            "the kernel consumed fewer than were sent whole"
        );
        let (mut b, _) = bundle_with(4);
        assert!(b.resync(5).is_err(), "more than were queued");
        let (mut b, _) = bundle_with(2);
        assert!(b.consume(201).is_err(), "more bytes than queued");
    }
}
