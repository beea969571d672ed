//! A3 on io_uring: `SEND_ZC` from registered slots, one message per send (linked chains) or
//! many (coalesced).

use crate::error::{Error, Result};
use crate::send::uring::strategy::{UringSend, ZeroCopyUring};
use crate::wire::message::{write_message, Body};
use crate::zerocopy::pool::SlotPool;
use io_uring::opcode;
use io_uring::squeue::Entry;
use io_uring::types::Fixed;
use sendpath_record::end_v1::ZeroCopyStats;

/// `IORING_SEND_ZC_REPORT_USAGE` (Linux 6.2; private in the io-uring crate): the notification
/// reports whether the kernel fell back to copying.
pub const IORING_SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
/// `IORING_NOTIF_USAGE_ZC_COPIED`: bit of a notification's res (as u32) meaning "copied".
pub const IORING_NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;

/// A3 on io_uring: `SendZc` from the flow's slot pool, registered as one fixed buffer, with
/// `IORING_SEND_ZC_REPORT_USAGE`. A buffer is a run of consecutive slots starting at slot
/// `buf` (one slot with linked chains; up to `depth` with coalescing), never wrapping around
/// the end of the pool.
///
/// Invariant: a slot is written only after the pool's [`claim`](SlotPool::claim) found it
/// free; every SQE over a run (a first send, or the resend of a short one's rest) takes one
/// reference on the run, released by that send's notification (or by a result without
/// `F_MORE`, which owes none).
pub struct A3UringSendZc {
    pool: SlotPool,
    next: usize,
    /// The pool's index in the ring's registered buffer table.
    base: u16,
    verify: bool,
    /// The last `prepare` found no free slot (counts each wait once in `slot_waits`).
    waiting: bool,
}

impl A3UringSendZc {
    /// `slots` message buffers of `msg_size` bytes: back to back when sends coalesce
    /// (`contiguous`), apart when each send carries one message (see [`SlotPool`]).
    pub fn new(msg_size: usize, slots: usize, verify: bool, contiguous: bool) -> Self {
        let pool = if contiguous {
            SlotPool::contiguous(slots, msg_size)
        } else {
            SlotPool::separate(slots, msg_size)
        };
        A3UringSendZc {
            pool,
            next: 0,
            base: 0,
            verify,
            waiting: false,
        }
    }
}

impl UringSend for A3UringSendZc {
    #[inline]
    fn prepare(&mut self, _pos: usize, seq: u64, ts: u64, max: usize) -> Option<(u16, usize)> {
        let first = self.next;
        // A run never wraps: the last slot of the pool ends it.
        let limit = max.min(self.pool.len() - first);
        let n = (0..limit)
            .take_while(|&k| !self.pool.busy(first + k))
            .count();
        if n == 0 {
            if !self.waiting {
                self.waiting = true;
                self.pool.stats.slot_waits += 1;
            }
            return None;
        }
        self.waiting = false;
        self.pool.claim(first, n);
        for k in 0..n {
            let slot = self.pool.slot_mut(first + k);
            write_message(slot, seq + k as u64, ts, Body::new(self.verify, None));
        }
        self.pool.stats.messages += n as u64;
        self.next = (first + n) % self.pool.len();
        Some((first as u16, n))
    }

    #[inline]
    fn sqe(&mut self, fd: Fixed, buf: u16, done: u32, now: u64, eor: bool) -> Entry {
        let first = buf as usize;
        self.pool.on_send(first, now);
        let rest = &self.pool.slots(first, self.pool.run_len(first))[done as usize..];
        opcode::SendZc::new(fd, rest.as_ptr(), rest.len() as u32)
            .buf_index(Some(self.base))
            .flags(libc::MSG_WAITALL | if eor { libc::MSG_EOR } else { 0 })
            .zc_flags(IORING_SEND_ZC_REPORT_USAGE)
            .build()
    }

    fn zero_copy(&mut self) -> Option<&mut dyn ZeroCopyUring> {
        Some(self)
    }

    fn zero_copy_ref(&self) -> Option<&dyn ZeroCopyUring> {
        Some(self)
    }
}

impl ZeroCopyUring for A3UringSendZc {
    fn fixed_buffer(&self) -> libc::iovec {
        self.pool.arena_iovec()
    }

