//! Plots in the study's style: one metric against message size (log-2 axis), one line per
//! mode x engine, one plot per metric, pattern and flow count. Medians are the line; a thin
//! vertical bar shows min..max over the repetitions.
//!
//! PNG is drawn by plotters' bitmap backend with DejaVu Sans registered from bytes (the
//! `dejavu` crate), so no system font library or font file is needed; the RGB buffer is
//! encoded with the `png` crate. SVG needs no font: the viewer draws the text. The legend has
//! its own panel right of the chart, so it can never cover a line.

use crate::derive::{DerivedTable, Metric};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use sendpath_record::MODES;
use std::collections::BTreeMap;
use std::sync::Once;

pub use crate::labels::{mode_label, num_label, size_label};

/// Width of every plot in pixels.
pub const WIDTH: u32 = 1000;
/// Height of every plot in pixels.
pub const HEIGHT: u32 = 560;
const LEGEND_W: u32 = 230;
pub(crate) const FONT: &str = "sans-serif";

/// A rendering failure.
#[derive(Debug, thiserror::Error)]
#[error("plot {name}: {msg}")]
pub struct PlotError {
    /// File stem of the plot.
    pub name: String,
    /// What failed.
    pub msg: String,
}

/// A point: (message size, median, min, max) in display units.
pub type Point = (u64, f64, f64, f64);

/// One line of a plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// `a1`, `a2`, `a3`.
    pub mode: String,
    /// `threads`, `uring`.
    pub engine: String,
    /// Points by size.
    pub points: Vec<Point>,
}

impl Series {
    /// Legend label, e.g. `A2 sendmsg, threads`.
    pub fn label(&self) -> String {
        format!("{}, {}", mode_label(&self.mode), self.engine)
    }
}

/// What to draw: one metric for one pattern, batch and flow count.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotSpec {
    /// The metric.
    pub metric: Metric,
    /// Pattern.
    pub pattern: String,
    /// Messages per send operation of every line (`1`, `512K`).
    pub batch: String,
    /// Flows.
    pub flows: u64,
    /// Lines, sorted by mode then engine.
    pub series: Vec<Series>,
}

impl PlotSpec {
    /// File name without extension, e.g. `gbps_stream_batch512K_flows2`.
    pub fn stem(&self) -> String {
        format!(
            "{}_{}_batch{}_flows{}",
            self.metric.key(),
            self.pattern,
            self.batch,
            self.flows
        )
    }

    /// Chart title.
    pub fn title(&self) -> String {
        format!(
            "{}: {}, batch {}, {} flow{}",
            self.metric.title(),
            self.pattern,
            self.batch,
            self.flows,
            if self.flows == 1 { "" } else { "s" }
        )
    }

    /// Y axis label with its unit (values are drawn in this unit).
    pub fn y_desc(&self) -> &'static str {
        y_unit(self.metric).0
    }

    /// Whether the y axis is logarithmic (metrics spanning decades over the sizes).
    fn log_y(&self) -> bool {
        y_unit(self.metric).2
    }
}

/// (axis label, factor from table unit to display unit, log scale).
fn y_unit(m: Metric) -> (&'static str, f64, bool) {
    match m {
        Metric::Gbps => ("throughput (Gbit/s)", 1.0, false),
        Metric::MsgsPerS => ("messages per second", 1.0, false),
        Metric::LatencyP50Ns => ("latency p50 (µs, log scale)", 1e-3, true),
        Metric::LatencyP99Ns => ("latency p99 (µs, log scale)", 1e-3, true),
        Metric::LatencyP999Ns => ("latency p99.9 (µs, log scale)", 1e-3, true),
        Metric::SenderCpuNsPerByte => ("sender CPU (ns per byte, log scale)", 1.0, true),
        Metric::ReceiverCpuNsPerByte => ("receiver CPU (ns per byte, log scale)", 1.0, true),
        Metric::SenderCyclesPerByte => ("sender cycles per byte (log scale)", 1.0, true),
        Metric::ReceiverCyclesPerByte => ("receiver cycles per byte (log scale)", 1.0, true),
        Metric::CacheMissesPerGb => ("cache misses per GB (log scale)", 1.0, true),
        Metric::L1dMissesPerGb => ("L1D load misses per GB (log scale)", 1.0, true),
        Metric::LlcMissesPerGb => ("LLC load misses per GB (log scale)", 1.0, true),
        Metric::ContextSwitchesPerS => ("context switches per second", 1.0, false),
        Metric::ZcCopiedFraction => ("copied completions / completions", 1.0, false),
    }
}

