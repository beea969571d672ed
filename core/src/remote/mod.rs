//! Two hosts from one command, as iperf3 and netperf work: `sendpath serve` waits on the far
//! host ([`server`]) and the driver ([`client`]) runs each cell of a run or sweep through it,
//! with the far host receiving (default) or sending (`--reverse`). Zero-copy only really
//! happens across a NIC, so this is where the study's question gets its real answer.
//!
//! The control protocol ([`proto`], `docs/control-protocol.md`) is JSON lines on its own TCP
//! connection; the data connections are the same wire format as everywhere else, so the
//! receiving side writes the record from the end frames exactly as an in-process run does.
//! The driver always connects (control and data), so only the server's ports need be open.
//!
//! Clocks: an `rr` round trip is timed on one host (the one sending requests, the receiving
//! side). Stream and rate one-way latency needs the sender's stamps on the receiver's clock:
//! before each cell the driver estimates the offset between the two CLOCK_MONOTONICs over the
//! control connection (the probe with the shortest round trip of [`client::CLOCK_PROBES`],
//! as NTP does) and the receiver moves the stamps by it; the record keeps the offset and its
//! uncertainty (half that round trip).

pub mod admit;
pub mod auth;
pub mod client;
pub mod conn;
pub mod cutoff;
pub mod iface;
pub mod proto;
pub mod server;

use crate::error::Result;
use crate::recv::RecvOptions;
use crate::results::FlowResult;
use crate::run::{join_receivers, spawn_receiver};
use crate::sock;
use crate::spec::RunSpec;
use crate::time::now_ns;
use crate::wire::hello::{check_run, HELLO_LEN};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// How far a data connection's schedule start may be from the receiver's now (on the
/// sender's clock): its sender stamps it just before the hello, and the data connections
/// arrive within [`server::DATA_ACCEPT_TIMEOUT`] of the test's acceptance.
pub const HELLO_SCHEDULE_SLACK: Duration = Duration::from_secs(15);

/// Receives one flow on each of `streams` (one thread each; receivers pinned as `spec.pin`
/// says) and returns their results once all ended. Every hello is read and checked against
/// `spec` first ([`check_run`]): the other host is not trusted, and a receiver builds its side
/// (buffers, zero-copy slots, a schedule) from its hello. `sender_clock_ahead_ns`: the
/// sender's clock minus this host's.
pub(crate) fn receive_on(
    streams: Vec<TcpStream>,
    spec: &RunSpec,
    sender_clock_ahead_ns: i64,
) -> Result<Vec<FlowResult>> {
    let mut frames = Vec::with_capacity(streams.len());
    let mut read_at = Vec::with_capacity(streams.len());
    for s in &streams {
        sock::set_io_timeouts(s)?;
        let mut b = [0u8; HELLO_LEN];
        sock::recv_exact(s.as_raw_fd(), &mut b, "hello frame")?;
        frames.push(b);
        read_at.push(now_ns());
    }
    let sender_now = now_ns().saturating_add_signed(sender_clock_ahead_ns);
    let hellos = check_run(
        &crate::send::hello_for(spec, 0),
        &frames,
        sender_now,
        HELLO_SCHEDULE_SLACK.as_nanos() as u64,
    )?;
    let handles: Vec<_> = streams
        .into_iter()
        .zip(hellos.into_iter().zip(read_at))
        .enumerate()
        .map(|(i, (s, hello))| {
            let opts = RecvOptions {
                sample_host_cpu: i == 0,
                expect_mode: Some(spec.mode),
                busy_poll: spec.busy_poll,
                sender_clock_ahead_ns,
                hello: Some(hello),
                ..RecvOptions::new(spec.rx)
            };
            spawn_receiver(spec, i, opts, move || Ok(s))
        })
        .collect();
    Ok(join_receivers(handles))
}
