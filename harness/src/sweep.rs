//! `sendpath sweep`: the grid (modes x engines x sizes x flows x repetitions), measured cell
//! by cell, each record appended and flushed to `results.jsonl` the moment it exists.
//!
//! Invariants: the results file only ever holds whole lines (one `write` per record on an
//! `O_APPEND` file, then `fdatasync`); a crash or Ctrl-C loses at most the cell in flight; a
//! cell that fails becomes a `failed` record and the sweep goes on; `--resume` skips every
//! (spec, rep) already recorded and first cuts off a torn last line.

use crate::append_line;
use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use sendpath_core::host;
use sendpath_core::remote::client::Driver;
use sendpath_core::report::v1::{Record, Status};
use sendpath_core::report::{failed, Context};
use sendpath_core::run::{run_cell, Topology};
use sendpath_core::spec::{
    Batch, Engine, Mode, Pattern, Placement, RunSpec, RxMode, UringOpts, UringOrdering,
};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Named grids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// A few minutes here: A1-A3 x both engines x 64 B..64 KiB x 1, 4 flows x streams at
    /// batches 1 and 512K and rr x 3 to 6 reps (until the medians of a comparison group are
    /// settled, none past 225 s) x 0.3 s, placement together.
    Quick,
    /// Where the CPU goes, and why (about 2 minutes here): A1-A3 x both engines x 64 B..64 KiB
    /// x 1 flow x streams at batches 1 and 512K x 3 reps x 0.5 s, unpinned, every cell
    /// profiled at 1 kHz. Not in the quick preset: the sampler switches with its thread, and
    /// with both sides on one CPU (the quick preset's placement) that took about a tenth off
    /// a stream of small messages and a third off rr here (`sendpath bench profile
    /// --placement together`); unpinned, it costs a stream nothing measurable.
    Why,
    /// The original study's grid: A1-A3 x 64..16384 B x 1, 2, 4, 8 flows x 10 s, threads.
    Seed,
    /// Everything: A1-A3 x both engines x 64 B..64 KiB (x4 steps) x 1-8 flows x 3 to 6 reps x 2 s.
    Full,
}

/// The axes of a grid; every combination is a cell, measured `reps` times.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Send paths.
    pub modes: Vec<Mode>,
    /// Engines.
    pub engines: Vec<Engine>,
    /// Message sizes in bytes.
    pub sizes: Vec<usize>,
    /// Flow counts.
    pub flows: Vec<usize>,
    /// Traffic patterns: stream, rr (at every size), rate (one cell per fraction in
    /// `rate_fractions` of the stream capacity measured for the same cell in this sweep).
    pub patterns: Vec<Pattern>,
    /// Fractions of the measured stream capacity the rate cells ask for.
    pub rate_fractions: Vec<f64>,
    /// Measured window per cell, seconds.
    pub duration_s: f64,
    /// Warm-up per cell, seconds.
    pub warmup_s: f64,
    /// Most repetitions of a cell.
    pub reps: u64,
    /// Fewest repetitions of a cell: after these, a comparison group that needs no more
    /// (`group_done`: its medians settled, or every answer drawn from it decided) gets no
    /// more; the others go on up to `reps`. Repetitions stay interleaved across cells (round by
    /// round), so drift of the machine does not favour one cell.
    pub min_reps: u64,
    /// Options every cell shares (zero-copy slots, verify, receiver, latency).
    pub base: RunSpec,
    /// Messages per send operation of the stream cells (rr and rate send one at a time): each
    /// is a cell of its own, the same for every mode and engine.
    pub batches: Vec<Batch>,
    /// io_uring orderings each batched uring stream cell runs with; empty: coalesce. Cells of
    /// one message per send run linked chains. An ordering a mode lacks (bundle for A3), or
    /// one that cannot carry a batch (link), stands for coalesce.
    pub uring_orderings: Vec<UringOrdering>,
    /// Zero-copy slots per flow; None: [`UringOpts::auto_zc_slots`] for each cell.
    pub zc_slots: Option<usize>,
    /// Where the sides run unless asked otherwise.
    pub placement: Placement,
    /// Wall-clock seconds, from the start of this [`run`], after which no more repetitions
    /// beyond `min_reps` start (None: no limit). A comparison group's next round is skipped
    /// when the time its cells took per repetition so far would carry the run past the limit;
    /// the first `min_reps` rounds always run, so every cell keeps the fewest repetitions
    /// whatever the limit, and the sweep can end later than the limit by as much as they take.
    /// Each run has its own limit: a `--resume` starts it again, and so does each impairment of
    /// `--impairments`.
    pub time_limit_s: Option<f64>,
}

