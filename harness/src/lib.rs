//! # sendpath-harness
//!
//! The `sendpath` command: `run` measures one cell (both ends in this process) and prints a
//! human summary followed by its v1 record as the last line.

pub mod bench;
pub mod impair;
pub mod sweep;

use clap::{Parser, Subcommand};
use sendpath_core::cli::{RecvArgs, SendArgs};
use sendpath_core::netns::Veth;
use sendpath_core::report::text;
use sendpath_core::report::v1::Status;
use sendpath_core::run::{self, Topology};
use sendpath_core::spec::{Engine, Mode, Pattern, RunSpec, RxMode, UringOrdering};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "sendpath",
    version,
    about = "What each Linux TCP send path really costs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Measure one cell on loopback: summary, then the v1 JSON record as the last line.
    Run(RunArgs),
    /// Speed comparisons measured back to back (medians and ratios over rounds).
    Bench(BenchArgs),
    /// Sweep a grid of cells; every record is appended to results.jsonl as it is measured.
    Sweep(SweepArgs),
    /// Render derived tables, plots and report.md/report.html from a results file alone.
    Report {
        /// A JSON Lines file of sendpath/v1 records.
        results: PathBuf,
        /// Output directory (default: next to the results file).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Two runs side by side: each cell's ratio and whether it is beyond the noise, and the
    /// findings that differ (results files or run directories).
    Compare {
        /// The baseline run (a results.jsonl, or the directory holding one).
        a: PathBuf,
        /// The run compared with it.
        b: PathBuf,
    },
    /// Wait for a driver on another host (`run --remote`, `sweep --remote`) and run the cells
    /// it asks for, one client at a time, as iperf3 -s and netserver do.
    Serve(ServeArgs),
    /// Make, remove or show the two network namespaces joined by a veth pair (needs root).
    Topology {
        /// up, down or status.
        #[arg(value_enum)]
        action: TopologyAction,
        #[command(flatten)]
        net: NetArgs,
        /// With up: impair the sender -> receivers direction with tc netem, as typed after
        /// `tc qdisc add ... netem` (e.g. "delay 2ms 0.5ms loss 0.5% reorder 1%"; "none"
        /// removes it). Recorded in every veth cell's spec.impairment.
        #[arg(long, value_name = "ARGS")]
        netem: Option<String>,
        /// With up: drop this share of the TCP segments the sender's end sends, at random
        /// (e.g. 1%, 0.5; "none" removes it), with nftables as they arrive at the receivers: no
        /// netem needed. Recorded in spec.impairment, and what it dropped in each cell's
        /// tcp.impairment_dropped.
        #[arg(long, value_name = "PERCENT", value_parser = |x: &str| sendpath_core::netns::loss::parse_percent(x).map(LossArg).map_err(|e| e.to_string()))]
        loss: Option<LossArg>,
    },
}

/// `topology up --loss`: a percentage, or None to remove the rule.
#[derive(Clone, Copy, Debug)]
struct LossArg(Option<f64>);

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum TopologyAction {
    Up,
    Down,
    Status,
}

/// Which veth topology (namespaces `<name>_srv`, `<name>_cli` on `--prefix`).
#[derive(clap::Args, Debug, Clone)]
struct NetArgs {
    /// Namespace name stem: `ns` gives the study's ns_srv and ns_cli.
    #[arg(long = "ns-name", default_value = "ns")]
    ns_name: String,
    /// Address prefix of the veth pair; the server end gets .1, the client end .2.
    #[arg(long, default_value = "10.200.1.0/24")]
    prefix: String,
}

