//! "Where the CPU goes" (`--profile`): each cell's buckets per side, medians over its
//! repetitions, as a table and as stacked bars, so the report can say what each send path
//! spends its CPU on.

use crate::derive::{CellKey, PatternKey};
use crate::document::{Block, RenderedPlot};
use crate::plot::num_label;
use plotters::prelude::*;
use sendpath_record::v1::{Record, SideProfileV1, Status};
use serde::Serialize;
use std::collections::BTreeMap;

/// The buckets, in the record's (and the bars') order.
pub const BUCKETS: [&str; 12] = [
    "copy_user",
    "copy_kernel",
    "copy_deferred",
    "zerocopy",
    "tcp",
    "ip_dev",
    "io_uring",
    "syscall",
    "sched",
    "softirq",
    "app",
    "other",
];

/// The copies: what a send path's copy discipline decides.
pub const COPIES: [&str; 3] = ["copy_user", "copy_kernel", "copy_deferred"];

/// One side of one cell: medians over its profiled repetitions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProfileRow {
    /// The cell.
    pub key: CellKey,
    /// `sender` or `receiver`.
    pub side: String,
    /// Repetitions with a profile.
    pub reps: usize,
    /// Each bucket's share of the side's sampled time, in [`BUCKETS`] order: the medians over
    /// repetitions, scaled to add up to 1.
    pub share: [f64; 12],
    /// Each bucket's on-CPU ns per byte received.
    pub ns_per_byte: [f64; 12],
    /// The side's sampled ns per byte, all buckets.
    pub total_ns_per_byte: f64,
    /// This host's memcpy at the cell's size, ns per byte (median), where measured.
    pub memcpy_ns_per_byte: Option<f64>,
    /// The side's top symbols over its repetitions (name, bucket, share), most first.
    pub top: Vec<(String, String, f64)>,
    /// The sampled time over the scheduler's CPU time of the side's threads (median), where
    /// both were recorded: see [`section`] for why it is not 1.
    pub sampled_of_task_clock: Option<f64>,
}

impl ProfileRow {
    /// A bucket's share.
    pub fn share_of(&self, bucket: &str) -> f64 {
        BUCKETS
            .iter()
            .position(|b| *b == bucket)
            .map_or(0.0, |i| self.share[i])
    }

    /// A bucket's ns per byte.
    pub fn ns_of(&self, bucket: &str) -> f64 {
        BUCKETS
            .iter()
            .position(|b| *b == bucket)
            .map_or(0.0, |i| self.ns_per_byte[i])
    }

    /// The copies' ns per byte (the user copy, the copy into or out of the socket, and the
    /// deferred one).
    pub fn copies_ns(&self) -> f64 {
        COPIES.iter().map(|b| self.ns_of(b)).sum()
    }
}

fn side_of<'a>(r: &'a Record, side: &str) -> Option<&'a SideProfileV1> {
    let p = r.profile.as_ref()?;
    match side {
        "sender" => p.sender.as_ref(),
        _ => p.receiver.as_ref(),
    }
}

/// The profile rows of the ok records that have a profile, in (cell, side) order.
pub fn profile_rows(records: &[Record]) -> Vec<ProfileRow> {
    let mut by: BTreeMap<(CellKey, &str), Vec<&Record>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == Status::Ok) {
        for side in ["sender", "receiver"] {
            if side_of(r, side).is_some() {
                by.entry((CellKey::of(r), side)).or_default().push(r);
            }
        }
    }
    by.into_iter()
        .map(|((key, side), recs)| {
            let sides: Vec<&SideProfileV1> = recs.iter().filter_map(|r| side_of(r, side)).collect();
            let med = |f: &dyn Fn(&SideProfileV1) -> f64| {
                crate::stats::median(&sides.iter().map(|s| f(s)).collect::<Vec<_>>())
            };
            let bucket =
                |s: &SideProfileV1, b: &str| s.buckets.iter().find(|x| x.bucket == b).cloned();
            // Each bucket's median share, scaled so that a side's shares add up to 1 again
            // (medians taken one bucket at a time need not).
            let share = BUCKETS.map(|b| med(&|s| bucket(s, b).map_or(0.0, |x| x.share)));
            let total: f64 = share.iter().sum();
            let share = share.map(|x| if total > 0.0 { x / total } else { 0.0 });
            let ns =
                BUCKETS.map(|b| med(&|s| bucket(s, b).and_then(|x| x.ns_per_byte).unwrap_or(0.0)));
            let memcpy: Vec<f64> = recs
                .iter()
                .filter_map(|r| r.profile.as_ref()?.memcpy_ns_per_byte)
                .collect();
            let mut top: BTreeMap<(String, String), f64> = BTreeMap::new();
            for s in &sides {
                for t in &s.top {
                    *top.entry((t.symbol.clone(), t.bucket.clone())).or_default() +=
                        t.share / sides.len() as f64;
                }
            }
            let mut top: Vec<(String, String, f64)> =
                top.into_iter().map(|((s, b), x)| (s, b, x)).collect();
            top.sort_by(|a, b| b.2.total_cmp(&a.2));
            top.truncate(5);
            ProfileRow {
                key,
                side: side.into(),
                reps: sides.len(),
                share,
                ns_per_byte: ns,
                total_ns_per_byte: ns.iter().sum(),
                memcpy_ns_per_byte: crate::stats::median_if_any(&memcpy),
                sampled_of_task_clock: {
                    let r: Vec<f64> = sides
                        .iter()
                        .filter_map(|s| {
                            let t = s.task_clock_ns.filter(|t| *t > 0)?;
                            Some(s.sampled_ns as f64 / t as f64)
                        })
                        .collect();
                    crate::stats::median_if_any(&r)
                },
                top,
            }
        })
        .collect()
}

