//! The flows of one worker thread on one ring: set up the ring and register the sockets and
//! buffers, send the hellos, drive the flows, and end each with its end frame.

use super::drive::drive;
use super::flow::Flow;
use super::modes::{for_mode, lacks_op};
use super::stamp::FlowStamps;
use super::strategy::UringSend;
use crate::error::{Error, Result};
use crate::kmem::Lent;
use crate::send::lifecycle::{
    finish, hello_for, prepare_socket, send_hello, FlowResults, SenderOutcome,
};
use crate::spec::RunSpec;
use crate::time::{now_ns, secs_to_ns};
use crate::uring_sys::ring::{make_ring, Ring};
use crate::window::Window;
use crate::wire::end::{SenderReport, UringSetup};
use io_uring::Probe;
use sendpath_record::v1::UringSpec;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};

/// Most SQEs in one ring's submission queue (a chain always fits: depth <= 1024).
const MAX_SQ_ENTRIES: u32 = 4096;

/// Runs the sending side of `streams` (each with its flow index) on one ring in this thread;
/// returns each flow's outcome (after its end frame was attempted so the receiver learns how
/// it ended).
pub fn run_group(streams: Vec<(TcpStream, u32)>, spec: &RunSpec) -> FlowResults {
    for (s, _) in &streams {
        if let Err(e) = prepare_socket(s, spec) {
            return streams
                .iter()
                .map(|(_, f)| SenderOutcome::new(*f, SenderReport::default(), Err(copy_err(&e))))
                .collect();
        }
    }
    let fds: Vec<RawFd> = streams.iter().map(|(s, _)| s.as_raw_fd()).collect();
    let n = streams.len();
    let depth = spec.uring.depth;
    // The ring and every strategy are built before the hellos, so that a kernel that cannot
    // do it is reported to each receiver through the end frame.
    // Each flow owns memory the kernel reads (and a byte it writes) while its requests are in
    // flight: it stays in a Lent, leaked if the ring goes away with requests in flight.
    let flows: Result<Vec<Lent<Flow>>> = streams
        .iter()
        .map(|(_, f)| Flow::new(*f, for_mode(spec), spec).map(Lent::new))
        .collect();
    let mut flows = match flows {
        Ok(flows) => flows,
        // (Options that validate never get here: no hello has gone out.)
        Err(e) => {
            return streams
                .iter()
                .map(|(s, f)| finish(s, *f, SenderReport::default(), Err(copy_err(&e)), false))
                .collect()
        }
    };
    // A flow's SQEs at once: its carrier's submission (a chain of `depth` links, one
    // coalesced send, or a loose send and a bundle), and the receive of its end request,
    // submitted after the window.
    let per_flow = flows.iter().map(|f| f.carrier.sqes()).max().unwrap_or(1);
    let sq = ((n * (per_flow + 1)) as u32)
        .clamp(per_flow as u32, MAX_SQ_ENTRIES)
        .next_power_of_two();
    let zc = if spec.mode.facts().zero_copy {
        n * spec.zc_slots
    } else {
        0
    };
    let cq = (2 * sq as usize + 2 * zc).next_power_of_two().min(1 << 20) as u32;
    let setup = make_ring(sq, cq).and_then(|mut r| {
        prepare_ring(&mut r, spec, &fds, &mut flows)?;
        Ok(r)
    });
    let mut hellos_ok = vec![true; n];
    for (i, (s, f)) in streams.iter().enumerate() {
        if let Err(e) = send_hello(s.as_raw_fd(), &hello_for(spec, *f)) {
            hellos_ok[i] = false;
            flows[i].state.fail(e);
        } else if let Some(every) = spec.stamp_every() {
            // After the hello: OPT_ID counts from the first message's first byte.
            match FlowStamps::new(s.as_raw_fd(), every, spec.msg_size) {
                Ok(st) => flows[i].state.stamps = Some(st),
                Err(e) => flows[i].state.fail(e),
            }
        }
    }
    let mut setup_report = None;
    let mut side = None;
    let mut tcp: Vec<Option<crate::tcpinfo::TcpFlowInfo>> = Vec::new();
    let mut stages: Vec<Option<sendpath_record::end_v1::TxStages>> = Vec::new();
    match setup {
        Ok(mut ring) => {
            let window = Window::after(
                now_ns(),
                secs_to_ns(spec.warmup_s),
                secs_to_ns(spec.duration_s),
            );
            for (f, ok) in flows.iter_mut().zip(&hellos_ok) {
                f.state.stopped |= !ok;
            }
            let (counters, infos) = drive(&mut ring, spec, window, &mut flows, &fds);
            side = Some(counters);
            tcp = infos;
            stages =
                super::stamp::finish(flows.iter_mut().map(|f| f.state.stamps.take()).collect());
            setup_report = Some(UringSetup {
                threads: spec.sender_threads() as u64,
                uring: UringSpec {
                    depth: depth as u64,
                    batch: spec.uring.batch as u64,
                    ordering: spec.uring.ordering,
                    setup_flags: ring.flags.clone(),
                    registered_ring_fd: ring.registered_ring_fd,
                },
            });
            let in_flight = flows
                .iter()
                .any(|f| f.carrier.pending() > 0 || f.state.owed() > 0);
            // Unregisters files and buffers; the ring's exit cancels what is left.
            drop(ring);
            for f in flows.iter_mut() {
                let held = in_flight || f.state.end.state() == super::end::EndRecv::InFlight;
                f.hold(held);
            }
        }
        Err(e) => {
            for f in flows.iter_mut() {
                f.state.fail(copy_err(&e));
            }
        }
    }
    let mut out = Vec::with_capacity(n);
    for (i, ((s, _), f)) in streams.iter().zip(flows.iter_mut()).enumerate() {
        let messages = f.state.first_in_window.map_or(0, |first| {
            f.state
                .end_of_window
                .unwrap_or(f.state.seq)
                .saturating_sub(first)
        });
        let counters = match (&side, i) {
            (Some(c), 0) => c.clone(),
            // The thread's counters go with its first flow, so the side's sum counts them once.
            _ => crate::cpu::empty_side(),
        };
        let mut report = SenderReport {
            messages,
            bytes: messages * spec.msg_size as u64,
            counters,
            zerocopy: f.state.zerocopy(),
            send_errors: f.state.retries,
            error: None,
            uring: setup_report.clone(),
            tcp: tcp.get_mut(i).and_then(Option::take),
            stages: stages.get_mut(i).and_then(Option::take),
            calls: f.state.calls_in_window,
        };
        if f.state.error.is_some() && report.zerocopy.is_some() && f.state.owed() > 0 {
            report.zerocopy = None;
        }
        let result = match f.state.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        };
        out.push(finish(s, f.state.flow, report, result, hellos_ok[i]));
    }
    out
}

