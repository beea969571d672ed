//! The `analysis/jq/` recipes, run with the real `jq` on the committed fixture of real records
//! and checked against the Rust analysis of the same file.
//!
//! jq is a system tool, not a crate: install it with `apt-get install -y jq` (CI does). Without
//! it these tests print why and pass without checking anything.

use sendpath_analysis::derive::{CellKey, Metric};
use sendpath_analysis::{analyze, parse_records};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    root().join("tests/fixtures/loopback_threads.jsonl")
}

/// Runs a recipe; None (with the reason printed) when jq is not installed.
fn jq(args: &[&str], recipe: &str, input: &Path) -> Option<Vec<Vec<String>>> {
    if Command::new("jq").arg("--version").output().is_err() {
        sendpath_record::testing::skip(
            sendpath_record::testing::Skip::MissingTool,
            &format!("jq is not installed (apt-get install -y jq); recipe {recipe} not run"),
        );
        return None;
    }
    let out = Command::new("jq")
        .args(args)
        .arg("-f")
        .arg(root().join("jq").join(recipe))
        .arg(input)
        .output()
        .expect("run jq");
    assert!(
        out.status.success(),
        "jq {recipe}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split('\t').map(String::from).collect())
            .collect(),
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn analysis() -> sendpath_analysis::Analysis {
    let recs = parse_records(&std::fs::read_to_string(fixture()).unwrap()).unwrap();
    analyze(&recs.records, &[])
}

#[test]
fn throughput_by_mode_and_size_matches_the_derived_table() {
    let Some(rows) = jq(&["-rs"], "throughput_by_mode_size.jq", &fixture()) else {
        return;
    };
    assert_eq!(
        rows[0],
        [
            "pattern",
            "batch",
            "engine",
            "flows",
            "msg_size_bytes",
            "mode",
            "reps",
            "median_gbps"
        ]
    );
    let a = analysis();
    assert_eq!(rows.len() - 1, a.table.rows.len());
    for r in &rows[1..] {
        let key = CellKey {
            pattern: r[0].parse().unwrap(),
            batch: r[1].parse().unwrap(),
            engine: r[2].parse().unwrap(),
            flows: r[3].parse().unwrap(),
            msg_size_bytes: r[4].parse().unwrap(),
            mode: r[5].parse().unwrap(),
        };
        let row = a.table.row(&key).unwrap();
        assert_eq!(r[6], row.reps.to_string());
        let g: f64 = r[7].parse().unwrap();
        assert!(close(g, row.median(Metric::Gbps).unwrap()), "{key}: {g}");
    }
}

#[test]
fn best_mode_per_size_is_the_fastest_median() {
    let Some(rows) = jq(&["-rs"], "best_mode_per_size.jq", &fixture()) else {
        return;
    };
    assert_eq!(rows[0][4], "best_mode");
    let got: Vec<(u64, u64, &str)> = rows[1..]
        .iter()
        .map(|r| (r[2].parse().unwrap(), r[3].parse().unwrap(), r[4].as_str()))
        .collect();
    // The same answer as the report's "best mode per size" (medians of the fixture).
    assert_eq!(
        got,
        vec![
            (1, 64, "a1"),
            (1, 1024, "a1"),
            (1, 16384, "a2"),
            (2, 64, "a1"),
            (2, 1024, "a2"),
            (2, 16384, "a1"),
        ]
    );
    let a = analysis();
    for r in &rows[1..] {
        assert_eq!(
            r[1], "1",
            "the fixture's threads records sent a message per call"
        );
        let flows: u64 = r[2].parse().unwrap();
        let size: u64 = r[3].parse().unwrap();
        let best = a
            .table
            .rows
            .iter()
            .filter(|x| x.key.flows == flows && x.key.msg_size_bytes == size)
            .filter_map(|x| x.median(Metric::Gbps))
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(close(r[6].parse().unwrap(), best));
    }
}

#[test]
fn copied_zero_copy_cells_are_every_a3_record_on_loopback() {
    let Some(rows) = jq(&["-r"], "zerocopy_copied.jq", &fixture()) else {
        return;
    };
    // 12 A3 records (3 sizes x 2 flows x 2 reps), every one copied on loopback.
    assert_eq!(rows.len(), 12);
    let total: u64 = rows.iter().map(|r| r[8].parse::<u64>().unwrap()).sum();
    assert_eq!(total, analysis().zerocopy.completions);
    for r in &rows {
        assert_eq!(r[0], "a3");
        assert_eq!(r[6], "loopback");
        assert_eq!(r[7], r[8], "copied == completions");
        assert_eq!(r[9], "1");
        assert_eq!(r[10], "not_achieved");
    }
}
