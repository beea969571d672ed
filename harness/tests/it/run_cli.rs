//! `sendpath run` through the real binary.

use std::process::Command;

fn sendpath() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sendpath"))
}

#[test]
fn run_prints_summary_then_record_as_last_line() {
    let dir = std::env::temp_dir().join(format!("sendpath-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("r.jsonl");
    let o = sendpath()
        .args([
            "run",
            "--mode",
            "a2",
            "--msg-size",
            "512",
            "--flows",
            "2",
            "--duration",
            "0.3",
        ])
        .args(["--warmup", "0.1", "--out", out_file.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("throughput"));
    let last = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["spec"]["flows"], 2);
    assert_eq!(v["status"], "ok");
    let file = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(file.lines().count(), 1);
    assert_eq!(file.trim_end(), last, "--out holds the same record");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn run_bad_input_is_one_line_and_exit_2() {
    for args in [
        vec!["run", "--mode", "a9"],
        vec!["run", "--mode", "a1", "--msg-size", "15"],
        vec!["run", "--mode", "a1", "--flows", "0"],
        vec!["run", "--mode", "a1", "--duration", "0"],
        vec!["run", "--mode", "a3", "--zc-slots", "0"],
        vec!["run", "--mode", "a1", "--engine", "gpu"],
        vec![
            "run",
            "--mode",
            "a1",
            "--engine",
            "uring",
            "--uring-depth",
            "0",
        ],
        vec![
            "run",
            "--mode",
            "a1",
            "--engine",
            "uring",
            "--uring-batch",
            "0",
        ],
        vec!["run", "--mode", "a1", "--flows", "2", "--threads", "1"],
        vec!["run", "--mode", "a1", "--engine", "uring", "--threads", "3"],
        vec![
            "run",
            "--mode",
            "a3",
            "--engine",
            "uring",
            "--uring-ordering",
            "bundle",
        ],
        vec![
            "run",
            "--mode",
            "a1",
            "--engine",
            "uring",
            "--uring-ordering",
            "sideways",
        ],
        vec!["run", "--mode", "a1", "--pattern", "rr", "--rx", "uring"],
        vec!["run", "--mode", "a1", "--rx", "telepathy"],
        vec!["run", "--mode", "a1", "--rx", "uring", "--rx-discard"],
        // --batch: none, less than one message, not a size, a pattern without batches, an
        // ordering that cannot carry one.
        vec!["run", "--mode", "a1", "--batch", "0"],
        vec!["run", "--mode", "a1", "--msg-size", "1K", "--batch", "1000"],
        vec!["run", "--mode", "a1", "--batch", "lots"],
        vec!["run", "--mode", "a1", "--batch", "-64K"],
        vec!["run", "--mode", "a1", "--pattern", "rr", "--batch", "64K"],
        vec![
            "run",
            "--mode",
            "a2",
            "--engine",
            "uring",
            "--batch",
            "64K",
            "--uring-ordering",
            "link",
        ],
        vec!["run", "--mode", "a3", "--batch", "64K", "--zc-slots", "8"],
        vec!["run", "--mode", "a1", "--profile", "0"],
        vec!["run", "--mode", "a1", "--profile", "50000"],
        vec!["run", "--mode", "a1", "--profile", "often"],
    ] {
        let o = sendpath().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.lines().next().unwrap().starts_with("error:"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn uring_depth_zero_names_the_option() {
    let o = sendpath()
        .args([
            "run",
            "--mode",
            "a1",
            "--engine",
            "uring",
            "--uring-depth",
            "0",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(
        err.lines().next().unwrap(),
        "error: invalid option: --uring-depth 0 must be between 1 and 1024 (sends in flight per flow)"
    );
}

#[test]
fn bench_prints_a_ratio_per_size_and_refuses_zero_rounds() {
    let o = sendpath()
        .args([
            "bench",
            "latency-cost",
            "--rounds",
            "1",
            "--duration",
            "0.1",
            "--pin",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for size in ["64 ", "1024 ", "16384 ", "65536 "] {
        let line = out
            .lines()
            .find(|l| l.starts_with(size))
            .unwrap_or_else(|| panic!("no row for {size}: {out}"));
        assert!(line.trim_end().ends_with('%'), "{line}");
    }
    let o = sendpath()
        .args(["bench", "paths", "--rounds", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error:"));
}

#[test]
fn run_a3_without_so_zerocopy_is_a_failed_record_with_the_reason() {
    let o = sendpath()
        .env("SENDPATH_TEST_NO_SO_ZEROCOPY", "1")
        .args(["run", "--mode", "a3", "--duration", "0.2"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["status"], "failed");
    assert!(
        v["error"].as_str().unwrap().contains("SO_ZEROCOPY"),
        "{}",
        v["error"]
    );
    assert_eq!(v["throughput"]["messages"], 0);
}

#[test]
fn compare_two_runs_through_the_real_binary() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../analysis/tests/fixtures/loopback_threads.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .arg("compare")
        .arg(&fixture)
        .arg(&fixture)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("0 of 18 cells differ beyond the noise"),
        "{out}"
    );
    assert!(
        out.contains("findings: ") && out.contains("agree (100%)"),
        "{out}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .args(["compare", "/nonexistent/a.jsonl"])
        .arg(&fixture)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: reading /nonexistent/a.jsonl"),
        "{err}"
    );
}

#[test]
fn a_refused_sampler_is_one_line_and_a_record_without_a_profile() {
    let run = |refused: bool| {
        let mut c = sendpath();
        c.args(["run", "--mode", "a1", "--profile", "--duration", "0.2"])
            .args(["--warmup", "0.05", "--flows", "2"]);
        if refused {
            c.env("SENDPATH_TEST_NO_PROFILE", "1");
        }
        c.output().unwrap()
    };
    let o = run(true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("no CPU profile"))
        .collect();
    assert_eq!(warnings.len(), 1, "one line for four threads: {err}");
    assert!(warnings[0].starts_with("warning: ") && warnings[0].contains("refused"));
    let out = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["status"], "ok");
    assert!(v.get("profile").is_none(), "no profile: {}", v["profile"]);
    assert_eq!(v["spec"]["profile_hz"], 1000, "what was asked is recorded");
    // The same run with the sampler: a profile on both sides.
    let o = run(false);
    let out = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(
        v["profile"]["sender"]["samples"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert!(
        v["profile"]["receiver"]["samples"].as_u64().unwrap() > 0,
        "{v}"
    );
}