/// What a repetition costs beyond its warm-up and window (setup, probes, the drain of a
/// stream, the record), for the time limit's estimate of a cell not yet measured in this run:
/// 10-25 ms measured here.
const UNMEASURED_REP_OVERHEAD_S: f64 = 0.025;

/// The quick preset's time limit: its first 3 rounds (144 cells) take about 200 s here and
/// every group to 6 rounds would take about 400 s, so the limit keeps the README's main job,
/// report included, within 4 minutes on this kind of machine and bounds it on a slower one.
pub const QUICK_TIME_LIMIT_S: f64 = 225.0;

impl Grid {
    /// The grid of a preset.
    pub fn preset(p: Preset) -> Grid {
        let all_modes = Mode::ALL.to_vec();
        let engines = vec![Engine::Threads, Engine::Uring];
        match p {
            Preset::Quick => Grid {
                modes: all_modes,
                engines,
                sizes: vec![64, 1024, 16384, 65536],
                flows: vec![1, 4],
                patterns: vec![Pattern::Stream, Pattern::Rr],
                rate_fractions: RATE_FRACTIONS.to_vec(),
                duration_s: 0.3,
                warmup_s: 0.1,
                reps: 6,
                min_reps: 3,
                base: RunSpec::default(),
                batches: vec![Batch::One, BATCHED],
                uring_orderings: Vec::new(),
                zc_slots: None,
                placement: Placement::Together,
                time_limit_s: Some(QUICK_TIME_LIMIT_S),
            },
            Preset::Why => Grid {
                modes: all_modes.clone(),
                engines: engines.clone(),
                sizes: vec![64, 1024, 16384, 65536],
                flows: vec![1],
                patterns: vec![Pattern::Stream],
                rate_fractions: RATE_FRACTIONS.to_vec(),
                duration_s: 0.5,
                warmup_s: 0.1,
                reps: 3,
                min_reps: 3,
                base: RunSpec {
                    profile: Some(sendpath_core::profile::DEFAULT_HZ),
                    ..RunSpec::default()
                },
                batches: vec![Batch::One, BATCHED],
                uring_orderings: Vec::new(),
                zc_slots: None,
                placement: Placement::Unpinned,
                time_limit_s: None,
            },
            Preset::Seed => Grid {
                modes: all_modes,
                engines: vec![Engine::Threads],
                sizes: vec![64, 256, 1024, 4096, 16384],
                flows: vec![1, 2, 4, 8],
                patterns: vec![Pattern::Stream],
                rate_fractions: RATE_FRACTIONS.to_vec(),
                duration_s: 10.0,
                warmup_s: 1.0,
                reps: 1,
                min_reps: 1,
                base: RunSpec::default(),
                batches: vec![Batch::One],
                uring_orderings: Vec::new(),
                zc_slots: None,
                placement: Placement::Unpinned,
                time_limit_s: None,
            },
            Preset::Full => Grid {
                modes: all_modes,
                engines,
                sizes: vec![64, 256, 1024, 4096, 16384, 65536],
                flows: vec![1, 2, 4, 8],
                patterns: vec![Pattern::Stream, Pattern::Rr, Pattern::Rate],
                rate_fractions: RATE_FRACTIONS.to_vec(),
                duration_s: 2.0,
                warmup_s: 0.5,
                reps: 6,
                min_reps: 3,
                base: RunSpec::default(),
                batches: vec![Batch::One, BATCHED],
                uring_orderings: Vec::new(),
                zc_slots: None,
                placement: Placement::Together,
                time_limit_s: None,
            },
        }
    }

