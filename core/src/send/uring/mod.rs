//! The io_uring engine: one ring per worker thread, the flows of that thread multiplexed on it.
//!
//! Each mode is one type implementing [`UringSend`] ([`modes::a1`], [`modes::a2`], [`modes::a3`], made by
//! [`modes::for_mode`]): it owns the flow's message buffers and builds its SQEs. [`run_group`]
//! runs the flows of a thread on one ring ([`drive`] is the loop); a [`flow`] is its state and
//! the carrier of its ordering (one type per ordering behind one trait: the linked chain for
//! `link` and `coalesce`, the send bundle for `bundle`), which keeps its bytes in order. Every
//! SQE's user_data is one tag type, and CQEs are decoded in one place, for the stream loop
//! and for [`oneshot`], which sends one message at a time for rr and rate.
//!
//! **Ordering.** Several sends in flight on one TCP socket can be issued out of order (a send
//! that would block is poll-retried while the next one goes ahead; DESIGN.md section 7). So a
//! flow has at most one *chain* in flight: up to `depth` sends linked with `IOSQE_IO_LINK`,
//! each with `MSG_WAITALL` (without it a partial send counts as success and the next link
//! would interleave its bytes). A chain never straddles two `io_uring_enter` calls, and the
//! next chain of a flow is submitted only when every CQE of the previous one has arrived.
//!
//! **Bundles.** With `--uring-ordering bundle` (the default for A1 and A2) a flow has one
//! `Send` bundle in flight instead of a chain: its next `depth` messages become entries of
//! the flow's provided-buffer ring (A1: the staged message; A2: header, then payload), and the
//! kernel sends as many entries as the socket takes in one `sendmsg`, in ring order. A short
//! bundle completes with the bytes sent; the kernel has consumed every entry it touched, so
//! the unsent end of the entry it stopped inside goes out as a plain `Send` (`MSG_WAITALL`,
//! linked before the next bundle), and the untouched entries stay in the ring for that bundle.
//!
//! **Short sends.** With `MSG_WAITALL` the kernel retries a partial TCP send itself; a result
//! below the length (an error after partial progress, a signal) breaks the chain, and the
//! later links complete with `-ECANCELED`. Once the whole chain has completed, its unfinished
//! tail (the short send from where it stopped, then the cancelled ones) is submitted again as
//! a new chain, before any new message.
//!
//! **Coalescing (A3).** With `--uring-ordering coalesce` (the default for A3) a flow's next
//! messages are written back to back into its slots and one `SEND_ZC` carries up to `depth`
//! of them, one send in flight per flow (a chain of one link).
//!
//! **Zero-copy (A3).** `SEND_ZC` over registered buffers: the flow's slot pool is one fixed
//! buffer, and the first slot of a send's run is named in the CQE's user_data. A result CQE with `F_MORE`
//! is followed by exactly one notification CQE (`F_NOTIF`) with the same user_data; only the
//! notification releases the slot. `IORING_SEND_ZC_REPORT_USAGE` makes the notification say
//! whether the kernel copied after all (bit 31 of res: tested as a bit, never by sign).
//! Teardown waits (bounded) for every notification.
//!
//! **Timestamps.** With `--timestamps` sends are cut so that each sampled message ends its
//! call, alone on the socket while it is armed ([`stamp`]).

pub mod bundle;
mod bundled;
mod carrier;
mod chain;
mod completion;
pub mod drive;
mod end;
pub mod flow;
pub mod group;
pub mod modes;
pub mod oneshot;
pub mod stamp;
mod state;
pub mod strategy;

pub use crate::uring_sys::probe::{bundle_missing, known_ops, probe_ops};
pub use group::run_group;
pub use modes::a3::{IORING_NOTIF_USAGE_ZC_COPIED, IORING_SEND_ZC_REPORT_USAGE};
pub use modes::{for_mode, missing_for, op_for};
pub use oneshot::UringOneShot;
pub use strategy::{BundleSend, UringSend, ZeroCopyUring};
