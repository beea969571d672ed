//! `sendpath sweep` through the real binary: exact records, kill + resume, failed cells.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sendpath() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sendpath"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sendpath-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "only whole lines");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("every line is a whole record"))
        .collect()
}

fn cell_key(v: &serde_json::Value) -> String {
    let s = &v["spec"];
    format!(
        "{} {} {} {} {}",
        s["mode"], s["engine"], s["msg_size_bytes"], s["flows"], s["rep"]
    )
}

const TINY: &[&str] = &[
    "sweep",
    "--batch",
    "1",
    "--modes",
    "a1,a2",
    "--engines",
    "threads",
    "--sizes",
    "64,4096",
    "--flows",
    "1,2",
    "--patterns",
    "stream",
    "--duration",
    "0.3",
    "--warmup",
    "0.05",
    "--no-progress",
];

#[test]
fn tiny_sweep_writes_exactly_the_grid_and_valid_records() {
    let dir = tmpdir("tiny");
    let o = sendpath()
        .args(TINY)
        .args(["--reps", "1", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let recs = records(&dir.join("results.jsonl"));
    assert_eq!(recs.len(), 2 * 2 * 2);
    let keys: HashSet<String> = recs.iter().map(cell_key).collect();
    assert_eq!(keys.len(), 8, "every cell once");
    for m in ["a1", "a2"] {
        for size in [64, 4096] {
            for flows in [1, 2] {
                let k = format!("\"{m}\" \"threads\" {size} {flows} 0");
                assert!(keys.contains(&k), "missing {k}");
            }
        }
    }
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/schema/v1.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for r in &recs {
        assert!(validator.is_valid(r), "invalid record {r}");
        assert_eq!(r["status"], "ok", "{}", r["error"]);
        assert!(r["throughput"]["bytes"].as_u64().unwrap() > 0);
        // Software counters count; hardware ones this VM lacks are null and named, never 0.
        assert!(r["sender"]["counters"]["task_clock_ns"].as_u64().unwrap() > 0);
        assert!(r["receiver"]["counters"]["task_clock_ns"].as_u64().unwrap() > 0);
        for side in ["sender", "receiver"] {
            let unsupported: Vec<&str> = r[side]["unsupported"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap())
                .collect();
            for (name, v) in r[side]["counters"].as_object().unwrap() {
                let base = name.trim_end_matches("_ns");
                if v.is_null() {
                    assert!(
                        unsupported.contains(&base),
                        "{name} null but not unsupported"
                    );
                } else {
                    assert!(
                        !unsupported.contains(&base),
                        "{name} counted and unsupported"
                    );
                }
            }
        }
    }
    assert!(
        out.contains("sweep done: 8 repetitions measured (0 failed)"),
        "{out}"
    );
    for r in &recs {
        assert!(r["profile"].is_null(), "the quick preset does not profile");
    }
    // Every repetition probed the host's speed, and the summary says how far it moved.
    for r in &recs {
        let h = &r["host_speed"];
        assert!(h["before_ns"].as_u64().unwrap() > 0 && h["after_ns"].as_u64().unwrap() > 0);
    }
    assert!(
        out.contains("host speed (a probe around each repetition): "),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn kill_midway_then_resume(signal: &str) {
    let dir = tmpdir(&format!("kill{signal}"));
    let mut child = sendpath()
        .args(TINY)
        .args(["--reps", "2", "--out"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let results = dir.join("results.jsonl");
    // Wait until some cells are recorded, then kill it mid-sweep.
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "sweep ended before it was killed"
        );
        if std::fs::read_to_string(&results).map_or(0, |s| s.lines().count()) >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap()
        .success());
    child.wait().unwrap();
    let before = records(&results);
    assert!(
        before.len() >= 3 && before.len() < 16,
        "killed mid-way: {}",
        before.len()
    );
    let done_before: HashSet<String> = before.iter().map(cell_key).collect();
    assert_eq!(done_before.len(), before.len());

    let o = sendpath()
        .args(TINY)
        .args(["--reps", "2", "--resume"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let after = records(&results);
    assert_eq!(after.len(), 16, "grid completed");
    let keys: HashSet<String> = after.iter().map(cell_key).collect();
    assert_eq!(keys.len(), 16, "no cell repeated");
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "finished records untouched"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sigint_mid_sweep_then_resume() {
    kill_midway_then_resume("-INT");
}

#[test]
fn sigkill_mid_sweep_then_resume() {
    kill_midway_then_resume("-KILL");
}

/// One stream cell (A1, 64 B, 1 flow), 0.2 s, two repetitions.
const ONE_CELL_TWO_REPS: &[&str] = &[
    "sweep",
    "--batch",
    "1",
    "--modes",
    "a1",
    "--engines",
    "threads",
    "--sizes",
    "64",
    "--flows",
    "1",
    "--patterns",
    "stream",
    "--duration",
    "0.2",
    "--warmup",
    "0",
    "--reps",
    "2",
    "--no-progress",
];

#[test]
fn resume_cuts_a_torn_last_line() {
    let dir = tmpdir("torn");
    let o = sendpath()
        .args(ONE_CELL_TWO_REPS)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success());
    let results = dir.join("results.jsonl");
    let text = std::fs::read_to_string(&results).unwrap();
    let first_len = text.find('\n').unwrap() + 1;
    // Simulate a crash mid-write of the second record.
    std::fs::write(&results, &text[..first_len + 40]).unwrap();
    let o = sendpath()
        .args(ONE_CELL_TWO_REPS)
        .arg("--resume")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recs = records(&results);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["spec"]["rep"], 0);
    assert_eq!(recs[1]["spec"]["rep"], 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failing_cell_is_recorded_and_the_sweep_finishes() {
    // The test hook makes A3 meet a kernel that refuses SO_ZEROCOPY: its cells fail when they
    // run (bad options are refused before anything runs), A1's succeed.
    let dir = tmpdir("fail");
    let o = sendpath()
        .env("SENDPATH_TEST_NO_SO_ZEROCOPY", "1")
        .args([
            "sweep",
            "--batch",
            "1",
            "--modes",
            "a3,a1",
            "--engines",
            "threads",
            "--sizes",
            "64",
            "--flows",
            "1",
            "--patterns",
            "stream",
        ])
        .args([
            "--duration",
            "0.2",
            "--warmup",
            "0",
            "--reps",
            "1",
            "--no-progress",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "some cells failed");
    let recs = records(&dir.join("results.jsonl"));
    assert_eq!(recs.len(), 2, "the sweep went on after the failed cell");
    let failed = recs.iter().find(|r| r["spec"]["mode"] == "a3").unwrap();
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("SO_ZEROCOPY"));
    let ok = recs.iter().find(|r| r["spec"]["mode"] == "a1").unwrap();
    assert_eq!(ok["status"], "ok");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sweep_bad_axis_is_one_line() {
    let o = sendpath()
        .args(["sweep", "--batch", "1", "--sizes", "64,lots"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.lines().next().unwrap().starts_with("error:"), "{err}");
}

#[test]
fn pattern_axis_sizes_rate_cells_from_the_measured_stream() {
    let dir = tmpdir("patterns");
    let o = sendpath()
        .args([
            "sweep",
            "--batch",
            "1",
            "--modes",
            "a1",
            "--engines",
            "threads",
            "--sizes",
            "1K",
            "--flows",
            "1",
        ])
        .args([
            "--patterns",
            "rate,stream,rr",
            "--rate-fractions",
            "0.25,0.5",
        ])
        .args([
            "--duration",
            "0.3",
            "--warmup",
            "0.05",
            "--reps",
            "1",
            "--no-progress",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recs = records(&dir.join("results.jsonl"));
    let pats: Vec<&str> = recs
        .iter()
        .map(|r| r["spec"]["pattern"].as_str().unwrap())
        .collect();
    assert_eq!(
        pats,
        ["stream", "rr", "rate", "rate"],
        "stream is measured before rate"
    );
    let per_flow = recs[0]["throughput"]["msgs_per_s"].as_f64().unwrap();
    for (r, f) in recs[2..].iter().zip([0.25, 0.5]) {
        assert_eq!(r["status"], "ok", "{}", r["error"]);
        assert_eq!(r["spec"]["rate_fraction_of_stream"], f);
        let asked = r["spec"]["rate_per_flow_per_s"].as_f64().unwrap();
        assert!(
            (asked - f * per_flow).abs() < 1.0,
            "{asked} vs {f} x {per_flow}"
        );
        assert_eq!(r["latency_ns"]["kind"], "one_way_from_intended");
        assert!(r["latency_uncorrected_ns"].is_object());
    }
    assert_eq!(recs[1]["latency_ns"]["kind"], "round_trip");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("rate@25%") && md.contains("rr"),
        "the report keeps the patterns apart"
    );

    // Rate cells without a stream capacity to size them fail clearly; the sweep goes on.
    let dir2 = tmpdir("rate-alone");
    let o = sendpath()
        .args([
            "sweep",
            "--batch",
            "1",
            "--modes",
            "a1",
            "--engines",
            "threads",
            "--sizes",
            "1K",
            "--flows",
            "1",
        ])
        .args([
            "--patterns",
            "rate",
            "--rate-fractions",
            "0.5",
            "--duration",
            "0.2",
        ])
        .args([
            "--warmup",
            "0",
            "--reps",
            "1",
            "--no-progress",
            "--no-report",
            "--out",
        ])
        .arg(&dir2)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let recs = records(&dir2.join("results.jsonl"));
    assert_eq!(recs[0]["status"], "failed");
    assert!(recs[0]["error"]
        .as_str()
        .unwrap()
        .contains("no stream capacity"));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&dir2).ok();
}

/// One `error:` line naming `needle`, exit 2, no panic.
fn assert_refused(o: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(errors[0].contains(needle), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_sweep_input_is_refused_up_front() {
    let dir = tmpdir("bad-input");
    let t = Instant::now();
    let o = sendpath()
        .args([
            "sweep",
            "--batch",
            "1",
            "--sizes",
            "0",
            "--no-progress",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_refused(&o, "--msg-size 0");
    assert!(t.elapsed() < Duration::from_secs(5), "nothing was measured");
    assert!(
        !dir.join("results.jsonl").exists(),
        "no failed records written"
    );
    let o = sendpath()
        .args(["sweep", "--batch", "1", "--no-progress", "--resume"])
        .arg(dir.join("typo"))
        .output()
        .unwrap();
    assert_refused(&o, "no results.jsonl there to resume");
    let o = sendpath()
        .args(["sweep", "--profile", "--no-profile", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_refused(&o, "--no-profile");
    for bad in ["-1", "soon", "inf"] {
        let o = sendpath()
            .args([
                "sweep",
                "--batch",
                "1",
                "--no-progress",
                "--time-limit",
                bad,
                "--out",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        assert_refused(&o, "not a number of seconds");
    }
    let o = sendpath()
        .arg("report")
        .arg(dir.join("missing.jsonl"))
        .output()
        .unwrap();
    assert_refused(&o, "missing.jsonl");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.matches("No such file").count(),
        1,
        "the OS error once: {err}"
    );
}

#[test]
fn a_second_sweep_on_the_same_results_is_refused_naming_the_first() {
    let dir = tmpdir("two-sweeps");
    let args = [
        "sweep",
        "--batch",
        "1",
        "--modes",
        "a1",
        "--engines",
        "threads",
        "--sizes",
        "64",
        "--flows",
        "1",
        "--patterns",
        "stream",
        "--reps",
        "3",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--no-progress",
        "--no-report",
        "--out",
    ];
    let mut first = sendpath()
        .args(args)
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first sweep holds the claim from its start: wait until its lock file names it.
    let lock = dir.join("results.jsonl.lock");
    let t = Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |s| s.trim().is_empty()) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the first sweep never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = sendpath().args(args).arg(&dir).output().unwrap();
    let status = first.wait().unwrap();
    assert_refused(&o, &format!("another sweep (pid {})", first.id()));
    assert!(status.success());
    let recs = records(&dir.join("results.jsonl"));
    assert_eq!(recs.len(), 3, "each cell written once");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stamped_sweep_reports_where_the_time_goes_and_what_tcp_did() {
    let dir = tmpdir("stamped");
    // (A3 streams are stamped in core's tests: on loopback a stamped zero-copy stream now
    // and then waits out a 200 ms retransmission timeout, too long for a 0.2 s cell.)
    let o = sendpath()
        .args([
            "sweep",
            "--batch",
            "1",
            "--modes",
            "a1,a2",
            "--engines",
            "threads,uring",
            "--sizes",
            "1024",
        ])
        .args([
            "--flows",
            "1",
            "--patterns",
            "stream,rr",
            "--duration",
            "0.2",
        ])
        .args([
            "--warmup",
            "0.05",
            "--reps",
            "2",
            "--timestamps",
            "4",
            "--no-progress",
        ])
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let recs = records(&dir.join("results.jsonl"));
    assert_eq!(
        recs.len(),
        16,
        "2 modes x 2 engines x 2 patterns x 2 repetitions"
    );
    // Cells whose stamps joined in some repetition. Known, not understood: under the whole
    // suite's load, now and then a cell's sender gets its ACK stamps but none of its SCHED or
    // driver stamps, so nothing joins; tolerated in one repetition of a cell, and only that way.
    let mut joined = std::collections::BTreeSet::new();
    let cell = |r: &serde_json::Value| {
        let s = &r["spec"];
        format!("{} {} {}", s["mode"], s["engine"], s["pattern"])
    };
    for r in &recs {
        let st = &r["stages"];
        if st["joined"].as_u64().unwrap() > 0 {
            joined.insert(cell(r));
        } else {
            assert!(
                st["user_to_sched_ns"].is_null()
                    && st["send_to_ack_ns"]["count"].as_u64() > Some(0),
                "{}: nothing joined, and not for want of the sender's early stamps: {st}",
                cell(r)
            );
        }
    }
    assert_eq!(
        joined.len(),
        8,
        "every cell joined in a repetition: {joined:?}"
    );
    for r in recs {
        // io_uring streams stamp whole sends: 4 rounded up to a multiple of the depth.
        let every = r["spec"]["timestamps_every"].as_u64().unwrap();
        if r["spec"]["engine"] == "uring" && r["spec"]["pattern"] == "stream" {
            let depth = r["spec"]["uring"]["depth"].as_u64().unwrap();
            assert_eq!(every, 4u64.next_multiple_of(depth), "{}", r["spec"]);
        } else {
            assert_eq!(every, 4);
        }
        assert!(r["tcp"]["per_flow"][0]["bytes_sent"].as_u64().unwrap() > 0);
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for needle in [
        "## Where the time goes",
        "rr threads A2 1024 B x1",
        "plots/stages.png",
        "## What TCP did",
        "of a typical message's one-way time",
    ] {
        assert!(md.contains(needle), "report lacks {needle:?}");
    }
    let png = std::fs::read(dir.join("plots/stages.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 5000);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_batch_axis_runs_streams_at_each_batch_and_compares_at_equal_batch() {
    let dir = tmpdir("batch-axis");
    let o = sendpath()
        .args(["sweep", "--batch", "1,32K", "--modes", "a1,a3"])
        .args([
            "--engines",
            "threads,uring",
            "--sizes",
            "1024",
            "--flows",
            "1",
        ])
        .args([
            "--patterns",
            "stream,rr",
            "--duration",
            "0.2",
            "--warmup",
            "0.05",
        ])
        .args(["--reps", "1", "--no-profile", "--no-progress", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recs: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Streams at both batches, rr at one message per send: (2 + 1) x 2 engines x 2 modes.
    assert_eq!(recs.len(), 12);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", r["error"]);
        assert!(
            r["spec"]["profile_hz"].is_null() && r["profile"].is_null(),
            "--no-profile"
        );
        let (batch, pattern) = (r["spec"]["batch"].as_str().unwrap(), &r["spec"]["pattern"]);
        if pattern == "rr" {
            assert_eq!(batch, "1");
        }
        let want = if batch == "32K" { 32.0 } else { 1.0 };
        let per_call = r["calls"]["messages_per_call"].as_f64().unwrap();
        assert!(
            (per_call / want - 1.0).abs() <= 0.05,
            "{} {} {pattern} {batch}: {per_call} messages per call",
            r["spec"]["mode"],
            r["spec"]["engine"]
        );
    }
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("findings.json")).unwrap()).unwrap();
    let batches: Vec<&str> = f["crossovers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["batch"].as_str().unwrap())
        .collect();
    assert!(batches.contains(&"1") && batches.contains(&"32K"), "{f}");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("batch 32K: messages per send call"),
        "{report}"
    );
    // A bad batch is refused before anything runs.
    let o = sendpath()
        .args(["sweep", "--batch", "1,0", "--out"])
        .arg(dir.join("bad"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error:"));
    assert!(!dir.join("bad").join("results.jsonl").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_why_preset_profiles_every_cell_and_the_report_answers_the_why() {
    let dir = tmpdir("why");
    let o = sendpath()
        .args(["sweep", "--preset", "why", "--engines", "threads"])
        .args(["--sizes", "1K,64K", "--batch", "1", "--reps", "1"])
        // (The preset's own 0.5 s windows: under load an A3 1 KiB sender on threads can sit
        // ~250 ms on a held zero-copy slot, which swallowed a 0.2 s window whole.)
        .args(["--no-progress", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "{:?}: {}{err}",
        o.status,
        String::from_utf8_lossy(&o.stdout)
    );
    let recs = records(&dir.join("results.jsonl"));
    assert_eq!(recs.len(), 3 * 2, "A1-A3 x two sizes");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    if err.contains("warning: no CPU profile") {
        sendpath_core::testing::skip(
            sendpath_core::testing::Skip::NoSampler,
            "this kernel refuses the sampler here; checked that it says so",
        );
        assert_eq!(err.matches("warning: no CPU profile").count(), 1, "{err}");
        assert!(recs.iter().all(|r| r["profile"].is_null()));
        return;
    }
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", r["error"]);
        assert_eq!(r["spec"]["profile_hz"], 1000);
        assert_eq!(r["spec"]["placement"], "unpinned");
        assert!(r["profile"]["memcpy_ns_per_byte"].as_f64().unwrap() > 0.0);
    }
    for section in [
        "## Where the CPU goes",
        "## Why zero-copy is not always best",
        "## Which cache level the copies hurt",
        "## What was unexpected",
    ] {
        assert!(report.contains(section), "{section}:\n{report}");
    }
    // The trade at each size, and the copies against memcpy at each size.
    for size in ["1024", "65536"] {
        assert!(
            report.contains(&format!("| threads | 1 | 1 | {size} |")),
            "{size}:\n{report}"
        );
        assert!(report.contains(&format!("| {size} (threads, batch 1) |")));
    }
    assert!(dir.join("plots/profile_sender.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
