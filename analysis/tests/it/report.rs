//! Golden and end-to-end tests of the analysis on committed fixtures of real records.
//!
//! `fixtures/loopback_threads.jsonl`: 36 real records (A1/A2/A3 x 64/1024/16384 B x 1/2 flows
//! x 2 reps, threads engine, loopback, this repository's harness, 0.3 s windows), with the
//! histogram blobs blanked to keep the file small. `fixtures/hw_counters.jsonl`: the one-flow
//! records of the same run, edited as a CPU with a PMU would report them (cycles, misses,
//! empty `unsupported`, derived fields recomputed). Set `UPDATE_GOLDEN=1` to rewrite
//! `golden/*` after an intended change, and review the diff.

use sendpath_analysis::derive::{to_csv, BatchKey, CellKey, EngineKey, Metric, PatternKey};
use sendpath_analysis::summary::analyze;
use sendpath_analysis::{parse_records, render_report, Crossover};
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

pub fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compares `actual` with the committed `tests/golden/<name>`, byte for byte, naming the first
/// line that differs; `UPDATE_GOLDEN=1` rewrites it instead. (Hand-written: a golden-file crate
/// would do the same for ~10 s more of CI build.)
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    if let Some((i, (e, a))) = expected
        .lines()
        .zip(actual.lines())
        .enumerate()
        .find(|(_, (e, a))| e != a)
    {
        panic!(
            "{} differs at line {}:\n expected: {e}\n   actual: {a}\n(UPDATE_GOLDEN=1 rewrites it if the change is intended)",
            path.display(),
            i + 1
        );
    }
    assert_eq!(expected, actual, "{} differs in length", path.display());
}

/// Writes `recs` as a results file and renders its report; returns what was written and the
/// report's directory.
pub fn render_records(
    recs: &[sendpath_record::v1::Record],
    name: &str,
) -> (sendpath_analysis::ReportSummary, PathBuf) {
    let dir = out_dir(name);
    let input = dir.join("results.jsonl");
    let lines: Vec<String> = recs
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out = dir.join("out");
    (render_report(&input, &out).unwrap(), out)
}

pub fn key(mode: &str, size: u64, flows: u64) -> CellKey {
    CellKey {
        pattern: "stream".parse().unwrap(),
        batch: "1".parse().unwrap(),
        flows,
        msg_size_bytes: size,
        engine: "threads".parse().unwrap(),
        mode: mode.parse().unwrap(),
    }
}

/// The raw values of a field for one cell, straight from the JSON (independent of the crate).
pub fn raw(
    text: &str,
    mode: &str,
    size: u64,
    flows: u64,
    get: fn(&serde_json::Value) -> f64,
) -> Vec<f64> {
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| {
            v["spec"]["mode"] == mode
                && v["spec"]["msg_size_bytes"] == size
                && v["spec"]["flows"] == flows
        })
        .map(|v| get(&v))
        .collect()
}

