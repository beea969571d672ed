//! The written report. One list of blocks is built from an [`Analysis`] and rendered twice,
//! as markdown and as self-contained HTML, so both say the same thing. Every sentence is
//! assembled from numbers in the analysis; where the data cannot answer a question the report
//! says that instead of guessing.

use crate::derive::{CellKey, Metric};
use crate::plot::{mode_label, num_label};
use crate::stats::{LEVEL, SETTLED_REL_HALF_WIDTH};
use crate::summary::{Analysis, Crossover};
use sendpath_record::MODES;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A plot as the report shows it.
#[derive(Clone, Debug)]
pub struct RenderedPlot {
    /// Title.
    pub title: String,
    /// PNG path relative to the report.
    pub png: String,
    /// SVG path relative to the report.
    pub svg_file: String,
    /// SVG text, inlined into the HTML.
    pub svg: String,
}

/// A piece of the report. Text is markdown (inline: `code` spans, links): report.md carries it
/// as is, and report.html renders the same markdown.
#[derive(Clone, Debug)]
pub enum Block {
    /// Heading of a level (1..3).
    Heading(u8, String),
    /// Paragraph.
    Para(String),
    /// Bulleted list.
    List(Vec<String>),
    /// Table: header and rows.
    Table(Vec<String>, Vec<Vec<String>>),
    /// A plot.
    Plot(RenderedPlot),
}

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

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn list_u64(v: &[u64], unit: &str) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x}{unit}")).collect();
    parts.join(", ")
}

