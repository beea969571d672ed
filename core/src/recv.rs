//! The receiver, the same for every mode and engine, so that only the send path varies.
//!
//! It reads large chunks (at least 256 KiB) and parses every complete message in them, so it
//! is never the bottleneck: per message it reads the 16-byte header, checks the sequence,
//! records `receive time - send_ts` in its own HDR histogram and, with `verify`, checks the
//! payload. The receive time is taken once per `recv()` call, when the chunk arrived in user
//! space. On a stream, this latency includes time spent queued in socket buffers.

use crate::cpu::{SideCounters, ThreadCounters};
use crate::error::{Error, Result};
use crate::host::{HostCpu, ProcStat};
use crate::latency::LatencyHistogram;
use crate::send::Window;
use crate::sock;
use crate::spec::{Pattern, RxMode, RxStall};
use crate::time::now_ns;
use crate::wire::{
    check_payload, get_header, Hello, SenderReport, END_REQUEST, END_SEQ, HEADER_LEN, HELLO_LEN,
    MAX_END_LEN,
};
use std::net::TcpStream;
use std::os::fd::AsRawFd;

/// Smallest receive buffer.
pub const MIN_RX_BUF: usize = 256 << 10;

/// What one flow's receiver saw.
#[derive(Debug, Default)]
pub struct FlowResult {
    /// The hello, if one arrived.
    pub hello: Option<Hello>,
    /// Whole messages received in the window.
    pub messages: u64,
    /// Bytes received in the window (messages x size; raw bytes in discard mode).
    pub bytes: u64,
    /// Gaps, repeats and reorders of the sequence.
    pub seq_errors: u64,
    /// Messages whose payload did not match the verify pattern.
    pub verify_errors: u64,
    /// Payload bytes checked against the verify pattern.
    pub verified_bytes: u64,
    /// Whether every message of the window had its sequence checked (false in discard mode).
    pub seq_checked: bool,
    /// Latency of every message received in the window (rr: round trips; rate: from the
    /// intended send time).
    pub latency: LatencyHistogram,
    /// `rate`: latency from the actual send time, for comparison.
    pub latency_uncorrected: Option<LatencyHistogram>,
    /// Receiver thread's counters over the window.
    pub counters: Option<SideCounters>,
    /// The sender's side, from the end frame.
    pub sender: Option<SenderReport>,
    /// Machine CPU time by category over this flow's window, if asked for.
    pub host_cpu: Option<HostCpu>,
    /// Why the flow ended badly, if it did. What was measured before is kept.
    pub error: Option<String>,
    /// `--rx uring`: times the multishot recv ended (no free buffer, a signal) and was
    /// re-armed.
    pub rx_rearms: u64,
}

/// Options of the receiver.
#[derive(Clone, Copy, Debug)]
pub struct RecvOptions {
    /// How to read.
    pub rx: RxMode,
    /// Sample /proc/stat at the window's edges (one flow of a run does this).
    pub sample_host_cpu: bool,
    /// Reject a sender of another mode (the per-mode clients set this).
    pub expect_mode: Option<crate::spec::Mode>,
    /// Spin on a non-blocking socket instead of sleeping in `recv()` (also on when the
    /// sender's hello asks for it).
    pub busy_poll: bool,
    /// Test hook: pause reading once, inside the window.
    pub stall: Option<RxStall>,
    /// `--rx uring`: provided buffers (count, bytes each); None: the defaults.
    pub uring_buffers: Option<(usize, usize)>,
}

impl RecvOptions {
    /// The default receiver: copying, blocking, nothing else.
    pub fn new(rx: RxMode) -> Self {
        RecvOptions {
            rx,
            sample_host_cpu: false,
            expect_mode: None,
            busy_poll: false,
            stall: None,
            uring_buffers: None,
        }
    }
}

/// Reads the hello from `stream`.
pub fn read_hello(stream: &TcpStream) -> Result<Hello> {
    let mut b = [0u8; HELLO_LEN];
    sock::recv_exact(stream.as_raw_fd(), &mut b, "hello frame")?;
    Hello::decode(&b)
}

/// Tracks the measured window of one thread: its counters (and, if asked, /proc/stat) from the
/// first [`at`](WindowTracker::at) inside the window to the first one past it. Both sides use it.
pub struct WindowTracker {
    /// The window.
    pub window: Window,
    counters: Option<ThreadCounters>,
    stat: Option<ProcStat>,
    sample_host_cpu: bool,
    result_counters: Option<SideCounters>,
    host_cpu: Option<HostCpu>,
    done: bool,
}

impl WindowTracker {
    /// Nothing counted yet; the window starts when [`at`](Self::at) first sees it.
    pub fn new(window: Window, sample_host_cpu: bool) -> Self {
        WindowTracker {
            window,
            counters: None,
            stat: None,
            sample_host_cpu,
            result_counters: None,
            host_cpu: None,
            done: false,
        }
    }

