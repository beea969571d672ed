//! `sendpath serve` against hostile peers, through real sockets and the real binary: every
//! class of attack the server must survive (trusted hello fields, memory the limits did not
//! count, a live peer that never ends its test, tampering after login, crowding, serving
//! unauthenticated by accident). Each case gets its error code, a real `sendpath run --remote`
//! succeeds right after it, and the server's peak RSS stays under its memory bound + 64 MiB.
//! Lines starting `MEASURED` are figures for the note (`--nocapture` shows them).

use crate::common::sendpath;
use crate::serve_util::*;
use sendpath_core::remote::auth::challenge;
use sendpath_core::send::hello_for;
use sendpath_core::spec::RunSpec;
use sendpath_core::wire::message::put_header;
use sendpath_core::wire::HELLO_LEN;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// The server's memory bound in these tests (`serve --max-buffer-mib`).
const BOUND_MIB: u64 = 256;
/// Warm-up and window of the cases that run, and the server's fixed grace past them.
const WARMUP_S: f64 = 0.05;
const WINDOW_S: f64 = 0.2;
const GRACE_S: f64 = 5.0;

fn hostile_server(tag: &str) -> (Server, std::path::PathBuf, std::path::PathBuf) {
    let dir = temp_dir(tag);
    let token = token_file(&dir, TOKEN);
    let srv = serve(
        None,
        "127.0.0.1",
        &[
            "--token-file",
            token.to_str().unwrap(),
            "--max-buffer-mib",
            &BOUND_MIB.to_string(),
        ],
    );
    (srv, dir, token)
}

/// The spec of a test request: RunSpec::default() with `fields`, short.
fn spec_of(fields: Value) -> RunSpec {
    let mut base = serde_json::to_value(RunSpec {
        warmup_s: WARMUP_S,
        duration_s: WINDOW_S,
        ..RunSpec::default()
    })
    .unwrap();
    for (k, v) in fields.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value(base).unwrap()
}

/// Logs in and asks for `spec` with the far host playing `far_role`; returns the session
/// and the server's next line (ready, or the refusal).
fn ask(addr: SocketAddr, spec: &RunSpec, far_role: &str) -> (Raw, Value) {
    let (mut s, welcome) = Raw::login(addr, TOKEN);
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let line = json!({"type": "test", "spec": spec, "far_role": far_role,
                      "sender_clock_ahead_ns": 0});
    s.send_line(line.to_string().as_bytes());
    let reply = s.line().expect("an answer to the test");
    (s, reply)
}

fn data(addr: SocketAddr, ready: &Value) -> TcpStream {
    assert_eq!(ready["type"], "ready", "{ready}");
    let port = ready["data_port"].as_u64().unwrap() as u16;
    TcpStream::connect(SocketAddr::new(addr.ip(), port)).unwrap()
}

fn assert_error(reply: &Value, code: &str, needle: &str, what: &str) {
    assert_eq!(reply["type"], "error", "{what}: {reply}");
    assert_eq!(reply["code"], code, "{what}: {reply}");
    let m = reply["message"].as_str().unwrap();
    assert!(m.contains(needle), "{what}: {m}");
}

/// Ends a session and waits until the server let go of it.
fn bye(mut s: Raw) {
    s.send_line(b"{\"type\":\"bye\"}");
    assert!(s.closed_within(Duration::from_secs(2)));
}

/// A real driver's run succeeds after `what`.
fn served_after(addr: SocketAddr, token: &Path, what: &str) {
    let o = good_run(addr, token);
    assert!(
        o.status.success(),
        "a good run after {what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_ok_record(&o);
}

/// The server process's peak resident memory, from the kernel.
fn peak_rss_mib(srv: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", srv.child.id())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib / 1024
}

fn assert_alive_and_bounded(srv: &mut Server) {
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "the server is still running (no abort, no panic)"
    );
    let peak = peak_rss_mib(srv);
    eprintln!("MEASURED hostile: server peak RSS {peak} MiB (bound {BOUND_MIB} MiB + 64)");
    assert!(peak < BOUND_MIB + 64, "peak RSS {peak} MiB");
}