/// The metrics that get a plot, in order.
pub const PLOTTED: [Metric; 12] = [
    Metric::Gbps,
    Metric::LatencyP50Ns,
    Metric::LatencyP99Ns,
    Metric::SenderCpuNsPerByte,
    Metric::ReceiverCpuNsPerByte,
    Metric::ContextSwitchesPerS,
    Metric::SenderCyclesPerByte,
    Metric::ReceiverCyclesPerByte,
    Metric::CacheMissesPerGb,
    Metric::L1dMissesPerGb,
    Metric::LlcMissesPerGb,
    Metric::ZcCopiedFraction,
];

/// Every plot the table supports: one per plotted metric, pattern, batch and flow count that has at
/// least one value. A metric no record has (e.g. cycles without hardware counters) gets none.
pub fn plot_specs(t: &DerivedTable) -> Vec<PlotSpec> {
    type Group = (String, String, u64);
    let mut groups: BTreeMap<Group, Vec<&crate::derive::DerivedRow>> = BTreeMap::new();
    for r in &t.rows {
        groups
            .entry((
                r.key.pattern.to_string(),
                r.key.batch.to_string(),
                r.key.flows,
            ))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for metric in PLOTTED {
        let factor = y_unit(metric).1;
        for ((pattern, batch, flows), rows) in &groups {
            let mut lines: BTreeMap<(String, String), Vec<Point>> = BTreeMap::new();
            for r in rows {
                if let Some(s) = r.get(metric) {
                    lines
                        .entry((r.key.mode.to_string(), r.key.engine.to_string()))
                        .or_default()
                        .push((
                            r.key.msg_size_bytes,
                            s.median * factor,
                            s.min * factor,
                            s.max * factor,
                        ));
                }
            }
            if lines.is_empty() {
                continue;
            }
            let series = lines
                .into_iter()
                .map(|((mode, engine), mut points)| {
                    points.sort_by_key(|p| p.0);
                    Series {
                        mode,
                        engine,
                        points,
                    }
                })
                .collect();
            out.push(PlotSpec {
                metric,
                pattern: pattern.clone(),
                batch: batch.clone(),
                flows: *flows,
                series,
            });
        }
    }
    out
}

pub(crate) fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TTF shipped by the dejavu crate; failure here is a build bug.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Renders a plot as SVG text.
pub fn render_svg(spec: &PlotSpec) -> Result<String, PlotError> {
    register_fonts();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, spec).map_err(|msg| PlotError {
            name: spec.stem(),
            msg,
        })?;
        root.present().map_err(|e| PlotError {
            name: spec.stem(),
            msg: e.to_string(),
        })?;
    }
    Ok(svg)
}

/// Renders a plot as PNG bytes.
pub fn render_png(spec: &PlotSpec) -> Result<Vec<u8>, PlotError> {
    register_fonts();
    let err = |msg: String| PlotError {
        name: spec.stem(),
        msg,
    };
    let mut rgb = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, spec).map_err(err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    encode_png(&rgb, WIDTH, HEIGHT).map_err(err)
}

/// A figure drawn twice: (SVG text, PNG bytes), or why it could not be drawn.
pub type Drawn = Result<(String, Vec<u8>), String>;

