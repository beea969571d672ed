//! The receivers of a stream or rate flow, the same for every mode and engine so that only
//! the send path varies: copying ([`stream::copy`]), discarding ([`stream::discard`]) and
//! io_uring ([`uring::receive`]). Each parses with [`crate::wire::parse::Parser`] and counts
//! with one [`tally::Tally`]. (Which receiver runs, and rr's own exchange, is decided a layer
//! up, in `pattern`.)

pub mod options;
pub mod rx;
pub mod stream;
pub mod tally;
pub mod uring;

pub use crate::spec::memory::MIN_RX_BUF;
pub use options::RecvOptions;
pub use rx::Rx;
pub use tally::{Origin, Tally};
