//! The fully resolved options of one run.

use super::limits::DEFAULT_ZC_SLOTS;
use super::uring_opts::UringOpts;
use crate::wire::hello::Hello;
use sendpath_record::{Batch, Engine, Mode, Pattern, Placement, RxMode};
use serde::{Deserialize, Serialize};

/// The fully resolved options of one run. Everything a record needs to be reproduced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Copy discipline.
    pub mode: Mode,
    /// Syscall engine.
    pub engine: Engine,
    /// Traffic pattern.
    pub pattern: Pattern,
    /// Bytes per message, header included (>= 16).
    pub msg_size: usize,
    /// Concurrent connections.
    pub flows: usize,
    /// Measured window in seconds.
    pub duration_s: f64,
    /// Warm-up before the window, in seconds (not measured).
    pub warmup_s: f64,
    /// Zero-copy buffer slots per flow (A3 only), one message each, contiguous in memory: a
    /// slot is reused only after the kernel's completion for every send that referenced it.
    pub zc_slots: usize,
    /// Fill payloads as a function of (seq, offset) and check them at the receiver.
    pub verify: bool,
    /// Take a send timestamp per message and record per-message latency.
    pub latency: bool,
    /// How the receiver reads.
    pub rx: RxMode,
    /// Sender worker threads. `None`: one per flow (the threads engine always has one per
    /// flow; the io_uring engine runs one ring per thread and spreads flows over them).
    pub threads: Option<usize>,
    /// Messages per send operation (`--batch`), the same for every mode on both engines:
    /// streams only (rr and rate send one message at a time). On io_uring it sets how many
    /// messages one SQE carries; `uring.ordering` says how the SQEs of a flow stay in order.
    #[serde(default)]
    pub batch: Batch,
    /// io_uring engine tunables (ignored by the threads engine).
    pub uring: UringOpts,
    /// Response size for `rr` (None: the request size).
    #[serde(default)]
    pub resp_size: Option<usize>,
    /// Messages per second per flow for `rate`.
    #[serde(default)]
    pub rate: Option<f64>,
    /// `rate` cells of a sweep: the fraction of the stream capacity measured for the same
    /// cell that `rate` was set to (informational; the sweep fills it).
    #[serde(default)]
    pub rate_fraction: Option<f64>,
    /// Receivers (and both ends of `rr`) spin on non-blocking sockets instead of sleeping.
    #[serde(default)]
    pub busy_poll: bool,
    /// CPUs of each side's threads (None: the scheduler decides).
    #[serde(default)]
    pub pin: Option<crate::affinity::Pin>,
    /// How `pin` was chosen (recorded as `spec.placement`).
    #[serde(default)]
    pub placement: Placement,
    /// `--timestamps`: stamp one message in this many at every stage of its way (kernel
    /// software timestamps) and record the stages; None: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamps: Option<u64>,
    /// Test hook: the receiver stops reading for a while, with tiny socket buffers, so the
    /// sender blocks (shows what coordinated-omission correction does).
    #[serde(default)]
    pub rx_stall: Option<RxStall>,
    /// `--profile [HZ]`: sample each side's worker threads over the window this many times a
    /// second and record where their CPU went (`profile`); None: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<u32>,
}

/// A pause of the receiver: `after_s` into the window it stops reading for `for_s`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RxStall {
    /// Seconds into the measured window.
    pub after_s: f64,
    /// Length of the pause.
    pub for_s: f64,
}

/// Socket buffer size the stall hook asks for on both ends (the kernel doubles it): small
/// enough that the sender blocks soon after the receiver stops reading.
pub const STALL_SOCKET_BUFFER: usize = 16384;
pub use crate::wire::hello::MAX_RATE;

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            mode: Mode::A1,
            engine: Engine::Threads,
            pattern: Pattern::Stream,
            msg_size: 1024,
            flows: 1,
            duration_s: 1.0,
            warmup_s: 0.2,
            zc_slots: DEFAULT_ZC_SLOTS,
            verify: false,
            latency: true,
            rx: RxMode::Copy,
            threads: None,
            batch: Batch::One,
            uring: UringOpts::default(),
            resp_size: None,
            rate: None,
            rate_fraction: None,
            busy_poll: false,
            pin: None,
            placement: Placement::Unpinned,
            timestamps: None,
            rx_stall: None,
            profile: None,
        }
    }
}

