//! What explains a result: where a message's time went (`stages`, from `--timestamps`) and
//! what TCP did (`tcp`, TCP_INFO of the sending sockets), per cell, medians over repetitions.

use crate::document::{Block, RenderedPlot};
use crate::stats::median;
use plotters::prelude::*;
use sendpath_record::v1::{Latency, Record, Status};
use serde::Serialize;
use std::collections::BTreeMap;

/// The stages, in the order a message passes them, with their labels.
pub const STAGES: [&str; 4] = [
    "send call -> queueing layer",
    "queueing layer -> device",
    "device -> receiving stack",
    "receiving stack -> read",
];

/// Title of the stacked stage bars.
pub const STAGE_PLOT_TITLE: &str =
    "Where a typical message's time goes (messages around the end-to-end median, one flow)";

/// One cell's stages: medians over its repetitions of each stage's p50, ns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageRow {
    /// `pattern engine mode size xflows`.
    pub cell: String,
    /// Flows.
    pub flows: u64,
    /// Repetitions with stages.
    pub reps: usize,
    /// p50 of each of [`STAGES`].
    pub p50_ns: [f64; 4],
    /// The typical message's stages (`stages.typical`: means over the messages between the
    /// 40th and 60th percentiles of end-to-end time), which add up; where records lack it,
    /// the stages' p50s.
    pub typical_ns: [f64; 4],
    /// p50 of the same messages' end-to-end time.
    pub end_to_end_p50_ns: f64,
    /// p99 of end-to-end, and of each stage.
    pub p99_ns: [f64; 4],
    /// p99 end-to-end.
    pub end_to_end_p99_ns: f64,
    /// p50 of send call -> ACK.
    pub ack_p50_ns: Option<f64>,
}

/// One cell's TCP_INFO: medians over repetitions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TcpRow {
    /// `pattern engine mode size xflows`.
    pub cell: String,
    /// Topology.
    pub topology: String,
    /// Retransmitted segments in the window.
    pub retransmits: f64,
    /// Share of the busy time limited by the receiver's window.
    pub rwnd_limited: f64,
    /// Share of the busy time limited by the send buffer.
    pub sndbuf_limited: f64,
    /// Largest flow RTT at the window's end, µs.
    pub rtt_us: f64,
}

fn cell_of(r: &Record) -> String {
    let s = &r.spec;
    format!(
        "{} {} {} {} B x{}",
        s.pattern.as_str(),
        s.engine.as_str(),
        s.mode.as_str().to_uppercase(),
        s.msg_size_bytes,
        s.flows
    )
}

/// The stage rows of the ok records that have stages, in cell order.
pub fn stage_rows(records: &[Record]) -> Vec<StageRow> {
    type Key = (String, String, String, u64, u64);
    let mut by: BTreeMap<Key, Vec<&Record>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == Status::Ok) {
        if r.stages.as_ref().is_some_and(|s| s.joined > 0) {
            let s = &r.spec;
            by.entry((
                s.pattern.as_str().into(),
                s.engine.as_str().into(),
                s.mode.as_str().into(),
                s.msg_size_bytes,
                s.flows,
            ))
            .or_default()
            .push(r);
        }
    }
    by.into_iter()
        .map(|((.., flows), rs)| {
            let cell = cell_of(rs[0]);
            let pick = |f: &dyn Fn(&sendpath_record::v1::StagesV1) -> Option<&Latency>,
                        p99: bool| {
                median(
                    &rs.iter()
                        .filter_map(|r| f(r.stages.as_ref()?))
                        .map(|l| if p99 { l.p99 } else { l.p50 } as f64)
                        .collect::<Vec<_>>(),
                )
            };
            let stage = |i: usize, p99: bool| {
                pick(
                    &|s| match i {
                        0 => s.user_to_sched_ns.as_ref(),
                        1 => s.sched_to_device_ns.as_ref(),
                        2 => s.device_to_stack_ns.as_ref(),
                        _ => s.stack_to_user_ns.as_ref(),
                    },
                    p99,
                )
            };
            let ack = pick(&|s| s.send_to_ack_ns.as_ref(), false);
            let p50_ns = [0, 1, 2, 3].map(|i| stage(i, false));
            let typical: Vec<[f64; 4]> = rs
                .iter()
                .filter_map(|r| r.stages.as_ref()?.typical.as_ref())
                .map(|t| {
                    [
                        t.user_to_sched_ns,
                        t.sched_to_device_ns,
                        t.device_to_stack_ns,
                        t.stack_to_user_ns,
                    ]
                })
                .collect();
            let typical_ns = if typical.is_empty() {
                p50_ns
            } else {
                [0, 1, 2, 3].map(|k| median(&typical.iter().map(|t| t[k]).collect::<Vec<_>>()))
            };
            StageRow {
                cell,
                flows,
                reps: rs.len(),
                p50_ns,
                typical_ns,
                p99_ns: [0, 1, 2, 3].map(|i| stage(i, true)),
                end_to_end_p50_ns: pick(&|s| s.end_to_end_ns.as_ref(), false),
                end_to_end_p99_ns: pick(&|s| s.end_to_end_ns.as_ref(), true),
                ack_p50_ns: ack.is_finite().then_some(ack),
            }
        })
        .collect()
}