fn join<T: std::fmt::Display>(v: impl IntoIterator<Item = T>) -> String {
    v.into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `s` with its first letter upper-case.
fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// The cell text of a crossover: `16384 B (1.41x, 90% CI 1.30-1.52)`, `1024 B (1.25x, 90% CI
/// 1.12-1.36; not at 16384 B)`, or `no clear win (64..16384 B)`.
pub fn crossover_text(c: &Crossover) -> String {
    match (c.first_win_bytes, c.ratio_at_first_win) {
        (Some(s), Some(r)) if c.loses_above.is_empty() => format!("{s} B ({})", r.text()),
        (Some(s), Some(r)) => format!(
            "{s} B ({}; not at {})",
            r.text(),
            list_u64(&c.loses_above, " B")
        ),
        _ => {
            let lo = c.sizes_compared.first().copied().unwrap_or(0);
            let hi = c.sizes_compared.last().copied().unwrap_or(0);
            let range = if lo == hi {
                format!("measured at {lo} B only")
            } else {
                format!("{lo}..{hi} B")
            };
            if c.unclear.is_empty() {
                format!("no clear win ({range})")
            } else {
                format!(
                    "no clear win ({range}; ahead within the noise at {})",
                    list_u64(&c.unclear, " B")
                )
            }
        }
    }
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

    key_findings_section(&mut b, found, plots);
    crossover_section(&mut b, a);
    cells_section(&mut b, a);
    zerocopy_section(&mut b, a);
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
    counters_section(&mut b, a);
    placement_section(&mut b, a);
    flows_section(&mut b, a);
    warnings_section(&mut b, a, plots);

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

fn crossover_section(b: &mut Vec<Block>, a: &Analysis) {
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
                c.pattern.clone(),
                c.batch.clone(),
                c.engine.clone(),
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
                x.pattern.clone(),
                x.batch.clone(),
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

fn cell(r: &crate::derive::DerivedRow, m: Metric, scale: f64) -> String {
    match r.get(m) {
        None => "-".into(),
        Some(s) if s.is_noisy() => {
            format!("{} (±{})", num_label(s.median * scale), pct(s.ci_half))
        }
        Some(s) => num_label(s.median * scale),
    }
}

fn cells_section(b: &mut Vec<Block>, a: &Analysis) {
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
            k.pattern.clone(),
            k.batch.clone(),
            k.flows.to_string(),
            k.msg_size_bytes.to_string(),
            k.mode.to_uppercase(),
            k.engine.clone(),
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

/// The study's answers first, with the plots that show the first of them.
fn key_findings_section(
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

/// Where A3 coalesces messages into one zero-copy send: how many, beside the zero-copy
/// verdict, so that a win from batching syscalls is not read as a win from zero-copy.
fn zerocopy_section(b: &mut Vec<Block>, a: &Analysis) {
    b.push(Block::Heading(2, "Was zero-copy achieved?".into()));
    let z = &a.zerocopy;
    if z.records == 0 {
        b.push(Block::Para(
            "No ok record carries zero-copy accounting (no A3 cell was measured successfully), \
             so the data cannot say."
                .into(),
        ));
        return;
    }
    let verdicts = join(z.verdicts.iter().map(|(k, v)| format!("{k}: {v}")));
    let mut p = format!(
        "{} with zero-copy accounting: {} zero-copy sends, {} completions, {} reported copied by \
         the kernel",
        plural(z.records, "record", "records"),
        z.sends,
        z.completions,
        z.copied
    );
    match z.copied_fraction {
        Some(f) => p.push_str(&format!(", an overall copied fraction of {f:.4}")),
        None => p.push_str(", no completions, so no copied fraction"),
    }
    if let Some((lo, hi)) = z.fraction_range {
        p.push_str(&format!(
            " (per record {} .. {})",
            num_label(lo),
            num_label(hi)
        ));
    }
    p.push_str(&format!(". Verdicts per record: {verdicts}."));
    let by_engine: BTreeSet<&String> = z.batching.iter().map(|x| &x.engine).collect();
    if !by_engine.is_empty() {
        p.push_str(" Messages per zero-copy send (median per size): ");
        p.push_str(&join(by_engine.into_iter().map(|e| {
            let sizes = join(z.batching.iter().filter(|x| &x.engine == e).map(|x| {
                format!(
                    "{} at {} B",
                    num_label(x.messages_per_send),
                    x.msg_size_bytes
                )
            }));
            format!("{e}: {sizes}")
        })));
        p.push('.');
    }
    if z.enobufs > 0 {
        p.push_str(&format!(" ENOBUFS retries: {}.", z.enobufs));
    }
    b.push(Block::Para(p));
    let local: Vec<&String> = z
        .topologies
        .iter()
        .filter(|t| *t == "loopback" || *t == "veth")
        .collect();
    let verdict = match z.copied_fraction {
        None => "Whether zero-copy happened is unknown: no completion arrived.".to_string(),
        Some(f) if f >= 1.0 => format!(
            "Zero-copy was not achieved: every completion reported that the kernel copied the \
             data, so A3's figures here measure MSG_ZEROCOPY/SEND_ZC bookkeeping plus a copy, not \
             zero-copy.{}",
            if local.is_empty() {
                String::new()
            } else {
                format!(
                    " These records ran on {}: the kernel copies data it delivers locally \
                     (loopback and veth), so this is expected there; real zero-copy needs a \
                     NIC to another host.",
                    join(&local)
                )
            }
        ),
        Some(f) if f <= 0.0 => "Zero-copy was achieved: no completion reported a copy.".to_string(),
        Some(f) => format!(
            "Zero-copy was achieved only in part: {} of completions reported a copy.",
            pct(f)
        ),
    };
    b.push(Block::Para(verdict));
}

fn placement_section(b: &mut Vec<Block>, a: &Analysis) {
    let p = &a.placement;
    if p.known == 0 {
        return;
    }
    b.push(Block::Heading(2, "Where the threads ran".into()));
    let mut text = if p.pinned == p.known {
        format!(
            "Every ok record ran pinned (placement {}): in {} of {} a sender thread and a \
             receiver thread shared a CPU, as the placement asked.",
            join(&a.host.placements),
            p.shared,
            p.known
        )
    } else {
        format!(
            "In {} of {} ok records a sender thread and a receiver thread ended the window on \
             the same CPU ({} of them pinned; the others unpinned: the scheduler decides, and \
             this is where they were when the window ended). On loopback this can matter, since \
             the receive path runs in the sender's softirq and a shared CPU keeps the copied data \
             in its cache; pin (`--placement`, `--pin`) to compare like with like.",
            p.shared, p.known, p.pinned
        )
    };
    if p.mixed.is_empty() {
        b.push(Block::Para(text));
        return;
    }
    text.push_str(&format!(
        " Cells measured both ways across their repetitions ({}):",
        p.mixed.len()
    ));
    b.push(Block::Para(text));
    b.push(Block::List(
        p.mixed
            .iter()
            .map(|(cell, shared, apart)| {
                format!(
                    "{cell}: {shared:.3} Gbit/s sharing a CPU, {apart:.3} apart ({:.2}x)",
                    if *apart > 0.0 {
                        shared / apart
                    } else {
                        f64::NAN
                    }
                )
            })
            .collect(),
    ));
}

fn counters_section(b: &mut Vec<Block>, a: &Analysis) {
    b.push(Block::Heading(2, "Counters".into()));
    let c = &a.counters;
    if c.records == 0 {
        b.push(Block::Para("No ok record to look at.".into()));
        return;
    }
    let mut items = vec![format!(
        "present in every ok record: {}",
        if c.always_present.is_empty() {
            "none".to_string()
        } else {
            join(&c.always_present)
        }
    )];
    if c.unsupported.is_empty() {
        items.push("no counter was unsupported or null.".into());
    } else {
        items.push(format!(
            "unavailable (named in `unsupported` or null): {}",
            join(
                c.unsupported
                    .iter()
                    .map(|(k, n)| format!("{k} in {n} of {} records", c.records))
            )
        ));
    }
    b.push(Block::List(items));
    let hw_missing = [
        "cycles",
        "cache_misses",
        "l1d_load_misses",
        "llc_load_misses",
    ]
    .iter()
    .any(|n| c.unsupported.contains_key(*n));
    let mut p = String::new();
    if hw_missing {
        let plotted: Vec<&str> = Metric::ALL
            .iter()
            .filter(|m| m.needs_hardware_counters() && a.table.has(**m))
            .map(|m| m.key())
            .collect();
        p.push_str(&format!(
            "Hardware counters are missing in at least part of the data, so cycles per byte and \
             misses per GB are {}. What stands in: CPU ns per byte (user + system CPU time of \
             each side per byte received), present in {} of {} ok records.",
            if plotted.is_empty() {
                "not reported".to_string()
            } else {
                format!("reported only where present ({})", plotted.join(", "))
            },
            c.cpu_per_byte_records,
            c.records
        ));
    } else {
        p.push_str(&format!(
            "Hardware counters were present: cycles per byte and misses per GB are reported \
             beside CPU ns per byte ({} of {} ok records have it).",
            c.cpu_per_byte_records, c.records
        ));
    }
    if a.host
        .topologies
        .iter()
        .any(|t| t == "loopback" || t == "veth")
    {
        p.push_str(
            " On loopback and veth much receive processing runs in the sender's softirq \
             context, so the split between sender and receiver CPU is approximate.",
        );
    }
    b.push(Block::Para(p));
}

fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 {
        format!("{:.2}x", b / a)
    } else {
        "-".into()
    }
}

fn median(v: Vec<f64>) -> Option<f64> {
    crate::derive::Stat::of(&v).map(|s| s.median)
}

fn flows_section(b: &mut Vec<Block>, a: &Analysis) {
    b.push(Block::Heading(
        2,
        "How flows change throughput and CPU per byte".into(),
    ));
    let fe = &a.flow_effects;
    if fe.is_empty() {
        b.push(Block::Para(
            "Every measured cell has a single flow count, so the data cannot say.".into(),
        ));
        return;
    }
    let mut by: BTreeMap<(u64, u64), Vec<&crate::summary::FlowEffect>> = BTreeMap::new();
    for e in fe {
        by.entry((e.low.flows, e.high_flows)).or_default().push(e);
    }
    let mut items = Vec::new();
    for ((lo, hi), v) in &by {
        let up = v.iter().filter(|e| e.gbps.1 > e.gbps.0).count();
        let r = median(
            v.iter()
                .filter(|e| e.gbps.0 > 0.0)
                .map(|e| e.gbps.1 / e.gbps.0)
                .collect(),
        );
        let cpu: Vec<(f64, f64)> = v.iter().filter_map(|e| e.sender_cpu_ns_per_byte).collect();
        let cpu_down = cpu.iter().filter(|c| c.1 < c.0).count();
        let cr = median(
            cpu.iter()
                .filter(|c| c.0 > 0.0)
                .map(|c| c.1 / c.0)
                .collect(),
        );
        let mut s = format!(
            "From {lo} to {hi} flows, median throughput rose in {up} of {} (mode, engine, size) \
             cells",
            v.len()
        );
        if let Some(r) = r {
            s.push_str(&format!(" (median ratio {r:.2}x)"));
        }
        if !cpu.is_empty() {
            s.push_str(&format!(
                "; sender CPU per byte fell in {cpu_down} of {}",
                cpu.len()
            ));
            if let Some(cr) = cr {
                s.push_str(&format!(" (median ratio {cr:.2}x)"));
            }
        }
        s.push('.');
        items.push(s);
    }
    b.push(Block::List(items));
    let rows = fe
        .iter()
        .map(|e| {
            let (c0, c1) = match e.sender_cpu_ns_per_byte {
                Some((x, y)) => (num_label(x), format!("{} ({})", num_label(y), ratio(x, y))),
                None => ("-".into(), "-".into()),
            };
            vec![
                e.low.pattern.clone(),
                e.low.batch.clone(),
                e.low.mode.to_uppercase(),
                e.low.engine.clone(),
                e.low.msg_size_bytes.to_string(),
                format!("{} -> {}", e.low.flows, e.high_flows),
                num_label(e.gbps.0),
                format!("{} ({})", num_label(e.gbps.1), ratio(e.gbps.0, e.gbps.1)),
                c0,
                c1,
            ]
        })
        .collect();
    b.push(Block::Table(
        [
            "pattern",
            "batch",
            "mode",
            "engine",
            "msg size (B)",
            "flows",
            "Gbit/s (fewest)",
            "Gbit/s (most)",
            "sender ns/B (fewest)",
            "sender ns/B (most)",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    ));
}

fn warnings_section(b: &mut Vec<Block>, a: &Analysis, plots: &[RenderedPlot]) {
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
fn host_speed_blocks(b: &mut Vec<Block>, a: &Analysis, plots: &[RenderedPlot]) {
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

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders blocks as GitHub-flavoured markdown.
pub fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(l, t) => {
                out.push_str(&format!("{} {t}\n\n", "#".repeat(*l as usize)));
            }
            Block::Para(t) => out.push_str(&format!("{t}\n\n")),
            Block::List(items) => {
                for i in items {
                    out.push_str(&format!("- {i}\n"));
                }
                out.push('\n');
            }
            Block::Table(h, rows) => {
                let line = |cells: &[String]| {
                    format!(
                        "| {} |\n",
                        cells
                            .iter()
                            .map(|c| md_cell(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    )
                };
                out.push_str(&line(h));
                out.push_str(&format!("|{}\n", "---|".repeat(h.len())));
                for r in rows {
                    out.push_str(&line(r));
                }
                out.push('\n');
            }
            Block::Plot(p) => out.push_str(&format!(
                "![{}]({}) ([SVG]({}))\n\n",
                p.title, p.png, p.svg_file
            )),
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders blocks as one self-contained HTML page (plots inlined as SVG; no external files).
pub fn html(blocks: &[Block]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>sendpath report</title>\n<style>\n\
         body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\n\
         table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\n\
         th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:left}\n\
         th{background:#f3f3f3}\ncode{background:#f3f3f3;padding:0 0.2em}\n\
         figure{margin:1.5em 0}\nfigure svg{max-width:100%;height:auto}\n\
         </style>\n</head>\n<body>\n",
    );
    for b in blocks {
        match b {
            Block::Plot(p) => {
                let svg = match p.svg.find("<svg") {
                    Some(i) => &p.svg[i..],
                    None => p.svg.as_str(),
                };
                out.push_str(&format!(
                    "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
                    esc(&p.title)
                ));
            }
            // Everything else is rendered from the same markdown as report.md.
            text => {
                let md = markdown(std::slice::from_ref(text));
                let parser =
                    pulldown_cmark::Parser::new_ext(&md, pulldown_cmark::Options::ENABLE_TABLES);
                pulldown_cmark::html::push_html(&mut out, parser);
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}
