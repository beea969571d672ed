//! Command-line options shared by `sendpath run` and the per-mode binaries, so that an option
//! means the same thing everywhere.

use crate::affinity::Pin;
use crate::spec::{
    parse_size, Batch, Engine, Pattern, Placement, RunSpec, RxMode, RxStall, UringOrdering,
};
use clap::Args;

/// Options of the sending side (what to send and for how long).
#[derive(Args, Clone, Debug)]
pub struct SendArgs {
    /// Bytes per message, including the 16-byte header (seq + send timestamp); 16 B .. 16 MiB
    /// (64, 16K, 16M).
    #[arg(long, value_name = "BYTES", default_value = "1024", value_parser = parse_size)]
    pub msg_size: usize,
    /// Messages per send operation, the same for every mode on both engines (streams): 1
    /// (one message per send call or SQE, the default), or a size such as 512K (as many whole
    /// messages as fit: A1 stages them back to back, A2 gathers them in one iovec, A3 sends
    /// them from consecutive zero-copy slots). The record's `calls` says what ran.
    #[arg(long, value_name = "1|SIZE", default_value = "1", value_parser = parse_batch)]
    pub batch: Batch,
    /// Measured window in seconds (fractions allowed).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub duration: f64,
    /// Warm-up before the window, in seconds (not measured).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.2)]
    pub warmup: f64,
    /// Who drives the send syscalls: threads (blocking, one per flow) or uring.
    #[arg(long, value_name = "ENGINE", default_value = "threads", value_parser = parse_engine)]
    pub engine: Engine,
    /// Zero-copy buffer slots per flow (A3): a slot is reused only after its completion.
    /// Default: room for four batches, at least 64.
    #[arg(long, value_name = "N")]
    pub zc_slots: Option<usize>,
    /// Fill payloads as a function of (seq, offset) and check them at the receiver (proves
    /// that no zero-copy buffer is rewritten before its completion).
    #[arg(long)]
    pub verify: bool,
    /// Do not timestamp messages or record latency (to measure what latency recording costs).
    #[arg(long)]
    pub no_latency: bool,
    /// Sender worker threads (io_uring: one ring each, flows spread over them; default one
    /// per flow, like the threads engine).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// io_uring, --batch 1: one-message SQEs per linked chain, in flight per flow. Default
    /// 32; for A1 as many as fit 64 KiB. (With a batch, each flow has one send of the batch
    /// in flight.)
    #[arg(long, value_name = "N")]
    pub uring_depth: Option<usize>,
    /// io_uring: completions each io_uring_enter waits for (capped at the sends in flight).
    /// Default: the depth.
    #[arg(long, value_name = "N")]
    pub uring_batch: Option<usize>,
    /// io_uring: how a flow's sends go out in order: `link` (one SQE per message, linked
    /// chains: --batch 1, its default), `coalesce` (one SQE carries the batch: a larger
    /// --batch's default) or `bundle` (a1, a2: the batch as entries of a provided-buffer ring,
    /// at most 256).
    #[arg(long, value_name = "HOW", value_parser = parse_ordering)]
    pub uring_ordering: Option<UringOrdering>,
    /// stream (as fast as possible), rr (request/response, one transaction in flight per
    /// flow, like netperf TCP_RR), or rate (open loop at --rate messages/s per flow).
    #[arg(long, value_name = "PATTERN", default_value = "stream", value_parser = parse_pattern)]
    pub pattern: Pattern,
    /// rr: bytes of each response, header included (default: the request size).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub resp_size: Option<usize>,
    /// rate: messages per second per flow.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Receivers (and both ends of rr) spin on non-blocking sockets instead of sleeping.
    #[arg(long)]
    pub busy_poll: bool,
    /// Stamp one message in N at every stage of its way (kernel software timestamps: send
    /// queue, device, receiving stack, read, ACK) and record where the time went (`stages`);
    /// bare: one in 256 (io_uring streams: rounded up to whole sends of --uring-depth
    /// messages). Copy receiver.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "256")]
    pub timestamps: Option<u64>,
    /// Sample each side's worker threads over the window (software CPU clock, kernel and
    /// user addresses) and record where their CPU went, by bucket and symbol (`profile`);
    /// bare: 1000 samples a second.
    #[arg(long, value_name = "HZ", num_args = 0..=1, default_missing_value = "1000")]
    pub profile: Option<u32>,
    /// Where each side runs: unpinned (the scheduler decides; the default), apart (senders on
    /// one CPU, receivers on another) or together (both on one CPU). Recorded as
    /// spec.placement.
    #[arg(long, value_name = "WHERE", value_parser = parse_placement, conflicts_with = "pin")]
    pub placement: Option<Placement>,
    /// Pin threads by hand: SENDER_CPUS:RECEIVER_CPUS, e.g. 0:1 or 0:0 (same CPU) or 0-1:0-1
    /// (placement `custom`); bare, as --placement apart.
    #[arg(long, value_name = "CPUS", num_args = 0..=1, default_missing_value = "")]
    pub pin: Option<String>,
    /// Test hook (builds with the `test-hooks` feature only): the receiver stops reading
    /// AFTER seconds into the window for FOR seconds, with tiny socket buffers (shows the
    /// coordinated-omission correction at work).
    #[cfg(feature = "test-hooks")]
    #[arg(long, value_name = "AFTER:FOR", hide = true)]
    pub rx_stall: Option<String>,
}

