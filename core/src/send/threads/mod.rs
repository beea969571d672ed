//! The blocking-threads engine: one thread per flow, one blocking send call per message.
//!
//! Each mode is one type implementing [`strategy::BlockingSend`] ([`modes::a1`], [`modes::a2`], [`modes::a3`], made
//! by [`modes::for_mode`]); [`drive::run_flow`] is the one loop that drives any of them
//! through the measured window.

pub mod drive;
pub mod modes;
pub mod strategy;

pub use drive::{run_flow, Pace, Unpaced};
pub use modes::a3::NO_SO_ZEROCOPY_ENV;
pub use modes::for_mode;
pub use strategy::{BlockingSend, Sent};
