//! The study's answers, computed from the records: where A2 and A3 beat A1 (per pattern,
//! engine and flow count), the best mode per size, whether zero-copy happened, what more flows
//! and the send paths' CPU per byte say. Each answer carries its confidence (see
//! [`crate::stats`]). Written as `findings.json` (schema `sendpath-findings/v1`) so that two
//! runs can be compared by a program ([`agreement`]), and as the report's first section.

use crate::derive::{BatchKey, DerivedTable, EngineKey, Metric, PatternKey};
use crate::stats::{ratio_ci, Ratio};
use crate::summary::Analysis;
use sendpath_record::{Mode, MODES};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Schema identifier of `findings.json`.
pub const SCHEMA: &str = "sendpath-findings/v1";

/// Everything `findings.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Where each challenger first clearly beats A1.
    pub crossovers: Vec<CrossoverFinding>,
    /// The best mode per (pattern, flows, size), or none clearly.
    pub best: Vec<BestFinding>,
    /// Whether zero-copy happened: `achieved`, `partial`, `not_achieved`, or null without
    /// zero-copy records.
    pub zerocopy: Option<String>,
    /// The key findings, as sentences.
    pub sentences: Vec<String>,
}

/// One crossover row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrossoverFinding {
    /// Pattern (with its variant, e.g. `rr+busy-poll`).
    pub pattern: String,
    /// Messages per send operation, the same for A1 and the challenger (`1`, `512K`).
    #[serde(default)]
    pub batch: String,
    /// Engine label.
    pub engine: String,
    /// Flows.
    pub flows: u64,
    /// `a2`, `a3`.
    pub challenger: String,
    /// Smallest size where it clearly beats A1 (null: at none measured).
    pub first_win_bytes: Option<u64>,
    /// Its ratio to A1 there, with the CI.
    pub ratio: Option<Ratio>,
}

/// One best-mode row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestFinding {
    /// Pattern.
    pub pattern: String,
    /// Messages per send operation of every contender.
    #[serde(default)]
    pub batch: String,
    /// Flows.
    pub flows: u64,
    /// Bytes per message.
    pub msg_size_bytes: u64,
    /// The clear winner (`A2 uring`), or null: no clear difference.
    pub best: Option<String>,
    /// The highest median, clear or not.
    pub leader: String,
    /// Leader / runner-up, with the CI.
    pub margin: Option<Ratio>,
}

impl Findings {
    /// The rows two runs are compared on: a key and the answer.
    pub fn rows(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for c in &self.crossovers {
            out.insert(
                format!(
                    "{} beats A1 from: {} batch {} {} {} flow(s)",
                    c.challenger.to_uppercase(),
                    c.pattern,
                    c.batch,
                    c.engine,
                    c.flows
                ),
                c.first_win_bytes
                    .map_or("none".into(), |b| format!("{b} B")),
            );
        }
        for b in &self.best {
            out.insert(
                format!(
                    "best mode: {} batch {} {} flow(s) {} B",
                    b.pattern, b.batch, b.flows, b.msg_size_bytes
                ),
                b.best.clone().unwrap_or("no clear difference".into()),
            );
        }
        if let Some(z) = &self.zerocopy {
            out.insert("zero-copy".into(), z.clone());
        }
        out
    }
}

/// How many rows two findings agree on, of those both have, and the rows that differ (key,
/// answer in `a`, answer in `b`).
pub fn agreement(a: &Findings, b: &Findings) -> (usize, usize, Vec<(String, String, String)>) {
    let (ra, rb) = (a.rows(), b.rows());
    let mut differ = Vec::new();
    let mut both = 0;
    for (k, va) in &ra {
        if let Some(vb) = rb.get(k) {
            both += 1;
            if va != vb {
                differ.push((k.clone(), va.clone(), vb.clone()));
            }
        }
    }
    (both - differ.len(), both, differ)
}

