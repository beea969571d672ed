//! Zero-copy buffer ownership and completion accounting, shared by both engines.
//!
//! Invariant: a [`SlotPool`] slot belongs to the kernel from the moment a zero-copy send that
//! references it is issued until the completion for that send arrives (an error-queue
//! notification for `MSG_ZEROCOPY`, a notification CQE for io_uring `SEND_ZC`). The sender may
//! write a slot only while its reference count is 0. A slot may be referenced by several sends
//! (a short send is finished by another send call over the rest of the slot).
//!
//! The threads engine learns completions as ranges `[lo, hi]` of the kernel's per-socket
//! send-call counter ([`CallIdMap`] maps those ids back to slots); io_uring names the slot in
//! the CQE's user_data.

use crate::error::{Error, Result};
use crate::latency::LatencyHistogram;
use crate::wire::HEADER_LEN;
use serde::{Deserialize, Serialize};
use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

/// `SO_EE_ORIGIN_ZEROCOPY` (absent from libc).
pub const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED`: the kernel fell back to copying for this range.
pub const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// Zero-copy accounting of one flow or (summed) one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ZeroCopyStats {
    /// Zero-copy send calls issued (each is owed one completion).
    pub sends: u64,
    /// Send calls whose completion arrived.
    pub completions: u64,
    /// Completions that said the kernel copied after all.
    pub copied: u64,
    /// Most slots (message buffers) owned by the kernel at once.
    pub max_outstanding: u64,
    /// ENOBUFS answers (socket option memory for notifications exhausted), each followed by
    /// reaping and a retry.
    pub enobufs: u64,
    /// Messages the zero-copy sends carried (a message finished by a second send after a
    /// short one counts once): `messages / sends` is how many one send carried.
    #[serde(default)]
    pub messages: u64,
    /// Times the sender had a message to send and no free slot, and waited for a completion.
    #[serde(default)]
    pub slot_waits: u64,
    /// Per slot: from the first send over it to the moment the sender saw the completion that
    /// released it (ns). The threads engine reaps the error queue only when it needs a slot,
    /// so there this includes how long the completion sat unread.
    #[serde(default)]
    pub slot_hold: LatencyHistogram,
}

impl ZeroCopyStats {
    /// Adds another flow's accounting (max_outstanding: the largest of the two).
    pub fn merge(&mut self, o: &ZeroCopyStats) {
        self.sends += o.sends;
        self.completions += o.completions;
        self.copied += o.copied;
        self.max_outstanding = self.max_outstanding.max(o.max_outstanding);
        self.enobufs += o.enobufs;
        self.messages += o.messages;
        self.slot_waits += o.slot_waits;
        self.slot_hold.merge(&o.slot_hold);
    }

    /// Fraction of completions that were copies (None before any completion).
    pub fn copied_fraction(&self) -> Option<f64> {
        (self.completions > 0).then(|| self.copied as f64 / self.completions as f64)
    }

    /// Messages per zero-copy send call (None before any send).
    pub fn messages_per_send(&self) -> Option<f64> {
        (self.sends > 0).then(|| self.messages as f64 / self.sends as f64)
    }
}

/// The slots' memory: one zeroed, page-aligned allocation, so that consecutive slots are
/// contiguous (a coalesced send covers several) and io_uring registers it as one buffer.
struct Arena {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the arena is plain memory owned by one SlotPool; it moves between threads with it.
unsafe impl Send for Arena {}

impl Arena {
    fn new(bytes: usize) -> Arena {
        let layout = Layout::from_size_align(bytes.max(1), 4096).expect("slot arena layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })
            .unwrap_or_else(|| handle_alloc_error(layout));
        Arena { ptr, layout }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout. Whoever lends the memory to the kernel
        // keeps the pool alive (or leaks it) until the kernel is done with it.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

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
    arena: Arena,
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
        let arena = Arena::new(slots * stride);
        // SAFETY: the arena holds slots * stride initialized (zeroed) bytes.
        unsafe { std::ptr::write_bytes(arena.ptr.as_ptr(), 0xA5, slots * stride) };
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
            std::slice::from_raw_parts_mut(
                self.arena.ptr.as_ptr().add(i * self.stride),
                self.msg_size,
            )
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
                self.arena.ptr.as_ptr().add(first * self.stride),
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
            iov_base: self.arena.ptr.as_ptr().cast(),
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

/// Maps the kernel's MSG_ZEROCOPY send-call ids (a per-socket u32 counter, incremented by
/// every successful zero-copy send call) to the slot each call referenced.
#[derive(Default)]
pub struct CallIdMap {
    /// Id of `pending[0]`.
    base: u32,
    /// Slot of each call from `base` on; `None` once completed.
    pending: VecDeque<Option<u32>>,
}

impl CallIdMap {
    /// Notes a successful zero-copy send call over `slot`; the kernel gave it the next id.
    #[inline]
    pub fn on_send(&mut self, slot: usize) {
        self.pending.push_back(Some(slot as u32));
    }

    /// Applies a completion range `[lo, hi]` (inclusive, wrapping u32), seen at `now`, to the
    /// pool.
    pub fn complete(
        &mut self,
        lo: u32,
        hi: u32,
        copied: bool,
        now: u64,
        pool: &mut SlotPool,
    ) -> Result<()> {
        let n = hi.wrapping_sub(lo) as usize + 1;
        let start = lo.wrapping_sub(self.base) as usize;
        if start + n > self.pending.len() {
            return Err(Error::Protocol(format!(
                "zero-copy completion [{lo}, {hi}] for send calls never issued (next id {})",
                self.base.wrapping_add(self.pending.len() as u32)
            )));
        }
        for e in self.pending.range_mut(start..start + n) {
            match e.take() {
                Some(slot) => pool.on_complete(slot as usize, copied, now),
                None => {
                    return Err(Error::Protocol(format!(
                        "zero-copy completion [{lo}, {hi}] repeats a completed send"
                    )))
                }
            }
        }
        while let Some(None) = self.pending.front() {
            self.pending.pop_front();
            self.base = self.base.wrapping_add(1);
        }
        Ok(())
    }
}

/// One notification from the socket error queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrqueueCompletion {
    /// First send-call id completed.
    pub lo: u32,
    /// Last send-call id completed (inclusive).
    pub hi: u32,
    /// The kernel copied instead of sending from the user pages.
    pub copied: bool,
}

/// Reads one zero-copy notification from `fd`'s error queue without blocking.
/// `Ok(None)`: the queue is empty.
pub fn read_errqueue(fd: RawFd) -> Result<Option<ErrqueueCompletion>> {
    let mut control = [0u64; 16]; // 128 bytes, 8-aligned for cmsghdr
                                  // SAFETY: msghdr is plain data; zeroed is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    loop {
        // SAFETY: msg points at a live control buffer; no data iovecs.
        let r = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
        if r >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(None),
            _ => return Err(Error::io("read the socket error queue", e)),
        }
    }
    // SAFETY: the kernel filled msg_control/msg_controllen; CMSG_* walk within them.
    let mut cm = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cm.is_null() {
        // SAFETY: cm points at a complete cmsghdr inside the control buffer.
        let h = unsafe { &*cm };
        let is_recverr = (h.cmsg_level == libc::SOL_IP && h.cmsg_type == libc::IP_RECVERR)
            || (h.cmsg_level == libc::SOL_IPV6 && h.cmsg_type == libc::IPV6_RECVERR);
        if is_recverr {
            // SAFETY: IP_RECVERR data is a sock_extended_err; read unaligned to be safe.
            let ee: libc::sock_extended_err =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cm) as *const _) };
            if ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee.ee_errno != 0 {
                return Err(Error::Protocol(format!(
                    "unexpected error-queue entry: origin {} errno {} ({})",
                    ee.ee_origin,
                    ee.ee_errno,
                    io::Error::from_raw_os_error(ee.ee_errno as i32)
                )));
            }
            return Ok(Some(ErrqueueCompletion {
                lo: ee.ee_info,
                hi: ee.ee_data,
                copied: ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
            }));
        }
        // SAFETY: as above.
        cm = unsafe { libc::CMSG_NXTHDR(&msg, cm) };
    }
    Err(Error::Protocol(
        "error-queue message without IP_RECVERR data".into(),
    ))
}

/// Waits up to `timeout_ms` for the error queue to become readable (POLLERR).
pub fn wait_errqueue(fd: RawFd, timeout_ms: i32) -> Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: 0, // POLLERR is always reported
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(Error::io("poll the socket error queue", e));
    }
    Ok(r > 0 && pfd.revents & libc::POLLERR != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_free_slots_only_when_every_call_completed() {
        let mut pool = SlotPool::separate(2, 64);
        let mut ids = CallIdMap::default();
        // slot 0: one call (id 0); slot 1: a short send finished by a second call (ids 1, 2)
        pool.claim(0, 1);
        pool.on_send(0, 100);
        ids.on_send(0);
        pool.claim(1, 1);
        pool.on_send(1, 100);
        ids.on_send(1);
        pool.on_send(1, 150);
        ids.on_send(1);
        assert_eq!(pool.stats.max_outstanding, 2, "two slots, three sends");
        assert_eq!(pool.outstanding(), 3);
        ids.complete(1, 1, true, 200, &mut pool).unwrap();
        assert!(pool.busy(0) && pool.busy(1));
        ids.complete(2, 2, true, 300, &mut pool).unwrap();
        assert!(!pool.busy(1));
        ids.complete(0, 0, false, 1100, &mut pool).unwrap();
        assert!(!pool.busy(0));
        assert_eq!(pool.stats.completions, 3);
        assert_eq!(pool.stats.copied, 2);
        // Slot 1 was held from its first send (100) to its last completion (300).
        let hold = pool.stats.slot_hold.summary();
        assert_eq!((hold.count, hold.min, hold.max), (2, 200, 1000));
        assert!(ids.complete(0, 0, false, 0, &mut pool).is_err(), "repeat");
        assert!(
            ids.complete(3, 3, false, 0, &mut pool).is_err(),
            "never issued"
        );
    }

    #[test]
    fn call_ids_wrap_around_u32() {
        let mut pool = SlotPool::separate(1, 16);
        let mut ids = CallIdMap {
            base: u32::MAX,
            pending: VecDeque::new(),
        };
        pool.claim(0, 1);
        pool.on_send(0, 0);
        ids.on_send(0);
        pool.on_send(0, 0);
        ids.on_send(0);
        ids.complete(u32::MAX, 0, false, 0, &mut pool).unwrap();
        assert!(!pool.busy(0));
        assert_eq!(ids.base, 1);
    }

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
        let hold = pool.stats.slot_hold.summary();
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
        assert!(gap >= 1064 && gap % 64 == 0, "{gap}");
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
