//! `--rx uring`: the receiver on io_uring. One multishot `Recv` per flow fills buffers of a
//! provided-buffer ring; each completion names the buffer and the bytes in it. Messages are
//! parsed in place, piece by piece (a header or end frame that straddles two buffers is
//! stitched; payloads are checked where they lie), with the same checks and the same latency
//! as the copying receiver: the receive time of a message is that of the completion that
//! brought its last byte. A buffer goes back to the ring as soon as it is parsed; when the
//! kernel finds the ring empty the multishot request ends with `ENOBUFS` and is re-armed.

use crate::error::{Error, Result};
use crate::recv::arrival_time;
use crate::recv::{FlowResult, RecvOptions, WindowTracker};
use crate::send::uring::{enter, make_ring, BufRing, WAIT_SLICE};
use crate::sock::IO_TIMEOUT;
use crate::spec::Pattern;
use crate::wire::{
    get_header, payload_matches_at, Hello, SenderReport, END_SEQ, HEADER_LEN, MAX_END_LEN,
};
use io_uring::{cqueue, opcode, types};
use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// Provided buffers per flow and their size (the ring holds 2 MiB per flow).
pub const RX_BUFFERS: usize = 32;
/// Bytes per provided buffer.
pub const RX_BUFFER_LEN: usize = 64 << 10;

/// Parses a stream that arrives in arbitrary pieces, without copying it.
struct Pieces<'h> {
    hello: &'h Hello,
    msg: usize,
    expected: u64,
    /// A header being stitched together, and how much of it is in.
    hdr: [u8; HEADER_LEN],
    hdr_len: usize,
    /// The message whose payload is arriving: (seq, send ts).
    cur: Option<(u64, u64)>,
    payload_left: usize,
    payload_bad: bool,
    /// The end frame being collected: its length and the bytes so far.
    end: Option<(usize, Vec<u8>)>,
}

impl<'h> Pieces<'h> {
    fn new(hello: &'h Hello) -> Self {
        Pieces {
            hello,
            msg: hello.msg_size as usize,
            expected: 0,
            hdr: [0; HEADER_LEN],
            hdr_len: 0,
            cur: None,
            payload_left: 0,
            payload_bad: false,
            end: None,
        }
    }

    /// Takes the next piece of the stream, received at `now`; returns the sender's report
    /// once the end frame is complete.
    fn feed(
        &mut self,
        mut data: &[u8],
        now: u64,
        in_window: bool,
        r: &mut FlowResult,
    ) -> Result<Option<SenderReport>> {
        while !data.is_empty() || matches!(&self.end, Some((len, b)) if b.len() == *len) {
            if let Some((len, buf)) = &mut self.end {
                let take = (*len - buf.len()).min(data.len());
                buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if buf.len() < *len {
                    continue;
                }
                let report = serde_json::from_slice(buf)
                    .map_err(|e| Error::Protocol(format!("unreadable end frame: {e}")))?;
                return Ok(Some(report));
            }
            if self.cur.is_none() {
                let take = (HEADER_LEN - self.hdr_len).min(data.len());
                self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&data[..take]);
                self.hdr_len += take;
                data = &data[take..];
                if self.hdr_len < HEADER_LEN {
                    continue;
                }
                self.hdr_len = 0;
                let (seq, ts) = get_header(&self.hdr);
                if seq == END_SEQ {
                    let len = ts as usize;
                    if len > MAX_END_LEN {
                        return Err(Error::Protocol(format!("end frame of {len} bytes")));
                    }
                    self.end = Some((len, Vec::with_capacity(len)));
                    continue;
                }
                self.cur = Some((seq, ts));
                self.payload_left = self.msg - HEADER_LEN;
                self.payload_bad = false;
            }
            let (seq, ts) = self.cur.expect("a message is arriving");
            let take = self.payload_left.min(data.len());
            if self.hello.verify && take > 0 {
                let offset = self.msg - HEADER_LEN - self.payload_left;
                self.payload_bad |= !payload_matches_at(&data[..take], seq, offset);
            }
            data = &data[take..];
            self.payload_left -= take;
            if self.payload_left == 0 {
                self.cur = None;
                self.complete(seq, ts, now, in_window, r);
            }
        }
        Ok(None)
    }

    /// Message `seq` is whole: the copying receiver's accounting, exactly.
    fn complete(&mut self, seq: u64, ts: u64, now: u64, in_window: bool, r: &mut FlowResult) {
        if seq != self.expected {
            r.seq_errors += 1;
        }
        self.expected = seq.wrapping_add(1);
        if self.hello.verify {
            r.verify_errors += u64::from(self.payload_bad);
            r.verified_bytes += (self.msg - HEADER_LEN) as u64;
        }
        if in_window {
            r.messages += 1;
            r.bytes += self.msg as u64;
            if self.hello.pattern == Pattern::Rate {
                r.latency
                    .record(now.saturating_sub(self.hello.intended_ns(seq)));
                if let Some(u) = r.latency_uncorrected.as_mut() {
                    u.record(now.saturating_sub(ts));
                }
            } else if self.hello.latency {
                r.latency.record(now.saturating_sub(ts));
            }
        }
    }
}