#[test]
fn derived_table_matches_golden_and_the_raw_records() {
    let text = read("loopback_threads.jsonl");
    let recs = parse_records(&text).unwrap();
    assert_eq!(recs.records.len(), 36);
    assert!(recs.warnings.is_empty());
    let a = analyze(&recs.records, &recs.warnings);
    assert_eq!(a.table.rows.len(), 18);
    assert!(a.table.failed.is_empty());
    golden("loopback_threads.derived.csv", &to_csv(&a.table));

    // Independent check of a few cells: median of two reps = their mean; min/max/range.
    for (mode, size, flows) in [("a1", 64, 1), ("a2", 1024, 2), ("a3", 16384, 1)] {
        let row = a.table.row(&key(mode, size, flows)).unwrap();
        assert_eq!(row.reps, 2);
        let g = raw(&text, mode, size, flows, |v| {
            v["throughput"]["gbps"].as_f64().unwrap()
        });
        let s = row.get(Metric::Gbps).unwrap();
        assert_eq!(s.median, (g[0] + g[1]) / 2.0);
        assert_eq!(s.min, g[0].min(g[1]));
        assert_eq!(s.max, g[0].max(g[1]));
        assert_eq!(s.rel_range, (s.max - s.min) / s.median);
        let p99 = raw(&text, mode, size, flows, |v| {
            v["latency_ns"]["p99"].as_f64().unwrap()
        });
        assert_eq!(
            row.median(Metric::LatencyP99Ns),
            Some((p99[0] + p99[1]) / 2.0)
        );
        let cpu = raw(&text, mode, size, flows, |v| {
            v["derived"]["receiver_cpu_ns_per_byte"].as_f64().unwrap()
        });
        assert_eq!(
            row.median(Metric::ReceiverCpuNsPerByte),
            Some((cpu[0] + cpu[1]) / 2.0)
        );
        // No hardware counters in this VM: no cycles, no misses.
        assert!(row.get(Metric::SenderCyclesPerByte).is_none());
        assert!(row.get(Metric::LlcMissesPerGb).is_none());
    }
    // Zero-copy fraction only for A3, and every completion was copied on loopback.
    assert_eq!(
        a.table
            .row(&key("a3", 64, 2))
            .unwrap()
            .median(Metric::ZcCopiedFraction),
        Some(1.0)
    );
    assert!(a
        .table
        .row(&key("a1", 64, 2))
        .unwrap()
        .get(Metric::ZcCopiedFraction)
        .is_none());
    // Noisy cells are the ones whose throughput or CPU per byte range exceeds 10%.
    assert!(a
        .table
        .noisy
        .iter()
        .any(|n| n.key == key("a1", 16384, 1) && n.metric == Metric::Gbps));
    assert!(!a
        .table
        .noisy
        .iter()
        .any(|n| n.key == key("a1", 64, 2) && n.metric == Metric::Gbps));
}

fn xo<'a>(c: &'a [Crossover], ch: &str, flows: u64) -> &'a Crossover {
    c.iter()
        .find(|c| c.challenger == ch && c.flows == flows && c.engine == EngineKey::THREADS)
        .unwrap()
}

#[test]
fn crossover_table_is_exactly_as_expected() {
    let recs = parse_records(&read("loopback_threads.jsonl")).unwrap();
    let a = analyze(&recs.records, &[]);
    let c = &a.crossovers;
    assert_eq!(c.len(), 4, "{c:#?}");
    let sizes = vec![64, 1024, 16384];
    // 1 flow: A2 is clearly above A1 only at 16 KiB (both of its reps above both of A1's);
    // A3 never.
    let a2 = xo(c, "a2", 1);
    assert_eq!(a2.sizes_compared, sizes);
    assert_eq!(a2.first_win_bytes, Some(16384));
    assert!(a2.loses_above.is_empty() && a2.unclear.is_empty());
    let r = a2.ratio_at_first_win.unwrap();
    assert!((1.40..1.42).contains(&r.ratio) && r.lo > 1.0, "{r:?}");
    assert_eq!(xo(c, "a3", 1).first_win_bytes, None);
    // 2 flows: A2's median is above A1's at 1 KiB, but its reps overlap A1's: no clear win.
    let a2 = xo(c, "a2", 2);
    assert_eq!(a2.first_win_bytes, None);
    assert_eq!(a2.unclear, vec![1024]);
    assert_eq!(
        sendpath_analysis::report::crossover_text(a2),
        "no clear win (64..16384 B; ahead within the noise at 1024 B)"
    );
    assert_eq!(
        sendpath_analysis::report::crossover_text(xo(c, "a3", 2)),
        "no clear win (64..16384 B)"
    );
    assert!(sendpath_analysis::report::crossover_text(xo(c, "a2", 1))
        .starts_with("16384 B (1.41x, 90% CI 1.12-1.88)"));
}

