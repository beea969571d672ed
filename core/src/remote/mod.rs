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

pub mod auth;
pub mod client;
pub mod iface;
pub mod proto;
pub mod server;

use crate::recv::RecvOptions;
use crate::results::FlowResult;
use crate::run::{join_receivers, spawn_receiver};
use crate::spec::RunSpec;
use crate::wire::hello::ExpectedHello;
use std::net::TcpStream;

/// Receives one flow on each of `streams` (one thread each; receivers pinned as `spec.pin`
/// says), checking that every hello announces `spec`; returns their results once all ended.
/// `sender_clock_ahead_ns`: the sender's clock minus this host's.
pub(crate) fn receive_on(
    streams: Vec<TcpStream>,
    spec: &RunSpec,
    sender_clock_ahead_ns: i64,
) -> Vec<FlowResult> {
    let expect = ExpectedHello::of(&crate::send::hello_for(spec, 0));
    let handles: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let opts = RecvOptions {
                sample_host_cpu: i == 0,
                expect_mode: Some(spec.mode),
                busy_poll: spec.busy_poll,
                sender_clock_ahead_ns,
                expect_hello: Some(expect),
                ..RecvOptions::new(spec.rx)
            };
            spawn_receiver(spec, i, opts, move || Ok(s))
        })
        .collect();
    join_receivers(handles)
}
