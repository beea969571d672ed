//! A3 on threads: `sendmsg(MSG_ZEROCOPY)` from a slot pool, completions reaped from the socket
//! error queue.

use crate::error::{Error, Result};
use crate::kmem::Lent;
use crate::send::lifecycle::ZC_DRAIN_TIMEOUT;
use crate::send::threads::strategy::{BlockingSend, Sent};
use crate::sock::{self, advance_iovecs, sendmsg_once, MSG_ZEROCOPY};
use crate::stamps::Stamp;
use crate::time::now_ns;
use crate::wire::message::{write_message, Body};
use crate::zerocopy::errqueue::{read_errqueue, wait_errqueue, CallIdMap, ErrEvent};
use crate::zerocopy::pool::SlotPool;
use sendpath_record::end_v1::ZeroCopyStats;
use std::os::fd::RawFd;
use std::time::Instant;

/// Environment variable that makes A3 act as on a kernel without SO_ZEROCOPY, in builds with
/// the `test-hooks` feature (the tests turn it on; release builds ignore the variable).
pub const NO_SO_ZEROCOPY_ENV: &str = "SENDPATH_TEST_NO_SO_ZEROCOPY";

/// Whether the test hook asks A3 to behave as on a kernel without SO_ZEROCOPY.
fn so_zerocopy_refused_by_test_hook() -> bool {
    cfg!(feature = "test-hooks") && std::env::var_os(NO_SO_ZEROCOPY_ENV).is_some()
}

/// A3 on threads: `sendmsg(MSG_ZEROCOPY)` from a pool of slots; completions reaped from the
/// socket error queue. A batch is a run of consecutive slots (the pool packed back to back)
/// sent by one call, released by that call's completion. Invariant: slot `i` is written only
/// when the pool says no send that referenced it is still owed a completion.
pub struct A3ZeroCopy {
    pool: Lent<SlotPool>,
    ids: CallIdMap,
    next: usize,
    verify: bool,
    /// Extra send flags (MSG_EOR while a sample is sent).
    flags: libc::c_int,
    /// TX timestamps met while reaping completions (same queue), kept for the flow's stamper.
    stamps: Vec<Stamp>,
}

impl A3ZeroCopy {
    /// Enables SO_ZEROCOPY on `fd` (an error if the kernel cannot: A3 never falls back to a
    /// copying send) and allocates `slots` message buffers, back to back when a call carries
    /// a batch of more than one message, apart otherwise (see [`SlotPool`]).
    pub fn new(
        fd: RawFd,
        msg_size: usize,
        slots: usize,
        batch: usize,
        verify: bool,
    ) -> Result<Self> {
        // Test hook: behave as a kernel without SO_ZEROCOPY, so the user-facing error path
        // can be exercised through the real binaries on a kernel that has it.
        let refused = if so_zerocopy_refused_by_test_hook() {
            Err(std::io::Error::from_raw_os_error(libc::ENOPROTOOPT))
        } else {
            sock::enable_so_zerocopy(fd)
        };
        refused.map_err(|e| {
            Error::Unsupported(format!(
                "A3 needs SO_ZEROCOPY (Linux >= 4.14) and this kernel refused it: {e}"
            ))
        })?;
        Ok(A3ZeroCopy {
            pool: Lent::new(if batch > 1 {
                SlotPool::contiguous(slots, msg_size)
            } else {
                SlotPool::separate(slots, msg_size)
            }),
            ids: CallIdMap::default(),
            next: 0,
            verify,
            flags: 0,
            stamps: Vec::new(),
        })
    }

    /// Applies every notification waiting in the error queue; timestamps found among them
    /// are kept for [`BlockingSend::reap_stamps`].
    fn reap(&mut self, fd: RawFd) -> Result<()> {
        let mut now = None;
        while let Some(e) = read_errqueue(fd)? {
            match e {
                ErrEvent::Zerocopy(c) => {
                    let t = *now.get_or_insert_with(now_ns);
                    self.ids.complete(c.lo, c.hi, c.copied, t, &mut self.pool)?;
                }
                ErrEvent::Stamp(s) => self.stamps.push(s),
            }
        }
        Ok(())
    }

