//! Faults in the middle of a run over the veth topology (root only), through the real binary:
//! the link goes down for a second, the receivers' namespace is deleted, a sweep is killed
//! while a cell runs with an impairment on, a flow under a loss rule is reset. Each ends within a stated bound, says what
//! happened, loses nothing already written, and the namespaces and qdiscs are removed.
//! (This kernel has no netem: the impairments here are a token bucket set with `tc` and random
//! loss made with nftables; where netem is missing, `topology up --netem` must say so in one
//! line.)

use crate::common::{is_root, skip, tbf, veth_up, Cleanup, Skip};
use sendpath_core::netns::Veth;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

fn topology(tag: u32) -> (Veth, Cleanup, String, String) {
    veth_up(&format!("f{tag}"), 204 + tag)
}

fn run_veth(name: &str, prefix: &str, secs: &str) -> (std::process::Output, Duration) {
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .args([
            "run",
            "--mode",
            "a1",
            "--msg-size",
            "16384",
            "--duration",
            secs,
        ])
        .args([
            "--warmup",
            "0.1",
            "--topology",
            "veth",
            "--ns-name",
            name,
            "--prefix",
            prefix,
        ])
        .output()
        .unwrap();
    (o, t.elapsed())
}

fn record(o: &std::process::Output) -> serde_json::Value {
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no record printed: {}", String::from_utf8_lossy(&o.stderr)));
    serde_json::from_str(last).unwrap()
}

/// `sendpath run --verify` of `mode` on `engine` at `size` over the pair named by `net`, with
/// `extra` options; asserts that it delivered every byte intact and returns its record.
fn verified_run(
    mode: &str,
    engine: &str,
    size: &str,
    net: &[&str],
    extra: &[&str],
) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .args([
            "run",
            "--mode",
            mode,
            "--engine",
            engine,
            "--msg-size",
            size,
        ])
        .args(["--verify", "--topology", "veth"])
        .args(net)
        .args(extra)
        .output()
        .unwrap();
    let r = record(&o);
    let cell = format!("{mode} {engine} {size}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("could not be read"), "{cell}: {err}");
    assert_eq!(r["status"], "ok", "{cell}: {}", r["error"]);
    assert_eq!(r["integrity"]["seq_errors"], 0, "{cell}");
    assert_eq!(r["integrity"]["verify_errors"], 0, "{cell}");
    assert!(
        r["integrity"]["verified_bytes"].as_u64().unwrap() > 0,
        "{cell}"
    );
    r
}

fn ip_in(ns: &str, args: &[&str]) {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "ip"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Packets `dev` in `ns` has sent.
fn tx_packets(ns: &str, dev: &str) -> u64 {
    let o = Command::new("ip")
        .args(["-n", ns, "-s", "-j", "link", "show", dev])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v[0]["stats64"]["tx"]["packets"].as_u64().unwrap_or(0)
}

/// Waits (20 s at most) until the run's data flows: the server end has sent a thousand
/// packets more than now. A fault injected by the clock instead missed the window when
/// starting the run took longer than usual (under the whole suite's load).
fn wait_for_traffic(ns: &str, dev: &str) {
    let start = tx_packets(ns, dev);
    let t = Instant::now();
    while tx_packets(ns, dev) < start + 1000 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no traffic on {dev} in {ns}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_link_down_for_a_second_mid_run_is_retransmitted_through_and_shows() {
    if !is_root() {
        return skip(Skip::NeedsRoot, "network namespaces need root");
    }
    let (veth, _guard, name, prefix) = topology(1);
    let (ns, dev) = (veth.server_ns.clone(), veth.server_if.clone());
    let flap = thread::spawn(move || {
        wait_for_traffic(&ns, &dev);
        thread::sleep(Duration::from_millis(300));
        ip_in(&ns, &["link", "set", &dev, "down"]);
        thread::sleep(Duration::from_secs(1));
        ip_in(&ns, &["link", "set", &dev, "up"]);
    });
    let (o, took) = run_veth(&name, &prefix, "3");
    flap.join().unwrap();
    assert!(took < Duration::from_secs(30), "ended in {took:?}");
    let r = record(&o);
    assert_eq!(
        r["status"], "ok",
        "TCP recovers from a 1 s outage: {}",
        r["error"]
    );
    assert_eq!(r["integrity"]["seq_errors"], 0, "nothing lost or reordered");
    assert!(
        r["tcp"]["retransmits"].as_u64().unwrap() > 0,
        "the outage shows as retransmissions: {}",
        r["tcp"]
    );
}

#[test]
fn deleting_the_receivers_namespace_mid_run_ends_in_bound_and_down_cleans_up() {
    if !is_root() {
        return skip(Skip::NeedsRoot, "network namespaces need root");
    }
    let (veth, _guard, name, prefix) = topology(2);
    let client_ns = veth.client_ns.clone();
    let (ns, dev) = (veth.server_ns.clone(), veth.server_if.clone());
    let del = thread::spawn(move || {
        wait_for_traffic(&ns, &dev);
        thread::sleep(Duration::from_millis(300));
        let o = Command::new("ip")
            .args(["netns", "del", &client_ns])
            .output()
            .unwrap();
        assert!(o.status.success());
    });
    let (o, took) = run_veth(&name, &prefix, "2");
    del.join().unwrap();
    assert!(took < Duration::from_secs(30), "ended in {took:?}");
    // The namespace lives on while the run's sockets hold it, so the run may even finish;
    // either way a record says how it went.
    let r = record(&o);
    assert!(r["status"] == "ok" || r["error"].is_string(), "{r}");
    let net = ["--ns-name", name.as_str(), "--prefix", prefix.as_str()];
    let status = Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .args(["topology", "status"])
        .args(net)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains(&format!("{}: absent", veth.client_ns)),
        "{status}"
    );
    let down = Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .args(["topology", "down"])
        .args(net)
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        !list.contains(&veth.server_ns) && !list.contains(&veth.client_ns),
        "{list}"
    );
}

