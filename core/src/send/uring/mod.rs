//! The io_uring engine: one ring per worker thread, the flows of that thread multiplexed on it.
//!
//! Each mode is one type implementing [`UringSend`] (it owns the flow's message buffers and
//! builds its SQEs); [`run_group`] is the one loop that drives the flows of a thread.
//!
//! **Ordering.** Several sends in flight on one TCP socket can be issued out of order (a send
//! that would block is poll-retried while the next one goes ahead; DESIGN.md section 7). So a
//! flow has at most one *chain* in flight: up to `depth` sends linked with `IOSQE_IO_LINK`,
//! each with `MSG_WAITALL` (without it a partial send counts as success and the next link
//! would interleave its bytes). A chain never straddles two `io_uring_enter` calls, and the
//! next chain of a flow is submitted only when every CQE of the previous one has arrived.
//!
//! **Bundles.** With `--uring-ordering bundle` (the default for A1 and A2) a flow has one
//! `Send` bundle in flight instead of a chain: its next `depth` messages become entries of
//! the flow's provided-buffer ring (A1: the staged message; A2: header, then payload), and the
//! kernel sends as many entries as the socket takes in one `sendmsg`, in ring order. A short
//! bundle completes with the bytes sent; the kernel has consumed every entry it touched, so
//! the unsent end of the entry it stopped inside goes out as a plain `Send` (`MSG_WAITALL`,
//! linked before the next bundle), and the untouched entries stay in the ring for that bundle.
//!
//! **Short sends.** With `MSG_WAITALL` the kernel retries a partial TCP send itself; a result
//! below the length (an error after partial progress, a signal) breaks the chain, and the
//! later links complete with `-ECANCELED`. Once the whole chain has completed, its unfinished
//! tail (the short send from where it stopped, then the cancelled ones) is submitted again as
//! a new chain, before any new message.
//!
//! **Zero-copy (A3).** `SEND_ZC` over registered buffers: each slot of the flow's
//! [`SlotPool`] is one fixed buffer, named in the CQE's user_data. A result CQE with `F_MORE`
//! is followed by exactly one notification CQE (`F_NOTIF`) with the same user_data; only the
//! notification releases the slot. `IORING_SEND_ZC_REPORT_USAGE` makes the notification say
//! whether the kernel copied after all (bit 31 of res: tested as a bit, never by sign).
//! Teardown waits (bounded) for every notification.

use crate::cpu::SideCounters;
use crate::error::{Error, Result};
use crate::recv::WindowTracker;
use crate::send::threads::ZC_DRAIN_TIMEOUT;
use crate::send::{hello_for, FlowResults, SenderOutcome, Window};
use crate::sock::{self, advance_iovecs, IO_TIMEOUT};
use crate::spec::{Mode, RunSpec, UringOrdering};
use crate::time::now_ns;
use crate::wire::{encode_end, fill_payload, put_header, SenderReport, UringSetup, HEADER_LEN};
use crate::zerocopy::{SlotPool, ZeroCopyStats};
use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// `IORING_SEND_ZC_REPORT_USAGE` (Linux 6.2; private in the io-uring crate): the notification
/// reports whether the kernel fell back to copying.
pub const IORING_SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
/// `IORING_NOTIF_USAGE_ZC_COPIED`: bit of a notification's res (as u32) meaning "copied".
pub const IORING_NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;

/// Most SQEs in one ring's submission queue (a chain always fits: depth <= 1024).
const MAX_SQ_ENTRIES: u32 = 4096;
/// Longest single wait inside `io_uring_enter`, so the loop can check its deadlines.
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(200);
/// Resubmissions of a chain in a row that made no progress before the flow gives up.
const MAX_STALLS: u32 = 1000;
/// user_data position of a flow's send bundle (chain positions are below MAX_URING_DEPTH).
const BUNDLE_POS: usize = 0xffff;
/// user_data position of the plain send that finishes the entry a short bundle stopped in.
const LOOSE_POS: usize = 0xfffe;
/// user_data position of the flow's one-byte receive of the end request.
const END_POS: usize = 0xfffd;
/// user_data position of the cancellation of that receive.
const CANCEL_POS: usize = 0xfffc;

/// The opcodes sendpath uses, by the names the host facts list.
pub fn known_ops() -> [(&'static str, u8); 6] {
    [
        ("send", opcode::Send::CODE),
        ("sendmsg", opcode::SendMsg::CODE),
        ("send_zc", opcode::SendZc::CODE),
        ("sendmsg_zc", opcode::SendMsgZc::CODE),
        ("recv", opcode::Recv::CODE),
        ("recvmsg", opcode::RecvMsg::CODE),
    ]
}

/// The opcode a mode submits on this engine, with its name.
pub fn op_for(mode: Mode) -> (&'static str, u8) {
    match mode {
        Mode::A1 => ("send", opcode::Send::CODE),
        Mode::A2 => ("sendmsg", opcode::SendMsg::CODE),
        Mode::A3 => ("send_zc", opcode::SendZc::CODE),
    }
}

/// Why io_uring cannot be used here, from the setup errno (and `kernel.io_uring_disabled`).
fn unavailable(e: &io::Error) -> Error {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| format!("kernel.io_uring_disabled = {}", s.trim()))
        .unwrap_or_else(|_| "kernel.io_uring_disabled not present".into());
    let why = match e.raw_os_error() {
        Some(libc::EPERM) => "io_uring_setup was refused (EPERM): disabled by sysctl, or blocked by a seccomp profile",
        Some(libc::ENOSYS) => "io_uring_setup does not exist (ENOSYS): kernel built without io_uring, or a sandbox hides it",
        _ => "io_uring_setup failed",
    };
    Error::Unsupported(format!("io_uring unavailable: {why} ({disabled}; {e})"))
}

/// Probes io_uring once: the supported opcodes sendpath knows, or why io_uring is unusable.
pub fn probe_ops() -> std::result::Result<Vec<String>, String> {
    let ring: IoUring = IoUring::<squeue::Entry, cqueue::Entry>::builder()
        .build(2)
        .map_err(|e| unavailable(&e).to_string())?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("io_uring probe failed: {e}"))?;
    Ok(known_ops()
        .iter()
        .filter(|(_, c)| probe.is_supported(*c))
        .map(|(n, _)| n.to_string())
        .collect())
}

/// Why this kernel cannot send bundles (`--uring-ordering bundle`), or None if it can.
pub fn bundle_missing() -> Option<String> {
    let ring: IoUring = match IoUring::<squeue::Entry, cqueue::Entry>::builder().build(2) {
        Ok(r) => r,
        Err(e) => return Some(unavailable(&e).to_string()),
    };
    (!ring.params().is_feature_recvsend_bundle()).then(|| {
        "this kernel's io_uring has no send bundles (IORING_FEAT_RECVSEND_BUNDLE, Linux 6.10)"
            .to_string()
    })
}

/// Why `mode` cannot run on the io_uring engine here, or None if it can (for tests that skip).
pub fn missing_for(mode: Mode) -> Option<String> {
    match probe_ops() {
        Err(e) => Some(e),
        Ok(ops) => lacks_op(mode, |code| {
            known_ops()
                .iter()
                .any(|(n, c)| *c == code && ops.iter().any(|o| o == n))
        }),
    }
}

/// The error for `mode` on a kernel whose io_uring supports the opcodes `supported` says
/// yes to, or None if it has the one the mode needs.
fn lacks_op(mode: Mode, supported: impl Fn(u8) -> bool) -> Option<String> {
    let (name, code) = op_for(mode);
    (!supported(code)).then(|| {
        format!(
            "this kernel's io_uring lacks the {name} opcode that {mode} needs{}",
            if mode.facts().zero_copy {
                " (SEND_ZC: Linux >= 6.0); A3 never falls back to a copying send"
            } else {
                ""
            }
        )
    })
}

