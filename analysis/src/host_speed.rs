//! How much of the scatter between repetitions the host explains: every local record carries
//! `host_speed`, a fixed integer loop timed on the sender's CPU before and after the
//! repetition (see `sendpath_core::speed`). On a shared host other tenants slow that CPU by
//! up to 1.7x for seconds at a time; this module says how far the host's speed moved over a
//! run, whether the measured figures moved with it, and which noisy cells ran at different
//! host speeds.

use crate::derive::{CellKey, DerivedTable, Metric, PatternKey};
use plotters::prelude::*;
use sendpath_record::v1::{HostSpeedV1, Record, Status};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A repetition ran on a slowed host when its speed was below this fraction of the fastest
/// seen in the run; a cell's host speed moved when its repetitions' speeds spread by more than
/// `1 - HOST_STEADY` of the fastest among them. 10%: twice the ±5% to which a settled cell's
/// median is known, so a host that moved less should not by itself make a cell noisy.
pub const HOST_STEADY: f64 = 0.90;

/// The rank correlation from which the report says the figures followed the host's speed.
/// 0.3: a modest but clear association over the hundreds of repetitions of a sweep (the
/// correlation is only computed from eight); the main job here gives 0.4-0.6.
pub const FOLLOWS_HOST: f64 = 0.3;

/// A repetition's probe time: the mean of the probes just before and just after it (ns,
/// never below 1, so ratios of it are finite).
pub fn probe_ns(h: &HostSpeedV1) -> f64 {
    ((h.before_ns as f64 + h.after_ns as f64) / 2.0).max(1.0)
}

/// "10%", from [`HOST_STEADY`].
fn moved_pct() -> String {
    format!("{:.0}%", (1.0 - HOST_STEADY) * 100.0)
}

/// The host's speed over a run, from the records' probes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostSpeedSummary {
    /// Ok records with a probe.
    pub probed: usize,
    /// Whether the records say they ran in a virtual machine (a shared host).
    pub virtualized: bool,
    /// The slowest repetition's speed, as a fraction of the fastest repetition's (per CPU
    /// model, kernel, probed CPU and probe workload).
    pub slowest: f64,
    /// The median repetition's speed, likewise.
    pub median: f64,
    /// Repetitions slower than [`HOST_STEADY`] of the fastest.
    pub slowed: usize,
    /// Spearman rank correlation between a repetition's host speed and its throughput over its
    /// cell's median (stream and rr cells with at least three probed repetitions); None with
    /// fewer than eight such repetitions.
    pub correlation: Option<f64>,
    /// Repetitions behind `correlation`.
    pub correlated_reps: usize,
    /// Noisy cells (throughput or sender CPU per byte, as the derived table says) with at
    /// least two probed repetitions.
    pub noisy_cells: usize,
    /// Of those, cells whose repetitions ran at host speeds more than 10% apart.
    pub noisy_host_moved: usize,
    /// The other cells with at least two probed repetitions (settled, to compare with: a cell
    /// that ran longer sees more of the host's moves).
    pub settled_cells: usize,
    /// Of those, cells whose repetitions ran at host speeds more than 10% apart.
    pub settled_host_moved: usize,
}

/// Each probed ok record's speed: the fastest repetition's probe time over its own (1.0 = as
/// fast as the fastest repetition with the same CPU model, kernel, probed CPU and probe
/// workload; probes that differ in any of these are never compared).
fn speeds(records: &[Record]) -> Vec<(&Record, f64)> {
    type Machine<'a> = (&'a str, &'a str, Option<u64>, &'a str);
    fn machine(r: &Record) -> Machine<'_> {
        let (cpu, probe) = r
            .host_speed
            .as_ref()
            .map_or((None, ""), |h| (h.cpu, h.probe.as_str()));
        (
            r.host.cpu_model.as_str(),
            r.host.kernel.as_str(),
            cpu,
            probe,
        )
    }
    let probed: Vec<(&Record, f64)> = records
        .iter()
        .filter(|r| r.status == Status::Ok)
        .filter_map(|r| Some((r, probe_ns(r.host_speed.as_ref()?))))
        .collect();
    let mut fastest: BTreeMap<Machine, f64> = BTreeMap::new();
    for (r, ns) in &probed {
        let f = fastest.entry(machine(r)).or_insert(f64::MAX);
        *f = f.min(*ns);
    }
    probed
        .into_iter()
        .map(|(r, ns)| (r, fastest[&machine(r)] / ns))
        .collect()
}

