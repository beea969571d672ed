//! The loop of one thread's ring: refill idle flows, enter, reap, until every flow is done.

use super::carrier::Moment;
use super::completion::{self, Event, Op};
use super::end::EndRecv;
use super::flow::Flow;
use crate::cpu::SideCounters;
use crate::error::Error;
use crate::kmem::Lent;
use crate::send::lifecycle::ZC_DRAIN_TIMEOUT;
use crate::sock::IO_TIMEOUT;
use crate::spec::RunSpec;
use crate::time::now_ns;
use crate::uring_sys::ring::{enter, Ring, WAIT_SLICE};
use crate::window::{Window, WindowTracker};
use io_uring::types;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// The loop of one thread: idle flows submit through their carriers, enter, reap. Returns the
/// thread's counters over the window and what TCP did to each flow (`fds[i]` is flow `i`'s
/// socket).
pub(super) fn drive(
    r: &mut Ring,
    spec: &RunSpec,
    window: Window,
    flows: &mut [Lent<Flow>],
    fds: &[std::os::fd::RawFd],
) -> (SideCounters, Vec<Option<crate::tcpinfo::TcpFlowInfo>>) {
    let mut tcp: Vec<crate::tcpinfo::Watch> = fds.iter().map(|_| Default::default()).collect();
    // Field by field access below needs plain references (a Lent derefs as a whole).
    let mut flows: Vec<&mut Flow> = flows.iter_mut().map(|f| &mut **f).collect();
    let latency = spec.records_latency();
    let batch = spec.uring.batch;
    let ring_fd = r.ring.as_raw_fd();
    let (mut submitter, mut sq, mut cq) = r.ring.split();
    r.registered_ring_fd = submitter.register_ring_fd().is_ok();
    let end_deadline = window.end + IO_TIMEOUT.as_nanos() as u64;
    let mut w = WindowTracker::new(window, false).profiled(spec.profile);
    let mut last_progress = Instant::now();
    let slice = types::Timespec::from(WAIT_SLICE);
    let args = types::SubmitArgs::new().timespec(&slice);
    loop {
        let now = now_ns();
        if w.at(now) {
            for (t, &fd) in tcp.iter_mut().zip(fds) {
                t.open(fd);
            }
        } else if now >= window.end {
            for (t, &fd) in tcp.iter_mut().zip(fds) {
                t.close(fd);
            }
        }
        let at = Moment {
            now,
            ts: if latency { now } else { 0 },
            window: &window,
        };
        let mut expect = 0usize;
        let mut all_done = true;
        for (li, f) in flows.iter_mut().enumerate() {
            let st = &mut f.state;
            if now >= window.end && !st.stopped && sq.capacity() > sq.len() {
                if let Some(e) = st.end.arm(li) {
                    // SAFETY: the byte belongs to the flow and stays allocated until the
                    // receive completes (or is leaked, see run_group).
                    unsafe { sq.push(&e) }.expect("room checked above");
                }
            }
            if now >= window.end {
                st.past_window(now, end_deadline);
            }
            if f.carrier.pending() == 0 {
                f.carrier.submit(&mut f.state, li, &at, &mut sq);
            }
            let owed = f.state.owed();
            if f.idle() && f.carrier.drained() && f.state.stopped && owed > 0 {
                f.state.drain_since.get_or_insert_with(Instant::now);
            }
            // Wait for the sends' results; a flow waits for zero-copy notifications only when
            // it has nothing else in flight (its slots are all owed, or it is draining), so a
            // late notification never holds back the next submission.
            expect += match f.carrier.pending() {
                0 => owed as usize,
                n => n,
            };
            all_done &= f.finished();
        }
        if all_done && sq.is_empty() {
            break;
        }
        sq.sync();
        let want = batch.min(expect);
        if let Err(e) = enter(&submitter, want, &args) {
            for f in flows.iter_mut() {
                let e = e.raw_os_error().map_or_else(
                    || std::io::Error::from(e.kind()),
                    std::io::Error::from_raw_os_error,
                );
                f.state.fail(Error::io("io_uring_enter", e));
            }
            break;
        }
        cq.sync();
        let mut got = false;
        // One clock read per batch of completions (zero-copy slot hold times).
        let reaped_at = if cq.is_empty() { 0 } else { now_ns() };
        for cqe in &mut cq {
            got = true;
            let (tag, event) = completion::decode(&cqe);
            let Some(f) = flows.get_mut(tag.flow as usize) else {
                continue;
            };
            let st = &mut f.state;
            if let Err(e) = completion::apply_zero_copy(&mut *st.strategy, tag, event, reaped_at) {
                st.fail(e);
            }
            match (event, tag.op) {
                (Event::EndRequest { res }, _) => st.on_end_request(res),
                (Event::Sent { res, more }, op @ (Op::Link(_) | Op::Bundle | Op::Loose)) => {
                    f.carrier.on_sent(st, op, res, more, ring_fd)
                }
                (Event::Sent { .. }, Op::EndRecv | Op::CancelEnd)
                | (Event::Notified { .. } | Event::Cancelled, _) => {}
            }
        }
        cq.sync();
        let t = Instant::now();
        if got {
            last_progress = t;
        } else if t.duration_since(last_progress) >= IO_TIMEOUT {
            for f in flows.iter_mut().filter(|f| !f.finished()) {
                f.state.fail(Error::Timeout(format!(
                    "no io_uring completion for {} s on flow {} (the peer stopped reading?)",
                    IO_TIMEOUT.as_secs(),
                    f.state.flow
                )));
            }
            break;
        }
        let mut drain_expired = false;
        for f in flows.iter_mut() {
            if let Some(since) = f.state.drain_since {
                if f.state.owed() > 0 && t.duration_since(since) >= ZC_DRAIN_TIMEOUT {
                    let owed = f.state.owed();
                    f.state.fail(Error::Timeout(format!(
                        "{owed} SEND_ZC notifications still outstanding {} s after the last send on flow {}",
                        ZC_DRAIN_TIMEOUT.as_secs(),
                        f.state.flow
                    )));
                    drain_expired = true;
                }
            }
        }
        if drain_expired
            && flows.iter().all(|f| {
                f.carrier.pending() == 0 && (f.state.owed() == 0 || f.state.error.is_some())
            })
        {
            break;
        }
    }
    // An end request that never came (a flow that failed): cancel its receive, so that the
    // byte it would write can be freed. Bounded; what does not end is leaked in run_group.
    let mut cancels = 0;
    for (li, f) in flows.iter().enumerate() {
        if let Some(e) = f.state.end.cancel(li) {
            // SAFETY: a cancellation names no memory.
            cancels += usize::from(unsafe { sq.push(&e) }.is_ok());
        }
    }
    let in_flight = |f: &&mut Flow| f.state.end.state() == EndRecv::InFlight;
    let give_up = Instant::now() + 2 * WAIT_SLICE;
    while cancels > 0 && flows.iter().any(in_flight) && Instant::now() < give_up {
        sq.sync();
        if enter(&submitter, 1, &args).is_err() {
            break;
        }
        cq.sync();
        for cqe in &mut cq {
            if let (tag, Event::EndRequest { res }) = completion::decode(&cqe) {
                if let Some(f) = flows.get_mut(tag.flow as usize) {
                    // The flow is over whatever the receive brought: only its byte is freed.
                    let _ = f.state.end.on_recv(res, f.state.flow);
                }
            }
        }
    }
    if r.registered_ring_fd {
        // The registration holds a reference to the ring: drop it, or the ring outlives us.
        let _ = submitter.unregister_ring_fd();
    }
    for (t, &fd) in tcp.iter_mut().zip(fds) {
        t.close(fd);
    }
    (
        w.side_counters(),
        tcp.iter_mut().map(|t| t.take()).collect(),
    )
}