/// Re-arms in a row that brought no data before the receiver gives up (a kernel that keeps
/// ending the request with ENOBUFS although every buffer is back).
const MAX_EMPTY_REARMS: u32 = 1000;
/// How long the receiver waits for its cancelled multishot request to end before it leaks
/// the buffers rather than free memory the kernel might still write.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Receives one flow through io_uring until the end frame, over `opts.uring_buffers` (count,
/// bytes each; default [`RX_BUFFERS`] x [`RX_BUFFER_LEN`]) provided buffers.
pub fn receive(
    stream: &std::net::TcpStream,
    hello: &Hello,
    opts: &RecvOptions,
    w: &mut WindowTracker,
    r: &mut FlowResult,
) -> Result<()> {
    let (count, len) = opts.uring_buffers.unwrap_or((RX_BUFFERS, RX_BUFFER_LEN));
    if !(1..=1 << 15).contains(&count) || len == 0 || len > u32::MAX as usize {
        return Err(Error::InvalidSpec(format!(
            "io_uring receive buffers: {count} x {len} bytes (1..=32768 buffers of at least 1 byte)"
        )));
    }
    if hello.pattern == Pattern::Rate && r.latency_uncorrected.is_none() {
        r.latency_uncorrected = Some(crate::latency::LatencyHistogram::new());
    }
    let buffers: Vec<Box<[u8]>> = (0..count)
        .map(|_| vec![0u8; len].into_boxed_slice())
        .collect();
    let mut ring_bufs = BufRing::new(count);
    let ring = make_ring(4, (4 * count as u32).next_power_of_two())?;
    for (i, b) in buffers.iter().enumerate() {
        ring_bufs.push(b, i as u16);
    }
    ring_bufs.publish();
    ring_bufs
        .register(&ring.ring, 0)
        .map_err(|e| Error::io("register the receive buffer ring (Linux 5.19)", e))?;
    let mut ring = ring.ring;
    let mut armed = false;
    let res = run(
        stream,
        hello,
        opts,
        w,
        r,
        &mut ring,
        &mut ring_bufs,
        &buffers,
        &mut armed,
    );
    if armed && !cancel(&mut ring) {
        // The kernel may still write into the buffers: never free them under it.
        std::mem::forget(buffers);
        std::mem::forget(ring_bufs);
    }
    // Otherwise the ring goes first (declared last), then the buffer ring and the buffers.
    drop(ring);
    res
}

/// Cancels the multishot request and waits (bounded) for its last CQE; true once it ended.
fn cancel(ring: &mut io_uring::IoUring) -> bool {
    let e = opcode::AsyncCancel::new(MULTISHOT)
        .build()
        .user_data(CANCEL);
    // SAFETY: the cancel request names no memory.
    if unsafe { ring.submission().push(&e) }.is_err() {
        return false;
    }
    let deadline = Instant::now() + CANCEL_WAIT;
    let slice = types::Timespec::from(std::time::Duration::from_millis(50));
    let args = types::SubmitArgs::new().timespec(&slice);
    while Instant::now() < deadline {
        let _ = ring.submitter().submit_with_args(1, &args);
        for cqe in ring.completion() {
            if cqe.user_data() == MULTISHOT && !cqueue::more(cqe.flags()) {
                return true;
            }
        }
    }
    false
}

/// user_data of the multishot recv, and of its cancellation.
const MULTISHOT: u64 = 1;
const CANCEL: u64 = 2;

