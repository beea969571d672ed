//! A cell's identity in the analysis, and the labels of its axes as the report prints them.

use sendpath_record::v1::Record;
use sendpath_record::{Batch, Mode, Pattern, UringOrdering};
use serde::Serialize;

/// The identity of a cell: what varies in a sweep. Sorted by pattern, batch, flows, size,
/// engine, mode. Two cells compared differ in one of these and hold the others equal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CellKey {
    /// `stream`, `rr` or `rate`.
    pub pattern: String,
    /// Messages per send operation: `1`, a size (`512K`), or `auto` for an io_uring stream
    /// recorded before the batch axis (its ordering's own batching). See [`batch_label`].
    pub batch: String,
    /// Connections.
    pub flows: u64,
    /// Bytes per message, header included.
    pub msg_size_bytes: u64,
    /// `threads` or `uring`, or `uring+link` / `uring+bundle` for a stream that ran the
    /// ordering that is not its mode's default (see [`engine_label`]).
    pub engine: String,
    /// The send path.
    pub mode: Mode,
}

impl CellKey {
    /// The key of a record.
    pub fn of(r: &Record) -> CellKey {
        CellKey {
            pattern: pattern_label(r),
            batch: batch_label(r),
            flows: r.spec.flows,
            msg_size_bytes: r.spec.msg_size_bytes,
            engine: engine_label(r),
            mode: r.spec.mode,
        }
    }
}

/// The batch a record's sends carried: its `spec.batch`; for a record from before the batch
/// axis, `1` where each call sent one message (the threads engine, rr, rate) and `auto` for an
/// io_uring stream (its ordering batched on its own).
pub fn batch_label(r: &Record) -> String {
    match r.spec.batch {
        Some(b) => b.label(),
        None if r.spec.engine.facts().rings && r.spec.pattern == Pattern::Stream => "auto".into(),
        None => Batch::One.label(),
    }
}

/// The engine, with the io_uring ordering where it is not the default for the cell's batch
/// (linked chains for `--batch 1`, coalesced sends for a larger one; before the batch axis:
/// bundles for A1 and A2, coalesced sends for A3), so that cells measured both ways stay
/// apart. rr and rate keep one send in flight whatever the ordering, so they are plain `uring`.
pub fn engine_label(r: &Record) -> String {
    let default = match r.spec.batch {
        Some(Batch::One) => UringOrdering::Link,
        Some(Batch::Bytes(_)) => UringOrdering::Coalesce,
        None if r.spec.mode.facts().bundle_form => UringOrdering::Bundle,
        None => UringOrdering::Coalesce,
    };
    match &r.spec.uring {
        Some(u) if r.spec.pattern == Pattern::Stream && u.ordering != default => {
            format!("{}+{}", r.spec.engine, u.ordering)
        }
        _ => r.spec.engine.to_string(),
    }
}

/// The pattern with the variants that change what it measures, so cells measured both ways
/// stay apart (and the report shows both): `rr+busy-poll`, `rate@50%`.
pub fn pattern_label(r: &Record) -> String {
    let mut p = r.spec.pattern.to_string();
    if let Some(f) = r.spec.rate_fraction_of_stream {
        p += &format!("@{:.0}%", f * 100.0);
    }
    if r.spec.busy_poll {
        p += "+busy-poll";
    }
    p
}

impl std::fmt::Display for CellKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} B, {} flow{}, {}, batch {}",
            self.mode.as_str().to_uppercase(),
            self.engine,
            self.msg_size_bytes,
            self.flows,
            if self.flows == 1 { "" } else { "s" },
            self.pattern,
            self.batch
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uring_ordering_keeps_cells_apart_only_when_not_the_default_for_the_batch() {
        let line = include_str!("../tests/fixtures/loopback_threads.jsonl")
            .lines()
            .next()
            .unwrap();
        let mut r: Record = serde_json::from_str(line).unwrap();
        assert_eq!(engine_label(&r), "threads");
        assert_eq!(
            batch_label(&r),
            "1",
            "the threads engine sent a message per call"
        );
        r.spec.engine = "uring".parse().unwrap();
        r.spec.pattern = "stream".parse().unwrap();
        let uring = |ordering: &str| sendpath_record::v1::UringSpec {
            depth: 32,
            batch: 32,
            ordering: ordering.parse().unwrap(),
            setup_flags: vec![],
            registered_ring_fd: true,
        };
        for (batch, mode, ordering, want) in [
            (None, "a1", "bundle", "uring"),
            (None, "a1", "link", "uring+link"),
            (None, "a3", "coalesce", "uring"),
            (Some(Batch::One), "a1", "link", "uring"),
            (Some(Batch::One), "a3", "link", "uring"),
            (Some(Batch::Bytes(65536)), "a1", "coalesce", "uring"),
            (Some(Batch::Bytes(65536)), "a3", "coalesce", "uring"),
            (Some(Batch::Bytes(65536)), "a2", "bundle", "uring+bundle"),
        ] {
            r.spec.batch = batch;
            r.spec.mode = mode.parse().unwrap();
            r.spec.uring = Some(uring(ordering));
            assert_eq!(engine_label(&r), want, "{batch:?} {mode} {ordering}");
        }
        r.spec.batch = None;
        assert_eq!(
            batch_label(&r),
            "auto",
            "an io_uring stream from before --batch"
        );
        r.spec.batch = Some(Batch::Bytes(512 << 10));
        assert_eq!(batch_label(&r), "512K");
        r.spec.mode = "a1".parse().unwrap();
        r.spec.pattern = "rr".parse().unwrap();
        assert_eq!(engine_label(&r), "uring", "rr ignores the ordering");
    }
}
