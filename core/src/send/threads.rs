//! The blocking-threads engine: one thread per flow, one blocking send call per message.
//!
//! Each mode is one type implementing [`BlockingSend`]; [`run_flow`] is the one loop that
//! drives any of them through the measured window.

use crate::cpu::{SideCounters, ThreadCounters};
use crate::error::{Error, Result};
use crate::send::Window;
use crate::sock::{self, advance_iovecs, sendmsg_once, MSG_ZEROCOPY, SO_ZEROCOPY};
use crate::spec::{Mode, RunSpec};
use crate::time::{now_ns, wait_until};
use crate::wire::{fill_payload, put_header, Hello, SenderReport, HEADER_LEN};
use crate::zerocopy::{read_errqueue, wait_errqueue, CallIdMap, SlotPool, ZeroCopyStats};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Without latency the clock is read once per this many messages (to find the window's end).
const CLOCK_EVERY: u64 = 32;
/// Environment variable that makes A3 act as on a kernel without SO_ZEROCOPY (tests only).
pub const NO_SO_ZEROCOPY_ENV: &str = "SENDPATH_TEST_NO_SO_ZEROCOPY";
/// Longest teardown may wait for outstanding zero-copy completions.
pub const ZC_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// One send strategy of the blocking engine.
pub trait BlockingSend: Send {
    /// Sends message `seq` stamped `send_ts_ns`; when it returns, every byte of the message has
    /// been handed to the kernel (short sends are resumed, never interleaved).
    fn send(&mut self, fd: RawFd, seq: u64, send_ts_ns: u64) -> Result<()>;

    /// Ends the flow: waits (bounded) until the kernel has released every buffer it still
    /// holds, and returns the zero-copy accounting, if the strategy does zero-copy.
    fn finish(&mut self, _fd: RawFd) -> Result<Option<ZeroCopyStats>> {
        Ok(None)
    }
}

/// Builds the blocking strategy for `spec.mode` on socket `fd`.
pub fn for_mode(spec: &RunSpec, fd: RawFd) -> Result<Box<dyn BlockingSend>> {
    Ok(match spec.mode {
        Mode::A1 => Box::new(A1Copy::new(spec.msg_size, spec.verify)),
        Mode::A2 => Box::new(A2Sendmsg::new(spec.msg_size, spec.verify)),
        Mode::A3 => Box::new(A3ZeroCopy::new(
            fd,
            spec.msg_size,
            spec.zc_slots,
            spec.verify,
        )?),
    })
}

/// Drives `strategy` through the window and on until the receiver asks for the end frame
/// ([`crate::wire::END_REQUEST`], bounded by [`sock::IO_TIMEOUT`] after the window); returns
/// the report and the error that ended the flow early, if any. Counters and the message count
/// cover the window only. With `pace` (the `rate` pattern's hello) message `seq` is not sent
/// before its intended time; a sender that falls behind sends at once and never skips (open
/// loop), so the lateness shows in the latency measured from the intended time.
pub fn run_flow(
    strategy: &mut dyn BlockingSend,
    fd: RawFd,
    spec: &RunSpec,
    window: Window,
    pace: Option<&Hello>,
) -> (SenderReport, Result<()>) {
    let latency = spec.records_latency();
    let mut seq: u64 = 0;
    let mut first_in_window: Option<u64> = None;
    let mut end_of_window: Option<u64> = None;
    let mut counters: Option<ThreadCounters> = None;
    let mut side: Option<SideCounters> = None;
    let end_deadline = window.end + sock::IO_TIMEOUT.as_nanos() as u64;
    let mut now = now_ns();
    let mut result = Ok(());
    loop {
        if now >= window.end {
            if end_of_window.is_none() {
                end_of_window = Some(seq);
                side = counters.take().map(|c| c.stop());
            }
            // After the window: one non-blocking read per message for the receiver's request.
            match end_requested(fd, now >= end_deadline) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Some(h) = pace {
            let intended = h.intended_ns(seq);
            if now < intended {
                wait_until(intended.min(end_deadline));
                now = now_ns();
                continue;
            }
        }
        if first_in_window.is_none() && now >= window.start && now < window.end {
            first_in_window = Some(seq);
            counters = Some(ThreadCounters::start());
        }
        // The timestamp is the clock read just before this send call (the loop's only read).
        let ts = if latency { now } else { 0 };
        if let Err(e) = strategy.send(fd, seq, ts) {
            result = Err(e);
            break;
        }
        seq += 1;
        if latency || seq % CLOCK_EVERY == 0 || end_of_window.is_some() {
            now = now_ns();
        }
    }
    if let Some(c) = counters.take() {
        side = Some(c.stop());
    }
    let messages = first_in_window.map_or(0, |f| end_of_window.unwrap_or(seq).saturating_sub(f));
    let zerocopy = match strategy.finish(fd) {
        Ok(z) => z,
        Err(e) => {
            if result.is_ok() {
                result = Err(e);
            }
            None
        }
    };
    let report = SenderReport {
        messages,
        bytes: messages * spec.msg_size as u64,
        counters: side.unwrap_or_else(SideCounters::zero),
        zerocopy,
        send_errors: 0,
        error: None,
        uring: None,
    };
    (report, result)
}

/// Whether the receiver has asked for the end frame ([`crate::wire::END_REQUEST`]), without
/// blocking. `late`: the time to ask is over, so not having asked is an error.
pub(crate) fn end_requested(fd: RawFd, late: bool) -> Result<bool> {
    let mut b = [0u8; 1];
    // SAFETY: b is a live, writable 1-byte buffer.
    let n = unsafe { libc::recv(fd, b.as_mut_ptr().cast(), 1, libc::MSG_DONTWAIT) };
    match n {
        1 if b[0] == crate::wire::END_REQUEST => Ok(true),
        1 => Err(Error::Protocol(format!(
            "the receiver sent byte {:#04x} where only the end request ({:#04x}) may come",
            b[0],
            crate::wire::END_REQUEST
        ))),
        0 => Err(Error::PeerClosed(
            "the receiver closed the connection before asking for the end frame".into(),
        )),
        _ => {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) if !late => Ok(false),
                Some(libc::EAGAIN) | Some(libc::EINTR) => Err(Error::Timeout(format!(
                    "the receiver did not ask for the end frame within {} s of the window's end",
                    sock::IO_TIMEOUT.as_secs()
                ))),
                _ => Err(sock::classify(e, "read the receiver's end request")),
            }
        }
    }
}