#[test]
fn full_report_from_real_records() {
    let out = out_dir("report_loopback");
    let s = render_report(&fixture("loopback_threads.jsonl"), &out).unwrap();
    assert_eq!((s.records, s.cells, s.failed), (36, 18, 0));
    for p in [
        &s.derived_csv,
        &s.derived_json,
        &s.report_md,
        &s.report_html,
    ] {
        assert!(p.exists(), "{}", p.display());
    }
    let md = std::fs::read_to_string(&s.report_md).unwrap();
    // Zero-copy: the copied fraction, with the loopback explanation.
    assert!(md.contains("overall copied fraction of 1.0000"), "{md}");
    assert!(md.contains("Zero-copy was not achieved"));
    assert!(md.contains("These records ran on loopback"));
    // Crossover table in the report.
    assert!(
        md.contains(
            "| stream | 1 | threads | 2 | no clear win (64..16384 B; ahead within the noise at 1024 B) | no clear win (64..16384 B) |"
        ),
        "{md}"
    );
    // Counters: what was unavailable and what stands in.
    assert!(md.contains("cycles in 36 of 36 records"));
    assert!(md.contains("What stands in: CPU ns per byte"));
    // Flows.
    assert!(md.contains("From 1 to 2 flows, median throughput rose in"));
    // Noisy cells are named.
    assert!(md.contains("Noisy: "));
    assert!(md.contains("No failed cells."));
    // Plots: no hardware-counter plots without counters.
    let names: Vec<String> = s
        .plots
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "gbps_stream_batch1_flows1.png",
        "gbps_stream_batch1_flows2.svg",
        "latency_p50_ns_stream_batch1_flows1.png",
        "latency_p99_ns_stream_batch1_flows2.png",
        "sender_cpu_ns_per_byte_stream_batch1_flows1.png",
        "context_switches_per_s_stream_batch1_flows2.png",
        "zc_copied_fraction_stream_batch1_flows1.png",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert!(!names
        .iter()
        .any(|n| n.contains("cycles") || n.contains("misses")));
    // The HTML is self-contained: every plot inline, nothing loaded from elsewhere.
    let html = std::fs::read_to_string(&s.report_html).unwrap();
    // (Two of them shown twice: beside the key findings, and among all plots.)
    assert_eq!(html.matches("<svg").count(), s.plots.len() / 2 + 2);
    assert!(!html.contains("<img") && !html.contains("src="));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&s.derived_json).unwrap()).unwrap();
    assert_eq!(json["schema"], "sendpath-derived/v1");
    assert_eq!(json["table"]["rows"].as_array().unwrap().len(), 18);
    assert_eq!(json["crossovers"].as_array().unwrap().len(), 4);
}

#[test]
fn hardware_counters_give_cycles_and_miss_plots() {
    let out = out_dir("report_hw");
    let s = render_report(&fixture("hw_counters.jsonl"), &out).unwrap();
    let names: Vec<String> = s
        .plots
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "sender_cycles_per_byte_stream_batch1_flows1.png",
        "receiver_cycles_per_byte_stream_batch1_flows1.svg",
        "cache_misses_per_gb_stream_batch1_flows1.png",
        "l1d_misses_per_gb_stream_batch1_flows1.png",
        "llc_misses_per_gb_stream_batch1_flows1.png",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    let recs = parse_records(&read("hw_counters.jsonl")).unwrap();
    let a = analyze(&recs.records, &[]);
    let row = a.table.row(&key("a1", 1024, 1)).unwrap();
    let cyc = raw(&read("hw_counters.jsonl"), "a1", 1024, 1, |v| {
        v["derived"]["sender_cycles_per_byte"].as_f64().unwrap()
    });
    assert_eq!(
        row.median(Metric::SenderCyclesPerByte),
        Some((cyc[0] + cyc[1]) / 2.0)
    );
    assert!(
        a.counters.unsupported.is_empty(),
        "{:?}",
        a.counters.unsupported
    );
    let md = std::fs::read_to_string(&s.report_md).unwrap();
    assert!(md.contains("Hardware counters were present"));
    assert!(md.contains("no counter was unsupported or null."));
    let csv = std::fs::read_to_string(&s.derived_csv).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "llc_misses_per_gb_median")
        .unwrap();
    assert!(csv
        .lines()
        .skip(1)
        .all(|l| !l.split(',').nth(col).unwrap().is_empty()));
}

