//! A cell's identity in the analysis, and the labels of its axes as the report prints them.

use sendpath_record::v1::Record;
use sendpath_record::{Batch, Engine, Mode, Pattern, UringOrdering};
use serde::Serialize;

/// Orders, compares and serializes a key part by its label: the order and the text the
/// report and `derived.json` show are the labels' (`1` < `512K` < `auto`, `rr` <
/// `rr+busy-poll` < `stream`, `threads` < `uring` < `uring+link`).
macro_rules! by_label {
    ($t:ty) => {
        impl Ord for $t {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                self.to_string().cmp(&o.to_string())
            }
        }
        impl PartialOrd for $t {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

/// The pattern as cells are told apart: rr with busy polling, and rate at each fraction of the
/// stream's capacity, are cells of their own (`rr+busy-poll`, `rate@50%`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PatternKey {
    /// The pattern.
    pub pattern: Pattern,
    /// A rate cell's share of the stream capacity, in percent (rounded as printed).
    pub rate_pct: Option<u32>,
    /// rr with busy polling.
    pub busy_poll: bool,
}

impl PatternKey {
    /// `p` with no variant: the plain stream, rr or rate.
    pub const fn plain(p: Pattern) -> PatternKey {
        PatternKey {
            pattern: p,
            rate_pct: None,
            busy_poll: false,
        }
    }

    /// The plain stream.
    pub const STREAM: PatternKey = PatternKey::plain(Pattern::Stream);
    /// Plain request/response.
    pub const RR: PatternKey = PatternKey::plain(Pattern::Rr);
}

impl std::fmt::Display for PatternKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.pattern)?;
        if let Some(p) = self.rate_pct {
            write!(f, "@{p}%")?;
        }
        if self.busy_poll {
            write!(f, "+busy-poll")?;
        }
        Ok(())
    }
}
by_label!(PatternKey);

impl std::str::FromStr for PatternKey {
    type Err = String;
    /// A label as [`Display`](std::fmt::Display) writes it (`rate@50%`, `rr+busy-poll`).
    fn from_str(s: &str) -> Result<PatternKey, String> {
        let (s, busy_poll) = match s.strip_suffix("+busy-poll") {
            Some(p) => (p, true),
            None => (s, false),
        };
        let (p, rate_pct) = match s.split_once('@') {
            Some((p, pct)) => {
                let pct = pct.strip_suffix('%').and_then(|n| n.parse().ok());
                (p, Some(pct.ok_or_else(|| format!("not a pattern: {s}"))?))
            }
            None => (s, None),
        };
        Ok(PatternKey {
            pattern: p.parse().map_err(|e| format!("{e}"))?,
            rate_pct,
            busy_poll,
        })
    }
}

/// The batch a cell's sends carried, or `auto` for an io_uring stream recorded before the
/// batch axis (its ordering batched on its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BatchKey {
    /// What `spec.batch` says.
    Is(Batch),
    /// Before the batch axis, on io_uring.
    Auto,
}

impl BatchKey {
    /// One message per send.
    pub const ONE: BatchKey = BatchKey::Is(Batch::One);

    /// Several messages per send, as asked (not one, not `auto`).
    pub fn batched(self) -> bool {
        matches!(self, BatchKey::Is(Batch::Bytes(_)))
    }
}

impl std::fmt::Display for BatchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchKey::Is(b) => write!(f, "{}", b.label()),
            BatchKey::Auto => write!(f, "auto"),
        }
    }
}
by_label!(BatchKey);

impl std::str::FromStr for BatchKey {
    type Err = String;
    /// `auto`, or a batch (`1`, `512K`).
    fn from_str(s: &str) -> Result<BatchKey, String> {
        match s {
            "auto" => Ok(BatchKey::Auto),
            b => b.parse().map(BatchKey::Is),
        }
    }
}

/// The engine as cells are told apart: with the io_uring ordering where it is not the default
/// for the cell's batch (`uring+link`, `uring+bundle`), so cells measured both ways stay apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EngineKey {
    /// The engine.
    pub engine: Engine,
    /// The ordering, where not the default.
    pub ordering: Option<UringOrdering>,
}

impl EngineKey {
    /// The threads engine.
    pub const THREADS: EngineKey = EngineKey {
        engine: Engine::Threads,
        ordering: None,
    };

    /// Whether its sends go through io_uring rings.
    pub fn rings(self) -> bool {
        self.engine.facts().rings
    }
}

impl std::fmt::Display for EngineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ordering {
            Some(o) => write!(f, "{}+{o}", self.engine),
            None => write!(f, "{}", self.engine),
        }
    }
}
by_label!(EngineKey);

