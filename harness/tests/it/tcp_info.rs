//! TCP_INFO retransmits agree with the kernel's own count: over the veth topology (root only)
//! with a token-bucket qdisc on the sending end too small for the offered load, so TCP loses
//! and retransmits, the record's window count is checked against `nstat`'s TcpRetransSegs
//! of the sender's namespace for the same run (the connection's whole life: a little more).
//! This kernel has no netem; a tbf queue overflow is the loss any kernel with tc can make.

use crate::common::{is_root, skip, tbf, veth_up, Skip};
use std::process::Command;

fn retrans_segs(ns: &str) -> Option<u64> {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "nstat", "-az", "TcpRetransSegs"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.starts_with("TcpRetransSegs"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn tcp_info_retransmits_match_the_kernels_count_over_lossy_veth() {
    if !is_root() {
        return skip(Skip::NeedsRoot, "network namespaces need root");
    }
    let (veth, _cleanup, name, prefix) = veth_up("st", 203);
    if retrans_segs(&veth.server_ns).is_none() {
        return skip(Skip::MissingTool, "nstat (iproute2) is not installed");
    }
    tbf(&veth, &["rate", "400mbit", "burst", "20k", "limit", "30k"]);
    let before = retrans_segs(&veth.server_ns).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .args([
            "run",
            "--mode",
            "a1",
            "--msg-size",
            "16384",
            "--duration",
            "0.8",
        ])
        .args([
            "--warmup",
            "0",
            "--topology",
            "veth",
            "--ns-name",
            &name,
            "--prefix",
            &prefix,
        ])
        .output()
        .unwrap();
    let after = retrans_segs(&veth.server_ns).unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let counted = r["tcp"]["retransmits"].as_u64().unwrap();
    let kernel = after - before;
    assert!(
        counted > 0,
        "the queue overflowed, TCP retransmitted: {}",
        r["tcp"]
    );
    assert!(
        counted <= kernel && counted as f64 >= 0.8 * kernel as f64,
        "window {counted} vs the namespace's {kernel} over the connection's life"
    );
    assert!(r["tcp"]["bytes_retrans"].as_u64().unwrap() > 0);
    let imp = r["spec"]["impairment"].as_str().unwrap_or_default();
    assert!(
        imp.starts_with("tbf"),
        "the qdisc in place is recorded: {imp:?}"
    );
    assert_eq!(
        r["integrity"]["seq_errors"], 0,
        "retransmission loses nothing"
    );
}