#[test]
fn plots_are_non_trivial_png_and_svg() {
    let out = out_dir("report_plots");
    let s = render_report(&fixture("loopback_threads.jsonl"), &out).unwrap();
    let png_path = out.join("plots/gbps_stream_batch1_flows2.png");
    let dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(
        (info.width, info.height),
        (
            sendpath_analysis::plot::WIDTH,
            sendpath_analysis::plot::HEIGHT
        )
    );
    let px = &buf[..info.buffer_size()];
    let distinct: std::collections::BTreeSet<&[u8]> = px.chunks(3).collect();
    assert!(distinct.len() > 20, "only {} colours", distinct.len());
    let white = px.chunks(3).filter(|c| *c == [255, 255, 255]).count();
    let total = px.len() / 3;
    assert!(
        white < total * 98 / 100 && white > total / 2,
        "{white} of {total} white"
    );
    // Mode colours are drawn: A1 blue, A2 orange, A3 green.
    for rgb in [[31u8, 119, 180], [255, 127, 14], [44, 160, 44]] {
        assert!(px.chunks(3).any(|c| c == rgb), "{rgb:?} missing");
    }
    let svg = std::fs::read_to_string(out.join("plots/gbps_stream_batch1_flows2.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"));
    assert!(svg.contains("A2 sendmsg, threads"));
    assert!(svg.contains("throughput (Gbit/s)"));
    assert!(svg.contains("16 KiB"));
    assert!(svg.len() > 5000);
    assert!(s
        .plots
        .iter()
        .all(|p| std::fs::metadata(p).unwrap().len() > 2000));
}

/// Records as later versions of the harness will write them: a uring engine with io_uring
/// tunables in `spec`, an `rr` pattern with round-trip latency, fields this build does not
/// know. They group by (mode, engine, pattern, size, flows) and nothing breaks.
#[test]
fn new_engines_patterns_and_unknown_fields_group_cleanly() {
    let text = read("loopback_threads.jsonl");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for l in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["spec"]["engine"] = "uring".into();
        v["spec"]["batch"] = "1".into();
        v["spec"]["sq_entries"] = 256.into();
        v["spec"]["sends_in_flight"] = 4.into();
        v["uring_stats"] = serde_json::json!({"sqes": 1, "cqes": 1});
        let g = v["throughput"]["gbps"].as_f64().unwrap();
        v["throughput"]["gbps"] = (g * 1.2).into();
        lines.push(v.to_string());
        if v["spec"]["flows"] == 1 {
            v["spec"]["engine"] = "threads".into();
            v["spec"]["pattern"] = "rr".into();
            v["latency_ns"]["kind"] = "round_trip".into();
            lines.push(v.to_string());
        }
    }
    let dir = out_dir("report_engines");
    let input = dir.join("results.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let s = render_report(&input, &dir.join("out")).unwrap();
    assert_eq!(s.records, 36 + 36 + 18);
    assert_eq!(s.cells, 18 + 18 + 9);
    let recs = parse_records(&std::fs::read_to_string(&input).unwrap()).unwrap();
    let a = analyze(&recs.records, &[]);
    // Crossovers per (pattern, engine, flows): stream x {threads, uring} x {1, 2} + rr x threads x 1.
    assert_eq!(a.crossovers.len(), 2 * 5);
    assert!(a
        .crossovers
        .iter()
        .any(|c| c.engine.to_string() == "uring" && c.flows == 2 && c.challenger == "a3"));
    let rr = a
        .table
        .rows
        .iter()
        .find(|r| r.key.pattern == PatternKey::RR)
        .unwrap();
    assert_eq!(rr.latency_kind.as_deref(), Some("round_trip"));
    let svg = std::fs::read_to_string(dir.join("out/plots/gbps_stream_batch1_flows2.svg")).unwrap();
    assert!(svg.contains("A1 copy+send, uring") && svg.contains("A1 copy+send, threads"));
    assert!(dir.join("out/plots/gbps_rr_batch1_flows1.png").exists());
    let md = std::fs::read_to_string(&s.report_md).unwrap();
    assert!(md.contains("| rr | 1 | threads | 1 |"));
    assert!(md.contains("Latency kind: one_way, round_trip"));
}

