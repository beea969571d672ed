//! # sendpath-analysis
//!
//! Reads only v1 JSON Lines records: the analysis never talks to the measuring code, so any
//! results file, old or new, from this host or another, can be analysed the same way.
//!
//! Layers, each usable alone: [`parse_records`] (text to records), [`derive::derive_table`]
//! (medians and spread per cell), [`summary::analyze`] (crossover table, flows, zero-copy,
//! counters), [`plot`] (PNG and SVG), [`report`] (markdown and HTML), and [`render_report`],
//! which does all of it for a results file. Every statement in the report is computed from
//! the records; nothing in it is prose about results written in advance.

pub mod calls;
pub mod cell;
pub mod compare;
pub mod cpu_profile;
pub mod derive;
pub mod document;
pub mod explain;
pub mod findings;
pub mod host_speed;
pub mod host_summary;
pub mod labels;
pub mod plot;
pub mod report;
pub mod stats;
pub mod summary;
pub mod why;

pub use derive::{derive_table, CellKey, DerivedRow, DerivedTable, Metric, Stat};
pub use summary::{analyze, crossover_table, Analysis, Crossover};

use sendpath_record::v1::{Record, SCHEMA};
use std::path::{Path, PathBuf};

/// A records file that cannot be read as v1.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A line is not a v1 record.
    #[error("line {line}: {msg}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        msg: String,
    },
}

/// Records read from a file, and warnings about lines skipped.
#[derive(Debug, Default)]
pub struct Records {
    /// The records, in file order.
    pub records: Vec<Record>,
    /// Lines skipped, with the reason (e.g. a truncated last line from a killed sweep).
    pub warnings: Vec<String>,
}

/// Parses JSON Lines text of v1 records. A truncated *last* line (a sweep killed mid-write)
/// is skipped with a warning; any other unreadable line, or a record of another schema, is an
/// error naming the line.
pub fn parse_records(text: &str) -> Result<Records, ReadError> {
    let mut out = Records::default();
    let lines: Vec<&str> = text.lines().collect();
    let last_has_newline = text.ends_with('\n');
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) if i + 1 == lines.len() && !last_has_newline => {
                out.warnings
                    .push(format!("line {n}: skipped a truncated last record ({e})"));
                continue;
            }
            Err(e) => {
                return Err(ReadError::Line {
                    line: n,
                    msg: format!("not JSON: {e}"),
                })
            }
        };
        match value.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => {
                return Err(ReadError::Line {
                    line: n,
                    msg: format!("schema '{other}' is not supported (this build reads {SCHEMA})"),
                })
            }
            None => {
                return Err(ReadError::Line {
                    line: n,
                    msg: "no \"schema\" field: not a sendpath record".into(),
                })
            }
        }
        let record: Record = serde_json::from_value(value).map_err(|e| ReadError::Line {
            line: n,
            msg: format!("not a valid {SCHEMA} record: {e}"),
        })?;
        out.records.push(record);
    }
    Ok(out)
}

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input could not be read.
    #[error("reading {path}: {error}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A line of the input is not a v1 record.
    #[error("{path}: {error}")]
    Parse {
        /// The input file.
        path: PathBuf,
        /// Which line and why.
        error: ReadError,
    },
    /// The input has no record at all.
    #[error("{path}: no records to report on")]
    Empty {
        /// The input file.
        path: PathBuf,
    },
    /// An output file could not be written.
    #[error("writing {path}: {error}")]
    Output {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
}

/// What [`render_report`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportSummary {
    /// Records read (ok and failed).
    pub records: usize,
    /// Cells (rows of the derived table).
    pub cells: usize,
    /// Failed repetitions.
    pub failed: usize,
    /// Noisy (cell, metric) pairs.
    pub noisy: usize,
    /// Cells with at least one noisy metric.
    pub noisy_cells: usize,
    /// How many repetitions would settle the cells (None when none is noisy).
    pub settling: Option<derive::Settling>,
    /// `findings.json`: the key findings, for programs (`sendpath compare`).
    pub findings_json: PathBuf,
    /// The key findings, as sentences.
    pub key_findings: Vec<String>,
    /// `derived.csv`.
    pub derived_csv: PathBuf,
    /// `derived.json`.
    pub derived_json: PathBuf,
    /// `report.md`.
    pub report_md: PathBuf,
    /// `report.html` (self-contained: plots inlined as SVG).
    pub report_html: PathBuf,
    /// Every plot file, PNG and SVG.
    pub plots: Vec<PathBuf>,
    /// Warnings to show the user: skipped lines, failed and noisy cells.
    pub warnings: Vec<String>,
    /// How far the host's speed moved over the run, in one line; None when not probed.
    pub host_speed: Option<String>,
}

