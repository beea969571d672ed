//! What a flow on a ring is and has done, whatever carries its sends: its strategy (which
//! owns its message buffers), where its sequence stands, how it ends, and what went wrong.

use super::end::{EndRecv, EndRequest};
use super::stamp::FlowStamps;
use super::strategy::UringSend;
use crate::error::Error;
use crate::sock::IO_TIMEOUT;
use crate::window::Window;
use sendpath_record::end_v1::ZeroCopyStats;
use std::time::Instant;

/// Resubmissions in a row that made no progress before the flow gives up.
pub(super) const MAX_STALLS: u32 = 1000;

/// A flow on a ring, but for how its sends are carried (see [`super::carrier`]).
pub(super) struct FlowState {
    pub(super) flow: u32,
    pub(super) strategy: Box<dyn UringSend>,
    pub(super) seq: u64,
    pub(super) first_in_window: Option<u64>,
    /// `seq` when the window ended (the flow sends on until the receiver asks for the end).
    pub(super) end_of_window: Option<u64>,
    /// The receive of the receiver's end request.
    pub(super) end: EndRequest,
    /// No new messages: the receiver asked for the end, or the flow failed.
    pub(super) stopped: bool,
    /// When the last send completed (start of the bounded notification drain).
    pub(super) drain_since: Option<Instant>,
    /// Resubmissions in a row without progress.
    pub(super) stalls: u32,
    /// Send calls that failed and were retried (the record's `send_errors`).
    pub(super) retries: u64,
    /// Send SQEs submitted inside the measured window (the record's `calls`).
    pub(super) calls_in_window: u64,
    pub(super) error: Option<Error>,
    /// Present with `--timestamps` (from the flow's first message on).
    pub(super) stamps: Option<FlowStamps>,
}

impl FlowState {
    /// Flow `flow` sending with `strategy`, nothing sent yet.
    pub(super) fn new(flow: u32, strategy: Box<dyn UringSend>) -> FlowState {
        FlowState {
            flow,
            strategy,
            seq: 0,
            first_in_window: None,
            end_of_window: None,
            end: EndRequest::new(),
            stopped: false,
            drain_since: None,
            stalls: 0,
            retries: 0,
            calls_in_window: 0,
            error: None,
            stamps: None,
        }
    }

    /// Zero-copy notifications the kernel still owes this flow.
    pub(super) fn owed(&self) -> u64 {
        self.strategy.zero_copy_ref().map_or(0, |z| z.owed())
    }

    /// The flow's zero-copy accounting, if it sends zero-copy.
    pub(super) fn zerocopy(&self) -> Option<ZeroCopyStats> {
        self.strategy.zero_copy_ref().map(|z| z.stats())
    }

    /// Ends the flow with `e` (the first error is the one kept).
    pub(super) fn fail(&mut self, e: Error) {
        self.stopped = true;
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// New messages are about to be taken at `now`: the first taken inside the window is
    /// where the window's count starts. Returns whether `now` is inside the window.
    pub(super) fn taking(&mut self, now: u64, window: &Window) -> bool {
        let in_window = window.contains(now);
        if in_window && self.first_in_window.is_none() {
            self.first_in_window = Some(self.seq);
        }
        in_window
    }

    /// `calls` send SQEs went into the SQ at `now`.
    pub(super) fn submitted(&mut self, calls: usize, now: u64, window: &Window) {
        if window.contains(now) {
            self.calls_in_window += calls as u64;
        }
    }

    /// Message `first` and the `n - 1` after it were taken at `now` (`in_window`); with
    /// `--timestamps`, whether a sample ends the submission here. A stamping error ends the
    /// flow (and the submission).
    pub(super) fn took(&mut self, first: u64, n: usize, now: u64, in_window: bool) -> bool {
        match self
            .stamps
            .as_mut()
            .map(|s| s.prepared(first, n, now, in_window))
        {
            Some(Ok(ends)) => ends,
            Some(Err(e)) => {
                self.fail(e);
                true
            }
            None => false,
        }
    }

    /// Whether the submission going out now ends with a sample (its last call gets
    /// `MSG_EOR`, see stamp.rs).
    pub(super) fn sample_armed(&self) -> bool {
        self.stamps.as_ref().is_some_and(|s| s.armed())
    }

    /// Everything submitted has been sent: an armed sample's call is over (see stamp.rs).
    pub(super) fn all_sent(&mut self) {
        if let Some(Err(e)) = self.stamps.as_mut().map(|s| s.all_sent()) {
            self.fail(e);
        }
    }

    /// A submission settled with unsent bytes to resubmit (`progress`: whether it sent any);
    /// `failed_call`: one of its calls failed (rather than ended early). Returns whether to
    /// resubmit, or ends the flow after [`MAX_STALLS`] settlements in a row without progress.
    pub(super) fn retry(&mut self, progress: bool, failed_call: bool, what: &str) -> bool {
        self.retries += u64::from(failed_call);
        self.stalls = if progress { 0 } else { self.stalls + 1 };
        if self.stalls > MAX_STALLS {
            self.fail(Error::Timeout(format!(
                "{what} on flow {} were interrupted {MAX_STALLS} times in a row without progress",
                self.flow
            )));
            return false;
        }
        true
    }

    /// The window is over: remembers where it ended, and stops once the receiver asked for the
    /// end frame (or fails if it has not asked by `end_deadline`).
    pub(super) fn past_window(&mut self, now: u64, end_deadline: u64) {
        self.end_of_window.get_or_insert(self.seq);
        if self.end.state() == EndRecv::Asked {
            self.stopped = true;
        } else if now >= end_deadline && !self.stopped {
            self.fail(Error::Timeout(format!(
                "the receiver of flow {} did not ask for the end frame within {} s of the window's end",
                self.flow,
                IO_TIMEOUT.as_secs()
            )));
        }
    }

    /// The end request's receive completed with `res`.
    pub(super) fn on_end_request(&mut self, res: i32) {
        if let Err(e) = self.end.on_recv(res, self.flow) {
            self.fail(e);
        }
    }
}

/// A result an io_uring send may end with that is worth another try: cancelled (a broken
/// link's followers), interrupted, or would block.
pub(super) fn retryable(res: i32) -> bool {
    res == -libc::ECANCELED || res == -libc::EINTR || res == -libc::EAGAIN
}
