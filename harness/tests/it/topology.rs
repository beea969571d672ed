//! `--topology veth`: traffic really crosses the veth pair between two namespaces, and
//! `topology down` removes everything. Needs root (CI runs as root); skips with a reason
//! otherwise. The namespaces are unique to this test and removed even when it fails.

use crate::common::{is_root, sendpath, Cleanup};
use sendpath_core::netns::Veth;
use std::process::Command;

#[test]
fn veth_run_crosses_the_pair_and_down_removes_it() {
    if !is_root() {
        eprintln!("SKIPPED: network namespaces need root");
        return;
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

    // The kernel stamps every stage across the pair too, in order: rr, one message per
    // read, so each read's receive stamp is its message's.
    let o = sendpath()
        .args([
            "run",
            "--mode",
            "a2",
            "--pattern",
            "rr",
            "--msg-size",
            "256",
        ])
        .args(["--duration", "0.3", "--warmup", "0.1", "--topology", "veth"])
        .args(["--timestamps", "4"])
        .args(net)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    let r: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let st = &r["stages"];
    assert!(st["joined"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(st["out_of_order"], 0, "{st}");
    for k in [
        "user_to_sched_ns",
        "sched_to_device_ns",
        "device_to_stack_ns",
        "stack_to_user_ns",
    ] {
        assert!(st[k]["p50"].as_u64().is_some(), "{k}: {st}");
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