impl RunSpec {
    /// Whether per-message latency is recorded: asked for, and the receiver reads the bytes.
    pub fn records_latency(&self) -> bool {
        self.latency && self.rx.facts().reads_messages
    }

    /// One message in this many is stamped (`--timestamps N`), or None. An io_uring stream
    /// rounds N up to a whole number of its sends (`uring.depth` messages each, or chain
    /// links): a sample must end its send call (send/uring/stamp.rs), so a smaller N would
    /// cut every send short (measured: A3 1 KiB at depth 512 with N = 64 lost two thirds of
    /// its throughput, all of it to the shorter sends).
    pub fn stamp_every(&self) -> Option<u64> {
        let n = self.timestamps?;
        Some(if self.carries_batch_on_rings() {
            // (Saturating: a huge N is refused by validate, not wrapped.)
            n.checked_next_multiple_of(self.uring.depth.max(1) as u64)
                .unwrap_or(u64::MAX)
        } else {
            n
        })
    }

    /// Whether the batch of a send is carried by an io_uring ordering: a stream on an engine
    /// with rings (rr and rate send one message at a time).
    pub fn carries_batch_on_rings(&self) -> bool {
        self.engine.facts().rings && self.pattern == Pattern::Stream
    }

    /// Sender worker threads this spec runs (resolved: one per flow unless set).
    pub fn sender_threads(&self) -> usize {
        // rr and rate keep one transaction or paced send per flow at a time: one thread each.
        if self.pattern != Pattern::Stream || !self.engine.facts().shares_threads {
            return self.flows;
        }
        self.threads
            .unwrap_or(self.flows)
            .clamp(1, self.flows.max(1))
    }

    /// The spec with every derived choice made explicit (threads per engine and pattern,
    /// latency as actually recorded): two specs that run the same cell compare equal.
    pub fn normalized(&self) -> RunSpec {
        RunSpec {
            threads: Some(self.sender_threads()),
            latency: self.records_latency(),
            // io_uring tunables mean nothing to the threads engine (and are not recorded).
            uring: if self.engine.facts().rings {
                self.uring
            } else {
                UringOpts::default()
            },
            ..self.clone()
        }
    }

    /// Whether the data sockets disable Nagle's algorithm: for the latency patterns (rr,
    /// rate), as sockperf does, because Nagle holding a small write until the peer's delayed
    /// ACK adds up to 40 ms that has nothing to do with the send path (seen here: a 2000/s
    /// rate run at 15 ms p50 with Nagle, 15 us without). Streams keep the default, as iperf3.
    pub fn tcp_nodelay(&self) -> bool {
        self.pattern != Pattern::Stream || self.rx_stall.is_some()
    }

    /// Bytes of an `rr` response.
    pub fn response_size(&self) -> usize {
        self.resp_size.unwrap_or(self.msg_size)
    }

    /// The run a hello announces, as seen by a receiver that reads with `rx` (io_uring
    /// tunables are not in the hello: they arrive in the end frame).
    pub fn from_hello(h: &Hello, rx: RxMode) -> RunSpec {
        RunSpec {
            mode: h.mode,
            engine: h.engine,
            pattern: h.pattern,
            msg_size: h.msg_size as usize,
            flows: h.flows as usize,
            duration_s: h.duration_ns as f64 / 1e9,
            warmup_s: h.warmup_ns as f64 / 1e9,
            zc_slots: h.zc_slots as usize,
            verify: h.verify,
            latency: h.latency,
            rx,
            resp_size: (h.pattern == Pattern::Rr).then_some(h.resp_size as usize),
            rate: (h.pattern == Pattern::Rate).then_some(h.rate),
            busy_poll: h.busy_poll,
            timestamps: (h.stamp_every > 0).then_some(h.stamp_every as u64),
            batch: h.batch,
            profile: (h.profile_hz > 0).then_some(h.profile_hz),
            ..RunSpec::default()
        }
    }
}
