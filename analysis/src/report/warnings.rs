//! What to know before trusting the numbers: failed, noisy and mixed cells, the host's speed.

use super::text::*;
use crate::derive::CellKey;
use crate::document::{Block, RenderedPlot};
use crate::plot::num_label;
use crate::stats::{LEVEL, SETTLED_REL_HALF_WIDTH};
use crate::summary::Analysis;
use std::collections::BTreeSet;

pub(super) fn warnings_section(b: &mut Vec<Block>, a: &Analysis, plots: &[RenderedPlot]) {
    b.push(Block::Heading(2, "Warnings".into()));
    let t = &a.table;
    let mut items: Vec<String> = a
        .read_warnings
        .iter()
        .map(|w| format!("input: {w}"))
        .collect();
    if t.failed.is_empty() {
        items.push("No failed cells.".into());
    } else {
        items.push(format!(
            "{} failed (not in the medians):",
            plural(t.failed.len(), "repetition", "repetitions")
        ));
    }
    items.extend(t.warnings.iter().cloned());
    b.push(Block::List(items));
    if !t.failed.is_empty() {
        b.push(Block::Table(
            ["cell", "rep", "error"].map(String::from).to_vec(),
            t.failed
                .iter()
                .map(|f| vec![f.key.to_string(), f.rep.to_string(), f.error.clone()])
                .collect(),
        ));
    }
    if t.noisy.is_empty() {
        b.push(Block::Para(format!(
            "Every cell's median throughput and sender CPU per byte is known to ±{} ({:.0}% \
             bootstrap confidence interval over its repetitions).",
            pct(SETTLED_REL_HALF_WIDTH),
            LEVEL * 100.0
        )));
        host_speed_blocks(b, a, plots);
    } else {
        let cells: BTreeSet<&CellKey> = t.noisy.iter().map(|n| &n.key).collect();
        let settle = t.settling().map_or(String::new(), |s| {
            format!(
                " {}: the same sweep with `--reps {}`.",
                capitalized(&s.clause()),
                s.most
            )
        });
        b.push(Block::Para(format!(
            "Noisy: {} of {} cells have a median throughput or sender CPU per byte known only to \
             worse than ±{} ({:.0}% bootstrap confidence interval); read them with care.{settle}",
            cells.len(),
            t.rows.len(),
            pct(SETTLED_REL_HALF_WIDTH),
            LEVEL * 100.0
        )));
        // Why, before the long list of which.
        host_speed_blocks(b, a, plots);
        b.push(Block::Table(
            ["cell", "metric", "median", "min", "max", "± (CI)", "reps"]
                .map(String::from)
                .to_vec(),
            t.noisy
                .iter()
                .map(|n| {
                    vec![
                        n.key.to_string(),
                        n.metric.key().to_string(),
                        num_label(n.stat.median),
                        num_label(n.stat.min),
                        num_label(n.stat.max),
                        pct(n.stat.ci_half),
                        n.stat.n.to_string(),
                    ]
                })
                .collect(),
        ));
    }
}

/// Why cells scatter, where the records can say: the host's speed and its plot.
pub(super) fn host_speed_blocks(b: &mut Vec<Block>, a: &Analysis, plots: &[RenderedPlot]) {
    if let Some(h) = &a.host_speed {
        b.push(Block::Para(h.paragraph()));
        if let Some(p) = plots
            .iter()
            .find(|p| p.title == crate::host_speed::HOST_PLOT_TITLE)
        {
            b.push(Block::Plot(p.clone()));
        }
    }
}
