//! The slots zero-copy messages are sent from, and when each may be written again.

use crate::kmem::KernelMem;
use crate::wire::message::HEADER_LEN;
use sendpath_record::end_v1::ZeroCopyStats;

/// Message buffers that the kernel may read after the send call returns: `len()` slots of
/// `msg_size` bytes each in one allocation, slot `i` at `i * stride`. Each slot holds one whole
/// message: header in the first 16 bytes, payload after it.
///
/// Layout matters to the kernel: a `MSG_ZEROCOPY` send whose bytes continue the previous send's
/// in memory is merged into the same page fragment and the same notification, so a small
/// message's slot stays held until the merged tail is sent and acknowledged (with Nagle and a
/// delayed ACK, measured here: 0.07 instead of 1.6 Gbit/s at 1 KiB, 64 slots). So
/// [`SlotPool::separate`] keeps a gap between slots for strategies that send one message per
/// call, as separately allocated buffers would; [`SlotPool::contiguous`] packs them for
/// coalesced sends, which cover many slots in one call.
///
/// A send covers a *run*: consecutive slots [`claim`](SlotPool::claim)ed together (one slot
/// on the threads engine and io_uring's linked chains; several with coalescing). Every send
/// over a run (a first send, or a second one for the rest of a short send) references the whole
/// run, so a run is free exactly when every send over it has completed, and the bookkeeping is
/// per run, not per slot.
///
/// Invariant (the soundness argument of every zero-copy strategy): slot `i` is written only
/// while it is not [`busy`](SlotPool::busy): claimed for a send being built, or in a run still
/// owed a completion; [`slot_mut`](SlotPool::slot_mut) checks it. The pool must outlive every
/// send that names its memory: strategies drain completions before dropping it, or leak it.
pub struct SlotPool {
    arena: KernelMem,
    msg_size: usize,
    /// Bytes from one slot's start to the next's: `msg_size` when contiguous.
    stride: usize,
    /// For each slot, the first slot of the run it was last claimed in.
    owner: Vec<u32>,
    /// Per run (indexed by its first slot): its length in slots ...
    run_len: Vec<u32>,
    /// ... sends over it still owed a completion ...
    refs: Vec<u32>,
    /// ... whether it is claimed for a send not issued yet ...
    claimed: Vec<bool>,
    /// ... and when it was first sent (for `stats.slot_hold`).
    sent_at: Vec<u64>,
    /// Sends still owed a completion.
    outstanding: u64,
    /// Slots in runs owed a completion.
    busy_slots: u64,
    /// Accounting; `max_outstanding` kept current here.
    pub stats: ZeroCopyStats,
}

impl SlotPool {
    /// `slots` buffers of `msg_size` bytes back to back (for sends that cover several),
    /// payload pre-filled with a constant pattern.
    pub fn contiguous(slots: usize, msg_size: usize) -> Self {
        Self::with_stride(slots, msg_size, msg_size)
    }

    /// `slots` buffers of `msg_size` bytes with a gap of at least 64 bytes after each (for
    /// sends of one message per call: see the type's docs).
    pub fn separate(slots: usize, msg_size: usize) -> Self {
        Self::with_stride(slots, msg_size, (msg_size + 64).next_multiple_of(64))
    }

