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
use crate::recv::tally::{Origin, Tally};
use crate::results::FlowResult;
use crate::send::threads::drive::{finish_stamps, stamped_send, start_stamper};
use crate::send::threads::strategy::BlockingSend;
use crate::sock;
use crate::stamps::RxStamper;
use crate::time::now_ns;
use crate::window::{Window, WindowTracker};
use crate::wire::end::{SenderReport, MAX_END_LEN};
use crate::wire::hello::Hello;
use crate::wire::message::{get_header, put_header, END_SEQ, HEADER_LEN};
use crate::wire::parse::{Parsed, Parser};
use std::os::fd::RawFd;

/// Reads one request (or the client's end frame) into `buf` and parses it; returns its
/// (seq, ts), or None at the end frame. One `recv` in the common case: the client has exactly
/// one request (or the 16-byte end frame) in flight, so nothing beyond it can arrive.
fn read_request(
    fd: RawFd,
    buf: &mut [u8],
    parser: &mut Parser,
    msg: usize,
    spin: bool,
) -> Result<Option<(u64, u64)>> {
    let mut got = 0;
    let mut req = None;
    while got < msg {
        let n = sock::recv_wait(fd, &mut buf[got..msg], 0, spin)?;
        if n == 0 {
            return Err(Error::PeerClosed(format!(
                "mid-request ({got} of {msg} bytes) without the client's end frame"
            )));
        }
        if let Parsed::End(_) =
            parser.feed(&buf[got..got + n], |seq, ts, _| req = Some((seq, ts)))?
        {
            return Ok(None);
        }
        got += n;
    }
    req.map(Some)
        .ok_or_else(|| Error::Protocol("a whole request that did not parse as one".into()))
}

/// Reads exactly `buf.len()` bytes; returns the receive stamp of the last read.
#[allow(clippy::ptr_arg)] // passed on to nix's recvmsg, which takes a Vec
fn recv_exact_stamped(
    fd: RawFd,
    buf: &mut [u8],
    control: &mut Vec<u8>,
    spin: bool,
) -> Result<Option<u64>> {
    let mut got = 0;
    let mut stamp = None;
    while got < buf.len() {
        let (n, s) = sock::recv_wait_stamped(fd, &mut buf[got..], control, spin)?;
        if n == 0 {
            return Err(Error::PeerClosed("mid-response".into()));
        }
        got += n;
        stamp = s.or(stamp);
    }
    Ok(stamp)
}

/// The server side of `spec`: answers its requests until the client's end frame. `strategy`
/// sends the responses. Returns the server's report and the error that ended it early.
pub fn serve(
    strategy: &mut dyn BlockingSend,
    fd: RawFd,
    spec: &crate::spec::RunSpec,
    window: Window,
) -> (SenderReport, Result<()>) {
    let (msg_size, resp_size, spin) = (spec.msg_size, spec.response_size(), spec.busy_poll);
    let (stamp_every, profile_hz) = (spec.timestamps, spec.profile);
    // `--timestamps`: the responses are the stamped messages (the path measured is theirs).
    let mut stamper = match start_stamper(fd, stamp_every) {
        Ok(s) => s,
        Err(e) => return (SenderReport::default(), Err(e)),
    };
    let mut stamps = Vec::new();
    let mut buf = vec![0u8; msg_size.max(HEADER_LEN)];
    // Requests are not checked here: the client checks the responses, which echo them.
    let mut parser = Parser::new(msg_size, false);
    let mut w = WindowTracker::new(window, false).profiled(profile_hz);
    let mut tcp = crate::tcpinfo::Watch::default();
    let mut answered_in_window = 0u64;
    let mut calls_in_window = 0u64;
    let result = loop {
        let req = match read_request(fd, &mut buf, &mut parser, msg_size, spin) {
            Ok(Some(r)) => r,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let now = now_ns();
        let in_window = w.at(now);
        if in_window {
            tcp.open(fd);
        } else if now >= window.end {
            tcp.close(fd);
        }
        // The response echoes the request's seq and timestamp.
        let sent = match stamper.as_mut() {
            Some(st) => stamped_send(
                strategy,
                st,
                &mut stamps,
                fd,
                req.0,
                now,
                req.1,
                resp_size as u64,
                in_window,
            ),
            None => strategy.send(fd, req.0, 1, req.1),
        };
        match sent {
            Ok(s) if in_window => calls_in_window += s.calls,
            Ok(_) => {}
            Err(e) => break Err(e),
        }
        answered_in_window += u64::from(in_window);
    };
    let side = w.side_counters();
    tcp.close(fd);
    let stages = stamper.map(|st| finish_stamps(strategy, st, &mut stamps, fd));
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
        tcp: tcp.take(),
        stages,
        calls: calls_in_window,
        ..Default::default()
    };
    (report, result)
}