    /// Advances to `now`; returns true if `now` is inside the window.
    #[inline]
    pub fn at(&mut self, now: u64) -> bool {
        if now < self.window.start {
            return false;
        }
        if now < self.window.end {
            if self.counters.is_none() && !self.done {
                self.counters = Some(ThreadCounters::start());
                if self.sample_host_cpu {
                    self.stat = ProcStat::read().ok();
                }
            }
            return true;
        }
        self.close();
        false
    }

    /// Closes the window (if still open) and returns the thread's counters over it; zero if
    /// the window was never entered.
    pub fn side_counters(&mut self) -> SideCounters {
        self.close();
        self.result_counters
            .take()
            .unwrap_or_else(SideCounters::zero)
    }

    /// Ends the window now if it has not ended (stops the counters).
    pub fn close(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        if let Some(c) = self.counters.take() {
            self.result_counters = Some(c.stop());
        }
        if let (Some(a), Ok(b)) = (self.stat.take(), ProcStat::read()) {
            self.host_cpu = Some(b.since(&a));
        }
    }
}

/// Receives one flow until the end frame (or an error) and returns what it measured.
/// Errors end the flow but keep what was measured; they are in `FlowResult::error`.
pub fn run_receiver(stream: TcpStream, opts: RecvOptions) -> FlowResult {
    let mut r = FlowResult::default();
    if let Err(e) = receive(&stream, opts, &mut r) {
        r.error = Some(e.to_string());
    }
    r
}

fn receive(stream: &TcpStream, opts: RecvOptions, r: &mut FlowResult) -> Result<()> {
    sock::set_io_timeouts(stream)?;
    let hello = read_hello(stream)?;
    let t0 = now_ns();
    if let Some(m) = opts.expect_mode {
        if m != hello.mode {
            return Err(Error::Protocol(format!(
                "the server sends mode {} but this client expects mode {m}",
                hello.mode
            )));
        }
    }
    let window = Window::after(t0, hello.warmup_ns, hello.duration_ns);
    r.hello = Some(hello.clone());
    let mut w = WindowTracker::new(window, opts.sample_host_cpu);
    let opts = RecvOptions {
        busy_poll: opts.busy_poll || hello.busy_poll,
        ..opts
    };
    if hello.pattern != Pattern::Stream {
        // rr requests are small writes too: same reason as the sender (RunSpec::tcp_nodelay).
        stream
            .set_nodelay(true)
            .map_err(|e| Error::io("set TCP_NODELAY", e))?;
    }
    let res = match (hello.pattern, opts.rx) {
        (Pattern::Rr, _) => {
            r.seq_checked = true;
            let fd = stream.as_raw_fd();
            crate::send::strategy_for(&hello.to_spec(RxMode::Copy), fd).and_then(|mut s| {
                crate::rr::request(s.as_mut(), fd, &hello, opts.busy_poll, &mut w, r)
            })
        }
        (_, RxMode::Copy) => {
            r.seq_checked = true;
            parse_stream(stream, &hello, &opts, &mut w, r, 0, false)
        }
        (_, RxMode::Discard) => discard_then_parse(stream, &hello, &opts, &mut w, r),
        (_, RxMode::Uring) => {
            r.seq_checked = true;
            crate::recv_uring::receive(stream, &hello, &opts, &mut w, r)
        }
    };
    w.close();
    r.counters = w.result_counters.take();
    r.host_cpu = w.host_cpu.take();
    res
}

/// The receive time of data that just arrived. The stall test hook pauses here once, at its
/// time inside the window, and the time is then taken after the pause (the data waited).
pub(crate) fn arrival_time(stall: &mut Option<RxStall>, window: &Window) -> u64 {
    let now = now_ns();
    match *stall {
        Some(st) if now >= window.start + crate::time::secs_to_ns(st.after_s) => {
            *stall = None;
            std::thread::sleep(std::time::Duration::from_secs_f64(st.for_s));
            now_ns()
        }
        _ => now,
    }
}

/// Asks the sender for its end frame ([`END_REQUEST`]): the receiver's window is over. Best
/// effort: a sender that is gone shows up in the next read.
pub(crate) fn request_end(fd: std::os::fd::RawFd) {
    let _ = sock::send_all(fd, &[END_REQUEST]);
}

fn rx_buf_len(msg_size: usize) -> usize {
    (4 * msg_size).max(MIN_RX_BUF) + HEADER_LEN + MAX_END_LEN
}

