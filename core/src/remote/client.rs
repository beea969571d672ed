//! The driver's side: logs in to a `sendpath serve` daemon and runs cells through it. One
//! control connection serves a whole sweep; after any error it is dropped and the next cell
//! logs in afresh, so one failed cell never fails the rest.

use super::auth::{self, Role, Token};
use super::conn::{Conn, RecvError};
use super::proto::{
    AuthKind, ErrorCode, FarRole, Finished, Msg, TestRequest, DEFAULT_PORT, MAX_REPLY_LINE,
    PROTOCOL,
};
use super::{iface, receive_on};
use crate::error::{Error, Result};
use crate::host::{self, HostFacts};
use crate::report::build::host_v1;
use crate::report::v1::{Record, RemoteEnd, RemoteV1, Status};
use crate::report::{from_flows, Context};
use crate::run::{attach_sender_sides, join_senders, spawn_senders};
use crate::send::SenderOutcome;
use crate::sock;
use crate::spec::{Pattern, RunSpec};
use crate::time::now_ns;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Clock probes per cell; the one with the shortest round trip gives the offset.
pub const CLOCK_PROBES: usize = 8;
/// Longest wait for a reply that needs no measuring (login, ready, clock).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack past a cell's warm-up and window before its result must be in.
const RESULT_SLACK: Duration = Duration::from_secs(60);
/// How long a goodbye waits for the server to close the connection (it frees itself first).
const BYE_WAIT: Duration = Duration::from_secs(2);