#[test]
fn uring_orderings_are_named_and_kept_apart() {
    // The fixture's stream records as io_uring cells with the default orderings (bundle for
    // A1/A2, coalesce for A3, carrying 512 messages per zero-copy send), plus A1 once more
    // sent as linked chains: a separate cell.
    let text = read("loopback_threads.jsonl");
    let mut lines = Vec::new();
    for l in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        let mode = v["spec"]["mode"].as_str().unwrap().to_string();
        let ordering = if mode == "a3" { "coalesce" } else { "bundle" };
        if mode == "a3" {
            v["zerocopy"]["messages"] = 51200.into();
            v["zerocopy"]["messages_per_send"] = 512.0.into();
        }
        v["spec"]["engine"] = "uring".into();
        v["spec"]["uring"] = serde_json::json!({
            "depth": 32, "batch": 32, "ordering": ordering,
            "setup_flags": ["single_issuer"], "registered_ring_fd": true
        });
        lines.push(v.to_string());
        if mode == "a1" {
            v["spec"]["uring"]["ordering"] = "link".into();
            lines.push(v.to_string());
        }
    }
    let dir = out_dir("report_orderings");
    let input = dir.join("results.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let s = render_report(&input, &dir.join("out")).unwrap();
    assert_eq!(s.records, 36 + 12);
    assert_eq!(s.cells, 18 + 6, "A1 linked chains are cells of their own");
    let recs = parse_records(&std::fs::read_to_string(&input).unwrap()).unwrap();
    let a = analyze(&recs.records, &[]);
    let engines: std::collections::BTreeSet<String> = a
        .table
        .rows
        .iter()
        .map(|r| r.key.engine.to_string())
        .collect();
    assert_eq!(engines, ["uring", "uring+link"].map(String::from).into());
    let md = std::fs::read_to_string(&s.report_md).unwrap();
    assert!(
        md.contains("kept each flow in order by: A1 bundle, A1 link, A2 bundle, A3 coalesce."),
        "{md}"
    );
    // Records from before the batch axis: their io_uring streams batched on their own, and
    // are compared only with each other, named as such.
    assert!(
        a.crossovers.iter().all(|c| c.batch == BatchKey::Auto),
        "{:?}",
        a.crossovers
    );
    assert!(md.contains("| stream | auto | uring | 1 |"), "{md}");
    assert!(
        md.contains("Messages per zero-copy send (median per size): uring: 512 at 64 B"),
        "{md}"
    );
    assert_eq!(a.zerocopy.coalescing_engines().len(), 1);
}

#[test]
fn a3_on_threads_has_no_batching_note() {
    let recs = parse_records(&read("loopback_threads.jsonl")).unwrap();
    let a = analyze(&recs.records, &[]);
    assert!(a.zerocopy.coalescing_engines().is_empty());
    assert!(
        a.zerocopy.batching.is_empty(),
        "old records carry no messages_per_send"
    );
}

#[test]
fn placement_is_counted_and_compared_from_the_records() {
    let text = read("loopback_threads.jsonl");
    let mut recs = parse_records(&text).unwrap().records;
    // The fixture predates `cpus`: nothing is known, and the report says nothing.
    assert_eq!(
        sendpath_analysis::summary::placement_summary(&recs).known,
        0
    );
    // Make the two reps of one cell differ: rep 0 shares CPU 0, rep 1 runs apart.
    for r in recs.iter_mut() {
        r.sender.cpus = vec![0];
        r.receiver.cpus = vec![if r.spec.rep == 0 { 0 } else { 1 }];
    }
    let p = sendpath_analysis::summary::placement_summary(&recs);
    assert_eq!(p.known, recs.len());
    assert_eq!(p.shared, recs.iter().filter(|r| r.spec.rep == 0).count());
    assert_eq!(p.mixed.len(), 18, "every cell has one rep each way");
    let (cell, shared, apart) = &p.mixed[0];
    let reps: Vec<&sendpath_record::v1::Record> = recs
        .iter()
        .filter(|r| sendpath_analysis::derive::CellKey::of(r).to_string() == *cell)
        .collect();
    let g = |rep: u64| {
        reps.iter()
            .find(|r| r.spec.rep == rep)
            .unwrap()
            .throughput
            .gbps
    };
    assert_eq!((*shared, *apart), (g(0), g(1)));
    assert_eq!(p.pinned, 0);
    let md = |recs: &[sendpath_record::v1::Record], name: &str| {
        std::fs::read_to_string(render_records(recs, name).0.report_md).unwrap()
    };
    assert!(md(&recs, "placement_unpinned").contains("0 of them pinned; the others unpinned"));
    // Pinned together, as the quick preset runs: the report says it was asked for.
    for r in recs.iter_mut() {
        r.receiver.cpus = vec![0];
        r.spec.pin = Some(sendpath_record::v1::PinV1 {
            sender: vec![0],
            receiver: vec![0],
        });
        r.spec.placement = Some(sendpath_record::Placement::Together);
    }
    let p = sendpath_analysis::summary::placement_summary(&recs);
    assert_eq!((p.pinned, p.shared), (recs.len(), recs.len()));
    let text = md(&recs, "placement_together");
    assert!(
        text.contains("Every ok record ran pinned (placement together (0:0)): in 36 of 36"),
        "{}",
        text.lines()
            .find(|l| l.contains("pinned"))
            .unwrap_or("no line")
    );
}

