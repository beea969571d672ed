//! How a receiver reads.

use crate::spec::{Mode, RxMode, RxStall};

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
        }
    }
}
