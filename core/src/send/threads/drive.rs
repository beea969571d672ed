//! The one loop that drives any blocking strategy through the measured window and on until
//! the receiver asks for the end frame.

use super::strategy::{BlockingSend, Sent};
use crate::cpu::{SideCounters, ThreadCounters};
use crate::error::{Error, Result};
use crate::send::lifecycle::end_requested;
use crate::sock;
use crate::spec::RunSpec;
use crate::stamps::{Stamp, TxStamper};
use crate::time::{now_ns, wait_until};
use crate::window::Window;
use crate::wire::end::SenderReport;
use sendpath_record::end_v1::TxStages;
use std::os::fd::RawFd;

/// Without latency the clock is read once per this many calls of one message (to find the
/// window's end); a call of a batch reads it every time.
const CLOCK_EVERY: u64 = 32;
/// Longest wait for the last timestamps of a stamped flow after its last send.
const STAMP_DRAIN_NS: u64 = 200_000_000;

/// When each message is meant to be sent.
pub trait Pace {
    /// The intended send time of message `seq` on CLOCK_MONOTONIC, or None: as soon as
    /// possible.
    fn intended_ns(&self, seq: u64) -> Option<u64>;
}

/// As fast as the strategy goes (the stream pattern).
pub struct Unpaced;

impl Pace for Unpaced {
    fn intended_ns(&self, _seq: u64) -> Option<u64> {
        None
    }
}

/// The flow's stamper when `every` asks for one, set up on `fd` before its first message
/// (OPT_ID counts from the next byte written).
pub(crate) fn start_stamper(fd: RawFd, every: Option<u64>) -> Result<Option<TxStamper>> {
    every
        .map(|n| TxStamper::new(fd, n).map_err(|e| Error::io("enable SO_TIMESTAMPING", e)))
        .transpose()
}

/// Sends message `seq` (header stamp `ts`; the clock read before the call `now`) through
/// `strategy`, stamping it if it is a sample: only a sample's send call carries the TX flags.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stamped_send(
    strategy: &mut dyn BlockingSend,
    st: &mut TxStamper,
    stamps: &mut Vec<Stamp>,
    fd: RawFd,
    seq: u64,
    now: u64,
    ts: u64,
    len: u64,
    in_window: bool,
) -> Result<Sent> {
    let armed = st.wants(seq);
    if armed {
        st.arm(fd)
            .map_err(|e| Error::io("arm SO_TIMESTAMPING", e))?;
        strategy.set_eor(true);
    }
    // One message per call: a stamped flow on this engine does not batch (validate).
    let sent = strategy.send(fd, seq, 1, ts);
    if armed {
        strategy.set_eor(false);
    }
    let sent = sent?;
    st.sent(fd, seq, now, len, armed, in_window)
        .map_err(|e| Error::io("disarm SO_TIMESTAMPING", e))?;
    if armed {
        strategy.reap_stamps(fd, stamps)?;
        stamps.drain(..).for_each(|s| st.on_stamp(s));
    }
    Ok(sent)
}

/// The sender's stages of a stamped flow, once the last stamps (ACKs above all, which come
/// after the last send) are in or [`STAMP_DRAIN_NS`] has passed.
pub(crate) fn finish_stamps(
    strategy: &mut dyn BlockingSend,
    mut st: TxStamper,
    stamps: &mut Vec<Stamp>,
    fd: RawFd,
) -> TxStages {
    let until = now_ns() + STAMP_DRAIN_NS;
    while st.waiting() && now_ns() < until {
        if strategy.reap_stamps(fd, stamps).is_err() {
            break;
        }
        stamps.drain(..).for_each(|s| st.on_stamp(s));
        if st.waiting() {
            let _ = crate::zerocopy::wait_errqueue(fd, 5);
        }
    }
    st.finish()
}

