//! The send paths: one strategy type per (mode, engine) — [`threads`] (a blocking thread per
//! flow) and [`uring`] (io_uring rings) — and the [`lifecycle`] every sender goes through
//! (socket set-up, hello, end request, end frame), the same on both engines.

pub mod lifecycle;
pub mod threads;
pub mod uring;

pub use lifecycle::{hello_for, FlowResults, SenderOutcome};
