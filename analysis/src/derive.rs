//! The derived table: one row per cell ([`CellKey`]) with the median and spread over
//! repetitions of every metric the records carry. Grouping uses only the key's spec fields, so
//! fields added to `spec` later neither break reading nor split cells. Medians, not means: one
//! disturbed repetition on a shared machine should not move the figure. The spread is the
//! relative range (max - min) / median, which with few repetitions is more honest than an IQR.

use sendpath_record::v1::{Record, Status};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

pub use crate::cell::{BatchKey, CellKey, EngineKey, PatternKey};

/// A metric of the derived table. The serialized name is the column stem in `derived.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Total goodput, Gbit/s.
    Gbps,
    /// Messages per second.
    MsgsPerS,
    /// Latency median, ns.
    LatencyP50Ns,
    /// Latency 99th percentile, ns.
    LatencyP99Ns,
    /// Latency 99.9th percentile, ns.
    LatencyP999Ns,
    /// Sender CPU time (user + sys) per byte received.
    SenderCpuNsPerByte,
    /// Receiver CPU time per byte received.
    ReceiverCpuNsPerByte,
    /// Sender cycles per byte (hardware counters only).
    SenderCyclesPerByte,
    /// Receiver cycles per byte (hardware counters only).
    ReceiverCyclesPerByte,
    /// Cache misses per 1e9 bytes, both sides.
    CacheMissesPerGb,
    /// L1D load misses per 1e9 bytes, both sides.
    L1dMissesPerGb,
    /// LLC load misses per 1e9 bytes, both sides.
    LlcMissesPerGb,
    /// Context switches per second, both sides.
    ContextSwitchesPerS,
    /// Zero-copy completions the kernel reported as copied / completions.
    ZcCopiedFraction,
}

impl Metric {
    /// Every metric, in table order.
    pub const ALL: [Metric; 14] = [
        Metric::Gbps,
        Metric::MsgsPerS,
        Metric::LatencyP50Ns,
        Metric::LatencyP99Ns,
        Metric::LatencyP999Ns,
        Metric::SenderCpuNsPerByte,
        Metric::ReceiverCpuNsPerByte,
        Metric::SenderCyclesPerByte,
        Metric::ReceiverCyclesPerByte,
        Metric::CacheMissesPerGb,
        Metric::L1dMissesPerGb,
        Metric::LlcMissesPerGb,
        Metric::ContextSwitchesPerS,
        Metric::ZcCopiedFraction,
    ];