#[test]
fn data_connections_and_requests_outside_the_admitted_test_are_refused() {
    let (mut srv, dir, token) = hostile_server("hello");
    let addr = srv.addr;
    // Hello frames that differ from the agreed one: (what, the test, flows' frames from the
    // agreed hellos, the server's reason).
    type Tamper = fn(&RunSpec) -> Vec<[u8; HELLO_LEN]>;
    let a3_rr = json!({"mode": "a3", "pattern": "rr", "msg_size": 64});
    let cases: Vec<(&str, Value, Tamper, &str)> = vec![
        (
            "a hello asking for 4294967295 zero-copy slots (~512 GiB)",
            a3_rr.clone(),
            |spec| {
                let mut h = hello_for(spec, 0).encode();
                h[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
                vec![h]
            },
            "zero-copy slots",
        ),
        (
            "a hello with 0 zero-copy slots",
            a3_rr,
            |spec| {
                let mut h = hello_for(spec, 0).encode();
                h[28..32].fill(0);
                vec![h]
            },
            "zero-copy slots",
        ),
        (
            "two data connections announcing flow 0",
            json!({"flows": 2}),
            |spec| vec![hello_for(spec, 0).encode(), hello_for(spec, 0).encode()],
            "flow index 0 announced twice",
        ),
        (
            "a flow index beyond the test's flows",
            json!({}),
            |spec| vec![hello_for(spec, 7).encode()],
            "flow index 7 of 1",
        ),
        (
            "a schedule starting an hour from now",
            json!({"pattern": "rate", "rate": 1000.0}),
            |spec| {
                let mut h = hello_for(spec, 0);
                h.sched0_ns += 3600 * 1_000_000_000;
                vec![h.encode()]
            },
            "schedule starts 3600",
        ),
        (
            "flags the test did not ask for (verify)",
            json!({}),
            |spec| {
                let mut h = hello_for(spec, 0);
                h.verify = true;
                vec![h.encode()]
            },
            "flags",
        ),
        (
            "a message size other than the test's",
            json!({}),
            |spec| {
                let mut h = hello_for(spec, 0);
                h.msg_size = 16 << 20;
                vec![h.encode()]
            },
            "message size",
        ),
    ];
    for (what, fields, tamper, needle) in cases {
        let spec = spec_of(fields);
        let (mut s, ready) = ask(addr, &spec, "receiver");
        let conns: Vec<TcpStream> = tamper(&spec)
            .into_iter()
            .map(|frame| {
                let mut c = data(addr, &ready);
                c.write_all(&frame).unwrap();
                c
            })
            .collect();
        let reply = s.line().unwrap_or_else(|| panic!("{what}: no reply"));
        assert_error(&reply, "failed", needle, what);
        drop(conns);
        bye(s);
        served_after(addr, &token, what);
    }

    // Requests whose memory the old bound did not count: refused before anything runs.
    for (what, fields, needle) in [
        (
            "rr responses of 16 MiB in 65536 zero-copy slots",
            json!({"mode": "a3", "pattern": "rr", "msg_size": 16,
                   "resp_size": 16 << 20, "zc_slots": 65536}),
            "--resp-size",
        ),
        (
            "64 flows of 16 MiB messages with one slot",
            json!({"msg_size": 16 << 20, "flows": 64, "zc_slots": 1}),
            "receive buffers",
        ),
        (
            "8 flows of 4 MiB rr responses in 16 slots",
            json!({"mode": "a3", "pattern": "rr", "msg_size": 64,
                   "resp_size": 4 << 20, "zc_slots": 16, "flows": 8}),
            "send buffers",
        ),
    ] {
        let (s, reply) = ask(addr, &spec_of(fields), "receiver");
        assert_error(&reply, "invalid", needle, what);
        bye(s);
        served_after(addr, &token, what);
    }
    assert_alive_and_bounded(&mut srv);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A peer that holds its test open: the server's reply comes by its own deadline, the test
/// failed and cut off; returns how long after the data connections the reply came.
fn cut_off(s: &mut Raw, since: Instant, what: &str) -> Duration {
    let reply = s.line().unwrap_or_else(|| panic!("{what}: no reply"));
    let took = since.elapsed();
    assert_error(&reply, "failed", "cut off", what);
    let bound = Duration::from_secs_f64(WARMUP_S + WINDOW_S + GRACE_S + 1.5);
    assert!(took < bound, "{what}: {took:?}");
    eprintln!(
        "MEASURED hostile: {what}: server free {:.2} s after the data connections (warm-up + window + grace = {:.2} s)",
        took.as_secs_f64(),
        WARMUP_S + WINDOW_S + GRACE_S
    );
    took
}

#[test]
fn a_live_peer_cannot_hold_a_test_past_the_servers_deadline() {
    let (mut srv, dir, token) = hostile_server("deadline");
    let addr = srv.addr;

    // The far host sends (a3, zero-copy completions outstanding); the peer never reads and
    // never asks for the end.
    let what = "a peer that never asks for the end (far a3 sender)";
    let (mut s, ready) = ask(
        addr,
        &spec_of(json!({"mode": "a3", "msg_size": 65536})),
        "sender",
    );
    let quiet = data(addr, &ready);
    let t = Instant::now();
    cut_off(&mut s, t, what);
    drop(quiet);
    bye(s);
    served_after(addr, &token, what);

    // The far host receives; the peer keeps sending valid messages and never sends the end
    // frame the server asks for.
    let what = "a peer that never answers the end request (far receiver)";
    let spec = spec_of(json!({"msg_size": 1024}));
    let (mut s, ready) = ask(addr, &spec, "receiver");
    let mut c = data(addr, &ready);
    c.write_all(&hello_for(&spec, 0).encode()).unwrap();
    let t = Instant::now();
    let flood = std::thread::spawn(move || {
        let mut m = vec![0u8; 1024];
        let until = Instant::now() + Duration::from_secs(20);
        for seq in 0u64.. {
            put_header(&mut m, seq, sendpath_core::time::now_ns());
            if c.write_all(&m).is_err() || Instant::now() > until {
                return seq;
            }
        }
        unreachable!()
    });
    cut_off(&mut s, t, what);
    assert!(flood.join().unwrap() > 0);
    bye(s);
    served_after(addr, &token, what);

    // The far host answers rr requests (a3 on io_uring); the peer keeps requesting.
    let what = "a peer that keeps the rr responder busy (far a3 io_uring)";
    let spec = spec_of(json!({"mode": "a3", "engine": "uring", "pattern": "rr", "msg_size": 64}));
    let (mut s, ready) = ask(addr, &spec, "sender");
    let mut c = data(addr, &ready);
    let t = Instant::now();
    let pester = std::thread::spawn(move || {
        let mut hello = [0u8; HELLO_LEN];
        c.read_exact(&mut hello).unwrap();
        let (mut req, mut resp) = ([0u8; 64], [0u8; 64]);
        let until = Instant::now() + Duration::from_secs(20);
        for seq in 0u64.. {
            put_header(&mut req, seq, sendpath_core::time::now_ns());
            if c.write_all(&req).is_err() || c.read_exact(&mut resp).is_err() {
                return seq;
            }
            assert!(Instant::now() < until, "never cut off");
        }
        unreachable!()
    });
    cut_off(&mut s, t, what);
    assert!(pester.join().unwrap() > 100, "the responder was kept busy");
    bye(s);
    served_after(addr, &token, what);

    assert_alive_and_bounded(&mut srv);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A proxy between the driver and `to` that forwards every byte, except that it flips one
/// byte of the driver's first line after its login; it counts the server's lines that
/// announce a ready test.
fn tampering_proxy(to: SocketAddr) -> (SocketAddr, std::thread::JoinHandle<usize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let (driver, _) = l.accept().unwrap();
        let server = TcpStream::connect(to).unwrap();
        let (d2, s2) = (driver.try_clone().unwrap(), server.try_clone().unwrap());
        let readies = std::thread::spawn(move || {
            let mut n = 0;
            let mut out = d2;
            for line in BufReader::new(s2).split(b'\n') {
                let Ok(mut line) = line else { break };
                n += usize::from(String::from_utf8_lossy(&line).contains("\"type\":\"ready\""));
                line.push(b'\n');
                if out.write_all(&line).is_err() {
                    break;
                }
            }
            let _ = out.shutdown(std::net::Shutdown::Both);
            n
        });
        let mut out = server;
        for (i, line) in BufReader::new(driver).split(b'\n').enumerate() {
            let Ok(mut line) = line else { break };
            if i == 1 {
                // The first sealed line (a clock probe): the last digit of its time changes.
                let text = String::from_utf8_lossy(&line).into_owned();
                let at = text.find(",\"t1_ns\"").expect("a clock probe") - 1;
                line[at] ^= 1;
            }
            line.push(b'\n');
            if out.write_all(&line).is_err() {
                break;
            }
        }
        let _ = out.shutdown(std::net::Shutdown::Both);
        readies.join().unwrap()
    });
    (at, h)
}

/// A server that greets like `sendpath serve` with a token but cannot prove it.
fn impostor() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let (c, _) = l.accept().unwrap();
        let mut r = Raw::over(c);
        let hello = json!({"type": "hello", "protocol": sendpath_core::remote::proto::PROTOCOL,
                           "software": "impostor", "auth": "hmac-sha256",
                           "challenge": challenge().unwrap()});
        r.send(format!("{hello}\n").as_bytes());
        let _login = r.line();
        let welcome = json!({"type": "welcome", "proof": "00".repeat(32),
                             "host": serde_json::to_value(sendpath_core::host::facts()).unwrap()});
        r.send(format!("{welcome}\n").as_bytes());
        let _ = r.line();
    });
    (at, h)
}

