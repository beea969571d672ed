//! The loop of one thread's ring: refill idle flows, enter, reap, until every flow is done.

use super::completion::{self, Event, Op, Tag};
use super::end::EndRecv;
use super::flow::{Flow, Link};
use crate::cpu::SideCounters;
use crate::error::Error;
use crate::kmem::Lent;
use crate::send::lifecycle::ZC_DRAIN_TIMEOUT;
use crate::sock::IO_TIMEOUT;
use crate::spec::RunSpec;
use crate::time::now_ns;
use crate::uring_sys::ring::{enter, Ring, WAIT_SLICE};
use crate::window::{Window, WindowTracker};
use io_uring::{squeue, types};
use std::os::fd::AsRawFd;
use std::time::Instant;

/// The loop of one thread: refill idle flows with a chain, enter, reap. Returns the thread's
/// counters over the window and what TCP did to each flow (`fds[i]` is flow `i`'s socket).
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
    let depth = spec.uring.depth;
    let batch = spec.uring.batch;
    let msg_len = spec.msg_size as u32;
    // A linked chain: `links` SQEs of one message; a coalesced flow: one SQE of up to `per_link`.
    let (links, per_link) = spec.uring.chain_shape();
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
        let ts = if latency { now } else { 0 };
        let mut expect = 0usize;
        let mut all_done = true;
        for (li, f) in flows.iter_mut().enumerate() {
            if now >= window.end && !f.stopped && sq.capacity() > sq.len() {
                if let Some(e) = f.end.arm(li) {
                    // SAFETY: the byte belongs to the flow and stays allocated until the
                    // receive completes (or is leaked, see run_group).
                    unsafe { sq.push(&e) }.expect("room checked above");
                }
            }
            if now >= window.end {
                f.past_window(now, end_deadline);
            }
            if f.idle() && f.bundle.is_some() {
                f.submit_bundle(li, depth, now, &window, ts, &mut sq);
            } else if f.idle() {
                // The unfinished tail of the last chain goes first, as a chain of its own:
                // `resubmit` holds until it is in the SQ, so nothing new replaces it.
                if !f.resubmit && !f.stopped && sq.capacity() - sq.len() >= links {
                    if f.first_in_window.is_none() && now >= window.start && now < window.end {
                        f.first_in_window = Some(f.seq);
                    }
                    f.chain.clear();
                    let in_window = now >= window.start && now < window.end;
                    for pos in 0..links {
                        let max = f
                            .stamps
                            .as_ref()
                            .map_or(per_link, |s| s.limit(pos, f.seq, per_link, false));
                        if max == 0 {
                            // A sample follows: it ends a chain of its own (stamp.rs).
                            break;
                        }
                        let Some((buf, n)) = f.strategy.prepare(pos, f.seq, ts, max) else {
                            break;
                        };
                        f.chain.push(Link {
                            buf,
                            len: n as u32 * msg_len,
                            done: 0,
                            res: None,
                        });
                        let first = f.seq;
                        f.seq += n as u64;
                        match f
                            .stamps
                            .as_mut()
                            .map(|s| s.prepared(first, n, now, in_window))
                        {
                            Some(Ok(true)) => break,
                            Some(Err(e)) => {
                                f.fail(e);
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                if !f.chain.is_empty()
                    && f.pending == 0
                    && sq.capacity() - sq.len() >= f.chain.len()
                {
                    let last = f.chain.len() - 1;
                    // An armed chain ends with its sample: its call gets MSG_EOR.
                    let armed = f.stamps.as_ref().is_some_and(|s| s.armed());
                    for (pos, l) in f.chain.iter().enumerate() {
                        let eor = armed && pos == last;
                        let mut e = f
                            .strategy
                            .sqe(types::Fixed(li as u32), l.buf, l.done, now, eor)
                            .user_data(Tag::link(li, pos, l.buf).encode());
                        if pos < last {
                            e = e.flags(squeue::Flags::IO_LINK);
                        }
                        // SAFETY: every buffer the entry names is owned by the flow's strategy
                        // and is not handed out again before this send's CQE (and, for
                        // zero-copy, its notification) arrives.
                        unsafe { sq.push(&e) }.expect("room checked above");
                    }
                    f.pending = f.chain.len();
                    f.resubmit = false;
                    if window.contains(now) {
                        f.calls_in_window += f.chain.len() as u64;
                    }
                }
            }
            if f.idle() && f.drained() && f.stopped && f.owed() > 0 {
                f.drain_since.get_or_insert_with(Instant::now);
            }
            // Wait for the chain's results; a flow waits for zero-copy notifications only when
            // it has nothing else in flight (its slots are all owed, or it is draining), so a
            // late notification never holds back the next chain.
            expect += if f.pending > 0 {
                f.pending
            } else {
                f.owed() as usize
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
                f.fail(Error::io("io_uring_enter", e));
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
            if let Err(e) = completion::apply_zero_copy(&mut *f.strategy, tag, event, reaped_at) {
                f.fail(e);
            }
            match (event, tag.op) {
                (Event::EndRequest { res }, _) => f.on_end_request(res),
                (Event::Sent { res, .. }, Op::Link(pos)) => f.on_link_sent(pos.into(), res),
                (Event::Sent { res, more }, op @ (Op::Bundle | Op::Loose)) => {
                    f.on_bundle_sent(op == Op::Loose, res, more, ring_fd)
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
                f.fail(Error::Timeout(format!(
                    "no io_uring completion for {} s on flow {} (the peer stopped reading?)",
                    IO_TIMEOUT.as_secs(),
                    f.flow
                )));
            }
            break;
        }
        let mut drain_expired = false;
        for f in flows.iter_mut() {
            if let Some(since) = f.drain_since {
                if f.owed() > 0 && t.duration_since(since) >= ZC_DRAIN_TIMEOUT {
                    let owed = f.owed();
                    f.fail(Error::Timeout(format!(
                        "{owed} SEND_ZC notifications still outstanding {} s after the last send on flow {}",
                        ZC_DRAIN_TIMEOUT.as_secs(),
                        f.flow
                    )));
                    drain_expired = true;
                }
            }
        }
        if drain_expired
            && flows
                .iter()
                .all(|f| f.pending == 0 && (f.owed() == 0 || f.error.is_some()))
        {
            break;
        }
    }
    // An end request that never came (a flow that failed): cancel its receive, so that the
    // byte it would write can be freed. Bounded; what does not end is leaked in run_group.
    let mut cancels = 0;
    for (li, f) in flows.iter().enumerate() {
        if let Some(e) = f.end.cancel(li) {
            // SAFETY: a cancellation names no memory.
            cancels += usize::from(unsafe { sq.push(&e) }.is_ok());
        }
    }
    let in_flight = |f: &&mut Flow| f.end.state() == EndRecv::InFlight;
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
                    let _ = f.end.on_recv(res, f.flow);
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
