//! The study's "why", answered from the data: why zero-copy is not always best (what A3 saved
//! in copies against what it paid, from the profile), which cache level the copies hurt (the
//! miss counters where the machine has them, else the copies' ns per byte against this
//! machine's memcpy), and what went against the textbook (each with its figures, its
//! interval, and the profile's explanation where it has one).

use crate::cpu_profile::ProfileRow;
use crate::derive::{BatchKey, CellKey, DerivedRow, Metric, PatternKey};
use crate::document::Block;
use crate::plot::num_label;
use crate::stats::{ratio_ci, Ratio};
use crate::summary::Analysis;
use sendpath_record::Mode;
use std::collections::BTreeMap;

/// Most items a kind of surprise lists (the strongest first; the count of all is said).
const MAX_ITEMS: usize = 6;

fn row<'a>(a: &'a Analysis, key: &CellKey) -> Option<&'a DerivedRow> {
    a.table.row(key)
}

fn gbps(r: &DerivedRow) -> Option<&[f64]> {
    r.get(Metric::Gbps).map(|s| s.values.as_slice())
}

/// `b` over `a` in median Gbit/s, with its interval.
fn ratio(a: &DerivedRow, b: &DerivedRow) -> Option<Ratio> {
    ratio_ci(gbps(a)?, gbps(b)?)
}

fn with_mode(k: &CellKey, mode: Mode) -> CellKey {
    CellKey { mode, ..k.clone() }
}

fn profile<'a>(rows: &'a [ProfileRow], key: &CellKey, side: &str) -> Option<&'a ProfileRow> {
    rows.iter().find(|r| r.key == *key && r.side == side)
}

/// One size of the zero-copy trade: A2 and A3 at one (engine, batch, flows, size).
struct Trade {
    key: CellKey,
    /// A2's copies, ns/B, both sides.
    a2_copies: f64,
    /// A3's copies but the deferred one, ns/B, both sides (the receiver's copy to user
    /// memory is in both, so it cancels in `saved`).
    a3_copies: f64,
    /// A3's zero-copy work and its deferred copy, ns/B, both sides.
    zerocopy: f64,
    deferred: f64,
    throughput: Option<Ratio>,
}

impl Trade {
    fn saved(&self) -> f64 {
        self.a2_copies - self.a3_copies
    }
    fn paid(&self) -> f64 {
        self.zerocopy + self.deferred
    }
}

/// A cell's profile with both sides added up, ns/B: on loopback and veth much of the receive
/// path runs in the sender's softirq (the deferred copy lands on either side), so only the sum
/// is the cell's cost. The sender alone where the receiver was not profiled.
struct BothSides {
    /// Copies but the deferred one.
    copies: f64,
    zerocopy: f64,
    deferred: f64,
}

fn both_sides(rows: &[ProfileRow], key: &CellKey) -> Option<BothSides> {
    let sides: Vec<&ProfileRow> = ["sender", "receiver"]
        .into_iter()
        .filter_map(|side| profile(rows, key, side))
        .collect();
    profile(rows, key, "sender")?;
    let sum = |f: &dyn Fn(&ProfileRow) -> f64| sides.iter().map(|p| f(p)).sum::<f64>();
    Some(BothSides {
        copies: sum(&|p| p.ns_of("copy_user") + p.ns_of("copy_kernel")),
        zerocopy: sum(&|p| p.ns_of("zerocopy")),
        deferred: sum(&|p| p.ns_of("copy_deferred")),
    })
}