/// Reads a v1 JSON Lines file and writes into `out_dir` (created if missing): `derived.csv`,
/// `derived.json`, `plots/*.png` and `plots/*.svg`, `report.md` and a self-contained
/// `report.html`. A truncated last line is skipped with a warning; any other bad line is an
/// error naming it.
pub fn render_report(input: &Path, out_dir: &Path) -> Result<ReportSummary, Error> {
    let text = std::fs::read_to_string(input).map_err(|error| Error::Input {
        path: input.to_path_buf(),
        error,
    })?;
    let recs = parse_records(&text).map_err(|error| Error::Parse {
        path: input.to_path_buf(),
        error,
    })?;
    if recs.records.is_empty() {
        return Err(Error::Empty {
            path: input.to_path_buf(),
        });
    }
    let analysis = analyze(&recs.records, &recs.warnings);
    let plots_dir = out_dir.join("plots");
    mkdir(&plots_dir)?;
    let write = |path: PathBuf, bytes: &[u8]| -> Result<PathBuf, Error> {
        std::fs::write(&path, bytes).map_err(|error| Error::Output {
            path: path.clone(),
            error,
        })?;
        Ok(path)
    };
    let derived_csv = write(
        out_dir.join("derived.csv"),
        derive::to_csv(&analysis.table).as_bytes(),
    )?;
    let derived_json = write(
        out_dir.join("derived.json"),
        report::derived_json(&analysis).as_bytes(),
    )?;
    let found = findings::findings(&analysis);
    let findings_json = write(
        out_dir.join("findings.json"),
        (serde_json::to_string_pretty(&found).expect("findings serialize") + "\n").as_bytes(),
    )?;
    let mut plots = Vec::new();
    let mut rendered = Vec::new();
    for spec in plot::plot_specs(&analysis.table) {
        let png = plot::render_png(&spec)?;
        let svg = plot::render_svg(&spec)?;
        plots.push(write(plots_dir.join(format!("{}.png", spec.stem())), &png)?);
        plots.push(write(
            plots_dir.join(format!("{}.svg", spec.stem())),
            svg.as_bytes(),
        )?);
        rendered.push(report::RenderedPlot {
            title: spec.title(),
            png: format!("plots/{}.png", spec.stem()),
            svg_file: format!("plots/{}.svg", spec.stem()),
            svg,
        });
    }
    // The plots drawn from the records rather than per metric, where the records allow them.
    let extra = [
        (
            "stages",
            explain::STAGE_PLOT_TITLE,
            explain::stage_plot(&analysis.stages),
        ),
        (
            "host_speed",
            host_speed::HOST_PLOT_TITLE,
            host_speed::host_speed_plot(&recs.records, &analysis.table),
        ),
    ];
    let profiles: Vec<(String, String, _)> = cpu_profile::profile_plots(&analysis.profile)
        .into_iter()
        .map(|(side, made)| {
            (
                format!("profile_{side}"),
                cpu_profile::plot_title(&side),
                Some(made),
            )
        })
        .collect();
    let extra = extra
        .into_iter()
        .map(|(stem, title, made)| (stem.to_string(), title.to_string(), made))
        .chain(profiles);
    for (stem, title, made) in extra {
        let Some(made) = made else { continue };
        let (svg, png) = made.map_err(|msg| plot::PlotError {
            name: stem.clone(),
            msg,
        })?;
        plots.push(write(plots_dir.join(format!("{stem}.png")), &png)?);
        plots.push(write(
            plots_dir.join(format!("{stem}.svg")),
            svg.as_bytes(),
        )?);
        rendered.push(report::RenderedPlot {
            title,
            png: format!("plots/{stem}.png"),
            svg_file: format!("plots/{stem}.svg"),
            svg,
        });
    }
    let source = input.display().to_string();
    let blocks = report::blocks(&analysis, &found, &source, &rendered);
    let report_md = write(
        out_dir.join("report.md"),
        report::markdown(&blocks).as_bytes(),
    )?;
    let report_html = write(
        out_dir.join("report.html"),
        report::html(&blocks).as_bytes(),
    )?;
    Ok(ReportSummary {
        records: analysis.records,
        cells: analysis.table.rows.len(),
        failed: analysis.table.failed.len(),
        noisy: analysis.table.noisy.len(),
        noisy_cells: analysis
            .table
            .noisy
            .iter()
            .map(|n| &n.key)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        settling: analysis.table.settling(),
        findings_json,
        key_findings: found.sentences.clone(),
        derived_csv,
        derived_json,
        report_md,
        report_html,
        plots,
        warnings: report::warnings(&analysis),
        host_speed: analysis.host_speed.as_ref().map(|h| h.line()),
    })
}

fn mkdir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|error| Error::Output {
        path: dir.to_path_buf(),
        error,
    })
}
