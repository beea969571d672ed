//! The `rate` pattern: an open loop at a fixed message rate per flow. The sender paces by the
//! schedule its hello carries; the receiver measures latency from each message's intended
//! send time (corrected for coordinated omission) and records the figure from the actual send
//! time beside it.

use crate::recv::tally::Origin;
use crate::schedule::Schedule;
use crate::send::threads::drive::Pace;
use crate::wire::hello::Hello;

impl Pace for Schedule {
    fn intended_ns(&self, seq: u64) -> Option<u64> {
        Some(Schedule::intended_ns(self, seq))
    }
}

/// Where a stream or rate receiver measures latency from, as the hello says.
pub fn origin(hello: &Hello) -> Origin {
    match Schedule::of(hello) {
        Some(s) => Origin::Intended(s),
        None if hello.latency => Origin::SendStamp,
        None => Origin::None,
    }
}