impl std::str::FromStr for EngineKey {
    type Err = String;
    /// `threads`, `uring`, or `uring+ORDERING`.
    fn from_str(s: &str) -> Result<EngineKey, String> {
        let (e, o) = match s.split_once('+') {
            Some((e, o)) => (e, Some(o.parse().map_err(|e| format!("{e}"))?)),
            None => (s, None),
        };
        Ok(EngineKey {
            engine: e.parse().map_err(|e| format!("{e}"))?,
            ordering: o,
        })
    }
}

/// The identity of a cell: what varies in a sweep. Sorted by pattern, batch, flows, size,
/// engine, mode. Two cells compared differ in one of these and hold the others equal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CellKey {
    /// `stream`, `rr` or `rate`, with its variant.
    pub pattern: PatternKey,
    /// Messages per send operation.
    pub batch: BatchKey,
    /// Connections.
    pub flows: u64,
    /// Bytes per message, header included.
    pub msg_size_bytes: u64,
    /// The engine, with its ordering where not the default.
    pub engine: EngineKey,
    /// The send path.
    pub mode: Mode,
}

impl CellKey {
    /// The key of a record.
    pub fn of(r: &Record) -> CellKey {
        CellKey {
            pattern: pattern_key(r),
            batch: batch_key(r),
            flows: r.spec.flows,
            msg_size_bytes: r.spec.msg_size_bytes,
            engine: engine_key(r),
            mode: r.spec.mode,
        }
    }
}

/// The batch a record's sends carried: its `spec.batch`; for a record from before the batch
/// axis, one message where each call sent one (the threads engine, rr, rate) and `auto` for an
/// io_uring stream (its ordering batched on its own).
pub fn batch_key(r: &Record) -> BatchKey {
    match r.spec.batch {
        Some(b) => BatchKey::Is(b),
        None if r.spec.engine.facts().rings && r.spec.pattern == Pattern::Stream => BatchKey::Auto,
        None => BatchKey::ONE,
    }
}

/// [`batch_key`] as printed.
pub fn batch_label(r: &Record) -> String {
    batch_key(r).to_string()
}

/// The engine, with the io_uring ordering where it is not the default for the cell's batch
/// (linked chains for `--batch 1`, coalesced sends for a larger one; before the batch axis:
/// bundles for A1 and A2, coalesced sends for A3). rr and rate keep one send in flight
/// whatever the ordering, so they are plain `uring`.
pub fn engine_key(r: &Record) -> EngineKey {
    let default = match r.spec.batch {
        Some(Batch::One) => UringOrdering::Link,
        Some(Batch::Bytes(_)) => UringOrdering::Coalesce,
        None if r.spec.mode.facts().bundle_form => UringOrdering::Bundle,
        None => UringOrdering::Coalesce,
    };
    let ordering = match &r.spec.uring {
        Some(u) if r.spec.pattern == Pattern::Stream && u.ordering != default => Some(u.ordering),
        _ => None,
    };
    EngineKey {
        engine: r.spec.engine,
        ordering,
    }
}

/// [`engine_key`] as printed.
pub fn engine_label(r: &Record) -> String {
    engine_key(r).to_string()
}

/// The pattern with the variants that change what it measures.
pub fn pattern_key(r: &Record) -> PatternKey {
    PatternKey {
        pattern: r.spec.pattern,
        rate_pct: r
            .spec
            .rate_fraction_of_stream
            .map(|f| format!("{:.0}", f * 100.0).parse().unwrap_or(0)),
        busy_poll: r.spec.busy_poll,
    }
}

/// [`pattern_key`] as printed.
pub fn pattern_label(r: &Record) -> String {
    pattern_key(r).to_string()
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
    fn key_parts_read_back_from_their_labels_and_sort_as_the_labels_do() {
        for l in [
            "stream",
            "rr",
            "rr+busy-poll",
            "rate@25%",
            "rate@90%+busy-poll",
        ] {
            assert_eq!(l.parse::<PatternKey>().unwrap().to_string(), l);
        }
        for l in ["1", "512K", "auto"] {
            assert_eq!(l.parse::<BatchKey>().unwrap().to_string(), l);
        }
        for l in ["threads", "uring", "uring+link", "uring+bundle"] {
            assert_eq!(l.parse::<EngineKey>().unwrap().to_string(), l);
        }
        assert!("stream@x%".parse::<PatternKey>().is_err() && "udp".parse::<EngineKey>().is_err());
        let mut keys: Vec<BatchKey> = ["auto", "512K", "1"].map(|l| l.parse().unwrap()).to_vec();
        keys.sort();
        assert_eq!(keys.map_to_labels(), ["1", "512K", "auto"]);
        assert_eq!(
            serde_json::to_string(&EngineKey::THREADS).unwrap(),
            "\"threads\""
        );
    }

    trait Labels {
        fn map_to_labels(&self) -> Vec<String>;
    }
    impl Labels for Vec<BatchKey> {
        fn map_to_labels(&self) -> Vec<String> {
            self.iter().map(|k| k.to_string()).collect()
        }
    }

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