/// The rows the bars and the table show: streams at the fewest flows measured.
pub fn shown(rows: &[ProfileRow]) -> Vec<&ProfileRow> {
    let fewest = rows
        .iter()
        .filter(|r| r.key.pattern == PatternKey::STREAM)
        .map(|r| r.key.flows)
        .min();
    let mut v: Vec<&ProfileRow> = rows
        .iter()
        .filter(|r| r.key.pattern == PatternKey::STREAM && Some(r.key.flows) == fewest)
        .collect();
    v.sort_by(|a, b| {
        (
            &a.key.batch,
            &a.key.engine,
            a.key.msg_size_bytes,
            &a.key.mode,
        )
            .cmp(&(
                &b.key.batch,
                &b.key.engine,
                b.key.msg_size_bytes,
                &b.key.mode,
            ))
    });
    v
}

/// How a row is labelled in the bars and the table.
pub fn label(r: &ProfileRow) -> String {
    format!(
        "{} {} {} B, batch {}",
        r.key.mode.as_str().to_uppercase(),
        r.key.engine,
        r.key.msg_size_bytes,
        r.key.batch
    )
}

const COLORS: [RGBColor; 12] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(31, 119, 180),
    RGBColor(23, 190, 207),
    RGBColor(148, 103, 189),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
    RGBColor(44, 160, 44),
    RGBColor(0, 0, 90),
    RGBColor(199, 199, 199),
];

/// Pixels to the right of the bars for the legend.
const LEGEND_WIDTH: u32 = 120;

/// Title of a side's bars.
pub fn plot_title(side: &str) -> String {
    format!("Where the {side}'s CPU goes (share of its sampled time, streams, fewest flows)")
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    side: &str,
    rows: &[&ProfileRow],
) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let root = root
        .titled(&plot_title(side), (crate::plot::FONT, 17))
        .map_err(|x| e(&x))?;
    // The legend gets its own column, so it never covers a bar.
    let (bars_area, legend_area) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);
    let n = rows.len() as i32;
    let mut chart = ChartBuilder::on(&bars_area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(250)
        .build_cartesian_2d(0.0..100.0, (0..n - 1).into_segmented())
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows.len())
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(v) | SegmentValue::Exact(v) if (0..n).contains(v) => {
                label(rows[(n - 1 - v) as usize])
            }
            _ => String::new(),
        })
        .x_desc("% of the side's sampled CPU time")
        .label_style((crate::plot::FONT, 12))
        .draw()
        .map_err(|x| e(&x))?;
    for (k, name) in BUCKETS.iter().enumerate() {
        let bars: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let x0: f64 = r.share[..k].iter().sum::<f64>() * 100.0;
                let x1 = x0 + r.share[k] * 100.0;
                let y = n - 1 - i as i32;
                let mut bar = Rectangle::new(
                    [
                        (x0, SegmentValue::Exact(y)),
                        (x1, SegmentValue::Exact(y + 1)),
                    ],
                    COLORS[k].filled(),
                );
                bar.set_margin(3, 3, 0, 0);
                bar
            })
            .collect();
        chart.draw_series(bars).map_err(|x| e(&x))?;
        let y = 16 + 20 * k as i32;
        legend_area
            .draw(&Rectangle::new(
                [(4, y - 6), (18, y + 6)],
                COLORS[k].filled(),
            ))
            .map_err(|x| e(&x))?;
        legend_area
            .draw(&Text::new(
                *name,
                (24, y - 7),
                (crate::plot::FONT, 13).into_font(),
            ))
            .map_err(|x| e(&x))?;
    }
    Ok(())
}