    /// Column stem, with the unit in the name.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Gbps => "gbps",
            Metric::MsgsPerS => "msgs_per_s",
            Metric::LatencyP50Ns => "latency_p50_ns",
            Metric::LatencyP99Ns => "latency_p99_ns",
            Metric::LatencyP999Ns => "latency_p999_ns",
            Metric::SenderCpuNsPerByte => "sender_cpu_ns_per_byte",
            Metric::ReceiverCpuNsPerByte => "receiver_cpu_ns_per_byte",
            Metric::SenderCyclesPerByte => "sender_cycles_per_byte",
            Metric::ReceiverCyclesPerByte => "receiver_cycles_per_byte",
            Metric::CacheMissesPerGb => "cache_misses_per_gb",
            Metric::L1dMissesPerGb => "l1d_misses_per_gb",
            Metric::LlcMissesPerGb => "llc_misses_per_gb",
            Metric::ContextSwitchesPerS => "context_switches_per_s",
            Metric::ZcCopiedFraction => "zc_copied_fraction",
        }
    }

    /// Human title.
    pub fn title(self) -> &'static str {
        match self {
            Metric::Gbps => "Throughput",
            Metric::MsgsPerS => "Message rate",
            Metric::LatencyP50Ns => "Latency p50",
            Metric::LatencyP99Ns => "Latency p99",
            Metric::LatencyP999Ns => "Latency p99.9",
            Metric::SenderCpuNsPerByte => "Sender CPU per byte",
            Metric::ReceiverCpuNsPerByte => "Receiver CPU per byte",
            Metric::SenderCyclesPerByte => "Sender cycles per byte",
            Metric::ReceiverCyclesPerByte => "Receiver cycles per byte",
            Metric::CacheMissesPerGb => "Cache misses per GB",
            Metric::L1dMissesPerGb => "L1D load misses per GB",
            Metric::LlcMissesPerGb => "LLC load misses per GB",
            Metric::ContextSwitchesPerS => "Context switches per second",
            Metric::ZcCopiedFraction => "Zero-copy copied fraction",
        }
    }

    /// Whether the metric needs hardware performance counters.
    pub fn needs_hardware_counters(self) -> bool {
        matches!(
            self,
            Metric::SenderCyclesPerByte
                | Metric::ReceiverCyclesPerByte
                | Metric::CacheMissesPerGb
                | Metric::L1dMissesPerGb
                | Metric::LlcMissesPerGb
        )
    }

    /// The metric's value in a record, if the record has it.
    pub fn value(self, r: &Record) -> Option<f64> {
        let lat = r.latency_ns.as_ref().filter(|l| l.count > 0);
        let d = &r.derived;
        let v = match self {
            Metric::Gbps => Some(r.throughput.gbps),
            Metric::MsgsPerS => Some(r.throughput.msgs_per_s),
            Metric::LatencyP50Ns => lat.map(|l| l.p50 as f64),
            Metric::LatencyP99Ns => lat.map(|l| l.p99 as f64),
            Metric::LatencyP999Ns => lat.map(|l| l.p999 as f64),
            Metric::SenderCpuNsPerByte => d.sender_cpu_ns_per_byte,
            Metric::ReceiverCpuNsPerByte => d.receiver_cpu_ns_per_byte,
            Metric::SenderCyclesPerByte => d.sender_cycles_per_byte,
            Metric::ReceiverCyclesPerByte => d.receiver_cycles_per_byte,
            Metric::CacheMissesPerGb => d.cache_misses_per_gb,
            Metric::L1dMissesPerGb => d.l1d_misses_per_gb,
            Metric::LlcMissesPerGb => d.llc_misses_per_gb,
            Metric::ContextSwitchesPerS => d.context_switches_per_s,
            Metric::ZcCopiedFraction => r.zerocopy.as_ref().and_then(|z| z.copied_fraction),
        };
        v.filter(|x| x.is_finite())
    }
}

/// Median and spread of one metric over the repetitions of a cell.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stat {
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest repetition.
    pub min: f64,
    /// Largest repetition.
    pub max: f64,
    /// (max - min) / |median|; 0 when the median is 0.
    pub rel_range: f64,
    /// Repetitions that had this metric.
    pub n: usize,
    /// Half the width of the median's 90% bootstrap CI, as a fraction of the median (see
    /// [`crate::stats`]): how sure the median is.
    pub ci_half: f64,
    /// The repetitions' values (for ratio intervals between cells).
    pub values: Vec<f64>,
}

impl Stat {
    /// Statistics of values; None if there are none.
    pub fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = crate::stats::median(&v);
        let (min, max) = (v[0], v[n - 1]);
        let rel_range = if median == 0.0 {
            0.0
        } else {
            (max - min) / median.abs()
        };
        Some(Stat {
            median,
            min,
            max,
            rel_range,
            n,
            ci_half: crate::stats::rel_half_width(values),
            values: values.to_vec(),
        })
    }

    /// Whether the median is not pinned down: more than one repetition, and its CI wider than
    /// [`crate::stats::SETTLED_REL_HALF_WIDTH`] each way.
    pub fn is_noisy(&self) -> bool {
        self.n >= 2 && self.ci_half > crate::stats::SETTLED_REL_HALF_WIDTH
    }
}

/// One cell of the derived table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DerivedRow {
    /// The cell.
    #[serde(flatten)]
    pub key: CellKey,
    /// Repetitions with status ok (the medians cover these only).
    pub reps: usize,
    /// Repetitions that failed.
    pub failed_reps: usize,
    /// Latency kind(s) of the repetitions (`one_way`, `round_trip`, ...), `+`-joined.
    pub latency_kind: Option<String>,
    /// Every metric present in at least one ok repetition.
    pub metrics: BTreeMap<Metric, Stat>,
}

impl DerivedRow {
    /// A metric's statistics, if any repetition had it.
    pub fn get(&self, m: Metric) -> Option<&Stat> {
        self.metrics.get(&m)
    }

    /// A metric's median.
    pub fn median(&self, m: Metric) -> Option<f64> {
        self.get(m).map(|s| s.median)
    }
}

