//! The command line of `sendpath`: every command's options (clap).

use crate::{bench, sweep};
use clap::{Parser, Subcommand};
use sendpath_core::cli::{RecvArgs, SendArgs};
use sendpath_core::netns::Veth;
use sendpath_core::run::Topology;
use sendpath_core::spec::{Engine, Mode, Pattern, RxMode, UringOrdering};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "sendpath",
    version,
    about = "What each Linux TCP send path really costs"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Measure one cell on loopback: summary, then the v1 JSON record as the last line.
    Run(RunArgs),
    /// Speed comparisons measured back to back (medians and ratios over rounds).
    Bench(BenchArgs),
    /// Sweep a grid of cells; every record is appended to results.jsonl as it is measured.
    Sweep(SweepArgs),
    /// Render derived tables, plots and report.md/report.html from a results file alone.
    Report(ReportArgs),
    /// Two runs side by side: each cell's ratio and whether it is beyond the noise, and the
    /// findings that differ (results files or run directories).
    Compare(CompareArgs),
    /// Wait for a driver on another host (`run --remote`, `sweep --remote`) and run the cells
    /// it asks for, one client at a time, as iperf3 -s and netserver do.
    Serve(ServeArgs),
    /// Make, remove or show the two network namespaces joined by a veth pair (needs root).
    Topology(TopologyArgs),
}

/// `topology up --loss`: a percentage, or None to remove the rule.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LossArg(pub(crate) Option<f64>);

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum TopologyAction {
    Up,
    Down,
    Status,
}

/// Which veth topology (namespaces `<name>_srv`, `<name>_cli` on `--prefix`).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct NetArgs {
    /// Namespace name stem: `ns` gives the study's ns_srv and ns_cli.
    #[arg(long = "ns-name", default_value = "ns")]
    pub(crate) ns_name: String,
    /// Address prefix of the veth pair; the server end gets .1, the client end .2.
    #[arg(long, default_value = "10.200.1.0/24")]
    pub(crate) prefix: String,
}