/// The same error again, for each flow of a ring that could not be set up.
fn copy_err(e: &Error) -> Error {
    match e {
        Error::Unsupported(m) => Error::Unsupported(m.clone()),
        Error::InvalidSpec(m) => Error::InvalidSpec(m.clone()),
        Error::Io { context, os } => Error::io(
            context.clone(),
            os.raw_os_error()
                .map_or_else(|| io::Error::from(os.kind()), io::Error::from_raw_os_error),
        ),
        e => Error::Unsupported(e.to_string()),
    }
}

/// Registers the flows' sockets (and A3's slots) with the ring, and each bundle flow's
/// provided-buffer ring; checks the opcode the mode needs.
fn prepare_ring(
    r: &mut Ring,
    spec: &RunSpec,
    fds: &[RawFd],
    flows: &mut [Lent<Flow>],
) -> Result<()> {
    register(
        r,
        spec,
        fds,
        flows
            .iter_mut()
            .map(|f| f.state.strategy.as_mut())
            .collect(),
    )?;
    if flows.iter().any(|f| f.carrier.needs_bundles())
        && !r.ring.params().is_feature_recvsend_bundle()
    {
        return Err(Error::Unsupported(
            "this kernel's io_uring has no send bundles (IORING_FEAT_RECVSEND_BUNDLE, Linux 6.10): use --uring-ordering link".into(),
        ));
    }
    for (li, f) in flows.iter_mut().enumerate() {
        f.carrier.register(&r.ring, li as u16)?;
    }
    Ok(())
}

/// Checks the opcode, registers the sockets and every zero-copy strategy's slots (one fixed
/// buffer each).
pub(super) fn register(
    r: &mut Ring,
    spec: &RunSpec,
    fds: &[RawFd],
    strategies: Vec<&mut (dyn UringSend + 'static)>,
) -> Result<()> {
    let mut probe = Probe::new();
    r.ring
        .submitter()
        .register_probe(&mut probe)
        .map_err(|e| Error::io("io_uring probe", e))?;
    if let Some(why) = lacks_op(spec.mode, |c| probe.is_supported(c)) {
        return Err(Error::Unsupported(why));
    }
    r.ring
        .submitter()
        .register_files(fds)
        .map_err(|e| Error::io("register the sockets with io_uring", e))?;
    let mut iovs = Vec::new();
    for st in strategies {
        if let Some(z) = st.zero_copy() {
            z.set_fixed_index(iovs.len() as u16);
            iovs.push(z.fixed_buffer());
        }
    }
    if !iovs.is_empty() {
        // SAFETY: the buffers belong to the strategies, which outlive the ring (their owners
        // keep them in a Lent that leaks them if sends may still be in flight).
        unsafe { r.ring.submitter().register_buffers(&iovs) }.map_err(|e| {
            Error::io(
                format!(
                    "register the zero-copy slots of {} flows as io_uring fixed buffers (raise `ulimit -l` or use fewer --zc-slots)",
                    iovs.len()
                ),
                e,
            )
        })?;
    }
    Ok(())
}
