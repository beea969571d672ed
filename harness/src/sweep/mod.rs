//! `sendpath sweep`: the grid (modes x engines x sizes x flows x repetitions), measured cell
//! by cell, each record appended and flushed to `results.jsonl` the moment it exists.
//! [`grid`]: the axes and presets; [`cell`]: a cell's identities; [`stopping`]: when a group
//! has had enough rounds; [`results`]: the results file; [`progress`]: what the terminal shows.
//!
//! Invariants: the results file only ever holds whole lines (one `write` per record on an
//! `O_APPEND` file, then `fdatasync`); a crash or Ctrl-C loses at most the cell in flight; a
//! cell that fails becomes a `failed` record and the sweep goes on; `--resume` skips every
//! (spec, rep) already recorded and first cuts off a torn last line.

pub mod cell;
pub mod grid;
pub mod progress;
pub mod results;
pub mod stopping;

pub use grid::{rx_of, Grid, Preset, BATCHED, QUICK_TIME_LIMIT_S, RATE_FRACTIONS};
pub use results::{default_out_dir, recorded_cells, Recorded, ResultsLock};

use crate::append_line;
use anyhow::Context as _;
use cell::{capacity_key, cell_id, group_id, headline, key};
use indicatif::{ProgressBar, ProgressStyle};
use progress::{cell_label, time_left};
use results::Capacity;
use sendpath_core::host;
use sendpath_core::remote::client::Driver;
use sendpath_core::report::v1::{Record, Status};
use sendpath_core::report::{failed, Context};
use sendpath_core::run::{run_cell, Topology};
use sendpath_core::spec::{Pattern, RunSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use stopping::{next_round, CellWall, Member, Round};

/// What a sweep did.
#[derive(Debug)]
pub struct Outcome {
    /// The results file.
    pub results: PathBuf,
    /// Cells measured now.
    pub measured: usize,
    /// Cells skipped because already recorded (resume).
    pub skipped: usize,
    /// Repetitions not run because their comparison group needed no more.
    pub settled_early: usize,
    /// Repetitions not run because they would have carried the sweep past its time limit.
    pub past_time_limit: usize,
    /// Cells recorded as failed now.
    pub failed: usize,
    /// Wall time of the sweep.
    pub wall_s: f64,
    /// Sum of warm-up + window of the cells measured now.
    pub cell_time_s: f64,
}

/// Where a sweep's cells run: both ends in this process ([`Topology`]), or through a
/// `sendpath serve` daemon on another host ([`Driver`]).
pub trait Cells {
    /// The name recorded in `spec.topology`.
    fn topology_name(&self) -> &'static str;
    /// Measures one cell: a record, or an error before anything was measured.
    fn measure(&mut self, spec: &RunSpec, rep: u64) -> sendpath_core::Result<Record>;
}

impl Cells for Topology {
    fn topology_name(&self) -> &'static str {
        self.name()
    }
    fn measure(&mut self, spec: &RunSpec, rep: u64) -> sendpath_core::Result<Record> {
        run_cell(spec, rep, self)
    }
}

impl Cells for Driver {
    fn topology_name(&self) -> &'static str {
        "remote"
    }
    fn measure(&mut self, spec: &RunSpec, rep: u64) -> sendpath_core::Result<Record> {
        self.run(spec, rep)
    }
}

/// Measures one cell; never panics out and never returns without a record. A rate cell gets
/// its rate from `capacity` (stream messages/s per flow measured for the same cell).
fn measure(spec: &RunSpec, rep: u64, cells: &mut dyn Cells, capacity: &Capacity) -> Record {
    let topology = cells.topology_name();
    let ctx = || Context {
        topology: topology.into(),
        rep,
        threads: spec.sender_threads() as u64,
        started_at: host::utc_now_rfc3339(),
    };
    let mut spec = spec.clone();
    if let Some(f) = spec.rate_fraction {
        match capacity.get(&capacity_key(&spec)) {
            Some(v) if !v.is_empty() => {
                let per_flow = sendpath_analysis::stats::median(v);
                spec.rate = Some((per_flow * f).max(1.0));
            }
            _ => {
                return failed(
                    &spec,
                    &ctx(),
                    host::facts(),
                    "no stream capacity was measured for this cell, so its rate is unknown (add the stream pattern)".into(),
                )
            }
        }
    }
    let spec = &spec;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cells.measure(spec, rep))) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => failed(spec, &ctx(), host::facts(), e.to_string()),
        Err(_) => failed(spec, &ctx(), host::facts(), "the cell panicked".into()),
    }
}

