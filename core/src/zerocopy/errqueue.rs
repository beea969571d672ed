//! `MSG_ZEROCOPY` completions on the threads engine: the socket error queue, and which slots
//! the kernel's send-call ids name.

use super::pool::SlotPool;
use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;

/// `SO_EE_ORIGIN_ZEROCOPY` (absent from libc).
pub const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED`: the kernel fell back to copying for this range.
pub const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

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
            return Err(Error::Kernel(format!(
                "zero-copy completion [{lo}, {hi}] for send calls never issued (next id {})",
                self.base.wrapping_add(self.pending.len() as u32)
            )));
        }
        for e in self.pending.range_mut(start..start + n) {
            match e.take() {
                Some(slot) => pool.on_complete(slot as usize, copied, now),
                None => {
                    return Err(Error::Kernel(format!(
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

/// One entry of the socket error queue: a zero-copy notification or a TX timestamp (with
/// `--timestamps` both arrive on the same queue, in whatever order the kernel queues them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrEvent {
    /// MSG_ZEROCOPY completed a range of send calls.
    Zerocopy(ErrqueueCompletion),
    /// A timestamp of a stamped send call.
    Stamp(crate::stamps::Stamp),
}

/// Reads one entry from `fd`'s error queue without blocking. `Ok(None)`: the queue is empty.
pub fn read_errqueue(fd: RawFd) -> Result<Option<ErrEvent>> {
    // Room for the timestamp (3 timespecs) and one IP(V6)_RECVERR message: the extended
    // error and the offender's address.
    let mut control = [0u8; 256];
    let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
    let msg = loop {
        match recvmsg::<()>(fd, &mut [], Some(&mut control), flags) {
            Ok(m) => break m,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(Error::io("read the socket error queue", e.into())),
        }
    };
    let cmsgs = msg
        .cmsgs()
        .map_err(|e| Error::Kernel(format!("unreadable error-queue message: {e}")))?;
    let mut stamp_ns = None;
    for c in cmsgs {
        let ee = match c {
            ControlMessageOwned::Ipv4RecvErr(ee, _) | ControlMessageOwned::Ipv6RecvErr(ee, _) => ee,
            ControlMessageOwned::ScmTimestampsns(t) => {
                let ts = t.system;
                stamp_ns = Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64);
                continue;
            }
            _ => continue,
        };
        if ee.ee_origin == crate::stamps::SO_EE_ORIGIN_TIMESTAMPING
            && ee.ee_errno == libc::ENOMSG as u32
        {
            let kind = crate::stamps::StampKind::from_info(ee.ee_info).ok_or_else(|| {
                Error::Kernel(format!("timestamp of unknown kind {}", ee.ee_info))
            })?;
            // The timestamp cmsg comes first; look on if it does not.
            let real_ns = match stamp_ns {
                Some(t) => t,
                None => {
                    return Err(Error::Kernel(
                        "a timestamp entry without its SCM_TIMESTAMPING data".into(),
                    ))
                }
            };
            return Ok(Some(ErrEvent::Stamp(crate::stamps::Stamp {
                kind,
                key: ee.ee_data,
                real_ns,
            })));
        }
        if ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee.ee_errno != 0 {
            return Err(Error::Kernel(format!(
                "unexpected error-queue entry: origin {} errno {} ({})",
                ee.ee_origin,
                ee.ee_errno,
                io::Error::from_raw_os_error(ee.ee_errno as i32)
            )));
        }
        return Ok(Some(ErrEvent::Zerocopy(ErrqueueCompletion {
            lo: ee.ee_info,
            hi: ee.ee_data,
            copied: ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
        })));
    }
    Err(Error::Kernel(
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
        let hold = pool.stats.slot_hold.summary("test");
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
}
