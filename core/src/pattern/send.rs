//! The sending end of a connection, per engine and pattern: io_uring streams run on rings of
//! many flows; every other case is one flow on one thread through the common lifecycle.

use super::rr;
use crate::error::{Error, Result};
use crate::schedule::Schedule;
use crate::send::lifecycle::{
    finish, hello_for, prepare_socket, send_hello, FlowResults, SenderOutcome,
};
use crate::send::threads::drive::{run_flow, Unpaced};
use crate::send::threads::{self, BlockingSend};
use crate::send::uring;
use crate::spec::{Engine, Pattern, RunSpec};
use crate::time::now_ns;
use crate::window::Window;
use crate::wire::end::SenderReport;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};

/// Runs the sending side of `flows` (stream, flow index) on the engine of `spec` in this
/// thread: the io_uring engine multiplexes stream flows on one ring; otherwise each flow needs
/// a thread of its own, so they run one after the other (callers give them one flow).
pub fn run_senders(flows: Vec<(TcpStream, u32)>, spec: &RunSpec) -> FlowResults {
    match spec.engine {
        Engine::Uring if spec.pattern == Pattern::Stream => uring::run_group(flows, spec),
        _ => flows
            .into_iter()
            .map(|(s, f)| send_flow(s, spec, f))
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
        None => Err(Error::Internal("the sender returned no flow".into())),
    }
}

/// One flow on one thread: the lifecycle around the pattern's loop.
fn send_flow(stream: TcpStream, spec: &RunSpec, flow: u32) -> SenderOutcome {
    if let Err(e) = prepare_socket(&stream, spec) {
        return finish(&stream, flow, SenderReport::default(), Err(e), false);
    }
    let fd = stream.as_raw_fd();
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
    if let Err(e) = send_hello(fd, &hello) {
        return finish(&stream, flow, SenderReport::default(), Err(e), false);
    }
    let window = Window::after(hello.sched0_ns, hello.warmup_ns, hello.duration_ns);
    let (report, result) = match (strategy, Schedule::of(&hello)) {
        (Err(e), _) => (SenderReport::default(), Err(e)),
        (Ok(mut s), _) if spec.pattern == Pattern::Rr => rr::serve(s.as_mut(), fd, spec, window),
        (Ok(mut s), Some(schedule)) => run_flow(s.as_mut(), fd, spec, window, &schedule),
        (Ok(mut s), None) => run_flow(s.as_mut(), fd, spec, window, &Unpaced),
    };
    finish(&stream, flow, report, result, true)
}

/// The one-message-at-a-time strategy of `spec` on socket `fd`: a blocking send per message
/// on the threads engine, one SQE submitted and waited for on io_uring.
pub fn strategy_for(spec: &RunSpec, fd: RawFd) -> Result<Box<dyn BlockingSend>> {
    match spec.engine {
        Engine::Threads => threads::for_mode(spec, fd),
        Engine::Uring => Ok(Box::new(uring::UringOneShot::new(spec, fd)?)),
    }
}