#[test]
fn findings_json_from_committed_records_matches_its_golden_file() {
    let out = out_dir("report_findings");
    let s = render_report(&fixture("loopback_threads.jsonl"), &out).unwrap();
    let json = std::fs::read_to_string(&s.findings_json).unwrap();
    golden("loopback_threads.findings.json", &json);
    let f: sendpath_analysis::findings::Findings = serde_json::from_str(&json).unwrap();
    assert_eq!(f.schema, "sendpath-findings/v1");
    assert_eq!(f.crossovers.len(), 4);
    assert_eq!(f.zerocopy.as_deref(), Some("not_achieved"));
    assert!(f
        .sentences
        .iter()
        .any(|s| s.contains("A2 beats A1 from 16384 B")));
    let md = std::fs::read_to_string(&s.report_md).unwrap();
    let key = md.find("## Key findings").expect("a key findings section");
    assert!(
        key < md.find("## Where A2 and A3 beat A1").unwrap(),
        "the report leads with its findings"
    );
    assert_eq!(s.key_findings, f.sentences);
}

#[test]
fn compare_names_the_cells_and_findings_that_differ() {
    let text = read("loopback_threads.jsonl");
    let a = parse_records(&text).unwrap().records;
    // B: the same run with A2 at 1 KiB 1.5x faster in every repetition.
    let b: Vec<_> = a
        .iter()
        .cloned()
        .map(|mut r| {
            if r.spec.mode == sendpath_record::Mode::A2 && r.spec.msg_size_bytes == 1024 {
                r.throughput.gbps *= 1.5;
            }
            r
        })
        .collect();
    let c = sendpath_analysis::compare::compare(&a, &b);
    assert_eq!(c.cells.len(), 18);
    let differs: Vec<String> = c
        .cells
        .iter()
        .filter(|x| x.differs())
        .map(|x| x.key.to_string())
        .collect();
    assert!(!differs.is_empty(), "{c:?}");
    assert!(
        differs.iter().all(|k| k.starts_with("A2 threads 1024 B")),
        "{differs:?}"
    );
    assert!(c.findings_agree.0 < c.findings_agree.1, "{c:?}");
    assert!(c
        .findings_differ
        .iter()
        .any(|(k, _, b)| k.starts_with("A2 beats A1 from") && b == "1024 B"));
    let same = sendpath_analysis::compare::compare(&a, &a);
    assert!(same.cells.iter().all(|x| !x.differs()));
    assert_eq!(same.findings_agree.0, same.findings_agree.1);
    let out = sendpath_analysis::compare::text(&c, "a", "b");
    assert!(
        out.contains(&format!(
            "{} of 18 cells differ beyond the noise",
            differs.len()
        )),
        "{out}"
    );
    assert_eq!(c.host_probe_ns, None, "the fixture predates the probe");
    assert!(!out.contains("host speed"), "{out}");

    // With probes: B's host took 1.25x as long for the same loop, so it ran at 0.80x A's.
    let probed = |rs: &[sendpath_record::v1::Record], ns: u64| -> Vec<_> {
        rs.iter()
            .cloned()
            .map(|mut r| {
                r.host_speed = Some(sendpath_record::v1::HostSpeedV1 {
                    probe: "alu6x500k-best3".into(),
                    cpu: Some(0),
                    before_ns: ns,
                    after_ns: ns,
                });
                r
            })
            .collect()
    };
    let c = sendpath_analysis::compare::compare(&probed(&a, 1_000_000), &probed(&b, 1_250_000));
    assert_eq!(c.host_probe_ns, Some((1e6, 1.25e6)));
    let out = sendpath_analysis::compare::text(&c, "a", "b");
    assert!(out.contains("B's host ran at 0.80x A's"), "{out}");
}