/// A1: header and payload assembled in a staging buffer (a user-space memcpy), then `send()`.
pub struct A1Copy {
    staging: Vec<u8>,
    payload: Vec<u8>,
    verify: bool,
}

impl A1Copy {
    /// Staging buffer and payload source for `msg_size`-byte messages.
    pub fn new(msg_size: usize, verify: bool) -> Self {
        A1Copy {
            staging: vec![0; msg_size],
            payload: vec![0xA5; msg_size - HEADER_LEN],
            verify,
        }
    }
}

impl BlockingSend for A1Copy {
    #[inline]
    fn send(&mut self, fd: RawFd, seq: u64, ts: u64) -> Result<()> {
        put_header(&mut self.staging, seq, ts);
        if self.verify {
            fill_payload(&mut self.staging[HEADER_LEN..], seq);
        } else {
            // The assembly copy that makes A1 a two-copy path.
            self.staging[HEADER_LEN..].copy_from_slice(&self.payload);
        }
        sock::send_all(fd, &self.staging)
    }
}

/// A2: `sendmsg()` with an iovec [header, payload] over stable buffers; no assembly.
pub struct A2Sendmsg {
    header: [u8; HEADER_LEN],
    payload: Vec<u8>,
    verify: bool,
}

impl A2Sendmsg {
    /// Header and payload buffers for `msg_size`-byte messages.
    pub fn new(msg_size: usize, verify: bool) -> Self {
        A2Sendmsg {
            header: [0; HEADER_LEN],
            payload: vec![0xA5; msg_size - HEADER_LEN],
            verify,
        }
    }
}

