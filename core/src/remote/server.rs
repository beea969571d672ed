//! `sendpath serve`: waits for a driver, authenticates it, and runs the benchmark cells it
//! asks for, one client at a time. It never runs anything but cells, and every wait and
//! resource is bounded:
//! - a connection has [`HANDSHAKE_TIMEOUT`] to log in, at most [`MAX_HANDSHAKES`] log in at
//!   once (more are told `busy`), and each line is at most [`MAX_REQUEST_LINE`] bytes;
//! - a logged-in client holds the server while it sends a request at least every
//!   [`IDLE_TIMEOUT`]; a second one is told `busy`, naming the first;
//! - a test is checked with the CLI's own limits and the server's ([`ServerLimits`]: flows,
//!   seconds, buffer bytes) before anything runs; its data connections must come from the
//!   control connection's address within [`DATA_ACCEPT_TIMEOUT`];
//! - a client that vanishes mid-test frees the server within the test's warm-up and window
//!   plus [`crate::sock::IO_TIMEOUT`] (each data socket read or write waits at most that).

use super::auth::{self, Token};
use super::proto::{
    AuthKind, Conn, ErrorCode, FarRole, Finished, Msg, TestRequest, MAX_REQUEST_LINE, PROTOCOL,
};
use super::{iface, receive_on};
use crate::error::{Error, Result};
use crate::host;
use crate::report::{from_flows, Context};
use crate::run::{join_senders, spawn_named, spawn_senders};
use crate::sock;
use crate::spec::RunSpec;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Time a new connection has to log in.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a logged-in client's next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time the data connections of a test have to arrive.
pub const DATA_ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections logging in at once; more are refused as busy.
pub const MAX_HANDSHAKES: usize = 16;

/// What one test may use on this server.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerLimits {
    /// Flows (connections, and on the threads engine a thread each).
    pub max_flows: usize,
    /// Warm-up plus window, seconds.
    pub max_seconds: f64,
    /// Buffer bytes the test's flows may hold (estimated from message size, zero-copy slots
    /// and io_uring depth, plus 2 MiB of socket and receive buffers per flow).
    pub max_buffer_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_flows: 64,
            max_seconds: 120.0,
            max_buffer_bytes: 2 << 30,
        }
    }
}

/// How `sendpath serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Control address.
    pub listen: SocketAddr,
    /// Port the data connections of every test use (0: a fresh one per test).
    pub data_port: u16,
    /// Required shared secret, if any.
    pub token: Option<Token>,
    /// Bounds of one test.
    pub limits: ServerLimits,
}

struct Shared {
    opts: ServeOptions,
    /// The logged-in client, if one holds the server.
    holder: Mutex<Option<String>>,
    handshakes: AtomicUsize,
}

/// A bound control socket, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

fn log(line: impl AsRef<str>) {
    eprintln!("serve: {}", line.as_ref());
}