/// Draws one figure of `w` x `h` pixels twice, as SVG and as PNG (the same drawing function,
/// once per backend), and returns (SVG text, PNG bytes).
pub(crate) fn svg_and_png(
    w: u32,
    h: u32,
    draw_svg: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
    draw_png: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
) -> Drawn {
    register_fonts();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        draw_svg(&root)?;
        root.present().map_err(|x| x.to_string())?;
    }
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw_png(&root)?;
        root.present().map_err(|x| x.to_string())?;
    }
    Ok((svg, encode_png(&rgb, w, h)?))
}

/// An RGB buffer of `w` x `h` pixels as PNG bytes.
pub(crate) fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(|e| e.to_string())?;
        wr.write_image_data(rgb).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn color(mode: &str, i: usize) -> RGBColor {
    const OTHER: [RGBColor; 4] = [
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
    ];
    // One colour per row of the mode table, in order.
    const MODE: [RGBColor; 3] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
    ];
    let row = mode
        .parse::<sendpath_record::Mode>()
        .ok()
        .and_then(|m| MODES.iter().position(|f| f.mode == m));
    match row {
        Some(k) if k < MODE.len() => MODE[k],
        _ => OTHER[i % OTHER.len()],
    }
}

/// An f64 axis, linear or logarithmic, with exactly the given ticks: powers of two for sizes,
/// 1-2-5 steps for log values, round steps for linear ones. plotters' own log axis labels only
/// decades, which leaves most of a per-byte or latency plot unlabelled.
struct TickAxis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
}

impl TickAxis {
    fn t(&self, v: f64) -> f64 {
        if self.log {
            v.max(f64::MIN_POSITIVE).ln()
        } else {
            v
        }
    }
}

impl Ranged for TickAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = (self.t(self.lo), self.t(self.hi));
        let f = (self.t(*v) - lo) / (hi - lo);
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for TickAxis {
    fn format(v: &f64) -> String {
        num_label(*v)
    }
}

/// The x axis: message sizes on a log2 scale, ticks at every power of two in range (every
/// second or more when the range is wide).
fn x_axis(spec: &PlotSpec) -> TickAxis {
    let sizes: Vec<f64> = spec
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| (p.0.max(1) as f64).log2()))
        .collect();
    let lo = sizes.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = sizes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi - lo < 1.0 {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    };
    let (first, last) = (lo.ceil() as i64, hi.floor() as i64);
    let step = ((last - first) / 12 + 1).max(1) as usize;
    let ticks = (first..=last)
        .step_by(step)
        .map(|k| (k as f64).exp2())
        .collect();
    let pad = (hi - lo) * 0.05;
    TickAxis {
        lo: (lo - pad).exp2(),
        hi: (hi + pad).exp2(),
        log: true,
        ticks,
    }
}

