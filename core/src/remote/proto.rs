//! The control protocol's messages and its framing: one JSON object per line, each read
//! with a length bound and a deadline. Written down in `docs/control-protocol.md`.

use crate::error::{Error, Result};
use crate::host::HostFacts;
use crate::spec::RunSpec;
use crate::wire::end::SenderReport;
use sendpath_record::v1::{Interface, Record};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Version of the control protocol; both ends must speak the same.
pub const PROTOCOL: u32 = 1;
/// Default control port of `sendpath serve`.
pub const DEFAULT_PORT: u16 = 5301;
/// Longest line the server reads (a test request is well under 2 KiB).
pub const MAX_REQUEST_LINE: usize = 16 * 1024;
/// Longest line the driver reads (a result carries a record with its histograms).
pub const MAX_REPLY_LINE: usize = 16 * 1024 * 1024;

/// Who the far host is in a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FarRole {
    /// The far host receives (the driver's send path is measured): the default.
    Receiver,
    /// The far host sends (`--reverse`, as iperf3 -R).
    Sender,
}

impl FarRole {
    /// The name recorded in `remote.far_role`.
    pub fn as_str(self) -> &'static str {
        match self {
            FarRole::Receiver => "receiver",
            FarRole::Sender => "sender",
        }
    }
}

/// How the server checks who is talking to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthKind {
    /// Anyone who can reach the port.
    None,
    /// HMAC-SHA256 of the challenge under the shared token.
    HmacSha256,
}

/// Why a request was refused: one word a program can act on, with a sentence for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The two ends speak different protocol versions.
    Version,
    /// Missing or wrong token.
    Auth,
    /// Another client is running tests.
    Busy,
    /// A test request outside the limits, or options that contradict each other.
    Invalid,
    /// Not JSON, or not a message of this protocol.
    Malformed,
    /// A line over the length bound.
    TooLong,
    /// The next line did not arrive in time.
    Timeout,
    /// A valid message at the wrong moment.
    Unexpected,
    /// The test started but could not run (e.g. a data connection never came).
    Failed,
}

/// One test: the cell to run, who the far host is, and the clocks' offset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestRequest {
    /// The cell, as the driver resolved it. `pin` applies on both hosts: each pins its own
    /// side's threads to the CPUs listed for that side.
    pub spec: RunSpec,
    /// What the far host does.
    pub far_role: FarRole,
    /// The sender's CLOCK_MONOTONIC minus the receiver's (only the far host's receivers use
    /// it, to put one-way latency on their own clock).
    pub sender_clock_ahead_ns: i64,
}

/// What the far host measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    /// The record the far host's receivers wrote (`far_role` receiver), whole with the
    /// driver's side from the end frames.
    pub record: Option<Box<Record>>,
    /// Each flow's sender report (`far_role` sender), in flow order.
    pub reports: Vec<SenderReport>,
    /// The first error of the far host's side.
    pub error: Option<String>,
    /// The far host's interface that carried the data.
    pub interface: Option<Interface>,
}

/// A line of the control protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// Server, first line: who it is and the challenge to answer.
    Hello {
        /// [`PROTOCOL`] of the server.
        protocol: u32,
        /// `sendpath <version>`.
        software: String,
        /// Whether a token is required.
        auth: AuthKind,
        /// 32 random bytes as hex, fresh per connection.
        challenge: String,
    },
    /// Client, first line: its version and the answer to the challenge.
    Login {
        /// [`PROTOCOL`] of the client.
        protocol: u32,
        /// HMAC-SHA256(token, challenge) as hex; absent without a token.
        #[serde(default)]
        response: Option<String>,
    },
    /// Server: accepted; the far host's facts.
    Welcome {
        /// The far host.
        host: Box<HostFacts>,
    },
    /// Client: a clock probe sent at `t0_ns` (its CLOCK_MONOTONIC); the server answers with
    /// `t1_ns` (its own) filled in.
    Clock {
        /// Client clock when sent.
        t0_ns: u64,
        /// Server clock when answered.
        #[serde(default)]
        t1_ns: Option<u64>,
    },
    /// Client: run a test.
    Test(Box<TestRequest>),
    /// Server: listening for the data connections on this port.
    Ready {
        /// Data port on the control connection's server address.
        data_port: u16,
    },
    /// Server: the test ended.
    Finished(Box<Finished>),
    /// Either side: the request failed; the server closes the connection after any code
    /// but `invalid` and `failed`.
    Error {
        /// What kind of failure.
        code: ErrorCode,
        /// For people.
        message: String,
    },
    /// Client: no more tests.
    Bye,
}

