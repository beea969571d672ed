//! An open-loop schedule (the `rate` pattern): message `seq` is intended at
//! `sched0 + seq / rate`, on CLOCK_MONOTONIC. The sender paces by it and the receiver measures
//! latency from it (corrected for coordinated omission).

use crate::wire::hello::Hello;

/// When each message of a rate flow is meant to be sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// The intended send time of message 0.
    pub sched0_ns: u64,
    /// Messages per second.
    pub rate: f64,
}

impl Schedule {
    /// The schedule a rate hello carries (None for other patterns).
    pub fn of(h: &Hello) -> Option<Schedule> {
        (h.pattern == sendpath_record::Pattern::Rate && h.rate > 0.0).then_some(Schedule {
            sched0_ns: h.sched0_ns,
            rate: h.rate,
        })
    }

    /// The intended send time of message `seq`.
    #[inline]
    pub fn intended_ns(&self, seq: u64) -> u64 {
        self.sched0_ns + (seq as f64 * 1e9 / self.rate) as u64
    }
}
