//! Reports from records that are not all well: failed cells, a torn last line, a wrong
//! schema, nothing at all.

use crate::report::{key, out_dir, raw, read};
use sendpath_analysis::derive::Metric;
use sendpath_analysis::summary::analyze;
use sendpath_analysis::{parse_records, render_report};

#[test]
fn failed_cells_are_listed_not_averaged() {
    let text = read("loopback_threads.jsonl");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // Make A2 1024 B 1 flow rep 1 a failed record, as the harness writes one.
    let i = lines
        .iter()
        .position(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["spec"]["mode"] == "a2"
                && v["spec"]["msg_size_bytes"] == 1024
                && v["spec"]["flows"] == 1
                && v["spec"]["rep"] == 1
        })
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
    v["status"] = "failed".into();
    v["error"] = "flow 0: connection reset by peer".into();
    lines[i] = v.to_string();
    let dir = out_dir("report_failed");
    let input = dir.join("results.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let s = render_report(&input, &dir.join("out")).unwrap();
    assert_eq!(s.failed, 1);
    assert!(s.warnings.iter().any(|w| w.contains(
        "failed: A2 threads 1024 B, 1 flow, stream, batch 1 rep 1: flow 0: connection reset"
    )));
    let recs = parse_records(&lines.join("\n")).unwrap();
    let a = analyze(&recs.records, &[]);
    let row = a.table.row(&key("a2", 1024, 1)).unwrap();
    assert_eq!((row.reps, row.failed_reps), (1, 1));
    let g = raw(&text, "a2", 1024, 1, |v| {
        v["throughput"]["gbps"].as_f64().unwrap()
    });
    assert_eq!(row.median(Metric::Gbps), Some(g[0]));
    let md = std::fs::read_to_string(&s.report_md).unwrap();
    assert!(md.contains("1 repetition failed (not in the medians):"));
    assert!(md.contains("connection reset by peer"));
}

#[test]
fn truncated_last_line_is_skipped_with_a_warning() {
    let text = read("loopback_threads.jsonl");
    let cut = &text[..text.len() - 200]; // a sweep killed mid-write: no final newline
    let recs = parse_records(cut).unwrap();
    assert_eq!(recs.records.len(), 35);
    assert_eq!(recs.warnings.len(), 1);
    assert!(recs.warnings[0].starts_with("line 36: skipped a truncated last record"));
    let dir = out_dir("report_truncated");
    let input = dir.join("results.jsonl");
    std::fs::write(&input, cut).unwrap();
    let s = render_report(&input, &dir.join("out")).unwrap();
    assert_eq!(s.records, 35);
    assert!(s.warnings[0].contains("truncated"));
    let md = std::fs::read_to_string(&s.report_md).unwrap();
    assert!(md.contains("input: line 36: skipped a truncated last record"));
}

#[test]
fn wrong_schema_is_an_error_naming_the_line() {
    let text = read("loopback_threads.jsonl");
    let bad = text.replacen(
        "\"schema\":\"sendpath/v1\"",
        "\"schema\":\"sendpath/v2\"",
        3,
    );
    let bad: Vec<&str> = bad.lines().collect();
    // Keep line 1 and 2 as v1, make line 3 v2.
    let mixed = format!(
        "{}\n{}\n{}\n",
        text.lines().next().unwrap(),
        text.lines().nth(1).unwrap(),
        bad[2]
    );
    let e = parse_records(&mixed).unwrap_err().to_string();
    assert!(e.starts_with("line 3:"), "{e}");
    assert!(e.contains("sendpath/v2"), "{e}");
    let dir = out_dir("report_bad_schema");
    let input = dir.join("results.jsonl");
    std::fs::write(&input, &mixed).unwrap();
    let e = render_report(&input, &dir.join("out"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("results.jsonl: line 3:"), "{e}");
    // A record missing a required v1 field is an error too, not a silent skip.
    let e = parse_records("{\"schema\":\"sendpath/v1\",\"status\":\"ok\"}\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("line 1: not a valid sendpath/v1 record"),
        "{e}"
    );
}

#[test]
fn empty_input_is_an_error() {
    let dir = out_dir("report_empty");
    let input = dir.join("results.jsonl");
    std::fs::write(&input, "").unwrap();
    let e = render_report(&input, &dir.join("out"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no records"), "{e}");
}