#[test]
fn a_sweep_killed_mid_cell_with_an_impairment_on_loses_nothing_and_resumes() {
    if !is_root() {
        return skip(Skip::NeedsRoot, "network namespaces need root");
    }
    let (veth, _guard, name, prefix) = topology(3);
    let net = ["--ns-name", name.as_str(), "--prefix", prefix.as_str()];
    // netem where the kernel has it; a token bucket (and the one-line refusal) where not.
    let up = Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .args(["topology", "up", "--netem", "delay 1ms"])
        .args(net)
        .output()
        .unwrap();
    let kind = if up.status.success() {
        "netem"
    } else {
        let err = String::from_utf8_lossy(&up.stderr);
        assert_eq!(up.status.code(), Some(2));
        assert!(err.lines().count() == 1 && err.contains("netem"), "{err}");
        tbf(&veth, &["rate", "2gbit", "burst", "64k", "latency", "5ms"]);
        "tbf"
    };
    let dir = std::env::temp_dir().join(format!("sp-faults-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sweep = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sendpath"));
        c.args([
            "sweep",
            "--batch",
            "1",
            "--modes",
            "a1,a3",
            "--engines",
            "threads",
            "--sizes",
            "16K",
        ])
        .args([
            "--flows",
            "1",
            "--patterns",
            "stream",
            "--duration",
            "0.4",
            "--warmup",
        ])
        .args([
            "0.1",
            "--reps",
            "2",
            "--no-progress",
            "--no-report",
            "--topology",
            "veth",
        ])
        .args(net)
        .args(extra);
        c
    };
    let mut child = sweep(&["--out", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it inside a cell: once the first line is written (each cell takes about 0.5 s).
    let results = dir.join("results.jsonl");
    let t = Instant::now();
    while std::fs::read_to_string(&results).map_or(0, |s| s.lines().count()) == 0
        && t.elapsed() < Duration::from_secs(20)
    {
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(250));
    child.kill().unwrap();
    child.wait().unwrap();
    let before = std::fs::read_to_string(&results).unwrap_or_default();
    let kept = before.lines().count();
    assert!(
        (1..4).contains(&kept),
        "cells written before the kill: {kept}"
    );
    for l in before.lines() {
        let r: serde_json::Value = serde_json::from_str(l).expect("whole lines only");
        assert!(
            r["spec"]["impairment"].as_str().unwrap().starts_with(kind),
            "{}",
            r["spec"]
        );
    }
    let t = Instant::now();
    let o = sweep(&["--resume", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(t.elapsed() < Duration::from_secs(30));
    let after = std::fs::read_to_string(&results).unwrap();
    assert!(after.starts_with(&before), "nothing written before is lost");
    assert_eq!(after.lines().count(), 4, "the grid, whole, once");
    for l in after.lines() {
        let r: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(r["integrity"]["seq_errors"], 0);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let down = Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .args(["topology", "down"])
        .args(net)
        .output()
        .unwrap();
    assert!(down.status.success());
    assert!(!veth.is_up(), "namespaces, the pair and its qdisc are gone");
}

#[test]
fn under_loss_every_mode_on_both_engines_delivers_every_byte_intact() {
    if !is_root() {
        return skip(Skip::NeedsRoot, "network namespaces need root");
    }
    let (veth, _guard, name, prefix) = topology(4);
    // A queue too short for the offered load drops packets: TCP retransmits while zero-copy
    // slots are still held by the kernel, and a slot rewritten early would fail --verify.
    tbf(&veth, &["rate", "300mbit", "burst", "20k", "limit", "30k"]);
    let mut retransmitted = 0;
    for mode in ["a1", "a2", "a3"] {
        for engine in ["threads", "uring"] {
            let net = ["--ns-name", name.as_str(), "--prefix", prefix.as_str()];
            let extra = ["--duration", "0.5", "--warmup", "0.05", "--zc-slots", "16"];
            let r = verified_run(mode, engine, "16384", &net, &extra);
            let cell = format!("{mode} {engine}");
            assert!(r["spec"]["impairment"].as_str().unwrap().starts_with("tbf"));
            retransmitted += u64::from(r["tcp"]["retransmits"].as_u64().unwrap() > 0);
            if mode == "a3" {
                let z = &r["zerocopy"];
                assert_eq!(
                    z["completions"], z["sends"],
                    "{cell}: every buffer came back"
                );
                assert!(z["slot_hold_ns"]["count"].as_u64().unwrap() > 0, "{cell}");
            }
        }
    }
    assert!(
        retransmitted >= 4,
        "loss happened in most cells: {retransmitted} of 6"
    );
}

/// What `ip -d link show` says of `ifname`'s `gso_max_segs` in `ns`.
fn gso_max_segs(ns: &str, ifname: &str) -> u64 {
    let o = Command::new("ip")
        .args(["-n", ns, "-d", "-j", "link", "show", ifname])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v[0]["gso_max_segs"].as_u64().unwrap()
}

#[test]
fn random_loss_without_netem_keeps_every_mode_intact_and_tcp_resends_what_was_dropped() {
    if !is_root() {
        return skip(Skip::NeedsRoot, "network namespaces need root");
    }
    let (veth, _guard, name, prefix) = topology(5);
    let net = ["--ns-name", name.as_str(), "--prefix", prefix.as_str()];
    let run = |mode: &str, engine: &str, size: &str| {
        let r = verified_run(
            mode,
            engine,
            size,
            &net,
            // (1 s: a 0.4 s window was now and then spent whole waiting out a retransmission
            // timeout after a lost retransmission, and failed with no message in it.)
            &["--duration", "1", "--warmup", "0.1"],
        );
        (format!("{mode} {engine} {size}"), r)
    };
    // The longest a zero-copy slot was held: clean, the 40 ms of a delayed ACK at worst; under
    // loss, a retransmission timeout (200 ms at least) somewhere in four A3 windows.
    let hold = |r: &serde_json::Value| r["zerocopy"]["slot_hold_ns"]["max"].as_u64().unwrap();
    let (_, clean) = run("a3", "threads", "16K");
    assert!(
        clean["tcp"].get("impairment_dropped").is_none(),
        "no rule, no count"
    );

    let up = |loss: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_sendpath"))
            .args(["topology", "up", "--loss", loss])
            .args(net)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    up("1%");
    assert_eq!(gso_max_segs(&veth.server_ns, &veth.server_if), 1);
    let (mut dropped, mut segs, mut resent) = (0, 0, 0);
    let mut lossy_hold = 0;
    // Each cell's figures, for the failure message; and the cells whose window had no
    // trustworthy drop count (the record says so rather than counting 0).
    let mut cells = Vec::new();
    let mut uncounted = 0;
    for engine in ["threads", "uring"] {
        for size in ["64", "16K"] {
            for mode in ["a1", "a2", "a3"] {
                let (cell, r) = run(mode, engine, size);
                let what = r["spec"]["impairment"].as_str().unwrap();
                assert!(
                    what.contains("nftables loss 1% on arrival") && what.contains(&veth.client_if),
                    "{cell}: {what}"
                );
                let t = &r["tcp"];
                let resent_here =
                    t["retransmits"].as_u64().unwrap() - t["dsack_dups"].as_u64().unwrap();
                cells.push(format!(
                    "{cell}: dropped {} of {} segments, resent {resent_here}",
                    t["impairment_dropped"], t["segs_out"]
                ));
                if mode == "a3" {
                    let z = &r["zerocopy"];
                    assert_eq!(
                        z["completions"], z["sends"],
                        "{cell}: every buffer came back"
                    );
                    lossy_hold = lossy_hold.max(hold(&r));
                }
                // (Not every window drops much: now and then one is spent mostly waiting out a
                // retransmission timeout, a lost retransmission's, with a few segments sent.)
                let Some(n) = t["impairment_dropped"].as_u64() else {
                    uncounted += 1;
                    continue;
                };
                dropped += n;
                segs += t["segs_out"].as_u64().unwrap();
                // A retransmission the receiver reports as a duplicate (DSACK) resent
                // something that had not been dropped.
                resent += resent_here;
            }
        }
    }
    let cells = cells.join("\n");
    assert!(
        uncounted <= 2,
        "{uncounted} windows without a drop count:\n{cells}"
    );
    let share = dropped as f64 / segs as f64;
    assert!(
        (0.007..0.013).contains(&share),
        "dropped {dropped} of {segs} segments sent ({:.2}%):\n{cells}",
        share * 100.0
    );
    let ratio = resent as f64 / dropped as f64;
    assert!(
        (0.8..1.2).contains(&ratio),
        "TCP resent {resent} segments (DSACKed duplicates aside) for {dropped} dropped:\n{cells}"
    );
    assert!(
        lossy_hold > hold(&clean),
        "a zero-copy slot is held until its data is acknowledged: at most {lossy_hold} ns under loss, {} ns clean",
        hold(&clean)
    );

    // Removed by `--loss none` (the device segments as before), and refused in one line when
    // the value is not a percentage.
    up("none");
    assert_eq!(veth.impairment(), None);
    assert_eq!(gso_max_segs(&veth.server_ns, &veth.server_if), 65_535);
    let bad = Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .args(["topology", "up", "--loss", "0.001%"])
        .args(net)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(err.contains("--loss 0.001%"), "{err}");
    // A kill leaves the rule behind; `topology down` takes it with the namespaces.
    up("2%");
    assert!(veth.loss_rule().is_some());
    let down = Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .args(["topology", "down"])
        .args(net)
        .output()
        .unwrap();
    assert!(down.status.success());
    assert!(!veth.is_up() && veth.loss_rule().is_none());
}

#[test]
fn a_run_reset_mid_window_under_a_loss_rule_does_not_wait_out_its_window_nor_count_it() {
    if !is_root() {
        return skip(Skip::NeedsRoot, "network namespaces need root");
    }
    let (veth, _guard, name, prefix) = topology(6);
    let net = ["--ns-name", name.as_str(), "--prefix", prefix.as_str()];
    let o = Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .args(["topology", "up", "--loss", "0.01%"])
        .args(net)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Once data flows, every TCP segment reaching the receivers is answered with a reset: the
    // sender fails at once, a fraction into its 20 s window, and the receivers, which hear
    // nothing more, after the socket timeout (`sock::IO_TIMEOUT`, 10 s). (A table of its own;
    // deleting the namespaces deletes it.)
    let (ns, dev) = (veth.server_ns.clone(), veth.server_if.clone());
    let client_ns = veth.client_ns.clone();
    let reset = thread::spawn(move || {
        wait_for_traffic(&ns, &dev);
        thread::sleep(Duration::from_millis(300));
        for rule in [
            "add table inet sendpath_test_reset",
            "add chain inet sendpath_test_reset input { type filter hook input priority 0 ; }",
            "add rule inet sendpath_test_reset input meta l4proto tcp reject with tcp reset",
        ] {
            let o = Command::new("ip")
                .args(["netns", "exec", &client_ns, "nft"])
                .args(rule.split(' '))
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{rule}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    });
    let (o, took) = run_veth(&name, &prefix, "20");
    reset.join().unwrap();
    // The loss rule's counter was being watched for the window: the failed run stops the watch
    // rather than waiting out the 20 s, and has no count for a window it did not finish.
    assert!(took < Duration::from_secs(17), "ended in {took:?}");
    let r = record(&o);
    assert_eq!(r["status"], "failed", "{r}");
    assert!(
        r["tcp"]
            .get("impairment_dropped")
            .is_none_or(|v| v.is_null()),
        "{}",
        r["tcp"]
    );
}
