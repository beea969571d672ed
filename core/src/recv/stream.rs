//! The socket receivers of a stream or rate flow: the copying one (large reads, every message
//! parsed in place) and the discarding one (`recv(MSG_TRUNC)` until the window ends, then
//! parsing). Both end by asking for the end frame when their window is over.
//!
//! The copying receiver reads large chunks (at least 256 KiB) and parses every complete message
//! in them, so it is never the bottleneck; the receive time is taken once per `recv()` call,
//! when the chunk arrived in user space. On a stream, latency therefore includes time spent
//! queued in socket buffers.

use super::rx::Rx;
use crate::error::{Error, Result};
use crate::sock;
use crate::spec::memory::rx_buf_len;
use crate::spec::RxStall;
use crate::time::now_ns;
use crate::window::Window;
use crate::wire::end::END_REQUEST;
use crate::wire::parse::{Parsed, Parser};
use std::os::fd::{AsRawFd, RawFd};

/// The receive time of data that just arrived. The stall test hook pauses here once, at its
/// time inside the window, and the time is then taken after the pause (the data waited).
pub fn arrival_time(stall: &mut Option<RxStall>, window: &Window) -> u64 {
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
pub fn request_end(fd: RawFd) {
    let _ = sock::send_all(fd, &[END_REQUEST]);
}

/// The error of a stream that ended without its end frame.
pub fn no_end_frame() -> Error {
    Error::PeerClosed("without an end frame: the sender's side of the record is missing".into())
}

/// Copying receiver: parses every message until the end frame (`tally` knows the next
/// sequence number). Once its window is over it asks for the end frame (unless `asked_end`:
/// already done).
pub fn copy(rx: Rx, mut asked_end: bool) -> Result<()> {
    let (stream, hello, opts, w, r, tally) = rx.parts();
    let fd = stream.as_raw_fd();
    let mut parser = Parser::new(hello.msg_size as usize, hello.verify);
    let mut stall = opts.stall;
    let mut buf = vec![0u8; rx_buf_len(hello.msg_size as usize)];
    let mut stamper = match hello.stamp_every {
        0 => None,
        n => Some(
            crate::stamps::RxStamper::new(fd, n as u64)
                .map_err(|e| Error::io("enable receive timestamps", e))?,
        ),
    };
    let mut control = sock::stamp_control();
    let result = loop {
        let (n, rx_stamp) = match &stamper {
            Some(_) => sock::recv_wait_stamped(fd, &mut buf, &mut control, opts.busy_poll)?,
            None => (sock::recv_wait(fd, &mut buf, 0, opts.busy_poll)?, None),
        };
        if n == 0 {
            break Err(no_end_frame());
        }
        let now = arrival_time(&mut stall, &w.window);
        let in_window = w.at(now);
        if !asked_end && now >= w.window.end {
            request_end(fd);
            asked_end = true;
        }
        let parsed = parser.feed(&buf[..n], |seq, ts, ok| {
            tally.message(r, seq, ts, ok, now, in_window);
            if let (Some(st), true) = (stamper.as_mut(), in_window) {
                st.message(seq, now, rx_stamp);
            }
        })?;
        if let Parsed::End(report) = parsed {
            r.sender = report.map(|b| *b);
            break Ok(());
        }
    };
    r.stages = stamper.map(|s| s.finish());
    result
}

/// Discarding receiver: `recv(MSG_TRUNC)` (the kernel drops the bytes without copying them)
/// until its window ends, then it asks for the end frame, skips to the next message boundary
/// and parses the rest, so the end frame and the tail's sequence are still read. The sender
/// sends its end frame only after reading the request, which leaves after the last discarding
/// read: the end frame is never discarded, however late or early either window ends.
pub fn discard(rx: Rx) -> Result<()> {
    let (stream, hello, opts, w, r, tally) = rx.parts();
    let fd = stream.as_raw_fd();
    let msg = hello.msg_size as u64;
    let mut scratch = vec![0u8; rx_buf_len(msg as usize)];
    let mut total: u64 = 0;
    loop {
        let n = sock::recv_wait(fd, &mut scratch, libc::MSG_TRUNC, opts.busy_poll)? as u64;
        if n == 0 {
            return Err(no_end_frame());
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
            return Err(no_end_frame());
        }
        skip -= n;
        total += n;
    }
    // Whole messages of the discarded part (the window is over: the parser counts nothing).
    r.messages = r.bytes / msg;
    r.bytes = r.messages * msg;
    tally.expect_from(total / msg);
    copy(Rx::new(stream, hello, opts, w, r, tally), true)
}