impl Msg {
    /// The message's name (its `type`).
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Hello { .. } => "hello",
            Msg::Login { .. } => "login",
            Msg::Welcome { .. } => "welcome",
            Msg::Clock { .. } => "clock",
            Msg::Test(_) => "test",
            Msg::Ready { .. } => "ready",
            Msg::Finished(_) => "finished",
            Msg::Error { .. } => "error",
            Msg::Bye => "bye",
        }
    }

    /// An error message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Msg {
        Msg::Error {
            code,
            message: message.into(),
        }
    }
}

/// Parses one line (without its newline). Never panics, whatever the bytes.
pub fn parse(line: &[u8]) -> std::result::Result<Msg, String> {
    let text = std::str::from_utf8(line).map_err(|_| "the line is not UTF-8".to_string())?;
    serde_json::from_str(text).map_err(|e| {
        let mut m = e.to_string();
        m.truncate(200);
        format!("not a message of control protocol {PROTOCOL}: {m}")
    })
}

/// Why a line could not be read.
#[derive(Debug)]
pub enum RecvError {
    /// The peer closed the connection between lines.
    Closed,
    /// No whole line before the deadline.
    Timeout,
    /// A line longer than the bound.
    TooLong(usize),
    /// A line that is not a message.
    Malformed(String),
    /// The socket failed.
    Io(io::Error),
}

impl RecvError {
    /// The error reply a server sends for it (None: nobody to tell).
    pub fn reply(&self) -> Option<Msg> {
        match self {
            RecvError::Closed | RecvError::Io(_) => None,
            RecvError::Timeout => Some(Msg::error(
                ErrorCode::Timeout,
                "no whole request line in time; closing",
            )),
            RecvError::TooLong(max) => Some(Msg::error(
                ErrorCode::TooLong,
                format!("request line over {max} bytes; closing"),
            )),
            RecvError::Malformed(m) => Some(Msg::error(ErrorCode::Malformed, m.clone())),
        }
    }

    /// As the library's error, for `what` (e.g. "the server's reply").
    pub fn into_error(self, what: &str) -> Error {
        match self {
            RecvError::Closed => Error::PeerClosed(format!("while waiting for {what}")),
            RecvError::Timeout => Error::Timeout(format!("{what} did not arrive in time")),
            RecvError::TooLong(max) => {
                Error::Protocol(format!("{what} is longer than {max} bytes"))
            }
            RecvError::Malformed(m) => Error::Protocol(format!("{what}: {m}")),
            RecvError::Io(e) => Error::io(format!("reading {what}"), e),
        }
    }
}

