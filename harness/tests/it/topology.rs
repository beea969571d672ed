//! `--topology veth`: traffic really crosses the veth pair between two namespaces, and
//! `topology down` removes everything. Needs root (CI runs as root); skips with a reason
//! otherwise. The namespaces are unique to this test and removed even when it fails.

use crate::common::{is_root, sendpath, skip, Cleanup, Skip};
use sendpath_core::netns::Veth;
use std::process::Command;

#[test]
fn veth_run_crosses_the_pair_and_down_removes_it() {
    if !is_root() {
        return skip(Skip::NeedsRoot, "network namespaces need root");
    }
    let pid = std::process::id();
    let name = format!("sp{}", pid % 100_000);
    let prefix = format!("10.201.{}.0/24", pid % 250);
    let net = ["--ns-name", name.as_str(), "--prefix", prefix.as_str()];
    let veth = Veth::new(&name, &prefix).unwrap();
    let _cleanup = Cleanup(veth.clone());

    // Without the topology a veth run is a clear one-line error.
    let o = sendpath()
        .args([
            "run",
            "--mode",
            "a1",
            "--duration",
            "0.2",
            "--topology",
            "veth",
        ])
        .args(net)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("topology up"));
    let o = sendpath()
        .args([
            "sweep",
            "--batch",
            "1",
            "--modes",
            "a1",
            "--sizes",
            "64",
            "--topology",
            "veth",
        ])
        .args(net)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "a sweep says it once, up front");
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error:"));

    for _ in 0..2 {
        // Idempotent.
        let o = sendpath()
            .args(["topology", "up"])
            .args(net)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(veth.is_up());
    let (tx0, _) = veth.server_if_bytes().unwrap();
    let o = sendpath()
        .args([
            "run",
            "--mode",
            "a2",
            "--msg-size",
            "4096",
            "--duration",
            "0.3",
        ])
        .args(["--warmup", "0.1", "--topology", "veth"])
        .args(net)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(r["spec"]["topology"], "veth");
    assert_eq!(r["integrity"]["seq_errors"], 0);
    let bytes = r["throughput"]["bytes"].as_u64().unwrap();
    assert!(bytes > 0);
    let (tx1, _) = veth.server_if_bytes().unwrap();
    assert!(
        tx1 - tx0 >= bytes,
        "the server's veth end sent {} bytes, the record counts {bytes}",
        tx1 - tx0
    );

    // The kernel stamps every stage across the pair too, for every mode on both engines:
    // rr (one message per read, so each read's receive stamp is its message's: in order
    // exactly) and an io_uring stream (many messages per call, cut around the samples; a
    // stream read may carry a stamp older than its last message's packet: a few allowed).
    for (mode, engine, pattern) in [
        ("a1", "threads", "rr"),
        ("a2", "threads", "rr"),
        ("a3", "threads", "rr"),
        ("a1", "uring", "rr"),
        ("a2", "uring", "rr"),
        ("a3", "uring", "rr"),
        ("a1", "uring", "stream"),
        ("a3", "uring", "stream"),
    ] {
        let o = sendpath()
            .args([
                "run",
                "--mode",
                mode,
                "--engine",
                engine,
                "--pattern",
                pattern,
            ])
            .args(["--msg-size", "1024", "--duration", "0.3", "--warmup", "0.1"])
            .args(["--topology", "veth", "--timestamps", "4"])
            .args(net)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let what = format!("{mode} {engine} {pattern}");
        assert!(o.status.success(), "{what}: {out}");
        let r: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        let st = &r["stages"];
        let joined = st["joined"].as_u64().unwrap();
        assert!(joined > 0, "{what}: {st}");
        let ooo = st["out_of_order"].as_u64().unwrap();
        if pattern == "rr" {
            assert_eq!(ooo, 0, "{what}: {st}");
        } else {
            assert!(ooo * 50 <= joined, "{what}: {ooo} of {joined} out of order");
        }
        for k in [
            "user_to_sched_ns",
            "sched_to_device_ns",
            "device_to_stack_ns",
            "stack_to_user_ns",
        ] {
            assert!(st[k]["p50"].as_u64().is_some(), "{what} {k}: {st}");
        }
        let t = &st["typical"];
        let sum: f64 = [
            "user_to_sched_ns",
            "sched_to_device_ns",
            "device_to_stack_ns",
            "stack_to_user_ns",
        ]
        .iter()
        .map(|k| t[*k].as_f64().unwrap())
        .sum();
        assert!(
            (sum - t["end_to_end_ns"].as_f64().unwrap()).abs() < 1.0,
            "{what}: {t}"
        );
    }

    let o = sendpath()
        .args(["topology", "down"])
        .args(net)
        .output()
        .unwrap();
    assert!(o.status.success());
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        !list.contains(&veth.server_ns) && !list.contains(&veth.client_ns),
        "{list}"
    );
    assert!(!veth.is_up());
}
