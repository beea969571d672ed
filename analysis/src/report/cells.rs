//! Every cell: the tables of medians.

use super::text::*;
use crate::derive::Metric;
use crate::document::Block;
use crate::stats::{LEVEL, SETTLED_REL_HALF_WIDTH};
use crate::summary::Analysis;
use std::collections::BTreeSet;

pub(super) fn cells_section(b: &mut Vec<Block>, a: &Analysis) {
    b.push(Block::Heading(2, "Cells (median over repetitions)".into()));
    let kinds: BTreeSet<&str> = a
        .table
        .rows
        .iter()
        .filter_map(|r| r.latency_kind.as_deref())
        .collect();
    let mut para = format!(
        "A value marked (±x%) is a median whose {:.0}% bootstrap confidence interval is wider than \
         ±{} (its half-width shown). CPU per byte is user + system CPU time of that side per \
         byte received.",
        LEVEL * 100.0,
        pct(SETTLED_REL_HALF_WIDTH)
    );
    if !kinds.is_empty() {
        para.push_str(&format!(" Latency kind: {}", join(&kinds)));
        if kinds.contains("one_way") {
            para.push_str(
                " (one_way: receive time minus the send timestamp, socket-buffer queueing \
                 included)",
            );
        }
        para.push('.');
    }
    b.push(Block::Para(para));
    let hw = a.table.has(Metric::SenderCyclesPerByte);
    let zc = a.table.has(Metric::ZcCopiedFraction);
    let mut header: Vec<String> = [
        "pattern",
        "batch",
        "flows",
        "msg size (B)",
        "mode",
        "engine",
        "reps",
        "Gbit/s",
        "msgs/s",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "sender ns/B",
        "receiver ns/B",
        "ctx sw/s",
    ]
    .map(String::from)
    .to_vec();
    if hw {
        header.push("sender cycles/B".into());
        header.push("LLC misses/GB".into());
    }
    if zc {
        header.push("zc copied".into());
    }
    let mut rows = Vec::new();
    for r in &a.table.rows {
        let k = &r.key;
        let mut row = vec![
            k.pattern.to_string(),
            k.batch.to_string(),
            k.flows.to_string(),
            k.msg_size_bytes.to_string(),
            k.mode.as_str().to_uppercase(),
            k.engine.to_string(),
            if r.failed_reps > 0 {
                format!("{} (+{} failed)", r.reps, r.failed_reps)
            } else {
                r.reps.to_string()
            },
            cell(r, Metric::Gbps, 1.0),
            cell(r, Metric::MsgsPerS, 1.0),
            cell(r, Metric::LatencyP50Ns, 1e-3),
            cell(r, Metric::LatencyP99Ns, 1e-3),
            cell(r, Metric::LatencyP999Ns, 1e-3),
            cell(r, Metric::SenderCpuNsPerByte, 1.0),
            cell(r, Metric::ReceiverCpuNsPerByte, 1.0),
            cell(r, Metric::ContextSwitchesPerS, 1.0),
        ];
        if hw {
            row.push(cell(r, Metric::SenderCyclesPerByte, 1.0));
            row.push(cell(r, Metric::LlcMissesPerGb, 1.0));
        }
        if zc {
            row.push(cell(r, Metric::ZcCopiedFraction, 1.0));
        }
        rows.push(row);
    }
    b.push(Block::Table(header, rows));
}
