//! sendpath's record: what the tool writes (one JSON object per measured cell, schema
//! `sendpath/v1`, in [`v1`]), the sender's end frame it is built from ([`end_v1`]), and the
//! named axes of a cell with the one table of send-path modes ([`axes`]).
//!
//! This crate holds output types and facts, nothing that measures: readers of results (the
//! analysis, `jq`-like tools, other programs) depend on it alone, without io_uring, perf
//! events or sockets. sendpath-core builds the records from its measurements and reads the
//! mode table to pick strategies.
#![deny(missing_docs)]

pub mod axes;
pub mod batch;
pub mod end_v1;
pub mod facts;
pub mod histogram;
pub mod latency_v1;
pub mod profile_v1;
pub mod stages_v1;
pub mod tcp_v1;
pub mod testing;
pub mod v1;

pub use axes::{
    Engine, Mode, ModeFacts, Pattern, Placement, RxMode, UnknownName, UringOrdering, MODES,
};
pub use batch::{parse_size, size_label, Batch};
pub use facts::{EngineFacts, RxFacts, ENGINES, RECEIVERS};