/// A failed repetition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailedCell {
    /// The cell.
    #[serde(flatten)]
    pub key: CellKey,
    /// Repetition index.
    pub rep: u64,
    /// The record's error.
    pub error: String,
}

/// A cell whose median is not pinned down ([`Stat::is_noisy`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NoisyCell {
    /// The cell.
    #[serde(flatten)]
    pub key: CellKey,
    /// Which metric.
    pub metric: Metric,
    /// Its statistics.
    pub stat: Stat,
}

/// The derived table with what went wrong beside it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DerivedTable {
    /// One row per cell with at least one repetition (ok or failed), sorted by key.
    pub rows: Vec<DerivedRow>,
    /// Failed repetitions.
    pub failed: Vec<FailedCell>,
    /// Cells with a wide spread.
    pub noisy: Vec<NoisyCell>,
    /// Other remarks (e.g. a cell mixing topologies).
    pub warnings: Vec<String>,
    /// Seconds of warm-up and window per ok repetition (their mean; None without any).
    #[serde(skip)]
    pub rep_time_s: Option<f64>,
}

impl DerivedTable {
    /// The row of a cell.
    pub fn row(&self, key: &CellKey) -> Option<&DerivedRow> {
        self.rows
            .binary_search_by(|r| r.key.cmp(key))
            .ok()
            .map(|i| &self.rows[i])
    }

    /// Whether any row has a value for the metric.
    pub fn has(&self, m: Metric) -> bool {
        self.rows.iter().any(|r| r.get(m).is_some())
    }

    /// How many repetitions would settle the cells, at the scatter their repetitions showed
    /// (None when no cell is noisy). A cell needs what its less settled metric needs, of those
    /// that make it noisy ([`crate::stats::reps_to_settle`]).
    pub fn settling(&self) -> Option<Settling> {
        if self.noisy.is_empty() {
            return None;
        }
        let mut need: Vec<usize> = Vec::new();
        let (mut fewest, mut most_now) = (usize::MAX, 0);
        for r in &self.rows {
            let stats: Vec<&Stat> = NOISY_METRICS.iter().filter_map(|&m| r.get(m)).collect();
            if stats.is_empty() {
                continue;
            }
            need.push(
                stats
                    .iter()
                    .map(|s| crate::stats::reps_to_settle(s.n, s.ci_half))
                    .max()
                    .unwrap_or(0),
            );
            (fewest, most_now) = (fewest.min(r.reps), most_now.max(r.reps));
        }
        if need.is_empty() {
            return None;
        }
        need.sort_unstable();
        // The count that leaves at most (1 - share) of the cells noisy.
        let at = |share: f64| {
            need[((share * need.len() as f64).ceil() as usize).clamp(1, need.len()) - 1]
        };
        let most = at(SETTLED_SHARE);
        // Nothing to forecast when that share is settled with the repetitions cells have.
        if most <= most_now {
            return None;
        }
        Some(Settling {
            half: at(0.5),
            most,
            have: (fewest, most_now),
            minutes: self
                .rep_time_s
                .map(|t| need.len() as f64 * most as f64 * t / 60.0),
        })
    }
}

/// The metrics whose noise makes a cell noisy: the headline figure and what it costs.
pub const NOISY_METRICS: [Metric; 2] = [Metric::Gbps, Metric::SenderCpuNsPerByte];

/// The share of cells [`Settling::most`] is for: at most 15% noisy.
pub const SETTLED_SHARE: f64 = 0.85;

/// How many repetitions per cell would settle the cells of a run, forecast from the scatter of
/// their repetitions ([`DerivedTable::settling`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Settling {
    /// Repetitions per cell that would settle half the cells.
    pub half: usize,
    /// Repetitions per cell that would settle [`SETTLED_SHARE`] of them.
    pub most: usize,
    /// The fewest and most repetitions a cell has now.
    pub have: (usize, usize),
    /// Minutes of warm-ups and windows alone that [`most`](Self::most) repetitions of every
    /// cell would take at this run's length of a repetition (None when unknown).
    pub minutes: Option<f64>,
}

