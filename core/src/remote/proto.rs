//! The control protocol's messages: one JSON object per line (the framing, bounds and MACs
//! are [`super::conn`]'s). Written down in `docs/control-protocol.md`.

use crate::host::HostFacts;
use crate::spec::RunSpec;
use crate::wire::end::SenderReport;
use sendpath_record::v1::{Interface, Record};
use serde::{Deserialize, Serialize};

/// Version of the control protocol; both ends must speak the same.
pub const PROTOCOL: u32 = 2;
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
    /// Client, first line: its version, its proof of the token for both challenges, and its
    /// own challenge (both absent without a token).
    Login {
        /// [`PROTOCOL`] of the client.
        protocol: u32,
        /// The driver's proof ([`super::auth::Token::prove`]) as hex.
        #[serde(default)]
        response: Option<String>,
        /// 32 random bytes as hex, fresh per connection: what the server proves the token for.
        #[serde(default)]
        challenge: Option<String>,
    },
    /// Server: accepted; the far host's facts. With a token it is the first line under the
    /// session key, and carries the server's own proof of the token.
    Welcome {
        /// The far host.
        host: Box<HostFacts>,
        /// The server's proof ([`super::auth::Token::prove`]) as hex; absent without a token.
        #[serde(default)]
        proof: Option<String>,
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
                challenge: Some("cd".into()),
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
}
