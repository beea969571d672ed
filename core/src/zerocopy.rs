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
use crate::wire::HEADER_LEN;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;

/// `SO_EE_ORIGIN_ZEROCOPY` (absent from libc).
pub const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED`: the kernel fell back to copying for this range.
pub const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// Zero-copy accounting of one flow or (summed) one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZeroCopyStats {
    /// Zero-copy send calls issued (each is owed one completion).
    pub sends: u64,
    /// Send calls whose completion arrived.
    pub completions: u64,
    /// Completions that said the kernel copied after all.
    pub copied: u64,
    /// Most slots owned by the kernel at once.
    pub max_outstanding: u64,
    /// ENOBUFS answers (socket option memory for notifications exhausted), each followed by
    /// reaping and a retry.
    pub enobufs: u64,
}

impl ZeroCopyStats {
    /// Adds another flow's accounting (max_outstanding: the largest of the two).
    pub fn merge(&mut self, o: &ZeroCopyStats) {
        self.sends += o.sends;
        self.completions += o.completions;
        self.copied += o.copied;
        self.max_outstanding = self.max_outstanding.max(o.max_outstanding);
        self.enobufs += o.enobufs;
    }

    /// Fraction of completions that were copies (None before any completion).
    pub fn copied_fraction(&self) -> Option<f64> {
        (self.completions > 0).then(|| self.copied as f64 / self.completions as f64)
    }
}

/// Message buffers that the kernel may read after the send call returns.
/// Each slot holds one whole message: header in the first 16 bytes, payload after it.
pub struct SlotPool {
    bufs: Vec<Box<[u8]>>,
    refs: Vec<u32>,
    outstanding: u64,
    /// Accounting; `max_outstanding` kept current here.
    pub stats: ZeroCopyStats,
}

impl SlotPool {
    /// `slots` buffers of `msg_size` bytes, payload pre-filled with a constant pattern.
    pub fn new(slots: usize, msg_size: usize) -> Self {
        SlotPool {
            bufs: (0..slots)
                .map(|_| vec![0xA5u8; msg_size].into_boxed_slice())
                .collect(),
            refs: vec![0; slots],
            outstanding: 0,
            stats: ZeroCopyStats::default(),
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.bufs.len()
    }

    /// Always false: a pool has at least one slot.
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// True while the kernel may still read slot `i`.
    #[inline]
    pub fn busy(&self, i: usize) -> bool {
        self.refs[i] > 0
    }

    /// Sends still owed a completion.
    pub fn outstanding(&self) -> u64 {
        self.outstanding
    }

    /// Writable access to a free slot. Panics if the kernel still owns it: that would be the
    /// very bug zero-copy accounting exists to prevent.
    #[inline]
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        assert_eq!(self.refs[i], 0, "slot {i} written while the kernel owns it");
        &mut self.bufs[i]
    }

    /// Read access (for building the iovec or registering the buffers).
    pub fn slot(&self, i: usize) -> &[u8] {
        &self.bufs[i]
    }

    /// All buffers, e.g. to register them with io_uring.
    pub fn buffers(&self) -> &[Box<[u8]>] {
        &self.bufs
    }

    /// Records that a zero-copy send referencing slot `i` was issued.
    #[inline]
    pub fn on_send(&mut self, i: usize) {
        self.refs[i] += 1;
        self.outstanding += 1;
        self.stats.sends += 1;
        self.stats.max_outstanding = self.stats.max_outstanding.max(self.outstanding);
    }

    /// Records the completion of one send that referenced slot `i`.
    #[inline]
    pub fn on_complete(&mut self, i: usize, copied: bool) {
        debug_assert!(self.refs[i] > 0, "completion for idle slot {i}");
        self.refs[i] = self.refs[i].saturating_sub(1);
        self.outstanding = self.outstanding.saturating_sub(1);
        self.stats.completions += 1;
        self.stats.copied += copied as u64;
    }

    /// Releases a send over slot `i` that the kernel finished without ever owing a completion
    /// (an io_uring `SEND_ZC` result CQE without `F_MORE`: it failed before holding the pages).
    /// It is taken back out of `sends`, so `sends == completions` still holds after teardown.
    #[inline]
    pub fn on_unsent(&mut self, i: usize) {
        debug_assert!(self.refs[i] > 0, "release of idle slot {i}");
        self.refs[i] = self.refs[i].saturating_sub(1);
        self.outstanding = self.outstanding.saturating_sub(1);
        self.stats.sends = self.stats.sends.saturating_sub(1);
    }

    /// The (header, payload) iovecs of slot `i`.
    pub fn iovecs(&self, i: usize) -> [libc::iovec; 2] {
        let b = &self.bufs[i];
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

    /// Applies a completion range `[lo, hi]` (inclusive, wrapping u32) to the pool.
    pub fn complete(&mut self, lo: u32, hi: u32, copied: bool, pool: &mut SlotPool) -> Result<()> {
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
                Some(slot) => pool.on_complete(slot as usize, copied),
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
        let mut pool = SlotPool::new(2, 64);
        let mut ids = CallIdMap::default();
        // slot 0: one call (id 0); slot 1: a short send finished by a second call (ids 1, 2)
        pool.on_send(0);
        ids.on_send(0);
        pool.on_send(1);
        ids.on_send(1);
        pool.on_send(1);
        ids.on_send(1);
        assert_eq!(pool.stats.max_outstanding, 3);
        ids.complete(1, 1, true, &mut pool).unwrap();
        assert!(pool.busy(0) && pool.busy(1));
        ids.complete(2, 2, true, &mut pool).unwrap();
        assert!(!pool.busy(1));
        ids.complete(0, 0, false, &mut pool).unwrap();
        assert!(!pool.busy(0));
        assert_eq!(pool.stats.completions, 3);
        assert_eq!(pool.stats.copied, 2);
        assert!(ids.complete(0, 0, false, &mut pool).is_err(), "repeat");
        assert!(
            ids.complete(3, 3, false, &mut pool).is_err(),
            "never issued"
        );
    }

    #[test]
    fn call_ids_wrap_around_u32() {
        let mut pool = SlotPool::new(1, 16);
        let mut ids = CallIdMap {
            base: u32::MAX,
            pending: VecDeque::new(),
        };
        pool.on_send(0);
        ids.on_send(0);
        pool.on_send(0);
        ids.on_send(0);
        ids.complete(u32::MAX, 0, false, &mut pool).unwrap();
        assert!(!pool.busy(0));
        assert_eq!(ids.base, 1);
    }

    #[test]
    #[should_panic(expected = "while the kernel owns it")]
    fn writing_an_owned_slot_panics() {
        let mut pool = SlotPool::new(1, 16);
        pool.on_send(0);
        pool.slot_mut(0)[0] = 1;
    }
}
