//! The receiving end of a connection: read the hello, then run rr's client or the stream
//! receiver the options ask for, and keep what the window counted even when it fails.

use super::{rate, rr, send::strategy_for};
use crate::error::{Error, Result};
use crate::recv::options::RecvOptions;
use crate::recv::rx::Rx;
use crate::recv::stream::{copy, discard};
use crate::recv::tally::Tally;
use crate::recv::uring;
use crate::results::FlowResult;
use crate::sock;
use crate::spec::{Pattern, RunSpec, RxMode};
use crate::time::now_ns;
use crate::window::{Window, WindowTracker};
use crate::wire::hello::{Hello, HELLO_LEN};
use crate::wire::message::HEADER_LEN;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

/// Reads the hello from `stream`.
pub fn read_hello(stream: &TcpStream) -> Result<Hello> {
    let mut b = [0u8; HELLO_LEN];
    sock::recv_exact(stream.as_raw_fd(), &mut b, "hello frame")?;
    Hello::decode(&b)
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
    let (hello, t0) = match opts.hello {
        Some(read) => read,
        None => (read_hello(stream)?, now_ns()),
    };
    if let Some(m) = opts.expect_mode {
        if m != hello.mode {
            return Err(Error::Protocol(format!(
                "the server sends mode {} but this client expects mode {m}",
                hello.mode
            )));
        }
    }
    let window = Window::after(t0, hello.warmup_ns, hello.duration_ns);
    r.hello = Some(hello);
    let mut w = WindowTracker::new(window, opts.sample_host_cpu)
        .profiled((hello.profile_hz > 0).then_some(hello.profile_hz));
    let opts = RecvOptions {
        busy_poll: opts.busy_poll || hello.busy_poll,
        ..opts
    };
    if opts.busy_poll {
        r.napi_busy_poll_us = sock::busy_poll_napi(stream.as_raw_fd());
    }
    if hello.pattern != Pattern::Stream {
        // rr requests are small writes too: same reason as the sender (RunSpec::tcp_nodelay).
        stream
            .set_nodelay(true)
            .map_err(|e| Error::io("set TCP_NODELAY", e))?;
    }
    let msg = hello.msg_size as u64;
    let mut tally = Tally::new(
        msg,
        msg - HEADER_LEN as u64,
        hello.verify,
        rate::origin(&hello),
    )
    .with_sender_clock_ahead(opts.sender_clock_ahead_ns);
    r.seq_checked = opts.rx.facts().reads_messages || hello.pattern == Pattern::Rr;
    let res = match (hello.pattern, opts.rx) {
        (Pattern::Rr, _) => {
            let fd = stream.as_raw_fd();
            strategy_for(&RunSpec::from_hello(&hello, RxMode::Copy), fd)
                .and_then(|mut s| rr::request(s.as_mut(), fd, &hello, opts.busy_poll, &mut w, r))
        }
        (_, rx) => {
            let flow = Rx::new(stream, &hello, &opts, &mut w, r, &mut tally);
            match rx {
                RxMode::Copy => copy(flow, false),
                RxMode::Discard => discard(flow),
                RxMode::Uring => uring::receive(flow),
            }
        }
    };
    (r.counters, r.host_cpu) = w.take_results();
    res
}
