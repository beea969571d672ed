//! `--profile` in the analysis, on `fixtures/profiled.jsonl`: 24 real records (A1/A2/A3 x
//! 1 KiB/64 KiB x batch 1/256K x 2 reps, threads engine, loopback, 0.3 s windows, sampled at
//! 1 kHz), histogram blobs blanked. The report's "Where the CPU goes" and the study's three
//! "why" sections are checked against figures computed here from the records themselves.

use sendpath_analysis::cpu_profile::{profile_rows, ProfileRow, BUCKETS};
use sendpath_analysis::derive::CellKey;
use sendpath_analysis::{parse_records, render_report};
use sendpath_record::v1::Record;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiled.jsonl")
}

fn records() -> Vec<Record> {
    parse_records(&std::fs::read_to_string(fixture()).unwrap())
        .unwrap()
        .records
}

fn key(mode: &str, size: u64, batch: &str) -> CellKey {
    CellKey {
        pattern: "stream".parse().unwrap(),
        batch: batch.parse().unwrap(),
        engine: "threads".parse().unwrap(),
        flows: 1,
        msg_size_bytes: size,
        mode: mode.parse().unwrap(),
    }
}

fn side<'a>(rows: &'a [ProfileRow], k: &CellKey, side: &str) -> &'a ProfileRow {
    rows.iter()
        .find(|r| r.key == *k && r.side == side)
        .unwrap_or_else(|| panic!("no {side} profile for {k}"))
}

/// The report of the fixture, rendered once per test into its own directory.
fn report(name: &str) -> (String, PathBuf) {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&out);
    render_report(&fixture(), &out).unwrap();
    (std::fs::read_to_string(out.join("report.md")).unwrap(), out)
}

/// The lines of a report section, from its heading to the next one.
fn section<'a>(md: &'a str, heading: &str) -> Vec<&'a str> {
    let start = md
        .lines()
        .position(|l| l == format!("## {heading}"))
        .unwrap_or_else(|| panic!("no section {heading:?}"));
    md.lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with("## "))
        .collect()
}

#[test]
fn every_side_of_every_cell_has_a_profile_whose_shares_cover_its_samples() {
    let recs = records();
    let rows = profile_rows(&recs);
    // 12 cells x 2 sides.
    assert_eq!(rows.len(), 24);
    for r in &recs {
        let p = r
            .profile
            .as_ref()
            .expect("every fixture record is profiled");
        for s in [&p.sender, &p.receiver] {
            let s = s.as_ref().unwrap();
            assert_eq!(s.buckets.len(), BUCKETS.len());
            let samples: u64 = s.buckets.iter().map(|b| b.samples).sum();
            assert_eq!(samples, s.samples, "bucket samples add up to the side's");
            let share: f64 = s.buckets.iter().map(|b| b.share).sum();
            assert!((share - 1.0).abs() < 1e-6, "{share}");
            // Each sample weighs the sampler's clock since the one before: the buckets add up
            // to that clock, less the last partial period (one thread a side here).
            let ns: u64 = s.buckets.iter().map(|b| b.ns).sum();
            assert_eq!(ns, s.sampled_ns);
            let clock = s.sampler_clock_ns.expect("the sampler's clock");
            assert!(
                clock >= ns && clock - ns <= 2_000_000,
                "buckets {ns} ns against the sampler's clock {clock}"
            );
            // The scheduler's clock differs by the context switches (perf's clock stops for
            // them) and interrupts (the scheduler charges them to no task): with both sides
            // on one CPU, by up to a third here.
            let task = s.task_clock_ns.expect("the task clock was counted") as f64;
            let r = ns as f64 / task;
            assert!(
                (0.5..1.5).contains(&r),
                "sampled {ns} against task clock {task}"
            );
            assert!(!s.top.is_empty());
        }
    }
}