impl BlockingSend for A2Sendmsg {
    #[inline]
    fn send(&mut self, fd: RawFd, seq: u64, ts: u64) -> Result<()> {
        put_header(&mut self.header, seq, ts);
        if self.verify {
            fill_payload(&mut self.payload, seq);
        }
        let mut iov = [
            libc::iovec {
                iov_base: self.header.as_mut_ptr() as *mut libc::c_void,
                iov_len: HEADER_LEN,
            },
            libc::iovec {
                iov_base: self.payload.as_mut_ptr() as *mut libc::c_void,
                iov_len: self.payload.len(),
            },
        ];
        // A zero-length payload iovec (16-byte messages) is skipped by advance_iovecs.
        let mut first = 0;
        while first < iov.len() {
            let n =
                sendmsg_once(fd, &mut iov[first..], 0).map_err(|e| sock::classify(e, "sendmsg"))?;
            first = advance_iovecs(&mut iov, n, first);
        }
        Ok(())
    }
}

/// A3 on threads: `sendmsg(MSG_ZEROCOPY)` from a pool of slots; completions reaped from the
/// socket error queue. Invariant: slot `i` is written only when the pool says no send that
/// referenced it is still owed a completion.
pub struct A3ZeroCopy {
    pool: SlotPool,
    ids: CallIdMap,
    next: usize,
    verify: bool,
}

impl A3ZeroCopy {
    /// Enables SO_ZEROCOPY on `fd` (an error if the kernel cannot: A3 never falls back to a
    /// copying send) and allocates `slots` message buffers.
    pub fn new(fd: RawFd, msg_size: usize, slots: usize, verify: bool) -> Result<Self> {
        // Test hook: behave as a kernel without SO_ZEROCOPY, so the user-facing error path
        // can be exercised through the real binaries on a kernel that has it.
        let refused = if std::env::var_os(NO_SO_ZEROCOPY_ENV).is_some() {
            Err(std::io::Error::from_raw_os_error(libc::ENOPROTOOPT))
        } else {
            sock::setsockopt_int(fd, libc::SOL_SOCKET, SO_ZEROCOPY, 1)
        };
        refused.map_err(|e| {
            Error::Unsupported(format!(
                "A3 needs SO_ZEROCOPY (Linux >= 4.14) and this kernel refused it: {e}"
            ))
        })?;
        Ok(A3ZeroCopy {
            pool: SlotPool::separate(slots, msg_size),
            ids: CallIdMap::default(),
            next: 0,
            verify,
        })
    }

    /// Applies every notification waiting in the error queue.
    fn reap(&mut self, fd: RawFd) -> Result<()> {
        let mut now = None;
        while let Some(c) = read_errqueue(fd)? {
            let t = *now.get_or_insert_with(now_ns);
            self.ids.complete(c.lo, c.hi, c.copied, t, &mut self.pool)?;
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
    fn send(&mut self, fd: RawFd, seq: u64, ts: u64) -> Result<()> {
        let i = self.next;
        self.next = (self.next + 1) % self.pool.len();
        if self.pool.busy(i) {
            self.wait_for_slot(fd, i)?;
        }
        self.pool.claim(i, 1);
        let slot = self.pool.slot_mut(i);
        put_header(slot, seq, ts);
        if self.verify {
            fill_payload(&mut slot[HEADER_LEN..], seq);
        }
        self.pool.stats.messages += 1;
        let mut iov = self.pool.iovecs(i);
        let mut first = 0;
        while first < iov.len() {
            match sendmsg_once(fd, &mut iov[first..], MSG_ZEROCOPY) {
                Ok(n) => {
                    // Every successful zero-copy call takes the next id and owes a completion.
                    self.pool.on_send(i, if ts != 0 { ts } else { now_ns() });
                    self.ids.on_send(i);
                    first = advance_iovecs(&mut iov, n, first);
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
