//! How a receiver reads.

use crate::spec::{Mode, RxMode, RxStall};
use crate::wire::hello::Hello;

/// Options of the receiver.
#[derive(Clone, Copy, Debug)]
pub struct RecvOptions {
    /// How to read.
    pub rx: RxMode,
    /// Sample /proc/stat at the window's edges (one flow of a run does this).
    pub sample_host_cpu: bool,
    /// Reject a sender of another mode (the per-mode clients set this).
    pub expect_mode: Option<Mode>,
    /// Spin on a non-blocking socket instead of sleeping in `recv()` (also on when the
    /// sender's hello asks for it).
    pub busy_poll: bool,
    /// Test hook: pause reading once, inside the window.
    pub stall: Option<RxStall>,
    /// `--rx uring`: provided buffers (count, bytes each); None: the defaults.
    pub uring_buffers: Option<(usize, usize)>,
    /// The sender's CLOCK_MONOTONIC minus this host's (0 on one host): a sender on another
    /// host stamps messages on its own clock, and one-way latency is measured on this one.
    pub sender_clock_ahead_ns: i64,
    /// The connection's hello, already read (and checked against the run that was agreed:
    /// `sendpath serve` checks every data connection before it builds anything from one), and
    /// when it was read; the window counts from then. None: the receiver reads it.
    pub hello: Option<(Hello, u64)>,
}

impl RecvOptions {
    /// The default receiver: copying, blocking, nothing else.
    pub fn new(rx: RxMode) -> Self {
        RecvOptions {
            rx,
            sample_host_cpu: false,
            expect_mode: None,
            busy_poll: false,
            stall: None,
            uring_buffers: None,
            sender_clock_ahead_ns: 0,
            hello: None,
        }
    }
}
