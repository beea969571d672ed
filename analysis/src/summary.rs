//! Answers computed from the derived table and the records: the crossover table (where A2 and
//! A3 beat A1), the effect of flows, whether zero-copy happened, and which counters were
//! missing. Everything the report says comes from here, so every statement has a number
//! behind it.

use crate::derive::{derive_table, BatchKey, CellKey, DerivedTable, EngineKey, Metric, PatternKey};
use sendpath_record::v1::{Record, Status};
use sendpath_record::MODES;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

pub use crate::host_summary::{host_summary, HostSummary};

/// Where a challenger mode first beats A1 on median throughput, for one (pattern, engine,
/// flows).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Crossover {
    /// Pattern.
    pub pattern: PatternKey,
    /// Messages per send operation (the challenger and A1 ran at the same batch).
    pub batch: BatchKey,
    /// Engine (the challenger and A1 ran on the same engine).
    pub engine: EngineKey,
    /// Flows.
    pub flows: u64,
    /// `a2` or `a3`.
    pub challenger: String,
    /// Sizes where both A1 and the challenger have a median throughput.
    pub sizes_compared: Vec<u64>,
    /// Smallest size at which the challenger's throughput is clearly above A1's (the 90% CI
    /// of the ratio of medians lies above [`crate::stats::MARGIN`], see [`crate::stats`]); None: at no measured size.
    pub first_win_bytes: Option<u64>,
    /// challenger / A1 median throughput at `first_win_bytes`, with its CI.
    pub ratio_at_first_win: Option<crate::stats::Ratio>,
    /// Sizes above `first_win_bytes` where the challenger is not clearly above A1.
    pub loses_above: Vec<u64>,
    /// Sizes where the challenger's median is above A1's but not clearly (no clear difference).
    pub unclear: Vec<u64>,
}

/// The crossover table: for each (pattern, batch, engine, flows) and each of A2, A3 that was
/// measured beside A1 (at the same batch: a comparison of send paths never mixes batching in).
pub fn crossover_table(t: &DerivedTable) -> Vec<Crossover> {
    // (pattern, batch, engine, flows) -> mode -> size -> median gbps
    type BySize = BTreeMap<u64, crate::derive::Stat>;
    type Group = (PatternKey, BatchKey, EngineKey, u64);
    let mut by: BTreeMap<Group, BTreeMap<String, BySize>> = BTreeMap::new();
    for r in &t.rows {
        if let Some(g) = r.get(Metric::Gbps) {
            let k = &r.key;
            by.entry((k.pattern, k.batch, k.engine, k.flows))
                .or_default()
                .entry(k.mode.to_string())
                .or_default()
                .insert(k.msg_size_bytes, g.clone());
        }
    }
    let mut out = Vec::new();
    for ((pattern, batch, engine, flows), modes) in by {
        // The first row of the mode table is the baseline the others are compared with.
        let Some(a1) = modes.get(MODES[0].mode.as_str()) else {
            continue;
        };
        for challenger in MODES[1..].iter().map(|f| f.mode.as_str()) {
            let Some(c) = modes.get(challenger) else {
                continue;
            };
            let sizes: Vec<u64> = a1.keys().filter(|s| c.contains_key(s)).copied().collect();
            if sizes.is_empty() {
                continue;
            }
            let ratio = |s: &u64| crate::stats::ratio_ci(&a1[s].values, &c[s].values);
            let wins = |s: &u64| ratio(s).is_some_and(|r| r.above());
            let first = sizes.iter().copied().find(wins);
            let unclear = sizes
                .iter()
                .filter(|s| c[s].median > a1[s].median && !wins(s))
                .copied()
                .collect();
            let loses_above = match first {
                Some(f) => sizes
                    .iter()
                    .filter(|s| **s > f && !wins(s))
                    .copied()
                    .collect(),
                None => Vec::new(),
            };
            out.push(Crossover {
                pattern,
                batch,
                engine,
                flows,
                challenger: challenger.into(),
                ratio_at_first_win: first.and_then(|f| ratio(&f)),
                unclear,
                first_win_bytes: first,
                sizes_compared: sizes,
                loses_above,
            });
        }
    }
    out
}

/// Which mode and engine moved the most bytes at one (pattern, flows, size), and whether
/// clearly.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Best {
    /// Pattern.
    pub pattern: PatternKey,
    /// Messages per send operation of every contender.
    pub batch: BatchKey,
    /// Flows.
    pub flows: u64,
    /// Bytes per message.
    pub msg_size_bytes: u64,
    /// The highest median throughput (`A2 uring`).
    pub leader: String,
    /// Its median Gbit/s.
    pub gbps: f64,
    /// The next highest, if another was measured.
    pub runner_up: Option<String>,
    /// leader / runner-up median throughput, with its CI.
    pub margin: Option<crate::stats::Ratio>,
}