impl Server {
    /// Binds the control socket.
    pub fn bind(opts: ServeOptions) -> Result<Server> {
        let listener = sock::listen(opts.listen)?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                opts,
                holder: Mutex::new(None),
                handshakes: AtomicUsize::new(0),
            }),
        })
    }

    /// The bound control address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("local address", e))
    }

    /// Who can reach this server, in a sentence, for the start-up line.
    pub fn reach(&self) -> String {
        let addr = self
            .local_addr()
            .map(|a| a.ip())
            .unwrap_or(self.shared.opts.listen.ip());
        let who = if addr.is_unspecified() {
            "every interface: any host that can route to this machine".to_string()
        } else if addr.is_loopback() {
            "loopback only: this machine alone".to_string()
        } else {
            match iface::for_local_ip(addr) {
                Some(i) => format!("hosts that can reach {addr} (interface {})", i.name),
                None => format!("hosts that can reach {addr}"),
            }
        };
        let token = match self.shared.opts.token {
            Some(_) => "a token is required (HMAC challenge-response)",
            None => "NO token required: whoever can reach the port can run tests",
        };
        format!("reachable from {who}; {token}")
    }

    /// Serves until `stop` is set (checked every second), one thread per connection.
    pub fn run(self, stop: &AtomicBool) -> Result<()> {
        crate::time::calibrate();
        let _ = host::facts();
        while !stop.load(Ordering::Relaxed) {
            let deadline = Instant::now() + Duration::from_secs(1);
            let stream = match sock::accept_until(&self.listener, deadline) {
                Ok(s) => s,
                Err(Error::Timeout(_)) => continue,
                Err(e) => {
                    log(format!("accept: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let peer = stream
                .peer_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string());
            let shared = self.shared.clone();
            if shared.handshakes.fetch_add(1, Ordering::AcqRel) >= MAX_HANDSHAKES {
                shared.handshakes.fetch_sub(1, Ordering::AcqRel);
                log(format!(
                    "{peer}: refused, {MAX_HANDSHAKES} connections already logging in"
                ));
                if let Ok(mut c) = Conn::new(stream) {
                    let _ = c.send(&Msg::error(
                        ErrorCode::Busy,
                        "busy: too many connections logging in",
                    ));
                }
                continue;
            }
            spawn_named(format!("ctl-{peer}"), move || {
                if let Err(e) = connection(stream, &peer, &shared) {
                    log(format!("{peer}: {e}"));
                }
            });
        }
        Ok(())
    }
}

/// Releases the server when the client that holds it goes.
struct Hold<'a>(&'a Shared);

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        *self.0.holder.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Replies `m` and ends the connection, releasing the server first if this client held it;
/// the `Err` says why (for the log).
fn refuse(mut c: Conn, m: Msg, hold: Option<Hold>) -> Error {
    let why = match &m {
        Msg::Error { message, .. } => message.clone(),
        _ => String::new(),
    };
    let sent = c.send(&m).is_ok();
    drop(hold);
    if sent {
        c.linger_close();
    }
    Error::Protocol(format!("refused: {why}"))
}

fn connection(stream: TcpStream, peer: &str, shared: &Shared) -> Result<()> {
    let login = handshake(stream, shared);
    shared.handshakes.fetch_sub(1, Ordering::AcqRel);
    let mut c = login?;
    let hold = {
        let mut holder = shared.holder.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(other) = holder.as_ref() {
            let m = format!("busy: running tests for {other}; one client at a time");
            drop(holder);
            return Err(refuse(c, Msg::error(ErrorCode::Busy, m), None));
        }
        *holder = Some(format!("{peer} since {}", host::utc_now_rfc3339()));
        Hold(shared)
    };
    log(format!("{peer}: logged in"));
    c.send(&Msg::Welcome {
        host: Box::new(host::facts().clone()),
    })?;
    loop {
        let m = match c.recv(Instant::now() + IDLE_TIMEOUT, MAX_REQUEST_LINE) {
            Ok(m) => m,
            Err(e) => {
                return match e.reply() {
                    Some(r) => Err(refuse(c, r, Some(hold))),
                    None => {
                        log(format!("{peer}: gone"));
                        Ok(())
                    }
                }
            }
        };
        match m {
            Msg::Clock { t0_ns, .. } => c.send(&Msg::Clock {
                t0_ns,
                t1_ns: Some(crate::time::now_ns()),
            })?,
            Msg::Test(req) => test(&mut c, peer, *req, &shared.opts)?,
            Msg::Bye => {
                log(format!("{peer}: bye"));
                return Ok(());
            }
            other => {
                return Err(refuse(
                    c,
                    Msg::error(
                        ErrorCode::Unexpected,
                        format!("a {} message is not a request", other.name()),
                    ),
                    Some(hold),
                ))
            }
        }
    }
}

/// Greets, reads the login and checks version and token.
fn handshake(stream: TcpStream, shared: &Shared) -> Result<Conn> {
    let mut c = Conn::new(stream)?;
    let challenge = auth::challenge()?;
    let token = shared.opts.token.as_ref();
    c.send(&Msg::Hello {
        protocol: PROTOCOL,
        software: format!("sendpath {}", crate::TOOL_VERSION),
        auth: if token.is_some() {
            AuthKind::HmacSha256
        } else {
            AuthKind::None
        },
        challenge: challenge.clone(),
    })?;
    let m = match c.recv(Instant::now() + HANDSHAKE_TIMEOUT, MAX_REQUEST_LINE) {
        Ok(m) => m,
        Err(e) => {
            return Err(match e.reply() {
                Some(r) => refuse(c, r, None),
                None => Error::PeerClosed("before logging in".into()),
            })
        }
    };
    let Msg::Login { protocol, response } = m else {
        return Err(refuse(
            c,
            Msg::error(
                ErrorCode::Unexpected,
                format!("expected a login, got a {} message", m.name()),
            ),
            None,
        ));
    };
    if protocol != PROTOCOL {
        return Err(refuse(
            c,
            Msg::error(
                ErrorCode::Version,
                format!("this server speaks control protocol {PROTOCOL}, the client {protocol}: run the same sendpath version on both hosts"),
            ),
            None,
        ));
    }
    if let Some(t) = token {
        if !response.is_some_and(|r| t.accepts(&challenge, &r)) {
            return Err(refuse(
                c,
                Msg::error(
                    ErrorCode::Auth,
                    "wrong or missing token (give the server's secret with --token-file)",
                ),
                None,
            ));
        }
    }
    Ok(c)
}

/// The spec this server will run for `req`, or why not.
pub fn admit(req: &TestRequest, limits: &ServerLimits) -> std::result::Result<RunSpec, String> {
    let spec = req.spec.clone();
    if let Some(p) = &spec.pin {
        // Each host pins its own side's threads to the CPUs of that side's role.
        let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
            .map_err(|e| format!("cannot read this host's CPUs: {e}"))?;
        for (side, cpus) in [("sender", &p.sender), ("receiver", &p.receiver)] {
            if cpus.is_empty() || cpus.len() > 1024 {
                return Err(format!(
                    "pin: the {side} CPU list must have 1 to 1024 entries"
                ));
            }
            if let Some(c) = cpus.iter().find(|&&c| !allowed.is_set(c).unwrap_or(false)) {
                return Err(format!(
                    "pin: this host cannot run the {side}'s threads on CPU {c}"
                ));
            }
        }
    }
    if spec.rx_stall.is_some() {
        return Err("rx_stall is a test hook a server does not run".into());
    }
    spec.validate().map_err(|e| e.to_string())?;
    if spec.flows > limits.max_flows {
        return Err(format!(
            "{} flows: this server allows at most {} (serve --max-flows)",
            spec.flows, limits.max_flows
        ));
    }
    let secs = spec.warmup_s + spec.duration_s;
    if secs > limits.max_seconds {
        return Err(format!(
            "{secs:.1} s of warm-up and window: this server allows at most {:.0} s (serve --max-seconds)",
            limits.max_seconds
        ));
    }
    let per_flow = spec
        .msg_size
        .saturating_mul(spec.zc_slots.max(spec.uring.depth).max(1))
        .saturating_add(2 << 20);
    let bytes = per_flow.saturating_mul(spec.flows);
    if bytes > limits.max_buffer_bytes {
        return Err(format!(
            "the test would hold about {} MiB of buffers: this server allows {} MiB",
            bytes >> 20,
            limits.max_buffer_bytes >> 20
        ));
    }
    Ok(spec)
}

/// Runs one test: checks it, opens the data port, takes the data connections, measures,
/// and replies. A refused or failed test is an error reply and the session goes on; only a
/// broken control connection is an `Err`.
fn test(c: &mut Conn, peer: &str, req: TestRequest, opts: &ServeOptions) -> Result<()> {
    let spec = match admit(&req, &opts.limits) {
        Ok(s) => s,
        Err(why) => {
            log(format!("{peer}: test refused: {why}"));
            return c.send(&Msg::error(ErrorCode::Invalid, why));
        }
    };
    let local_ip = c
        .stream()
        .local_addr()
        .map_err(|e| Error::io("control address", e))?
        .ip();
    let peer_ip = c
        .stream()
        .peer_addr()
        .map_err(|e| Error::io("control peer", e))?
        .ip();
    let listener = match sock::listen(SocketAddr::new(local_ip, opts.data_port)) {
        Ok(l) => l,
        Err(e) => return c.send(&Msg::error(ErrorCode::Failed, e.to_string())),
    };
    let data_port = listener.local_addr().map_or(0, |a| a.port());
    c.send(&Msg::Ready { data_port })?;
    let streams = match accept_from(&listener, peer_ip, spec.flows) {
        Ok(s) => s,
        Err(e) => {
            log(format!("{peer}: test failed: {e}"));
            return c.send(&Msg::error(ErrorCode::Failed, e.to_string()));
        }
    };
    drop(listener);
    let interface = streams
        .first()
        .and_then(|s| s.local_addr().ok())
        .and_then(|a| iface::for_local_ip(a.ip()));
    log(format!(
        "{peer}: {} {} {} {} B x{} for {:.1} s, this host {}",
        spec.mode,
        spec.engine.as_str(),
        spec.pattern,
        spec.msg_size,
        spec.flows,
        spec.duration_s,
        if req.far_role == FarRole::Receiver {
            "receiving"
        } else {
            "sending"
        }
    ));
    let finished = match req.far_role {
        FarRole::Receiver => {
            let flows = receive_on(streams, &spec, req.sender_clock_ahead_ns);
            let ctx = Context {
                topology: "remote".into(),
                rep: 0,
                threads: spec.sender_threads() as u64,
                started_at: host::utc_now_rfc3339(),
            };
            let record = from_flows(&spec, &ctx, host::facts(), &flows);
            Finished {
                error: record.error.clone(),
                record: Some(Box::new(record)),
                reports: Vec::new(),
                interface,
            }
        }
        FarRole::Sender => {
            let outcomes = join_senders(spawn_senders(&spec, streams));
            let error = outcomes
                .iter()
                .find_map(|o| o.result.as_ref().err().map(|e| e.to_string()));
            Finished {
                record: None,
                reports: outcomes.into_iter().map(|o| o.report).collect(),
                error,
                interface,
            }
        }
    };
    c.send(&Msg::Finished(Box::new(finished)))
}

/// Accepts `n` data connections from `from` (others are closed) before the deadline.
fn accept_from(listener: &TcpListener, from: IpAddr, n: usize) -> Result<Vec<TcpStream>> {
    let deadline = Instant::now() + DATA_ACCEPT_TIMEOUT;
    let mut streams = Vec::with_capacity(n);
    while streams.len() < n {
        let s = sock::accept_until(listener, deadline).map_err(|e| match e {
            Error::Timeout(_) => Error::Timeout(format!(
                "only {} of {n} data connections arrived within {} s",
                streams.len(),
                DATA_ACCEPT_TIMEOUT.as_secs()
            )),
            e => e,
        })?;
        match s.peer_addr() {
            Ok(a) if a.ip() == from => streams.push(s),
            Ok(a) => log(format!(
                "dropped a data connection from {a}: not the client's address"
            )),
            Err(_) => {}
        }
    }
    Ok(streams)
}