#[test]
fn the_host_speed_paragraph_says_why_before_the_noisy_table_lists_which() {
    // The fixture's second repetitions, as if run while the host was 1.5x slower: 0.7x the
    // throughput, and a probe that took 1.5x as long.
    let recs: Vec<_> = parse_records(&read("loopback_threads.jsonl"))
        .unwrap()
        .records
        .into_iter()
        .map(|mut r| {
            let slow = r.spec.rep == 1;
            if slow {
                r.throughput.gbps *= 0.7;
            }
            let ns = if slow { 1_500_000 } else { 1_000_000 };
            r.host_speed = Some(sendpath_record::v1::HostSpeedV1 {
                probe: "alu6x500k-best3".into(),
                cpu: Some(0),
                before_ns: ns,
                after_ns: ns,
            });
            r
        })
        .collect();
    let (s, dir) = render_records(&recs, "host_speed_report");
    assert!(s.noisy_cells > 0, "the slow repetitions make cells noisy");
    let md = std::fs::read_to_string(&s.report_md).unwrap();
    let (noisy, host, table) = (
        md.find("Noisy: ").expect("noisy paragraph"),
        md.find("Host speed: ").expect("host speed paragraph"),
        md.find("| cell | metric | median |").expect("noisy table"),
    );
    assert!(noisy < host && host < table, "{noisy} {host} {table}");
    assert!(
        md.contains("ran at 0.67 to 1.00 of its speed in the fastest repetition"),
        "{md}"
    );
    // The plot that shows it sits right after the paragraph, and is written as PNG and SVG.
    let plot = md
        .find("](plots/host_speed.png)")
        .expect("the host-speed plot");
    assert!(host < plot && plot < table, "{host} {plot} {table}");
    for f in ["host_speed.png", "host_speed.svg"] {
        assert!(s.plots.iter().any(|p| p.ends_with(f)), "{f}");
        assert!(std::fs::metadata(dir.join("plots").join(f)).unwrap().len() > 1000);
    }
    let line = s.host_speed.expect("a terminal line");
    assert!(
        line.contains("18 of 36 repetitions more than 10% slower"),
        "{line}"
    );
    // How many repetitions would settle them: a 0.7x-1.0x pair is known to about +-18%, so
    // at least 2 x (18 / 5)^2 = 25 repetitions (more where the fixture's repetitions differ
    // by more), far more than the 2 they have.
    let st = s.settling.expect("a forecast for the noisy cells");
    assert_eq!(st.have, (2, 2));
    assert!(
        st.half >= 25 && st.half <= st.most && st.most <= 200,
        "{st:?}"
    );
    let forecast = format!(
        "about {} repetitions per cell would settle 85% of all the cells (about {} would settle half; they have 2), at least ",
        st.most, st.half
    );
    assert!(md.contains(&forecast), "{md}");
    assert!(
        md.contains(&format!("the same sweep with `--reps {}`.", st.most)),
        "{md}"
    );
    // The fixture's 18 cells x that many repetitions of its warm-up and window.
    let rep_s = recs[0].spec.warmup_s + recs[0].spec.duration_s;
    let minutes = st.minutes.expect("the run's repetition length is known");
    assert!(
        (minutes - (18 * st.most) as f64 * rep_s / 60.0).abs() < 1e-9,
        "{minutes}"
    );
}
