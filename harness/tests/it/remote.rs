//! `sendpath serve` and `--remote`, through the real binary: a server process on loopback
//! takes a corpus of bad requests and still serves the next good one, tells a second client
//! it is busy, and frees itself when a client is killed mid-test; across the veth topology
//! (root only) a remote sweep writes complete records for the same cells as a local one, in
//! both directions. Every server process is killed and every namespace removed, even when an
//! assert fails.

use crate::common::{is_root, sendpath, skip, veth_up, Skip};
use crate::serve_util::*;
use sendpath_core::remote::auth::{Role, Token};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A connection the server greeted: one from the wave before may not have been let go yet,
/// so a `busy` answer (four log in at once per address) is retried for a while.
fn greeted(addr: std::net::SocketAddr) -> Raw {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let mut r = Raw::connect(addr);
        let first = r.line().expect("a first line");
        if first["type"] == "hello" {
            return r;
        }
        assert_eq!(first["code"], "busy", "{first}");
        assert!(Instant::now() < until, "still busy");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_requests_get_one_clear_error_and_the_server_serves_the_next_good_one() {
    let dir = temp_dir("corpus");
    let token = token_file(&dir, TOKEN);
    let srv = serve(
        None,
        "127.0.0.1",
        &["--token-file", token.to_str().unwrap()],
    );
    assert!(
        srv.banner.contains("loopback only") && srv.banner.contains("token is required"),
        "the start-up line says who can reach it and that a token is required: {}",
        srv.banner
    );
    let addr = srv.addr;
    // Before logging in: (bytes sent after the greeting, the error code expected; None: cut
    // off at its bound without a reply being required).
    let long = vec![b'x'; 20 * 1024];
    let mut long_line = vec![b'{'; 17 * 1024];
    long_line.push(b'\n');
    let wrong = Token::new(b"wrong").prove(Role::Driver, "whatever", "else");
    let dc = sendpath_core::remote::auth::challenge().unwrap();
    let handshake: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not json", b"hello there\n".to_vec(), "malformed"),
        ("not utf-8", b"\xff\xfe\xfd\n".to_vec(), "malformed"),
        ("empty line", b"\n".to_vec(), "malformed"),
        ("an array", b"[]\n".to_vec(), "malformed"),
        (
            "unknown type",
            b"{\"type\":\"launch\"}\n".to_vec(),
            "malformed",
        ),
        ("no type", b"{\"protocol\":1}\n".to_vec(), "malformed"),
        (
            "wrong version",
            b"{\"type\":\"login\",\"protocol\":99}\n".to_vec(),
            "version",
        ),
        (
            "no token",
            b"{\"type\":\"login\",\"protocol\":2}\n".to_vec(),
            "auth",
        ),
        (
            "wrong token",
            format!("{{\"type\":\"login\",\"protocol\":2,\"response\":\"{wrong}\",\"challenge\":\"{dc}\"}}\n")
                .into_bytes(),
            "auth",
        ),
        (
            "token not hex",
            format!("{{\"type\":\"login\",\"protocol\":2,\"response\":\"zz\",\"challenge\":\"{dc}\"}}\n").into_bytes(),
            "auth",
        ),
        (
            "replayed answer",
            format!(
                "{{\"type\":\"login\",\"protocol\":2,\"response\":\"{}\",\"challenge\":\"{dc}\"}}\n",
                Token::new(TOKEN.as_bytes()).prove(Role::Driver, "an old challenge", &dc)
            )
            .into_bytes(),
            "auth",
        ),
        ("oversized, no newline", long.clone(), "too_long"),
        ("oversized line", long_line, "too_long"),
        ("a test before login", test_request(json!({})), "unexpected"),
        (
            "ready as a login",
            b"{\"type\":\"ready\",\"data_port\":1}\n".to_vec(),
            "unexpected",
        ),
        ("silence", Vec::new(), "timeout"),
    ];
    let started = Instant::now();
    // In waves of 2: the server lets 4 connections from one address log in at once, the drip
    // below holds one of them, and a wave's connections may take a moment to be let go.
    let mut handshake = handshake.into_iter().peekable();
    let mut waves = Vec::new();
    while handshake.peek().is_some() {
        let wave: Vec<_> = handshake.by_ref().take(2).collect();
        waves.push(wave);
    }
    // A slow drip: a byte every 300 ms never makes a line; it is cut off at the login bound.
    let drip = std::thread::spawn(move || {
        let mut r = greeted(addr);
        let t = Instant::now();
        for b in b"{\"type\":\"login\",\"protocol\":2,\"response\":\"00\"}"
            .iter()
            .cycle()
            .take(60)
        {
            if r.s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let reply = r.line();
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "cut off at its bound"
        );
        if let Some(reply) = reply {
            assert_eq!(reply["code"], "timeout", "{reply}");
        }
    });
    for wave in waves {
        let workers: Vec<_> = wave
            .into_iter()
            .map(|(what, bytes, code)| {
                std::thread::spawn(move || {
                    let mut r = greeted(addr);
                    r.send(&bytes);
                    let reply = r.line().unwrap_or_else(|| panic!("{what}: no error reply"));
                    assert_eq!(reply["type"], "error", "{what}: {reply}");
                    assert_eq!(reply["code"], code, "{what}: {reply}");
                    assert!(!reply["message"].as_str().unwrap().is_empty());
                    assert!(r.closed_within(Duration::from_secs(2)), "{what}: cut off");
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    }
    drip.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));

    // Logged in: refused tests leave the session usable; malformed or misplaced lines end it.
    let (mut s, welcome) = Raw::login(addr, TOKEN);
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert!(welcome["host"]["kernel"].is_string());
    let invalid = [
        json!({"msg_size": 0}),
        json!({"msg_size": 8}),
        json!({"msg_size": 1u64 << 40}),
        json!({"flows": 0}),
        json!({"flows": 100_000}),
        json!({"flows": 65}),
        json!({"duration_s": 1e9}),
        json!({"duration_s": -1.0}),
        json!({"warmup_s": 200.0}),
        json!({"mode": "a3", "zc_slots": 1_000_000}),
        json!({"mode": "a3", "zc_slots": 60000, "msg_size": 65536}),
        json!({"rx_stall": {"after_s": 0.1, "for_s": 0.1}}),
        json!({"pattern": "rate"}),
        json!({"pin": {"sender": [], "receiver": [0]}}),
        json!({"pin": {"sender": [0], "receiver": [4095]}}),
    ];
    for spec in &invalid {
        s.send_line(&test_request(spec.clone()));
        let reply = s.line().expect("an answer");
        assert_eq!(reply["type"], "error", "{spec}: {reply}");
        assert_eq!(reply["code"], "invalid", "{spec}: {reply}");
        s.send_line(b"{\"type\":\"clock\",\"t0_ns\":42}");
        let clock = s.line().expect("the session goes on");
        assert_eq!(clock["t0_ns"], 42, "{clock}");
        assert!(clock["t1_ns"].as_u64().unwrap() > 0);
    }
    // A test whose data connections never come fails at its bound, and the session goes on.
    s.send_line(&test_request(json!({})));
    assert_eq!(s.line().unwrap()["type"], "ready");
    let failed = s.line().unwrap();
    assert_eq!(failed["code"], "failed", "{failed}");
    assert!(failed["message"]
        .as_str()
        .unwrap()
        .contains("data connections"));
    s.send_line(b"{\"type\":\"ready\",\"data_port\":9}");
    assert_eq!(s.line().unwrap()["code"], "unexpected");
    assert!(s.closed_within(Duration::from_secs(2)));
    let (mut s, _) = Raw::login(addr, TOKEN);
    s.send_line(b"{\"type\":\"test\",\"far_role\":\"receiver\"}");
    assert_eq!(s.line().unwrap()["code"], "malformed");
    drop(s);

    // The driver with a wrong token: one line, exit 2.
    let o = good_run(addr, &token_file(&dir, "not the secret"));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("token") && err.lines().count() == 1, "{err}");
    // Without one: told that the server wants one.
    let o = sendpath()
        .args(["run", "--mode", "a1", "--duration", "0.1", "--remote"])
        .arg(addr.to_string())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--token-file"));

    // Stages would mix two hosts' kernel clocks: refused in one line.
    let o = sendpath()
        .args([
            "run",
            "--mode",
            "a1",
            "--duration",
            "0.1",
            "--timestamps",
            "--remote",
        ])
        .arg(addr.to_string())
        .arg("--token-file")
        .arg(&token)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("two hosts"));

    // And after all that, a good request is served.
    let r = assert_ok_record(&good_run(addr, &token));
    assert_eq!(r["remote"]["far_role"], "receiver");
    assert_eq!(r["remote"]["far"]["interface"]["name"], "lo");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_client_at_a_time_and_a_killed_client_frees_the_server() {
    let dir = temp_dir("busy");
    let token = token_file(&dir, TOKEN);
    let srv = serve(
        None,
        "127.0.0.1",
        &["--token-file", token.to_str().unwrap()],
    );
    let (mut first, w) = Raw::login(srv.addr, TOKEN);
    assert_eq!(w["type"], "welcome");
    let (mut second, busy) = Raw::login(srv.addr, TOKEN);
    assert_eq!(busy["code"], "busy", "{busy}");
    assert!(
        busy["message"].as_str().unwrap().contains("127.0.0.1"),
        "names the holder"
    );
    assert!(second.closed_within(Duration::from_secs(2)));
    let o = good_run(srv.addr, &token);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("busy"));
    first.send_line(b"{\"type\":\"bye\"}");
    assert!(first.closed_within(Duration::from_secs(2)));
    assert_ok_record(&good_run(srv.addr, &token));

    // A driver killed in the middle of a 20-second window.
    let mut victim = sendpath()
        .args([
            "run",
            "--mode",
            "a1",
            "--msg-size",
            "4096",
            "--duration",
            "20",
        ])
        .arg("--remote")
        .arg(srv.addr.to_string())
        .arg("--token-file")
        .arg(&token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    victim.kill().unwrap();
    victim.wait().unwrap();
    let killed = Instant::now();
    loop {
        let o = good_run(srv.addr, &token);
        if o.status.success() {
            assert_ok_record(&o);
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "still refused {:?} after the client died: {}",
            killed.elapsed(),
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn cell(r: &Value) -> String {
    let s = &r["spec"];
    format!(
        "{} {} {} {} {}",
        s["mode"], s["engine"], s["pattern"], s["msg_size_bytes"], s["flows"]
    )
}

#[test]
fn a_remote_sweep_over_veth_has_the_local_sweeps_cells_whole_in_both_directions() {
    if !is_root() {
        return skip(Skip::NeedsRoot, "network namespaces need root");
    }
    let (veth, _cleanup, name, prefix) = veth_up("sr", 202);
    let dir = temp_dir("veth");
    let token = token_file(&dir, TOKEN);
    let server_ip = veth.server_ip.to_string();
    let srv = serve(
        Some(&veth.server_ns),
        &server_ip,
        &["--token-file", token.to_str().unwrap()],
    );
    assert!(srv.banner.contains(&veth.server_if), "{}", srv.banner);
    let grid = [
        "--modes",
        "a1,a3",
        "--engines",
        "threads,uring",
        "--sizes",
        "2048",
        "--flows",
        "2",
        "--patterns",
        "stream,rr,rate",
        "--rate-fractions",
        "0.5",
        "--duration",
        "0.2",
        "--warmup",
        "0.05",
        "--reps",
        "1",
        "--no-progress",
        "--no-report",
    ];
    let (_, rx0) = veth.server_if_bytes().unwrap();
    let remote_dir = dir.join("remote");
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &veth.client_ns,
            env!("CARGO_BIN_EXE_sendpath"),
            "sweep",
            "--batch",
            "1",
        ])
        .args(grid)
        .arg("--out")
        .arg(&remote_dir)
        .args(["--remote", &srv.addr.to_string(), "--token-file"])
        .arg(&token)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, rx1) = veth.server_if_bytes().unwrap();
    let local_dir = dir.join("local");
    let net = ["--ns-name", name.as_str(), "--prefix", prefix.as_str()];
    let o = sendpath()
        .arg("sweep")
        .args(["--batch", "1"])
        .args(grid)
        .arg("--out")
        .arg(&local_dir)
        .args(["--topology", "veth"])
        .args(net)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let remote = records(&remote_dir.join("results.jsonl"));
    let local = records(&local_dir.join("results.jsonl"));
    let mut rc: Vec<String> = remote.iter().map(cell).collect();
    let mut lc: Vec<String> = local.iter().map(cell).collect();
    rc.sort();
    lc.sort();
    assert_eq!(rc, lc, "the same cells");
    assert_eq!(rc.len(), 12);
    let mut stream_bytes = 0;
    for r in &remote {
        assert_eq!(r["status"], "ok", "{}", r["error"]);
        assert_eq!(r["spec"]["topology"], "remote");
        assert!(r["sender"]["reported"].as_bool().unwrap());
        for side in ["sender", "receiver"] {
            let cpu = &r[side]["cpu"];
            assert!(
                cpu["user_ns"].as_u64().unwrap() + cpu["sys_ns"].as_u64().unwrap() > 0,
                "{side} CPU measured: {cell}: {} (rate per flow {})",
                r[side],
                r["spec"]["rate_per_flow_per_s"],
                cell = cell(r)
            );
        }
        assert_eq!(r["integrity"]["seq_errors"], 0);
        let rm = &r["remote"];
        assert_eq!(rm["far_role"], "receiver");
        assert_eq!(rm["far"]["interface"]["driver"], "veth", "{rm}");
        assert_eq!(rm["far"]["interface"]["name"], veth.server_if.as_str());
        assert_eq!(rm["driver"]["interface"]["name"], veth.client_if.as_str());
        assert!(rm["far"]["addr"].as_str().unwrap().starts_with(&server_ip));
        assert!(rm["driver"]["addr"]
            .as_str()
            .unwrap()
            .starts_with(&veth.client_ip.to_string()));
        assert!(rm["far"]["host"]["kernel"].is_string());
        assert!(rm["clock_uncertainty_ns"].as_u64().unwrap() < 10_000_000);
        if r["spec"]["mode"] == "a3" {
            assert_eq!(r["zerocopy"]["verdict"], "not_achieved", "veth copies");
        }
        if r["spec"]["pattern"] == "rate" {
            assert!(r["rate"]["achieved_per_flow_per_s"].as_f64().unwrap() > 0.0);
            assert!(
                r["latency_ns"]["p50"].as_u64().unwrap() > 0,
                "one-way from intended"
            );
        }
        if r["spec"]["pattern"] == "stream" {
            stream_bytes += r["throughput"]["bytes"].as_u64().unwrap();
            assert!(r["latency_ns"]["p50"].as_u64().unwrap() > 0);
        }
    }
    assert!(
        rx1 - rx0 >= stream_bytes,
        "the far end received {} bytes, the records count {stream_bytes}",
        rx1 - rx0
    );

    // The report names the far host and the interfaces the data crossed.
    let o = sendpath()
        .arg("report")
        .arg(remote_dir.join("results.jsonl"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(remote_dir.join("report.md")).unwrap();
    let line = md
        .lines()
        .find(|l| l.contains("two hosts: far host"))
        .unwrap_or_else(|| panic!("no two-hosts line in the report"));
    assert!(
        line.contains("receiving") && line.contains(&veth.server_if) && line.contains("veth"),
        "{line}"
    );

    // --reverse: the far host sends, its veth end transmits what this host's record counts.
    let (tx0, _) = veth.server_if_bytes().unwrap();
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &veth.client_ns,
            env!("CARGO_BIN_EXE_sendpath"),
            "run",
        ])
        .args([
            "--mode",
            "a3",
            "--engine",
            "uring",
            "--msg-size",
            "16384",
            "--verify",
        ])
        .args([
            "--duration",
            "0.3",
            "--warmup",
            "0.05",
            "--reverse",
            "--remote",
        ])
        .arg(srv.addr.to_string())
        .arg("--token-file")
        .arg(&token)
        .output()
        .unwrap();
    let r = assert_ok_record(&o);
    let (tx1, _) = veth.server_if_bytes().unwrap();
    assert_eq!(r["remote"]["far_role"], "sender");
    assert_eq!(r["integrity"]["verify_errors"], 0);
    assert!(r["integrity"]["verified_bytes"].as_u64().unwrap() > 0);
    assert!(
        r["zerocopy"]["completions"].as_u64().unwrap() > 0,
        "the far sender's accounting"
    );
    let bytes = r["throughput"]["bytes"].as_u64().unwrap();
    assert!(tx1 - tx0 >= bytes, "far end sent {} for {bytes}", tx1 - tx0);
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}