    fn with_stride(slots: usize, msg_size: usize, stride: usize) -> Self {
        let arena = KernelMem::zeroed(slots * stride);
        // SAFETY: the arena holds slots * stride initialized (zeroed) bytes.
        unsafe { std::ptr::write_bytes(arena.as_ptr(), 0xA5, slots * stride) };
        SlotPool {
            arena,
            msg_size,
            stride,
            owner: (0..slots as u32).collect(),
            run_len: vec![1; slots],
            refs: vec![0; slots],
            claimed: vec![false; slots],
            sent_at: vec![0; slots],
            outstanding: 0,
            busy_slots: 0,
            stats: ZeroCopyStats::default(),
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// Always false: a pool has at least one slot.
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// Bytes per slot.
    pub fn msg_size(&self) -> usize {
        self.msg_size
    }

    /// True while slot `i` may not be written: the kernel may still read it, or it is claimed
    /// for a send being built.
    #[inline]
    pub fn busy(&self, i: usize) -> bool {
        let o = self.owner[i] as usize;
        (self.refs[o] > 0 || self.claimed[o]) && i < o + self.run_len[o] as usize
    }

    /// Sends still owed a completion.
    pub fn outstanding(&self) -> u64 {
        self.outstanding
    }

    /// Whether a send over the run starting at `first` is owed a completion.
    #[inline]
    pub fn owes(&self, first: usize) -> bool {
        first < self.len() && self.owner[first] as usize == first && self.refs[first] > 0
    }

    /// Slots in the run that starts at `first`.
    #[inline]
    pub fn run_len(&self, first: usize) -> usize {
        self.run_len[first] as usize
    }

    /// Claims the free slots `first..first + count` as one run, for a send about to be built.
    /// Panics if one is busy.
    #[inline]
    pub fn claim(&mut self, first: usize, count: usize) {
        for i in first..first + count {
            assert!(!self.busy(i), "slot {i} claimed while busy");
            self.owner[i] = first as u32;
        }
        self.run_len[first] = count as u32;
        self.claimed[first] = true;
    }

    /// Writable access to a slot of a run claimed and not yet sent. Panics if the kernel may
    /// still read it: that would be the very bug zero-copy accounting exists to prevent.
    #[inline]
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        let o = self.owner[i] as usize;
        assert!(
            self.refs[o] == 0 || i >= o + self.run_len[o] as usize,
            "slot {i} written while the kernel owns it"
        );
        // SAFETY: slot i lies inside the arena, the kernel holds no send over it (checked),
        // and `&mut self` excludes any other reference into it from this side.
        unsafe {
            std::slice::from_raw_parts_mut(self.arena.as_ptr().add(i * self.stride), self.msg_size)
        }
    }

    /// Read access to `count` consecutive slots from `first` (for building an SQE); more than
    /// one only in a contiguous pool.
    pub fn slots(&self, first: usize, count: usize) -> &[u8] {
        assert!(
            first + count <= self.len(),
            "slots {first}+{count} out of the pool"
        );
        assert!(
            count <= 1 || self.stride == self.msg_size,
            "a run of slots in a pool with gaps"
        );
        // SAFETY: inside the arena; nothing writes a slot while a reference to it is lent out
        // (slot_mut takes &mut self).
        unsafe {
            std::slice::from_raw_parts(
                self.arena.as_ptr().add(first * self.stride),
                count * self.msg_size,
            )
        }
    }

    /// Read access to slot `i`.
    pub fn slot(&self, i: usize) -> &[u8] {
        self.slots(i, 1)
    }

    /// The whole arena as one iovec (to register it with io_uring).
    pub fn arena_iovec(&self) -> libc::iovec {
        libc::iovec {
            iov_base: self.arena.as_ptr().cast(),
            iov_len: self.len() * self.stride,
        }
    }

    /// Records that a zero-copy send over the run starting at `first` was issued at `now` (it
    /// is owed one completion).
    #[inline]
    pub fn on_send(&mut self, first: usize, now: u64) {
        self.claimed[first] = false;
        if self.refs[first] == 0 {
            self.busy_slots += self.run_len[first] as u64;
            self.sent_at[first] = now;
        }
        self.refs[first] += 1;
        self.outstanding += 1;
        self.stats.sends += 1;
        self.stats.max_outstanding = self.stats.max_outstanding.max(self.busy_slots);
    }

    /// Drops one reference from the run; if it becomes free, records how long the kernel held
    /// its slots.
    #[inline]
    fn release(&mut self, first: usize, now: u64) {
        debug_assert!(self.refs[first] > 0, "release of idle run {first}");
        if self.refs[first] == 0 {
            return;
        }
        self.refs[first] -= 1;
        self.outstanding = self.outstanding.saturating_sub(1);
        if self.refs[first] == 0 {
            let n = self.run_len[first] as u64;
            self.busy_slots -= n;
            self.stats
                .slot_hold
                .record_n(now.saturating_sub(self.sent_at[first]), n);
        }
    }

    /// Records the completion, seen at `now`, of one send over the run starting at `first`.
    #[inline]
    pub fn on_complete(&mut self, first: usize, copied: bool, now: u64) {
        self.release(first, now);
        self.stats.completions += 1;
        self.stats.copied += copied as u64;
    }

    /// Releases a send over the run that the kernel finished without ever owing a completion
    /// (an io_uring `SEND_ZC` result CQE without `F_MORE`: it failed before holding the
    /// pages). It is taken back out of `sends`, so `sends == completions` still holds after
    /// teardown.
    #[inline]
    pub fn on_unsent(&mut self, first: usize, now: u64) {
        self.release(first, now);
        self.stats.sends = self.stats.sends.saturating_sub(1);
    }

    /// The (header, payload) iovecs of slot `i`.
    pub fn iovecs(&self, i: usize) -> [libc::iovec; 2] {
        let b = self.slot(i);
        [
            libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: HEADER_LEN,
            },
            libc::iovec {
                // SAFETY: HEADER_LEN <= len, so the pointer stays in (or one past) the buffer.
                iov_base: unsafe { b.as_ptr().add(HEADER_LEN) } as *mut libc::c_void,
                iov_len: b.len() - HEADER_LEN,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "while the kernel owns it")]
    fn writing_an_owned_slot_panics() {
        let mut pool = SlotPool::separate(1, 16);
        pool.claim(0, 1);
        pool.slot_mut(0)[0] = 1;
        pool.on_send(0, 0);
        pool.slot_mut(0)[0] = 1;
    }

    #[test]
    fn a_run_is_held_until_every_send_over_it_completed() {
        let mut pool = SlotPool::contiguous(4, 32);
        assert_eq!(pool.slots(1, 2).len(), 64);
        assert_eq!(
            pool.slot(2).as_ptr() as usize - pool.slot(0).as_ptr() as usize,
            64,
            "slots are contiguous"
        );
        pool.claim(0, 3);
        assert!(pool.busy(2) && !pool.busy(3), "claimed, not yet sent");
        pool.slot_mut(2).fill(7);
        pool.on_send(0, 10);
        // A short send finished by a second send over the same run.
        pool.on_send(0, 20);
        assert_eq!(pool.stats.max_outstanding, 3);
        pool.on_complete(0, true, 50);
        assert!(pool.busy(0) && pool.busy(1) && pool.busy(2));
        pool.on_unsent(0, 60);
        assert!(!pool.busy(0) && !pool.busy(2));
        assert_eq!((pool.stats.sends, pool.stats.completions), (1, 1));
        assert_eq!(pool.outstanding(), 0);
        let hold = pool.stats.slot_hold.summary("test");
        assert_eq!(hold.count, 3, "one value per slot");
        assert_eq!((hold.min, hold.max), (50, 50));
        // A shorter run reusing slot 0 leaves slots 1 and 2 free.
        pool.claim(0, 1);
        pool.on_send(0, 70);
        assert!(pool.busy(0) && !pool.busy(1) && !pool.busy(2));
        pool.claim(1, 3);
        pool.on_send(1, 70);
        assert!(pool.busy(3));
        assert_eq!(pool.slots(2, 1), &[7u8; 32][..]);
    }

    #[test]
    fn separate_slots_leave_a_gap_and_refuse_runs() {
        let pool = SlotPool::separate(3, 1000);
        let gap = pool.slot(1).as_ptr() as usize - pool.slot(0).as_ptr() as usize;
        assert!(gap >= 1064 && gap.is_multiple_of(64), "{gap}");
        assert_eq!(pool.slot(2).len(), 1000);
        assert!(std::panic::catch_unwind(|| pool.slots(0, 2).len()).is_err());
    }

    #[test]
    #[should_panic(expected = "claimed while busy")]
    fn claiming_a_busy_slot_panics() {
        let mut pool = SlotPool::separate(4, 16);
        pool.claim(1, 2);
        pool.on_send(1, 0);
        pool.claim(0, 3);
    }
}