impl Best {
    /// The leader if it is clearly ahead of the runner-up (or the only one measured); None:
    /// no clear difference.
    pub fn clear_winner(&self) -> Option<&str> {
        match (&self.runner_up, self.margin) {
            (None, _) => Some(&self.leader),
            (Some(_), Some(m)) if m.above() => Some(&self.leader),
            _ => None,
        }
    }
}

/// The best mode and engine per (pattern, batch, flows, size), by median throughput, with the
/// margin over the runner-up and its confidence.
pub fn best_per_size(t: &DerivedTable) -> Vec<Best> {
    type Contenders<'a> = Vec<(String, &'a crate::derive::Stat)>;
    type Group = (PatternKey, BatchKey, u64, u64);
    let mut by: BTreeMap<Group, Contenders> = BTreeMap::new();
    for r in &t.rows {
        if let Some(g) = r.get(Metric::Gbps) {
            let k = &r.key;
            by.entry((k.pattern, k.batch, k.flows, k.msg_size_bytes))
                .or_default()
                .push((
                    format!("{} {}", k.mode.as_str().to_uppercase(), k.engine),
                    g,
                ));
        }
    }
    by.into_iter()
        .map(|((pattern, batch, flows, msg_size_bytes), mut v)| {
            v.sort_by(|x, y| y.1.median.total_cmp(&x.1.median));
            let second = v.get(1);
            Best {
                pattern,
                batch,
                flows,
                msg_size_bytes,
                leader: v[0].0.clone(),
                gbps: v[0].1.median,
                runner_up: second.map(|s| s.0.clone()),
                margin: second.and_then(|s| crate::stats::ratio_ci(&s.1.values, &v[0].1.values)),
            }
        })
        .collect()
}

/// How going from the fewest to the most flows changed one (pattern, engine, mode, size).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowEffect {
    /// The cell at the fewest flows.
    pub low: CellKey,
    /// The most flows measured for the same pattern, engine, mode and size.
    pub high_flows: u64,
    /// Median Gbit/s at the fewest and the most flows.
    pub gbps: (f64, f64),
    /// Median sender CPU ns per byte at the fewest and the most flows.
    pub sender_cpu_ns_per_byte: Option<(f64, f64)>,
}

/// Flow effects for every (pattern, batch, engine, mode, size) measured at two or more flow
/// counts.
pub fn flow_effects(t: &DerivedTable) -> Vec<FlowEffect> {
    type Group = (PatternKey, BatchKey, EngineKey, sendpath_record::Mode, u64);
    let mut by: BTreeMap<Group, Vec<&crate::derive::DerivedRow>> = BTreeMap::new();
    for r in &t.rows {
        if r.median(Metric::Gbps).is_some() {
            let k = &r.key;
            by.entry((k.pattern, k.batch, k.engine, k.mode, k.msg_size_bytes))
                .or_default()
                .push(r);
        }
    }
    let mut out = Vec::new();
    for rows in by.values() {
        let lo = rows.iter().min_by_key(|r| r.key.flows).expect("non-empty");
        let hi = rows.iter().max_by_key(|r| r.key.flows).expect("non-empty");
        if lo.key.flows == hi.key.flows {
            continue;
        }
        let cpu = |r: &crate::derive::DerivedRow| r.median(Metric::SenderCpuNsPerByte);
        out.push(FlowEffect {
            low: lo.key.clone(),
            high_flows: hi.key.flows,
            gbps: (
                lo.median(Metric::Gbps).unwrap_or(0.0),
                hi.median(Metric::Gbps).unwrap_or(0.0),
            ),
            sender_cpu_ns_per_byte: cpu(lo).zip(cpu(hi)),
        });
    }
    out
}

/// Zero-copy accounting over every ok record that has it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ZeroCopySummary {
    /// Records with zero-copy accounting.
    pub records: usize,
    /// Zero-copy send calls.
    pub sends: u64,
    /// Completions.
    pub completions: u64,
    /// Completions reported copied.
    pub copied: u64,
    /// copied / completions over everything; None without completions.
    pub copied_fraction: Option<f64>,
    /// Smallest and largest per-record copied fraction.
    pub fraction_range: Option<(f64, f64)>,
    /// Records per verdict (`achieved`, `partial`, `not_achieved`, `unknown`).
    pub verdicts: BTreeMap<String, usize>,
    /// Topologies of these records.
    pub topologies: BTreeSet<String>,
    /// ENOBUFS retries.
    pub enobufs: u64,
    /// How many messages one zero-copy send carried, per engine and size (streams; records
    /// from before the field was recorded are left out).
    pub batching: Vec<Batching>,
    /// Smallest and largest send-bundle depth (most messages per send) of the A1/A2 io_uring
    /// stream records, the copying paths' batching to compare with.
    pub bundle_depths: Option<(u64, u64)>,
}