/// The TCP rows of ok records with TCP_INFO, in cell order.
pub fn tcp_rows(records: &[Record]) -> Vec<TcpRow> {
    let mut by: BTreeMap<(String, String, u64), Vec<&Record>> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.status == Status::Ok && r.tcp.is_some())
    {
        by.entry((r.spec.topology.clone(), cell_of(r), r.spec.msg_size_bytes))
            .or_default()
            .push(r);
    }
    by.into_iter()
        .map(|((topology, cell, _), rs)| {
            let m = |f: &dyn Fn(&sendpath_record::v1::TcpV1) -> Option<f64>| {
                median(
                    &rs.iter()
                        .filter_map(|r| f(r.tcp.as_ref()?))
                        .collect::<Vec<_>>(),
                )
            };
            let share = |t: &sendpath_record::v1::TcpV1, x: Option<u64>| {
                let busy = t.busy_us? as f64;
                (busy > 0.0).then(|| x.unwrap_or(0) as f64 / busy)
            };
            TcpRow {
                cell,
                topology,
                retransmits: m(&|t| t.retransmits.map(|x| x as f64)),
                rwnd_limited: m(&|t| share(t, t.rwnd_limited_us)),
                sndbuf_limited: m(&|t| share(t, t.sndbuf_limited_us)),
                rtt_us: m(&|t| t.max_rtt_us.map(|x| x as f64)),
            }
        })
        .collect()
}

fn us(ns: f64) -> String {
    if !ns.is_finite() {
        "-".into()
    } else if ns >= 10_000.0 {
        format!("{:.0}", ns / 1e3)
    } else {
        format!("{:.1}", ns / 1e3)
    }
}

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    rows: &[&StageRow],
) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let max = rows
        .iter()
        .map(|r| r.typical_ns.iter().sum::<f64>() / 1e3)
        .fold(1.0, f64::max);
    let n = rows.len() as i32;
    // Row i (the table's order) is drawn i-th from the top.
    let at = |i: usize| n - 1 - i as i32;
    let mut chart = ChartBuilder::on(root)
        .caption(STAGE_PLOT_TITLE, (crate::plot::FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(230)
        .build_cartesian_2d(0.0..max * 1.05, (0..n - 1).into_segmented())
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows.len())
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(v) | SegmentValue::Exact(v) if (0..n).contains(v) => {
                rows[(n - 1 - v) as usize].cell.clone()
            }
            _ => String::new(),
        })
        .x_desc("µs")
        .label_style((crate::plot::FONT, 13))
        .draw()
        .map_err(|x| e(&x))?;
    for (k, name) in STAGES.iter().enumerate() {
        let bars: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let x0: f64 = r.typical_ns[..k].iter().sum::<f64>() / 1e3;
                let x1 = x0 + r.typical_ns[k] / 1e3;
                let y = at(i);
                let mut bar = Rectangle::new(
                    [
                        (x0, SegmentValue::Exact(y)),
                        (x1, SegmentValue::Exact(y + 1)),
                    ],
                    COLORS[k].filled(),
                );
                bar.set_margin(4, 4, 0, 0);
                bar
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|x| e(&x))?
            .label(*name)
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 12, y + 5)], COLORS[k].filled())
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .label_font((crate::plot::FONT, 13))
        .draw()
        .map_err(|x| e(&x))?;
    Ok(())
}

/// The stacked stage bars of the one-flow rows, as (SVG, PNG); None without such rows.
pub fn stage_plot(rows: &[StageRow]) -> Option<crate::plot::Drawn> {
    let rows: Vec<&StageRow> = rows.iter().filter(|r| r.flows == 1).collect();
    if rows.is_empty() {
        return None;
    }
    Some(crate::plot::svg_and_png(
        1000,
        120 + 34 * rows.len() as u32,
        |r| draw_bars(r, &rows),
        |r| draw_bars(r, &rows),
    ))
}