fn trades(a: &Analysis, rows: &[ProfileRow]) -> BTreeMap<(String, String, u64), Vec<Trade>> {
    let mut out: BTreeMap<(String, String, u64), Vec<Trade>> = BTreeMap::new();
    for p3 in rows.iter().filter(|r| {
        r.side == "sender" && r.key.mode == Mode::A3 && r.key.pattern == PatternKey::STREAM
    }) {
        let k2 = with_mode(&p3.key, Mode::A2);
        let (Some(a2), Some(a3)) = (both_sides(rows, &k2), both_sides(rows, &p3.key)) else {
            continue;
        };
        let throughput = row(a, &k2)
            .zip(row(a, &p3.key))
            .and_then(|(r2, r3)| ratio(r2, r3));
        out.entry((
            p3.key.engine.to_string(),
            p3.key.batch.to_string(),
            p3.key.flows,
        ))
        .or_default()
        .push(Trade {
            key: p3.key.clone(),
            a2_copies: a2.copies + a2.deferred,
            a3_copies: a3.copies,
            zerocopy: a3.zerocopy,
            deferred: a3.deferred,
            throughput,
        });
    }
    for v in out.values_mut() {
        v.sort_by_key(|t| t.key.msg_size_bytes);
    }
    out
}

/// "Why zero-copy is not always best": per size, what A3 saved and what it paid.
pub fn zerocopy_section(b: &mut Vec<Block>, a: &Analysis, rows: &[ProfileRow]) {
    let t = trades(a, rows);
    if t.is_empty() {
        if rows.is_empty() && a.table.rows.iter().any(|r| r.key.mode == Mode::A3) {
            b.push(Block::Heading(2, "Why zero-copy is not always best".into()));
            b.push(Block::Para(
                "These records have no CPU profile, so what A3 saved against what it paid is \
                 not in them: `sendpath sweep --preset why` (about 2 minutes here) profiles \
                 every mode's streams and answers it. \"What was unexpected\" below lists where \
                 A3 lost, from the throughput alone."
                    .into(),
            ));
        }
        return;
    }
    b.push(Block::Heading(2, "Why zero-copy is not always best".into()));
    b.push(Block::Para(
        "A3 sends without copying the payload into the socket buffer: against A2 (the same \
         `sendmsg`, with that copy) it saves the copy and pays for pinning the pages, the \
         completion notifications and, where the kernel delivers the data locally (loopback, \
         veth), a deferred copy of the pinned pages after all (`skb_copy_ubufs`). From the \
         profiles at equal engine, batch and flows, in CPU ns per byte received, sender and \
         receiver added up (on loopback and veth much of the receive path runs in the \
         sender's softirq, and the deferred copy lands on either side): saved = A2's copies \
         minus A3's non-deferred ones; paid = A3's `zerocopy` and `copy_deferred`."
            .into(),
    ));
    let mut table = Vec::new();
    let mut lines = Vec::new();
    for ((engine, batch, flows), v) in &t {
        for x in v {
            table.push(vec![
                engine.clone(),
                batch.clone(),
                flows.to_string(),
                x.key.msg_size_bytes.to_string(),
                num_label(x.a2_copies),
                num_label(x.a3_copies),
                num_label(x.saved()),
                num_label(x.zerocopy),
                num_label(x.deferred),
                num_label(x.paid()),
                num_label(x.saved() - x.paid()),
                x.throughput.map_or("-".into(), |r| r.text()),
            ]);
        }
        // The size from which A3 comes out ahead at every larger size measured, if any.
        let turns = (0..v.len())
            .find(|&i| v[i..].iter().all(|x| x.saved() > x.paid()))
            .map(|i| v[i].key.msg_size_bytes);
        let big = v.last().expect("a group has a size");
        lines.push(match turns {
            Some(s) if s == v[0].key.msg_size_bytes => format!(
                "{engine}, batch {batch}, {flows} flow(s): A3 saved more than it paid at every size measured, from {s} B."
            ),
            Some(s) => format!(
                "{engine}, batch {batch}, {flows} flow(s): the trade turns at {s} B: below it A3 paid more than it saved."
            ),
            None => format!(
                "{engine}, batch {batch}, {flows} flow(s): {}: at {} B A3 saved {} ns/B of copying and paid {} ({} of it the deferred copy){}.",
                {
                    let ahead: Vec<String> = v
                        .iter()
                        .filter(|x| x.saved() > x.paid())
                        .map(|x| format!("{} B", x.key.msg_size_bytes))
                        .collect();
                    if ahead.is_empty() {
                        "the trade never turns in the sizes measured".to_string()
                    } else {
                        format!("A3 saved more than it paid only at {}, not at the larger sizes", ahead.join(", "))
                    }
                },
                big.key.msg_size_bytes,
                num_label(big.saved()),
                num_label(big.paid()),
                num_label(big.deferred),
                if big.deferred > 0.5 * big.paid() {
                    ": locally delivered, the pages are copied anyway, so zero-copy can only lose here; across a NIC that copy does not happen"
                } else {
                    ""
                }
            ),
        });
    }
    b.push(Block::List(lines));
    b.push(Block::Table(
        [
            "engine",
            "batch",
            "flows",
            "msg size (B)",
            "A2 copies ns/B",
            "A3 copies ns/B",
            "saved",
            "A3 zerocopy ns/B",
            "A3 copy_deferred ns/B",
            "paid",
            "saved - paid",
            "A3 / A2 Gbit/s",
        ]
        .map(String::from)
        .to_vec(),
        table,
    ));
}