impl Settling {
    /// "at the scatter their repetitions showed, about 61 repetitions per cell would settle 85%
    /// of all the cells (25 would settle half; they have 3-6), at least 40 minutes of windows".
    pub fn clause(&self) -> String {
        let have = match self.have {
            (a, b) if a == b => a.to_string(),
            (a, b) => format!("{a}-{b}"),
        };
        let count = |n: usize| match n {
            n if n >= crate::stats::MAX_FORECAST => format!("over {}", crate::stats::MAX_FORECAST),
            n => format!("about {n}"),
        };
        let half = if self.half > self.have.1 {
            format!("{} would settle half; ", count(self.half))
        } else {
            String::new()
        };
        let time = self.minutes.map_or(String::new(), |m| {
            let m = m.ceil().max(1.0);
            format!(
                ", at least {m} minute{} of windows",
                if m == 1.0 { "" } else { "s" }
            )
        });
        format!(
            "at the scatter their repetitions showed, {} repetitions per cell would settle {:.0}% of all the cells ({half}they have {have}){time}",
            count(self.most),
            SETTLED_SHARE * 100.0,
        )
    }
}

/// Builds the derived table from records: medians over the ok repetitions of each cell.
pub fn derive_table(records: &[Record]) -> DerivedTable {
    let mut groups: BTreeMap<CellKey, Vec<&Record>> = BTreeMap::new();
    for r in records {
        groups.entry(CellKey::of(r)).or_default().push(r);
    }
    let mut t = DerivedTable::default();
    let mut rep_time: Vec<f64> = Vec::new();
    for (key, recs) in groups {
        let ok: Vec<&Record> = recs
            .iter()
            .copied()
            .filter(|r| r.status == Status::Ok)
            .collect();
        for r in recs.iter().filter(|r| r.status == Status::Failed) {
            t.failed.push(FailedCell {
                key: key.clone(),
                rep: r.spec.rep,
                error: r.error.clone().unwrap_or_else(|| "no error given".into()),
            });
        }
        let setups: BTreeSet<(String, String)> = ok
            .iter()
            .map(|r| (r.spec.topology.clone(), r.spec.rx.to_string()))
            .collect();
        if setups.len() > 1 {
            let list: Vec<String> = setups
                .iter()
                .map(|(t, rx)| format!("{t}/rx {rx}"))
                .collect();
            t.warnings.push(format!(
                "{key}: repetitions mix setups ({}); its medians combine them",
                list.join(", ")
            ));
        }
        let kinds: BTreeSet<&str> = ok
            .iter()
            .filter_map(|r| r.latency_ns.as_ref().map(|l| l.kind.as_str()))
            .collect();
        let mut metrics = BTreeMap::new();
        for m in Metric::ALL {
            let vals: Vec<f64> = ok.iter().filter_map(|r| m.value(r)).collect();
            if let Some(s) = Stat::of(&vals) {
                if NOISY_METRICS.contains(&m) && s.is_noisy() {
                    t.noisy.push(NoisyCell {
                        key: key.clone(),
                        metric: m,
                        stat: s.clone(),
                    });
                }
                metrics.insert(m, s);
            }
        }
        rep_time.extend(ok.iter().map(|r| r.spec.warmup_s + r.spec.duration_s));
        t.rows.push(DerivedRow {
            key,
            reps: ok.len(),
            failed_reps: recs.len() - ok.len(),
            latency_kind: (!kinds.is_empty())
                .then(|| kinds.into_iter().collect::<Vec<_>>().join("+")),
            metrics,
        });
    }
    t.rep_time_s =
        (!rep_time.is_empty()).then(|| rep_time.iter().sum::<f64>() / rep_time.len() as f64);
    t
}