/// Messages per zero-copy send of one engine at one message size (median over records).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Batching {
    /// Engine label (see [`crate::cell::engine_label`]).
    pub engine: String,
    /// Bytes per message.
    pub msg_size_bytes: u64,
    /// Median of the records' `zerocopy.messages_per_send`.
    pub messages_per_send: f64,
}

impl ZeroCopySummary {
    /// The range of messages per send of `engine` (smallest, largest over sizes).
    pub fn batching_range(&self, engine: &str) -> Option<(f64, f64)> {
        let v: Vec<f64> = self
            .batching
            .iter()
            .filter(|b| b.engine == engine)
            .map(|b| b.messages_per_send)
            .collect();
        (!v.is_empty()).then(|| {
            (
                v.iter().copied().fold(f64::INFINITY, f64::min),
                v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )
        })
    }

    /// Engines whose zero-copy sends carried more than one message on average somewhere.
    pub fn coalescing_engines(&self) -> BTreeSet<String> {
        self.batching
            .iter()
            .filter(|b| b.messages_per_send >= 1.5)
            .map(|b| b.engine.clone())
            .collect()
    }
}

/// Sums the zero-copy accounting of the ok records.
pub fn zerocopy_summary(records: &[Record]) -> ZeroCopySummary {
    let mut s = ZeroCopySummary::default();
    let mut fracs = Vec::new();
    let mut per_send: BTreeMap<(String, u64), Vec<f64>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == Status::Ok) {
        if let (Some(u), sendpath_record::Pattern::Stream) = (&r.spec.uring, r.spec.pattern) {
            if u.ordering == sendpath_record::UringOrdering::Bundle {
                let (lo, hi) = s.bundle_depths.unwrap_or((u.depth, u.depth));
                s.bundle_depths = Some((lo.min(u.depth), hi.max(u.depth)));
            }
        }
        let Some(z) = &r.zerocopy else { continue };
        if let (Some(m), sendpath_record::Pattern::Stream) = (z.messages_per_send, r.spec.pattern) {
            per_send
                .entry((crate::cell::engine_label(r), r.spec.msg_size_bytes))
                .or_default()
                .push(m);
        }
        s.records += 1;
        s.sends += z.sends;
        s.completions += z.completions;
        s.copied += z.copied;
        s.enobufs += z.enobufs;
        *s.verdicts.entry(z.verdict.clone()).or_default() += 1;
        s.topologies.insert(r.spec.topology.clone());
        if let Some(f) = z.copied_fraction {
            fracs.push(f);
        }
    }
    s.copied_fraction = (s.completions > 0).then(|| s.copied as f64 / s.completions as f64);
    s.batching = per_send
        .into_iter()
        .map(|((engine, msg_size_bytes), v)| Batching {
            engine,
            msg_size_bytes,
            messages_per_send: crate::stats::median(&v),
        })
        .collect();
    if !fracs.is_empty() {
        let lo = fracs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = fracs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        s.fraction_range = Some((lo, hi));
    }
    s
}

/// Which counters were missing, and in how many records.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CounterSummary {
    /// Records looked at (status ok, side reported).
    pub records: usize,
    /// Counter name -> records (sides counted once per record) naming it unsupported.
    pub unsupported: BTreeMap<String, usize>,
    /// Counters every record had.
    pub always_present: Vec<String>,
    /// Records with a CPU time based `sender_cpu_ns_per_byte`.
    pub cpu_per_byte_records: usize,
}

const COUNTERS: [&str; 9] = [
    "task_clock",
    "context_switches",
    "cpu_migrations",
    "page_faults",
    "cycles",
    "instructions",
    "cache_misses",
    "l1d_load_misses",
    "llc_load_misses",
];