/// "Which cache level": the miss counters where the machine has them, else the copies' ns
/// per byte against memcpy's at the same size.
pub fn cache_section(b: &mut Vec<Block>, a: &Analysis, rows: &[ProfileRow]) {
    b.push(Block::Heading(
        2,
        "Which cache level the copies hurt".into(),
    ));
    let t = &a.table;
    if t.has(Metric::L1dMissesPerGb) || t.has(Metric::LlcMissesPerGb) {
        let mut table = Vec::new();
        for r in t
            .rows
            .iter()
            .filter(|r| r.key.pattern == PatternKey::STREAM)
        {
            let m = |x| r.median(x).map_or("-".into(), num_label);
            table.push(vec![
                r.key.to_string(),
                m(Metric::L1dMissesPerGb),
                m(Metric::LlcMissesPerGb),
                m(Metric::CacheMissesPerGb),
            ]);
        }
        b.push(Block::Para(
            "L1D and LLC load misses per GB received, both sides (hardware counters):".into(),
        ));
        b.push(Block::Table(
            ["cell", "L1D misses/GB", "LLC misses/GB", "cache misses/GB"]
                .map(String::from)
                .to_vec(),
            table,
        ));
        return;
    }
    let missing: Vec<&str> = [
        "cycles",
        "cache_misses",
        "l1d_load_misses",
        "llc_load_misses",
    ]
    .into_iter()
    .filter(|c| a.counters.unsupported.contains_key(*c))
    .collect();
    let mut para = format!(
        "This machine counted no cache misses: {} {} unsupported here (a VM without a PMU), \
         and the records say so rather than report zeros.",
        missing.join(", "),
        if missing.len() == 1 { "is" } else { "are" }
    );
    // The copies by size: one engine and batch (threads at one message per send where
    // measured), the fewest flows.
    let pick = rows
        .iter()
        .filter(|r| r.key.pattern == PatternKey::STREAM)
        .map(|r| {
            (
                r.key.engine.rings(),
                r.key.batch != BatchKey::ONE,
                r.key.flows,
            )
        })
        .min();
    let Some((uring, batched, flows)) = pick else {
        para.push_str(" Without `--profile` there is no stand-in either: `sendpath sweep --preset why` (about 2 minutes here) measures the copies' cost per byte by size against this machine's memcpy.");
        b.push(Block::Para(para));
        return;
    };
    para.push_str(
        " What stands in is the profile: each copy's CPU ns per byte by message size, against \
         this machine's own memcpy at that size (measured by the tool after each window, \
         copying between two buffers of the message's size, as a staging copy does). A copy \
         running near memcpy's speed works on cache-resident data; one several times slower \
         waits on memory the caches do not hold (socket buffers written by another CPU, or \
         too large for L1/L2).",
    );
    b.push(Block::Para(para));
    let of = |mode: Mode, side: &str| {
        let mut v: Vec<&ProfileRow> = rows
            .iter()
            .filter(|r| {
                r.key.pattern == PatternKey::STREAM
                    && r.key.mode == mode
                    && r.side == side
                    && r.key.engine.rings() == uring
                    && (r.key.batch != BatchKey::ONE) == batched
                    && r.key.flows == flows
            })
            .collect();
        v.sort_by_key(|r| r.key.msg_size_bytes);
        v
    };
    let a1s = of(Mode::A1, "sender");
    let mut table = Vec::new();
    for s in &a1s {
        let size = s.key.msg_size_bytes;
        let at = |mode: Mode, side: &str| {
            of(mode, side)
                .into_iter()
                .find(|r| r.key.msg_size_bytes == size)
        };
        let memcpy = s.memcpy_ns_per_byte;
        let rx = at(Mode::A2, "receiver");
        // (No samples in the copy, e.g. a 64-byte staging copy the compiler inlined: "-".)
        let times = |x: f64| match memcpy {
            Some(m) if x > 0.0 => format!("{:.1}x", x / m),
            _ => "-".into(),
        };
        table.push(vec![
            format!("{} ({}, batch {})", size, s.key.engine, s.key.batch),
            memcpy.map_or("-".into(), num_label),
            num_label(s.ns_of("copy_user")),
            times(s.ns_of("copy_user")),
            at(Mode::A2, "sender").map_or("-".into(), |r| num_label(r.ns_of("copy_kernel"))),
            rx.map_or("-".into(), |r| num_label(r.ns_of("copy_kernel"))),
            rx.map_or("-".into(), |r| times(r.ns_of("copy_kernel"))),
        ]);
    }
    if !table.is_empty() {
        b.push(Block::Table(
            [
                "msg size (B)",
                "memcpy ns/B",
                "A1 copy_user ns/B",
                "x memcpy",
                "A2 sender copy_kernel ns/B",
                "A2 receiver copy_kernel ns/B",
                "x memcpy",
            ]
            .map(String::from)
            .to_vec(),
            table,
        ));
    }
}