/// `io_uring_enter`: submits, and waits for `want` completions at most as long as `args`'
/// timeout. A timeout, a signal or a full CQ is no error: the callers loop and check their
/// own deadlines.
pub(crate) fn enter(
    submitter: &io_uring::Submitter<'_>,
    want: usize,
    args: &types::SubmitArgs<'_, '_>,
) -> io::Result<()> {
    match submitter.submit_with_args(want, args) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// A ring and how it was set up.
pub(crate) struct Ring {
    pub(crate) ring: IoUring,
    /// Setup flags the kernel accepted.
    flags: Vec<String>,
    /// The ring fd is registered (`IORING_ENTER_REGISTERED_RING`: no fd lookup per enter).
    registered_ring_fd: bool,
}

/// Makes a ring with the fastest setup this kernel accepts: SINGLE_ISSUER + DEFER_TASKRUN
/// (measured 1.10x blocking sends at 64 B; a default ring 0.75x), dropping flags on EINVAL.
pub(crate) fn make_ring(sq: u32, cq: u32) -> Result<Ring> {
    type B = io_uring::Builder<squeue::Entry, cqueue::Entry>;
    type Tier = (&'static [&'static str], fn(&mut B));
    let tiers: [Tier; 4] = [
        (&["single_issuer", "defer_taskrun", "submit_all"], |b| {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_submit_all();
        }),
        (&["single_issuer", "coop_taskrun", "submit_all"], |b| {
            b.setup_single_issuer()
                .setup_coop_taskrun()
                .setup_submit_all();
        }),
        (&["coop_taskrun"], |b| {
            b.setup_coop_taskrun();
        }),
        (&[], |_| {}),
    ];
    let mut last = None;
    for (names, apply) in tiers {
        let mut b = IoUring::<squeue::Entry, cqueue::Entry>::builder();
        b.setup_clamp().setup_cqsize(cq);
        apply(&mut b);
        match b.build(sq) {
            Ok(ring) => {
                return Ok(Ring {
                    ring,
                    flags: names.iter().map(|s| s.to_string()).collect(),
                    registered_ring_fd: false,
                })
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)) => {
                return Err(unavailable(&e))
            }
            Err(e) => return Err(Error::io("io_uring_setup", e)),
        }
    }
    Err(Error::io(
        "io_uring_setup refused every flag set, even none",
        last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)),
    ))
}

/// One send strategy of the io_uring engine: the flow's message buffers and how its SQEs are
/// built. Buffers are named by a `u16` buffer id that travels in the SQE's user_data; a
/// buffer holds one message, or (A3 coalescing) several back to back. A buffer is rewritten
/// only when [`prepare`](UringSend::prepare) hands it out again, which the loop does only after
/// every send over it completed (and, for zero-copy, was notified).
pub trait UringSend: Send {
    /// Writes messages `seq..` stamped `ts` for chain position `pos` (0-based; the loop never
    /// has more than `depth` positions in flight), at most `max` of them, and returns the id of
    /// the buffer holding them and how many it holds (at least 1), or None if no buffer is
    /// free (A3: every slot still owed a notification). Only A3 puts more than one message in
    /// a buffer.
    fn prepare(&mut self, pos: usize, seq: u64, ts: u64, max: usize) -> Option<(u16, usize)>;

    /// The SQE that sends the bytes of buffer `buf` from `done` on, on registered file `fd`,
    /// with `MSG_WAITALL` (the loop adds the link flag and user_data); `now` is the clock.
    fn sqe(&mut self, fd: types::Fixed, buf: u16, done: u32, now: u64) -> squeue::Entry;

    /// Buffer `buf`'s message as the byte ranges a send bundle puts in the provided-buffer
    /// ring, in order (the second may be empty), or None if the mode has no bundle form.
    fn segments(&self, _buf: u16) -> Option<[&[u8]; 2]> {
        None
    }

    /// Buffers to register with the ring, in id order (A3: every slot); none by default.
    fn fixed_buffers(&self) -> Vec<libc::iovec> {
        Vec::new()
    }

    /// The index, in the ring's registered buffer table, of this flow's buffer 0.
    fn set_fixed_base(&mut self, _base: u16) {}

    /// A result CQE for `buf` arrived at `now` with `flags`: a zero-copy strategy learns
    /// whether a notification follows (`F_MORE`) or the buffer is released now.
    fn on_result(&mut self, _buf: u16, _flags: u32, _now: u64) {}

    /// A notification CQE for `buf` arrived at `now` with `res`; the buffer may be reused if
    /// no other send over it is owed one.
    fn on_notif(&mut self, buf: u16, _res: i32, _now: u64) -> Result<()> {
        Err(Error::Protocol(format!(
            "notification CQE for buffer {buf} of a strategy that does not send zero-copy"
        )))
    }

    /// Notifications still owed by the kernel.
    fn owed(&self) -> u64 {
        0
    }

    /// Zero-copy accounting, for a strategy that does zero-copy.
    fn zerocopy(&self) -> Option<ZeroCopyStats> {
        None
    }
}

/// Builds the io_uring strategy for `spec.mode` (depth buffers, or the slot pool for A3).
pub fn for_mode(spec: &RunSpec) -> Box<dyn UringSend> {
    let depth = spec.uring.depth;
    match spec.mode {
        Mode::A1 => Box::new(A1UringSend::new(spec.msg_size, depth, spec.verify)),
        Mode::A2 => Box::new(A2UringSendMsg::new(spec.msg_size, depth, spec.verify)),
        Mode::A3 => Box::new(A3UringSendZc::new(
            spec.msg_size,
            spec.zc_slots,
            spec.verify,
            spec.uring.ordering == UringOrdering::Coalesce,
        )),
    }
}

/// A1 on io_uring: header and payload assembled in a staging buffer (the memcpy that makes A1
/// a two-copy path), then `Send` of it. One staging buffer per chain position.
pub struct A1UringSend {
    staging: Vec<Box<[u8]>>,
    payload: Vec<u8>,
    verify: bool,
}

impl A1UringSend {
    /// `depth` staging buffers for `msg_size`-byte messages.
    pub fn new(msg_size: usize, depth: usize, verify: bool) -> Self {
        A1UringSend {
            staging: (0..depth)
                .map(|_| vec![0u8; msg_size].into_boxed_slice())
                .collect(),
            payload: vec![0xA5; msg_size - HEADER_LEN],
            verify,
        }
    }
}

impl UringSend for A1UringSend {
    #[inline]
    fn prepare(&mut self, pos: usize, seq: u64, ts: u64, _max: usize) -> Option<(u16, usize)> {
        let b = &mut self.staging[pos];
        put_header(b, seq, ts);
        if self.verify {
            fill_payload(&mut b[HEADER_LEN..], seq);
        } else {
            b[HEADER_LEN..].copy_from_slice(&self.payload);
        }
        Some((pos as u16, 1))
    }

    #[inline]
    fn sqe(&mut self, fd: types::Fixed, buf: u16, done: u32, _now: u64) -> squeue::Entry {
        let b = &self.staging[buf as usize];
        let rest = &b[done as usize..];
        opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_WAITALL)
            .build()
    }

    fn segments(&self, buf: u16) -> Option<[&[u8]; 2]> {
        Some([&self.staging[buf as usize], &[]])
    }
}

/// One A2 message in flight: its header, and the msghdr/iovecs the kernel reads.
struct A2Msg {
    header: [u8; HEADER_LEN],
    /// Index into the payload buffers (0 unless verifying: then one per position).
    payload: usize,
    iov: [libc::iovec; 2],
    msg: libc::msghdr,
}

/// A2 on io_uring: `SendMsg` with the iovec [header, payload] over stable buffers, no assembly.
/// Headers (and, with verify, payloads) are per chain position; without verify every position
/// shares one payload buffer, as the threads engine does.
pub struct A2UringSendMsg {
    /// Never resized: the kernel holds pointers into these while sends are in flight.
    msgs: Box<[A2Msg]>,
    payloads: Vec<Box<[u8]>>,
    verify: bool,
}

// SAFETY: the raw pointers in A2Msg point into buffers this struct owns (boxed, never moved);
// the struct moves between threads as a whole.
unsafe impl Send for A2UringSendMsg {}