#[test]
fn the_copy_buckets_order_a1_a2_a3_at_64k() {
    let rows = profile_rows(&records());
    for batch in ["1", "256K"] {
        let s = |m| side(&rows, &key(m, 65536, batch), "sender");
        let (a1, a2, a3) = (s("a1"), s("a2"), s("a3"));
        // Per byte, A1's two copies cost more than A2's one at any batch; as a share of the
        // sender's CPU too at one message per send (batched, A1's sender spends more of
        // its time elsewhere: the receive path that runs in its softirq on loopback).
        let ns = |r: &ProfileRow| r.ns_of("copy_user") + r.ns_of("copy_kernel");
        assert!(
            ns(a1) > ns(a2),
            "batch {batch}: A1 copies more per byte than A2"
        );
        let share = |r: &ProfileRow| r.share_of("copy_user") + r.share_of("copy_kernel");
        assert!(
            batch != "1" || share(a1) > share(a2),
            "A1's copies a larger share"
        );
        assert!(a2.share_of("copy_user") < 0.02, "A2 stages nothing");
        assert!(a1.share_of("copy_user") > 0.05, "A1 stages every message");
        assert!(a3.share_of("copy_deferred") > 0.0 && a3.share_of("zerocopy") > 0.0);
        assert!(a2.share_of("copy_deferred") < 0.005 && a2.share_of("zerocopy") < 0.005);
        assert!(a3.share_of("copy_kernel") < a2.share_of("copy_kernel"));
    }
}

