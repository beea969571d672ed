//! The loop of one thread's ring: refill idle flows, enter, reap, until every flow is done.

use super::flow::{user_data, Flow, Link, CANCEL_POS, END_POS, LOOSE_POS};
use crate::cpu::SideCounters;
use crate::error::Error;
use crate::kmem::Lent;
use crate::send::lifecycle::ZC_DRAIN_TIMEOUT;
use crate::sock::IO_TIMEOUT;
use crate::spec::RunSpec;
use crate::time::now_ns;
use crate::uring_sys::ring::{enter, Ring, WAIT_SLICE};
use crate::window::{Window, WindowTracker};
use io_uring::{cqueue, opcode, squeue, types};
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
            if now >= window.end && !f.end_recv_armed && !f.stopped && sq.capacity() > sq.len() {
                // The receive of the end request is armed only once the window is over (the
                // request comes after the receiver's window; if it came first it waits in the
                // socket): a receive waiting on the socket is woken by every error-queue
                // entry, and with `--timestamps` each TX stamp woke this thread (thousands of
                // context switches a second, a third of A1's throughput).
                let e = opcode::Recv::new(types::Fixed(li as u32), f.end_buf.as_mut_ptr(), 1)
                    .build()
                    .user_data(user_data(li, END_POS, 0));
                // SAFETY: the byte belongs to the flow and stays allocated until the receive
                // completes (or is leaked, see run_group).
                unsafe { sq.push(&e) }.expect("room checked above");
                f.end_recv_pending = true;
                f.end_recv_armed = true;
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
                            .user_data(user_data(li, pos, l.buf));
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
            let ud = cqe.user_data();
            let li = (ud >> 32) as usize;
            let pos = ((ud >> 16) & 0xffff) as usize;
            let buf = (ud & 0xffff) as u16;
            let flags = cqe.flags();
            let Some(f) = flows.get_mut(li) else {
                continue;
            };
            if pos == END_POS {
                f.on_end_request(cqe.result());
                continue;
            }
            if cqueue::notif(flags) {
                let res = match f.strategy.zero_copy() {
                    Some(z) => z.on_notif(buf, cqe.result(), reaped_at),
                    None => Err(Error::Kernel(format!(
                        "a notification CQE for buffer {buf} of flow {}, which does not send zero-copy",
                        f.flow
                    ))),
                };
                if let Err(e) = res {
                    f.fail(e);
                }
                continue;
            }
            if let (Some(b), true) = (f.bundle.as_mut(), pos >= LOOSE_POS) {
                let res = cqe.result();
                if pos == LOOSE_POS {
                    b.loose_res = Some(res);
                } else {
                    let mut consumed = if res > 0 {
                        b.consume(res as u32)
                    } else {
                        Ok(())
                    };
                    let more = cqueue::more(flags);
                    if more && b.front_sent != 0 && consumed.is_ok() {
                        // The kernel goes on with a bundle only after sending all it selected.
                        consumed = Err(Error::Integrity(format!(
                            "a send bundle went on after sending part of an entry ({} bytes)",
                            b.front_sent
                        )));
                    }
                    if !more {
                        b.bundle_res = Some(res);
                    }
                    if let Err(e) = consumed {
                        f.fail(e);
                    }
                    if more {
                        // The bundle goes on with the entries left: more CQEs follow.
                        continue;
                    }
                }
                f.pending = f.pending.saturating_sub(1);
                if f.pending == 0 {
                    f.settle_bundle(ring_fd);
                    f.after_settle();
                }
                continue;
            }
            if let Some(z) = f.strategy.zero_copy() {
                z.on_result(buf, flags, reaped_at);
            }
            if let Some(l) = f.chain.get_mut(pos) {
                l.res = Some(cqe.result());
            }
            f.pending = f.pending.saturating_sub(1);
            if f.pending == 0 {
                f.settle();
                f.after_settle();
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
    for (li, _) in flows.iter().enumerate().filter(|(_, f)| f.end_recv_pending) {
        let e = opcode::AsyncCancel::new(user_data(li, END_POS, 0))
            .build()
            .user_data(user_data(li, CANCEL_POS, 0));
        // SAFETY: a cancellation names no memory.
        cancels += usize::from(unsafe { sq.push(&e) }.is_ok());
    }
    let give_up = Instant::now() + 2 * WAIT_SLICE;
    while cancels > 0 && flows.iter().any(|f| f.end_recv_pending) && Instant::now() < give_up {
        sq.sync();
        if enter(&submitter, 1, &args).is_err() {
            break;
        }
        cq.sync();
        for cqe in &mut cq {
            let ud = cqe.user_data();
            if ((ud >> 16) & 0xffff) as usize == END_POS {
                if let Some(f) = flows.get_mut((ud >> 32) as usize) {
                    f.end_recv_pending = false;
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
