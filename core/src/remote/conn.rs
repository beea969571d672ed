//! One end of a control connection: lines of at most a bound, read before a deadline, and
//! after login (with a token) sealed: every line carries a MAC under the connection's session
//! key and its number in its direction ([`super::auth`] says why that is enough).

use super::auth::{Role, SessionKey};
use super::proto::{parse, ErrorCode, Msg, PROTOCOL};
use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

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
    /// A line of a sealed connection whose MAC or number is not the next one from the peer:
    /// altered, replayed, reordered, reflected or injected in flight.
    Unsealed(String),
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
            RecvError::Unsealed(m) => Some(Msg::error(ErrorCode::Auth, format!("{m}; closing"))),
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
            RecvError::Unsealed(m) => Error::Protocol(format!("{what}: {m}")),
            RecvError::Io(e) => Error::io(format!("reading {what}"), e),
        }
    }
}

/// One end of a control connection: writes lines, reads them with a bound and a deadline,
/// and once sealed ([`Conn::seal`]) MACs every line it sends and checks every line it reads.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    seal: Option<Seal>,
}

/// The state of a sealed connection: the key, who this end is, and the number of the next
/// line in each direction.
struct Seal {
    key: SessionKey,
    me: Role,
    sent: u64,
    received: u64,
}

/// A sealed line: `{"n":N,"mac":"<hex>","msg":<the message's JSON>}`. The MAC covers the
/// direction, `n` and the exact bytes of `msg` as they are on the wire.
#[derive(Deserialize)]
struct Sealed<'a> {
    n: u64,
    mac: &'a str,
    #[serde(borrow)]
    msg: &'a RawValue,
}

/// Opens a sealed line from `from`, expected to be its line number `n`: the message, or why
/// it fails its check. Never panics, whatever the bytes.
pub fn unseal(
    key: &SessionKey,
    from: Role,
    n: u64,
    line: &[u8],
) -> std::result::Result<Msg, RecvError> {
    let sealed: Sealed = std::str::from_utf8(line)
        .ok()
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| {
            RecvError::Unsealed(format!(
                "a line without its MAC on a connection that needs one (control protocol {PROTOCOL})"
            ))
        })?;
    let body = sealed.msg.get().as_bytes();
    if sealed.n != n || !key.check(from, n, body, sealed.mac) {
        return Err(RecvError::Unsealed(format!(
            "line {} from the {} failed its MAC (expected line {n}): altered, replayed, reordered or injected in flight",
            sealed.n,
            match from {
                Role::Driver => "driver",
                Role::Server => "server",
            }
        )));
    }
    parse(body).map_err(RecvError::Malformed)
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
            seal: None,
        })
    }

    /// From now on every line this end (`me`) sends carries a MAC under `key`, and every line
    /// it reads must carry the peer's, numbered from 0 in each direction.
    pub fn seal(&mut self, key: SessionKey, me: Role) {
        self.seal = Some(Seal {
            key,
            me,
            sent: 0,
            received: 0,
        });
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends one message as one line.
    pub fn send(&mut self, m: &Msg) -> Result<()> {
        let body = serde_json::to_vec(m)
            .map_err(|e| Error::Internal(format!("control message does not serialize: {e}")))?;
        let mut line = match &mut self.seal {
            None => body,
            Some(s) => {
                let mac = s.key.seal(s.me, s.sent, &body);
                let mut l = format!("{{\"n\":{},\"mac\":\"{mac}\",\"msg\":", s.sent).into_bytes();
                l.extend_from_slice(&body);
                l.push(b'}');
                s.sent += 1;
                l
            }
        };
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
        match &mut self.seal {
            None => parse(&line).map_err(RecvError::Malformed),
            Some(s) => match unseal(&s.key, s.me.peer(), s.received, &line) {
                Ok(m) => {
                    s.received += 1;
                    Ok(m)
                }
                // A server refuses a login before it can seal (a wrong token): a driver takes
                // a plain error as the end of the session, and nothing else unsealed.
                Err(RecvError::Unsealed(why)) => match (s.me, parse(&line)) {
                    (Role::Driver, Ok(m @ Msg::Error { .. })) => Ok(m),
                    _ => Err(RecvError::Unsealed(why)),
                },
                Err(e) => Err(e),
            },
        }
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
    use crate::remote::auth::{challenge, Token};
    use std::net::TcpListener;

    fn pair() -> (Conn, Conn) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let s = l.accept().unwrap().0;
        (Conn::new(c).unwrap(), Conn::new(s).unwrap())
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn sealed_lines_flow_both_ways_and_a_plain_one_is_refused() {
        let (mut d, mut s) = pair();
        let key = Token::new(b"t").session_key(&challenge().unwrap(), &challenge().unwrap());
        d.seal(key.clone(), Role::Driver);
        s.seal(key, Role::Server);
        for i in 0..3 {
            d.send(&Msg::Clock {
                t0_ns: i,
                t1_ns: None,
            })
            .unwrap();
            assert!(
                matches!(s.recv(soon(), 4096).unwrap(), Msg::Clock { t0_ns, .. } if t0_ns == i)
            );
            s.send(&Msg::Bye).unwrap();
            assert_eq!(d.recv(soon(), 4096).unwrap(), Msg::Bye);
        }
        // A line without a MAC, written straight to the socket.
        (&d.stream).write_all(b"{\"type\":\"bye\"}\n").unwrap();
        let e = s.recv(soon(), 4096).unwrap_err();
        assert!(matches!(e, RecvError::Unsealed(_)), "{e:?}");
        assert_eq!(
            e.reply().map(|m| m.name()),
            Some("error"),
            "the server answers it"
        );
    }

    #[test]
    fn a_replayed_or_altered_line_fails_its_check() {
        let key = Token::new(b"t").session_key("a", "b");
        let body = br#"{"type":"bye"}"#;
        let line = |n: u64, mac: &str| {
            format!(
                r#"{{"n":{n},"mac":"{mac}","msg":{}}}"#,
                std::str::from_utf8(body).unwrap()
            )
        };
        let mac0 = key.seal(Role::Driver, 0, body);
        assert_eq!(
            unseal(&key, Role::Driver, 0, line(0, &mac0).as_bytes()).unwrap(),
            Msg::Bye
        );
        for (what, l, n) in [
            ("replayed", line(0, &mac0), 1),
            ("renumbered", line(1, &mac0), 1),
            ("altered", line(0, &mac0).replace("bye", "byf"), 0),
            ("spaced", line(0, &mac0).replace(r#""bye""#, r#" "bye""#), 0),
        ] {
            assert!(
                matches!(
                    unseal(&key, Role::Driver, n, l.as_bytes()),
                    Err(RecvError::Unsealed(_))
                ),
                "{what}"
            );
        }
        assert!(
            unseal(&key, Role::Server, 0, line(0, &mac0).as_bytes()).is_err(),
            "reflected"
        );
    }
}