/// One result against the textbook, with its figures.
struct Surprise {
    text: String,
    /// How far from expected (lower ratio first).
    ratio: f64,
}

fn explain_a3(rows: &[ProfileRow], key: &CellKey) -> String {
    let (Some(a2), Some(a3)) = (
        both_sides(rows, &with_mode(key, Mode::A2)),
        both_sides(rows, key),
    ) else {
        return String::new();
    };
    format!(
        " The profile, per byte and both sides: A3 saved {} ns of copying against A2 and paid {} ns pinning pages and reaping notifications, and {} ns copying the pinned pages after all.",
        num_label(a2.copies + a2.deferred - a3.copies),
        num_label(a3.zerocopy),
        num_label(a3.deferred)
    )
}

fn explain_a2(a: &Analysis, rows: &[ProfileRow], key: &CellKey) -> String {
    let capped = a.calls.iter().find(|c| {
        c.mode == Mode::A2
            && c.engine == key.engine
            && c.batch == key.batch
            && c.msg_size_bytes == key.msg_size_bytes
            && c.capped_by.is_some()
    });
    if let Some(c) = capped {
        let a1 = a.calls.iter().find(|x| {
            x.mode == Mode::A1
                && x.engine == c.engine
                && x.batch == c.batch
                && x.msg_size_bytes == c.msg_size_bytes
        });
        return format!(
            " The batch was not equal after all: sendmsg's iovec held A2 to {} messages per call{}.",
            c.batch_messages,
            a1.map_or(String::new(), |x| format!(" where A1 carried {:.0}", x.messages_per_call))
        );
    }
    let p1 = profile(rows, &with_mode(key, Mode::A1), "sender");
    let p2 = profile(rows, key, "sender");
    match (p1, p2) {
        (Some(p1), Some(p2)) => format!(
            " The profile: per byte, A2's sender spent {} ns against A1's {} ({} against {} in `syscall`, {} against {} in copies).",
            num_label(p2.total_ns_per_byte),
            num_label(p1.total_ns_per_byte),
            num_label(p2.ns_of("syscall")),
            num_label(p1.ns_of("syscall")),
            num_label(p2.copies_ns()),
            num_label(p1.copies_ns())
        ),
        _ => String::new(),
    }
}

