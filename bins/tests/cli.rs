//! The per-mode binaries' user contract, through the real executables.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

fn bin(mode: &str) -> Command {
    Command::new(match mode {
        "a1" => env!("CARGO_BIN_EXE_sendpath-a1"),
        "a2" => env!("CARGO_BIN_EXE_sendpath-a2"),
        _ => env!("CARGO_BIN_EXE_sendpath-a3"),
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_server(mode: &str, port: u16, extra: &[&str]) -> Child {
    bin(mode)
        .args(["server", "--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn client(mode: &str, port: u16, extra: &[&str]) -> Output {
    bin(mode)
        .args(["client", "--connect", &format!("127.0.0.1:{port}")])
        .args(extra)
        .output()
        .unwrap()
}

/// Waits for a child with a bound; kills it and fails if it hangs.
fn wait_bounded(mut c: Child, limit: Duration) -> Output {
    let t = Instant::now();
    loop {
        if c.try_wait().unwrap().is_some() {
            return c.wait_with_output().unwrap();
        }
        if t.elapsed() > limit {
            let _ = c.kill();
            let mut err = String::new();
            c.stderr.take().unwrap().read_to_string(&mut err).ok();
            panic!("process hung for {limit:?}; stderr: {err}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn summary_field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} missing in {line}"))
        .parse()
        .unwrap()
}

#[test]
fn study_form_server_with_two_clients() {
    let port = free_port();
    let server = spawn_server(
        "a1",
        port,
        &[
            "--msg-size",
            "1024",
            "--duration",
            "0.4",
            "--warmup",
            "0.1",
            "--clients",
            "2",
        ],
    );
    let c1 = thread::spawn(move || client("a1", port, &["--json"]));
    let c2 = client("a1", port, &[]);
    let c1 = c1.join().unwrap();
    let s = wait_bounded(server, Duration::from_secs(20));
    for c in [&c1, &c2] {
        let (out, err) = text(c);
        assert!(c.status.success(), "client failed: {out} {err}");
        let line = out
            .lines()
            .find(|l| l.starts_with("SUMMARY "))
            .expect("SUMMARY line");
        assert!(summary_field(line, "bytes") > 0.0);
        assert!(summary_field(line, "msgs") > 0.0);
        assert!(summary_field(line, "p50_us") > 0.0);
        assert!((summary_field(line, "seconds") - 0.4).abs() < 1e-9);
    }
    let (out, _) = text(&c1);
    let json = out
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("--json record");
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["schema"], "sendpath/v1");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["spec"]["mode"], "a1");
    assert_eq!(
        v["spec"]["msg_size_bytes"], 1024,
        "the client learned the size from the hello"
    );
    assert_eq!(v["integrity"]["seq_errors"], 0);
    assert_eq!(v["latency_ns"]["count"], v["throughput"]["messages"]);
    assert_eq!(
        v["sender"]["reported"], true,
        "end frame carried the server's side"
    );
    let (sout, serr) = text(&s);
    assert!(s.status.success(), "{sout} {serr}");
    assert!(sout.contains("SERVER mode=a1") && sout.contains("clients=2"));
}

#[test]
fn a3_client_reports_copied_zero_copy() {
    let port = free_port();
    let server = spawn_server(
        "a3",
        port,
        &[
            "--msg-size",
            "16384",
            "--duration",
            "0.3",
            "--warmup",
            "0.1",
        ],
    );
    let c = client("a3", port, &["--json"]);
    wait_bounded(server, Duration::from_secs(20));
    let (out, err) = text(&c);
    assert!(c.status.success(), "{out} {err}");
    let v: serde_json::Value =
        serde_json::from_str(out.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(v["zerocopy"]["completions"], v["zerocopy"]["sends"]);
    assert_eq!(v["zerocopy"]["verdict"], "not_achieved");
}

#[test]
fn a_batched_server_tells_its_client_the_batch_and_the_record_says_what_ran() {
    let port = free_port();
    let server = spawn_server(
        "a2",
        port,
        &[
            "--msg-size",
            "1K",
            "--batch",
            "64K",
            "--duration",
            "0.3",
            "--warmup",
            "0.1",
        ],
    );
    let c = client("a2", port, &["--json"]);
    wait_bounded(server, Duration::from_secs(20));
    let (out, err) = text(&c);
    assert!(c.status.success(), "{out} {err}");
    let v: serde_json::Value =
        serde_json::from_str(out.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(v["spec"]["batch"], "64K", "the hello carried the batch");
    assert_eq!(v["calls"]["batch_messages"], 64);
    let per_call = v["calls"]["messages_per_call"].as_f64().unwrap();
    assert!((per_call / 64.0 - 1.0).abs() <= 0.05, "{per_call}");
}

fn assert_one_line_error(o: &Output, needle: &str) {
    let (out, err) = text(o);
    assert!(!o.status.success(), "should fail: {out}");
    assert_eq!(o.status.code(), Some(2), "bad input exits 2: {err}");
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.starts_with("error:") && first.contains(needle),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_message_sizes_are_refused() {
    let port = free_port().to_string();
    for (size, needle) in [
        ("8", "below the 16-byte"),
        ("1073741824", "16 MiB"),
        ("x", "invalid value"),
    ] {
        let o = bin("a2")
            .args(["server", "--port", &port, "--msg-size", size])
            .output()
            .unwrap();
        assert_one_line_error(&o, needle);
    }
}

#[test]
fn zero_clients_is_refused() {
    let o = bin("a1")
        .args([
            "server",
            "--port",
            &free_port().to_string(),
            "--clients",
            "0",
        ])
        .output()
        .unwrap();
    assert_one_line_error(&o, "--flows 0");
}

#[test]
fn port_in_use_is_a_clear_error() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let o = bin("a1")
        .args(["server", "--bind", "127.0.0.1", "--port", &port])
        .output()
        .unwrap();
    assert_one_line_error(&o, "already in use");
}

#[test]
fn connection_refused_is_bounded_and_clear() {
    let port = free_port();
    let t = Instant::now();
    let o = client("a1", port, &[]);
    assert!(t.elapsed() < Duration::from_secs(15));
    assert_one_line_error(&o, "refused");
}

#[test]
fn client_of_another_mode_is_told_so() {
    let port = free_port();
    let server = spawn_server("a1", port, &["--duration", "0.3", "--accept-timeout", "10"]);
    let o = client("a2", port, &[]);
    let _ = wait_bounded(server, Duration::from_secs(20));
    assert_one_line_error(&o, "mode a1 but this client expects mode a2");
}

#[test]
fn server_dying_mid_run_fails_the_client_but_keeps_its_numbers() {
    let port = free_port();
    let mut server = spawn_server("a2", port, &["--duration", "30", "--warmup", "0"]);
    let killer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(700));
        server.kill().unwrap();
        server.wait().unwrap();
    });
    let t = Instant::now();
    let o = client("a2", port, &["--json"]);
    killer.join().unwrap();
    assert!(t.elapsed() < Duration::from_secs(15), "no hang");
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a failed run exits 1: {out} {err}"
    );
    let v: serde_json::Value =
        serde_json::from_str(out.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(v["status"], "failed");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("sender's side of the record is missing"));
    assert!(
        v["throughput"]["messages"].as_u64().unwrap() > 0,
        "kept what it measured"
    );
    assert_eq!(v["sender"]["reported"], false);
}

#[test]
fn client_dying_mid_run_ends_the_server_with_an_error() {
    let port = free_port();
    let server = spawn_server("a1", port, &["--duration", "30", "--warmup", "0"]);
    let mut c = bin("a1")
        .args(["client", "--connect", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(700));
    c.kill().unwrap();
    c.wait().unwrap();
    let s = wait_bounded(server, Duration::from_secs(15));
    let (_, err) = text(&s);
    assert_eq!(s.status.code(), Some(1), "a run that failed exits 1: {err}");
    assert!(err.contains("peer closed"), "{err}");
}

#[test]
fn uring_server_multiplexes_two_clients_on_one_ring() {
    if let Some(why) = sendpath_core::send::uring::missing_for(sendpath_core::spec::Mode::A3) {
        return sendpath_core::testing::skip(sendpath_core::testing::Skip::NoIoUring, &why);
    }
    let port = free_port();
    let server = spawn_server(
        "a3",
        port,
        &[
            "--engine",
            "uring",
            "--threads",
            "1",
            "--clients",
            "2",
            "--msg-size",
            "16384",
            "--duration",
            "0.3",
            "--warmup",
            "0.1",
            "--verify",
        ],
    );
    let c1 = thread::spawn(move || client("a3", port, &["--json"]));
    let c2 = client("a3", port, &[]);
    let c1 = c1.join().unwrap();
    let s = wait_bounded(server, Duration::from_secs(20));
    let (sout, serr) = text(&s);
    assert!(s.status.success(), "{sout} {serr}");
    assert!(sout.contains("engine=uring"), "{sout}");
    let (o2, e2) = text(&c2);
    assert!(c2.status.success(), "{o2} {e2}");
    let (out, err) = text(&c1);
    assert!(c1.status.success(), "{out} {err}");
    let v: serde_json::Value =
        serde_json::from_str(out.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["spec"]["engine"], "uring");
    assert_eq!(v["spec"]["threads"], 1, "learned from the end frame");
    assert!(v["spec"]["uring"]["depth"].as_u64().unwrap() >= 1);
    assert_eq!(v["integrity"]["verify_errors"], 0);
    assert_eq!(v["zerocopy"]["completions"], v["zerocopy"]["sends"]);
}

#[test]
fn a3_without_so_zerocopy_fails_clearly_and_never_falls_back() {
    // The test hook makes A3 behave as on a kernel that refuses SO_ZEROCOPY.
    let port = free_port();
    let server = bin("a3")
        .env("SENDPATH_TEST_NO_SO_ZEROCOPY", "1")
        .args(["server", "--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--duration", "0.3", "--accept-timeout", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let c = client("a3", port, &["--json"]);
    let s = wait_bounded(server, Duration::from_secs(20));
    let (out, err) = text(&c);
    assert_eq!(c.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("SO_ZEROCOPY"), "the client says why: {err}");
    let v: serde_json::Value =
        serde_json::from_str(out.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(
        v["throughput"]["messages"], 0,
        "nothing was sent by any other path"
    );
    let (_, serr) = text(&s);
    assert!(!s.status.success());
    assert!(
        serr.lines()
            .any(|l| l.starts_with("error:") && l.contains("SO_ZEROCOPY")),
        "one error line says why: {serr}"
    );
}