    /// Every (spec, rep) in measuring order: repetitions outermost, so that drift of the
    /// machine spreads over all cells instead of biasing one.
    pub fn cells(&self) -> Vec<(RunSpec, u64)> {
        let mut patterns = self.patterns.clone();
        patterns.sort_by_key(|p| match p {
            Pattern::Stream => 0,
            Pattern::Rr => 1,
            Pattern::Rate => 2,
        });
        patterns.dedup();
        let grid = Grid {
            patterns,
            ..self.clone()
        };
        grid.cells_in_order()
    }

    /// The orderings an (engine, mode, batch) runs: one for the threads engine (unused),
    /// linked chains for one message per send, the asked ones (or coalesce) for a batch; an
    /// ordering the mode lacks or that cannot carry a batch stands for coalesce.
    fn orderings_for(&self, engine: Engine, mode: Mode, batched: bool) -> Vec<UringOrdering> {
        if engine != Engine::Uring || !batched {
            return vec![UringOrdering::Link];
        }
        let mut v: Vec<UringOrdering> = Vec::new();
        for &o in &self.uring_orderings {
            let o = if o != UringOrdering::Link && UringOpts::orderings_for(mode).contains(&o) {
                o
            } else {
                UringOrdering::Coalesce
            };
            if !v.contains(&o) {
                v.push(o);
            }
        }
        if v.is_empty() {
            v.push(UringOrdering::Coalesce);
        }
        v
    }

