//! Where A2 and A3 beat A1: the crossover table.

use super::text::*;
use crate::document::Block;
use crate::plot::{mode_label, num_label};
use crate::summary::{Analysis, Crossover};
use sendpath_record::MODES;
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn crossover_section(b: &mut Vec<Block>, a: &Analysis) {
    b.push(Block::Heading(2, "Where A2 and A3 beat A1".into()));
    if a.crossovers.is_empty() {
        b.push(Block::Para(
            "No crossover can be computed: no engine, pattern and flow count has A1 beside A2 \
             or A3 at a common message size with a throughput."
                .into(),
        ));
        return;
    }
    let sizes: BTreeSet<u64> = a
        .crossovers
        .iter()
        .flat_map(|c| c.sizes_compared.iter().copied())
        .collect();
    b.push(Block::Para(format!(
        "Smallest measured message size at which the mode's throughput (Gbit/s) is clearly above \
         A1's on the same engine, pattern, batch and flow count: the 90% bootstrap confidence interval of \
         the ratio of their medians lies above {} (shown with the ratio). Sizes where it is not \
         clearly above A1 afterwards are named; a median ahead inside the noise is no win. Sizes \
         compared: {}.",
        crate::stats::MARGIN,
        list_u64(&sizes.into_iter().collect::<Vec<_>>(), " B")
    )));
    // One column per challenger: every mode of the table after the baseline (A1).
    let challengers: Vec<&str> = MODES[1..].iter().map(|f| f.mode.as_str()).collect();
    let mut rows: BTreeMap<(String, String, String, u64), Vec<String>> = BTreeMap::new();
    for c in &a.crossovers {
        let e = rows
            .entry((
                c.pattern.to_string(),
                c.batch.to_string(),
                c.engine.to_string(),
                c.flows,
            ))
            .or_insert_with(|| vec!["not measured".into(); challengers.len()]);
        if let Some(i) = challengers.iter().position(|ch| *ch == c.challenger) {
            e[i] = crossover_text(c);
        }
    }
    let mut header: Vec<String> = vec![
        "pattern".into(),
        "batch".into(),
        "engine".into(),
        "flows".into(),
    ];
    header.extend(
        challengers
            .iter()
            .map(|ch| format!("{} beats A1 from", ch.to_uppercase())),
    );
    b.push(Block::Table(
        header,
        rows.into_iter()
            .map(|((p, batch, e, f), cols)| [vec![p, batch, e, f.to_string()], cols].concat())
            .collect(),
    ));
    let mut lines = Vec::new();
    for ch in challengers {
        let of: Vec<&Crossover> = a.crossovers.iter().filter(|c| c.challenger == ch).collect();
        if of.is_empty() {
            continue;
        }
        let wins = of.iter().filter(|c| c.first_win_bytes.is_some()).count();
        let steady = of
            .iter()
            .filter(|c| c.first_win_bytes.is_some() && c.loses_above.is_empty())
            .count();
        lines.push(format!(
            "{} beats A1 at some measured size in {} of {} (pattern, batch, engine, flows) combinations, \
             and keeps beating it at every larger size in {} of them.",
            mode_label(ch),
            wins,
            of.len(),
            steady
        ));
    }
    b.push(Block::List(lines));
    if let Some(note) = crate::calls::batching_note(&a.calls) {
        b.push(Block::Para(note));
    }
    // Best mode per size.
    let rows = a
        .best
        .iter()
        .map(|x| {
            let margin = match (&x.runner_up, x.margin) {
                (Some(second), Some(m)) => format!("{} {second}", m.text()),
                _ => "only one measured".into(),
            };
            vec![
                x.pattern.to_string(),
                x.batch.to_string(),
                x.flows.to_string(),
                x.msg_size_bytes.to_string(),
                match x.clear_winner() {
                    Some(w) => w.to_string(),
                    None => format!("no clear difference ({} ahead)", x.leader),
                },
                num_label(x.gbps),
                margin,
            ]
        })
        .collect();
    b.push(Block::Heading(
        3,
        "Best mode per size (median Gbit/s)".into(),
    ));
    b.push(Block::Para(format!(
        "The mode and engine with the highest median throughput at each batch, named only where it is clearly \
         ahead of the next one (the 90% bootstrap CI of the ratio lies above {}).",
        crate::stats::MARGIN
    )));
    b.push(Block::Table(
        vec![
            "pattern".into(),
            "batch".into(),
            "flows".into(),
            "msg size (B)".into(),
            "best".into(),
            "Gbit/s".into(),
            "vs next best".into(),
        ],
        rows,
    ));
}
