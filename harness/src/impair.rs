//! `sweep --impairments`: the whole grid once per named impairment of the veth pair's
//! sender -> receivers direction ([`sendpath_core::netns::IMPAIRMENTS`]), each into its own
//! directory with its own report, then what changed across them (`DIR/impairments.md`): the
//! throughput, what TCP retransmitted, and how long the kernel held A3's zero-copy slots.

use anyhow::Context as _;
use sendpath_analysis::stats::{median, median_if_any};
use sendpath_core::netns::{impairment, Impairment, Veth};
use sendpath_core::report::v1::{Record, Status};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The impairments named, in the order given, each once.
pub fn parse(names: &[String]) -> anyhow::Result<Vec<&'static Impairment>> {
    let mut out: Vec<&'static Impairment> = Vec::new();
    for n in names {
        let i = impairment(n)?;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    if out.is_empty() {
        anyhow::bail!("--impairments needs at least one name");
    }
    Ok(out)
}

/// Checks, before any cell runs, that `v` carries no impairment of its own (the sweep sets and
/// removes them) and that this kernel can set every impairment asked for: each is set, then
/// removed. What a kernel cannot apply of an impairment that runs without it (`lossy`'s netem
/// part) is said here, once, in one line each.
pub fn check(v: &Veth, list: &[&Impairment]) -> anyhow::Result<()> {
    if let Some(now) = v.impairment() {
        anyhow::bail!(
            "--impairments: the veth pair already has an impairment ({now}); the sweep sets its own: remove it first (`sendpath topology up --netem none --loss none`)"
        );
    }
    let _clear = Clear(v);
    for i in list {
        let missing = v
            .apply(i)
            .with_context(|| format!("--impairments {}", i.name))?;
        if let Some(m) = missing {
            eprintln!("sweep: {m}");
        }
    }
    Ok(())
}

/// Removes the impairment (qdisc and loss rule) when dropped: the sweep ended, or failed with
/// an error.
pub struct Clear<'a>(pub &'a Veth);

impl Drop for Clear<'_> {
    fn drop(&mut self) {
        let _ = self.0.clear();
    }
}

/// Removes the impairment when the sweep is interrupted (SIGINT, SIGTERM, SIGHUP), which ends
/// the process without running [`Clear`]: those signals are blocked in this thread, and so in
/// every thread it starts from now on, and one thread waits for them, removes the qdisc and
/// exits with 128 + the signal (what a killed sweep returns; the lines written stay, and
/// `--resume` goes on). Call before the sweep starts any thread.
pub fn clear_on_signal(v: &Veth) -> anyhow::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()
        .context("block the interrupting signals")?;
    let v = v.clone();
    std::thread::spawn(move || {
        if let Ok(sig) = set.wait() {
            let _ = v.clear();
            eprintln!("sweep: {sig}: the veth pair's impairment removed; `--resume` goes on");
            std::process::exit(128 + sig as i32);
        }
    });
    Ok(())
}

/// The directory of one impairment's sub-sweep.
pub fn sub_dir(dir: &Path, i: &Impairment) -> PathBuf {
    dir.join(i.name)
}

fn cell(r: &Record) -> String {
    let s = &r.spec;
    let engine = match &s.uring {
        Some(u) => format!("{} {}", s.engine.as_str(), u.ordering),
        None => s.engine.as_str().to_string(),
    };
    format!(
        "{} {engine} {} {} B x{}",
        s.pattern.as_str(),
        s.mode.as_str().to_uppercase(),
        s.msg_size_bytes,
        s.flows
    )
}

/// One cell under one impairment: medians over its ok repetitions.
struct Medians {
    gbps: f64,
    /// Segments TCP retransmitted in the window.
    retransmits: f64,
    /// Of those, the ones the receiver reported as duplicates (DSACK).
    dsack_dups: Option<f64>,
    /// What the loss rule dropped in the window, and its share of the segments sent.
    dropped: Option<(f64, f64)>,
    /// A3's slot hold p99, ns.
    hold_p99_ns: Option<f64>,
}

/// Per cell, per impairment.
type Table = BTreeMap<String, BTreeMap<&'static str, Medians>>;

/// The median of what `rs` have, None when none has it.
fn median_of(rs: &[&Record], get: impl Fn(&Record) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = rs.iter().filter_map(|r| get(r)).collect();
    median_if_any(&v)
}

