//! The written report. One list of blocks is built from an [`Analysis`] and rendered twice,
//! as markdown and as self-contained HTML, so both say the same thing. Every sentence is
//! assembled from numbers in the analysis; where the data cannot answer a question the report
//! says that instead of guessing.
//!
//! One file per section; the words and numbers they share are in `text.rs`, the document they
//! build in [`crate::document`].

mod cells;
mod counters;
mod crossovers;
mod flows;
mod key_findings;
mod placement;
mod text;
mod warnings;
mod zerocopy;

pub use crate::document::{html, markdown, Block, RenderedPlot};
pub use text::crossover_text;

use crate::plot::num_label;
use crate::stats::LEVEL;
use crate::summary::Analysis;
use serde::Serialize;
use text::*;

/// `derived.json`: the whole analysis, versioned.
pub fn derived_json(a: &Analysis) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        schema: &'static str,
        #[serde(flatten)]
        analysis: &'a Analysis,
    }
    let mut s = serde_json::to_string_pretty(&Out {
        schema: "sendpath-derived/v1",
        analysis: a,
    })
    .expect("analysis serializes");
    s.push('\n');
    s
}

/// One line per thing the user should know about: skipped lines, failed, noisy and mixed cells.
pub fn warnings(a: &Analysis) -> Vec<String> {
    let mut w = a.read_warnings.clone();
    for f in &a.table.failed {
        w.push(format!("failed: {} rep {}: {}", f.key, f.rep, f.error));
    }
    for n in &a.table.noisy {
        w.push(format!(
            "noisy: {}: {} median {} ±{} ({:.0}% CI) over {} reps ({} .. {})",
            n.key,
            n.metric.key(),
            num_label(n.stat.median),
            pct(n.stat.ci_half),
            LEVEL * 100.0,
            n.stat.n,
            num_label(n.stat.min),
            num_label(n.stat.max)
        ));
    }
    w.extend(a.table.warnings.iter().cloned());
    w
}

/// Builds the report from the analysis. `source` names the input; `plots` are shown in order.
pub fn blocks(
    a: &Analysis,
    found: &crate::findings::Findings,
    source: &str,
    plots: &[RenderedPlot],
) -> Vec<Block> {
    let mut b = Vec::new();
    let t = &a.table;
    let ok_records: usize = t.rows.iter().map(|r| r.reps).sum();
    b.push(Block::Heading(1, "sendpath report".into()));
    let h = &a.host;
    let mut intro = format!(
        "{} from `{source}` ({} ok, {} failed) in {}.",
        plural(a.records, "record", "records"),
        ok_records,
        t.failed.len(),
        plural(t.rows.len(), "cell", "cells"),
    );
    if let Some((from, to)) = &h.span {
        intro.push_str(&format!(" Measured {from} .. {to}."));
    }
    b.push(Block::Para(intro));
    let mut facts = vec![
        format!("kernel: {}", join(&h.kernels)),
        format!(
            "CPU: {}; cores: {}; virtualized: {}",
            join(&h.cpu_models),
            join(&h.cores),
            if h.virtualized { "yes" } else { "no" }
        ),
        format!("topology: {}", join(&h.topologies)),
        format!("tool: {}", join(&h.tools)),
        format!("receiver: {}", join(&h.receivers)),
        format!(
            "placement: {} (senders:receivers CPUs; on a small machine where each side runs \
             moves loopback results several-fold)",
            join(&h.placements)
        ),
    ];
    if !h.impairments.is_empty() {
        facts.push(format!(
            "impairment of the veth pair, sender -> receivers (qdisc; loss rule): {}",
            join(&h.impairments)
        ));
    }
    facts.extend(h.remote.iter().map(|r| format!("two hosts: {r}")));
    b.push(Block::List(facts));
    if !h.uring_orderings.is_empty() {
        b.push(Block::Para(format!(
            "io_uring streams kept each flow in order by: {}. `link`: one SQE per message, \
             linked into one chain per flow (the syscalls batched, not the sends: one message \
             per send); `coalesce`: one SQE per flow in flight carrying the whole batch (A1 \
             staged back to back, A2 in one iovec, A3 one `SEND_ZC` over registered slots, \
             released by one notification); `bundle`: the batch's messages as entries of a \
             provided-buffer ring, one send bundle per flow in flight.",
            join(&h.uring_orderings)
        )));
    }

    key_findings::key_findings_section(&mut b, found, plots);
    crossovers::crossover_section(&mut b, a);
    cells::cells_section(&mut b, a);
    zerocopy::zerocopy_section(&mut b, a);
    crate::cpu_profile::section(&mut b, &a.profile, plots);
    crate::why::zerocopy_section(&mut b, a, &a.profile);
    crate::why::cache_section(&mut b, a, &a.profile);
    crate::why::unexpected_section(&mut b, a, &a.profile);
    crate::explain::stages_section(
        &mut b,
        &a.stages,
        plots
            .iter()
            .find(|p| p.title == crate::explain::STAGE_PLOT_TITLE),
    );
    crate::explain::tcp_section(&mut b, &a.tcp);
    counters::counters_section(&mut b, a);
    placement::placement_section(&mut b, a);
    flows::flows_section(&mut b, a);
    warnings::warnings_section(&mut b, a, plots);

    b.push(Block::Heading(2, "Plots".into()));
    if plots.is_empty() {
        b.push(Block::Para("No cell has a value to plot.".into()));
    } else {
        b.push(Block::Para(
            "Per metric: the median over repetitions against message size (log2 axis); a \
             vertical bar spans min..max over the repetitions. Solid lines with circles: threads \
             engine; dashed lines with triangles: uring engine. Then, where the records have \
             them, where a sampled message's time went and the host's speed over the run."
                .into(),
        ));
    }
    for p in plots {
        b.push(Block::Plot(p.clone()));
    }
    b.push(Block::Heading(2, "Files".into()));
    b.push(Block::List(vec![
        "`derived.csv`: one row per cell; for each metric `_median`, `_min`, `_max`, `_rel_range` (empty where absent)".into(),
        "`derived.json`: the same table plus the crossover table, flow effects, zero-copy and counter summaries".into(),
        "`plots/`: every plot as PNG and SVG".into(),
    ]));
    b
}