/// The findings of an analysis.
pub fn findings(a: &Analysis) -> Findings {
    let crossovers = a
        .crossovers
        .iter()
        .map(|c| CrossoverFinding {
            pattern: c.pattern.to_string(),
            batch: c.batch.to_string(),
            engine: c.engine.to_string(),
            flows: c.flows,
            challenger: c.challenger.clone(),
            first_win_bytes: c.first_win_bytes,
            ratio: c.ratio_at_first_win,
        })
        .collect();
    let best = a
        .best
        .iter()
        .map(|b| BestFinding {
            pattern: b.pattern.to_string(),
            batch: b.batch.to_string(),
            flows: b.flows,
            msg_size_bytes: b.msg_size_bytes,
            best: b.clear_winner().map(String::from),
            leader: b.leader.clone(),
            margin: b.margin,
        })
        .collect();
    let z = &a.zerocopy;
    let zerocopy = z.copied_fraction.map(|f| {
        match f {
            f if f >= 1.0 => "not_achieved",
            f if f <= 0.0 => "achieved",
            _ => "partial",
        }
        .to_string()
    });
    Findings {
        schema: SCHEMA.into(),
        crossovers,
        best,
        zerocopy,
        sentences: sentences(a),
    }
}

fn sizes_text(v: &[u64]) -> String {
    match (v.first(), v.last()) {
        (Some(lo), Some(hi)) if lo != hi => format!("{lo}..{hi} B"),
        (Some(lo), _) => format!("{lo} B"),
        _ => "no size".into(),
    }
}

/// The key findings, a sentence each.
fn sentences(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    let stream = PatternKey::STREAM;
    // Where A2 and A3 beat A1, on streams, per engine and batch (the copy discipline at equal
    // batching), at the fewest flows measured.
    let mut engines: BTreeMap<(EngineKey, BatchKey), u64> = BTreeMap::new();
    for c in a.crossovers.iter().filter(|c| c.pattern == stream) {
        let f = engines.entry((c.engine, c.batch)).or_insert(c.flows);
        *f = (*f).min(c.flows);
    }
    for ((engine, batch), flows) in engines {
        let parts: Vec<String> = a
            .crossovers
            .iter()
            .filter(|c| {
                c.pattern == stream && c.engine == engine && c.batch == batch && c.flows == flows
            })
            .map(|c| {
                let who = c.challenger.to_uppercase();
                match (c.first_win_bytes, c.ratio_at_first_win) {
                    (Some(s), Some(r)) if c.loses_above.is_empty() => {
                        format!("{who} beats A1 from {s} B on ({})", r.text())
                    }
                    (Some(s), Some(r)) => format!(
                        "{who} beats A1 at {s} B ({}) but not at every larger size",
                        r.text()
                    ),
                    _ => format!(
                        "{who} beats A1 clearly at no size ({})",
                        sizes_text(&c.sizes_compared)
                    ),
                }
            })
            .collect();
        if !parts.is_empty() {
            out.push(format!(
                "Streams on the {engine} engine, {}, {flows} flow{}: {}.",
                batch_words(batch),
                if flows == 1 { "" } else { "s" },
                parts.join("; ")
            ));
        }
    }
    // What batching itself changes, mode by mode, at equal copy discipline.
    out.extend(batching_sentences(&a.table));
    // Zero-copy, and the batching beside it.
    let z = &a.zerocopy;
    if let Some(f) = z.copied_fraction {
        let mut s = match f {
            f if f >= 1.0 => format!(
                "Zero-copy did not happen: the kernel reported every one of {} completions as a \
                 copy{}.",
                z.completions,
                if z.topologies.iter().all(|t| t == "loopback" || t == "veth") {
                    " (it copies data it delivers locally, on loopback and veth)"
                } else {
                    ""
                }
            ),
            f if f <= 0.0 => "Zero-copy happened: no completion reported a copy.".to_string(),
            f => format!(
                "Zero-copy happened only in part: {:.0}% of completions were copies.",
                f * 100.0
            ),
        };
        for e in z.coalescing_engines() {
            if let Some((lo, hi)) = z.batching_range(&e) {
                s.push_str(&format!(
                    " A3 on {e} carried {lo:.0} to {hi:.0} messages per send where it was \
                     batched, and is compared with A1 and A2 at the same batch only."
                ));
            }
        }
        out.push(s);
    }
    // Flows.
    let fe = &a.flow_effects;
    if !fe.is_empty() {
        let lo = fe.iter().map(|e| e.low.flows).min().unwrap_or(1);
        let hi = fe.iter().map(|e| e.high_flows).max().unwrap_or(lo);
        let ratios: Vec<f64> = fe
            .iter()
            .filter(|e| e.gbps.0 > 0.0)
            .map(|e| e.gbps.1 / e.gbps.0)
            .collect();
        if !ratios.is_empty() {
            let up = ratios.iter().filter(|r| **r > 1.0).count();
            out.push(format!(
                "From {lo} to {hi} flows, total throughput rose in {up} of {} (pattern, engine, \
                 mode, size) cells; the median ratio is {:.2}x.",
                ratios.len(),
                crate::stats::median(&ratios),
            ));
        }
    }
    // CPU per byte of the send paths, at the largest stream size, fewest flows, per engine.
    out.extend(cpu_sentences(&a.table));
    out.extend(resolution_sentence(a));
    out
}

