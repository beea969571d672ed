//! The io_uring engine one send at a time: how the `rr` and `rate` patterns (one
//! transaction, or one paced message, at a time per flow) run on io_uring, with the stream
//! engine's strategies and zero-copy slot gating.

use super::completion::{apply_zero_copy, decode, Event, Tag};
use super::group::register;
use super::modes::for_mode;
use super::strategy::UringSend;
use crate::error::{Error, Result};
use crate::kmem::Lent;
use crate::send::lifecycle::ZC_DRAIN_TIMEOUT;
use crate::send::threads::strategy::{BlockingSend, Sent};
use crate::sock::{self, IO_TIMEOUT};
use crate::spec::{RunSpec, UringOrdering};
use crate::time::now_ns;
use crate::uring_sys::ring::{enter, make_ring, Ring, WAIT_SLICE};
use io_uring::types;
use sendpath_record::end_v1::ZeroCopyStats;
use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

/// The io_uring engine with one send in flight: each message is one SQE, submitted and
/// waited for, a short send resubmitted from where it stopped. This is how the `rr` and `rate`
/// patterns (one transaction, or one paced message, at a time per flow) run on io_uring; the
/// strategies (and the zero-copy slot gating) are the stream engine's.
pub struct UringOneShot {
    // Field order matters: the ring (and its registered buffers) is dropped before the
    // strategy that owns the buffers.
    ring: Ring,
    /// Leaked instead of dropped if notifications are still owed (see kmem).
    strategy: Lent<Box<dyn UringSend>>,
    msg_len: u32,
}

impl UringOneShot {
    /// A ring for socket `fd` with the strategy of `spec.mode` (depth 1).
    pub fn new(spec: &RunSpec, fd: RawFd) -> Result<Self> {
        let one = RunSpec {
            uring: crate::spec::UringOpts {
                depth: 1,
                batch: 1,
                ordering: UringOrdering::Link,
            },
            batch: crate::spec::Batch::One,
            ..spec.clone()
        };
        let mut strategy = Lent::new(for_mode(&one));
        let zc = if spec.mode.facts().zero_copy {
            spec.zc_slots
        } else {
            0
        };
        let mut ring = make_ring(8, (16 + 2 * zc as u32).next_power_of_two())?;
        register(&mut ring, spec, &[fd], vec![&mut **strategy])?;
        Ok(UringOneShot {
            ring,
            strategy,
            msg_len: spec.msg_size as u32,
        })
    }

    /// Waits (bounded by one slice) for completions; applies notifications; returns the
    /// result of the send, if its CQE arrived.
    fn reap(&mut self, wait: bool) -> Result<Option<i32>> {
        let slice = types::Timespec::from(WAIT_SLICE);
        let args = types::SubmitArgs::new().timespec(&slice);
        let want = usize::from(wait);
        enter(&self.ring.ring.submitter(), want, &args)
            .map_err(|e| Error::io("io_uring_enter", e))?;
        let mut result = None;
        let mut cq = self.ring.ring.completion();
        cq.sync();
        let now = now_ns();
        for cqe in &mut cq {
            let (tag, event) = decode(&cqe);
            apply_zero_copy(&mut **self.strategy, tag, event, now)?;
            if let Event::Sent { res, .. } = event {
                result = Some(res);
            }
        }
        Ok(result)
    }
}

impl BlockingSend for UringOneShot {
    /// One message per SQE whatever `n` (rr and rate send one at a time).
    fn send(&mut self, _fd: RawFd, seq: u64, _n: usize, ts: u64) -> Result<Sent> {
        let deadline = Instant::now() + IO_TIMEOUT;
        let buf = loop {
            if let Some((b, _)) = self.strategy.prepare(0, seq, ts, 1) {
                break b;
            }
            // A3: every slot still owed a notification.
            self.reap(true)?;
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "no SEND_ZC notification freed a slot within {} s",
                    IO_TIMEOUT.as_secs()
                )));
            }
        };
        let (mut done, mut calls) = (0u32, 0u64);
        while done < self.msg_len {
            calls += 1;
            let e = self
                .strategy
                .sqe(types::Fixed(0), buf, done, now_ns(), false)
                .user_data(Tag::link(0, 0, buf).encode());
            // SAFETY: the buffer belongs to the strategy and is not handed out again before
            // this send's CQE (and, for zero-copy, its notification) arrives.
            unsafe { self.ring.ring.submission().push(&e) }.map_err(|_| {
                Error::Internal("the io_uring submission queue of a one-send ring was full".into())
            })?;
            let res = loop {
                if let Some(res) = self.reap(true)? {
                    break res;
                }
                if Instant::now() >= deadline {
                    return Err(Error::Timeout(format!(
                        "io_uring send: the peer made no progress for {} s",
                        IO_TIMEOUT.as_secs()
                    )));
                }
            };
            match res {
                r if r > 0 => done += r as u32,
                0 => {
                    return Err(Error::PeerClosed(
                        "during an io_uring send (0 bytes)".into(),
                    ))
                }
                r if r == -libc::EINTR || r == -libc::EAGAIN => {}
                r => {
                    return Err(sock::classify(
                        io::Error::from_raw_os_error(-r),
                        "io_uring send",
                    ))
                }
            }
        }
        Ok(Sent { messages: 1, calls })
    }

    fn finish(&mut self, _fd: RawFd) -> Result<Option<ZeroCopyStats>> {
        let deadline = Instant::now() + ZC_DRAIN_TIMEOUT;
        while self.owed() > 0 {
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "{} SEND_ZC notifications still outstanding {} s after the last send",
                    self.owed(),
                    ZC_DRAIN_TIMEOUT.as_secs()
                )));
            }
            self.reap(true)?;
        }
        Ok(self.strategy.zero_copy_ref().map(|z| z.stats()))
    }
}

impl UringOneShot {
    fn owed(&self) -> u64 {
        self.strategy.zero_copy_ref().map_or(0, |z| z.owed())
    }
}

impl Drop for UringOneShot {
    fn drop(&mut self) {
        let owed = self.owed() > 0;
        self.strategy.hold(owed);
    }
}
