//! Putting the two ends together: an in-process run on loopback ([`run_loopback`]), and the
//! two halves the per-mode binaries use across processes or hosts ([`serve`], [`client`]).

use crate::error::{Error, Result};
use crate::host;
use crate::netns::drops::DropWatch;
use crate::netns::{self, Veth};
use crate::pattern::{run_receiver, run_senders};
use crate::recv::RecvOptions;
use crate::report::v1::{HostSpeedV1, Record};
use crate::report::{from_flows, Context};
use crate::results::FlowResult;
use crate::send::{FlowResults, SenderOutcome};
use crate::sock;
use crate::spec::{Mode, RunSpec, RxMode, UringOpts};
use crate::wire::SenderReport;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long an in-process run waits for its own receivers to connect.
const LOCAL_ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the two ends of an in-process run live.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Topology {
    /// Both ends on 127.0.0.1.
    #[default]
    Loopback,
    /// Sender in the server namespace, receivers in the client namespace, across a veth pair.
    Veth(Veth),
}

impl Topology {
    /// The name recorded in `spec.topology`.
    pub fn name(&self) -> &'static str {
        match self {
            Topology::Loopback => "loopback",
            Topology::Veth(_) => "veth",
        }
    }
}

/// Measures one cell with both ends in this process on 127.0.0.1 (port from the OS) and
/// returns its record. Invalid options are an `Err`; anything that goes wrong once flows
/// exist is a `failed` record that keeps what was measured.
pub fn run_loopback(spec: &RunSpec, rep: u64) -> Result<Record> {
    run_cell(spec, rep, &Topology::Loopback)
}

/// Measures one cell on `topology` with both ends in this process (see [`run_loopback`]).
pub fn run_cell(spec: &RunSpec, rep: u64, topology: &Topology) -> Result<Record> {
    spec.validate()?;
    crate::time::calibrate();
    crate::profile::prepare(spec.profile);
    let ctx = Context {
        topology: topology.name().into(),
        rep,
        threads: spec.sender_threads() as u64,
        started_at: host::utc_now_rfc3339(),
    };
    let (listener, client_ns) = match topology {
        Topology::Loopback => (sock::listen("127.0.0.1:0".parse().unwrap())?, None),
        Topology::Veth(v) => {
            if !v.is_up() {
                return Err(Error::Setup(format!(
                    "the veth topology {}/{} is not up: run `sendpath topology up` first",
                    v.server_ns, v.client_ns
                )));
            }
            // The listening socket (and every connection it accepts) lives in the server
            // namespace whichever thread uses it later.
            let addr = SocketAddr::new(v.server_ip.into(), 0);
            let l = netns::run_in(&v.server_ns, move || sock::listen(addr))?;
            (l, Some(v.client_ns.clone()))
        }
    };
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("local address", e))?;
    let impairment = match topology {
        Topology::Veth(v) => v.impairment(),
        Topology::Loopback => None,
    };
    // The host's speed on the sender's CPU, on both sides of the flows (outside the window).
    let probe_cpu = spec
        .pin
        .as_ref()
        .map(|p| crate::affinity::cpu_for(&p.sender, 0));
    let before = crate::speed::probe_on(probe_cpu);
    // The loss rule's counter is read by the window's clock, which starts when every flow is
    // connected (connecting can take longer than a short window on a loaded machine).
    let watch = || match topology {
        Topology::Veth(v) => watch_drops(v, spec),
        Topology::Loopback => None,
    };
    let (flows, error, drops) = run_flows(spec, &listener, addr, client_ns, watch);
    let mut record = from_flows(spec, &ctx, host::facts(), &flows);
    // A run that failed (a flow's error, or one of the run's own) may have ended before its
    // window: the watch is stopped rather than waited out.
    let failed = error.is_some() || record.status == crate::report::v1::Status::Failed;
    let dropped = drops.and_then(|w| if failed { w.cancel() } else { w.finish() });
    let after = crate::speed::probe_on(probe_cpu);
    // `--profile`: what a plain memcpy costs here at this size, beside the copy buckets.
    let memcpy = spec
        .profile
        .and_then(|_| crate::speed::memcpy_on(probe_cpu, spec.msg_size).ok());
    record.spec.impairment = impairment;
    if let (Some(t), Some(n)) = (record.tcp.as_mut(), dropped) {
        t.impairment_dropped = Some(n);
    }
    if let Some(p) = record.profile.as_mut() {
        p.memcpy_ns_per_byte = memcpy;
    }
    // A probe that could not run (the pin failed: the flows' own pins report that) is absent.
    if let (Ok(before_ns), Ok(after_ns)) = (before, after) {
        record.host_speed = Some(HostSpeedV1 {
            probe: crate::speed::PROBE_NAME.into(),
            cpu: probe_cpu.map(|c| c as u64),
            before_ns,
            after_ns,
        });
    }
    if let Some(e) = error {
        record.status = crate::report::v1::Status::Failed;
        record.error = Some(match record.error.take() {
            Some(prev) => format!("{e}; {prev}"),
            None => e,
        });
    }
    Ok(record)
}