    /// Blocks (bounded) until slot `i` is released by the kernel.
    fn wait_for_slot(&mut self, fd: RawFd, i: usize) -> Result<()> {
        let deadline = Instant::now() + sock::IO_TIMEOUT;
        let mut waited = false;
        loop {
            self.reap(fd)?;
            if !self.pool.busy(i) {
                return Ok(());
            }
            if !waited {
                // Completions already queued do not count: the sender waits from here on.
                waited = true;
                self.pool.stats.slot_waits += 1;
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "zero-copy slot {i} not released by the kernel within {} s",
                    sock::IO_TIMEOUT.as_secs()
                )));
            }
            wait_errqueue(fd, 100)?;
        }
    }
}

impl BlockingSend for A3ZeroCopy {
    fn send(&mut self, fd: RawFd, seq: u64, n: usize, ts: u64) -> Result<Sent> {
        let first = self.next;
        if self.pool.busy(first) {
            self.wait_for_slot(fd, first)?;
        }
        // A run never wraps: the last slot of the pool ends it.
        let limit = n.clamp(1, self.pool.len() - first);
        let count = if limit == 1 {
            1
        } else {
            (0..limit)
                .take_while(|&k| !self.pool.busy(first + k))
                .count()
        };
        self.next = (first + count) % self.pool.len();
        self.pool.claim(first, count);
        for k in 0..count {
            let slot = self.pool.slot_mut(first + k);
            write_message(slot, seq + k as u64, ts, Body::new(self.verify, None));
        }
        self.pool.stats.messages += count as u64;
        // One slot as header and payload; a run of them as the one range they fill.
        let (mut iov, parts) = if count == 1 {
            (self.pool.iovecs(first), 2)
        } else {
            let run = self.pool.slots(first, count);
            let whole = libc::iovec {
                iov_base: run.as_ptr() as *mut libc::c_void,
                iov_len: run.len(),
            };
            ([whole, whole], 1)
        };
        let iov = &mut iov[..parts];
        let (mut at, mut calls) = (0, 0);
        while at < iov.len() {
            match sendmsg_once(fd, &mut iov[at..], MSG_ZEROCOPY | self.flags) {
                Ok(sent) => {
                    // Every successful zero-copy call takes the next id and owes a completion.
                    self.pool
                        .on_send(first, if ts != 0 { ts } else { now_ns() });
                    self.ids.on_send(first);
                    at = advance_iovecs(iov, sent, at);
                    calls += 1;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // Notification memory (optmem) exhausted: release some, then retry.
                    self.pool.stats.enobufs += 1;
                    self.reap(fd)?;
                    wait_errqueue(fd, 1)?;
                }
                Err(e) => return Err(sock::classify(e, "sendmsg(MSG_ZEROCOPY)")),
            }
        }
        Ok(Sent {
            messages: count,
            calls,
        })
    }

    fn set_eor(&mut self, eor: bool) {
        self.flags = if eor { libc::MSG_EOR } else { 0 };
    }

    fn reap_stamps(&mut self, fd: RawFd, out: &mut Vec<Stamp>) -> Result<()> {
        self.reap(fd)?;
        out.append(&mut self.stamps);
        Ok(())
    }

    fn finish(&mut self, fd: RawFd) -> Result<Option<ZeroCopyStats>> {
        let deadline = Instant::now() + ZC_DRAIN_TIMEOUT;
        loop {
            self.reap(fd)?;
            if self.pool.outstanding() == 0 {
                return Ok(Some(self.pool.stats.clone()));
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "{} zero-copy completions still outstanding {} s after the last send",
                    self.pool.outstanding(),
                    ZC_DRAIN_TIMEOUT.as_secs()
                )));
            }
            wait_errqueue(fd, 50)?;
        }
    }
}

impl Drop for A3ZeroCopy {
    fn drop(&mut self) {
        // Completions still owed (a drain that timed out, a flow that failed): the kernel may
        // still read the slots, so the pool is leaked rather than freed (see kmem).
        let owed = self.pool.outstanding() > 0;
        self.pool.hold(owed);
    }
}
