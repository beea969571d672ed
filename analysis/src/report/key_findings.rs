//! The key findings, beside the plots that show them.

use crate::document::{Block, RenderedPlot};
use std::collections::BTreeSet;

/// The study's answers first, with the plots that show the first of them.
pub(super) fn key_findings_section(
    b: &mut Vec<Block>,
    found: &crate::findings::Findings,
    plots: &[RenderedPlot],
) {
    b.push(Block::Heading(2, "Key findings".into()));
    if found.sentences.is_empty() {
        b.push(Block::Para(
            "The records hold too little to answer the study's questions (no A1 beside A2 or A3 \
             on one engine, no zero-copy records, one flow count)."
                .into(),
        ));
        return;
    }
    b.push(Block::List(found.sentences.clone()));
    b.push(Block::Para(format!(
        "\"Beats\" means the 90% bootstrap confidence interval of the ratio of medians lies above \
         {} (a gap under {:.0}% is not called a finding: smaller ones moved between runs of the \
         same commit here); the same answers, for programs, are in `findings.json` (`sendpath \
         compare` diffs two runs).",
        crate::stats::MARGIN,
        (crate::stats::MARGIN - 1.0) * 100.0
    )));
    // Throughput and sender CPU per byte of streams at the fewest flows, at each batch
    // (plots come in (pattern, batch, flows) order: the first of a batch has the fewest).
    for stem in ["gbps_stream_batch", "sender_cpu_ns_per_byte_stream_batch"] {
        let mut shown: BTreeSet<&str> = BTreeSet::new();
        for p in plots
            .iter()
            .filter(|p| p.png.starts_with(&format!("plots/{stem}")))
        {
            let batch = p.png[stem.len() + 6..].split('_').next().unwrap_or("");
            if shown.insert(batch) {
                b.push(Block::Plot(p.clone()));
            }
        }
    }
}