/// "Where the time goes": the stage table, the bars, and which stage dominates each cell.
pub fn stages_section(b: &mut Vec<Block>, rows: &[StageRow], plot: Option<&RenderedPlot>) {
    if rows.is_empty() {
        return;
    }
    b.push(Block::Heading(2, "Where the time goes".into()));
    b.push(Block::Para(
        "From the kernel's software timestamps of sampled messages (`--timestamps`): the send \
         call, the queueing layer (SCHED), the device (SND), the receiving stack (RX_SOFTWARE) \
         and the read that returned the message, all on one clock. Each joined message's \
         stages add up to its end-to-end time. The table and the bars show a typical \
         message: each stage averaged over the messages between the 40th and 60th \
         percentiles of end-to-end time, so the stages add up to about the end-to-end median \
         beside them (the stages' own medians, in the records, need not: the median of a sum \
         of skewed parts lies above the sum of their medians). On a saturated stream most time is queueing in socket \
         buffers (send call -> queueing layer, and receiving stack -> read, where a read that \
         spans many messages is stamped with its last packet); rr shows the path itself."
            .into(),
    ));
    let mut dominant = Vec::new();
    let table = rows
        .iter()
        .map(|r| {
            let sum: f64 = r.typical_ns.iter().sum();
            if let Some((k, v)) = r
                .typical_ns
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
            {
                if sum > 0.0 {
                    dominant.push(format!(
                        "{}: {} takes {:.0}% of a typical message's one-way time",
                        r.cell,
                        STAGES[k],
                        v / sum * 100.0
                    ));
                }
            }
            let mut row = vec![r.cell.clone()];
            row.extend(r.typical_ns.iter().map(|&v| us(v)));
            row.push(us(r.end_to_end_p50_ns));
            row.push(us(r.end_to_end_p99_ns));
            row.push(r.ack_p50_ns.map_or("-".into(), us));
            row
        })
        .collect();
    let mut head = vec!["cell".to_string()];
    head.extend(STAGES.iter().map(|s| s.to_string()));
    head.extend(["end-to-end p50", "end-to-end p99", "send -> ACK p50"].map(String::from));
    b.push(Block::Table(head, table));
    if let Some(p) = plot {
        b.push(Block::Plot(p.clone()));
    }
    b.push(Block::List(dominant));
}

/// "What TCP did": retransmits, window and buffer limits, RTT, and a sentence where they
/// explain a result.
pub fn tcp_section(b: &mut Vec<Block>, rows: &[TcpRow]) {
    if rows.is_empty() {
        return;
    }
    b.push(Block::Heading(2, "What TCP did".into()));
    let mut says = Vec::new();
    let lossy: Vec<&TcpRow> = rows.iter().filter(|r| r.retransmits >= 1.0).collect();
    if lossy.is_empty() {
        says.push(
            "No cell retransmitted: TCP lost nothing, so no result here is shaped by loss."
                .to_string(),
        );
    } else {
        says.push(format!(
            "{} of {} cells retransmitted in their window (median; {}): their throughput and tail \
             latency include recovery from loss, and an A3 buffer stays held until its \
             retransmitted data is acknowledged.",
            lossy.len(),
            rows.len(),
            lossy
                .iter()
                .take(6)
                .map(|r| format!("{} on {}: {:.0}", r.cell, r.topology, r.retransmits))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    for (what, pick, why) in [
        (
            "the receiver's window",
            (|r: &TcpRow| r.rwnd_limited) as fn(&TcpRow) -> f64,
            "the receiver, not the send path, set the pace",
        ),
        (
            "the send buffer",
            |r: &TcpRow| r.sndbuf_limited,
            "the sender filled its socket buffer faster than TCP drained it",
        ),
    ] {
        let hit: Vec<String> = rows
            .iter()
            .filter(|r| pick(r) >= 0.2)
            .map(|r| format!("{} ({:.0}%)", r.cell, pick(r) * 100.0))
            .collect();
        if !hit.is_empty() {
            says.push(format!(
                "Limited by {what} for at least a fifth of the time data was in flight: {} — \
                 {why}.",
                hit.into_iter().take(8).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    b.push(Block::List(says));
    b.push(Block::Table(
        [
            "cell",
            "topology",
            "retransmits",
            "rwnd-limited",
            "sndbuf-limited",
            "RTT µs",
        ]
        .map(String::from)
        .to_vec(),
        rows.iter()
            .map(|r| {
                vec![
                    r.cell.clone(),
                    r.topology.clone(),
                    format!("{:.0}", r.retransmits),
                    format!("{:.0}%", r.rwnd_limited * 100.0),
                    format!("{:.0}%", r.sndbuf_limited * 100.0),
                    format!("{:.0}", r.rtt_us),
                ]
            })
            .collect(),
    ));
}