impl NetArgs {
    pub(crate) fn veth(&self) -> anyhow::Result<Veth> {
        Ok(Veth::new(&self.ns_name, &self.prefix)?)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TopologyKind {
    Loopback,
    Veth,
}

/// Where a run puts its two ends: both in this process, or one on a far host.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct WhereArgs {
    /// loopback (127.0.0.1), or veth: sender in <ns-name>_srv, receivers in <ns-name>_cli
    /// (made by `sendpath topology up`).
    #[arg(long, value_enum, default_value = "loopback")]
    pub(crate) topology: TopologyKind,
    #[command(flatten)]
    pub(crate) net: NetArgs,
    /// Run every cell with `sendpath serve` on HOST[:PORT] (default port 5301): this host
    /// sends and the far host receives, unless --reverse.
    #[arg(long, value_name = "HOST[:PORT]", conflicts_with = "topology")]
    pub(crate) remote: Option<String>,
    /// With --remote: the far host sends and this host receives (as iperf3 -R), so the far
    /// host's send path is measured.
    #[arg(long, requires = "remote")]
    pub(crate) reverse: bool,
    /// With --remote: the far host's shared secret (a file; the secret never crosses the
    /// wire).
    #[arg(long, value_name = "FILE", requires = "remote")]
    pub(crate) token_file: Option<PathBuf>,
}

/// Where the cells run, resolved.
pub(crate) enum Target {
    Local(Topology),
    Remote(sendpath_core::remote::client::Driver),
}

impl WhereArgs {
    pub(crate) fn resolve(&self) -> anyhow::Result<Target> {
        use sendpath_core::remote::{auth::Token, client, proto::FarRole};
        if let Some(r) = &self.remote {
            let token = self
                .token_file
                .as_deref()
                .map(Token::from_file)
                .transpose()?;
            return Ok(Target::Remote(client::Driver::new(client::Remote {
                addr: client::resolve(r)?,
                token,
                far_role: if self.reverse {
                    FarRole::Sender
                } else {
                    FarRole::Receiver
                },
            })));
        }
        Ok(Target::Local(match self.topology {
            TopologyKind::Loopback => Topology::Loopback,
            TopologyKind::Veth => Topology::Veth(self.net.veth()?),
        }))
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Address to listen on for drivers (0.0.0.0: every interface).
    #[arg(long, default_value = "0.0.0.0")]
    pub(crate) listen: std::net::IpAddr,
    /// Control port.
    #[arg(long, default_value_t = sendpath_core::remote::proto::DEFAULT_PORT)]
    pub(crate) port: u16,
    /// Port of every test's data connections (default: a fresh one per test); set it where a
    /// firewall must let the data through.
    #[arg(long, default_value_t = 0)]
    pub(crate) data_port: u16,
    /// Require drivers to prove they hold this file's secret; the server proves it too, and
    /// every control line after login carries a MAC.
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Serve without a token on an address other than loopback: anyone who can reach the
    /// port can run tests (loopback needs no flag).
    #[arg(long, conflicts_with = "token_file")]
    pub(crate) no_auth: bool,
    /// Most flows one test may have.
    #[arg(long, default_value_t = 64)]
    pub(crate) max_flows: usize,
    /// Most seconds of warm-up plus window one test may take.
    #[arg(long, default_value_t = 120.0)]
    pub(crate) max_seconds: f64,
    /// Most MiB of buffers one test may hold.
    #[arg(long, default_value_t = 2048)]
    pub(crate) max_buffer_mib: usize,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SweepArgs {
    /// Named grid; the axis options below override its axes.
    #[arg(long, value_enum, default_value = "quick")]
    pub(crate) preset: sweep::Preset,
    /// Send paths, e.g. a1,a2,a3.
    #[arg(long, value_delimiter = ',', value_parser = parse_mode)]
    pub(crate) modes: Option<Vec<Mode>>,
    /// Engines, e.g. threads,uring.
    #[arg(long, value_delimiter = ',', value_parser = |x: &str| x.parse::<Engine>().map_err(|e| e.to_string()))]
    pub(crate) engines: Option<Vec<Engine>>,
    /// Message sizes in bytes (K/M suffixes allowed), e.g. 64,1K,16K.
    #[arg(long, value_delimiter = ',', value_parser = sendpath_core::spec::parse_size)]
    pub(crate) sizes: Option<Vec<usize>>,
    /// Patterns, e.g. stream,rr,rate (rate cells run at --rate-fractions of the stream
    /// capacity measured for the same cell).
    #[arg(long, value_delimiter = ',', value_parser = |x: &str| x.parse::<Pattern>().map_err(|e| e.to_string()))]
    pub(crate) patterns: Option<Vec<Pattern>>,
    /// Fractions of the measured stream capacity for rate cells, e.g. 0.25,0.5,0.9.
    #[arg(long, value_delimiter = ',')]
    pub(crate) rate_fractions: Option<Vec<f64>>,
    /// Every cell busy-polls (receivers and both ends of rr spin instead of sleeping).
    #[arg(long)]
    pub(crate) busy_poll: bool,
    /// Stamp one message in N of every cell at each stage of its way and report where the
    /// time goes (bare: one in 256; io_uring streams round N up to whole sends).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "256")]
    pub(crate) timestamps: Option<u64>,
    /// Sample each side's threads in every cell (HZ a second; bare: 1000) and report where
    /// the CPU goes, bucket by bucket, and why (zero-copy's costs, the copies' ns per byte
    /// against this machine's memcpy, the unexpected).
    /// The why preset profiles at 1000 (what it costs: `sendpath bench profile`).
    #[arg(long, value_name = "HZ", num_args = 0..=1, default_missing_value = "1000")]
    pub(crate) profile: Option<u32>,
    /// No CPU profile, whatever the preset says.
    #[arg(long, conflicts_with = "profile")]
    pub(crate) no_profile: bool,
    /// Where every cell's sides run: unpinned, apart (senders on one CPU, receivers on
    /// another) or together (one CPU). Default: the preset's (quick and full: together, whose
    /// repetitions scatter least on a small VM; seed: unpinned, as the original study ran).
    #[arg(long, value_name = "WHERE", value_parser = sendpath_core::cli::parse_placement, conflicts_with = "pin")]
    pub(crate) placement: Option<sendpath_core::spec::Placement>,
    /// Pin every cell's threads by hand (SENDER:RECEIVER CPUs; bare: as --placement apart).
    #[arg(long, value_name = "CPUS", num_args = 0..=1, default_missing_value = "")]
    pub(crate) pin: Option<String>,
    /// Flow counts, e.g. 1,2,4,8.
    #[arg(long, value_delimiter = ',')]
    pub(crate) flows: Option<Vec<usize>>,
    /// Measured window per cell, seconds.
    #[arg(long)]
    pub(crate) duration: Option<f64>,
    /// Warm-up per cell, seconds.
    #[arg(long)]
    pub(crate) warmup: Option<f64>,
    /// Repetitions per cell, fixed (default: the preset's; quick and full run 3, and up to 6
    /// while a comparison group's medians are not settled to +-5% and one of its answers is
    /// still near the margin).
    #[arg(long)]
    pub(crate) reps: Option<u64>,
    /// Most repetitions of a cell whose group is not settled (the fewest stay as they are).
    #[arg(long, value_name = "N")]
    pub(crate) max_reps: Option<u64>,
    /// Start no repetition beyond the fewest that would carry the sweep past SECONDS of wall
    /// time from its start (default: the preset's; quick: 225, the others none; 0: none). A
    /// resumed sweep, and each impairment of --impairments, has a limit of its own.
    #[arg(long, value_name = "SECONDS", value_parser = parse_time_limit, allow_hyphen_values = true)]
    pub(crate) time_limit: Option<f64>,
    /// Zero-copy slots per flow (A3). Default: 64, or room for four sends of A3's coalesced
    /// io_uring sends.
    #[arg(long)]
    pub(crate) zc_slots: Option<usize>,
    /// Check payloads at the receiver.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Discarding receiver (MSG_TRUNC): isolates the send path, no latency.
    #[arg(long)]
    pub(crate) rx_discard: bool,
    /// Receiver of every cell: copy, discard (as --rx-discard) or uring (io_uring multishot
    /// recv; stream and rate cells, rr keeps its own loop and the copy receiver).
    #[arg(long, value_name = "HOW", conflicts_with = "rx_discard", value_parser = |x: &str| x.parse::<RxMode>().map_err(|e| e.to_string()))]
    pub(crate) rx: Option<RxMode>,
    /// Messages per send operation of the stream cells, as an axis: 1 (one message per send
    /// call or SQE) and sizes (as many whole messages as fit), e.g. 1,512K; the same for every
    /// mode and engine. Default: the preset's (quick, full: 1,512K; seed: 1).
    #[arg(long = "batch", value_delimiter = ',', value_name = "1|SIZE", value_parser = sendpath_core::cli::parse_batch)]
    pub(crate) batches: Option<Vec<sendpath_core::spec::Batch>>,
    /// io_uring orderings that carry the batched uring stream cells, e.g. coalesce,bundle
    /// (default: coalesce; bundle stands for coalesce where a mode has no bundle form, a3).
    /// Cells of one message per send run linked chains.
    #[arg(long, value_delimiter = ',', value_parser = |x: &str| x.parse::<UringOrdering>().map_err(|e| e.to_string()))]
    pub(crate) uring_orderings: Option<Vec<UringOrdering>>,
    /// Veth only: run the whole grid once per named impairment of the sender -> receivers
    /// direction, each into DIR/<name>/ with its own report, then DIR/impairments.md
    /// comparing them. Names: clean (none), segmented (one segment per packet, as under loss,
    /// no loss), lan and wan (netem: a kernel with sch_netem; wan's 0.1% loss by nftables),
    /// lossy (1% random loss by nftables, on any kernel, plus netem's delay and reordering
    /// where the kernel has netem), bottleneck (tbf: 1 Gbit/s, a 1 ms queue that drops).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub(crate) impairments: Option<Vec<String>>,
    /// Directory for results.jsonl (default runs/<date>-<time>).
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub(crate) out: Option<PathBuf>,
    /// Continue the sweep in DIR, skipping cells already recorded there.
    #[arg(long, value_name = "DIR")]
    pub(crate) resume: Option<PathBuf>,
    /// No progress bar (the table of finished cells is still printed).
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// Do not render the report at the end.
    #[arg(long)]
    pub(crate) no_report: bool,
    #[command(flatten)]
    pub(crate) place: WhereArgs,
}

#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {
    /// paths: A1/A2/A3 at 64 B..64 KiB; latency-cost: with vs without latency recording;
    /// uring: io_uring vs threads engine; zerocopy: A3 vs A1; timestamps: what --timestamps
    /// costs; batch: the modes at equal batch, and what batching changes; profile: what
    /// --profile costs. Back to back.
    #[arg(value_enum)]
    pub(crate) suite: bench::Suite,
    /// Rounds; every round runs every cell once.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Seconds per cell.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) duration: f64,
    /// Append every record to this JSON Lines file.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Where every cell's sides run: unpinned (default), apart or together: on a 2-CPU machine
    /// the scheduler's placement otherwise changes results several-fold.
    #[arg(long, value_name = "WHERE", value_parser = sendpath_core::cli::parse_placement, conflicts_with = "pin")]
    pub(crate) placement: Option<sendpath_core::spec::Placement>,
    /// Pin every cell by hand (SENDER:RECEIVER CPUs; bare: as --placement apart).
    #[arg(long, value_name = "CPUS", num_args = 0..=1, default_missing_value = "")]
    pub(crate) pin: Option<String>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// Send path: a1 (copy + send), a2 (sendmsg iovec), a3 (zero-copy).
    #[arg(long, value_parser = parse_mode)]
    pub(crate) mode: Mode,
    /// Concurrent flows (connections).
    #[arg(long, default_value_t = 1)]
    pub(crate) flows: usize,
    /// Repetition index written into the record.
    #[arg(long, default_value_t = 0)]
    pub(crate) rep: u64,
    /// Also append the record to this JSON Lines file.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) place: WhereArgs,
    #[command(flatten)]
    pub(crate) send: SendArgs,
    #[command(flatten)]
    pub(crate) recv: RecvArgs,
}

pub(crate) fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
        .map_err(|e: sendpath_core::spec::UnknownName| e.to_string())
}

/// `sendpath report`.
#[derive(clap::Args, Debug)]
pub(crate) struct ReportArgs {
    /// A JSON Lines file of sendpath/v1 records.
    pub(crate) results: PathBuf,
    /// Output directory (default: next to the results file).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

/// `sendpath compare`.
#[derive(clap::Args, Debug)]
pub(crate) struct CompareArgs {
    /// The baseline run (a results.jsonl, or the directory holding one).
    pub(crate) a: PathBuf,
    /// The run compared with it.
    pub(crate) b: PathBuf,
}

/// `sendpath topology`.
#[derive(clap::Args, Debug)]
pub(crate) struct TopologyArgs {
    /// up, down or status.
    #[arg(value_enum)]
    pub(crate) action: TopologyAction,
    #[command(flatten)]
    pub(crate) net: NetArgs,
    /// With up: impair the sender -> receivers direction with tc netem, as typed after
    /// `tc qdisc add ... netem` (e.g. "delay 2ms 0.5ms loss 0.5% reorder 1%"; "none"
    /// removes it). Recorded in every veth cell's spec.impairment.
    #[arg(long, value_name = "ARGS")]
    pub(crate) netem: Option<String>,
    /// With up: drop this share of the TCP segments the sender's end sends, at random
    /// (e.g. 1%, 0.5; "none" removes it), with nftables as they arrive at the receivers: no
    /// netem needed. Recorded in spec.impairment, and what it dropped in each cell's
    /// tcp.impairment_dropped.
    #[arg(long, value_name = "PERCENT", value_parser = |x: &str| sendpath_core::netns::loss::parse_percent(x).map(LossArg).map_err(|e| e.to_string()))]
    pub(crate) loss: Option<LossArg>,
}

/// A time limit in seconds: finite and not negative (0: none).
pub(crate) fn parse_time_limit(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds (0 or more; 0: no limit)"
        )),
    }
}