/// With a loss rule on the pair: a watch of what it drops over the window, whose clock starts
/// now (as the senders start). None without a rule.
fn watch_drops(v: &Veth, spec: &RunSpec) -> Option<DropWatch> {
    v.loss_rule()?;
    Some(DropWatch::start(
        v.client_ns.clone(),
        Duration::from_secs_f64(spec.warmup_s),
        Duration::from_secs_f64(spec.duration_s),
    ))
}

pub(crate) fn spawn_named<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    thread::Builder::new()
        .name(name)
        .spawn(f)
        .expect("spawn a worker thread")
}

/// Starts the sender threads for the accepted `streams` (flow `i` is `streams[i]`): one per
/// flow on the threads engine; on io_uring `spec.sender_threads()` threads, each with one
/// ring, flow `i` on thread `i % threads`.
pub(crate) fn spawn_senders(
    spec: &RunSpec,
    streams: Vec<TcpStream>,
) -> Vec<JoinHandle<FlowResults>> {
    let threads = spec.sender_threads().min(streams.len());
    let mut groups: Vec<Vec<(TcpStream, u32)>> = (0..threads).map(|_| Vec::new()).collect();
    for (flow, s) in streams.into_iter().enumerate() {
        groups[flow % threads].push((s, flow as u32));
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(t, g)| {
            let spec = spec.clone();
            spawn_named(format!("tx-{t}"), move || {
                if let Some(p) = &spec.pin {
                    if let Err(e) =
                        crate::affinity::pin_current(crate::affinity::cpu_for(&p.sender, t))
                    {
                        return g
                            .into_iter()
                            .map(|(_, f)| {
                                SenderOutcome::new(f, SenderReport::default(), Err(e.clone_msg()))
                            })
                            .collect();
                    }
                }
                run_senders(g, &spec)
            })
        })
        .collect()
}

/// Starts receiver `i` of `spec` on a thread of its own: pinned as `spec.pin` says, it gets
/// its connection from `stream` (called on that thread, so a namespace entered there is the
/// connection's) and receives one flow with `opts`.
pub(crate) fn spawn_receiver(
    spec: &RunSpec,
    i: usize,
    opts: RecvOptions,
    stream: impl FnOnce() -> Result<TcpStream> + Send + 'static,
) -> JoinHandle<FlowResult> {
    let failed = |e: Error| FlowResult {
        error: Some(e.to_string()),
        ..Default::default()
    };
    let pin_cpu = spec
        .pin
        .as_ref()
        .map(|p| crate::affinity::cpu_for(&p.receiver, i));
    spawn_named(format!("rx-{i}"), move || {
        if let Some(cpu) = pin_cpu {
            if let Err(e) = crate::affinity::pin_current(cpu) {
                return failed(e);
            }
        }
        match stream() {
            Ok(s) => run_receiver(s, opts),
            Err(e) => failed(e),
        }
    })
}

/// Joins receiver threads, in order (a thread that panicked leaves a result saying so).
pub(crate) fn join_receivers(handles: Vec<JoinHandle<FlowResult>>) -> Vec<FlowResult> {
    handles
        .into_iter()
        .map(|h| {
            h.join().unwrap_or_else(|_| FlowResult {
                error: Some("a receiver thread panicked".into()),
                ..Default::default()
            })
        })
        .collect()
}

/// Joins the sender threads; returns each flow's outcome in flow order (a thread that
/// panicked leaves an outcome with flow `u32::MAX`).
pub(crate) fn join_senders(handles: Vec<JoinHandle<FlowResults>>) -> FlowResults {
    let mut all = Vec::new();
    for h in handles {
        match h.join() {
            Ok(v) => all.extend(v),
            Err(_) => all.push(SenderOutcome::new(
                u32::MAX,
                SenderReport::default(),
                Err(Error::Internal("a sender thread panicked".into())),
            )),
        }
    }
    all.sort_by_key(|o| o.flow);
    all
}

