//! # sendpath-harness
//!
//! The `sendpath` command: `run` measures one cell (both ends in this process) and prints a
//! human summary followed by its v1 record as the last line.

mod args;
pub mod bench;
mod commands;
pub mod impair;
pub mod sweep;
mod sweep_cmd;

use args::{Cli, Cmd};
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;
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
        Cmd::Report(a) => commands::report(a),
        Cmd::Compare(a) => commands::compare(a),
        Cmd::Serve(a) => commands::serve(a),
        Cmd::Topology(a) => commands::topology(a),
        Cmd::Sweep(a) => sweep_cmd::sweep(a),
        Cmd::Bench(a) => commands::bench(a),
        Cmd::Run(a) => commands::run(a),
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
