//! Zero-copy buffer ownership and completion accounting, shared by both engines.
//!
//! Invariant: a [`pool::SlotPool`] slot belongs to the kernel from the moment a zero-copy send
//! that references it is issued until the completion for that send arrives (an error-queue
//! notification for `MSG_ZEROCOPY`, a notification CQE for io_uring `SEND_ZC`). The sender may
//! write a slot only while no send over it is owed a completion. A slot may be referenced by
//! several sends (a short send is finished by another send call over the rest).
//!
//! The threads engine learns completions as ranges `[lo, hi]` of the kernel's per-socket
//! send-call counter ([`errqueue::CallIdMap`] maps those ids back to slots); io_uring names
//! the slot in the CQE's user_data.

pub mod errqueue;
pub mod pool;

pub use errqueue::{read_errqueue, wait_errqueue, CallIdMap, ErrEvent, ErrqueueCompletion};
pub use pool::SlotPool;
pub use sendpath_record::end_v1::ZeroCopyStats;
