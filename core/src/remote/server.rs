//! `sendpath serve`: waits for a driver, authenticates it, and runs the benchmark cells it
//! asks for, one client at a time. It trusts nothing that crosses the wire, never runs
//! anything but cells, and every wait and resource is bounded:
//! - a connection has [`HANDSHAKE_TIMEOUT`] to log in; at most [`MAX_HANDSHAKES`] log in at
//!   once, at most [`MAX_HANDSHAKES_PER_ADDR`] of them from one address (more are told
//!   `busy`), so one host cycling connections cannot keep every driver out; each line is at
//!   most [`MAX_REQUEST_LINE`] bytes;
//! - with a token, both ends prove it and every line after login carries a MAC
//!   ([`super::auth`]);
//! - a logged-in client holds the server while it sends a request at least every
//!   [`IDLE_TIMEOUT`]; a second one is told `busy`, naming the first;
//! - a test is checked with the CLI's own limits and the server's ([`ServerLimits`]: flows,
//!   seconds, and the memory formula of [`crate::spec::memory`]) before anything runs; its
//!   data connections must come from the control connection's address within
//!   [`DATA_ACCEPT_TIMEOUT`], and each one's hello must announce the admitted test
//!   ([`crate::wire::hello::check_run`]);
//! - a test ends by the server's clock, warm-up + window + [`END_GRACE`] after its data
//!   connections arrived, whatever the peer does ([`super::cutoff`]).

pub use super::admit::{admit, ServerLimits};
use super::auth::{self, Role, Token};
use super::conn::Conn;
use super::cutoff::{deadline_for, Cutoff, END_GRACE};
use super::proto::{
    AuthKind, ErrorCode, FarRole, Finished, Msg, TestRequest, MAX_REQUEST_LINE, PROTOCOL,
};
use super::{iface, receive_on};
use crate::error::{Error, Result};
use crate::host;
use crate::report::{from_flows, Context};
use crate::run::{join_senders, spawn_senders};
use crate::sock;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
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
/// Connections logging in at once from one address; more from it are refused as busy.
pub const MAX_HANDSHAKES_PER_ADDR: usize = 4;

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
    /// Connections logging in, per address.
    logging_in: Mutex<HashMap<IpAddr, usize>>,
}

/// A bound control socket, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

fn log(line: impl AsRef<str>) {
    eprintln!("serve: {}", line.as_ref());
}

/// A connection counted among those logging in until it has logged in or gone.
struct LoggingIn {
    shared: Arc<Shared>,
    addr: IpAddr,
}

impl LoggingIn {
    /// Counts a connection from `addr`, or says why it cannot log in now.
    fn admit(shared: &Arc<Shared>, addr: IpAddr) -> std::result::Result<LoggingIn, String> {
        let mut m = shared.logging_in.lock().unwrap_or_else(|p| p.into_inner());
        if m.values().sum::<usize>() >= MAX_HANDSHAKES {
            return Err(format!(
                "busy: {MAX_HANDSHAKES} connections are already logging in"
            ));
        }
        let n = m.entry(addr).or_insert(0);
        if *n >= MAX_HANDSHAKES_PER_ADDR {
            return Err(format!(
                "busy: {MAX_HANDSHAKES_PER_ADDR} connections from {addr} are already logging in"
            ));
        }
        *n += 1;
        Ok(LoggingIn {
            shared: shared.clone(),
            addr,
        })
    }
}

