//! One sender lifecycle for both engines: set the socket up, send the hello, (run), wait for
//! the receiver's end request, send the end frame with this side of the record, shut down.
//! The engines differ only in how they send messages between the hello and the end.

use crate::error::{Error, Result};
use crate::sock;
use crate::spec::RunSpec;
use crate::time::secs_to_ns;
use crate::wire::end::{encode_end, SenderReport};
use crate::wire::hello::Hello;
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// Longest teardown may wait for outstanding zero-copy completions.
pub const ZC_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Sets the data socket up for `spec` before the hello: I/O timeouts (every blocking call is
/// bounded), Nagle off where the spec says so, and the stall hook's tiny send buffer.
pub fn prepare_socket(stream: &TcpStream, spec: &RunSpec) -> Result<()> {
    sock::set_io_timeouts(stream)?;
    if spec.rx_stall.is_some() {
        // Small buffers, so the receiver's stall backs up to the sender.
        let _ = sock::set_send_buffer(stream, crate::spec::STALL_SOCKET_BUFFER);
    }
    if spec.tcp_nodelay() {
        stream
            .set_nodelay(true)
            .map_err(|e| Error::io("set TCP_NODELAY", e))?;
    }
    Ok(())
}

/// The hello this sender sends for `spec` on flow `flow`, its schedule starting now (a
/// receiver that does not trust its sender checks that it is near its own now).
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
        sched0_ns: crate::time::now_ns(),
        busy_poll: spec.busy_poll,
        stamp_every: spec
            .stamp_every()
            .map_or(0, |n| n.clamp(1, u32::MAX as u64) as u32),
        batch: spec.batch,
        profile_hz: spec.profile.unwrap_or(0),
    }
}

/// Sends `hello` on `fd`.
pub fn send_hello(fd: RawFd, hello: &Hello) -> Result<()> {
    sock::send_all(fd, &hello.encode())
}

/// Whether the receiver has asked for the end frame ([`crate::wire::end::END_REQUEST`]), without
/// blocking. `late`: the time to ask is over, so not having asked is an error.
pub fn end_requested(fd: RawFd, late: bool) -> Result<bool> {
    let mut b = [0u8; 1];
    // SAFETY: b is a live, writable 1-byte buffer.
    let n = unsafe { libc::recv(fd, b.as_mut_ptr().cast(), 1, libc::MSG_DONTWAIT) };
    match n {
        1 if b[0] == crate::wire::end::END_REQUEST => Ok(true),
        1 => Err(Error::Protocol(format!(
            "the receiver sent byte {:#04x} where only the end request ({:#04x}) may come",
            b[0],
            crate::wire::end::END_REQUEST
        ))),
        0 => Err(Error::PeerClosed(
            "the receiver closed the connection before asking for the end frame".into(),
        )),
        _ => {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) if !late => Ok(false),
                Some(libc::EAGAIN) | Some(libc::EINTR) => Err(Error::Timeout(format!(
                    "the receiver did not ask for the end frame within {} s of the window's end",
                    sock::IO_TIMEOUT.as_secs()
                ))),
                _ => Err(sock::classify(e, "read the receiver's end request")),
            }
        }
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

/// Ends flow `flow` on `stream`: sends the end frame carrying `report` (with the error of
/// `result`, if any) unless no hello went out, shuts the writing side, and returns the outcome.
/// Best effort: if the peer is gone the end frame cannot arrive, and the first error stands.
pub fn finish(
    stream: &TcpStream,
    flow: u32,
    mut report: SenderReport,
    result: Result<()>,
    hello_sent: bool,
) -> SenderOutcome {
    if let Err(e) = &result {
        report.error.get_or_insert_with(|| e.to_string());
    }
    let end_sent = if hello_sent {
        sock::send_all(stream.as_raw_fd(), &encode_end(&report))
    } else {
        Ok(())
    };
    let _ = stream.shutdown(Shutdown::Write);
    let result = result.and(end_sent);
    SenderOutcome::new(flow, report, result)
}