/// Each side's stacked bars as (side, SVG, PNG); nothing without profiled stream rows.
pub fn profile_plots(rows: &[ProfileRow]) -> Vec<(String, crate::plot::Drawn)> {
    let shown = shown(rows);
    ["sender", "receiver"]
        .into_iter()
        .filter_map(|side| {
            let of: Vec<&ProfileRow> = shown.iter().copied().filter(|r| r.side == side).collect();
            (!of.is_empty()).then(|| {
                (
                    side.to_string(),
                    crate::plot::svg_and_png(
                        1150,
                        110 + 26 * of.len() as u32,
                        |r| draw(r, side, &of),
                        |r| draw(r, side, &of),
                    ),
                )
            })
        })
        .collect()
}

fn pct(x: f64) -> String {
    if x < 0.0005 {
        "-".into()
    } else {
        format!("{:.1}", x * 100.0)
    }
}

/// "Where the CPU goes": what the buckets are, each side's bars and table.
pub fn section(b: &mut Vec<Block>, rows: &[ProfileRow], plots: &[RenderedPlot]) {
    if rows.is_empty() {
        return;
    }
    b.push(Block::Heading(2, "Where the CPU goes".into()));
    b.push(Block::Para(
        "From `--profile`: each side's worker threads sampled on their own task clock over the \
         window (kernel call chains, symbols named from /proc/kallsyms and the ELF symbol \
         tables), each sample weighing the sampler's CPU clock since the one before it, so a \
         side's buckets add up to that clock. `copy_user`: copies in user space (A1's staging); \
         `copy_kernel`: copies between user memory and socket buffers, either way; \
         `copy_deferred`: the kernel copying zero-copy pages after all (locally delivered skbs, \
         on loopback and veth); `zerocopy`: page pinning, completion notifications, the error \
         queue, our bookkeeping of the slots the kernel holds; `tcp`; `ip_dev`: IP, device, loopback, veth; `io_uring`; `syscall`: entry, exit, \
         socket dispatch; `sched`: scheduling, wake-ups, waiting; `softirq`: the softirq \
         frame around the receive path (on loopback much of the receive path runs in the \
         sender's softirq, so a sender's `tcp` includes receiving); `app`: sendpath's own \
         user-space work (send and receive loops, framing, sequence checks, latency \
         histograms); `other`. The `jq` recipe \
         `analysis/jq/profile_buckets.jq` prints the same per record."
            .into(),
    ));
    let ratios: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.sampled_of_task_clock)
        .collect();
    if let (Some(lo), Some(hi)) = (
        ratios.iter().copied().reduce(f64::min),
        ratios.iter().copied().reduce(f64::max),
    ) {
        b.push(Block::Para(format!(
            "The sampler's clock is perf's task clock, not the scheduler's CPU time of the \
             threads (the `task_clock` counter): here the samples stand for {:.0}% to {:.0}% of \
             it, side by side. Perf's clock stops while a thread is being switched out and in, \
             which the scheduler charges to the thread (many wake-ups on a shared CPU: less \
             sampled), and runs through interrupts taken while the thread is on its CPU, \
             which the scheduler charges to no task (the receive path in softirq: more \
             sampled). Shares and ns per byte are of the sampled time.",
            lo * 100.0,
            hi * 100.0
        )));
    }
    for side in ["sender", "receiver"] {
        if let Some(p) = plots.iter().find(|p| p.title == plot_title(side)) {
            b.push(Block::Plot(p.clone()));
        }
    }
    let shown = shown(rows);
    let mut header: Vec<String> = vec!["cell".into(), "side".into(), "ns/B".into()];
    header.extend(BUCKETS.iter().map(|b| format!("{b} %")));
    b.push(Block::Table(
        header,
        shown
            .iter()
            .map(|r| {
                let mut row = vec![label(r), r.side.clone(), num_label(r.total_ns_per_byte)];
                row.extend(r.share.iter().map(|s| pct(*s)));
                row
            })
            .collect(),
    ));
    let tops: Vec<String> = shown
        .iter()
        .filter(|r| {
            r.key.msg_size_bytes
                == shown
                    .iter()
                    .map(|x| x.key.msg_size_bytes)
                    .max()
                    .unwrap_or(0)
        })
        .map(|r| {
            format!(
                "{}, {}: {}",
                label(r),
                r.side,
                r.top
                    .iter()
                    .map(|(s, b, x)| format!("`{s}` ({b}) {:.0}%", x * 100.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    if !tops.is_empty() {
        b.push(Block::Para(
            "The symbols each side spent most in, at the largest size (the records list 20 per side):".into(),
        ));
        b.push(Block::List(tops));
    }
}
