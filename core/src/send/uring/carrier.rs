//! How a flow's sends reach its ring: one implementation per io_uring ordering behind
//! [`Carrier`]. [`super::chain::Chain`] carries `link` (one message per SQE, up to `depth`
//! SQEs linked) and `coalesce` (one SQE carrying the whole batch: a chain of one link);
//! [`super::bundled::Bundled`] carries `bundle` (the batch as entries of a provided-buffer
//! ring). Each keeps its flow's bytes in order: one submission in flight at a time, and a
//! short or interrupted one resumed exactly where it stopped before anything new.

use super::completion::Op;
use super::state::FlowState;
use crate::error::Result;
use crate::window::Window;
use io_uring::{squeue, IoUring};
use std::os::fd::RawFd;

/// The ring's submission queue.
pub(super) type Sq<'a> = squeue::SubmissionQueue<'a>;

/// When a carrier is asked to submit: the clock, the send stamp messages get (0 without
/// latency), and the window.
pub(super) struct Moment<'a> {
    pub(super) now: u64,
    pub(super) ts: u64,
    pub(super) window: &'a Window,
}

/// One io_uring ordering: how a flow's messages become SQEs and how their CQEs settle.
/// Invariant: a message buffer named by an SQE is not handed out again (by the flow's
/// strategy) before every CQE of that SQE arrived, and, for zero-copy, its notification.
pub(super) trait Carrier {
    /// SQEs submitted and not yet completed.
    fn pending(&self) -> usize;

    /// Nothing left to send: nothing in flight or kept for resubmission.
    fn drained(&self) -> bool;

    /// The most SQEs one submission takes (the ring's submission queue is sized from it).
    fn sqes(&self) -> usize;

    /// Called while nothing is pending: submits the unfinished tail of the last submission
    /// if there is one, or else (unless the flow stopped) the flow's next messages, when the
    /// submission queue has room for them.
    fn submit(&mut self, f: &mut FlowState, li: usize, at: &Moment, sq: &mut Sq<'_>);

    /// A CQE of one of its sends (`op`) arrived with `res`, `more` following. The last of a
    /// submission settles it: what is unsent is kept for resubmission, or the flow fails.
    fn on_sent(&mut self, f: &mut FlowState, op: Op, res: i32, more: bool, ring_fd: RawFd);

    /// Registers with `ring` what the carrier lends the kernel for flow `li` (a bundle's
    /// buffer ring); the carrier outlives the ring (its flow is kept in a `Lent`).
    fn register(&mut self, _ring: &IoUring, _li: u16) -> Result<()> {
        Ok(())
    }

    /// Whether it needs the kernel's send bundles (IORING_FEAT_RECVSEND_BUNDLE).
    fn needs_bundles(&self) -> bool {
        false
    }
}
