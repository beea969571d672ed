//! The grid of a sweep: its axes, the named presets, and the cells (one spec per combination,
//! repetitions outermost).

use sendpath_core::spec::{
    Batch, Engine, Mode, Pattern, Placement, RunSpec, RxMode, UringOpts, UringOrdering,
};

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
    /// Zero-copy slots per flow; None: room for four batches, at least 64 (see
    /// [`RunSpec::resolve_batch`]).
    pub zc_slots: Option<usize>,
    /// Where the sides run unless asked otherwise.
    pub placement: Placement,
    /// Wall-clock seconds, from the start of this [`run`](super::run), after which no more repetitions
    /// beyond `min_reps` start (None: no limit). A comparison group's next round is skipped
    /// when the time its cells took per repetition so far would carry the run past the limit;
    /// the first `min_reps` rounds always run, so every cell keeps the fewest repetitions
    /// whatever the limit, and the sweep can end later than the limit by as much as they take.
    /// Each run has its own limit: a `--resume` starts it again, and so does each impairment of
    /// `--impairments`.
    pub time_limit_s: Option<f64>,
}

/// The quick preset's time limit: its first 3 rounds (144 cells) take about 200 s here and
/// every group to 6 rounds would take about 400 s, so the limit keeps the README's main job,
/// report included, within 4 minutes on this kind of machine and bounds it on a slower one.
pub const QUICK_TIME_LIMIT_S: f64 = 225.0;

/// Fractions of the stream capacity the rate cells ask for by default.
pub const RATE_FRACTIONS: [f64; 3] = [0.25, 0.5, 0.9];

impl Grid {
    /// The grid of a preset: the quick one (the main job), or what another changes from it.
    pub fn preset(p: Preset) -> Grid {
        let quick = Grid {
            modes: Mode::ALL.to_vec(),
            engines: vec![Engine::Threads, Engine::Uring],
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
        };
        match p {
            Preset::Quick => quick,
            Preset::Why => Grid {
                flows: vec![1],
                patterns: vec![Pattern::Stream],
                duration_s: 0.5,
                reps: 3,
                base: RunSpec {
                    profile: Some(sendpath_core::profile::DEFAULT_HZ),
                    ..RunSpec::default()
                },
                placement: Placement::Unpinned,
                time_limit_s: None,
                ..quick
            },
            Preset::Seed => Grid {
                engines: vec![Engine::Threads],
                sizes: vec![64, 256, 1024, 4096, 16384],
                flows: vec![1, 2, 4, 8],
                patterns: vec![Pattern::Stream],
                duration_s: 10.0,
                warmup_s: 1.0,
                reps: 1,
                min_reps: 1,
                batches: vec![Batch::One],
                placement: Placement::Unpinned,
                time_limit_s: None,
                ..quick
            },
            Preset::Full => Grid {
                sizes: vec![64, 256, 1024, 4096, 16384, 65536],
                flows: vec![1, 2, 4, 8],
                patterns: vec![Pattern::Stream, Pattern::Rr, Pattern::Rate],
                duration_s: 2.0,
                warmup_s: 0.5,
                time_limit_s: None,
                ..quick
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
        if !engine.facts().rings || !batched {
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
        // rr has its own receive loop where the receiver has none (--rx uring is for streams).
        let rx = if cell.pattern == Pattern::Rr && !cell.rx.facts().serves_rr {
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
}