/// How finely this run can tell cells apart: the typical width of a median's CI. A reader
/// needs it to know what "no clear difference" hides.
fn resolution_sentence(a: &Analysis) -> Option<String> {
    let t = &a.table;
    let halves: Vec<f64> = t
        .rows
        .iter()
        .filter_map(|r| r.get(Metric::Gbps))
        .filter(|s| s.n >= 2)
        .map(|s| s.ci_half)
        .collect();
    if halves.is_empty() {
        return None;
    }
    Some(format!(
        "How sure: a cell's median throughput is known to about ±{:.0}% here (the median over \
         cells of its {:.0}% CI half-width), so gaps well under that are reported as no clear \
         difference, not as wins.{}",
        100.0 * crate::stats::median(&halves),
        100.0 * crate::stats::LEVEL,
        a.host_speed
            .as_ref()
            .filter(|h| h.slowest < crate::host_speed::HOST_STEADY)
            .and_then(|h| h.followed().map(|r| (h.slowest, r)))
            .map(|(slowest, r)| format!(
                " Part of that is the host's: its speed (a probe around each repetition) ranged \
                 from {slowest:.2} to 1.00 of its fastest, and the repetitions' throughput \
                 followed it (rank correlation {r:.2})."
            ))
            .unwrap_or_default()
    ))
}

/// `one message per send` or `batches of 512K per send`.
fn batch_words(batch: BatchKey) -> String {
    match batch {
        BatchKey::ONE => "one message per send".into(),
        BatchKey::Auto => "each ordering's own batching".into(),
        b => format!("batches of {b} per send"),
    }
}

/// What batching changes: per engine and mode, a batch's throughput over one message per call,
/// at the smallest stream size and fewest flows that have both (where batching matters most).
fn batching_sentences(t: &DerivedTable) -> Vec<String> {
    let stream = PatternKey::STREAM;
    let mut out = Vec::new();
    let rows: Vec<_> = t
        .rows
        .iter()
        .filter(|r| r.key.pattern == stream && r.get(Metric::Gbps).is_some())
        .collect();
    let mut groups: BTreeMap<(EngineKey, BatchKey), ()> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.key.batch.batched()) {
        groups.insert((r.key.engine, r.key.batch), ());
    }
    for (engine, batch) in groups.into_keys() {
        let at = |b: BatchKey| -> Vec<(u64, u64)> {
            rows.iter()
                .filter(|r| r.key.engine == engine && r.key.batch == b)
                .map(|r| (r.key.flows, r.key.msg_size_bytes))
                .collect()
        };
        let ones = at(BatchKey::ONE);
        let both: Vec<(u64, u64)> = at(batch).into_iter().filter(|k| ones.contains(k)).collect();
        let Some(&(flows, size)) = both.iter().min() else {
            continue;
        };
        let gbps = |mode: Mode, b: BatchKey| {
            rows.iter()
                .find(|r| {
                    r.key.engine == engine
                        && r.key.batch == b
                        && r.key.mode == mode
                        && (r.key.flows, r.key.msg_size_bytes) == (flows, size)
                })
                .and_then(|r| r.get(Metric::Gbps))
        };
        let parts: Vec<String> = MODES
            .iter()
            .filter_map(|m| {
                let one = gbps(m.mode, BatchKey::ONE)?;
                let many = gbps(m.mode, batch)?;
                let r = ratio_ci(&one.values, &many.values)?;
                Some(format!("{} {}", m.mode.as_str().to_uppercase(), r.text()))
            })
            .collect();
        if !parts.is_empty() {
            out.push(format!(
                "Batching on the {engine} engine ({size} B, {flows} flow{}): {batch} per send \
                 against one message per send moves throughput by {} — the same batching for \
                 every mode, so the copy discipline's effect is the comparison at equal batch.",
                if flows == 1 { "" } else { "s" },
                parts.join("; ")
            ));
        }
    }
    out
}