/// Tallies unsupported counters from each record's `unsupported` lists and null counters.
pub fn counter_summary(records: &[Record]) -> CounterSummary {
    let mut s = CounterSummary::default();
    let mut present: BTreeMap<&str, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == Status::Ok) {
        s.records += 1;
        let mut missing: BTreeSet<String> = BTreeSet::new();
        for side in [&r.sender, &r.receiver].into_iter().filter(|s| s.reported) {
            missing.extend(side.unsupported.iter().cloned());
            let c = &side.counters;
            let vals = [
                c.task_clock_ns,
                c.context_switches,
                c.cpu_migrations,
                c.page_faults,
                c.cycles,
                c.instructions,
                c.cache_misses,
                c.l1d_load_misses,
                c.llc_load_misses,
            ];
            for (name, v) in COUNTERS.iter().zip(vals) {
                if v.is_none() {
                    missing.insert(name.to_string());
                }
            }
        }
        for name in COUNTERS {
            if !missing.contains(name) {
                *present.entry(name).or_default() += 1;
            }
        }
        for m in missing {
            *s.unsupported.entry(m).or_default() += 1;
        }
        if r.derived.sender_cpu_ns_per_byte.is_some() {
            s.cpu_per_byte_records += 1;
        }
    }
    s.always_present = COUNTERS
        .iter()
        .filter(|n| s.records > 0 && present.get(*n) == Some(&s.records))
        .map(|n| n.to_string())
        .collect();
    s
}

/// Everything the report is built from.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Analysis {
    /// Records read (ok and failed).
    pub records: usize,
    /// Warnings from reading (skipped lines).
    pub read_warnings: Vec<String>,
    /// The derived table.
    pub table: DerivedTable,
    /// The crossover table.
    pub crossovers: Vec<Crossover>,
    /// The best mode per (pattern, flows, size).
    pub best: Vec<Best>,
    /// Fewest vs most flows.
    pub flow_effects: Vec<FlowEffect>,
    /// Zero-copy accounting.
    pub zerocopy: ZeroCopySummary,
    /// Missing counters.
    pub counters: CounterSummary,
    /// Where it was measured.
    pub host: HostSummary,
    /// Whether the two sides shared a CPU.
    pub placement: PlacementSummary,
    /// Where the time went, per cell with `--timestamps`.
    pub stages: Vec<crate::explain::StageRow>,
    /// What TCP did, per cell.
    pub tcp: Vec<crate::explain::TcpRow>,
    /// How fast the host ran around each repetition; None when no record was probed.
    pub host_speed: Option<crate::host_speed::HostSpeedSummary>,
    /// What each send operation carried, per (engine, batch, mode, size).
    pub calls: Vec<crate::calls::CallsRow>,
    /// Where each side's CPU went, per cell (`--profile`).
    pub profile: Vec<crate::cpu_profile::ProfileRow>,
}

/// Whether sender and receiver threads ended their windows on a shared CPU.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PlacementSummary {
    /// Ok records that say where both sides ran.
    pub known: usize,
    /// Of those, records where a sender and a receiver thread were on the same CPU.
    pub shared: usize,
    /// Of those, records whose threads were pinned (`spec.pin`): where they ran was asked for,
    /// not left to the scheduler.
    pub pinned: usize,
    /// Cells measured both ways: (cell, median Gbit/s when shared, when apart).
    pub mixed: Vec<(String, f64, f64)>,
}

/// Counts shared-CPU placements and compares them where a cell saw both.
pub fn placement_summary(records: &[Record]) -> PlacementSummary {
    let mut s = PlacementSummary::default();
    let mut by_cell: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == Status::Ok) {
        let (tx, rx) = (&r.sender.cpus, &r.receiver.cpus);
        if tx.is_empty() || rx.is_empty() {
            continue;
        }
        s.known += 1;
        let shared = tx.iter().any(|c| rx.contains(c));
        s.shared += usize::from(shared);
        s.pinned += usize::from(r.spec.pin.is_some());
        let e = by_cell.entry(CellKey::of(r).to_string()).or_default();
        if shared {
            e.0.push(r.throughput.gbps);
        } else {
            e.1.push(r.throughput.gbps);
        }
    }
    for (cell, (shared, apart)) in by_cell {
        if !shared.is_empty() && !apart.is_empty() {
            s.mixed.push((
                cell,
                crate::stats::median(&shared),
                crate::stats::median(&apart),
            ));
        }
    }
    s
}

/// Analyses records: the pure core of the report.
pub fn analyze(records: &[Record], read_warnings: &[String]) -> Analysis {
    let table = derive_table(records);
    Analysis {
        records: records.len(),
        read_warnings: read_warnings.to_vec(),
        crossovers: crossover_table(&table),
        best: best_per_size(&table),
        flow_effects: flow_effects(&table),
        zerocopy: zerocopy_summary(records),
        counters: counter_summary(records),
        host: host_summary(records),
        placement: placement_summary(records),
        stages: crate::explain::stage_rows(records),
        tcp: crate::explain::tcp_rows(records),
        host_speed: crate::host_speed::host_speed_summary(records, &table),
        calls: crate::calls::calls_rows(records),
        profile: crate::cpu_profile::profile_rows(records),
        table,
    }
}
