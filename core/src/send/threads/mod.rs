//! The blocking-threads engine: one thread per flow, one blocking send call per message.
//!
//! Each mode is one type implementing [`strategy::BlockingSend`] ([`a1`], [`a2`], [`a3`], made
//! by [`modes::for_mode`]); [`drive::run_flow`] is the one loop that drives any of them
//! through the measured window.

pub mod a1;
pub mod a2;
pub mod a3;
pub mod drive;
pub mod modes;
pub mod strategy;

pub use a3::NO_SO_ZEROCOPY_ENV;
pub use drive::{run_flow, Pace, Unpaced};
pub use modes::for_mode;
pub use strategy::{BlockingSend, Sent};