/// Drives `strategy` through the window and on until the receiver asks for the end frame
/// ([`crate::wire::END_REQUEST`], bounded by [`sock::IO_TIMEOUT`] after the window); returns
/// the report and the error that ended the flow early, if any. Counters and the message count
/// cover the window only. Message `seq` is not sent before `pace` intends it (the `rate`
/// pattern's schedule; [`Unpaced`] for a stream); a sender that falls behind sends at once and
/// never skips (open loop), so the lateness shows in the latency measured from the intended
/// time.
pub fn run_flow(
    strategy: &mut dyn BlockingSend,
    fd: RawFd,
    spec: &RunSpec,
    window: Window,
    pace: &dyn Pace,
) -> (SenderReport, Result<()>) {
    let latency = spec.records_latency();
    // Messages per call: the batch of a stream (rate and rr send one at a time).
    let batch = spec.batch_plan().messages;
    let mut calls_in_window = 0u64;
    let mut calls_since_clock = 0u64;
    let mut seq: u64 = 0;
    let mut first_in_window: Option<u64> = None;
    let mut end_of_window: Option<u64> = None;
    let mut counters: Option<ThreadCounters> = None;
    let mut side: Option<SideCounters> = None;
    let end_deadline = window.end + sock::IO_TIMEOUT.as_nanos() as u64;
    let mut tcp = crate::tcpinfo::Watch::default();
    let mut stamper = match start_stamper(fd, spec.stamp_every()) {
        Ok(s) => s,
        Err(e) => return (SenderReport::default(), Err(e)),
    };
    let mut stamps = Vec::new();
    let mut now = now_ns();
    let mut result = Ok(());
    loop {
        if now >= window.end {
            if end_of_window.is_none() {
                end_of_window = Some(seq);
                side = counters.take().map(|c| c.stop());
                tcp.close(fd);
            }
            // After the window: one non-blocking read per message for the receiver's request.
            match end_requested(fd, now >= end_deadline) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Some(intended) = pace.intended_ns(seq) {
            if now < intended {
                wait_until(intended.min(end_deadline));
                now = now_ns();
                continue;
            }
        }
        if first_in_window.is_none() && now >= window.start && now < window.end {
            first_in_window = Some(seq);
            counters = Some(ThreadCounters::start_profiled(
                spec.profile
                    .map(|hz| (hz, (window.end - window.start) as f64 / 1e9)),
            ));
            tcp.open(fd);
        }
        // The timestamp is the clock read just before this send call (the loop's only read).
        let ts = if latency { now } else { 0 };
        let in_window = now >= window.start && now < window.end;
        let sent = match stamper.as_mut() {
            Some(st) => {
                let len = spec.msg_size as u64;
                stamped_send(strategy, st, &mut stamps, fd, seq, now, ts, len, in_window)
            }
            None => strategy.send(fd, seq, batch, ts),
        };
        match sent {
            Ok(s) => {
                seq += s.messages as u64;
                if in_window {
                    calls_in_window += s.calls;
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        calls_since_clock += 1;
        if latency || batch > 1 || calls_since_clock >= CLOCK_EVERY || end_of_window.is_some() {
            now = now_ns();
            calls_since_clock = 0;
        }
    }
    if let Some(c) = counters.take() {
        side = Some(c.stop());
    }
    tcp.close(fd);
    let messages = first_in_window.map_or(0, |f| end_of_window.unwrap_or(seq).saturating_sub(f));
    let stages = stamper.map(|st| finish_stamps(strategy, st, &mut stamps, fd));
    let zerocopy = match strategy.finish(fd) {
        Ok(z) => z,
        Err(e) => {
            if result.is_ok() {
                result = Err(e);
            }
            None
        }
    };
    let report = SenderReport {
        messages,
        bytes: messages * spec.msg_size as u64,
        counters: side.unwrap_or_else(crate::cpu::empty_side),
        zerocopy,
        send_errors: 0,
        error: None,
        uring: None,
        tcp: tcp.take(),
        stages,
        calls: calls_in_window,
    };
    (report, result)
}