/// One end of a control connection: writes lines, reads them with a bound and a deadline.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Wraps a connected stream (Nagle off: every line is a whole message).
    pub fn new(stream: TcpStream) -> Result<Conn> {
        stream
            .set_nodelay(true)
            .and_then(|_| stream.set_write_timeout(Some(Duration::from_secs(10))))
            .map_err(|e| Error::io("set up the control connection", e))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends one message as one line.
    pub fn send(&mut self, m: &Msg) -> Result<()> {
        let mut line = serde_json::to_vec(m)
            .map_err(|e| Error::Internal(format!("control message does not serialize: {e}")))?;
        line.push(b'\n');
        self.stream
            .write_all(&line)
            .map_err(|e| Error::io(format!("sending {} on the control connection", m.name()), e))
    }

    /// Ends the connection after a final reply so that the reply arrives: closing a socket
    /// with unread bytes would reset the connection, and a reset can destroy the reply before
    /// the peer reads it. Stops writing, then discards what the peer still sends, for at most
    /// 200 ms and 1 MiB.
    pub fn linger_close(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        let until = Instant::now() + Duration::from_millis(200);
        let mut s = &self.stream;
        let mut chunk = [0u8; 64 * 1024];
        let mut drained = 0;
        while drained < (1 << 20) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    }

    /// Reads the next message: a whole line of at most `max` bytes before `deadline`.
    pub fn recv(&mut self, deadline: Instant, max: usize) -> std::result::Result<Msg, RecvError> {
        let line = self.recv_line(deadline, max)?;
        parse(&line).map_err(RecvError::Malformed)
    }

    fn recv_line(
        &mut self,
        deadline: Instant,
        max: usize,
    ) -> std::result::Result<Vec<u8>, RecvError> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                if end > max {
                    return Err(RecvError::TooLong(max));
                }
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                return Ok(line);
            }
            scanned = self.buf.len();
            if scanned > max {
                return Err(RecvError::TooLong(max));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvError::Timeout);
            }
            // A slow drip cannot hold the reader past the deadline: each read waits at most
            // what is left of it.
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .map_err(RecvError::Io)?;
            let mut chunk = [0u8; 64 * 1024];
            let want = chunk.len().min(max + 1 - scanned.min(max));
            match self.stream.read(&mut chunk[..want.max(1)]) {
                Ok(0) if self.buf.is_empty() => return Err(RecvError::Closed),
                Ok(0) => {
                    return Err(RecvError::Malformed(
                        "the connection closed in the middle of a line".into(),
                    ))
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(RecvError::Timeout)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(RecvError::Closed)
                }
                Err(e) => return Err(RecvError::Io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_survives_a_round_trip() {
        let msgs = vec![
            Msg::Hello {
                protocol: PROTOCOL,
                software: "sendpath 0".into(),
                auth: AuthKind::HmacSha256,
                challenge: "00ff".into(),
            },
            Msg::Login {
                protocol: PROTOCOL,
                response: Some("ab".into()),
            },
            Msg::Clock {
                t0_ns: 5,
                t1_ns: Some(7),
            },
            Msg::Test(Box::new(TestRequest {
                spec: RunSpec::default(),
                far_role: FarRole::Sender,
                sender_clock_ahead_ns: -3,
            })),
            Msg::Ready { data_port: 4000 },
            Msg::error(ErrorCode::Busy, "busy"),
            Msg::Bye,
        ];
        for m in msgs {
            let line = serde_json::to_vec(&m).unwrap();
            assert!(!line.contains(&b'\n'));
            assert_eq!(parse(&line).unwrap(), m);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"{",
            b"\xff\xfe",
            b"[]",
            b"{\"type\":\"nope\"}",
            b"{\"type\":\"test\"}",
            b"{\"type\":\"clock\",\"t0_ns\":-1}",
            b"{\"type\":\"ready\",\"data_port\":70000}",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    /// A bounded fuzz of the parser: valid lines cut, flipped and spliced at random (a fixed
    /// seed, so a failure repeats) never panic, and whatever parses re-serializes.
    #[test]
    fn mutated_lines_never_panic_the_parser() {
        let seeds: Vec<Vec<u8>> = [
            r#"{"type":"login","protocol":1,"response":"00"}"#.to_string(),
            serde_json::to_string(&Msg::Test(Box::new(TestRequest {
                spec: RunSpec::default(),
                far_role: FarRole::Receiver,
                sender_clock_ahead_ns: 0,
            })))
            .unwrap(),
            r#"{"type":"clock","t0_ns":1}"#.to_string(),
        ]
        .into_iter()
        .map(String::into_bytes)
        .collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let started = Instant::now();
        let mut parsed = 0;
        for i in 0..20_000 {
            if started.elapsed() > Duration::from_secs(5) {
                break;
            }
            let mut line = seeds[i % seeds.len()].clone();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % line.len().max(1);
                match next() % 4 {
                    0 => line.truncate(at),
                    1 if !line.is_empty() => {
                        let i = at.min(line.len() - 1);
                        line[i] = next() as u8;
                    }
                    2 => line.insert(at.min(line.len()), b"{}[]\",:0-9e"[next() as usize % 11]),
                    _ => {
                        let other = &seeds[next() as usize % seeds.len()];
                        let from = next() as usize % other.len();
                        line.extend_from_slice(&other[from..]);
                    }
                }
            }
            if let Ok(m) = parse(&line) {
                parsed += 1;
                assert!(serde_json::to_string(&m).is_ok());
            }
        }
        assert!(parsed < 20_000, "mutations should break most lines");
    }
}