fn parse_engine(s: &str) -> Result<Engine, String> {
    s.parse()
        .map_err(|e: sendpath_record::UnknownName| e.to_string())
}

/// Options of the receiving side.
#[derive(Args, Clone, Debug)]
pub struct RecvArgs {
    /// Receive with MSG_TRUNC: the kernel discards the bytes without copying them to user
    /// space, isolating the send path (no latency, sequences not checked in the window).
    #[arg(long, conflicts_with = "rx")]
    pub rx_discard: bool,
    /// How the receiver reads: copy (recv into a large buffer, the default), discard (as
    /// --rx-discard), or uring (io_uring multishot recv into a provided-buffer ring, every
    /// message parsed in place; stream and rate).
    #[arg(long, value_name = "HOW", value_parser = parse_rx)]
    pub rx: Option<RxMode>,
}

fn parse_rx(s: &str) -> Result<RxMode, String> {
    s.parse()
        .map_err(|e: sendpath_record::UnknownName| e.to_string())
}

impl RecvArgs {
    /// The receiver mode.
    pub fn rx(&self) -> RxMode {
        match (self.rx, self.rx_discard) {
            (Some(rx), _) => rx,
            (None, true) => RxMode::Discard,
            (None, false) => RxMode::Copy,
        }
    }
}

impl SendArgs {
    /// The run spec these options describe, for `mode` and `flows`, with the receiver `rx`.
    pub fn to_spec(
        &self,
        mode: crate::spec::Mode,
        flows: usize,
        rx: RxMode,
    ) -> crate::Result<RunSpec> {
        let (placement, pin) =
            placement_of(self.placement, self.pin.as_deref(), Placement::Unpinned)?;
        let mut spec = RunSpec {
            mode,
            engine: self.engine,
            msg_size: self.msg_size,
            flows,
            duration_s: self.duration,
            warmup_s: self.warmup,
            verify: self.verify,
            latency: !self.no_latency,
            rx,
            threads: self.threads,
            batch: self.batch,
            pattern: self.pattern,
            resp_size: self.resp_size,
            rate: self.rate,
            rate_fraction: None,
            busy_poll: self.busy_poll,
            pin,
            placement,
            timestamps: self.timestamps,
            rx_stall: self.rx_stall()?,
            profile: self.profile,
            ..RunSpec::default()
        };
        spec.resolve_batch(
            self.uring_ordering,
            self.uring_depth,
            self.uring_batch,
            self.zc_slots,
        )?;
        Ok(spec)
    }
}

/// clap's parser of `--batch`.
pub fn parse_batch(s: &str) -> Result<Batch, String> {
    s.parse()
}

/// The placement and CPUs that `--placement` or `--pin` ask for (`default` when neither).
pub fn placement_of(
    placement: Option<Placement>,
    pin: Option<&str>,
    default: Placement,
) -> crate::Result<(Placement, Option<Pin>)> {
    match (placement, pin) {
        (None, Some(s)) if !s.trim().is_empty() => Ok((Placement::Custom, Some(Pin::parse(s)?))),
        (None, Some(_)) => Ok((
            Placement::Apart,
            crate::affinity::pin_for(Placement::Apart)?,
        )),
        (p, _) => {
            let p = p.unwrap_or(default);
            Ok((p, crate::affinity::pin_for(p)?))
        }
    }
}

/// clap's parser of a placement name.
pub fn parse_placement(s: &str) -> Result<Placement, String> {
    s.parse()
        .map_err(|e: sendpath_record::UnknownName| e.to_string())
}

fn parse_ordering(s: &str) -> Result<UringOrdering, String> {
    s.parse()
        .map_err(|e: sendpath_record::UnknownName| e.to_string())
}

fn parse_pattern(s: &str) -> Result<Pattern, String> {
    s.parse()
        .map_err(|e: sendpath_record::UnknownName| e.to_string())
}

impl SendArgs {
    /// The receiver stall the test hook asks for (never, in builds without the hook).
    fn rx_stall(&self) -> crate::Result<Option<RxStall>> {
        #[cfg(feature = "test-hooks")]
        return self.rx_stall.as_deref().map(parse_stall).transpose();
        #[cfg(not(feature = "test-hooks"))]
        Ok(None)
    }
}

#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
fn parse_stall(s: &str) -> crate::Result<RxStall> {
    let bad = || crate::Error::InvalidSpec(format!("--rx-stall {s}: expected AFTER:FOR seconds"));
    let (a, f) = s.split_once(':').ok_or_else(bad)?;
    Ok(RxStall {
        after_s: a.parse().map_err(|_| bad())?,
        for_s: f.parse().map_err(|_| bad())?,
    })
}