/// Resolves `HOST[:PORT]` (`[v6]:port` for IPv6), the port defaulting to
/// [`DEFAULT_PORT`].
pub fn resolve(target: &str) -> Result<SocketAddr> {
    let bad = |m: String| Error::InvalidSpec(format!("--remote {target}: {m}"));
    if let Ok(a) = target.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = target.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    let with_port = if target.contains(':') {
        target.to_string()
    } else {
        format!("{target}:{DEFAULT_PORT}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("the name has no address".into()))
}

/// Where the far host is and how to run on it.
#[derive(Clone, Debug)]
pub struct Remote {
    /// Control address of `sendpath serve`.
    pub addr: SocketAddr,
    /// The server's shared secret, if it asks for one.
    pub token: Option<Token>,
    /// What the far host does in every cell.
    pub far_role: FarRole,
}

struct Session {
    conn: Conn,
    far_host: HostFacts,
}

/// Runs cells on a far host, keeping one control connection while all goes well.
pub struct Driver {
    remote: Remote,
    session: Option<Session>,
}

/// The far host's refusal as an error a user can act on.
fn refused(code: ErrorCode, message: String) -> Error {
    match code {
        ErrorCode::Invalid => {
            Error::InvalidSpec(format!("the far host refused the test: {message}"))
        }
        _ => Error::Setup(format!("the far host: {message}")),
    }
}

impl Driver {
    /// A driver for `remote` (nothing is connected yet).
    pub fn new(remote: Remote) -> Driver {
        Driver {
            remote,
            session: None,
        }
    }

    /// Logs in now (a sweep checks the far host before its first cell); returns the far
    /// host's facts.
    pub fn connect(&mut self) -> Result<&HostFacts> {
        if self.session.is_none() {
            self.session = Some(self.login()?);
        }
        Ok(&self.session.as_ref().expect("just set").far_host)
    }

    fn login(&self) -> Result<Session> {
        let stream = TcpStream::connect_timeout(&self.remote.addr, REPLY_TIMEOUT).map_err(|e| {
            Error::io(
                format!(
                    "cannot reach sendpath serve at {} (is it running there?)",
                    self.remote.addr
                ),
                e,
            )
        })?;
        let mut conn = Conn::new(stream)?;
        let hello = recv(&mut conn, REPLY_TIMEOUT, "the server's greeting")?;
        let Msg::Hello {
            protocol,
            auth,
            challenge,
            ..
        } = hello
        else {
            return Err(unexpected(&hello, "a greeting"));
        };
        if protocol != PROTOCOL {
            return Err(Error::Setup(format!(
                "the far host speaks control protocol {protocol}, this sendpath {PROTOCOL}: run the same version on both hosts"
            )));
        }
        let addr = self.remote.addr;
        let (response, driver_challenge) = match (auth, &self.remote.token) {
            (AuthKind::HmacSha256, Some(t)) => {
                if !auth::is_challenge(&challenge) {
                    return Err(Error::Setup(format!(
                        "the far host {addr} sent a malformed challenge: not a sendpath server"
                    )));
                }
                let mine = auth::challenge()?;
                (Some(t.prove(Role::Driver, &challenge, &mine)), Some(mine))
            }
            (AuthKind::HmacSha256, None) => {
                return Err(Error::Setup(format!(
                    "the far host {addr} requires a token: give it with --token-file"
                )))
            }
            (AuthKind::None, Some(_)) => {
                return Err(Error::Setup(format!(
                    "the far host {addr} asks for no token, but this driver holds one: refusing a server that cannot prove it knows the secret (serve it with --token-file, or drop --token-file here)"
                )))
            }
            (AuthKind::None, None) => (None, None),
        };
        conn.send(&Msg::Login {
            protocol: PROTOCOL,
            response,
            challenge: driver_challenge.clone(),
        })?;
        // With a token, the welcome is the server's first sealed line.
        if let (Some(t), Some(dc)) = (&self.remote.token, &driver_challenge) {
            conn.seal(t.session_key(&challenge, dc), Role::Driver);
        }
        let impostor = || {
            Error::Setup(format!(
                "the far host {addr} could not prove it holds the token: refusing it"
            ))
        };
        let welcome = match conn.recv(Instant::now() + REPLY_TIMEOUT, MAX_REPLY_LINE) {
            Ok(Msg::Error { code, message }) => return Err(refused(code, message)),
            Ok(m) => m,
            // A welcome that fails its MAC was not made with the token.
            Err(RecvError::Unsealed(_)) => return Err(impostor()),
            Err(e) => return Err(e.into_error("the login's answer")),
        };
        match welcome {
            Msg::Welcome { host, proof } => {
                if let (Some(t), Some(dc)) = (&self.remote.token, &driver_challenge) {
                    if !proof.is_some_and(|p| t.accepts(Role::Server, &challenge, dc, &p)) {
                        return Err(impostor());
                    }
                }
                Ok(Session {
                    conn,
                    far_host: *host,
                })
            }
            m => Err(unexpected(&m, "a welcome")),
        }
    }

    /// Says goodbye (the server frees itself at once instead of at its idle timeout), and
    /// waits, a bounded while, for the server to close the connection: it frees itself before
    /// it closes, so a driver that starts right after this one is not told `busy`.
    pub fn close(&mut self) {
        if let Some(mut s) = self.session.take() {
            if s.conn.send(&Msg::Bye).is_ok() {
                // (Nothing is expected: the close, or the deadline, ends the wait.)
                let _ = s.conn.recv(Instant::now() + BYE_WAIT, 4096);
            }
        }
    }

    /// Measures one cell on the far host. A refusal or failure is an `Err` (and the next
    /// cell logs in afresh, except after a refused spec); what was measured is a record.
    pub fn run(&mut self, spec: &RunSpec, rep: u64) -> Result<Record> {
        spec.validate()?;
        if spec.timestamps.is_some() {
            // Device -> receiving stack would subtract one host's kernel clock from another's.
            return Err(Error::InvalidSpec(
                "--timestamps joins both ends' kernel stamps on one clock: not across two hosts (yet)".into(),
            ));
        }
        crate::time::calibrate();
        crate::profile::prepare(spec.profile);
        self.connect()?;
        let session = self.session.as_mut().expect("connected");
        let r = run_on(session, &self.remote, spec, rep);
        if matches!(&r, Err(e) if !matches!(e, Error::InvalidSpec(_))) {
            self.session = None;
        }
        r
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.close();
    }
}

fn recv(conn: &mut Conn, wait: Duration, what: &str) -> Result<Msg> {
    match conn.recv(Instant::now() + wait, MAX_REPLY_LINE) {
        Ok(Msg::Error { code, message }) => Err(refused(code, message)),
        Ok(m) => Ok(m),
        Err(e) => Err(e.into_error(what)),
    }
}

fn unexpected(m: &Msg, wanted: &str) -> Error {
    Error::Protocol(format!(
        "expected {wanted}, the far host sent a {} message",
        m.name()
    ))
}

/// The far host's clock minus ours, and half the round trip of the probe that measured it.
fn clock_offset(conn: &mut Conn) -> Result<(i64, u64)> {
    let mut best: Option<(i64, u64)> = None;
    for _ in 0..CLOCK_PROBES {
        let t0 = now_ns();
        conn.send(&Msg::Clock {
            t0_ns: t0,
            t1_ns: None,
        })?;
        let m = recv(conn, REPLY_TIMEOUT, "a clock probe's answer")?;
        let t3 = now_ns();
        match m {
            Msg::Clock {
                t0_ns,
                t1_ns: Some(t1),
            } if t0_ns == t0 => {
                let rtt = t3.saturating_sub(t0);
                let mid = (t0 as i128 + t3 as i128) / 2;
                let offset = (t1 as i128 - mid).clamp(i64::MIN as i128, i64::MAX as i128) as i64;
                if best.is_none_or(|(_, r)| rtt / 2 < r) {
                    best = Some((offset, rtt / 2));
                }
            }
            m => return Err(unexpected(&m, "a clock answer")),
        }
    }
    Ok(best.expect("at least one probe"))
}

fn connect_flows(ip: std::net::IpAddr, port: u16, flows: usize) -> Result<Vec<TcpStream>> {
    (0..flows)
        .map(|_| sock::connect_retry(SocketAddr::new(ip, port), 20, Duration::from_millis(50)))
        .collect()
}

fn run_on(s: &mut Session, remote: &Remote, spec: &RunSpec, rep: u64) -> Result<Record> {
    let started_at = host::utc_now_rfc3339();
    let (far_ahead, uncertainty) = clock_offset(&mut s.conn)?;
    // The sender's clock minus the receiver's.
    let sender_ahead = match remote.far_role {
        FarRole::Receiver => -far_ahead,
        FarRole::Sender => far_ahead,
    };
    s.conn.send(&Msg::Test(Box::new(TestRequest {
        spec: spec.clone(),
        far_role: remote.far_role,
        sender_clock_ahead_ns: sender_ahead,
    })))?;
    let data_port = match recv(&mut s.conn, REPLY_TIMEOUT, "the test's answer")? {
        Msg::Ready { data_port } => data_port,
        m => return Err(unexpected(&m, "ready")),
    };
    let streams = connect_flows(remote.addr.ip(), data_port, spec.flows)?;
    let (driver_addr, far_addr) = match streams.first() {
        Some(st) => (
            st.local_addr().map_err(|e| Error::io("data address", e))?,
            st.peer_addr().map_err(|e| Error::io("data peer", e))?,
        ),
        None => return Err(Error::InvalidSpec("a test needs at least one flow".into())),
    };
    let result_wait = Duration::from_secs_f64(spec.warmup_s + spec.duration_s) + RESULT_SLACK;
    let ctx = Context {
        topology: "remote".into(),
        rep,
        threads: spec.sender_threads() as u64,
        started_at,
    };
    let (mut record, finished) = match remote.far_role {
        FarRole::Receiver => {
            let outcomes = join_senders(spawn_senders(spec, streams));
            let finished = finished(&mut s.conn, result_wait)?;
            let Some(mut record) = finished.record.clone() else {
                return Err(Error::Protocol("the far host sent no record".into()));
            };
            // The far host wrote the record with its own facts and another repetition index.
            record.spec.rep = rep;
            record.started_at = ctx.started_at.clone();
            if let Some(e) = outcomes.into_iter().find_map(|o| o.result.err()) {
                if record.status == Status::Ok {
                    record.status = Status::Failed;
                    record.error = Some(format!("sender: {e}"));
                }
            }
            (*record, finished)
        }
        FarRole::Sender => {
            let mut flows = receive_on(streams, spec, sender_ahead)?;
            let finished = finished(&mut s.conn, result_wait)?;
            let outcomes = finished
                .reports
                .iter()
                .enumerate()
                .map(|(i, r)| SenderOutcome::new(i as u32, r.clone(), Ok(())))
                .collect();
            let orphan = attach_sender_sides(&mut flows, outcomes);
            let mut record = from_flows(spec, &ctx, host::facts(), &flows);
            if let Some(e) = finished
                .error
                .clone()
                .map(|e| format!("far sender: {e}"))
                .or(orphan)
            {
                record.status = Status::Failed;
                record.error = Some(match record.error.take() {
                    Some(prev) if !prev.contains(&e) => format!("{e}; {prev}"),
                    Some(prev) => prev,
                    None => e,
                });
            }
            (record, finished)
        }
    };
    record.host = host_v1(host::facts());
    record.spec.topology = "remote".into();
    let receiver_host = match remote.far_role {
        FarRole::Receiver => "far",
        FarRole::Sender => "driving",
    };
    record.remote = Some(RemoteV1 {
        protocol: PROTOCOL as u64,
        far_role: remote.far_role.as_str().into(),
        driver: RemoteEnd {
            addr: driver_addr.to_string(),
            host: host_v1(host::facts()),
            interface: iface::for_local_ip(driver_addr.ip()),
        },
        far: RemoteEnd {
            addr: far_addr.to_string(),
            host: host_v1(&s.far_host),
            interface: finished.interface,
        },
        latency_clock: if spec.pattern == Pattern::Rr {
            format!(
                "rr round trips on the {receiver_host} host's clock alone (it sends the requests)"
            )
        } else {
            format!("one-way, on the {receiver_host} host's clock (the receiver's); the sender's stamps moved by clock_offset_ns")
        },
        clock_offset_ns: sender_ahead,
        clock_uncertainty_ns: uncertainty,
    });
    Ok(record)
}

fn finished(conn: &mut Conn, wait: Duration) -> Result<Finished> {
    match recv(conn, wait, "the far host's result")? {
        Msg::Finished(f) => Ok(*f),
        m => Err(unexpected(&m, "a result")),
    }
}