/// "What was unexpected": results against the textbook's expectation.
pub fn unexpected_section(b: &mut Vec<Block>, a: &Analysis, rows: &[ProfileRow]) {
    let t = &a.table;
    let mut kinds: Vec<(&str, Vec<Surprise>)> = Vec::new();
    // Zero-copy slower than the copy it replaces; A2 slower than A1.
    let mut zc = Vec::new();
    let mut a2 = Vec::new();
    for r in &t.rows {
        let (base, into) = match r.key.mode {
            Mode::A3 => (Mode::A2, &mut zc),
            Mode::A2 => (Mode::A1, &mut a2),
            Mode::A1 => continue,
        };
        let Some(other) = row(a, &with_mode(&r.key, base)) else {
            continue;
        };
        let Some(x) = ratio(other, r) else { continue };
        if x.below() {
            let why = if base == Mode::A2 {
                explain_a3(rows, &r.key)
            } else {
                explain_a2(a, rows, &r.key)
            };
            into.push(Surprise {
                text: format!(
                    "{}: slower than its {} counterpart ({}).{why}",
                    r.key,
                    base.as_str().to_uppercase(),
                    x.text()
                ),
                ratio: x.ratio,
            });
        }
    }
    kinds.push((
        "Zero-copy slower than the copy it replaces (A3 against A2)",
        zc,
    ));
    kinds.push(("One copy slower than two (A2 against A1)", a2));
    // More flows, less total throughput.
    let mut flows = Vec::new();
    for e in &a.flow_effects {
        let hi = CellKey {
            flows: e.high_flows,
            ..e.low.clone()
        };
        let (Some(lo_row), Some(hi_row)) = (row(a, &e.low), row(a, &hi)) else {
            continue;
        };
        if let Some(x) = ratio(lo_row, hi_row).filter(Ratio::below) {
            flows.push(Surprise {
                text: format!(
                    "{}: total throughput at {} flows against {} ({}).",
                    e.low,
                    e.high_flows,
                    e.low.flows,
                    x.text()
                ),
                ratio: x.ratio,
            });
        }
    }
    kinds.push(("More flows, less total throughput", flows));
    // Batching that does not help.
    let mut batching = Vec::new();
    for r in t.rows.iter().filter(|r| r.key.batch.batched()) {
        let one = CellKey {
            batch: BatchKey::ONE,
            ..r.key.clone()
        };
        let Some(o) = row(a, &one) else { continue };
        let Some(x) = ratio(o, r) else { continue };
        if !x.above() {
            let carried = a.calls.iter().find(|c| {
                c.mode == r.key.mode
                    && c.engine == r.key.engine
                    && c.batch == r.key.batch
                    && c.msg_size_bytes == r.key.msg_size_bytes
            });
            batching.push(Surprise {
                text: format!(
                    "{}: no clear gain over one message per send ({}){}.",
                    r.key,
                    x.text(),
                    carried.map_or(String::new(), |c| format!(
                        "; each call carried {:.0} messages",
                        c.messages_per_call
                    ))
                ),
                ratio: x.ratio,
            });
        }
    }
    kinds.push(("Batching that did not help", batching));
    b.push(Block::Heading(2, "What was unexpected".into()));
    b.push(Block::Para(format!(
        "Results that go against the textbook expectation (zero-copy beats copying, one copy \
         beats two, more flows move more bytes, batching helps), each where the {:.0}% interval \
         of the ratio of medians is clearly on the unexpected side (beyond the {}x margin; \
         for batching, where it shows no gain beyond that margin), with the profile's \
         explanation where the records have one.",
        crate::stats::LEVEL * 100.0,
        crate::stats::MARGIN
    )));
    for (title, mut v) in kinds {
        if v.is_empty() {
            b.push(Block::Para(format!("{title}: none here.")));
            continue;
        }
        v.sort_by(|x, y| x.ratio.total_cmp(&y.ratio));
        let n = v.len();
        let mut items: Vec<String> = v.into_iter().take(MAX_ITEMS).map(|s| s.text).collect();
        if n > MAX_ITEMS {
            items.push(format!("... and {} more cells.", n - MAX_ITEMS));
        }
        b.push(Block::Para(format!(
            "{title}: {n} cell{}.",
            if n == 1 { "" } else { "s" }
        )));
        b.push(Block::List(items));
    }
}
