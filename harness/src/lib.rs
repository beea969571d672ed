//! # sendpath-harness
//!
//! The `sendpath` command: `run` measures one cell (both ends in this process) and prints a
//! human summary followed by its v1 record as the last line.

pub mod bench;

use clap::{Parser, Subcommand};
use sendpath_core::cli::{RecvArgs, SendArgs};
use sendpath_core::report::text;
use sendpath_core::report::v1::Status;
use sendpath_core::run;
use sendpath_core::spec::Mode;
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
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// paths: A1/A2/A3 at 64 B..64 KiB; latency-cost: with vs without latency recording;
    /// uring: io_uring vs threads engine, back to back.
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
    send: SendArgs,
    #[command(flatten)]
    recv: RecvArgs,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse().map_err(|e: sendpath_core::Error| e.to_string())
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

fn execute(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Bench(b) => {
            if b.rounds == 0 {
                anyhow::bail!("--rounds must be at least 1");
            }
            bench::run(b.suite, b.rounds, b.duration, |r| match &b.out {
                Some(p) => append_line(p, &r.to_json_line()),
                None => Ok(()),
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run(a) => {
            let spec = a.send.to_spec(a.mode, a.flows, a.recv.rx());
            let record = run::run_loopback(&spec, a.rep)?;
            print!("{}", text::human(&record));
            let line = record.to_json_line();
            if let Some(path) = &a.out {
                append_line(path, &line)?;
            }
            println!("{line}");
            Ok(if record.status == Status::Ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
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
