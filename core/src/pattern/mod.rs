//! The traffic patterns, a layer above the send strategies and the receivers: `stream` drives
//! a strategy as fast as it goes, `rate` paces it on a schedule ([`rate`]), `rr` sends
//! requests and responses through it one transaction at a time ([`rr`]). [`send`] and
//! [`receive`] pick, per flow, the engine and pattern code that runs a connection's two ends.

pub mod rate;
pub mod receive;
pub mod rr;
pub mod send;

pub use receive::{read_hello, run_receiver};
pub use send::{run_sender, run_senders, strategy_for};