fn table(dir: &Path, list: &[&'static Impairment]) -> anyhow::Result<(Table, Vec<String>)> {
    let mut t = Table::new();
    let mut shown = Vec::new();
    for i in list {
        let path = sub_dir(dir, i).join("results.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let recs = sendpath_analysis::parse_records(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .records;
        let qdisc = recs
            .iter()
            .find_map(|r| r.spec.impairment.clone())
            .unwrap_or_else(|| "none".into());
        shown.push(format!("`{}`: {} — applied: `{qdisc}`", i.name, i.what));
        let mut by: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
        for r in recs.iter().filter(|r| r.status == Status::Ok) {
            by.entry(cell(r)).or_default().push(r);
        }
        for (c, rs) in by {
            let m = Medians {
                gbps: median(&rs.iter().map(|r| r.throughput.gbps).collect::<Vec<_>>()),
                retransmits: median_of(&rs, |r| Some(r.tcp.as_ref()?.retransmits? as f64))
                    .unwrap_or(f64::NAN),
                dsack_dups: median_of(&rs, |r| Some(r.tcp.as_ref()?.dsack_dups? as f64)),
                dropped: median_of(&rs, |r| Some(r.tcp.as_ref()?.impairment_dropped? as f64)).map(
                    |d| {
                        let share = median_of(&rs, |r| {
                            let t = r.tcp.as_ref()?;
                            Some(
                                t.impairment_dropped? as f64
                                    / t.segs_out.filter(|&n| n > 0)? as f64,
                            )
                        });
                        (d, share.unwrap_or(f64::NAN))
                    },
                ),
                hold_p99_ns: median_of(&rs, |r| {
                    Some(r.zerocopy.as_ref()?.slot_hold_ns.as_ref()?.p99 as f64)
                }),
            };
            t.entry(c).or_default().insert(i.name, m);
        }
    }
    Ok((t, shown))
}

fn human_ns(ns: f64) -> String {
    match ns {
        x if x >= 1e6 => format!("{:.1} ms", x / 1e6),
        x if x >= 1e3 => format!("{:.0} µs", x / 1e3),
        x => format!("{x:.0} ns"),
    }
}

/// Writes `DIR/impairments.md` from the sub-sweeps' results and returns its path.
pub fn comparison(dir: &Path, list: &[&'static Impairment]) -> anyhow::Result<PathBuf> {
    let (t, shown) = table(dir, list)?;
    let mut md = String::from("# The same grid under each impairment\n\n");
    md += "Each impairment shapes the sender -> receivers direction of the veth pair: a root \
           qdisc on the sender's end, random loss of the segments arriving at the receivers' end \
           (nftables). Under loss the sender's end sends one segment per packet, so that a drop \
           loses one segment as on a wire: on veth that alone costs throughput and CPU, which \
           `segmented` (the same, without loss) measures apart. Every sub-sweep has its own \
           report in its directory. Medians over each cell's repetitions.\n\n";
    for s in &shown {
        md += &format!("- {s}\n");
    }
    let head = |what: &str| {
        let mut h = format!("\n## {what}\n\n| cell |");
        for i in list {
            h += &format!(" {} |", i.name);
        }
        h += "\n|---|";
        h += &"---|".repeat(list.len());
        h + "\n"
    };
    type Pick = fn(&Medians) -> Option<String>;
    let sections: [(&str, Pick); 4] = [
        ("Throughput (Gbit/s)", |v| Some(format!("{:.2}", v.gbps))),
        (
            "Segments TCP retransmitted in the window (of which the receiver reported duplicates: spurious)",
            |v| {
                v.retransmits.is_finite().then(|| match v.dsack_dups {
                    Some(d) if d > 0.0 => format!("{:.0} ({d:.0} spurious)", v.retransmits),
                    _ => format!("{:.0}", v.retransmits),
                })
            },
        ),
        (
            "Segments the loss rule dropped in the window (its nftables counter; share of the segments TCP sent)",
            |v| {
                v.dropped.map(|(d, share)| match share.is_finite() {
                    true => format!("{d:.0} ({:.2}%)", share * 100.0),
                    false => format!("{d:.0}"),
                })
            },
        ),
        (
            "How long the kernel held an A3 zero-copy slot (p99: from its send to the completion that freed it)",
            |v| v.hold_p99_ns.map(human_ns),
        ),
    ];
    for (k, (what, pick)) in sections.iter().enumerate() {
        let mut rows = String::new();
        for (c, per) in &t {
            let cells: Vec<String> = list
                .iter()
                .map(|i| per.get(i.name).and_then(pick).unwrap_or_else(|| "-".into()))
                .collect();
            if k >= 2 && cells.iter().all(|x| x == "-") {
                continue;
            }
            rows += &format!("| {c} | {} |\n", cells.join(" | "));
        }
        if !rows.is_empty() {
            md += &head(what);
            md += &rows;
        }
    }
    let (first, last) = (list[0], list[list.len() - 1]);
    let mut says = Vec::new();
    for (c, per) in &t {
        if let (Some(a), Some(b)) = (
            per.get(first.name).and_then(|m| m.hold_p99_ns),
            per.get(last.name).and_then(|m| m.hold_p99_ns),
        ) {
            says.push(format!(
                "- {c}: slots held {} at p99 under `{}`, {} under `{}` ({:.0}x): a zero-copy buffer is busy until the data is acknowledged, so loss and queueing keep it from the sender",
                human_ns(a),
                first.name,
                human_ns(b),
                last.name,
                b / a.max(1.0)
            ));
        }
    }
    if list.len() > 1 && !says.is_empty() {
        md += "\n## What changed for zero-copy\n\n";
        md += &says.join("\n");
        md += "\n";
    }
    let path = dir.join("impairments.md");
    std::fs::write(&path, md).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}