/// Starts `spec.flows` receivers connecting to `addr` and a sender per accepted connection.
/// Connects the flows and runs them; `at_start` is called as the senders start (every flow
/// connected), and what it returns comes back with the flows.
fn run_flows<T>(
    spec: &RunSpec,
    listener: &TcpListener,
    addr: SocketAddr,
    client_ns: Option<String>,
    at_start: impl FnOnce() -> T,
) -> (Vec<FlowResult>, Option<String>, T) {
    let receivers: Vec<JoinHandle<FlowResult>> = (0..spec.flows)
        .map(|i| {
            let opts = RecvOptions {
                sample_host_cpu: i == 0,
                expect_mode: Some(spec.mode),
                busy_poll: spec.busy_poll,
                stall: spec.rx_stall,
                ..RecvOptions::new(spec.rx)
            };
            let ns = client_ns.clone();
            let rcvbuf = spec.rx_stall.map(|_| crate::spec::STALL_SOCKET_BUFFER);
            spawn_receiver(spec, i, opts, move || {
                let connect =
                    || sock::connect_retry_rcvbuf(addr, 50, Duration::from_millis(20), rcvbuf);
                match &ns {
                    Some(ns) => netns::enter(ns).and_then(|_| connect()),
                    None => connect(),
                }
            })
        })
        .collect();
    let deadline = Instant::now() + LOCAL_ACCEPT_TIMEOUT;
    let mut streams = Vec::new();
    let mut error = None;
    for _ in 0..spec.flows {
        match sock::accept_until(listener, deadline) {
            Ok(stream) => streams.push(stream),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    // Every flow starts once all are connected, so they overlap fully (and io_uring threads
    // get their whole group of flows at once).
    let started = at_start();
    let senders = join_senders(spawn_senders(spec, streams));
    let mut flows = join_receivers(receivers);
    if let Some(e) = attach_sender_sides(&mut flows, senders) {
        error.get_or_insert(e);
    }
    (flows, error, started)
}

/// Gives each receiver that never got an end frame its sender's side (report and error), as
/// the sender thread of this process returned it. Returns the first error of a sender that no
/// receiver knows (its hello never arrived, or its thread panicked).
pub(crate) fn attach_sender_sides(
    flows: &mut [FlowResult],
    senders: FlowResults,
) -> Option<String> {
    let mut orphan_error = None;
    for o in senders {
        let receiver = flows
            .iter_mut()
            .find(|f| f.hello.as_ref().is_some_and(|h| h.flow == o.flow));
        match receiver {
            Some(f) => {
                f.sender.get_or_insert(o.report);
            }
            None => {
                if let Err(e) = o.result {
                    orphan_error.get_or_insert_with(|| format!("sender: {e}"));
                }
            }
        }
    }
    orphan_error
}

/// The server half (per-mode binaries): listens on `bind`, accepts `clients` connections
/// (waiting at most `accept_timeout` in all), then streams to each for the run. An error
/// before the flows start (options, listening, accepting) is an `Err`; how the flows went is
/// in [`Served`].
pub fn serve(
    spec: &RunSpec,
    bind: SocketAddr,
    clients: usize,
    accept_timeout: Duration,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<Served> {
    let spec = RunSpec {
        flows: clients,
        ..spec.clone()
    };
    spec.validate()?;
    crate::time::calibrate();
    crate::profile::prepare(spec.profile);
    let listener = sock::listen(bind)?;
    on_listen(
        listener
            .local_addr()
            .map_err(|e| Error::io("local address", e))?,
    );
    let deadline = Instant::now() + accept_timeout;
    let mut streams = Vec::with_capacity(clients);
    for _ in 0..clients {
        streams.push(
            sock::accept_until(&listener, deadline).map_err(|e| match e {
                Error::Timeout(_) => Error::Timeout(format!(
                    "only {} of {clients} clients connected within {:.0} s",
                    streams.len(),
                    accept_timeout.as_secs_f64()
                )),
                e => e,
            })?,
        );
    }
    // All clients are connected: start every flow at once so they overlap fully.
    let mut served = Served {
        reports: Vec::new(),
        failure: None,
    };
    for o in join_senders(spawn_senders(&spec, streams)) {
        if let Err(e) = o.result {
            served.failure.get_or_insert(e);
        }
        served.reports.push(o.report);
    }
    Ok(served)
}

/// What a server's run did, once its flows started: each flow's report, and the first error
/// that ended one early (the run failed then; errors before the flows start are `Err`).
#[derive(Debug)]
pub struct Served {
    /// Each flow's side of the record, as sent in its end frame.
    pub reports: Vec<SenderReport>,
    /// The first flow error, if a flow failed.
    pub failure: Option<Error>,
}

/// The client half (per-mode binaries): connects to `addr` (retrying a refused connection for
/// a few seconds), receives one flow and returns its record. `expect_mode` rejects a server of
/// another mode.
pub fn client(
    addr: SocketAddr,
    rx: RxMode,
    expect_mode: Option<Mode>,
    busy_poll: bool,
) -> Result<Record> {
    let started_at = host::utc_now_rfc3339();
    crate::time::calibrate();
    let stream = sock::connect_retry(addr, 50, Duration::from_millis(100))?;
    let flow = run_receiver(
        stream,
        RecvOptions {
            sample_host_cpu: true,
            expect_mode,
            busy_poll,
            ..RecvOptions::new(rx)
        },
    );
    let Some(hello) = flow.hello else {
        return Err(Error::Protocol(
            flow.error
                .unwrap_or_else(|| "no hello frame from the server".into()),
        ));
    };
    let spec = RunSpec {
        busy_poll: hello.busy_poll || busy_poll,
        ..RunSpec::from_hello(&hello, rx)
    };
    // The io_uring tunables travel in the end frame (the hello predates them).
    let setup = flow.sender.as_ref().and_then(|s| s.uring.clone());
    let spec = match &setup {
        Some(u) => RunSpec {
            threads: Some(u.threads as usize),
            uring: UringOpts {
                depth: u.uring.depth as usize,
                batch: u.uring.batch as usize,
                ordering: u.uring.ordering,
            },
            ..spec
        },
        None => spec,
    };
    let ctx = Context {
        topology: "network".into(),
        rep: 0,
        threads: setup.map_or(hello.flows as u64, |u| u.threads),
        started_at,
    };
    Ok(from_flows(&spec, &ctx, host::facts(), &[flow]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::hello_for;

    fn received(flow: u32, end_frame: bool) -> FlowResult {
        FlowResult {
            hello: Some(hello_for(&RunSpec::default(), flow)),
            sender: end_frame.then(|| SenderReport {
                messages: 7,
                ..SenderReport::default()
            }),
            error: (!end_frame).then(|| "peer closed without an end frame".into()),
            ..FlowResult::default()
        }
    }

    #[test]
    fn a_receiver_without_the_end_frame_gets_its_senders_side_and_error() {
        let mut flows = vec![received(0, true), received(1, false), FlowResult::default()];
        let failed = |flow, msg: &str| {
            SenderOutcome::new(
                flow,
                SenderReport {
                    messages: 3,
                    ..SenderReport::default()
                },
                Err(Error::Timeout(msg.into())),
            )
        };
        let orphan = attach_sender_sides(
            &mut flows,
            vec![
                SenderOutcome::new(0, SenderReport::default(), Ok(())),
                failed(1, "no completion for 10 s"),
                failed(2, "never connected"),
            ],
        );
        assert_eq!(
            flows[0].sender.as_ref().unwrap().messages,
            7,
            "the end frame wins"
        );
        let s1 = flows[1].sender.as_ref().expect("sender side attached");
        assert_eq!(s1.messages, 3);
        assert!(s1.error.as_ref().unwrap().contains("no completion"));
        assert!(flows[2].sender.is_none());
        assert!(orphan.unwrap().contains("never connected"));
        let r = from_flows(
            &RunSpec {
                flows: 2,
                ..RunSpec::default()
            },
            &Context {
                topology: "loopback".into(),
                rep: 0,
                threads: 2,
                started_at: String::new(),
            },
            host::facts(),
            &flows[..2],
        );
        let e = r.error.unwrap();
        assert!(
            e.contains("flow 1: peer closed")
                && e.contains("flow 1 sender: ")
                && e.contains("no completion"),
            "both ends' views: {e}"
        );
        assert!(r.sender.reported);
    }
}