impl Drop for LoggingIn {
    fn drop(&mut self) {
        let mut m = self
            .shared
            .logging_in
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.addr);
            }
        }
    }
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
                logging_in: Mutex::new(HashMap::new()),
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
            Some(_) => "a token is required (both ends prove it; every line is MACed)",
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
            let Ok(peer_addr) = stream.peer_addr() else {
                continue;
            };
            let peer = peer_addr.to_string();
            let counted = match LoggingIn::admit(&self.shared, peer_addr.ip()) {
                Ok(c) => c,
                Err(why) => {
                    log(format!("{peer}: refused, {why}"));
                    if let Ok(mut c) = Conn::new(stream) {
                        let _ = c.send(&Msg::error(ErrorCode::Busy, why));
                    }
                    continue;
                }
            };
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ctl-{peer}"))
                .spawn(move || {
                    if let Err(e) = connection(stream, &peer, &shared, counted) {
                        log(format!("{peer}: {e}"));
                    }
                });
            // (The closure, with the stream and the count, is dropped when no thread ran it.)
            if let Err(e) = spawned {
                log(format!("{peer_addr}: dropped, no thread for it: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
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

fn connection(stream: TcpStream, peer: &str, shared: &Shared, counted: LoggingIn) -> Result<()> {
    let login = handshake(stream, shared);
    drop(counted);
    let (mut c, proof) = login?;
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
        proof,
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

/// Greets, reads the login and checks version and token. With a token the connection is
/// sealed when this returns, and the proof of the server's own is returned for the welcome.
fn handshake(stream: TcpStream, shared: &Shared) -> Result<(Conn, Option<String>)> {
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
    let Msg::Login {
        protocol,
        response,
        challenge: driver_challenge,
    } = m
    else {
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
    let Some(t) = token else {
        return Ok((c, None));
    };
    let dc = driver_challenge.unwrap_or_default();
    if !auth::is_challenge(&dc)
        || !response.is_some_and(|r| t.accepts(Role::Driver, &challenge, &dc, &r))
    {
        return Err(refuse(
            c,
            Msg::error(
                ErrorCode::Auth,
                "wrong or missing token (give the server's secret with --token-file)",
            ),
            None,
        ));
    }
    c.seal(t.session_key(&challenge, &dc), Role::Server);
    Ok((c, Some(t.prove(Role::Server, &challenge, &dc))))
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
    // Before the peer is told to start: the first profiled test pays nothing in its window.
    crate::profile::prepare(spec.profile);
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
    let failed = |c: &mut Conn, e: String| {
        log(format!("{peer}: test failed: {e}"));
        c.send(&Msg::error(ErrorCode::Failed, e))
    };
    let streams = match accept_from(&listener, peer_ip, spec.flows) {
        Ok(s) => s,
        Err(e) => return failed(c, e.to_string()),
    };
    drop(listener);
    // From here the test ends by this host's clock, whatever the peer does.
    let cutoff = match Cutoff::arm(&streams, deadline_for(spec.warmup_s, spec.duration_s)) {
        Ok(cut) => cut,
        Err(e) => return failed(c, e.to_string()),
    };
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
        FarRole::Receiver => match receive_on(streams, &spec, req.sender_clock_ahead_ns) {
            Ok(flows) => {
                let ctx = Context {
                    topology: "remote".into(),
                    rep: 0,
                    threads: spec.sender_threads() as u64,
                    started_at: host::utc_now_rfc3339(),
                };
                let record = from_flows(&spec, &ctx, host::facts(), &flows);
                Ok(Finished {
                    error: record.error.clone(),
                    record: Some(Box::new(record)),
                    reports: Vec::new(),
                    interface,
                })
            }
            Err(e) => Err(e.to_string()),
        },
        FarRole::Sender => {
            let outcomes = join_senders(spawn_senders(&spec, streams));
            let error = outcomes
                .iter()
                .find_map(|o| o.result.as_ref().err().map(|e| e.to_string()));
            Ok(Finished {
                record: None,
                reports: outcomes.into_iter().map(|o| o.report).collect(),
                error,
                interface,
            })
        }
    };
    if cutoff.disarm() {
        return failed(
            c,
            format!(
                "cut off at this server's deadline: the test was still running {:.1} s after its warm-up and window (the peer never asked for or never answered the end)",
                END_GRACE.as_secs_f64()
            ),
        );
    }
    match finished {
        Ok(f) => c.send(&Msg::Finished(Box::new(f))),
        Err(e) => failed(c, e),
    }
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