impl NetArgs {
    fn veth(&self) -> anyhow::Result<Veth> {
        Ok(Veth::new(&self.ns_name, &self.prefix)?)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TopologyKind {
    Loopback,
    Veth,
}

/// Where a run puts its two ends: both in this process, or one on a far host.
#[derive(clap::Args, Debug, Clone)]
struct WhereArgs {
    /// loopback (127.0.0.1), or veth: sender in <ns-name>_srv, receivers in <ns-name>_cli
    /// (made by `sendpath topology up`).
    #[arg(long, value_enum, default_value = "loopback")]
    topology: TopologyKind,
    #[command(flatten)]
    net: NetArgs,
    /// Run every cell with `sendpath serve` on HOST[:PORT] (default port 5301): this host
    /// sends and the far host receives, unless --reverse.
    #[arg(long, value_name = "HOST[:PORT]", conflicts_with = "topology")]
    remote: Option<String>,
    /// With --remote: the far host sends and this host receives (as iperf3 -R), so the far
    /// host's send path is measured.
    #[arg(long, requires = "remote")]
    reverse: bool,
    /// With --remote: the far host's shared secret (a file; the secret never crosses the
    /// wire).
    #[arg(long, value_name = "FILE", requires = "remote")]
    token_file: Option<PathBuf>,
}

/// Where the cells run, resolved.
enum Target {
    Local(Topology),
    Remote(sendpath_core::remote::client::Driver),
}

impl WhereArgs {
    fn resolve(&self) -> anyhow::Result<Target> {
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
struct ServeArgs {
    /// Address to listen on for drivers (0.0.0.0: every interface).
    #[arg(long, default_value = "0.0.0.0")]
    listen: std::net::IpAddr,
    /// Control port.
    #[arg(long, default_value_t = sendpath_core::remote::proto::DEFAULT_PORT)]
    port: u16,
    /// Port of every test's data connections (default: a fresh one per test); set it where a
    /// firewall must let the data through.
    #[arg(long, default_value_t = 0)]
    data_port: u16,
    /// Require drivers to prove they hold this file's secret; the server proves it too, and
    /// every control line after login carries a MAC.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Serve without a token on an address other than loopback: anyone who can reach the
    /// port can run tests (loopback needs no flag).
    #[arg(long, conflicts_with = "token_file")]
    no_auth: bool,
    /// Most flows one test may have.
    #[arg(long, default_value_t = 64)]
    max_flows: usize,
    /// Most seconds of warm-up plus window one test may take.
    #[arg(long, default_value_t = 120.0)]
    max_seconds: f64,
    /// Most MiB of buffers one test may hold.
    #[arg(long, default_value_t = 2048)]
    max_buffer_mib: usize,
}

#[derive(clap::Args, Debug)]
struct SweepArgs {
    /// Named grid; the axis options below override its axes.
    #[arg(long, value_enum, default_value = "quick")]
    preset: sweep::Preset,
    /// Send paths, e.g. a1,a2,a3.
    #[arg(long, value_delimiter = ',', value_parser = parse_mode)]
    modes: Option<Vec<Mode>>,
    /// Engines, e.g. threads,uring.
    #[arg(long, value_delimiter = ',', value_parser = |x: &str| x.parse::<Engine>().map_err(|e| e.to_string()))]
    engines: Option<Vec<Engine>>,
    /// Message sizes in bytes (K/M suffixes allowed), e.g. 64,1K,16K.
    #[arg(long, value_delimiter = ',', value_parser = sendpath_core::spec::parse_size)]
    sizes: Option<Vec<usize>>,
    /// Patterns, e.g. stream,rr,rate (rate cells run at --rate-fractions of the stream
    /// capacity measured for the same cell).
    #[arg(long, value_delimiter = ',', value_parser = |x: &str| x.parse::<Pattern>().map_err(|e| e.to_string()))]
    patterns: Option<Vec<Pattern>>,
    /// Fractions of the measured stream capacity for rate cells, e.g. 0.25,0.5,0.9.
    #[arg(long, value_delimiter = ',')]
    rate_fractions: Option<Vec<f64>>,
    /// Every cell busy-polls (receivers and both ends of rr spin instead of sleeping).
    #[arg(long)]
    busy_poll: bool,
    /// Stamp one message in N of every cell at each stage of its way and report where the
    /// time goes (bare: one in 256; io_uring streams round N up to whole sends).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "256")]
    timestamps: Option<u64>,
    /// Sample each side's threads in every cell (HZ a second; bare: 1000) and report where
    /// the CPU goes, bucket by bucket, and why (zero-copy's costs, the copies' ns per byte
    /// against this machine's memcpy, the unexpected).
    /// The why preset profiles at 1000 (what it costs: `sendpath bench profile`).
    #[arg(long, value_name = "HZ", num_args = 0..=1, default_missing_value = "1000")]
    profile: Option<u32>,
    /// No CPU profile, whatever the preset says.
    #[arg(long, conflicts_with = "profile")]
    no_profile: bool,
    /// Where every cell's sides run: unpinned, apart (senders on one CPU, receivers on
    /// another) or together (one CPU). Default: the preset's (quick and full: together, whose
    /// repetitions scatter least on a small VM; seed: unpinned, as the original study ran).
    #[arg(long, value_name = "WHERE", value_parser = sendpath_core::cli::parse_placement, conflicts_with = "pin")]
    placement: Option<sendpath_core::spec::Placement>,
    /// Pin every cell's threads by hand (SENDER:RECEIVER CPUs; bare: as --placement apart).
    #[arg(long, value_name = "CPUS", num_args = 0..=1, default_missing_value = "")]
    pin: Option<String>,
    /// Flow counts, e.g. 1,2,4,8.
    #[arg(long, value_delimiter = ',')]
    flows: Option<Vec<usize>>,
    /// Measured window per cell, seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Warm-up per cell, seconds.
    #[arg(long)]
    warmup: Option<f64>,
    /// Repetitions per cell, fixed (default: the preset's; quick and full run 3, and up to 6
    /// while a comparison group's medians are not settled to +-5% and one of its answers is
    /// still near the margin).
    #[arg(long)]
    reps: Option<u64>,
    /// Most repetitions of a cell whose group is not settled (the fewest stay as they are).
    #[arg(long, value_name = "N")]
    max_reps: Option<u64>,
    /// Start no repetition beyond the fewest that would carry the sweep past SECONDS of wall
    /// time from its start (default: the preset's; quick: 225, the others none; 0: none). A
    /// resumed sweep, and each impairment of --impairments, has a limit of its own.
    #[arg(long, value_name = "SECONDS", value_parser = parse_time_limit, allow_hyphen_values = true)]
    time_limit: Option<f64>,
    /// Zero-copy slots per flow (A3). Default: 64, or room for four sends of A3's coalesced
    /// io_uring sends.
    #[arg(long)]
    zc_slots: Option<usize>,
    /// Check payloads at the receiver.
    #[arg(long)]
    verify: bool,
    /// Discarding receiver (MSG_TRUNC): isolates the send path, no latency.
    #[arg(long)]
    rx_discard: bool,
    /// Receiver of every cell: copy, discard (as --rx-discard) or uring (io_uring multishot
    /// recv; stream and rate cells, rr keeps its own loop and the copy receiver).
    #[arg(long, value_name = "HOW", conflicts_with = "rx_discard", value_parser = |x: &str| x.parse::<RxMode>().map_err(|e| e.to_string()))]
    rx: Option<RxMode>,
    /// Messages per send operation of the stream cells, as an axis: 1 (one message per send
    /// call or SQE) and sizes (as many whole messages as fit), e.g. 1,512K; the same for every
    /// mode and engine. Default: the preset's (quick, full: 1,512K; seed: 1).
    #[arg(long = "batch", value_delimiter = ',', value_name = "1|SIZE", value_parser = sendpath_core::cli::parse_batch)]
    batches: Option<Vec<sendpath_core::spec::Batch>>,
    /// io_uring orderings that carry the batched uring stream cells, e.g. coalesce,bundle
    /// (default: coalesce; bundle stands for coalesce where a mode has no bundle form, a3).
    /// Cells of one message per send run linked chains.
    #[arg(long, value_delimiter = ',', value_parser = |x: &str| x.parse::<UringOrdering>().map_err(|e| e.to_string()))]
    uring_orderings: Option<Vec<UringOrdering>>,
    /// Veth only: run the whole grid once per named impairment of the sender -> receivers
    /// direction, each into DIR/<name>/ with its own report, then DIR/impairments.md
    /// comparing them. Names: clean (none), segmented (one segment per packet, as under loss,
    /// no loss), lan and wan (netem: a kernel with sch_netem; wan's 0.1% loss by nftables),
    /// lossy (1% random loss by nftables, on any kernel, plus netem's delay and reordering
    /// where the kernel has netem), bottleneck (tbf: 1 Gbit/s, a 1 ms queue that drops).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    impairments: Option<Vec<String>>,
    /// Directory for results.jsonl (default runs/<date>-<time>).
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the sweep in DIR, skipping cells already recorded there.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// No progress bar (the table of finished cells is still printed).
    #[arg(long)]
    no_progress: bool,
    /// Do not render the report at the end.
    #[arg(long)]
    no_report: bool,
    #[command(flatten)]
    place: WhereArgs,
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// paths: A1/A2/A3 at 64 B..64 KiB; latency-cost: with vs without latency recording;
    /// uring: io_uring vs threads engine; zerocopy: A3 vs A1; timestamps: what --timestamps
    /// costs; batch: the modes at equal batch, and what batching changes; profile: what
    /// --profile costs. Back to back.
    #[arg(value_enum)]
    suite: bench::Suite,
    /// Rounds; every round runs every cell once.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds per cell.
    #[arg(long, default_value_t = 1.0)]
    duration: f64,
    /// Append every record to this JSON Lines file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Where every cell's sides run: unpinned (default), apart or together: on a 2-CPU machine
    /// the scheduler's placement otherwise changes results several-fold.
    #[arg(long, value_name = "WHERE", value_parser = sendpath_core::cli::parse_placement, conflicts_with = "pin")]
    placement: Option<sendpath_core::spec::Placement>,
    /// Pin every cell by hand (SENDER:RECEIVER CPUs; bare: as --placement apart).
    #[arg(long, value_name = "CPUS", num_args = 0..=1, default_missing_value = "")]
    pin: Option<String>,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Send path: a1 (copy + send), a2 (sendmsg iovec), a3 (zero-copy).
    #[arg(long, value_parser = parse_mode)]
    mode: Mode,
    /// Concurrent flows (connections).
    #[arg(long, default_value_t = 1)]
    flows: usize,
    /// Repetition index written into the record.
    #[arg(long, default_value_t = 0)]
    rep: u64,
    /// Also append the record to this JSON Lines file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    place: WhereArgs,
    #[command(flatten)]
    send: SendArgs,
    #[command(flatten)]
    recv: RecvArgs,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
        .map_err(|e: sendpath_core::spec::UnknownName| e.to_string())
}

/// Entry point of `sendpath`: 0 ok, 1 the measurement failed (its record says why), 2 bad
/// input or a setup error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Renders the report of `results` into `out` and says where it is.
fn render(results: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    let s = sendpath_analysis::render_report(results, out)?;
    // Lines that could not be read, and cells whose repetitions mix setups, are worth a line
    // each; failed and noisy cells are counted here and listed in the report.
    for w in s
        .warnings
        .iter()
        .filter(|w| !w.starts_with("noisy:") && !w.starts_with("failed:"))
    {
        eprintln!("warning: {w}");
    }
    if !s.key_findings.is_empty() {
        sendpath_core::say!("key findings:");
        for f in &s.key_findings {
            sendpath_core::say!("  - {f}");
        }
    }
    sendpath_core::say!(
        "{} records in {} cells: {} failed repetitions, {} of {} cells noisy (median not known to +-5%){}",
        s.records,
        s.cells,
        s.failed,
        s.noisy_cells,
        s.cells,
        s.settling
            .map_or(String::new(), |st| format!("; {}", st.clause()))
    );
    if let Some(h) = &s.host_speed {
        sendpath_core::say!("{h}");
    }
    sendpath_core::say!(
        "report: {} and {} (answers for programs: {})",
        s.report_md.display(),
        s.report_html.display(),
        s.findings_json.display()
    );
    Ok(())
}

fn execute(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Report { results, out } => {
            let out = out.unwrap_or_else(|| {
                results
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|p| p.to_path_buf())
                    .unwrap_or_else(|| PathBuf::from("."))
            });
            render(&results, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compare { a, b } => {
            let read = |p: &std::path::Path| -> anyhow::Result<(PathBuf, Vec<sendpath_core::report::v1::Record>)> {
                let file = if p.is_dir() { p.join("results.jsonl") } else { p.to_path_buf() };
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
                let recs = sendpath_analysis::parse_records(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                if recs.records.is_empty() {
                    anyhow::bail!("{}: no records", file.display());
                }
                Ok((file, recs.records))
            };
            let (fa, ra) = read(&a)?;
            let (fb, rb) = read(&b)?;
            let c = sendpath_analysis::compare::compare(&ra, &rb);
            sendpath_core::say!(
                "{}",
                sendpath_analysis::compare::text(
                    &c,
                    &fa.display().to_string(),
                    &fb.display().to_string()
                )
                .trim_end()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve(a) => {
            use sendpath_core::remote::{auth::Token, server};
            if a.max_flows == 0
                || !(a.max_seconds > 0.0 && a.max_seconds.is_finite())
                || a.max_buffer_mib == 0
            {
                anyhow::bail!("--max-flows, --max-seconds and --max-buffer-mib must be positive");
            }
            let token = a.token_file.as_deref().map(Token::from_file).transpose()?;
            if token.is_none() && !a.listen.is_loopback() {
                if !a.no_auth {
                    anyhow::bail!(
                        "serving on {} without a token lets anyone who reaches the port run tests: give --token-file FILE, or --no-auth to allow that (or --listen 127.0.0.1)",
                        a.listen
                    );
                }
                eprintln!(
                    "sendpath serve: WARNING: --no-auth on {}: anyone who can reach the port can run tests on this host",
                    a.listen
                );
            }
            let srv = server::Server::bind(server::ServeOptions {
                listen: std::net::SocketAddr::new(a.listen, a.port),
                data_port: a.data_port,
                token,
                limits: server::ServerLimits {
                    max_flows: a.max_flows,
                    max_seconds: a.max_seconds,
                    max_buffer_bytes: a.max_buffer_mib.saturating_mul(1 << 20),
                },
            })?;
            sendpath_core::say!(
                "sendpath serve: listening on {} (control protocol {}); {}",
                srv.local_addr()?,
                sendpath_core::remote::proto::PROTOCOL,
                srv.reach()
            );
            let stop = std::sync::atomic::AtomicBool::new(false);
            srv.run(&stop)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Topology {
            action,
            net,
            netem,
            loss,
        } => {
            let v = net.veth()?;
            if (netem.is_some() || loss.is_some()) && !matches!(action, TopologyAction::Up) {
                anyhow::bail!("--netem and --loss go with `topology up`");
            }
            match action {
                TopologyAction::Up => {
                    v.up()?;
                    if let Some(args) = &netem {
                        v.set_netem(args)?;
                    }
                    if let Some(LossArg(percent)) = loss {
                        v.set_loss(percent)?;
                    }
                    sendpath_core::say!(
                        "up: {} ({}) <-veth-> {} ({})",
                        v.server_ns,
                        v.server_ip,
                        v.client_ns,
                        v.client_ip
                    );
                }
                TopologyAction::Down => {
                    v.down()?;
                    sendpath_core::say!("down: {} and {} removed", v.server_ns, v.client_ns);
                }
                TopologyAction::Status => sendpath_core::say!("{}", v.status().trim_end()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Sweep(a) => {
            let mut grid = sweep::Grid::preset(a.preset);
            if let Some(v) = a.modes {
                grid.modes = v;
            }
            match a.engines {
                Some(v) => grid.engines = v,
                None => {
                    // A preset's uring cells are left out where io_uring cannot run at all
                    // (asked for explicitly, they run and fail with the reason).
                    if let Err(why) = sendpath_core::send::uring::probe_ops() {
                        eprintln!("sweep: leaving the uring engine out: {why}");
                        grid.engines.retain(|e| *e != Engine::Uring);
                    }
                }
            }
            if let Some(v) = a.sizes {
                grid.sizes = v;
            }
            if let Some(v) = a.flows {
                grid.flows = v;
            }
            if let Some(v) = a.patterns {
                grid.patterns = v;
            }
            if let Some(v) = a.rate_fractions {
                if v.iter().any(|f| !(f.is_finite() && *f > 0.0 && *f <= 1.0)) {
                    anyhow::bail!("--rate-fractions must be in (0, 1]");
                }
                grid.rate_fractions = v;
            }
            if let Some(v) = a.duration {
                grid.duration_s = v;
            }
            if let Some(v) = a.warmup {
                grid.warmup_s = v;
            }
            if let Some(v) = a.reps {
                if v == 0 {
                    anyhow::bail!("--reps must be at least 1");
                }
                grid.reps = v;
                grid.min_reps = v;
            }
            if let Some(v) = a.max_reps {
                if v < grid.min_reps.min(grid.reps) || v == 0 || v > 1000 {
                    anyhow::bail!(
                        "--max-reps {v} must be between the fewest repetitions ({}) and 1000",
                        grid.min_reps.min(grid.reps)
                    );
                }
                grid.reps = v;
            }
            if let Some(v) = a.time_limit {
                grid.time_limit_s = (v > 0.0).then_some(v);
            }
            if let Some(v) = a.uring_orderings {
                grid.uring_orderings = v;
            }
            if let Some(mut v) = a.batches {
                v.sort();
                v.dedup();
                grid.batches = v;
            }
            grid.zc_slots = a.zc_slots;
            let (placement, pin) =
                sendpath_core::cli::placement_of(a.placement, a.pin.as_deref(), grid.placement)?;
            grid.base = RunSpec {
                verify: a.verify,
                rx: sweep::rx_of(a.rx, a.rx_discard),
                busy_poll: a.busy_poll,
                placement,
                pin,
                timestamps: a.timestamps,
                profile: if a.no_profile {
                    None
                } else {
                    a.profile.or(grid.base.profile)
                },
                ..RunSpec::default()
            };
            // Every cell's options are checked before any runs: a bad value is one line, not a
            // failed record per cell.
            for (spec, _) in grid.cells() {
                // (A rate cell's rate comes from its stream cell's capacity, measured later.)
                let rate = spec.rate.or(spec.rate_fraction.map(|_| 1.0));
                RunSpec { rate, ..spec }.validate()?;
            }
            let impairments = a.impairments.as_deref().map(impair::parse).transpose()?;
            if let Some(d) = &a.resume {
                // (With --impairments each impairment's sub-sweep resumes in its directory.)
                let there = match &impairments {
                    None => d.join("results.jsonl").is_file(),
                    // (a sub-sweep interrupted before its first record leaves its directory)
                    Some(list) => list.iter().any(|i| impair::sub_dir(d, i).is_dir()),
                };
                if !there {
                    anyhow::bail!(
                        "--resume {}: no results.jsonl there to resume (a new sweep takes --out)",
                        d.display()
                    );
                }
            }
            let dir = a.resume.or(a.out).unwrap_or_else(sweep::default_out_dir);
            let mut target = a.place.resolve()?;
            if let Target::Local(Topology::Veth(v)) = &target {
                // Every cell would fail the same way: say it once, before starting.
                if !v.is_up() {
                    anyhow::bail!(
                        "the veth topology {}/{} is not up: run `sendpath topology up` first",
                        v.server_ns,
                        v.client_ns
                    );
                }
            }
            let shaped = match (&impairments, &target) {
                (None, _) => None,
                (Some(list), Target::Local(Topology::Veth(v))) => {
                    impair::check(v, list)?;
                    Some((v.clone(), list.clone()))
                }
                (Some(_), _) => anyhow::bail!(
                    "--impairments shape the veth pair: add --topology veth (after `sendpath topology up`)"
                ),
            };
            let per_rep = grid.cells().len() as u64 / grid.reps.max(1);
            eprintln!(
                "sweep: {per_rep} cells x {} -> {}",
                if grid.min_reps < grid.reps {
                    format!(
                        "{} to {} reps (more while a comparison group is not settled{})",
                        grid.min_reps,
                        grid.reps,
                        grid.time_limit_s
                            .map(|t| format!(", none past {t:.0} s"))
                            .unwrap_or_default()
                    )
                } else {
                    format!("{} reps", grid.reps)
                },
                dir.join("results.jsonl").display()
            );
            let progress = !a.no_progress;
            let done = |o: &sweep::Outcome, dir: &std::path::Path| -> anyhow::Result<()> {
                let overhead = o.wall_s - o.cell_time_s;
                let mut not_run = String::new();
                if o.settled_early > 0 {
                    not_run += &format!(", {} not needed (settled or decided)", o.settled_early);
                }
                if o.past_time_limit > 0 {
                    not_run += &format!(", {} left out by the time limit", o.past_time_limit);
                }
                sendpath_core::say!(
                    "sweep done: {} repetitions measured ({} failed), {} skipped{not_run}; wall {:.1} s for {:.1} s of warm-up + windows (overhead {:.1} s, {:.1}% of cell time)",
                    o.measured,
                    o.failed,
                    o.skipped,
                    o.wall_s,
                    o.cell_time_s,
                    overhead,
                    if o.cell_time_s > 0.0 { overhead / o.cell_time_s * 100.0 } else { 0.0 }
                );
                sendpath_core::say!("results: {}", o.results.display());
                if !a.no_report && o.measured + o.skipped > 0 {
                    render(&o.results, dir)?;
                }
                Ok(())
            };
            if let (Some((v, list)), Target::Local(t)) = (&shaped, &mut target) {
                // The qdisc comes off however the sweep ends (an error, a signal included).
                let _clear = impair::Clear(v);
                impair::clear_on_signal(v)?;
                let mut failed = 0;
                for i in list {
                    // (What this kernel cannot apply of it was said by the check.)
                    let _not_applied = v
                        .apply(i)
                        .map_err(|e| anyhow::anyhow!("--impairments {}: {e}", i.name))?;
                    let sub = impair::sub_dir(&dir, i);
                    eprintln!(
                        "sweep: impairment {} ({}) -> {}",
                        i.name,
                        i.what,
                        sub.display()
                    );
                    let o = sweep::run(&grid, t, &sub, progress)?;
                    done(&o, &sub)?;
                    failed += o.failed;
                }
                let p = impair::comparison(&dir, list)?;
                sendpath_core::say!("impairments compared: {}", p.display());
                return Ok(if failed == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            let o = match &mut target {
                Target::Local(t) => sweep::run(&grid, t, &dir, progress)?,
                Target::Remote(d) => {
                    // An unreachable or refusing far host fails every cell the same way: say
                    // it once, before starting.
                    let far = d.connect()?;
                    eprintln!(
                        "sweep: far host {} ({}, {} CPUs)",
                        far.kernel, far.cpu_model, far.cores
                    );
                    let o = sweep::run(&grid, d, &dir, progress)?;
                    d.close();
                    o
                }
            };
            done(&o, &dir)?;
            Ok(if o.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Bench(b) => {
            if b.rounds == 0 {
                anyhow::bail!("--rounds must be at least 1");
            }
            let place = sendpath_core::cli::placement_of(
                b.placement,
                b.pin.as_deref(),
                sendpath_core::spec::Placement::Unpinned,
            )?;
            bench::run(b.suite, b.rounds, b.duration, place, |r| match &b.out {
                Some(p) => append_line(p, &r.to_json_line()),
                None => Ok(()),
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run(a) => {
            let spec = a.send.to_spec(a.mode, a.flows, a.recv.rx())?;
            let record = match a.place.resolve()? {
                Target::Local(t) => run::run_cell(&spec, a.rep, &t)?,
                Target::Remote(mut d) => d.run(&spec, a.rep)?,
            };
            sendpath_core::say!("{}", text::human(&record).trim_end());
            let line = record.to_json_line();
            if let Some(path) = &a.out {
                append_line(path, &line)?;
            }
            sendpath_core::say!("{line}");
            Ok(if record.status == Status::Ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// A time limit in seconds: finite and not negative (0: none).
fn parse_time_limit(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds (0 or more; 0: no limit)"
        )),
    }
}

/// Appends one line and flushes it to the file before returning.
pub fn append_line(path: &std::path::Path, line: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    f.write_all(format!("{line}\n").as_bytes())
        .and_then(|_| f.sync_data())
        .with_context(|| format!("write {}", path.display()))
}
