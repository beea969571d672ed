//! `sweep --impairments` over the veth topology (root only): the grid once per named
//! impairment, each into its own directory with the qdisc in its records and its report, a
//! comparison across them, the qdisc removed afterwards; names and kernels that cannot are
//! refused before any cell runs. (This kernel has no netem: `bottleneck`, a token bucket, is
//! the impairment it can make; the netem names are refused here in one line.)

use crate::common::{is_root, sendpath, skip, tbf, veth_up, Skip};

fn records(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn one_error_line(o: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(needle), "{err}");
}

#[test]
fn each_impairment_gets_its_sub_sweep_and_the_comparison_shows_what_changed() {
    if !is_root() {
        return skip(Skip::NeedsRoot, "network namespaces need root");
    }
    let (veth, _guard, name, prefix) = veth_up("im", 219);
    let dir = std::env::temp_dir().join(format!("sendpath-impair-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let net = [
        "--topology",
        "veth",
        "--ns-name",
        &name,
        "--prefix",
        &prefix,
    ];
    let grid = [
        "--modes",
        "a1,a3",
        "--engines",
        "threads",
        "--sizes",
        "16K",
        "--flows",
        "1",
        "--patterns",
        "stream",
        "--reps",
        "1",
        "--warmup",
        "0.1",
        "--verify",
        "--no-progress",
    ];

    let o = sendpath()
        .args(["sweep", "--batch", "1", "--impairments", "clean,bottleneck"])
        .args(net)
        .args(grid)
        .args(["--duration", "0.4"])
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
    let mut gbps = Vec::new();
    for sub in ["clean", "bottleneck"] {
        let recs = records(&dir.join(sub).join("results.jsonl"));
        assert_eq!(recs.len(), 2, "{sub}: A1 and A3");
        for r in &recs {
            assert_eq!(r["status"], "ok", "{sub}: {}", r["error"]);
            assert_eq!(r["integrity"]["seq_errors"], 0);
            assert_eq!(r["integrity"]["verify_errors"], 0);
            assert!(r["integrity"]["verified_bytes"].as_u64().unwrap() > 0);
            let q = &r["spec"]["impairment"];
            match sub {
                "clean" => assert!(q.is_null(), "{q}"),
                _ => assert!(q.as_str().unwrap().starts_with("tbf"), "{q}"),
            }
            gbps.push(r["throughput"]["gbps"].as_f64().unwrap());
        }
        let report = std::fs::read_to_string(dir.join(sub).join("report.md")).unwrap();
        assert!(
            report.contains("impairment of the veth pair"),
            "{sub}: the report names the impairment"
        );
    }
    // The token bucket passes 1 Gbit/s; the clean pair several times that.
    assert!(
        gbps[2] < 1.2 && gbps[3] < 1.2,
        "bottleneck cells: {:?}",
        &gbps[2..]
    );
    let md = std::fs::read_to_string(dir.join("impairments.md")).unwrap();
    for needle in [
        "| cell | clean | bottleneck |",
        "## Throughput (Gbit/s)",
        "## Segments TCP retransmitted in the window",
        "A3 zero-copy slot",
        "stream threads A3 16384 B x1",
        "tbf",
    ] {
        assert!(
            md.contains(needle),
            "impairments.md lacks {needle:?}:\n{md}"
        );
    }
    assert_eq!(veth.impairment(), None, "the sweep removes its qdisc");

    // Interrupted while a cell runs under the bottleneck: the qdisc comes off too, the exit
    // says it was interrupted, and `--resume` finishes the grid.
    let mut child = sendpath()
        .args(["sweep", "--batch", "1", "--impairments", "bottleneck"])
        .args(net)
        .args(grid)
        .args(["--duration", "2"])
        .arg("--out")
        .arg(dir.join("int"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The event to interrupt on: the bottleneck's cells started and its qdisc is on. The sweep
    // is interrupted either way, so a failed wait leaves no sweep and no qdisc behind.
    let t = std::time::Instant::now();
    let under_bottleneck = loop {
        if dir.join("int").join("bottleneck").exists() && veth.impairment().is_some() {
            break true;
        }
        if t.elapsed().as_secs() > 20 {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(
        under_bottleneck,
        "the bottleneck's qdisc never came on while the sweep ran"
    );
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(
        veth.impairment(),
        None,
        "an interrupted sweep removes its qdisc"
    );
    let o = sendpath()
        .args(["sweep", "--batch", "1", "--impairments", "bottleneck"])
        .args(net)
        .args(grid)
        .args(["--duration", "2"])
        .arg("--resume")
        .arg(dir.join("int"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        records(&dir.join("int").join("bottleneck").join("results.jsonl")).len(),
        2
    );

    // Refused before any cell runs, in one line each: an unknown name; a topology other
    // than veth; a pair that already has a qdisc of its own; netem where the kernel has none.
    let sweep = |impairments: &str, on_veth: bool, out: &str| {
        sendpath()
            .args(["sweep", "--batch", "1", "--impairments", impairments])
            .args(if on_veth { &net[..] } else { &[] })
            .args(grid)
            .args(["--duration", "0.4"])
            .arg("--out")
            .arg(dir.join(out))
            .output()
            .unwrap()
    };
    let o = sweep("clean,satellite", true, "x");
    one_error_line(&o, "unknown impairment \"satellite\"");
    one_error_line(&sweep("clean", false, "x"), "--topology veth");
    tbf(&veth, &["rate", "2gbit", "burst", "64kb", "latency", "5ms"]);
    one_error_line(&sweep("bottleneck", true, "x"), "already has an impairment");
    assert!(veth.impairment().is_some(), "a user's qdisc is left alone");
    veth.set_netem("none").unwrap();
    let o = sweep("clean,lan", true, "lan");
    if o.status.success() {
        // A kernel with netem: the sub-sweep ran under it.
        let recs = records(&dir.join("lan").join("lan").join("results.jsonl"));
        assert!(recs[0]["spec"]["impairment"]
            .as_str()
            .unwrap()
            .starts_with("netem"));
    } else {
        one_error_line(&o, "netem is not available");
        assert!(
            !dir.join("lan").join("clean").exists(),
            "nothing ran before the refusal"
        );
    }
    assert_eq!(veth.impairment(), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lossy_runs_its_random_loss_on_any_kernel_and_the_comparison_counts_the_drops() {
    if !is_root() {
        return skip(Skip::NeedsRoot, "network namespaces need root");
    }
    let (veth, _guard, name, prefix) = veth_up("il", 221);
    let dir = std::env::temp_dir().join(format!("sendpath-lossy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = sendpath()
        .args([
            "sweep",
            "--impairments",
            "clean,segmented,lossy",
            "--topology",
            "veth",
        ])
        .args(["--ns-name", &name, "--prefix", &prefix])
        .args(["--modes", "a1,a3", "--engines", "threads", "--sizes", "16K"])
        .args(["--flows", "1", "--patterns", "stream", "--batch", "1"])
        .args(["--reps", "1", "--duration", "0.5", "--warmup", "0.1"])
        .args(["--verify", "--no-progress", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let recs = records(&dir.join("lossy").join("results.jsonl"));
    assert_eq!(recs.len(), 2, "A1 and A3");
    let netem = !err.contains("netem is not available");
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", r["error"]);
        assert_eq!(r["integrity"]["seq_errors"], 0);
        assert_eq!(r["integrity"]["verify_errors"], 0);
        let what = r["spec"]["impairment"].as_str().unwrap();
        assert!(what.contains("nftables loss 1% on arrival"), "{what}");
        // What ran, exactly: netem's part only where the kernel has it.
        assert_eq!(what.starts_with("netem"), netem, "{what}");
        assert!(r["tcp"]["impairment_dropped"].as_u64().is_some());
    }
    if !netem {
        let said: Vec<&str> = err.lines().filter(|l| l.contains("not applied")).collect();
        assert_eq!(said.len(), 1, "said once, before the cells: {err}");
        assert!(said[0].contains("delay 1ms 200us reorder 1%"), "{err}");
    }
    for r in records(&dir.join("clean").join("results.jsonl")) {
        assert!(r["spec"]["impairment"].is_null());
        assert!(r["tcp"].get("impairment_dropped").is_none());
    }
    let md = std::fs::read_to_string(dir.join("impairments.md")).unwrap();
    for needle in [
        "| cell | clean | segmented | lossy |",
        "gso_max_segs 1: one segment per packet, no loss",
        "## Segments the loss rule dropped in the window",
        "numgen random mod 10000 < 100",
        "spurious",
    ] {
        assert!(
            md.contains(needle),
            "impairments.md lacks {needle:?}:\n{md}"
        );
    }
    assert_eq!(veth.impairment(), None, "the sweep removes its loss rule");
    assert_eq!(veth.loss_rule(), None);
    let _ = std::fs::remove_dir_all(&dir);
}