#[test]
fn where_the_cpu_goes_has_both_sides_bars_and_every_cell_in_its_table() {
    let (md, out) = report("profile_where");
    let s = section(&md, "Where the CPU goes");
    for side in ["sender", "receiver"] {
        let png = format!("plots/profile_{side}.png");
        assert!(s.iter().any(|l| l.contains(&png)), "{png} linked");
        let bytes = std::fs::read(out.join(&png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{png} is a PNG");
        assert!(out.join(format!("plots/profile_{side}.svg")).exists());
    }
    let rows = profile_rows(&records());
    let table: Vec<&&str> = s.iter().filter(|l| l.starts_with("| A")).collect();
    assert_eq!(table.len(), rows.len(), "one table row per cell and side");
    // The copy_user column of A1's 64 KiB sender is the record's median share.
    let a1 = side(&rows, &key("a1", 65536, "1"), "sender");
    let line = table
        .iter()
        .find(|l| l.starts_with("| A1 threads 65536 B, batch 1 | sender |"))
        .unwrap();
    let cols: Vec<&str> = line.split('|').map(str::trim).collect();
    assert_eq!(
        cols[4],
        format!("{:.1}", a1.share_of("copy_user") * 100.0),
        "{line}"
    );
    assert!(s.iter().any(|l| l.contains("`memcpy` (copy_user)")));
}

#[test]
fn why_zero_copy_weighs_what_a3_saved_against_what_it_paid() {
    let (md, _) = report("profile_zerocopy");
    let s = section(&md, "Why zero-copy is not always best");
    let rows = profile_rows(&records());
    let both = |k: &CellKey, b: &str| {
        ["sender", "receiver"]
            .iter()
            .map(|x| side(&rows, k, x).ns_of(b))
            .sum::<f64>()
    };
    let mut checked = 0;
    for batch in ["1", "256K"] {
        for size in [1024u64, 65536] {
            let (k2, k3) = (key("a2", size, batch), key("a3", size, batch));
            let a2 = both(&k2, "copy_user") + both(&k2, "copy_kernel") + both(&k2, "copy_deferred");
            let a3 = both(&k3, "copy_user") + both(&k3, "copy_kernel");
            let paid = both(&k3, "zerocopy") + both(&k3, "copy_deferred");
            let prefix = format!("| threads | {batch} | 1 | {size} |");
            let line = s
                .iter()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("no row {prefix}"));
            let cols: Vec<&str> = line.split('|').map(str::trim).collect();
            let num = |i: usize| cols[i].parse::<f64>().unwrap();
            // 3 significant figures in the table.
            let near = |x: f64, y: f64| (x - y).abs() <= 0.006 * x.abs().max(y.abs()) + 1e-3;
            assert!(near(num(5), a2), "{line}: A2 copies {a2}");
            assert!(near(num(7), a2 - a3), "{line}: saved {}", a2 - a3);
            assert!(near(num(10), paid), "{line}: paid {paid}");
            assert!(cols[12].contains("x, 90% CI"), "{line}");
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
    // One sentence per (engine, batch, flows) says where the trade turns, or that it does not.
    let said = s
        .iter()
        .filter(|l| l.starts_with("- threads, batch "))
        .count();
    assert_eq!(said, 2);
}

#[test]
fn which_cache_level_names_the_missing_counters_and_compares_copies_with_memcpy() {
    let (md, _) = report("profile_cache");
    let s = section(&md, "Which cache level the copies hurt").join("\n");
    for c in [
        "cycles",
        "cache_misses",
        "l1d_load_misses",
        "llc_load_misses",
    ] {
        assert!(s.contains(c), "names {c} as missing");
    }
    let recs = records();
    let rows = profile_rows(&recs);
    for size in [1024u64, 65536] {
        let a1 = side(&rows, &key("a1", size, "1"), "sender");
        let memcpy = a1.memcpy_ns_per_byte.expect("the fixture measured memcpy");
        let line = s
            .lines()
            .find(|l| l.starts_with(&format!("| {size} (threads, batch 1) |")))
            .unwrap_or_else(|| panic!("no row for {size}"));
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(
            cols[4],
            format!("{:.1}x", a1.ns_of("copy_user") / memcpy),
            "{line}"
        );
    }
    // Without a profile the section still says what is missing, and that --profile stands in.
    let plain = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/loopback_threads.jsonl");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("profile_cache_plain");
    let _ = std::fs::remove_dir_all(&out);
    render_report(&plain, &out).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let s = section(&md, "Which cache level the copies hurt").join("\n");
    assert!(s.contains("Without `--profile`"), "{s}");
    assert!(s.contains("sendpath sweep --preset why"), "{s}");
    assert!(!md.contains("## Where the CPU goes"));
    // The zero-copy "why" says where its answer is.
    let zc = section(&md, "Why zero-copy is not always best").join("\n");
    assert!(
        zc.contains("no CPU profile") && zc.contains("--preset why"),
        "{zc}"
    );
}

#[test]
fn what_was_unexpected_lists_each_surprise_with_its_interval() {
    let (md, _) = report("profile_unexpected");
    let s = section(&md, "What was unexpected");
    // On loopback A3 loses to A2 in this fixture at every size and batch: the deferred copy.
    let zc = s
        .iter()
        .position(|l| l.starts_with("Zero-copy slower than the copy it replaces"))
        .unwrap();
    assert!(s[zc].ends_with("4 cells."), "{}", s[zc]);
    let items: Vec<&&str> = s[zc + 1..]
        .iter()
        .skip_while(|l| l.is_empty())
        .take_while(|l| l.starts_with("- "))
        .collect();
    assert_eq!(items.len(), 4);
    for i in &items {
        assert!(i.starts_with("- A3 threads "), "{i}");
        assert!(i.contains("x, 90% CI"), "{i}");
        assert!(i.contains("copying the pinned pages after all"), "{i}");
    }
    for kind in [
        "One copy slower than two (A2 against A1)",
        "More flows, less total throughput",
        "Batching that did not help",
    ] {
        assert!(s.iter().any(|l| l.starts_with(kind)), "{kind}");
    }
}

#[test]
fn the_jq_recipe_prints_each_records_buckets() {
    if Command::new("jq").arg("--version").output().is_err() {
        sendpath_record::testing::skip(
            sendpath_record::testing::Skip::MissingTool,
            "jq is not installed (apt-get install -y jq)",
        );
        return;
    }
    let out = Command::new("jq")
        .arg("-r")
        .arg("-f")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("jq/profile_buckets.jq"))
        .arg(fixture())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let recs = records();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2 * recs.len(), "a line per record and side");
    for l in &lines {
        assert_eq!(l.len(), 8 + BUCKETS.len());
        let r = recs
            .iter()
            .find(|r| {
                r.spec.mode.as_str() == l[0]
                    && r.spec.batch.map_or("1".into(), |b| b.label()) == l[2]
                    && r.spec.msg_size_bytes.to_string() == l[3]
                    && r.spec.rep.to_string() == l[5]
            })
            .unwrap_or_else(|| panic!("no record for {l:?}"));
        let p = r.profile.as_ref().unwrap();
        let s = if l[6] == "sender" {
            &p.sender
        } else {
            &p.receiver
        };
        let s = s.as_ref().unwrap();
        for (i, b) in s.buckets.iter().enumerate() {
            let pct: f64 = l[8 + i].parse().unwrap();
            assert!((pct - b.share * 100.0).abs() <= 0.051, "{} {pct}", b.bucket);
        }
        let ns: f64 = l[7].parse().unwrap();
        let want: f64 = s.buckets.iter().filter_map(|b| b.ns_per_byte).sum();
        assert!((ns - want).abs() <= 1e-9 * want.max(1.0), "{ns} {want}");
    }
}
