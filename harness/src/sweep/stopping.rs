//! When a comparison group has had enough rounds: its medians settled, or every answer the
//! report draws from it decided, or its next round would end past the sweep's time limit.

use super::cell::cell_id;
use sendpath_analysis::cell::EngineKey;
use sendpath_core::spec::{Mode, RunSpec};
use std::collections::BTreeMap;

/// What a repetition costs beyond its warm-up and window (setup, probes, the drain of a
/// stream, the record), for the time limit's estimate of a cell not yet measured in this run:
/// 10-25 ms measured here.
const UNMEASURED_REP_OVERHEAD_S: f64 = 0.025;

/// The headline values ([`headline`](super::cell::headline)) of each cell's ok repetitions so far, with their
/// repetition (round) index, per [`cell_id`].
pub type Values = BTreeMap<String, Vec<(u64, f64)>>;

/// What becomes of a comparison group's round beyond the fewest repetitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    /// It runs.
    Run,
    /// Its group needs no more rounds ([`group_done`]).
    Settled,
    /// It would end past the sweep's time limit.
    PastTimeLimit,
}

/// Wall seconds each cell's repetitions took so far in this run (sum, count), per
/// [`cell_id`].
pub type CellWall = BTreeMap<String, (f64, u32)>;

/// What becomes of a group's round `rep` (with the fewest repetitions `min_reps` and whether
/// its answers are `compare`d): it does not run when the group needs no more rounds
/// ([`group_done`]), nor when its cells' time per repetition so far would carry the run past
/// the limit (`limit`: the limit and the seconds elapsed). A cell not measured in this run (a
/// resumed sweep) is expected to take `window_s` of warm-up and window and a repetition's usual
/// setup and teardown.
pub fn next_round(
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

/// A cell of a comparison group: its engine as the analysis keys it (io_uring streams with an
/// ordering other than their mode's default apart: the analysis's `EngineKey`) and its mode.
/// A2 and A3 are compared with the A1 of the same engine key, as in the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// Its [`cell_id`].
    pub id: String,
    /// Its engine as the analysis keys it.
    pub engine: EngineKey,
    /// Its mode.
    pub mode: Mode,
}

impl Member {
    pub fn of(spec: &RunSpec) -> Member {
        let ordering = spec.normalized().uring.ordering;
        let own_ordering = spec.carries_batch_on_rings() && ordering != spec.default_ordering();
        Member {
            id: cell_id(spec),
            engine: EngineKey {
                engine: spec.engine,
                ordering: own_ordering.then_some(ordering),
            },
            mode: spec.mode,
        }
    }
}

/// Whether a group needs no more rounds after those before `rep` (only earlier rounds count,
/// so that one decision holds for the whole group within a round): every cell's median is
/// settled, or (`compare`: throughput groups) every answer the report draws from the group is
/// decided (`decided`). Cells with no ok value yet (every repetition failed) are left out; a
/// cell with fewer than `min_reps` ok values (some failed) keeps the group going.
pub fn group_done(
    members: &[Member],
    values: &Values,
    rep: u64,
    min_reps: u64,
    compare: bool,
) -> bool {
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