impl A2UringSendMsg {
    /// Headers and payload buffers for `depth` positions of `msg_size`-byte messages.
    pub fn new(msg_size: usize, depth: usize, verify: bool) -> Self {
        let n_payloads = if verify { depth } else { 1 };
        A2UringSendMsg {
            msgs: (0..depth)
                .map(|i| A2Msg {
                    header: [0; HEADER_LEN],
                    payload: if verify { i } else { 0 },
                    iov: [libc::iovec {
                        iov_base: std::ptr::null_mut(),
                        iov_len: 0,
                    }; 2],
                    // SAFETY: msghdr is plain data; zeroed is valid (no name, no control).
                    msg: unsafe { std::mem::zeroed() },
                })
                .collect(),
            payloads: (0..n_payloads)
                .map(|_| vec![0xA5u8; msg_size - HEADER_LEN].into_boxed_slice())
                .collect(),
            verify,
        }
    }
}

impl UringSend for A2UringSendMsg {
    #[inline]
    fn prepare(&mut self, pos: usize, seq: u64, ts: u64, _max: usize) -> Option<(u16, usize)> {
        let m = &mut self.msgs[pos];
        put_header(&mut m.header, seq, ts);
        if self.verify {
            fill_payload(&mut self.payloads[m.payload], seq);
        }
        Some((pos as u16, 1))
    }

    #[inline]
    fn sqe(&mut self, fd: types::Fixed, buf: u16, done: u32, _now: u64) -> squeue::Entry {
        let m = &mut self.msgs[buf as usize];
        let p = &mut self.payloads[m.payload];
        m.iov = [
            libc::iovec {
                iov_base: m.header.as_mut_ptr() as *mut libc::c_void,
                iov_len: HEADER_LEN,
            },
            libc::iovec {
                iov_base: p.as_mut_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            },
        ];
        // A zero-length payload iovec (16-byte messages) is skipped by advance_iovecs.
        let first = advance_iovecs(&mut m.iov, done as usize, 0).min(1);
        m.msg.msg_iov = m.iov[first..].as_mut_ptr();
        m.msg.msg_iovlen = (2 - first) as _;
        opcode::SendMsg::new(fd, &m.msg)
            .flags(libc::MSG_WAITALL as u32)
            .build()
    }

