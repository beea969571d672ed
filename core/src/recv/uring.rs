//! `--rx uring`: the receiver on io_uring. One multishot `Recv` per flow fills buffers of a
//! provided-buffer ring; each completion names the buffer and the bytes in it. Messages are
//! parsed in place by the common parser, with the same checks and the same latency as the
//! copying receiver: the receive time of a message is that of the completion that brought its
//! last byte. A buffer goes back to the ring as soon as it is parsed; when the kernel finds the
//! ring empty the multishot request ends with `ENOBUFS` and is re-armed.

use super::rx::Rx;
use super::stream::{arrival_time, no_end_frame, request_end};
use crate::error::{Error, Result};
use crate::kmem::Lent;
use crate::sock::IO_TIMEOUT;
pub use crate::spec::memory::{RX_BUFFERS, RX_BUFFER_LEN};
use crate::uring_sys::bufring::BufRing;
use crate::uring_sys::ring::{enter, make_ring, WAIT_SLICE};
use crate::wire::parse::{Parsed, Parser};
use io_uring::{cqueue, opcode, types};
use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// Re-arms in a row that brought no data before the receiver gives up (a kernel that keeps
/// ending the request with ENOBUFS although every buffer is back).
const MAX_EMPTY_REARMS: u32 = 1000;
/// How long the receiver waits for its cancelled multishot request to end before it leaks
/// the buffers rather than free memory the kernel might still write.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Receives one flow through io_uring until the end frame, over `opts.uring_buffers` (count,
/// bytes each; default [`RX_BUFFERS`] x [`RX_BUFFER_LEN`]) provided buffers.
pub fn receive(rx: Rx) -> Result<()> {
    let opts = rx.opts;
    let (count, len) = opts.uring_buffers.unwrap_or((RX_BUFFERS, RX_BUFFER_LEN));
    if !(1..=1 << 15).contains(&count) || len == 0 || len > u32::MAX as usize {
        return Err(Error::InvalidSpec(format!(
            "io_uring receive buffers: {count} x {len} bytes (1..=32768 buffers of at least 1 byte)"
        )));
    }
    // The buffers and the ring that names them: the kernel writes them until the multishot
    // request has ended, so they stay lent (and leak if it never does).
    let mut lent = Lent::new((
        (0..count)
            .map(|_| vec![0u8; len].into_boxed_slice())
            .collect::<Vec<Box<[u8]>>>(),
        BufRing::new(count),
    ));
    let (buffers, ring_bufs) = &mut *lent;
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
    let res = run(rx, &mut ring, ring_bufs, buffers, &mut armed);
    let still_armed = armed && !cancel(&mut ring);
    drop(ring);
    lent.hold(still_armed);
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

fn run(
    rx: Rx,
    ring: &mut io_uring::IoUring,
    ring_bufs: &mut BufRing,
    buffers: &[Box<[u8]>],
    armed: &mut bool,
) -> Result<()> {
    let (stream, hello, opts, w, r, tally) = rx.parts();
    let fd = types::Fd(stream.as_raw_fd());
    let arm = || opcode::RecvMulti::new(fd, 0).build().user_data(MULTISHOT);
    // SAFETY: the buffers the request fills belong to the registered buffer ring, which the
    // caller keeps alive until the request has ended.
    unsafe { ring.submission().push(&arm()) }.expect("an empty SQ has room");
    *armed = true;
    let mut parser = Parser::new(hello.msg_size as usize, hello.verify);
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
                    Error::Kernel("a multishot recv completion without a buffer".into())
                })? as usize;
                let now = arrival_time(&mut stall, &w.window);
                let in_window = w.at(now);
                if !asked_end && now >= w.window.end {
                    request_end(stream.as_raw_fd());
                    asked_end = true;
                }
                let parsed = parser.feed(&buffers[bid][..res as usize], |seq, ts, ok| {
                    tally.message(r, seq, ts, ok, now, in_window)
                })?;
                // Parsed: the buffer goes back to the kernel.
                ring_bufs.push(&buffers[bid], bid as u16);
                if let Parsed::End(report) = parsed {
                    end = Some(report);
                }
            }
            if !cqueue::more(flags) {
                *armed = false;
                match res {
                    // Data with the request ended (the CQ was full), no buffer left, or a
                    // signal: the request goes on as a new one.
                    n if n > 0 || n == -libc::ENOBUFS || n == -libc::EINTR => rearm = true,
                    0 if end.is_none() => return Err(no_end_frame()),
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
            r.sender = report.map(|b| *b);
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