    fn cells_in_order(&self) -> Vec<(RunSpec, u64)> {
        let mut out = Vec::new();
        // Within a round the cells that the report compares run next to each other: every
        // (engine, mode) of one (flows, size, pattern) in a row, seconds apart, so that the
        // machine's drift (tens of seconds here) moves them alike instead of favouring one.
        // Patterns in their order: stream first, the rate cells after it need its capacity.
        for rep in 0..self.reps {
            for &flows in &self.flows {
                for &msg_size in &self.sizes {
                    for &pattern in &self.patterns {
                        let fractions: Vec<Option<f64>> = match pattern {
                            Pattern::Rate => self.rate_fractions.iter().map(|&f| Some(f)).collect(),
                            _ => vec![None],
                        };
                        let batches = match pattern {
                            Pattern::Stream => self.batches.clone(),
                            _ => vec![Batch::One],
                        };
                        for (rate_fraction, batch) in fractions
                            .iter()
                            .flat_map(|f| batches.iter().map(move |b| (*f, *b)))
                        {
                            for &engine in &self.engines {
                                for &mode in &self.modes {
                                    let cell = RunSpec {
                                        pattern,
                                        rate_fraction,
                                        mode,
                                        engine,
                                        msg_size,
                                        flows,
                                        batch,
                                        duration_s: self.duration_s,
                                        warmup_s: self.warmup_s,
                                        ..self.base.clone()
                                    };
                                    out.extend(
                                        self.ordered_cells(cell).into_iter().map(|s| (s, rep)),
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// A cell once per io_uring ordering it runs with (batched streams only: rr and rate keep
    /// one send in flight per flow whatever the ordering), with the ordering, depth and
    /// zero-copy slots its batch resolves to. A cell whose batch its ordering cannot carry
    /// stays as asked, and fails validation when it runs (recorded as failed).
    fn ordered_cells(&self, cell: RunSpec) -> Vec<RunSpec> {
        let batched = cell.pattern == Pattern::Stream && cell.batch_plan().messages > 1;
        let mut orderings = self.orderings_for(cell.engine, cell.mode, batched);
        if cell.pattern != Pattern::Stream {
            orderings.truncate(1);
        }
        // rr has its own receive loop; --rx uring is for streams.
        let rx = if cell.pattern == Pattern::Rr && cell.rx == RxMode::Uring {
            RxMode::Copy
        } else {
            cell.rx
        };
        orderings
            .into_iter()
            .map(|ordering| {
                let mut s = RunSpec { rx, ..cell.clone() };
                let asked = s.clone();
                match s.resolve_batch(Some(ordering), None, None, self.zc_slots) {
                    Ok(()) => s,
                    Err(_) => asked,
                }
            })
            .collect()
    }
}

/// The batched level of the quick and full presets: 512 KiB per send operation, the size the
/// io_uring engine's zero-copy sends ran fastest at here (256 KiB to 1 MiB measured best).
pub const BATCHED: Batch = Batch::Bytes(512 << 10);

/// What becomes of a comparison group's round beyond the fewest repetitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Round {
    /// It runs.
    Run,
    /// Its group needs no more rounds ([`group_done`]).
    Settled,
    /// It would end past the sweep's time limit.
    PastTimeLimit,
}

/// Wall seconds each cell's repetitions took so far in this run (sum, count), per
/// [`cell_id`].
type CellWall = BTreeMap<String, (f64, u32)>;

/// What becomes of a group's round `rep` (with the fewest repetitions `min_reps` and whether
/// its answers are `compare`d): it does not run when the group needs no more rounds
/// ([`group_done`]), nor when its cells' time per repetition so far would carry the run past
/// the limit (`limit`: the limit and the seconds elapsed). A cell not measured in this run (a
/// resumed sweep) is expected to take `window_s` of warm-up and window and a repetition's usual
/// setup and teardown.
fn next_round(
    members: &[Member],
    values: &Values,
    cell_wall: &CellWall,
    (rep, min_reps, compare): (u64, u64, bool),
    window_s: f64,
    limit: Option<(f64, f64)>,
) -> Round {
    if group_done(members, values, rep, min_reps, compare) {
        return Round::Settled;
    }
    let Some((limit_s, elapsed_s)) = limit else {
        return Round::Run;
    };
    let expected: f64 = members
        .iter()
        .map(|m| match cell_wall.get(&m.id) {
            Some(&(sum, n)) if n > 0 => sum / n as f64,
            _ => window_s + UNMEASURED_REP_OVERHEAD_S,
        })
        .sum();
    if elapsed_s + expected > limit_s {
        Round::PastTimeLimit
    } else {
        Round::Run
    }
}

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

/// The identity of a (cell, rep): the normalized spec, so that a spec read back from a
/// record and the grid's spec for the same cell compare equal.
fn key(spec: &RunSpec, rep: u64) -> String {
    let mut spec = spec.normalized();
    if spec.rate_fraction.is_some() {
        // A rate cell is identified by its fraction; its rate depends on what was measured.
        spec.rate = None;
    }
    format!(
        "{}#{rep}",
        serde_json::to_string(&spec).expect("spec serializes")
    )
}

/// Fractions of the stream capacity the rate cells ask for by default.
pub const RATE_FRACTIONS: [f64; 3] = [0.25, 0.5, 0.9];

/// The cell a stream capacity is measured for: everything but the pattern and its options.
fn capacity_key(spec: &RunSpec) -> String {
    let base = RunSpec {
        pattern: Pattern::Stream,
        rate: None,
        rate_fraction: None,
        resp_size: None,
        ..spec.normalized()
    };
    serde_json::to_string(&base).expect("spec serializes")
}

/// Stream capacity (messages/s per flow) measured so far, per [`capacity_key`].
type Capacity = BTreeMap<String, Vec<f64>>;

/// The headline values ([`headline`]) of each cell's ok repetitions so far, with their
/// repetition (round) index, per [`cell_id`].
type Values = BTreeMap<String, Vec<(u64, f64)>>;

/// A cell's identity whatever the repetition.
fn cell_id(spec: &RunSpec) -> String {
    key(spec, 0)
}

/// The comparison group of a cell: the cells the report compares it with (every engine and
/// mode at the same pattern, flows, size and options). A group gets its repetitions together
/// (see [`group_done`]), so that its cells have the same rounds.
fn group_id(spec: &RunSpec) -> String {
    let neutral = RunSpec {
        mode: Mode::A1,
        engine: Engine::Threads,
        uring: UringOpts::default(),
        zc_slots: 0,
        threads: None,
        ..spec.clone()
    };
    key(&neutral, 0)
}

/// A cell of a comparison group: its engine as the analysis labels it (io_uring streams with
/// an ordering other than their mode's default apart, `engine_label`) and its mode. A2 and A3
/// are compared with the A1 of the same label, as in the report.
#[derive(Clone, Debug, PartialEq)]
struct Member {
    id: String,
    engine: (Engine, Option<UringOrdering>),
    mode: Mode,
}

impl Member {
    fn of(spec: &RunSpec) -> Member {
        let ordering = spec.normalized().uring.ordering;
        let own_ordering = spec.engine == Engine::Uring
            && spec.pattern == Pattern::Stream
            && ordering != spec.default_ordering();
        Member {
            id: cell_id(spec),
            engine: (spec.engine, own_ordering.then_some(ordering)),
            mode: spec.mode,
        }
    }
}

/// Whether a group needs no more rounds after those before `rep` (only earlier rounds count,
/// so that one decision holds for the whole group within a round): every cell's median is
/// settled, or (`compare`: throughput groups) every answer the report draws from the group is
/// decided ([`decided`]). Cells with no ok value yet (every repetition failed) are left out; a
/// cell with fewer than `min_reps` ok values (some failed) keeps the group going.
fn group_done(members: &[Member], values: &Values, rep: u64, min_reps: u64, compare: bool) -> bool {
    let cells: Vec<(&Member, Vec<f64>)> = members
        .iter()
        .filter_map(|m| {
            let v: Vec<f64> = values
                .get(&m.id)?
                .iter()
                .filter(|(r, _)| *r < rep)
                .map(|(_, x)| *x)
                .collect();
            (!v.is_empty()).then_some((m, v))
        })
        .collect();
    if cells.iter().any(|(_, v)| v.len() < min_reps as usize) {
        return false;
    }
    let settled = cells
        .iter()
        .all(|(_, v)| sendpath_analysis::stats::settled(v, min_reps as usize));
    settled || (compare && decided(&cells))
}

/// Whether the answers the report draws from this group are decided (the comparisons the
/// analysis makes): each challenger against A1 of its engine is a win (its ratio's CI wholly
/// above the margin) or clearly not one (its CI wholly below the margin, or its median not
/// even ahead of A1's: more rounds would have to move it by the whole margin, which this rule
/// bets they will not), and the leader is clearly ahead of the runner-up or clearly within the
/// margin of it. Answers near the margin get the rounds; the others stop early.
fn decided(cells: &[(&Member, Vec<f64>)]) -> bool {
    use sendpath_analysis::stats::{median, ratio_ci, MARGIN};
    let clear = |a: &(&Member, Vec<f64>), b: &(&Member, Vec<f64>)| {
        ratio_ci(&a.1, &b.1).is_none_or(|r| r.above() || r.hi < MARGIN || r.ratio <= 1.0)
    };
    for c in cells.iter().filter(|c| c.0.mode != Mode::A1) {
        let base = cells
            .iter()
            .find(|b| b.0.mode == Mode::A1 && b.0.engine == c.0.engine);
        if base.is_some_and(|b| !clear(b, c)) {
            return false;
        }
    }
    let mut by: Vec<&(&Member, Vec<f64>)> = cells.iter().collect();
    by.sort_by(|x, y| median(&y.1).total_cmp(&median(&x.1)));
    match by.as_slice() {
        [leader, runner_up, ..] => clear(runner_up, leader),
        _ => true,
    }
}

/// What a results file already holds: the (cell, rep) keys recorded, the stream capacities
/// measured, and each cell's headline values.
pub struct Recorded {
    done: HashSet<String>,
    capacity: Capacity,
    values: Values,
}

/// Cuts a torn last line (a sweep killed mid-write) off `path` and returns what it already
/// holds.
pub fn recorded_cells(path: &Path) -> anyhow::Result<Recorded> {
    let mut done = HashSet::new();
    let mut capacity = Capacity::new();
    let mut values = Values::new();
    if !path.exists() {
        return Ok(Recorded {
            done,
            capacity,
            values,
        });
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    if !text.is_empty() && !text.ends_with('\n') {
        let keep = text.rfind('\n').map_or(0, |i| i + 1);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("open {}", path.display()))?;
        f.set_len(keep as u64)
            .with_context(|| format!("truncate the torn last line of {}", path.display()))?;
        eprintln!(
            "resume: removed a torn last record ({} bytes) from {}",
            text.len() - keep,
            path.display()
        );
    }
    let recs = sendpath_analysis::parse_records(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for r in recs.records {
        {
            let spec = RunSpec::from_record(&r.spec);
            done.insert(key(&spec, r.spec.rep));
            if r.status == Status::Ok {
                values
                    .entry(cell_id(&spec))
                    .or_default()
                    .push((r.spec.rep, headline(&r).0));
            }
            if r.status == Status::Ok && spec.pattern == Pattern::Stream {
                capacity
                    .entry(capacity_key(&spec))
                    .or_default()
                    .push(r.throughput.msgs_per_s / spec.flows as f64);
            }
        }
    }
    Ok(Recorded {
        done,
        capacity,
        values,
    })
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
fn measure(
    spec: &RunSpec,
    rep: u64,
    cells: &mut dyn Cells,
    capacity: &BTreeMap<String, Vec<f64>>,
) -> Record {
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
                let (per_flow, _) = median_spread(v);
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

fn cell_label(s: &RunSpec) -> String {
    let pattern = match (s.pattern, s.rate_fraction) {
        (Pattern::Rate, Some(f)) => format!("rate@{:.0}%", f * 100.0),
        (p, _) => p.to_string(),
    };
    let pattern = match s.batch {
        Batch::One => pattern,
        b => format!("{pattern} {b}"),
    };
    format!(
        "{} {:<7} {:<11} {:>6} B x{}",
        s.mode,
        s.engine.as_str(),
        pattern,
        s.msg_size,
        s.flows
    )
}

/// An exclusive claim on a results file: one sweep at a time appends to it. Held (an
/// advisory `flock` on `results.jsonl.lock`, which names the holder's pid) until dropped; the
/// kernel releases it if the process dies.
pub struct ResultsLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl ResultsLock {
    /// Claims `results`, or says which process holds it.
    pub fn claim(results: &Path) -> anyhow::Result<ResultsLock> {
        use std::io::{Read, Seek, Write};
        let path = results.with_extension("jsonl.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                lock.set_len(0)
                    .and_then(|_| lock.rewind())
                    .and_then(|_| write!(lock, "{}", std::process::id()))
                    .with_context(|| format!("write {}", path.display()))?;
                Ok(ResultsLock { _lock: lock })
            }
            Err((mut f, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = f.read_to_string(&mut pid);
                anyhow::bail!(
                    "another sweep (pid {}) is writing {}: wait for it to end or stop it",
                    pid.trim(),
                    results.display()
                )
            }
            Err((_, e)) => Err(anyhow::anyhow!("lock {}: {e}", path.display())),
        }
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

/// The time left that the progress line shows: the bar's estimate (every planned repetition
/// at the pace so far), but no later than the time limit while it has not passed (the limit
/// cuts the rounds the estimate still counts; past it, only the fewest rounds are left to run).
fn time_left(
    eta: std::time::Duration,
    elapsed: std::time::Duration,
    limit_s: Option<f64>,
) -> std::time::Duration {
    match limit_s {
        Some(l) if elapsed.as_secs_f64() < l => eta.min(std::time::Duration::from_secs_f64(
            l - elapsed.as_secs_f64(),
        )),
        _ => eta,
    }
}

/// The figure the live table shows for a record: Gbit/s for a stream, transactions/s for rr,
/// the corrected p99 in microseconds for rate.
fn headline(r: &Record) -> (f64, &'static str) {
    match (r.spec.pattern.as_str(), &r.latency_ns) {
        ("rr", _) => (r.throughput.msgs_per_s, "transactions/s"),
        ("rate", Some(l)) => (l.p99 as f64 / 1000.0, "us p99 from intended"),
        _ => (r.throughput.gbps, "Gbit/s"),
    }
}

/// Median and relative spread ((max - min) / median) of `v`.
pub fn median_spread(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        return (f64::NAN, 0.0);
    }
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    let spread = if median > 0.0 {
        (s[n - 1] - s[0]) / median
    } else {
        0.0
    };
    (median, spread)
}

/// Where a new sweep writes when no `--out` is given: `runs/<date>-<time>`.
pub fn default_out_dir() -> PathBuf {
    let stamp = host::utc_now_rfc3339()
        .replace([':', '-'], "")
        .replace('T', "-")
        .trim_end_matches('Z')
        .to_string();
    PathBuf::from("runs").join(stamp)
}

/// The receiver of every cell: `rx` if given, else discard or copy.
pub fn rx_of(rx: Option<RxMode>, discard: bool) -> RxMode {
    match (rx, discard) {
        (Some(rx), _) => rx,
        (None, true) => RxMode::Discard,
        (None, false) => RxMode::Copy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_counts_and_order() {
        let g = Grid::preset(Preset::Seed);
        assert_eq!(g.cells().len(), 3 * 5 * 4);
        let q = Grid::preset(Preset::Quick);
        let cells = q.cells();
        assert_eq!(
            cells.len(),
            3 * 2 * 4 * 2 * (2 + 1) * 6,
            "modes x engines x sizes x flows x (streams at 2 batches + rr) x the most reps"
        );
        let batches: std::collections::BTreeSet<(&str, Batch)> = cells
            .iter()
            .map(|(s, _)| (s.pattern.as_str(), s.batch))
            .collect();
        assert_eq!(
            batches.into_iter().collect::<Vec<_>>(),
            [
                ("rr", Batch::One),
                ("stream", Batch::One),
                ("stream", BATCHED)
            ],
            "rr keeps one message in flight"
        );
        assert_eq!(
            (q.min_reps, q.reps),
            (3, 6),
            "3 reps, up to 6 while not settled"
        );
        assert_eq!(
            q.base.profile, None,
            "the main job is not profiled: it costs rr a third"
        );
        let w = Grid::preset(Preset::Why);
        let why = w.cells();
        assert_eq!(
            why.len(),
            3 * 2 * 4 * 2 * 3,
            "modes x engines x sizes x batches x reps"
        );
        assert!(why
            .iter()
            .all(|(s, _)| s.profile == Some(1000) && s.pattern == Pattern::Stream && s.flows == 1));
        assert!(
            cells[..cells.len() / 6].iter().all(|(_, rep)| *rep == 0),
            "reps outermost: every cell's first rep before any second"
        );
    }

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
        assert_eq!(u1.engine, (Engine::Uring, None));
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

    #[test]
    fn uring_orderings_carry_batched_stream_cells_only() {
        let g = Grid {
            modes: vec![Mode::A1, Mode::A3],
            sizes: vec![64],
            flows: vec![1],
            reps: 1,
            patterns: vec![Pattern::Stream, Pattern::Rr],
            uring_orderings: vec![UringOrdering::Link, UringOrdering::Bundle],
            base: RunSpec {
                rx: RxMode::Uring,
                ..RunSpec::default()
            },
            ..Grid::preset(Preset::Quick)
        };
        let cells: Vec<(Mode, Pattern, Batch, UringOrdering, RxMode)> = g
            .cells()
            .into_iter()
            .filter(|(s, _)| s.engine == Engine::Uring)
            .map(|(s, _)| (s.mode, s.pattern, s.batch, s.uring.ordering, s.rx))
            .collect();
        use UringOrdering::{Bundle, Coalesce, Link};
        let (st, rr, up, one) = (Pattern::Stream, Pattern::Rr, RxMode::Uring, Batch::One);
        assert_eq!(
            cells,
            vec![
                (Mode::A1, st, one, Link, up),
                (Mode::A3, st, one, Link, up),
                (Mode::A1, st, BATCHED, Coalesce, up),
                (Mode::A1, st, BATCHED, Bundle, up),
                (Mode::A3, st, BATCHED, Coalesce, up),
                (Mode::A1, rr, one, Link, RxMode::Copy),
                (Mode::A3, rr, one, Link, RxMode::Copy),
            ],
            "one message per send runs linked chains; link cannot carry a batch and A3 has \
             no bundles, so both stand for coalesce; rr once per cell, on the copy receiver"
        );
        for (s, _) in g.cells() {
            assert!(s.validate().is_ok(), "{s:?}");
            let want = match s.uring.ordering {
                Link => UringOpts::auto_depth(Link, s.mode, s.msg_size, s.verify),
                _ => s.batch_plan().messages,
            };
            assert_eq!(s.uring.depth, want, "{s:?}");
        }
    }

    #[test]
    fn median_and_spread() {
        assert_eq!(median_spread(&[1.0, 3.0, 2.0]), (2.0, 1.0));
        assert_eq!(median_spread(&[2.0, 2.0]).1, 0.0);
    }
}