    fn segments(&self, buf: u16) -> Option<[&[u8]; 2]> {
        let m = &self.msgs[buf as usize];
        Some([&m.header, &self.payloads[m.payload]])
    }
}

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
            let s = seq + k as u64;
            put_header(slot, s, ts);
            if self.verify {
                fill_payload(&mut slot[HEADER_LEN..], s);
            }
        }
        self.pool.stats.messages += n as u64;
        self.next = (first + n) % self.pool.len();
        Some((first as u16, n))
    }

    #[inline]
    fn sqe(&mut self, fd: types::Fixed, buf: u16, done: u32, now: u64) -> squeue::Entry {
        let first = buf as usize;
        self.pool.on_send(first, now);
        let rest = &self.pool.slots(first, self.pool.run_len(first))[done as usize..];
        opcode::SendZc::new(fd, rest.as_ptr(), rest.len() as u32)
            .buf_index(Some(self.base))
            .flags(libc::MSG_WAITALL)
            .zc_flags(IORING_SEND_ZC_REPORT_USAGE)
            .build()
    }

    fn fixed_buffers(&self) -> Vec<libc::iovec> {
        vec![self.pool.arena_iovec()]
    }

    fn set_fixed_base(&mut self, base: u16) {
        self.base = base;
    }

    #[inline]
    fn on_result(&mut self, buf: u16, flags: u32, now: u64) {
        if !cqueue::more(flags) {
            // Failed before the kernel took the pages: no notification will come.
            self.pool.on_unsent(buf as usize, now);
        }
    }

    #[inline]
    fn on_notif(&mut self, buf: u16, res: i32, now: u64) -> Result<()> {
        let i = buf as usize;
        if !self.pool.owes(i) {
            return Err(Error::Protocol(format!(
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

    fn zerocopy(&self) -> Option<ZeroCopyStats> {
        Some(self.pool.stats.clone())
    }
}

/// A provided-buffer ring (`IORING_REGISTER_PBUF_RING`) feeding one flow's send bundles. The
/// memory is ours (page aligned, zeroed); the kernel reads the entries between its head and
/// the tail we publish, and a bundle consumes them in ring order.
pub(crate) struct BufRing {
    base: *mut types::BufRingEntry,
    /// Entries (a power of two, at most 32768).
    entries: u16,
    /// Our tail: entries pushed, published to the kernel by [`BufRing::publish`].
    tail: u16,
}

impl BufRing {
    const ALIGN: usize = 4096;

    fn layout(entries: u16) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(
            entries as usize * std::mem::size_of::<types::BufRingEntry>(),
            Self::ALIGN,
        )
        .expect("buffer ring layout")
    }

    /// A ring of at least `min_entries` entries.
    pub(crate) fn new(min_entries: usize) -> BufRing {
        let entries = min_entries.clamp(1, 1 << 15).next_power_of_two() as u16;
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { std::alloc::alloc_zeroed(Self::layout(entries)) };
        if base.is_null() {
            std::alloc::handle_alloc_error(Self::layout(entries));
        }
        BufRing {
            base: base.cast(),
            entries,
            tail: 0,
        }
    }

    /// Appends `seg` (the caller keeps it alive and unchanged until a bundle consumed it, and
    /// never has more than `entries` unconsumed).
    pub(crate) fn push(&mut self, seg: &[u8], bid: u16) {
        let i = (self.tail & (self.entries - 1)) as usize;
        // SAFETY: i < entries; the kernel does not write entries of a send buffer ring.
        let e = unsafe { &mut *self.base.add(i) };
        e.set_addr(seg.as_ptr() as u64);
        e.set_len(seg.len() as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Registers this ring as buffer group `bgid` of `ring`. The caller drops `ring` (or
    /// leaks this) before this ring: the kernel reads its entries until then.
    pub(crate) fn register(&self, ring: &IoUring, bgid: u16) -> io::Result<()> {
        // SAFETY: the memory is ours and stays allocated until after the ring (see above).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(self.base as u64, self.entries, bgid, 0)
        }
    }

    /// Makes the pushed entries visible to the kernel.
    pub(crate) fn publish(&self) {
        // SAFETY: the tail field lives in entry 0 of our allocation, is 2-byte aligned, and the
        // kernel only reads it: an atomic release store orders the entries before it.
        unsafe {
            let tail = types::BufRingEntry::tail(self.base) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout. The ring that read it is gone (run_group
        // drops the ring first, and leaks the flows if sends may still be in flight).
        unsafe { std::alloc::dealloc(self.base.cast(), Self::layout(self.entries)) }
    }
}

/// A byte range of a message buffer: where it starts and how many bytes are left.
type Seg = (*const u8, u32);

/// `IORING_REGISTER_PBUF_STATUS` (Linux 6.8; not wrapped by the io-uring crate): reads the
/// kernel's head of a provided-buffer ring.
const IORING_REGISTER_PBUF_STATUS: libc::c_long = 26;
/// Most segments one `SendMsg` carries (the kernel's UIO_MAXIOV).
const MAX_IOV: usize = 1024;

/// `struct io_uring_buf_status`.
#[repr(C)]
struct BufStatus {
    buf_group: u32,
    head: u32,
    resv: [u32; 8],
}

/// The kernel's head of buffer ring `bgid`: how many entries bundles consumed (mod 2^16).
fn buf_ring_head(ring_fd: RawFd, bgid: u16) -> io::Result<u16> {
    let mut st = BufStatus {
        buf_group: bgid as u32,
        head: 0,
        resv: [0; 8],
    };
    // SAFETY: io_uring_register with a live ring fd and one properly sized, writable argument.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring_fd as libc::c_long,
            IORING_REGISTER_PBUF_STATUS,
            &mut st as *mut BufStatus,
            1 as libc::c_long,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(st.head as u16)
    }
}

/// Drops `n` bytes from the front of `q` (segments shrink in place). False if `q` held fewer.
fn drop_front(q: &mut VecDeque<Seg>, mut n: u32) -> bool {
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
struct Bundle {
    ring: BufRing,
    /// The buffer group id (the flow's index on its ring).
    bgid: u16,
    /// The kernel's head when the bundle in flight was submitted.
    head: u16,
    /// Segments in the kernel's buffer ring not yet sent, in ring order.
    queued: VecDeque<Seg>,
    /// Bytes of the front queued segment the bundle in flight has sent.
    front_sent: u32,
    /// Whole entries the bundle in flight has sent (popped from `queued`).
    popped: usize,
    /// Unsent bytes whose ring entries a short bundle consumed anyway: they go out first, as
    /// one `SendMsg` (MSG_WAITALL) linked before the next bundle.
    loose: VecDeque<Seg>,
    /// The iovecs and msghdr of the loose `SendMsg` (boxed: the kernel reads them in flight).
    loose_iov: Box<[libc::iovec]>,
    loose_msg: Box<libc::msghdr>,
    loose_res: Option<i32>,
    /// The bundle's final result (its CQE without `F_MORE`).
    bundle_res: Option<i32>,
    /// Bytes the bundle in flight sent, over all its CQEs.
    bundle_sent: u64,
}

impl Bundle {
    fn new(messages: usize) -> Bundle {
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

    fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.loose.is_empty()
    }

    fn clear(&mut self) {
        self.queued.clear();
        self.loose.clear();
        self.front_sent = 0;
    }

    fn push(&mut self, seg: &[u8]) {
        if !seg.is_empty() {
            self.ring.push(seg, self.queued.len() as u16);
            self.queued.push_back((seg.as_ptr(), seg.len() as u32));
        }
    }

    /// A bundle CQE reported `n` bytes sent: they are the front of `queued`, in order.
    fn consume(&mut self, mut n: u32) -> Result<()> {
        self.bundle_sent += n as u64;
        while n > 0 {
            let Some(&(_, len)) = self.queued.front() else {
                return Err(Error::Protocol(format!(
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
    fn resync(&mut self, kernel_head: u16) -> Result<()> {
        let consumed = kernel_head.wrapping_sub(self.head) as usize;
        let unsent = consumed
            .checked_sub(self.popped)
            .filter(|&u| u <= self.queued.len());
        let Some(unsent) = unsent else {
            return Err(Error::Protocol(format!(
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
            let i = (kernel_head & (self.ring.entries - 1)) as usize;
            // SAFETY: i < entries; the kernel reads entries only while selecting for a bundle.
            let e = unsafe { &mut *self.ring.base.add(i) };
            e.set_addr(front.0 as u64);
            e.set_len(front.1);
            self.front_sent = 0;
        }
        self.head = kernel_head;
        Ok(())
    }
}

/// One send of the flow's current chain.
#[derive(Clone, Copy, Debug)]
struct Link {
    buf: u16,
    /// Bytes of the buffer (its messages x the message size).
    len: u32,
    done: u32,
    res: Option<i32>,
}

/// A flow on a ring.
struct Flow {
    flow: u32,
    strategy: Box<dyn UringSend>,
    /// The chain in flight (or, after a short send, its unfinished tail, to resubmit).
    chain: Vec<Link>,
    /// SQEs of the chain not yet completed.
    pending: usize,
    /// The chain's tail must be resubmitted once `pending` reaches 0.
    resubmit: bool,
    seq: u64,
    first_in_window: Option<u64>,
    /// `seq` when the window ended (the flow sends on until the receiver asks for the end).
    end_of_window: Option<u64>,
    /// Where the receiver's end request lands (boxed: the kernel writes it while in flight).
    end_buf: Box<[u8; 1]>,
    /// The receive of the end request is in flight.
    end_recv_pending: bool,
    /// The receiver asked for the end frame.
    end_requested: bool,
    /// No new messages: the receiver asked for the end, or the flow failed.
    stopped: bool,
    /// When the last send completed (start of the bounded notification drain).
    drain_since: Option<Instant>,
    stalls: u32,
    retries: u64,
    error: Option<Error>,
    /// Present when the flow sends bundles instead of chains.
    bundle: Option<Bundle>,
}

impl Flow {
    /// Flow `flow` with `strategy`, nothing in flight yet.
    fn new(flow: u32, strategy: Box<dyn UringSend>, depth: usize, ordering: UringOrdering) -> Flow {
        Flow {
            flow,
            strategy,
            chain: Vec::with_capacity(depth),
            pending: 0,
            resubmit: false,
            seq: 0,
            first_in_window: None,
            end_of_window: None,
            end_buf: Box::new([0]),
            end_recv_pending: false,
            end_requested: false,
            stopped: false,
            drain_since: None,
            stalls: 0,
            retries: 0,
            error: None,
            bundle: (ordering == UringOrdering::Bundle).then(|| Bundle::new(depth)),
        }
    }

    fn idle(&self) -> bool {
        self.pending == 0
    }

    /// Nothing left to send: no chain, no bundle segments.
    fn drained(&self) -> bool {
        self.chain.is_empty() && self.bundle.as_ref().is_none_or(Bundle::is_empty)
    }

    fn finished(&self) -> bool {
        self.pending == 0 && self.drained() && self.stopped && self.strategy.owed() == 0
    }

    /// Every CQE of the bundle (and the loose send before it) is in: keeps what is unsent for
    /// resubmission, in order, or ends the flow on an error. `ring_fd` reads the kernel's
    /// buffer-ring head after a short bundle.
    fn settle_bundle(&mut self, ring_fd: RawFd) {
        let Some(b) = self.bundle.as_mut() else {
            return;
        };
        if self.error.is_some() {
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
        let retryable = |r: i32| r == -libc::ECANCELED || r == -libc::EINTR || r == -libc::EAGAIN;
        if let Some(r) = b.loose_res.take() {
            match r {
                r if r > 0 => {
                    progress = true;
                    if !drop_front(&mut b.loose, r as u32) {
                        error = Some(Error::Protocol(format!(
                            "io_uring sendmsg on flow {} reported more bytes than it was given",
                            self.flow
                        )));
                    }
                }
                0 => {
                    error = Some(Error::PeerClosed(format!(
                        "io_uring send on flow {} made no progress (0 bytes)",
                        self.flow
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
                        self.flow
                    )));
                }
                r if r >= 0 || retryable(r) => {}
                r if r == -libc::EINVAL => {
                    error.get_or_insert(Error::Unsupported(format!(
                        "the kernel rejected the io_uring send bundle (EINVAL; bundles need Linux >= 6.10): use --uring-ordering link (flow {})",
                        self.flow
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
                b.head = b.ring.tail;
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
            self.fail(e);
            return;
        }
        if b.is_empty() {
            self.stalls = 0;
            return;
        }
        self.retries += u64::from(failed_call);
        self.stalls = if progress { 0 } else { self.stalls + 1 };
        if self.stalls > MAX_STALLS {
            b.clear();
            self.fail(Error::Timeout(format!(
                "io_uring send bundles on flow {} were interrupted {MAX_STALLS} times in a row without progress",
                self.flow
            )));
        } else {
            self.resubmit = true;
        }
    }

    /// Fills an idle bundle flow's ring with its next `depth` messages (unless unsent bytes
    /// are left) and submits the loose bytes and the bundle (nothing while the SQ is full).
    fn submit_bundle(
        &mut self,
        li: usize,
        depth: usize,
        now: u64,
        window: &Window,
        ts: u64,
        sq: &mut squeue::SubmissionQueue<'_>,
    ) {
        if sq.capacity() - sq.len() < 2 {
            return;
        }
        let b = self.bundle.as_mut().expect("a bundle flow");
        if self.resubmit {
            self.resubmit = false;
        } else if !self.stopped && b.is_empty() {
            if self.first_in_window.is_none() && now >= window.start && now < window.end {
                self.first_in_window = Some(self.seq);
            }
            for pos in 0..depth {
                let Some((buf, _)) = self.strategy.prepare(pos, self.seq, ts, 1) else {
                    break;
                };
                let segs = self
                    .strategy
                    .segments(buf)
                    .expect("bundle ordering is validated per mode");
                b.push(segs[0]);
                b.push(segs[1]);
                self.seq += 1;
            }
        }
        if b.is_empty() {
            return;
        }
        b.ring.publish();
        let fd = types::Fixed(li as u32);
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
            let mut e = opcode::SendMsg::new(fd, &*b.loose_msg)
                .flags(libc::MSG_WAITALL as u32)
                .build()
                .user_data(user_data(li, LOOSE_POS, 0));
            if then_bundle {
                e = e.flags(squeue::Flags::IO_LINK);
            }
            // SAFETY: the iovecs, the msghdr and the bytes they name stay alive and unchanged
            // until this send's CQE (the flow submits nothing else before it).
            unsafe { sq.push(&e) }.expect("room checked above");
            self.pending += 1;
            if !then_bundle {
                return;
            }
        }
        if !b.queued.is_empty() {
            let e = opcode::SendBundle::new(fd, b.bgid)
                .build()
                .user_data(user_data(li, BUNDLE_POS, 0));
            // SAFETY: every segment in the buffer ring stays alive and unchanged until the
            // flow is drained.
            unsafe { sq.push(&e) }.expect("room checked above");
            self.pending += 1;
        }
    }

    /// The window is over: remembers where it ended, and stops once the receiver asked for the
    /// end frame (or fails if it has not asked by `end_deadline`).
    fn past_window(&mut self, now: u64, end_deadline: u64) {
        self.end_of_window.get_or_insert(self.seq);
        if self.end_requested {
            self.stopped = true;
        } else if now >= end_deadline && !self.stopped {
            self.fail(Error::Timeout(format!(
                "the receiver of flow {} did not ask for the end frame within {} s of the window's end",
                self.flow,
                IO_TIMEOUT.as_secs()
            )));
        }
    }

    /// The end request's receive completed with `res`.
    fn on_end_request(&mut self, res: i32) {
        self.end_recv_pending = false;
        match res {
            1 if self.end_buf[0] == crate::wire::END_REQUEST => self.end_requested = true,
            1 => self.fail(Error::Protocol(format!(
                "the receiver of flow {} sent byte {:#04x} where only the end request may come",
                self.flow, self.end_buf[0]
            ))),
            0 => self.fail(Error::PeerClosed(format!(
                "the receiver of flow {} closed the connection before asking for the end frame",
                self.flow
            ))),
            r if r == -libc::ECANCELED => {}
            r => self.fail(sock::classify(
                io::Error::from_raw_os_error(-r),
                "io_uring recv of the end request",
            )),
        }
    }

    fn fail(&mut self, e: Error) {
        self.stopped = true;
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Every CQE of the chain is in: keeps the unfinished tail (short, interrupted or
    /// cancelled sends, in order) for resubmission, or clears the chain.
    fn settle(&mut self) {
        let mut keep_from = None;
        let mut progress = false;
        for (i, l) in self.chain.iter_mut().enumerate() {
            let res = l.res.take().unwrap_or(-libc::ECANCELED);
            let left = l.len - l.done;
            if keep_from.is_some() {
                if res >= 0 {
                    // A link ran after a broken one: the stream may be reordered.
                    self.error.get_or_insert(Error::Integrity(format!(
                        "io_uring send ran after a broken link on flow {} (res {res})",
                        self.flow
                    )));
                    self.stopped = true;
                }
                continue;
            }
            match res {
                r if r >= 0 && r as u32 >= left => progress = true,
                r if r > 0 => {
                    l.done += r as u32;
                    progress = true;
                    keep_from = Some(i);
                }
                0 => {
                    self.error.get_or_insert(Error::PeerClosed(format!(
                        "io_uring send on flow {} made no progress (0 bytes)",
                        self.flow
                    )));
                    self.stopped = true;
                    keep_from = Some(i);
                }
                r if r == -libc::ECANCELED || r == -libc::EINTR || r == -libc::EAGAIN => {
                    keep_from = Some(i)
                }
                r if r == -libc::EINVAL && l.done == 0 => {
                    self.error.get_or_insert(Error::Unsupported(format!(
                        "the kernel rejected the io_uring send (EINVAL); SEND_ZC with \
                         IORING_SEND_ZC_REPORT_USAGE needs Linux >= 6.2 (flow {})",
                        self.flow
                    )));
                    self.stopped = true;
                    keep_from = Some(i);
                }
                r => {
                    let e = io::Error::from_raw_os_error(-r);
                    self.error.get_or_insert(sock::classify(e, "io_uring send"));
                    self.stopped = true;
                    keep_from = Some(i);
                }
            }
        }
        match keep_from {
            Some(k) if self.error.is_none() => {
                self.chain.drain(..k);
                self.retries += 1;
                self.stalls = if progress { 0 } else { self.stalls + 1 };
                if self.stalls > MAX_STALLS {
                    self.fail(Error::Timeout(format!(
                        "io_uring sends on flow {} were interrupted {MAX_STALLS} times in a row without progress",
                        self.flow
                    )));
                    self.chain.clear();
                } else {
                    self.resubmit = true;
                }
            }
            _ => {
                self.chain.clear();
                self.stalls = 0;
            }
        }
    }
}

/// user_data: local flow (bits 32..), chain position (16..32), buffer id (0..16).
#[inline]
fn user_data(flow: usize, pos: usize, buf: u16) -> u64 {
    ((flow as u64) << 32) | ((pos as u64) << 16) | buf as u64
}

/// Runs the sending side of `streams` (each with its flow index) on one ring in this thread;
/// returns each flow's report, or the error that ended it (after its end frame was
/// attempted so the receiver learns why).
pub fn run_group(streams: Vec<(TcpStream, u32)>, spec: &RunSpec) -> FlowResults {
    for (s, _) in &streams {
        if spec.rx_stall.is_some() {
            // As on the threads engine: small buffers, so the stall backs up to the sender.
            let _ = sock::setsockopt_int(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                crate::spec::STALL_SOCKET_BUFFER as i32,
            );
        }
        if let Err(e) = sock::set_io_timeouts(s) {
            let msg = e.to_string();
            return streams
                .iter()
                .map(|(_, f)| {
                    let e = Error::Protocol(format!("flow {f}: {msg}"));
                    SenderOutcome::new(*f, SenderReport::default(), Err(e))
                })
                .collect();
        }
    }
    let fds: Vec<RawFd> = streams.iter().map(|(s, _)| s.as_raw_fd()).collect();
    let n = streams.len();
    let depth = spec.uring.depth;
    // The ring and every strategy are built before the hellos, so that a kernel that cannot
    // do it is reported to each receiver through the end frame.
    // A flow's SQEs at once: a chain (of `depth` links, or one coalesced send), or a loose
    // send and a bundle.
    let per_flow = if spec.uring.ordering == UringOrdering::Bundle {
        2
    } else {
        spec.uring.chain_shape().0
    };
    let sq = ((n * per_flow) as u32)
        .clamp(per_flow as u32, MAX_SQ_ENTRIES)
        .next_power_of_two();
    let zc = if spec.mode.facts().zero_copy {
        n * spec.zc_slots
    } else {
        0
    };
    let cq = (2 * sq as usize + 2 * zc).next_power_of_two().min(1 << 20) as u32;
    let mut flows: Vec<Flow> = streams
        .iter()
        .map(|(_, f)| Flow::new(*f, for_mode(spec), depth, spec.uring.ordering))
        .collect();
    let setup = make_ring(sq, cq).and_then(|mut r| {
        prepare_ring(&mut r, spec, &fds, &mut flows)?;
        Ok(r)
    });
    let mut hellos_ok = vec![true; n];
    for (i, (s, f)) in streams.iter().enumerate() {
        if let Err(e) = sock::send_all(s.as_raw_fd(), &hello_for(spec, *f).encode()) {
            hellos_ok[i] = false;
            flows[i].fail(e);
        }
    }
    let mut setup_report = None;
    let mut side = None;
    match setup {
        Ok(mut ring) => {
            let t0 = now_ns();
            let window = Window::after(
                t0,
                crate::time::secs_to_ns(spec.warmup_s),
                crate::time::secs_to_ns(spec.duration_s),
            );
            for (f, ok) in flows.iter_mut().zip(&hellos_ok) {
                f.stopped |= !ok;
            }
            side = Some(drive(&mut ring, spec, window, &mut flows));
            setup_report = Some(UringSetup {
                threads: spec.sender_threads() as u32,
                depth: depth as u32,
                batch: spec.uring.batch as u32,
                ordering: spec.uring.ordering.to_string(),
                setup_flags: ring.flags.clone(),
                registered_ring_fd: ring.registered_ring_fd,
            });
            let in_flight = flows.iter().any(|f| f.pending > 0 || f.strategy.owed() > 0);
            // Unregisters files and buffers; the ring's exit cancels what is left.
            drop(ring);
            for f in flows.iter_mut().filter(|f| f.end_recv_pending) {
                // The kernel may still write this byte: leak it.
                std::mem::forget(std::mem::replace(&mut f.end_buf, Box::new([0])));
            }
            if in_flight {
                // The kernel may still read these buffers while the ring shuts down: leak
                // them rather than free memory a send might still reference.
                for f in &mut flows {
                    std::mem::forget(std::mem::replace(
                        &mut f.strategy,
                        Box::new(A1UringSend::new(HEADER_LEN, 0, false)),
                    ));
                    std::mem::forget(f.bundle.take());
                }
            }
        }
        Err(e) => {
            for f in flows.iter_mut() {
                f.fail(copy_err(&e));
            }
        }
    }
    let mut out = Vec::with_capacity(n);
    for (i, ((s, _), f)) in streams.iter().zip(flows.iter_mut()).enumerate() {
        let messages = f.first_in_window.map_or(0, |first| {
            f.end_of_window.unwrap_or(f.seq).saturating_sub(first)
        });
        let counters = match (&side, i) {
            (Some(c), 0) => c.clone(),
            // The thread's counters go with its first flow, so the side's sum counts them once.
            _ => SideCounters::zero(),
        };
        let mut report = SenderReport {
            messages,
            bytes: messages * spec.msg_size as u64,
            counters,
            zerocopy: f.strategy.zerocopy(),
            send_errors: f.retries,
            error: f.error.as_ref().map(|e| e.to_string()),
            uring: setup_report.clone(),
        };
        if f.error.is_some() && report.zerocopy.is_some() && f.strategy.owed() > 0 {
            report.zerocopy = None;
        }
        let end_sent = if hellos_ok[i] {
            sock::send_all(s.as_raw_fd(), &encode_end(&report))
        } else {
            Ok(())
        };
        let _ = s.shutdown(Shutdown::Write);
        let result = match f.error.take() {
            Some(e) => Err(e),
            None => end_sent,
        };
        out.push(SenderOutcome::new(f.flow, report, result));
    }
    out
}

/// The same error again, for each flow of a ring that could not be set up.
fn copy_err(e: &Error) -> Error {
    match e {
        Error::Unsupported(m) => Error::Unsupported(m.clone()),
        Error::InvalidSpec(m) => Error::InvalidSpec(m.clone()),
        Error::Io { context, source } => Error::io(
            context.clone(),
            source.raw_os_error().map_or_else(
                || io::Error::from(source.kind()),
                io::Error::from_raw_os_error,
            ),
        ),
        e => Error::Unsupported(e.to_string()),
    }
}

/// Registers the flows' sockets (and A3's slots) with the ring and the ring fd itself, and
/// checks the opcode the mode needs.
fn prepare_ring(r: &mut Ring, spec: &RunSpec, fds: &[RawFd], flows: &mut [Flow]) -> Result<()> {
    register(
        r,
        spec,
        fds,
        flows.iter_mut().map(|f| f.strategy.as_mut()).collect(),
    )?;
    if flows.iter().any(|f| f.bundle.is_some()) && !r.ring.params().is_feature_recvsend_bundle() {
        return Err(Error::Unsupported(
            "this kernel's io_uring has no send bundles (IORING_FEAT_RECVSEND_BUNDLE, Linux 6.10): use --uring-ordering link".into(),
        ));
    }
    for (li, f) in flows.iter_mut().enumerate() {
        if let Some(b) = &mut f.bundle {
            b.bgid = li as u16;
            // The ring memory belongs to the flow, which outlives the ring (run_group drops the
            // ring first, and leaks the flows' buffers if sends may be in flight).
            b.ring
                .register(&r.ring, li as u16)
                .map_err(|e| Error::io("register a provided-buffer ring for send bundles", e))?;
        }
    }
    Ok(())
}

/// Checks the opcode, registers the sockets and every strategy's fixed buffers.
fn register<'a>(
    r: &mut Ring,
    spec: &RunSpec,
    fds: &[RawFd],
    strategies: Vec<&'a mut (dyn UringSend + 'static)>,
) -> Result<()> {
    let mut probe = Probe::new();
    r.ring
        .submitter()
        .register_probe(&mut probe)
        .map_err(|e| Error::io("io_uring probe", e))?;
    if let Some(why) = lacks_op(spec.mode, |c| probe.is_supported(c)) {
        return Err(Error::Unsupported(why));
    }
    r.ring
        .submitter()
        .register_files(fds)
        .map_err(|e| Error::io("register the sockets with io_uring", e))?;
    let mut iovs = Vec::new();
    for st in strategies {
        st.set_fixed_base(iovs.len() as u16);
        iovs.extend(st.fixed_buffers());
    }
    if !iovs.is_empty() {
        // SAFETY: the buffers belong to the strategies, which outlive the ring (run_group drops
        // the ring first, and leaks the strategies if sends may still be in flight; UringOneShot
        // drains before it drops).
        unsafe { r.ring.submitter().register_buffers(&iovs) }.map_err(|e| {
            Error::io(
                format!(
                    "register {} zero-copy slots as io_uring fixed buffers (raise `ulimit -l` or use fewer --zc-slots)",
                    iovs.len()
                ),
                e,
            )
        })?;
    }
    Ok(())
}

/// The io_uring engine with one send in flight: each message is one SQE, submitted and
/// waited for, a short send resubmitted from where it stopped. This is how the `rr` and `rate`
/// patterns (one transaction, or one paced message, at a time per flow) run on io_uring; the
/// strategies (and the zero-copy slot gating) are the stream engine's.
pub struct UringOneShot {
    // Field order matters: the ring (and its registered buffers) is dropped before the
    // strategy that owns the buffers.
    ring: Ring,
    strategy: Box<dyn UringSend>,
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
            ..spec.clone()
        };
        let mut strategy = for_mode(&one);
        let zc = if spec.mode.facts().zero_copy {
            spec.zc_slots
        } else {
            0
        };
        let mut ring = make_ring(8, (16 + 2 * zc as u32).next_power_of_two())?;
        register(&mut ring, spec, &[fd], vec![strategy.as_mut()])?;
        Ok(UringOneShot {
            ring,
            strategy,
            msg_len: spec.msg_size as u32,
        })
    }

    /// Waits (bounded by one slice) for completions; applies notifications; returns the
    /// result of the send, if its CQE arrived.
    fn reap(&mut self, wait: bool) -> Result<Option<(i32, u32)>> {
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
            let buf = (cqe.user_data() & 0xffff) as u16;
            if cqueue::notif(cqe.flags()) {
                self.strategy.on_notif(buf, cqe.result(), now)?;
            } else {
                self.strategy.on_result(buf, cqe.flags(), now);
                result = Some((cqe.result(), cqe.flags()));
            }
        }
        Ok(result)
    }
}

impl crate::send::threads::BlockingSend for UringOneShot {
    fn send(&mut self, _fd: RawFd, seq: u64, ts: u64) -> Result<()> {
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
        let mut done = 0u32;
        while done < self.msg_len {
            let e = self
                .strategy
                .sqe(types::Fixed(0), buf, done, now_ns())
                .user_data(buf as u64);
            // SAFETY: the buffer belongs to the strategy and is not handed out again before
            // this send's CQE (and, for zero-copy, its notification) arrives.
            unsafe { self.ring.ring.submission().push(&e) }
                .map_err(|_| Error::Protocol("io_uring submission queue full".into()))?;
            let res = loop {
                if let Some((res, _)) = self.reap(true)? {
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
        Ok(())
    }

    fn finish(&mut self, _fd: RawFd) -> Result<Option<ZeroCopyStats>> {
        let deadline = Instant::now() + ZC_DRAIN_TIMEOUT;
        while self.strategy.owed() > 0 {
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "{} SEND_ZC notifications still outstanding {} s after the last send",
                    self.strategy.owed(),
                    ZC_DRAIN_TIMEOUT.as_secs()
                )));
            }
            self.reap(true)?;
        }
        Ok(self.strategy.zerocopy())
    }
}

/// The loop of one thread: refill idle flows with a chain, enter, reap. Returns the thread's
/// counters over the window.
fn drive(r: &mut Ring, spec: &RunSpec, window: Window, flows: &mut [Flow]) -> SideCounters {
    let latency = spec.records_latency();
    let depth = spec.uring.depth;
    let batch = spec.uring.batch;
    let msg_len = spec.msg_size as u32;
    // A linked chain: `links` SQEs of one message; a coalesced flow: one SQE of up to `per_link`.
    let (links, per_link) = spec.uring.chain_shape();
    let ring_fd = r.ring.as_raw_fd();
    let (mut submitter, mut sq, mut cq) = r.ring.split();
    r.registered_ring_fd = submitter.register_ring_fd().is_ok();
    let end_deadline = window.end + IO_TIMEOUT.as_nanos() as u64;
    for (li, f) in flows.iter_mut().enumerate().filter(|(_, f)| !f.stopped) {
        let e = opcode::Recv::new(types::Fixed(li as u32), f.end_buf.as_mut_ptr(), 1)
            .build()
            .user_data(user_data(li, END_POS, 0));
        // SAFETY: the byte belongs to the flow and stays allocated until the receive
        // completes (or is leaked, see run_group).
        if unsafe { sq.push(&e) }.is_ok() {
            f.end_recv_pending = true;
        }
    }
    let mut w = WindowTracker::new(window, false);
    let mut last_progress = Instant::now();
    let slice = types::Timespec::from(WAIT_SLICE);
    let args = types::SubmitArgs::new().timespec(&slice);
    loop {
        let now = now_ns();
        w.at(now);
        let ts = if latency { now } else { 0 };
        let mut expect = 0usize;
        let mut all_done = true;
        for (li, f) in flows.iter_mut().enumerate() {
            if now >= window.end {
                f.past_window(now, end_deadline);
            }
            if f.idle() && f.bundle.is_some() {
                f.submit_bundle(li, depth, now, &window, ts, &mut sq);
            } else if f.idle() {
                if f.resubmit {
                    // The unfinished tail of the last chain goes first, as a chain of its own.
                    f.resubmit = false;
                } else if !f.stopped && sq.capacity() - sq.len() >= links {
                    if f.first_in_window.is_none() && now >= window.start && now < window.end {
                        f.first_in_window = Some(f.seq);
                    }
                    f.chain.clear();
                    for pos in 0..links {
                        match f.strategy.prepare(pos, f.seq, ts, per_link) {
                            Some((buf, n)) => {
                                f.chain.push(Link {
                                    buf,
                                    len: n as u32 * msg_len,
                                    done: 0,
                                    res: None,
                                });
                                f.seq += n as u64;
                            }
                            None => break,
                        }
                    }
                }
                if !f.chain.is_empty()
                    && f.pending == 0
                    && sq.capacity() - sq.len() >= f.chain.len()
                {
                    let last = f.chain.len() - 1;
                    for (pos, l) in f.chain.iter().enumerate() {
                        let mut e = f
                            .strategy
                            .sqe(types::Fixed(li as u32), l.buf, l.done, now)
                            .user_data(user_data(li, pos, l.buf));
                        if pos < last {
                            e = e.flags(squeue::Flags::IO_LINK);
                        }
                        // SAFETY: every buffer the entry names is owned by the flow's strategy
                        // and is not handed out again before this send's CQE (and, for
                        // zero-copy, its notification) arrives.
                        unsafe { sq.push(&e) }.expect("room checked above");
                    }
                    f.pending = f.chain.len();
                }
            }
            if f.idle() && f.drained() && f.stopped && f.strategy.owed() > 0 {
                f.drain_since.get_or_insert_with(Instant::now);
            }
            // Wait for the chain's results; a flow waits for zero-copy notifications only when
            // it has nothing else in flight (its slots are all owed, or it is draining), so a
            // late notification never holds back the next chain.
            expect += if f.pending > 0 {
                f.pending
            } else {
                f.strategy.owed() as usize
            };
            all_done &= f.finished();
        }
        if all_done && sq.is_empty() {
            break;
        }
        sq.sync();
        let want = batch.min(expect);
        if let Err(e) = enter(&submitter, want, &args) {
            let msg = format!("io_uring_enter: {e}");
            for f in flows.iter_mut() {
                f.fail(Error::Protocol(msg.clone()));
            }
            break;
        }
        cq.sync();
        let mut got = false;
        // One clock read per batch of completions (zero-copy slot hold times).
        let reaped_at = if cq.is_empty() { 0 } else { now_ns() };
        for cqe in &mut cq {
            got = true;
            let ud = cqe.user_data();
            let li = (ud >> 32) as usize;
            let pos = ((ud >> 16) & 0xffff) as usize;
            let buf = (ud & 0xffff) as u16;
            let flags = cqe.flags();
            let Some(f) = flows.get_mut(li) else {
                continue;
            };
            if pos == END_POS {
                f.on_end_request(cqe.result());
                continue;
            }
            if cqueue::notif(flags) {
                if let Err(e) = f.strategy.on_notif(buf, cqe.result(), reaped_at) {
                    f.fail(e);
                }
                continue;
            }
            if let (Some(b), true) = (f.bundle.as_mut(), pos >= LOOSE_POS) {
                let res = cqe.result();
                if pos == LOOSE_POS {
                    b.loose_res = Some(res);
                } else {
                    let mut consumed = if res > 0 {
                        b.consume(res as u32)
                    } else {
                        Ok(())
                    };
                    let more = cqueue::more(flags);
                    if more && b.front_sent != 0 && consumed.is_ok() {
                        // The kernel goes on with a bundle only after sending all it selected.
                        consumed = Err(Error::Integrity(format!(
                            "a send bundle went on after sending part of an entry ({} bytes)",
                            b.front_sent
                        )));
                    }
                    if !more {
                        b.bundle_res = Some(res);
                    }
                    if let Err(e) = consumed {
                        f.fail(e);
                    }
                    if more {
                        // The bundle goes on with the entries left: more CQEs follow.
                        continue;
                    }
                }
                f.pending = f.pending.saturating_sub(1);
                if f.pending == 0 {
                    f.settle_bundle(ring_fd);
                }
                continue;
            }
            f.strategy.on_result(buf, flags, reaped_at);
            if let Some(l) = f.chain.get_mut(pos) {
                l.res = Some(cqe.result());
            }
            f.pending = f.pending.saturating_sub(1);
            if f.pending == 0 {
                f.settle();
            }
        }
        cq.sync();
        let t = Instant::now();
        if got {
            last_progress = t;
        } else if t.duration_since(last_progress) >= IO_TIMEOUT {
            for f in flows.iter_mut().filter(|f| !f.finished()) {
                f.fail(Error::Timeout(format!(
                    "no io_uring completion for {} s on flow {} (the peer stopped reading?)",
                    IO_TIMEOUT.as_secs(),
                    f.flow
                )));
            }
            break;
        }
        let mut drain_expired = false;
        for f in flows.iter_mut() {
            if let Some(since) = f.drain_since {
                if f.strategy.owed() > 0 && t.duration_since(since) >= ZC_DRAIN_TIMEOUT {
                    let owed = f.strategy.owed();
                    f.fail(Error::Timeout(format!(
                        "{owed} SEND_ZC notifications still outstanding {} s after the last send on flow {}",
                        ZC_DRAIN_TIMEOUT.as_secs(),
                        f.flow
                    )));
                    drain_expired = true;
                }
            }
        }
        if drain_expired
            && flows
                .iter()
                .all(|f| f.pending == 0 && (f.strategy.owed() == 0 || f.error.is_some()))
        {
            break;
        }
    }
    // An end request that never came (a flow that failed): cancel its receive, so that the
    // byte it would write can be freed. Bounded; what does not end is leaked in run_group.
    let mut cancels = 0;
    for (li, _) in flows.iter().enumerate().filter(|(_, f)| f.end_recv_pending) {
        let e = opcode::AsyncCancel::new(user_data(li, END_POS, 0))
            .build()
            .user_data(user_data(li, CANCEL_POS, 0));
        // SAFETY: a cancellation names no memory.
        cancels += usize::from(unsafe { sq.push(&e) }.is_ok());
    }
    let give_up = Instant::now() + 2 * WAIT_SLICE;
    while cancels > 0 && flows.iter().any(|f| f.end_recv_pending) && Instant::now() < give_up {
        sq.sync();
        if enter(&submitter, 1, &args).is_err() {
            break;
        }
        cq.sync();
        for cqe in &mut cq {
            let ud = cqe.user_data();
            if ((ud >> 16) & 0xffff) as usize == END_POS {
                if let Some(f) = flows.get_mut((ud >> 32) as usize) {
                    f.end_recv_pending = false;
                }
            }
        }
    }
    if r.registered_ring_fd {
        // The registration holds a reference to the ring: drop it, or the ring outlives us.
        let _ = submitter.unregister_ring_fd();
    }
    w.side_counters()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(results: &[i32]) -> Flow {
        let mut f = Flow::new(
            0,
            Box::new(A1UringSend::new(64, results.len(), false)),
            results.len(),
            UringOrdering::Link,
        );
        f.chain = results
            .iter()
            .enumerate()
            .map(|(i, r)| Link {
                buf: i as u16,
                len: 64,
                done: 0,
                res: Some(*r),
            })
            .collect();
        f
    }

    #[test]
    fn short_send_keeps_the_unfinished_tail_in_order() {
        // Link 1 sent 10 of 64 bytes and broke the chain; link 2 was cancelled.
        let mut f = flow(&[64, 10, -libc::ECANCELED]);
        f.settle();
        assert!(f.resubmit && f.error.is_none());
        let tail: Vec<(u16, u32)> = f.chain.iter().map(|l| (l.buf, l.done)).collect();
        assert_eq!(
            tail,
            vec![(1, 10), (2, 0)],
            "resume link 1 at byte 10, then link 2"
        );
        // The resubmitted tail completes: the chain is cleared.
        for l in &mut f.chain {
            l.res = Some(64 - l.done as i32);
        }
        f.resubmit = false;
        f.settle();
        assert!(f.chain.is_empty() && !f.resubmit && f.error.is_none());
        assert_eq!(f.retries, 1);
    }

    #[test]
    fn a_send_after_a_broken_link_is_an_integrity_error() {
        let mut f = flow(&[10, 64]);
        f.settle();
        assert!(
            matches!(f.error, Some(Error::Integrity(_))),
            "{:?}",
            f.error
        );
        assert!(f.stopped && f.chain.is_empty());
    }

    #[test]
    fn errors_end_the_flow_and_interruptions_are_retried() {
        let mut f = flow(&[-libc::ECONNRESET, -libc::ECANCELED]);
        f.settle();
        assert!(
            matches!(f.error, Some(Error::PeerClosed(_))),
            "{:?}",
            f.error
        );
        let mut f = flow(&[-libc::EINTR]);
        f.settle();
        assert!(f.resubmit && f.error.is_none() && f.chain.len() == 1);
        let mut f = flow(&[0]);
        f.settle();
        assert!(f.error.is_some(), "0 bytes is no progress");
    }

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
        // SAFETY: entry 2 of the ring's 8.
        let e = unsafe { &*b.ring.base.add(2) };
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

    #[test]
    fn a3_slot_is_released_only_by_its_notification() {
        let mut s = A3UringSendZc::new(64, 2, false, false);
        let (b0, _) = s.prepare(0, 0, 0, 1).unwrap();
        let (b1, _) = s.prepare(1, 1, 0, 1).unwrap();
        assert_eq!(s.prepare(2, 2, 0, 1), None, "both slots handed out");
        let _ = s.sqe(types::Fixed(0), b0, 0, 10);
        let _ = s.sqe(types::Fixed(0), b1, 0, 10);
        s.on_result(b0, 1 << 1, 20); // F_MORE: a notification follows
        s.on_result(b1, 0, 20); // failed before taking the pages: released now
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
        let z = s.zerocopy().unwrap();
        assert_eq!((z.sends, z.completions, z.copied), (1, 1, 1));
        assert_eq!(z.slot_waits, 1, "one wait, however often prepare was asked");
        assert_eq!(s.prepare(2, 2, 0, 1), Some((0, 1)));
    }

    #[test]
    fn a_kernel_without_send_zc_is_named_in_the_error() {
        let no_zc = |c: u8| c != opcode::SendZc::CODE;
        let e = lacks_op(Mode::A3, no_zc).expect("A3 needs SEND_ZC");
        assert!(
            e.contains("send_zc") && e.contains("never falls back"),
            "{e}"
        );
        assert_eq!(lacks_op(Mode::A1, no_zc), None);
        assert!(lacks_op(Mode::A2, |_| false).unwrap().contains("sendmsg"));
    }

    #[test]
    fn a_short_coalesced_send_resumes_inside_its_run() {
        // One link carrying 4 messages of 64 B sent 100 bytes: the rest goes out again from
        // byte 100 of the same run.
        let mut f = flow(&[100]);
        f.chain[0].len = 256;
        f.settle();
        assert!(f.resubmit && f.error.is_none());
        assert_eq!(
            (f.chain[0].buf, f.chain[0].done, f.chain[0].len),
            (0, 100, 256)
        );
        f.chain[0].res = Some(156);
        f.resubmit = false;
        f.settle();
        assert!(f.chain.is_empty() && f.error.is_none());
    }

    #[test]
    fn a3_coalesces_consecutive_slots_and_never_wraps() {
        let mut s = A3UringSendZc::new(32, 8, true, true);
        // 5 of 8 slots in one buffer, then the 3 left before the end of the pool.
        assert_eq!(s.prepare(0, 100, 7, 5), Some((0, 5)));
        let e = s.sqe(types::Fixed(0), 0, 0, 1);
        assert_eq!(e.get_user_data(), 0);
        assert_eq!(
            s.prepare(0, 105, 7, 5),
            Some((5, 3)),
            "stops at the pool's end"
        );
        let _ = s.sqe(types::Fixed(0), 5, 0, 1);
        for i in 0..8u64 {
            let slot = s.pool.slot(i as usize);
            assert_eq!(crate::wire::get_header(slot), (100 + i, 7), "slot {i}");
            assert!(crate::wire::check_payload(&slot[HEADER_LEN..], 100 + i).is_none());
        }
        // The first buffer's rest is resent after a short send: one more reference on each.
        let _ = s.sqe(types::Fixed(0), 0, 100, 2);
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
        let z = s.zerocopy().unwrap();
        assert_eq!((z.sends, z.completions, z.messages), (3, 2, 13));
        assert_eq!(z.max_outstanding, 8);
        let hold = z.slot_hold.summary();
        assert_eq!((hold.count, hold.min, hold.max), (5, 11, 11));
    }
}
