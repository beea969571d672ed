//! The sender: hello, the measured send loop of one strategy, end frame.
//!
//! [`run_sender`] owns one data connection. It picks the strategy for (mode, engine), sends the
//! hello, drives the strategy through warm-up and the measured window, drains zero-copy
//! completions, and sends the end frame with its side of the record.

pub mod threads;
pub mod uring;

use crate::error::{Error, Result};
use crate::sock;
use crate::spec::{Engine, Pattern, RunSpec};
use crate::time::{now_ns, secs_to_ns, Nanos};
use crate::wire::{encode_end, Hello, SenderReport};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;

/// The measured window of one flow, on CLOCK_MONOTONIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First instant inside the window.
    pub start: Nanos,
    /// First instant after the window.
    pub end: Nanos,
}

impl Window {
    /// The window that follows `warmup_ns` after `t0` and lasts `duration_ns`.
    pub fn after(t0: Nanos, warmup_ns: Nanos, duration_ns: Nanos) -> Self {
        Window {
            start: t0 + warmup_ns,
            end: t0 + warmup_ns + duration_ns,
        }
    }
}

/// The hello this sender sends for `spec` on flow `flow`.
pub fn hello_for(spec: &RunSpec, flow: u32) -> Hello {
    Hello {
        mode: spec.mode,
        engine: spec.engine,
        pattern: spec.pattern,
        msg_size: spec.msg_size as u32,
        flow,
        flows: spec.flows as u32,
        zc_slots: spec.zc_slots as u32,
        warmup_ns: secs_to_ns(spec.warmup_s),
        duration_ns: secs_to_ns(spec.duration_s),
        verify: spec.verify,
        latency: spec.records_latency(),
        resp_size: spec.response_size() as u32,
        rate: spec.rate.unwrap_or(0.0),
        sched0_ns: 0,
        busy_poll: spec.busy_poll,
    }
}

/// How one flow's sender ended.
#[derive(Debug)]
pub struct SenderOutcome {
    /// The flow's index.
    pub flow: u32,
    /// Its side of the record, as sent in the end frame (`error` says why it failed, if it
    /// did): an in-process run keeps it even when the end frame never arrived.
    pub report: SenderReport,
    /// The error that ended the flow early, if any.
    pub result: Result<()>,
}

impl SenderOutcome {
    /// The outcome of `flow` from its report and result (the report's `error` is filled in).
    pub fn new(flow: u32, mut report: SenderReport, result: Result<()>) -> Self {
        if let Err(e) = &result {
            report.error.get_or_insert_with(|| e.to_string());
        }
        SenderOutcome {
            flow,
            report,
            result,
        }
    }
}

/// How each flow's sender ended.
pub type FlowResults = Vec<SenderOutcome>;

/// Runs the sending side of `flows` (stream, flow index) on the engine of `spec` in this
/// thread: the io_uring engine multiplexes them on one ring; the threads engine needs one
/// thread per flow, so it runs them one after the other (callers give it one flow).
pub fn run_senders(flows: Vec<(TcpStream, u32)>, spec: &RunSpec) -> FlowResults {
    match spec.engine {
        Engine::Uring if spec.pattern == Pattern::Stream => uring::run_group(flows, spec),
        _ => flows
            .into_iter()
            .map(|(s, f)| {
                let (report, result) = send_flow(s, spec, f);
                SenderOutcome::new(f, report, result)
            })
            .collect(),
    }
}

/// Runs the sending side of one flow on `stream` and returns its report (also sent to the
/// receiver in the end frame). An error that ends the flow early is in `report.error` and is
/// returned as `Err` too, after the end frame was attempted so the receiver learns why.
pub fn run_sender(stream: TcpStream, spec: &RunSpec, flow: u32) -> Result<SenderReport> {
    let mut out = run_senders(vec![(stream, flow)], spec);
    match out.pop() {
        Some(o) => o.result.map(|_| o.report),
        None => Err(Error::Protocol("the sender returned no flow".into())),
    }
}

/// One flow on the threads engine (or, for rr and rate, io_uring one send at a time): its
/// report and how it ended.
fn send_flow(stream: TcpStream, spec: &RunSpec, flow: u32) -> (SenderReport, Result<()>) {
    let mut report = SenderReport::default();
    let result = send_flow_into(stream, spec, flow, &mut report);
    (report, result)
}

fn send_flow_into(
    stream: TcpStream,
    spec: &RunSpec,
    flow: u32,
    out: &mut SenderReport,
) -> Result<()> {
    sock::set_io_timeouts(&stream)?;
    let fd = stream.as_raw_fd();
    if spec.rx_stall.is_some() {
        let _ = sock::setsockopt_int(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            crate::spec::STALL_SOCKET_BUFFER as i32,
        );
    }
    if spec.tcp_nodelay() {
        stream
            .set_nodelay(true)
            .map_err(|e| Error::io("set TCP_NODELAY", e))?;
    }
    let mut hello = hello_for(spec, flow);
    // The strategy is built before the hello so that a kernel that cannot do it (no
    // SO_ZEROCOPY, no io_uring) is reported to the receiver through the end frame. rr
    // servers send responses, of their own size.
    let strategy = match spec.pattern {
        Pattern::Rr => strategy_for(
            &RunSpec {
                msg_size: spec.response_size(),
                ..spec.clone()
            },
            fd,
        ),
        _ => strategy_for(spec, fd),
    };
    // The schedule origin of a rate run: message `seq` is intended at sched0 + seq / rate.
    hello.sched0_ns = now_ns();
    sock::send_all(fd, &hello.encode())?;
    let window = Window::after(hello.sched0_ns, hello.warmup_ns, hello.duration_ns);
    let (mut report, result) = match (strategy, spec.pattern) {
        (Ok(mut s), Pattern::Rr) => crate::rr::serve(
            s.as_mut(),
            fd,
            spec.msg_size,
            spec.response_size(),
            spec.busy_poll,
            window,
        ),
        (Ok(mut s), Pattern::Rate) => threads::run_flow(s.as_mut(), fd, spec, window, Some(&hello)),
        (Ok(mut s), Pattern::Stream) => threads::run_flow(s.as_mut(), fd, spec, window, None),
        (Err(e), _) => (SenderReport::default(), Err(e)),
    };
    if let Err(e) = &result {
        report.error = Some(e.to_string());
    }
    // Best effort: if the peer is gone the end frame cannot arrive, and the first error stands.
    let end_sent = sock::send_all(fd, &encode_end(&report));
    let _ = stream.shutdown(Shutdown::Write);
    *out = report;
    result?;
    end_sent
}

/// The one-message-at-a-time strategy of `spec` on socket `fd`: a blocking send per message
/// on the threads engine, one SQE submitted and waited for on io_uring.
pub fn strategy_for(
    spec: &RunSpec,
    fd: std::os::fd::RawFd,
) -> Result<Box<dyn threads::BlockingSend>> {
    match spec.engine {
        Engine::Threads => threads::for_mode(spec, fd),
        Engine::Uring => Ok(Box::new(uring::UringOneShot::new(spec, fd)?)),
    }
}