    fn set_fixed_index(&mut self, index: u16) {
        self.base = index;
    }

    #[inline]
    fn on_result(&mut self, buf: u16, notif_follows: bool, now: u64) {
        if !notif_follows {
            // Failed before the kernel took the pages: no notification will come.
            self.pool.on_unsent(buf as usize, now);
        }
    }

    #[inline]
    fn on_notif(&mut self, buf: u16, res: i32, now: u64) -> Result<()> {
        let i = buf as usize;
        if !self.pool.owes(i) {
            return Err(Error::Kernel(format!(
                "SEND_ZC notification for slot {i}, which no send is waiting on"
            )));
        }
        self.pool
            .on_complete(i, res as u32 & IORING_NOTIF_USAGE_ZC_COPIED != 0, now);
        Ok(())
    }

    fn owed(&self) -> u64 {
        self.pool.outstanding()
    }

    fn stats(&self) -> ZeroCopyStats {
        self.pool.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a3_slot_is_released_only_by_its_notification() {
        let mut s = A3UringSendZc::new(64, 2, false, false);
        let (b0, _) = s.prepare(0, 0, 0, 1).unwrap();
        let (b1, _) = s.prepare(1, 1, 0, 1).unwrap();
        assert_eq!(s.prepare(2, 2, 0, 1), None, "both slots handed out");
        let _ = s.sqe(Fixed(0), b0, 0, 10, false);
        let _ = s.sqe(Fixed(0), b1, 0, 10, false);
        s.on_result(b0, true, 20); // F_MORE: a notification follows
        s.on_result(b1, false, 20); // failed before taking the pages: released now
        assert_eq!(s.owed(), 1);
        assert_eq!(
            s.prepare(2, 2, 0, 1),
            None,
            "slot 0 still owed its notification"
        );
        s.on_notif(b0, IORING_NOTIF_USAGE_ZC_COPIED as i32, 30)
            .unwrap();
        assert!(
            s.on_notif(b0, 0, 40).is_err(),
            "a second notification is a protocol error"
        );
        let z = s.stats();
        assert_eq!((z.sends, z.completions, z.copied), (1, 1, 1));
        assert_eq!(z.slot_waits, 1, "one wait, however often prepare was asked");
        assert_eq!(s.prepare(2, 2, 0, 1), Some((0, 1)));
    }

    #[test]
    fn a3_coalesces_consecutive_slots_and_never_wraps() {
        let mut s = A3UringSendZc::new(32, 8, true, true);
        // 5 of 8 slots in one buffer, then the 3 left before the end of the pool.
        assert_eq!(s.prepare(0, 100, 7, 5), Some((0, 5)));
        let e = s.sqe(Fixed(0), 0, 0, 1, false);
        assert_eq!(e.get_user_data(), 0);
        assert_eq!(
            s.prepare(0, 105, 7, 5),
            Some((5, 3)),
            "stops at the pool's end"
        );
        let _ = s.sqe(Fixed(0), 5, 0, 1, false);
        for i in 0..8u64 {
            let slot = s.pool.slot(i as usize);
            assert_eq!(crate::wire::get_header(slot), (100 + i, 7), "slot {i}");
            assert!(
                crate::wire::check_payload(&slot[crate::wire::message::HEADER_LEN..], 100 + i)
                    .is_none()
            );
        }
        // The first buffer's rest is resent after a short send: one more reference on each.
        let _ = s.sqe(Fixed(0), 0, 100, 2, false);
        assert_eq!(s.owed(), 3);
        assert_eq!(s.prepare(0, 108, 0, 5), None, "every slot is owed");
        s.on_notif(0, 0, 10).unwrap();
        assert_eq!(
            s.prepare(0, 108, 0, 5),
            None,
            "slot 0 still owed the resend"
        );
        s.on_notif(0, 0, 12).unwrap();
        assert_eq!(
            s.prepare(0, 108, 0, 8),
            Some((0, 5)),
            "free up to the busy slot 5"
        );
        let z = s.stats();
        assert_eq!((z.sends, z.completions, z.messages), (3, 2, 13));
        assert_eq!(z.max_outstanding, 8);
        let hold = z.slot_hold.summary("test");
        assert_eq!((hold.count, hold.min, hold.max), (5, 11, 11));
    }
}
