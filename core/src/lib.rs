//! # sendpath-core
//!
//! What each Linux TCP send path costs, measured on one common receiver.
//!
//! Design decisions (see `DESIGN.md` in the project's shared folder for the full contract):
//! - **Two independent axes.** The copy discipline ([`spec::Mode`]: A1 copy, A2 sendmsg,
//!   A3 zero-copy) and the engine that drives the syscalls ([`spec::Engine`]: blocking threads,
//!   io_uring) are separate. Each (mode, engine) cell is one strategy type behind one trait per
//!   engine ([`send::threads::BlockingSend`], [`send::uring::UringSend`]); zero-copy completion
//!   handling lives in the strategy that needs it, never behind an `if zerocopy` in a shared
//!   loop, and both engines gate buffer reuse on the same [`zerocopy::SlotPool`].
//! - **Patterns on top of the strategies**: `stream` drives a strategy as fast as it goes,
//!   [`rr`] sends requests and responses through it one transaction at a time, `rate` paces it
//!   on a schedule carried in the hello so latency can be measured from the intended time.
//! - **Measurement that does not disturb**: per-message timestamps from the TSC mapped onto
//!   CLOCK_MONOTONIC ([`time`]), software counters from the kernel's own per-thread
//!   accounting rather than perf events ([`cpu`]).
//! - **One receiver for every mode** ([`recv`]): large reads, frame parsing, per-flow sequence
//!   checks and one HDR histogram per thread, so only the send path varies between cells.
//! - **Self-describing wire format** ([`wire`]): a hello frame carries everything the receiver
//!   needs; an end frame carries the sender's side of the record, so a receiver in another
//!   process writes a complete record (iperf3 exchanges results the same way).
//! - **Output types apart from domain types** ([`report::v1`]): the JSON contract can stay put
//!   while internals change.
//! - **Measured, never assumed**: whether zero-copy happened is what the kernel's completions
//!   say; a counter the machine lacks is `null`, never 0.

pub mod affinity;
#[cfg(feature = "cli")]
pub mod cli;
pub mod cpu;
pub mod error;
pub mod host;
pub mod kmem;
pub mod latency;
pub mod netns;
pub mod pattern;
pub mod recv;
pub mod report;
pub mod results;
pub mod run;
pub mod schedule;
pub mod send;
pub mod sock;
pub mod spec;
pub mod time;
pub mod uring_sys;
pub mod window;
pub mod wire;
pub mod zerocopy;

pub use error::{Error, Result};

/// Prints a line to stdout, ignoring a closed pipe (`sendpath ... | head` must not panic).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Version of this tool, as recorded in every JSON record.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git commit this tool was built from (`unknown` outside a git checkout).
pub const GIT_COMMIT: &str = env!("SENDPATH_GIT_COMMIT");