#[allow(clippy::too_many_arguments)]
fn run(
    stream: &std::net::TcpStream,
    hello: &Hello,
    opts: &RecvOptions,
    w: &mut WindowTracker,
    r: &mut FlowResult,
    ring: &mut io_uring::IoUring,
    ring_bufs: &mut BufRing,
    buffers: &[Box<[u8]>],
    armed: &mut bool,
) -> Result<()> {
    let fd = types::Fd(stream.as_raw_fd());
    let arm = || opcode::RecvMulti::new(fd, 0).build().user_data(MULTISHOT);
    // SAFETY: the buffers the request fills belong to the registered buffer ring, which the
    // caller keeps alive until the request has ended.
    unsafe { ring.submission().push(&arm()) }.expect("an empty SQ has room");
    *armed = true;
    let mut parser = Pieces::new(hello);
    let mut stall = opts.stall;
    let slice = types::Timespec::from(WAIT_SLICE);
    let wait = types::SubmitArgs::new().timespec(&slice);
    // Busy-polling still enters with GETEVENTS (a zero timeout): a DEFER_TASKRUN ring runs
    // the receive's completion work only then.
    let zero = types::Timespec::new();
    let poll = types::SubmitArgs::new().timespec(&zero);
    let args = if opts.busy_poll { &poll } else { &wait };
    let mut last_progress = Instant::now();
    let mut empty_rearms = 0u32;
    let mut asked_end = false;
    loop {
        enter(&ring.submitter(), 1, args).map_err(|e| Error::io("io_uring_enter (receiver)", e))?;
        let mut rearm = false;
        let mut data = false;
        let mut end = None;
        for cqe in ring.completion() {
            if cqe.user_data() != MULTISHOT {
                continue;
            }
            let (res, flags) = (cqe.result(), cqe.flags());
            if res > 0 {
                data = true;
                let bid = cqueue::buffer_select(flags).ok_or_else(|| {
                    Error::Protocol("a multishot recv completion without a buffer".into())
                })? as usize;
                let now = arrival_time(&mut stall, &w.window);
                let in_window = w.at(now);
                if !asked_end && now >= w.window.end {
                    crate::recv::request_end(stream.as_raw_fd());
                    asked_end = true;
                }
                let got_end = parser.feed(&buffers[bid][..res as usize], now, in_window, r)?;
                // Parsed: the buffer goes back to the kernel.
                ring_bufs.push(&buffers[bid], bid as u16);
                if got_end.is_some() {
                    end = got_end;
                }
            }
            if !cqueue::more(flags) {
                *armed = false;
                match res {
                    // Data with the request ended (the CQ was full), no buffer left, or a
                    // signal: the request goes on as a new one.
                    n if n > 0 || n == -libc::ENOBUFS || n == -libc::EINTR => rearm = true,
                    0 if end.is_none() => {
                        return Err(Error::PeerClosed(
                            "without an end frame: the sender's side of the record is missing"
                                .into(),
                        ))
                    }
                    0 => {}
                    n => {
                        return Err(crate::sock::classify(
                            io::Error::from_raw_os_error(-n),
                            "io_uring recv",
                        ))
                    }
                }
            }
        }
        ring_bufs.publish();
        if let Some(report) = end {
            r.sender = Some(report);
            return Ok(());
        }
        if rearm {
            r.rx_rearms += 1;
            empty_rearms = if data { 0 } else { empty_rearms + 1 };
            if empty_rearms > MAX_EMPTY_REARMS {
                return Err(Error::Timeout(format!(
                    "the io_uring receive ended {MAX_EMPTY_REARMS} times in a row without data"
                )));
            }
            // SAFETY: as for the first request.
            unsafe { ring.submission().push(&arm()) }.expect("the SQ is empty between enters");
            *armed = true;
        }
        let t = Instant::now();
        if data {
            last_progress = t;
        } else if t.duration_since(last_progress) >= IO_TIMEOUT {
            return Err(Error::Timeout(format!(
                "no data for {} s on an io_uring receiver (the sender stopped?)",
                IO_TIMEOUT.as_secs()
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{fill_payload, put_header};

    fn hello(msg: u32, verify: bool) -> Hello {
        Hello {
            mode: crate::spec::Mode::A1,
            engine: crate::spec::Engine::Uring,
            pattern: Pattern::Stream,
            msg_size: msg,
            flow: 0,
            flows: 1,
            zc_slots: 1,
            warmup_ns: 0,
            duration_ns: 1,
            verify,
            latency: true,
            resp_size: 0,
            rate: 0.0,
            sched0_ns: 0,
            busy_poll: false,
        }
    }

    /// `n` messages of `msg` bytes from seq 0, then an end frame.
    fn stream(msg: usize, n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for seq in 0..n {
            let mut m = vec![0u8; msg];
            put_header(&mut m, seq, 1);
            fill_payload(&mut m[HEADER_LEN..], seq);
            out.extend_from_slice(&m);
        }
        let report = crate::wire::encode_end(&SenderReport::default());
        out.extend_from_slice(&report);
        out
    }

    #[test]
    fn pieces_of_any_size_parse_like_one_buffer() {
        for msg in [16usize, 100, 1003] {
            let s = stream(msg, 50);
            for piece in [1usize, 7, 16, 17, 999, 4096, s.len()] {
                let h = hello(msg as u32, true);
                let mut p = Pieces::new(&h);
                let mut r = FlowResult::default();
                let mut end = None;
                for chunk in s.chunks(piece) {
                    assert!(end.is_none(), "bytes after the end frame");
                    end = p.feed(chunk, 10, true, &mut r).unwrap();
                }
                assert!(end.is_some(), "msg {msg} piece {piece}: end frame");
                assert_eq!((r.messages, r.seq_errors, r.verify_errors), (50, 0, 0));
                assert_eq!(r.bytes, 50 * msg as u64);
                assert_eq!(r.latency.count(), 50);
            }
        }
    }

    #[test]
    fn a_corrupt_byte_and_a_missing_message_are_counted() {
        let msg = 100;
        let mut s = stream(msg, 10);
        s[3 * msg + 50] ^= 0xff; // payload of message 3
        s.drain(5 * msg..6 * msg); // message 5 never arrives
        let h = hello(msg as u32, true);
        let mut p = Pieces::new(&h);
        let mut r = FlowResult::default();
        let mut end = None;
        for chunk in s.chunks(33) {
            end = p.feed(chunk, 10, true, &mut r).unwrap();
        }
        assert!(end.is_some());
        assert_eq!((r.messages, r.seq_errors, r.verify_errors), (9, 1, 1));
    }
}
