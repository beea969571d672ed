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
//! - **Patterns on top of the strategies** ([`pattern`]): `stream` drives a strategy as fast as
//!   it goes, `rr` sends requests and responses through it one transaction at a time, `rate`
//!   paces it on a schedule carried in the hello so latency can be measured from the intended
//!   time.
//! - **Measurement that does not disturb**: per-message timestamps from the TSC mapped onto
//!   CLOCK_MONOTONIC ([`time`]), software counters from the kernel's own per-thread
//!   accounting rather than perf events ([`cpu`]).
//! - **One receiver for every mode** ([`recv`]): large reads, one parser
//!   ([`wire::parse::Parser`]) and one per-message tally for every receiver, per-flow sequence
//!   checks and one HDR histogram per thread, so only the send path varies between cells.
//! - **Self-describing wire format** ([`wire`]): a hello frame carries everything the receiver
//!   needs; an end frame carries the sender's side of the record, so a receiver in another
//!   process writes a complete record (iperf3 exchanges results the same way).
//! - **Output types apart from domain types**: the record lives in sendpath-record
//!   ([`report::v1`] re-exports it) so the JSON contract can stay put while internals change,
//!   and readers of results need not build this crate.
//! - **Memory lent to the kernel has one owner rule** ([`kmem`]).
//! - **Measured, never assumed**: whether zero-copy happened is what the kernel's completions
//!   say; a counter the machine lacks is `null`, never 0.
//!
//! ## Layers
//!
//! Modules import only modules below them (checked by `tests/it/layers.rs`, which also keeps
//! every file under 600 lines), from the bottom:
//! 1. leaves: [`error`], [`time`], [`cpu`], [`sock`], [`affinity`], [`netns`], [`kmem`],
//!    [`tcpinfo`], [`stamps`]; the wire frame ([`wire`]); options ([`spec`]); zero-copy slots
//!    ([`zerocopy`]); io_uring plumbing ([`uring_sys`]); the host ([`host`]), the
//!    measured window ([`window`]), per-flow results ([`results`]), the rate schedule
//!    ([`schedule`]);
//! 2. the send paths per engine ([`send::threads`], [`send::uring`]) and their common
//!    [`send::lifecycle`]; the receivers ([`recv`]);
//! 3. the patterns ([`pattern`]), which choose the code each end of a connection runs;
//! 4. putting ends together ([`run`]) and the record ([`report`]);
//! 5. the two-host control protocol ([`remote`]): `sendpath serve` and its driver.
//!
//! ## Adding a send path
//!
//! 1. A row in sendpath-record's mode table (`MODES`): its wire code, label, whether it is
//!    zero-copy, whether it has a send-bundle form, its io_uring orderings.
//! 2. One type per engine: a [`send::threads::BlockingSend`] in `send/threads/modes/`, and a
//!    [`send::uring::UringSend`] in `send/uring/modes/` (plus [`send::uring::BundleSend`] if
//!    the row says it has a bundle form, [`send::uring::ZeroCopyUring`] if it is zero-copy),
//!    each a file of its own.
//! 3. In each engine's `modes/mod.rs`: its `pub mod` and an arm that builds it (the compiler
//!    asks for both), and on io_uring its opcode in `op_for`.
//! 4. Outside core: its name in the record's schema (`docs/schema/v1.json`, blessed) and its
//!    per-mode binary (`bins/src/bin/sendpath-<mode>.rs` and its `[[bin]]`); the full list is
//!    in `docs/architecture.md`.
//!
//! Tests fail until each is there: the table's own test (a label, a distinct wire code, the
//! orderings its forms allow), each engine's `modes` test (a strategy for every row, with
//! the forms the row says), the schema's test and `bins/tests/every_mode.rs`.

pub mod affinity;
#[cfg(feature = "cli")]
pub mod cli;
pub mod cpu;
pub mod error;
pub mod host;
pub mod kmem;
pub mod netns;
pub mod pattern;
pub mod profile;
pub mod recv;
pub mod remote;
pub mod report;
pub mod results;
pub mod run;
pub mod schedule;
pub mod send;
pub mod sock;
pub mod spec;
pub mod speed;
pub mod stamps;
pub mod tcpinfo;
pub use sendpath_record::testing;
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