/// A round step giving about `n` intervals over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let m = raw / mag;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 2.5 {
        2.5
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The y axis for values (median, min and max of every point).
fn y_axis(spec: &PlotSpec) -> TickAxis {
    let values: Vec<f64> = spec
        .series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [p.1, p.2, p.3]))
        .filter(|v| v.is_finite())
        .collect();
    if spec.log_y() {
        let pos: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
        let (lo, hi) = if pos.is_empty() {
            (0.1, 10.0)
        } else {
            let lo = pos.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = pos.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if hi / lo < 4.0 {
                (lo / 2.0, hi * 2.0)
            } else {
                (lo / 1.3, hi * 1.3)
            }
        };
        let decades = (hi / lo).log10();
        let mults: &[f64] = if decades > 6.0 {
            &[1.0]
        } else if decades > 2.5 {
            &[1.0, 3.0]
        } else if decades > 1.2 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0]
        };
        let mut ticks = Vec::new();
        let mut k = lo.log10().floor() as i32;
        while 10f64.powi(k) <= hi && ticks.len() < 40 {
            for m in mults {
                let v = m * 10f64.powi(k);
                if v >= lo && v <= hi {
                    ticks.push(v);
                }
            }
            k += 1;
        }
        TickAxis {
            lo,
            hi,
            log: true,
            ticks,
        }
    } else {
        let lo = values.iter().copied().fold(0.0f64, f64::min);
        let max = values.iter().copied().fold(0.0f64, f64::max);
        let hi = if spec.metric == Metric::ZcCopiedFraction {
            1.1f64.max(max * 1.1)
        } else if max <= 0.0 {
            1.0
        } else {
            max * 1.1
        };
        let step = nice_step(hi - lo, 6.0);
        let mut ticks = Vec::new();
        let mut v = (lo / step).ceil() * step;
        while v <= hi && ticks.len() < 40 {
            ticks.push(v);
            v += step;
        }
        TickAxis {
            lo,
            hi,
            log: false,
            ticks,
        }
    }
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, spec: &PlotSpec) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (chart_area, legend_area) = root.split_horizontally(WIDTH - LEGEND_W);
    let x_fmt = |v: &f64| size_label(*v);
    let y_fmt = |v: &f64| num_label(*v);
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(spec.title(), (FONT, 24).into_font())
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(84)
        .build_cartesian_2d(x_axis(spec), y_axis(spec))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("message size (bytes, log2 scale)")
        .y_desc(spec.y_desc())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .bold_line_style(RGBColor(220, 220, 220))
        .draw()
        .map_err(e)?;
    draw_series(&mut chart, spec).map_err(e)?;
    draw_legend(&legend_area, spec).map_err(e)?;
    Ok(())
}

fn draw_series<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<TickAxis, TickAxis>>,
    spec: &PlotSpec,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let log_y = spec.log_y();
    for (i, s) in spec.series.iter().enumerate() {
        let c = color(&s.mode, i);
        let uring = s.engine != "threads";
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| !log_y || p.1 > 0.0)
            .map(|p| (p.0 as f64, p.1))
            .collect();
        let line = c.stroke_width(3);
        if uring {
            chart.draw_series(DashedLineSeries::new(pts.clone(), 10, 6, line))?;
        } else {
            chart.draw_series(LineSeries::new(pts.clone(), line))?;
        }
        for p in s.points.iter().filter(|p| !log_y || p.2 > 0.0) {
            if p.3 > p.2 {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(p.0 as f64, p.2), (p.0 as f64, p.3)],
                    c.stroke_width(2),
                )))?;
            }
        }
        if uring {
            chart.draw_series(pts.iter().map(|p| TriangleMarker::new(*p, 7, c.filled())))?;
        } else {
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 5, c.filled())))?;
        }
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    spec: &PlotSpec,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let font = (FONT, 16).into_font();
    area.draw(&Text::new(
        "mode, engine",
        (8, 60),
        font.clone().style(FontStyle::Bold),
    ))?;
    for (i, s) in spec.series.iter().enumerate() {
        let c = color(&s.mode, i);
        let y = 96 + 30 * i as i32;
        if s.engine != "threads" {
            for (a, b) in [(6, 16), (22, 32), (38, 44)] {
                area.draw(&PathElement::new(vec![(a, y), (b, y)], c.stroke_width(3)))?;
            }
            area.draw(&TriangleMarker::new((25, y), 7, c.filled()))?;
        } else {
            area.draw(&PathElement::new(vec![(6, y), (44, y)], c.stroke_width(3)))?;
            area.draw(&Circle::new((25, y), 5, c.filled()))?;
        }
        area.draw(&Text::new(s.label(), (52, y - 9), font.clone()))?;
    }
    let note_y = 96 + 30 * spec.series.len() as i32 + 10;
    let small = (FONT, 13).into_font().color(&RGBColor(90, 90, 90));
    area.draw(&Text::new(
        "line: median over reps",
        (8, note_y),
        small.clone(),
    ))?;
    area.draw(&Text::new(
        "bar: min..max over reps",
        (8, note_y + 18),
        small,
    ))?;
    Ok(())
}