/// Copying receiver: parses every message; `expected` is the next sequence number. Once its
/// window is over it asks for the end frame (unless `asked_end`: already done).
fn parse_stream(
    stream: &TcpStream,
    hello: &Hello,
    opts: &RecvOptions,
    w: &mut WindowTracker,
    r: &mut FlowResult,
    mut expected: u64,
    mut asked_end: bool,
) -> Result<()> {
    let fd = stream.as_raw_fd();
    let msg = hello.msg_size as usize;
    let rate = hello.pattern == Pattern::Rate;
    if rate && r.latency_uncorrected.is_none() {
        r.latency_uncorrected = Some(LatencyHistogram::new());
    }
    let mut stall = opts.stall;
    let mut buf = vec![0u8; rx_buf_len(msg)];
    let (mut pos, mut filled) = (0usize, 0usize);
    loop {
        // Compact only when the tail is short: keeps the extra memmove rare.
        if buf.len() - filled < buf.len() / 4 {
            buf.copy_within(pos..filled, 0);
            filled -= pos;
            pos = 0;
        }
        let n = sock::recv_wait(fd, &mut buf[filled..], 0, opts.busy_poll)?;
        if n == 0 {
            return Err(Error::PeerClosed(
                "without an end frame: the sender's side of the record is missing".into(),
            ));
        }
        let now = arrival_time(&mut stall, &w.window);
        let in_window = w.at(now);
        if !asked_end && now >= w.window.end {
            request_end(fd);
            asked_end = true;
        }
        filled += n;
        while filled - pos >= HEADER_LEN {
            let (seq, ts) = get_header(&buf[pos..]);
            if seq == END_SEQ {
                let len = ts as usize;
                if len > MAX_END_LEN {
                    return Err(Error::Protocol(format!("end frame of {len} bytes")));
                }
                if filled - pos < HEADER_LEN + len {
                    break;
                }
                let json = &buf[pos + HEADER_LEN..pos + HEADER_LEN + len];
                let report: SenderReport = serde_json::from_slice(json)
                    .map_err(|e| Error::Protocol(format!("unreadable end frame: {e}")))?;
                r.sender = Some(report);
                return Ok(());
            }
            if filled - pos < msg {
                break;
            }
            if seq != expected {
                r.seq_errors += 1;
            }
            expected = seq.wrapping_add(1);
            if hello.verify {
                if check_payload(&buf[pos + HEADER_LEN..pos + msg], seq).is_some() {
                    r.verify_errors += 1;
                }
                r.verified_bytes += (msg - HEADER_LEN) as u64;
            }
            if in_window {
                r.messages += 1;
                r.bytes += msg as u64;
                if rate {
                    r.latency.record(now.saturating_sub(hello.intended_ns(seq)));
                    if let Some(u) = r.latency_uncorrected.as_mut() {
                        u.record(now.saturating_sub(ts));
                    }
                } else if hello.latency {
                    r.latency.record(now.saturating_sub(ts));
                }
            }
            pos += msg;
        }
        if pos == filled {
            pos = 0;
            filled = 0;
        }
    }
}

/// Discarding receiver: `recv(MSG_TRUNC)` (the kernel drops the bytes without copying them)
/// until its window ends, then it asks for the end frame, skips to the next message boundary
/// and parses the rest, so the end frame and the tail's sequence are still read. The sender
/// sends its end frame only after reading the request, which leaves after the last discarding
/// read: the end frame is never discarded, however late or early either window ends.
fn discard_then_parse(
    stream: &TcpStream,
    hello: &Hello,
    opts: &RecvOptions,
    w: &mut WindowTracker,
    r: &mut FlowResult,
) -> Result<()> {
    let fd = stream.as_raw_fd();
    let msg = hello.msg_size as u64;
    let mut scratch = vec![0u8; rx_buf_len(msg as usize)];
    let mut total: u64 = 0;
    loop {
        let n = sock::recv_wait(fd, &mut scratch, libc::MSG_TRUNC, opts.busy_poll)? as u64;
        if n == 0 {
            return Err(Error::PeerClosed(
                "without an end frame: the sender's side of the record is missing".into(),
            ));
        }
        let now = now_ns();
        total += n;
        if w.at(now) {
            r.bytes += n;
        }
        if now >= w.window.end {
            break;
        }
    }
    request_end(fd);
    // Skip to the next message boundary, then parse normally (the end frame follows some
    // whole messages). Message seq numbers start at 0, so the next one is total / msg.
    let mut skip = (msg - total % msg) % msg;
    while skip > 0 {
        let n = sock::recv_some(fd, &mut scratch[..skip as usize], libc::MSG_TRUNC)? as u64;
        if n == 0 {
            return Err(Error::PeerClosed("without an end frame".into()));
        }
        skip -= n;
        total += n;
    }
    // Whole messages of the discarded part (the window is over: the parser counts nothing).
    r.messages = r.bytes / msg;
    r.bytes = r.messages * msg;
    parse_stream(stream, hello, opts, w, r, total / msg, true)
}