/// The table as CSV: one row per cell; for every metric `_median`, `_min`, `_max`,
/// `_rel_range` columns, empty where the cell has no value. Columns are the same for every
/// input so that scripts can rely on them.
pub fn to_csv(t: &DerivedTable) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "pattern",
        "batch",
        "flows",
        "msg_size_bytes",
        "engine",
        "mode",
        "reps",
        "failed_reps",
        "latency_kind",
    ]
    .map(String::from)
    .to_vec();
    for m in Metric::ALL {
        for s in ["median", "min", "max", "rel_range"] {
            header.push(format!("{}_{s}", m.key()));
        }
    }
    // Writing to memory cannot fail.
    w.write_record(&header).expect("csv to memory");
    for r in &t.rows {
        let k = &r.key;
        let mut row: Vec<String> = vec![
            k.pattern.to_string(),
            k.batch.to_string(),
            k.flows.to_string(),
            k.msg_size_bytes.to_string(),
            k.engine.to_string(),
            k.mode.to_string(),
            r.reps.to_string(),
            r.failed_reps.to_string(),
            r.latency_kind.clone().unwrap_or_default(),
        ];
        for m in Metric::ALL {
            match r.get(m) {
                Some(s) => row.extend([s.median, s.min, s.max, s.rel_range].map(|x| x.to_string())),
                None => row.extend(std::iter::repeat_n(String::new(), 4)),
            }
        }
        w.write_record(&row).expect("csv to memory");
    }
    String::from_utf8(w.into_inner().expect("csv to memory")).expect("csv of UTF-8 fields")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `settled` cells with values 10 +- 1% and `noisy` cells with 10 +- 20%, each
    /// over `reps` repetitions of 0.4 s.
    fn table(settled: usize, noisy: usize, reps: usize) -> DerivedTable {
        let mut t = DerivedTable {
            rep_time_s: Some(0.4),
            ..DerivedTable::default()
        };
        for i in 0..settled + noisy {
            let spread = if i < settled { 0.01 } else { 0.2 };
            let v: Vec<f64> = (0..reps)
                .map(|k| 10.0 * (1.0 + spread * if k % 2 == 0 { 1.0 } else { -1.0 }))
                .collect();
            let s = Stat::of(&v).unwrap();
            let key = CellKey {
                pattern: PatternKey::STREAM,
                batch: BatchKey::ONE,
                flows: 1,
                msg_size_bytes: 64 << i,
                engine: EngineKey::THREADS,
                mode: sendpath_record::Mode::A1,
            };
            if s.is_noisy() {
                t.noisy.push(NoisyCell {
                    key: key.clone(),
                    metric: Metric::Gbps,
                    stat: s.clone(),
                });
            }
            t.rows.push(DerivedRow {
                key,
                reps,
                failed_reps: 0,
                latency_kind: None,
                metrics: BTreeMap::from([(Metric::Gbps, s)]),
            });
        }
        t
    }

    #[test]
    fn the_forecast_is_for_the_share_of_all_cells_and_only_when_it_is_not_there_yet() {
        // Nothing noisy, or at most 15% noisy: nothing to forecast.
        assert_eq!(table(10, 0, 6).settling(), None);
        assert_eq!(
            table(18, 2, 6).settling(),
            None,
            "2 of 20 noisy: 90% settled"
        );
        // 4 of 10 noisy: the 85% needs the noisy cells' count; half is settled already.
        let s = table(6, 4, 6).settling().expect("40% noisy");
        assert_eq!((s.half, s.have), (6, (6, 6)));
        assert!(s.most > 6 && s.most < 200, "{s:?}");
        assert_eq!(s.minutes, Some(10.0 * s.most as f64 * 0.4 / 60.0));
        let c = s.clause();
        assert!(
            c.contains(&format!(
                "about {} repetitions per cell would settle 85% of all the cells (they have 6)",
                s.most
            )),
            "{c}"
        );
        // Most cells noisy: the count for half of them too.
        let s = table(2, 8, 6).settling().unwrap();
        assert!(s.half > 6 && s.half <= s.most, "{s:?}");
        assert!(s
            .clause()
            .contains(&format!("about {} would settle half; ", s.half)));
    }

    #[test]
    fn median_and_range() {
        let s = Stat::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(s.rel_range, 1.0);
        let s = Stat::of(&[4.0, 2.0]).unwrap();
        assert_eq!(s.median, 3.0);
        assert!(Stat::of(&[]).is_none());
        assert_eq!(Stat::of(&[0.0, 0.0]).unwrap().rel_range, 0.0);
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        let mut t = DerivedTable::default();
        let line = include_str!("../tests/fixtures/loopback_threads.jsonl")
            .lines()
            .next()
            .unwrap();
        let r: Record = serde_json::from_str(line).unwrap();
        t.rows = derive_table(&[r]).rows;
        t.rows[0].latency_kind = Some("a,\"b\"".into());
        let csv = to_csv(&t);
        let row = csv.lines().nth(1).unwrap();
        assert!(row.starts_with("stream,1,1,"), "{row}");
        assert!(row.contains(",\"a,\"\"b\"\"\","), "{row}");
        assert!(!csv.lines().next().unwrap().contains('"'));
    }
}