fn run_remote(addr: SocketAddr, token: Option<&Path>) -> std::process::Output {
    let mut c = sendpath();
    c.args([
        "run",
        "--mode",
        "a1",
        "--duration",
        "0.1",
        "--warmup",
        "0.02",
    ])
    .arg("--remote")
    .arg(addr.to_string());
    if let Some(t) = token {
        c.arg("--token-file").arg(t);
    }
    c.output().unwrap()
}

fn refused_in_one_line(o: &std::process::Output, needle: &str, what: &str) {
    assert_eq!(o.status.code(), Some(2), "{what}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(needle) && err.trim().lines().count() == 1,
        "{what}: {err}"
    );
}

#[test]
fn tampering_impostors_crowds_and_open_defaults_are_refused() {
    let (mut srv, dir, token) = hostile_server("auth");
    let addr = srv.addr;

    let what = "a control line altered in flight after login";
    let (proxy, proxied) = tampering_proxy(addr);
    let o = run_remote(proxy, Some(&token));
    refused_in_one_line(&o, "failed its MAC", what);
    assert_eq!(proxied.join().unwrap(), 0, "{what}: nothing ran");
    served_after(addr, &token, what);

    let what = "a sealed line replayed";
    let (mut s, _) = Raw::login(addr, TOKEN);
    let clock = s.sealed(b"{\"type\":\"clock\",\"t0_ns\":1}");
    s.send(&clock);
    assert_eq!(s.line().unwrap()["t0_ns"], 1);
    s.send(&clock);
    assert_error(&s.line().unwrap(), "auth", "replayed", what);
    assert!(s.closed_within(Duration::from_secs(2)), "{what}: closed");
    served_after(addr, &token, what);

    let what = "a plain line injected after login";
    let (mut s, _) = Raw::login(addr, TOKEN);
    s.send(b"{\"type\":\"bye\"}\n");
    assert_error(&s.line().unwrap(), "auth", "without its MAC", what);
    assert!(s.closed_within(Duration::from_secs(2)), "{what}: closed");
    served_after(addr, &token, what);

    let what = "a driver holding a token meets a server without one";
    let open = serve(None, "127.0.0.1", &[]);
    refused_in_one_line(
        &run_remote(open.addr, Some(&token)),
        "asks for no token",
        what,
    );
    assert_ok_record(&run_remote(open.addr, None));
    served_after(addr, &token, what);

    let what = "a server that cannot prove the token";
    let (fake, faked) = impostor();
    refused_in_one_line(&run_remote(fake, Some(&token)), "could not prove", what);
    faked.join().unwrap();
    served_after(addr, &token, what);

    // Sixteen connections from another address, reopened as the server lets them go: four
    // are let in to log in at a time, the rest told busy, and the real driver gets in.
    let what = "another address cycling sixteen connections that never log in";
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let crowd: Vec<_> = (0..16)
        .map(|_| {
            let (stop, busy) = (stop.clone(), busy.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(mut r) = connect_from("127.0.0.2", addr) else {
                        continue;
                    };
                    if r.line().is_some_and(|l| l["code"] == "busy") {
                        busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(20));
                    } else {
                        // Held until the server's login bound cuts it off.
                        let _ = r.closed_within(Duration::from_secs(6));
                    }
                }
            })
        })
        .collect();
    // The real driver comes once the crowd fills the address's handshakes: one was told busy.
    let t = std::time::Instant::now();
    let told_busy = loop {
        if busy.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            break true;
        }
        if t.elapsed() > Duration::from_secs(10) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if !told_busy {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    assert!(told_busy, "{what}: the crowd was never told busy");
    for _ in 0..3 {
        served_after(addr, &token, what);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in crowd {
        c.join().unwrap();
    }
    served_after(addr, &token, what);

    // Serving every interface without a token needs --no-auth, and warns.
    let o = sendpath()
        .args(["serve", "--listen", "0.0.0.0", "--port", "0"])
        .output()
        .unwrap();
    refused_in_one_line(&o, "--no-auth", "serve on 0.0.0.0 without a token");
    let mut open = std::process::Command::new(env!("CARGO_BIN_EXE_sendpath"))
        .args(["serve", "--listen", "0.0.0.0", "--port", "0", "--no-auth"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut warning = String::new();
    BufReader::new(open.stderr.take().unwrap())
        .read_line(&mut warning)
        .unwrap();
    let _ = open.kill();
    let _ = open.wait();
    assert!(
        warning.contains("WARNING") && warning.contains("anyone"),
        "{warning}"
    );

    assert_alive_and_bounded(&mut srv);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A control connection from `source` (another loopback address) to `to`.
fn connect_from(source: &str, to: SocketAddr) -> std::io::Result<Raw> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: plain socket calls on a descriptor this function owns from here on.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let sin = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 only")
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let from = sin(source.parse().unwrap(), 0);
    let dest = sin(*to.ip(), to.port());
    // SAFETY: valid sockaddr_in values of the length passed.
    unsafe {
        if libc::bind(fd, (&from as *const libc::sockaddr_in).cast(), len) != 0
            || libc::connect(fd, (&dest as *const libc::sockaddr_in).cast(), len) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(Raw::over(TcpStream::from(owned)))
}