fn cpu_sentences(t: &DerivedTable) -> Vec<String> {
    let stream = PatternKey::STREAM;
    let mut out = Vec::new();
    let mut engines: Vec<(EngineKey, BatchKey)> = t
        .rows
        .iter()
        .filter(|r| r.key.pattern == stream)
        .map(|r| (r.key.engine, r.key.batch))
        .collect();
    engines.sort();
    engines.dedup();
    for (engine, batch) in engines {
        let rows: Vec<_> = t
            .rows
            .iter()
            .filter(|r| r.key.pattern == stream && r.key.engine == engine && r.key.batch == batch)
            .collect();
        let Some(flows) = rows.iter().map(|r| r.key.flows).min() else {
            continue;
        };
        let Some(size) = rows.iter().map(|r| r.key.msg_size_bytes).max() else {
            continue;
        };
        let cpu = |mode: Mode| {
            rows.iter()
                .find(|r| {
                    r.key.flows == flows && r.key.msg_size_bytes == size && r.key.mode == mode
                })
                .and_then(|r| r.get(Metric::SenderCpuNsPerByte))
        };
        let Some(base) = cpu(MODES[0].mode) else {
            continue;
        };
        let parts: Vec<String> = MODES[1..]
            .iter()
            .filter_map(|m| {
                let c = cpu(m.mode)?;
                let r = ratio_ci(&base.values, &c.values)?;
                let how = if r.below() {
                    "less sender CPU per byte than A1"
                } else if r.above() {
                    "more sender CPU per byte than A1"
                } else {
                    "about as much sender CPU per byte as A1 (no clear difference)"
                };
                Some(format!(
                    "{} spends {how} ({})",
                    m.mode.as_str().to_uppercase(),
                    r.text()
                ))
            })
            .collect();
        if !parts.is_empty() {
            out.push(format!(
                "CPU per byte at {size} B, {engine}, {}, {flows} flow{}: {}.",
                batch_words(batch),
                if flows == 1 { "" } else { "s" },
                parts.join("; ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(first: Option<u64>, best: Option<&str>) -> Findings {
        Findings {
            schema: SCHEMA.into(),
            crossovers: vec![CrossoverFinding {
                pattern: "stream".into(),
                batch: "1".into(),
                engine: "threads".into(),
                flows: 1,
                challenger: "a2".into(),
                first_win_bytes: first,
                ratio: None,
            }],
            best: vec![BestFinding {
                pattern: "stream".into(),
                batch: "1".into(),
                flows: 1,
                msg_size_bytes: 64,
                best: best.map(String::from),
                leader: "A1 threads".into(),
                margin: None,
            }],
            zerocopy: Some("not_achieved".into()),
            sentences: vec![],
        }
    }

    #[test]
    fn agreement_counts_rows_that_give_the_same_answer() {
        let a = f(Some(16384), Some("A1 threads"));
        assert_eq!(agreement(&a, &a).0, 3);
        let (agree, both, differ) = agreement(&a, &f(None, Some("A1 threads")));
        assert_eq!((agree, both), (2, 3));
        assert_eq!(differ[0].1, "16384 B");
        assert_eq!(differ[0].2, "none");
        let (agree, _, _) = agreement(&a, &f(Some(16384), None));
        assert_eq!(
            agree, 2,
            "a clear winner against no clear difference differs"
        );
    }
}
