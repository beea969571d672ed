//! What the `sendpath serve` tests share: a server process killed when dropped, a raw
//! control connection (a real driver's login and sealed lines, or any bytes), a test request,
//! and a good run through the real driver.

use sendpath_core::remote::auth::{challenge, Role, SessionKey, Token};
use sendpath_core::remote::conn::unseal;
use sendpath_core::remote::proto::PROTOCOL;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::sendpath;

pub const TOKEN: &str = "correct horse battery staple";

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sp-remote-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A `sendpath serve` process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub banner: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sendpath serve` (inside `netns` if given) on `listen`, port chosen by the OS, and
/// waits for its start-up line.
pub fn serve(netns: Option<&str>, listen: &str, extra: &[&str]) -> Server {
    let bin = env!("CARGO_BIN_EXE_sendpath");
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, bin]);
            c
        }
        None => Command::new(bin),
    };
    let mut child = cmd
        .args(["serve", "--listen", listen, "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let addr = banner
        .split_whitespace()
        .nth(4)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in the start-up line: {banner:?}"));
    Server {
        child,
        addr,
        banner,
    }
}

pub fn token_file(dir: &Path, secret: &str) -> PathBuf {
    let p = dir.join(format!("token-{}", secret.len()));
    std::fs::write(&p, format!("{secret}\n")).unwrap();
    p
}

/// A raw control connection, as a misbehaving client would hold it. Once logged in with a
/// token its lines are sealed as a real driver's are (`send_line`), and `send` writes bytes
/// as they are.
pub struct Raw {
    pub s: TcpStream,
    buf: Vec<u8>,
    seal: Option<(SessionKey, u64, u64)>,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        Raw::over(s)
    }

    pub fn over(s: TcpStream) -> Raw {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Raw {
            s,
            buf: Vec::new(),
            seal: None,
        }
    }

    /// The next line as JSON (opened with the session key once sealed; a plain line is taken
    /// as it is); None if the server closed the connection first.
    pub fn line(&mut self) -> Option<Value> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut l: Vec<u8> = self.buf.drain(..=i).collect();
                l.pop();
                if let Some((key, _, received)) = &mut self.seal {
                    if let Ok(m) = unseal(key, Role::Server, *received, &l) {
                        *received += 1;
                        return Some(serde_json::to_value(m).unwrap());
                    }
                }
                return Some(serde_json::from_slice(&l).expect("the server writes JSON lines"));
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Writes `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.s.write_all(bytes);
    }

    /// Sends one line (`bytes`, a trailing newline optional), sealed once logged in.
    pub fn send_line(&mut self, bytes: &[u8]) {
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let line = self.sealed(body);
        self.send(&line);
    }

    /// `body` as the next sealed line of this driver (the counter moves on), with its newline.
    pub fn sealed(&mut self, body: &[u8]) -> Vec<u8> {
        let mut l = match &mut self.seal {
            Some((key, sent, _)) => {
                let mac = key.seal(Role::Driver, *sent, body);
                *sent += 1;
                let mut l =
                    format!("{{\"n\":{},\"mac\":\"{mac}\",\"msg\":", *sent - 1).into_bytes();
                l.extend_from_slice(body);
                l.push(b'}');
                l
            }
            None => body.to_vec(),
        };
        l.push(b'\n');
        l
    }

    /// Reads the greeting and logs in with `secret` as a real driver does (its challenge, its
    /// proof, then sealed lines); returns the server's answer.
    pub fn login(addr: SocketAddr, secret: &str) -> (Raw, Value) {
        let mut r = Raw::connect(addr);
        let hello = r.line().expect("a greeting");
        assert_eq!(hello["type"], "hello");
        assert_eq!(hello["auth"], "hmac-sha256");
        let sc = hello["challenge"].as_str().unwrap().to_string();
        let dc = challenge().unwrap();
        let token = Token::new(secret.as_bytes());
        let proof = token.prove(Role::Driver, &sc, &dc);
        r.send(
            format!(
                "{}\n",
                json!({"type": "login", "protocol": PROTOCOL, "response": proof, "challenge": dc})
            )
            .as_bytes(),
        );
        r.seal = Some((token.session_key(&sc, &dc), 0, 0));
        let reply = r.line().expect("an answer to the login");
        if reply["type"] == "welcome" {
            assert!(
                token.accepts(Role::Server, &sc, &dc, reply["proof"].as_str().unwrap()),
                "the server proves the token: {reply}"
            );
        }
        (r, reply)
    }

    /// The connection ends (the server closed it) within `within`.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        self.s.set_read_timeout(Some(within)).unwrap();
        let mut b = [0u8; 1024];
        matches!(self.s.read(&mut b), Ok(0)) || matches!(self.s.read(&mut b), Ok(0))
    }
}

pub fn test_request(spec: Value) -> Vec<u8> {
    test_request_as(spec, "receiver")
}

/// A test request of RunSpec::default() with `spec`'s fields, the far host playing `far_role`.
pub fn test_request_as(spec: Value, far_role: &str) -> Vec<u8> {
    let mut base = serde_json::to_value(sendpath_core::spec::RunSpec::default()).unwrap();
    for (k, v) in spec.as_object().unwrap() {
        base[k] = v.clone();
    }
    format!(
        "{}\n",
        json!({"type": "test", "spec": base, "far_role": far_role, "sender_clock_ahead_ns": 0})
    )
    .into_bytes()
}

/// A good cell through the server, with the real driver.
pub fn good_run(addr: SocketAddr, token: &Path) -> std::process::Output {
    sendpath()
        .args(["run", "--mode", "a2", "--msg-size", "1024"])
        .args(["--duration", "0.2", "--warmup", "0.05", "--remote"])
        .arg(addr.to_string())
        .arg("--token-file")
        .arg(token)
        .output()
        .unwrap()
}

pub fn assert_ok_record(o: &std::process::Output) -> Value {
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["spec"]["topology"], "remote");
    assert!(r["throughput"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(r["integrity"]["seq_errors"], 0);
    assert!(
        r["sender"]["reported"].as_bool().unwrap(),
        "both sides reported"
    );
    r
}