/// Runs every cell of `grid` not yet in `out_dir/results.jsonl`.
pub fn run(
    grid: &Grid,
    cells: &mut dyn Cells,
    out_dir: &Path,
    show_progress: bool,
) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("create {}", out_dir.display()))?;
    let results = out_dir.join("results.jsonl");
    let _claim = ResultsLock::claim(&results)?;
    let Recorded {
        done,
        mut capacity,
        mut values,
    } = recorded_cells(&results)?;
    let all = grid.cells();
    let planned = all
        .iter()
        .filter(|(s, rep)| !done.contains(&key(s, *rep)))
        .count();
    let skipped = all.len() - planned;
    if skipped > 0 {
        eprintln!(
            "resume: {skipped} of {} cells already recorded, at most {planned} to go",
            all.len()
        );
    }
    let min_reps = grid.min_reps.clamp(1, grid.reps.max(1));
    let pb = if show_progress {
        ProgressBar::new(planned as u64)
    } else {
        ProgressBar::hidden()
    };
    let limit = grid.time_limit_s;
    pb.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} cells, {left} left  {msg}")
            .expect("valid template")
            .with_key(
                "left",
                move |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let left = time_left(s.eta(), s.elapsed(), limit);
                    let _ = write!(w, "{:#}", indicatif::HumanDuration(left));
                },
            ),
    );
    let started = Instant::now();
    let (mut failed, mut cell_time_s, mut measured) = (0, 0.0, 0);
    let (mut settled_early, mut past_time_limit) = (0, 0);
    // Wall seconds each cell's repetitions took so far (sum, count): what the next round of
    // its group is expected to take, for the time limit.
    let mut cell_wall = CellWall::new();
    pb.suspend(|| {
        sendpath_core::say!(
            "{:<38} {:>4} {:>12} {:>12} {:>8}",
            "cell",
            "rep",
            "value",
            "median",
            "+-(CI)"
        );
    });
    let mut groups: BTreeMap<String, Vec<Member>> = BTreeMap::new();
    for (spec, _) in &all {
        let (group, m) = (groups.entry(group_id(spec)).or_default(), Member::of(spec));
        if !group.contains(&m) {
            group.push(m);
        }
    }
    // `all` is round by round (reps outermost): a group that needs no more rounds after
    // `min_reps` (`group_done`), or whose round would end past the time limit, skips it; the
    // others stay interleaved. The decision reads earlier rounds only, so it is made once per
    // (group, round), when the group's first cell of the round comes up, and holds for all the
    // group's cells in that round. A group skipped for a round is skipped for all later ones:
    // it gets no new values, so it stays settled, and the time it would need only comes closer
    // to the limit. Each group's latest decision, with its round:
    let mut decisions: BTreeMap<String, (u64, Round)> = BTreeMap::new();
    for (spec, rep) in &all {
        if done.contains(&key(spec, *rep)) {
            continue;
        }
        let id = cell_id(spec);
        let compare = spec.pattern != Pattern::Rate;
        let group = group_id(spec);
        if *rep >= min_reps {
            let round = match decisions.get(&group) {
                Some(&(r, d)) if r == *rep || d != Round::Run => d,
                _ => {
                    let d = next_round(
                        &groups[&group],
                        &values,
                        &cell_wall,
                        (*rep, min_reps, compare),
                        spec.warmup_s + spec.duration_s,
                        grid.time_limit_s
                            .map(|l| (l, started.elapsed().as_secs_f64())),
                    );
                    decisions.insert(group.clone(), (*rep, d));
                    d
                }
            };
            if round != Round::Run {
                match round {
                    Round::Settled => settled_early += 1,
                    _ => past_time_limit += 1,
                }
                pb.set_length(pb.length().unwrap_or(0).saturating_sub(1));
                continue;
            }
        }
        let label = cell_label(spec);
        pb.set_message(format!("{label} rep {rep}"));
        let t0 = Instant::now();
        let record = measure(spec, *rep, cells, &capacity);
        let w = cell_wall.entry(id.clone()).or_default();
        *w = (w.0 + t0.elapsed().as_secs_f64(), w.1 + 1);
        if record.status == Status::Ok && spec.pattern == Pattern::Stream {
            capacity
                .entry(capacity_key(spec))
                .or_default()
                .push(record.throughput.msgs_per_s / spec.flows as f64);
        }
        append_line(&results, &record.to_json_line())?;
        measured += 1;
        cell_time_s += spec.warmup_s + spec.duration_s;
        let line = if record.status == Status::Ok {
            let (value, unit) = headline(&record);
            let v = values.entry(id).or_default();
            v.push((*rep, value));
            let v: Vec<f64> = v.iter().map(|(_, x)| *x).collect();
            let median = sendpath_analysis::stats::median(&v);
            let ci = sendpath_analysis::stats::rel_half_width(&v);
            format!(
                "{label:<38} {rep:>4} {value:>12.3} {median:>12.3} {:>7.1}% {unit}",
                ci * 100.0,
            )
        } else {
            failed += 1;
            format!(
                "{label:<38} {rep:>4}     FAILED: {}",
                record.error.as_deref().unwrap_or("")
            )
        };
        pb.suspend(|| sendpath_core::say!("{line}"));
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(Outcome {
        results,
        measured,
        skipped,
        settled_early,
        past_time_limit,
        failed,
        wall_s: started.elapsed().as_secs_f64(),
        cell_time_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sendpath_core::spec::{Batch, Engine, Mode};
    use stopping::{group_done, Values};

    #[test]
    fn compared_cells_run_next_to_each_other_and_stop_together() {
        let q = Grid::preset(Preset::Quick);
        let cells = q.cells();
        // Every (engine, mode) of one (round, pattern, flows, size) runs in a row, so drift
        // moves them alike.
        let mut at: BTreeMap<(u64, String), Vec<usize>> = BTreeMap::new();
        for (i, (s, rep)) in cells.iter().enumerate() {
            at.entry((*rep, group_id(s))).or_default().push(i);
        }
        assert_eq!(
            at.len(),
            6 * 3 * 4 * 2,
            "rounds x (streams at 2 batches + rr) x sizes x flows"
        );
        for ((rep, g), ix) in &at {
            assert_eq!(ix.len(), 6, "engines x modes in {g}");
            assert_eq!(ix[5] - ix[0], 5, "round {rep}: {ix:?} for {g}");
        }
        // threads A1 and A2 of one group.
        let (ma, mb) = (Member::of(&cells[0].0), Member::of(&cells[1].0));
        assert_eq!(group_id(&cells[0].0), group_id(&cells[1].0));
        // io_uring A1 and A3, each at the ordering that carries their batch, are compared as
        // the report does: one engine.
        let (u1, u3) = (Member::of(&cells[3].0), Member::of(&cells[5].0));
        assert_eq!((u1.mode, u3.mode), (Mode::A1, Mode::A3));
        assert_eq!(u1.engine.to_string(), "uring");
        assert_eq!(u1.engine, u3.engine);
        assert_eq!((ma.mode, mb.mode), (Mode::A1, Mode::A2));
        let (a, b) = (ma.id.clone(), mb.id.clone());
        let members = [ma, mb];
        let done = |v: &Values, compare| group_done(&members, v, 3, 3, compare);
        // Settled medians: done.
        let steady = vec![(0, 10.0), (1, 10.1), (2, 9.9)];
        let mut values = Values::from([(a.clone(), steady.clone()), (b.clone(), steady)]);
        assert!(done(&values, false));
        // Unsettled, and A2 a little ahead but not clearly: one noisy cell holds both.
        values.insert(b.clone(), vec![(0, 10.6), (1, 13.0), (2, 9.8)]);
        assert!(!done(&values, false) && !done(&values, true));
        // Unsettled, but A2 clearly behind A1: the answer ("no win") is known.
        values.insert(b.clone(), vec![(0, 5.0), (1, 6.5), (2, 4.6)]);
        assert!(!done(&values, false) && done(&values, true));
        // Unsettled, and A2 far ahead of A1 whatever the noise: known too.
        values.insert(a.clone(), vec![(0, 10.0), (1, 13.0), (2, 8.0)]);
        values.insert(b.clone(), vec![(0, 20.0), (1, 21.0), (2, 19.5)]);
        assert!(!done(&values, false) && done(&values, true));
        // Only earlier rounds count: round 3's own values do not decide round 3.
        values.insert(b.clone(), vec![(0, 10.0), (1, 10.1), (2, 9.9), (3, 30.0)]);
        values.insert(a.clone(), vec![(0, 10.0), (1, 10.1), (2, 9.9)]);
        assert!(done(&values, false));
        // A cell with no ok value does not hold its group; one with too few keeps it going.
        values.remove(&b);
        assert!(done(&values, false), "no ok value: not held back");
        values.insert(b.clone(), vec![(2, 30.0)]);
        assert!(
            !done(&values, false) && !done(&values, true),
            "one value: not yet known"
        );
        // io_uring A3 near the margin against io_uring A1 holds the group (it is compared).
        let (c, d) = (u1.id.clone(), u3.id.clone());
        let members = [u1, u3];
        let steady = vec![(0, 10.0), (1, 10.1), (2, 9.9)];
        let near = vec![(0, 10.6), (1, 13.0), (2, 9.8)];
        let v = Values::from([(c, steady), (d, near)]);
        assert!(!group_done(&members, &v, 3, 3, true));
    }

    /// Cells that take `per_cell` of wall time each and report throughputs that never settle
    /// nor decide: A2 at 1.08x A1's base, each swinging between 0.5x and 1.5x of it from one
    /// round to the next in opposite phase, so their ratio's interval stays wide around the
    /// margin. Only the most repetitions or the time limit can stop them.
    struct Swinging {
        per_cell: std::time::Duration,
        calls: u64,
    }

    impl Cells for Swinging {
        fn topology_name(&self) -> &'static str {
            "loopback"
        }
        fn measure(&mut self, spec: &RunSpec, rep: u64) -> sendpath_core::Result<Record> {
            std::thread::sleep(self.per_cell);
            self.calls += 1;
            let ctx = Context {
                topology: "loopback".into(),
                rep,
                threads: 1,
                started_at: host::utc_now_rfc3339(),
            };
            let mut r = failed(spec, &ctx, host::facts(), String::new());
            r.status = Status::Ok;
            r.error = None;
            let swing = if (self.calls / 2).is_multiple_of(2) {
                0.5
            } else {
                1.5
            };
            let mode = if spec.mode == Mode::A2 { 1.08 } else { 1.0 };
            r.throughput.gbps = 10.0 * mode * swing;
            Ok(r)
        }
    }

    fn swinging(per_cell_ms: u64) -> Swinging {
        Swinging {
            per_cell: std::time::Duration::from_millis(per_cell_ms),
            calls: 0,
        }
    }

    fn swinging_grid(time_limit_s: Option<f64>) -> Grid {
        Grid {
            modes: vec![Mode::A1, Mode::A2],
            engines: vec![Engine::Threads],
            sizes: vec![64],
            flows: vec![1],
            patterns: vec![Pattern::Stream],
            min_reps: 2,
            reps: 1000,
            time_limit_s,
            batches: vec![Batch::One],
            ..Grid::preset(Preset::Quick)
        }
    }

    fn tmp_out(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sendpath-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn the_time_limit_stops_whole_rounds_of_a_group_that_never_settles() {
        let out = tmp_out("time-limit");
        let mut cells = swinging(20);
        let o = run(&swinging_grid(Some(0.6)), &mut cells, &out, false).unwrap();
        let recs = sendpath_analysis::parse_records(
            &std::fs::read_to_string(out.join("results.jsonl")).unwrap(),
        )
        .unwrap()
        .records;
        std::fs::remove_dir_all(&out).ok();
        assert_eq!(o.measured, recs.len());
        assert!(
            o.measured >= 4 && o.measured < 200,
            "more than the fewest, far fewer than the most: {}",
            o.measured
        );
        assert_eq!(o.measured % 2, 0, "both cells in every round that ran");
        assert_eq!(o.settled_early, 0, "the group never settles");
        assert_eq!(o.past_time_limit, 2000 - o.measured, "the rest: left out");
        // No round starts that would end past the limit (each takes 40 ms here), give or take
        // a shared machine's stalls. (This also fails if every later round of a stopped group
        // were decided afresh: the bootstraps of ~1000 skipped rounds took over a second.)
        assert!(o.wall_s < 0.6 + 0.45, "wall {:.2} s", o.wall_s);
    }

    #[test]
    fn the_time_left_is_no_later_than_the_limit_before_it_passes() {
        let s = std::time::Duration::from_secs;
        assert_eq!(time_left(s(300), s(100), Some(225.0)), s(125));
        assert_eq!(
            time_left(s(60), s(100), Some(225.0)),
            s(60),
            "sooner: as estimated"
        );
        assert_eq!(
            time_left(s(30), s(240), Some(225.0)),
            s(30),
            "past it: the fewest"
        );
        assert_eq!(time_left(s(300), s(100), None), s(300));
    }

    #[test]
    fn the_fewest_repetitions_run_whatever_the_time_limit() {
        let out = tmp_out("time-limit-min");
        let mut cells = swinging(1);
        let o = run(&swinging_grid(Some(0.000_001)), &mut cells, &out, false).unwrap();
        std::fs::remove_dir_all(&out).ok();
        assert_eq!(o.measured, 2 * 2, "two cells x the fewest (2)");
        assert_eq!(o.past_time_limit, 2000 - 4);
        // Without a limit, the same group runs to the most repetitions.
        let mut cells = swinging(0);
        let grid = Grid {
            reps: 40,
            ..swinging_grid(None)
        };
        let o = run(&grid, &mut cells, &out, false).unwrap();
        std::fs::remove_dir_all(&out).ok();
        assert_eq!((o.measured, o.settled_early, o.past_time_limit), (80, 0, 0));
    }
}