/// The client side: one transaction at a time until the window ends, then the end exchange.
/// `strategy` sends `msg_size`-byte requests; each response echoes its request's sequence
/// number and timestamp, so the common parser and tally measure the round trip.
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
    let mut parser = Parser::new(resp, hello.verify);
    let mut tally = Tally::new(
        (msg + resp) as u64,
        (resp - HEADER_LEN) as u64,
        hello.verify,
        Origin::SendStamp,
    );
    let mut stamper = match hello.stamp_every {
        0 => None,
        n => Some(
            RxStamper::new(fd, n as u64).map_err(|e| Error::io("enable receive timestamps", e))?,
        ),
    };
    let mut control = sock::stamp_control();
    let mut seq = 0u64;
    let result = loop {
        let t0 = now_ns();
        if t0 >= w.window.end {
            break Ok(());
        }
        let in_window = w.at(t0);
        if let Err(e) = strategy.send(fd, seq, 1, t0) {
            break Err(e);
        }
        let rx_stamp = match &stamper {
            Some(_) => recv_exact_stamped(fd, &mut buf[..resp], &mut control, spin),
            None => sock::recv_exact_wait(fd, &mut buf[..resp], spin, "response").map(|_| None),
        };
        let rx_stamp = match rx_stamp {
            Ok(s) => s,
            Err(e) => break Err(e),
        };
        let t1 = now_ns();
        let mut whole = 0;
        let parsed = parser.feed(&buf[..resp], |rseq, ts, ok| {
            whole += 1;
            tally.message(r, rseq, ts, ok, t1, in_window);
            if let (Some(st), true) = (stamper.as_mut(), in_window) {
                st.message(rseq, t1, rx_stamp);
            }
        });
        match parsed {
            Ok(Parsed::More) if whole == 1 => {}
            Ok(_) => {
                break Err(Error::Protocol(format!(
                    "expected the response to request {seq}"
                )))
            }
            Err(e) => break Err(e),
        }
        seq += 1;
    };
    w.close();
    r.stages = stamper.take().map(|s| s.finish());
    // The client's own zero-copy sends are drained but not reported: the record's zero-copy
    // accounting is the server's, as in the stream pattern.
    let finished = strategy.finish(fd).map(|_| ());
    result?;
    finished?;
    let mut end = [0u8; HEADER_LEN];
    put_header(&mut end, END_SEQ, 0);
    sock::send_all(fd, &end)?;
    // The server's end frame: header, then its JSON report, read exactly (nothing follows).
    sock::recv_exact_wait(fd, &mut buf[..HEADER_LEN], false, "server's end frame")?;
    let (seq, len) = get_header(&buf);
    let len = len as usize;
    if seq != END_SEQ || len > MAX_END_LEN {
        return Err(Error::Protocol(format!(
            "expected the server's end frame, got seq {seq} length {len}"
        )));
    }
    sock::recv_exact_wait(
        fd,
        &mut buf[HEADER_LEN..HEADER_LEN + len],
        false,
        "server's end frame",
    )?;
    match parser.feed(&buf[..HEADER_LEN + len], |_, _, _| {})? {
        Parsed::End(report) => {
            r.sender = report.map(|b| *b);
            Ok(())
        }
        Parsed::More => Err(Error::Protocol("a short end frame from the server".into())),
    }
}
