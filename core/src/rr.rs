//! Request/response (`--pattern rr`), the way netperf TCP_RR and sockperf ping-pong measure:
//! each flow keeps exactly one transaction in flight. The client (the receiving side of the
//! connection) sends a request of `msg_size` bytes through the cell's send strategy, waits for
//! the whole response of `resp_size` bytes, and records the round trip in its histogram. The
//! server answers every request through the same mode and engine. Both sides spin on
//! non-blocking sockets with busy-poll, or sleep in `recv()` without it.
//!
//! Ending: after its window the client sends an end frame with no report (`END_SEQ`, length
//! 0); the server then drains its zero-copy completions and sends its own end frame with its
//! side of the record, as in the stream pattern.

use crate::error::{Error, Result};
use crate::recv::{FlowResult, WindowTracker};
use crate::send::threads::BlockingSend;
use crate::send::Window;
use crate::sock;
use crate::time::now_ns;
use crate::wire::{
    check_payload, get_header, put_header, Hello, SenderReport, END_SEQ, HEADER_LEN, MAX_END_LEN,
};
use std::os::fd::RawFd;

/// Reads one request (or the client's end frame) into `buf`; returns its (seq, ts), or None
/// at the end frame. One `recv` in the common case: the client has exactly one request (or
/// the 16-byte end frame) in flight, so nothing beyond it can arrive.
fn read_request(fd: RawFd, buf: &mut [u8], msg: usize, spin: bool) -> Result<Option<(u64, u64)>> {
    let mut got = 0;
    while got < msg {
        let n = sock::recv_wait(fd, &mut buf[got..msg], 0, spin)?;
        if n == 0 {
            return Err(Error::PeerClosed(format!(
                "mid-request ({got} of {msg} bytes) without the client's end frame"
            )));
        }
        got += n;
        if got >= HEADER_LEN && get_header(buf).0 == END_SEQ {
            return Ok(None);
        }
    }
    Ok(Some(get_header(buf)))
}

/// The server side: answers requests until the client's end frame. `strategy` sends
/// `resp_size`-byte responses. Returns the server's report and the error that ended it early.
pub fn serve(
    strategy: &mut dyn BlockingSend,
    fd: RawFd,
    msg_size: usize,
    resp_size: usize,
    spin: bool,
    window: Window,
) -> (SenderReport, Result<()>) {
    let mut buf = vec![0u8; msg_size.max(HEADER_LEN)];
    let mut w = WindowTracker::new(window, false);
    let mut answered_in_window = 0u64;
    let result = loop {
        let req = match read_request(fd, &mut buf, msg_size, spin) {
            Ok(Some(r)) => r,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let in_window = w.at(now_ns());
        // The response echoes the request's seq and timestamp.
        if let Err(e) = strategy.send(fd, req.0, req.1) {
            break Err(e);
        }
        answered_in_window += u64::from(in_window);
    };
    let side = w.side_counters();
    let (zerocopy, result) = match (strategy.finish(fd), result) {
        (Ok(z), r) => (z, r),
        (Err(e), Ok(())) => (None, Err(e)),
        (Err(_), r) => (None, r),
    };
    let report = SenderReport {
        messages: answered_in_window,
        bytes: answered_in_window * resp_size as u64,
        counters: side,
        zerocopy,
        ..Default::default()
    };
    (report, result)
}

/// The client side: one transaction at a time until the window ends, then the end exchange.
/// `strategy` sends `msg_size`-byte requests.
pub fn request(
    strategy: &mut dyn BlockingSend,
    fd: RawFd,
    hello: &Hello,
    spin: bool,
    w: &mut WindowTracker,
    r: &mut FlowResult,
) -> Result<()> {
    let msg = hello.msg_size as usize;
    let resp = hello.resp_size as usize;
    let mut buf = vec![0u8; resp.max(HEADER_LEN + MAX_END_LEN)];
    let mut seq = 0u64;
    let result = loop {
        let t0 = now_ns();
        if t0 >= w.window.end {
            break Ok(());
        }
        let in_window = w.at(t0);
        if let Err(e) = strategy.send(fd, seq, t0) {
            break Err(e);
        }
        if let Err(e) = sock::recv_exact_wait(fd, &mut buf[..resp], spin, "response") {
            break Err(e);
        }
        let t1 = now_ns();
        let (rseq, _) = get_header(&buf);
        if rseq != seq {
            r.seq_errors += 1;
        }
        if hello.verify {
            if check_payload(&buf[HEADER_LEN..resp], seq).is_some() {
                r.verify_errors += 1;
            }
            r.verified_bytes += (resp - HEADER_LEN) as u64;
        }
        if in_window {
            r.messages += 1;
            r.bytes += (msg + resp) as u64;
            r.latency.record(t1 - t0);
        }
        seq += 1;
    };
    w.close();
    // The client's own zero-copy sends are drained but not reported: the record's zero-copy
    // accounting is the server's, as in the stream pattern.
    let finished = strategy.finish(fd).map(|_| ());
    result?;
    finished?;
    let mut end = [0u8; HEADER_LEN];
    put_header(&mut end, END_SEQ, 0);
    sock::send_all(fd, &end)?;
    // The server's end frame: header, then its JSON report.
    sock::recv_exact_wait(fd, &mut buf[..HEADER_LEN], false, "server's end frame")?;
    let (seq, len) = get_header(&buf);
    let len = len as usize;
    if seq != END_SEQ || len > MAX_END_LEN {
        return Err(Error::Protocol(format!(
            "expected the server's end frame, got seq {seq} length {len}"
        )));
    }
    sock::recv_exact_wait(fd, &mut buf[..len], false, "server's end frame")?;
    let report: SenderReport = serde_json::from_slice(&buf[..len])
        .map_err(|e| Error::Protocol(format!("unreadable end frame: {e}")))?;
    r.sender = Some(report);
    Ok(())
}
