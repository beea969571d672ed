//! A cell's identities: of one repetition (what `--resume` skips), of the cell whatever the
//! repetition, of its comparison group, and of the stream cell whose capacity a rate cell
//! asks a fraction of; and the figure the live table shows for a record.

use sendpath_core::report::v1::Record;
use sendpath_core::spec::{Engine, Mode, Pattern, RunSpec, UringOpts};

/// The identity of a (cell, rep): the normalized spec, so that a spec read back from a
/// record and the grid's spec for the same cell compare equal.
pub fn key(spec: &RunSpec, rep: u64) -> String {
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

/// The cell a stream capacity is measured for: everything but the pattern and its options.
pub fn capacity_key(spec: &RunSpec) -> String {
    let base = RunSpec {
        pattern: Pattern::Stream,
        rate: None,
        rate_fraction: None,
        resp_size: None,
        ..spec.normalized()
    };
    serde_json::to_string(&base).expect("spec serializes")
}

/// A cell's identity whatever the repetition.
pub fn cell_id(spec: &RunSpec) -> String {
    key(spec, 0)
}

/// The comparison group of a cell: the cells the report compares it with (every engine and
/// mode at the same pattern, flows, size and options). A group gets its repetitions together
/// (see [`group_done`](super::stopping::group_done)), so that its cells have the same rounds.
pub fn group_id(spec: &RunSpec) -> String {
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

/// The figure the live table shows for a record: Gbit/s for a stream, transactions/s for rr,
/// the corrected p99 in microseconds for rate.
pub fn headline(r: &Record) -> (f64, &'static str) {
    match (r.spec.pattern, &r.latency_ns) {
        (Pattern::Rr, _) => (r.throughput.msgs_per_s, "transactions/s"),
        (Pattern::Rate, Some(l)) => (l.p99 as f64 / 1000.0, "us p99 from intended"),
        _ => (r.throughput.gbps, "Gbit/s"),
    }
}