/// Each probed ok repetition in the order the records were written (the order they ran): its
/// host speed, and its throughput over its cell's median where that compares (stream and rr
/// cells with at least three probed repetitions and a positive median).
fn points(all: &[(&Record, f64)], table: &DerivedTable) -> Vec<(f64, Option<f64>)> {
    let mut reps: BTreeMap<CellKey, usize> = BTreeMap::new();
    for (r, _) in all {
        *reps.entry(CellKey::of(r)).or_default() += 1;
    }
    all.iter()
        .map(|(r, speed)| {
            let key = CellKey::of(r);
            let rel = (reps[&key] >= 3
                && [PatternKey::STREAM, PatternKey::RR].contains(&key.pattern))
            .then(|| table.row(&key).and_then(|row| row.median(Metric::Gbps)))
            .flatten()
            .filter(|m| *m > 0.0)
            .map(|m| r.throughput.gbps / m);
            (*speed, rel)
        })
        .collect()
}

/// The host's speed over `records`; None when no ok record was probed.
pub fn host_speed_summary(records: &[Record], table: &DerivedTable) -> Option<HostSpeedSummary> {
    let all = speeds(records);
    if all.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = all.iter().map(|(_, s)| *s).collect();
    sorted.sort_by(f64::total_cmp);
    let mut by_cell: BTreeMap<CellKey, Vec<(&Record, f64)>> = BTreeMap::new();
    for (r, s) in &all {
        by_cell.entry(CellKey::of(r)).or_default().push((r, *s));
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = points(&all, table)
        .into_iter()
        .filter_map(|(s, rel)| Some((s, rel?)))
        .unzip();
    let noisy: BTreeSet<&CellKey> = table.noisy.iter().map(|n| &n.key).collect();
    let moved = |reps: &[(&Record, f64)]| {
        let (lo, hi) = reps.iter().fold((f64::MAX, 0.0f64), |(lo, hi), (_, v)| {
            (lo.min(*v), hi.max(*v))
        });
        lo < HOST_STEADY * hi
    };
    let (mut noisy_cells, mut noisy_host_moved) = (0, 0);
    let (mut settled_cells, mut settled_host_moved) = (0, 0);
    for (key, reps) in by_cell.iter().filter(|(_, reps)| reps.len() >= 2) {
        let m = usize::from(moved(reps));
        if noisy.contains(key) {
            noisy_cells += 1;
            noisy_host_moved += m;
        } else {
            settled_cells += 1;
            settled_host_moved += m;
        }
    }
    Some(HostSpeedSummary {
        probed: all.len(),
        virtualized: all.iter().any(|(r, _)| r.host.virtualized),
        slowest: sorted[0],
        median: crate::stats::median(&sorted),
        slowed: sorted.iter().filter(|&&s| s < HOST_STEADY).count(),
        correlation: (xs.len() >= 8)
            .then(|| crate::stats::spearman(&xs, &ys))
            .flatten(),
        correlated_reps: xs.len(),
        noisy_cells,
        noisy_host_moved,
        settled_cells,
        settled_host_moved,
    })
}

impl HostSpeedSummary {
    /// Whether the repetitions' throughput followed the host's speed ([`FOLLOWS_HOST`]).
    pub fn followed(&self) -> Option<f64> {
        self.correlation.filter(|r| *r >= FOLLOWS_HOST)
    }

    /// How many noisy and settled cells ran at host speeds that moved, in words.
    fn moved_cells(&self) -> Option<String> {
        (self.noisy_cells > 0).then(|| {
            format!(
                "{} of {} noisy cells ran at host speeds more than {} apart across their \
                 repetitions ({} of {} settled cells did)",
                self.noisy_host_moved,
                self.noisy_cells,
                moved_pct(),
                self.settled_host_moved,
                self.settled_cells
            )
        })
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        let mut s = format!(
            "host speed (a probe around each repetition): {:.2}-1.00 of the fastest repetition's, median {:.2}; {} of {} repetitions more than {} slower",
            self.slowest,
            self.median,
            self.slowed,
            self.probed,
            moved_pct()
        );
        if let Some(r) = self.correlation {
            s.push_str(&format!("; throughput against it: rank correlation {r:.2}"));
        }
        if let Some(m) = self.moved_cells() {
            s.push_str("; ");
            s.push_str(&m);
        }
        s
    }

    /// The report's paragraph.
    pub fn paragraph(&self) -> String {
        let mut s = format!(
            "Host speed: a fixed integer loop, timed on the sender's CPU just before and just \
             after each repetition (`host_speed` in the records), ran at {:.2} to 1.00 of its \
             speed in the fastest repetition (median {:.2}); in {} of {} repetitions the host \
             was more than {} slower than at its fastest.",
            self.slowest,
            self.median,
            self.slowed,
            self.probed,
            moved_pct()
        );
        match (self.correlation, self.followed()) {
            (_, Some(r)) => {
                s.push_str(&format!(
                    " The repetitions' throughput followed the host's speed (rank correlation \
                     {r:.2} over {} repetitions, each against its cell's median): part of the \
                     scatter between repetitions is the host's.",
                    self.correlated_reps
                ));
                if self.virtualized {
                    s.push_str(
                        " On a shared host (this is a virtual machine) other tenants take the \
                         core's execution units for seconds at a time; nothing in the benchmark \
                         can stop that.",
                    );
                }
            }
            (Some(r), None) => s.push_str(&format!(
                " The repetitions' throughput did not clearly follow it (rank correlation {r:.2} \
                 over {} repetitions, each against its cell's median).",
                self.correlated_reps
            )),
            (None, None) => {}
        }
        if let Some(m) = self.moved_cells() {
            s.push(' ');
            s.push_str(&m);
            s.push('.');
        }
        s
    }
}

/// The title of the host-speed plot (the report finds the plot by it).
pub const HOST_PLOT_TITLE: &str = "Host speed and throughput, repetition by repetition";

/// How many repetitions the throughput line's running median spans.
const RUNNING: usize = 9;

/// The plot: each repetition's host speed (a line) and its throughput over its cell's median
/// (dots, and a running median over `RUNNING` repetitions), in the order they ran, as (SVG,
/// PNG). None without probes to plot.
pub fn host_speed_plot(records: &[Record], table: &DerivedTable) -> Option<crate::plot::Drawn> {
    let pts = points(&speeds(records), table);
    if pts.len() < 2 {
        return None;
    }
    Some(crate::plot::svg_and_png(
        1000,
        420,
        |r| draw(r, &pts),
        |r| draw(r, &pts),
    ))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    pts: &[(f64, Option<f64>)],
) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (lo, hi) = (0.4, 1.6);
    let clip = |v: f64| v.clamp(lo, hi);
    let mut chart = ChartBuilder::on(root)
        .caption(HOST_PLOT_TITLE, (crate::plot::FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..pts.len() as f64, lo..hi)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("repetition, in the order they ran")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("relative (1.0 = fastest host / cell median)")
        .label_style((crate::plot::FONT, 13))
        .draw()
        .map_err(|x| e(&x))?;
    let thr = RGBColor(214, 39, 40);
    let host = RGBColor(31, 119, 180);
    let rel: Vec<(f64, f64)> = pts
        .iter()
        .enumerate()
        .filter_map(|(i, (_, r))| Some((i as f64, (*r)?)))
        .collect();
    chart
        .draw_series(
            rel.iter()
                .map(|&(x, y)| Circle::new((x, clip(y)), 2, thr.mix(0.35).filled())),
        )
        .map_err(|x| e(&x))?;
    let running = |v: &[(f64, f64)]| -> Vec<(f64, f64)> {
        v.windows(RUNNING)
            .map(|w| {
                let ys: Vec<f64> = w.iter().map(|p| p.1).collect();
                (w[RUNNING / 2].0, clip(crate::stats::median(&ys)))
            })
            .collect()
    };
    chart
        .draw_series(LineSeries::new(running(&rel), thr.stroke_width(2)))
        .map_err(|x| e(&x))?
        .label(format!(
            "throughput / its cell's median (dots; line: running median of {RUNNING})"
        ))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], thr.stroke_width(2)));
    let speed: Vec<(f64, f64)> = pts
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (i as f64, clip(*s)))
        .collect();
    chart
        .draw_series(LineSeries::new(speed.clone(), host.mix(0.3)))
        .map_err(|x| e(&x))?;
    chart
        .draw_series(LineSeries::new(running(&speed), host.stroke_width(2)))
        .map_err(|x| e(&x))?
        .label(format!(
            "host speed (probe; 1.0 = the fastest repetition; thin: each, thick: running median of {RUNNING})"
        ))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], host.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((crate::plot::FONT, 13))
        .draw()
        .map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(mode: &str, rep: u64, gbps: f64, probe_ns: Option<(u64, u64)>) -> Record {
        let line = include_str!("../tests/fixtures/loopback_threads.jsonl")
            .lines()
            .next()
            .unwrap();
        let mut r: Record = serde_json::from_str(line).unwrap();
        r.spec.mode = mode.parse().unwrap();
        r.spec.rep = rep;
        r.throughput.gbps = gbps;
        r.host_speed = probe_ns.map(|(before_ns, after_ns)| sendpath_record::v1::HostSpeedV1 {
            probe: "alu6x500k-best3".into(),
            cpu: Some(0),
            before_ns,
            after_ns,
        });
        r
    }

    #[test]
    fn a_cell_that_follows_the_host_is_counted_and_a_steady_one_is_not() {
        // A1's repetitions ran while the host's speed moved (1.0 .. 0.6) and its throughput
        // moved with it; A2's ran at one host speed and held still.
        let host = [1000, 1100, 1250, 1400, 1550, 1650];
        let mut recs = Vec::new();
        for (rep, ns) in host.iter().enumerate() {
            let speed = 1000.0 / *ns as f64;
            recs.push(record("a1", rep as u64, 20.0 * speed, Some((*ns, *ns))));
            recs.push(record(
                "a2",
                rep as u64,
                10.0 + rep as f64 * 0.01,
                Some((1000, 1010)),
            ));
        }
        let table = crate::derive::derive_table(&recs);
        let h = host_speed_summary(&recs, &table).expect("probed");
        assert_eq!(h.probed, 12);
        assert!((h.slowest - 1000.0 / 1650.0).abs() < 1e-9, "{}", h.slowest);
        assert_eq!(
            h.slowed, 4,
            "1100 ns is within 10% of 1000, 1250 and slower are not"
        );
        assert_eq!(h.correlated_reps, 12);
        assert!(h.correlation.unwrap() > 0.5, "{:?}", h.correlation);
        assert_eq!((h.noisy_cells, h.noisy_host_moved), (1, 1));
        assert_eq!((h.settled_cells, h.settled_host_moved), (1, 0));
        let p = h.paragraph();
        assert!(p.contains("followed the host's speed"), "{p}");
        assert!(
            p.contains("this is a virtual machine"),
            "the fixture is: {p}"
        );
        assert!(
            h.line().contains(
                "1 of 1 noisy cells ran at host speeds more than 10% apart across their \
                 repetitions (0 of 1 settled cells did)"
            ),
            "{}",
            h.line()
        );
        // The key findings' "How sure" names the host as a cause.
        let found = crate::findings::findings(&crate::summary::analyze(&recs, &[]));
        let sure = found.sentences.iter().find(|s| s.starts_with("How sure"));
        assert!(
            sure.is_some_and(|s| s.contains("Part of that is the host's")),
            "{sure:?}"
        );

        // A noisy cell on a steady host is noisy for its own reasons, and said so.
        let mut steady = Vec::new();
        for rep in 0..6u64 {
            let gbps = if rep % 2 == 0 { 10.0 } else { 15.0 };
            steady.push(record("a1", rep, gbps, Some((1000, 1000 + rep))));
        }
        let h = host_speed_summary(&steady, &crate::derive::derive_table(&steady)).unwrap();
        assert_eq!((h.noisy_cells, h.noisy_host_moved, h.slowed), (1, 0, 0));
        assert_eq!(h.correlation, None, "fewer than eight repetitions");
        assert!(
            !h.paragraph().contains("other tenants"),
            "{}",
            h.paragraph()
        );
        let found = crate::findings::findings(&crate::summary::analyze(&steady, &[]));
        assert!(
            found.sentences.iter().all(|s| !s.contains("host's")),
            "{:?}",
            found.sentences
        );
    }

    #[test]
    fn failed_records_rate_cells_and_other_cpus_stay_out() {
        let mut recs = Vec::new();
        for rep in 0..4u64 {
            recs.push(record("a1", rep, 10.0, Some((1000, 1000))));
        }
        // A failed repetition's probe is not counted, however slow.
        let mut failed = record("a1", 9, 0.0, Some((5000, 5000)));
        failed.status = Status::Failed;
        recs.push(failed);
        // A probe on another CPU has a fastest of its own: 2000 ns there is speed 1.0.
        let mut other_cpu = record("a2", 0, 10.0, Some((2000, 2000)));
        other_cpu.host_speed.as_mut().unwrap().cpu = Some(1);
        recs.push(other_cpu);
        // Rate cells count for the host's speed but not for the correlation.
        for rep in 0..4u64 {
            let mut r = record("a1", rep, 1.0 + rep as f64, Some((1000, 1000 + 300 * rep)));
            r.spec.pattern = "rate".parse().unwrap();
            recs.push(r);
        }
        let h = host_speed_summary(&recs, &crate::derive::derive_table(&recs)).unwrap();
        assert_eq!(
            h.probed, 9,
            "4 stream + 1 other CPU + 4 rate; the failed one is out"
        );
        assert_eq!(h.correlated_reps, 4, "the stream cell only");
        assert!((h.slowest - 1000.0 / 1450.0).abs() < 1e-9, "{}", h.slowest);
        assert_eq!(
            h.slowed, 3,
            "rate reps 1-3 (1150, 1300, 1450 ns); the other CPU's probe is its own fastest"
        );
        assert_eq!(probe_ns(recs[0].host_speed.as_ref().unwrap()), 1000.0);
        let zero = HostSpeedV1 {
            probe: "x".into(),
            cpu: None,
            before_ns: 0,
            after_ns: 0,
        };
        assert_eq!(probe_ns(&zero), 1.0, "never zero: ratios stay finite");
    }

    #[test]
    fn records_without_a_probe_give_no_summary() {
        let recs = vec![record("a1", 0, 1.0, None), record("a1", 1, 1.1, None)];
        assert_eq!(
            host_speed_summary(&recs, &crate::derive::derive_table(&recs)),
            None
        );
    }
}
