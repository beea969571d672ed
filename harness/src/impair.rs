//! `sweep --impairments`: the whole grid once per named impairment of the veth pair's
//! sender -> receivers direction ([`sendpath_core::netns::IMPAIRMENTS`]), each into its own
//! directory with its own report, then what changed across them (`DIR/impairments.md`): the
//! throughput, what TCP retransmitted, and how long the kernel held A3's zero-copy slots.

use anyhow::Context as _;
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

/// Checks, before any cell runs, that `v` carries no qdisc of its own (the sweep sets and
/// removes them) and that this kernel can set every impairment asked for: each is set, then
/// removed.
pub fn check(v: &Veth, list: &[&Impairment]) -> anyhow::Result<()> {
    if let Some(now) = v.impairment() {
        anyhow::bail!(
            "--impairments: the veth pair already has an impairment ({now}); the sweep sets its own: remove it first (`sendpath topology up --netem none`)"
        );
    }
    let _clear = Clear(v);
    for i in list {
        v.apply(i)
            .with_context(|| format!("--impairments {}", i.name))?;
    }
    Ok(())
}

/// Removes the impairment when dropped: the sweep ended, or failed with an error.
pub struct Clear<'a>(pub &'a Veth);

impl Drop for Clear<'_> {
    fn drop(&mut self) {
        let _ = self.0.set_netem("none");
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
            let _ = v.set_netem("none");
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

/// Per cell, per impairment: the medians over ok repetitions of (Gbit/s, retransmitted
/// segments, A3 slot hold p99 in ns).
type Table = BTreeMap<String, BTreeMap<&'static str, (f64, f64, Option<f64>)>>;

fn median(v: Vec<f64>) -> f64 {
    sendpath_analysis::stats::median(&v)
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
        shown.push(format!("`{}`: {} — qdisc `{qdisc}`", i.name, i.what));
        let mut by: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
        for r in recs.iter().filter(|r| r.status == Status::Ok) {
            by.entry(cell(r)).or_default().push(r);
        }
        for (c, rs) in by {
            let gbps = median(rs.iter().map(|r| r.throughput.gbps).collect());
            let retrans = median(
                rs.iter()
                    .filter_map(|r| r.tcp.as_ref()?.retransmits.map(|x| x as f64))
                    .collect(),
            );
            let holds: Vec<f64> = rs
                .iter()
                .filter_map(|r| Some(r.zerocopy.as_ref()?.slot_hold_ns.as_ref()?.p99 as f64))
                .collect();
            let hold = (!holds.is_empty()).then(|| median(holds));
            t.entry(c)
                .or_default()
                .insert(i.name, (gbps, retrans, hold));
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
    md += "Each impairment shapes the sender -> receivers direction of the veth pair (the root \
           qdisc of the sender's end); every sub-sweep has its own report in its directory. \
           Medians over each cell's repetitions.\n\n";
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
    type Pick = fn(&(f64, f64, Option<f64>)) -> Option<String>;
    let sections: [(&str, Pick); 3] = [
        ("Throughput (Gbit/s)", |v| Some(format!("{:.2}", v.0))),
        ("Segments TCP retransmitted in the window", |v| {
            v.1.is_finite().then(|| format!("{:.0}", v.1))
        }),
        (
            "How long the kernel held an A3 zero-copy slot (p99: from its send to the completion that freed it)",
            |v| v.2.map(human_ns),
        ),
    ];
    for (k, (what, pick)) in sections.iter().enumerate() {
        let mut rows = String::new();
        for (c, per) in &t {
            let cells: Vec<String> = list
                .iter()
                .map(|i| per.get(i.name).and_then(pick).unwrap_or_else(|| "-".into()))
                .collect();
            if k == 2 && cells.iter().all(|x| x == "-") {
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
        if let (Some((_, _, Some(a))), Some((_, _, Some(b)))) =
            (per.get(first.name), per.get(last.name))
        {
            says.push(format!(
                "- {c}: slots held {} at p99 under `{}`, {} under `{}` ({:.0}x): a zero-copy buffer is busy until the data is acknowledged, so loss and queueing keep it from the sender",
                human_ns(*a),
                first.name,
                human_ns(*b),
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
