//! What a receiver does with each whole message: the sequence check, the payload verdict, and
//! (inside the window) the count and the latency, measured from the origin the pattern
//! gives. One place for every receiver, so they cannot count differently.

use crate::results::FlowResult;
use crate::schedule::Schedule;

/// Where a message's latency is measured from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Origin {
    /// The send timestamp in its header (stream; rr, where the response echoes the request's).
    SendStamp,
    /// Its intended send time on a schedule (rate), with the send stamp's figure recorded as
    /// the uncorrected latency beside it.
    Intended(Schedule),
    /// Latency is not recorded.
    None,
}

/// Per-message accounting of one flow's receiver.
pub struct Tally {
    expected: u64,
    /// Bytes one message counts for (rr: request and response).
    counted_bytes: u64,
    /// Payload bytes of one message, counted as verified when checked.
    payload_bytes: u64,
    verify: bool,
    origin: Origin,
    /// The sender's clock minus this host's: latency is `now + ahead - stamp`, so a sender's
    /// stamp counts on this host's clock (0 when both ends share one).
    sender_clock_ahead_ns: i64,
}

impl Tally {
    /// Accounting of messages whose payloads are `payload_bytes` long (checked if `verify`),
    /// each counting `counted_bytes` towards the throughput, latency from `origin`.
    pub fn new(counted_bytes: u64, payload_bytes: u64, verify: bool, origin: Origin) -> Self {
        Tally {
            expected: 0,
            counted_bytes,
            payload_bytes,
            verify,
            origin,
            sender_clock_ahead_ns: 0,
        }
    }

    /// Measures latency of stamps taken on a clock `ns` ahead of this host's.
    pub fn with_sender_clock_ahead(self, ns: i64) -> Self {
        Tally {
            sender_clock_ahead_ns: ns,
            ..self
        }
    }

    /// The next sequence number expected (the first is 0).
    pub fn expect_from(&mut self, seq: u64) {
        self.expected = seq;
    }

    /// Message `seq` stamped `ts` is whole at `now`; `payload_ok` is the payload check's
    /// verdict; `in_window` whether `now` is inside the measured window.
    #[inline]
    pub fn message(
        &mut self,
        r: &mut FlowResult,
        seq: u64,
        ts: u64,
        payload_ok: bool,
        now: u64,
        in_window: bool,
    ) {
        if seq != self.expected {
            r.seq_errors += 1;
        }
        self.expected = seq.wrapping_add(1);
        if self.verify {
            r.verify_errors += u64::from(!payload_ok);
            r.verified_bytes += self.payload_bytes;
        }
        if in_window {
            r.messages += 1;
            r.bytes += self.counted_bytes;
            // `now` on the sender's clock, where the stamps and the schedule were taken.
            let now = now.saturating_add_signed(self.sender_clock_ahead_ns);
            match self.origin {
                Origin::SendStamp => r.latency.record(now.saturating_sub(ts)),
                Origin::Intended(s) => {
                    r.latency.record(now.saturating_sub(s.intended_ns(seq)));
                    r.latency_uncorrected
                        .get_or_insert_with(Default::default)
                        .record(now.saturating_sub(ts));
                }
                Origin::None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_payload_window_and_latency_from_the_origin() {
        let mut r = FlowResult::default();
        let sched = Schedule {
            sched0_ns: 1000,
            rate: 1e9,
        };
        let mut t = Tally::new(64, 48, true, Origin::Intended(sched));
        t.message(&mut r, 0, 900, true, 5000, true);
        t.message(&mut r, 2, 900, false, 5000, true); // a gap and a bad payload
        t.message(&mut r, 3, 900, true, 9000, false); // after the window
        assert_eq!(
            (r.seq_errors, r.verify_errors, r.verified_bytes),
            (1, 1, 144)
        );
        assert_eq!((r.messages, r.bytes), (2, 128));
        let l = r.latency.summary("test");
        assert_eq!((l.count, l.min), (2, 3998), "from intended 1000, 1002");
        assert!((4000..4004).contains(&l.max), "{l:?}");
        let u = r.latency_uncorrected.unwrap().summary("test");
        assert!((4100..4104).contains(&u.max), "from the send stamp: {u:?}");
        let mut r = FlowResult::default();
        let mut t = Tally::new(64, 48, false, Origin::None);
        t.message(&mut r, 0, 900, false, 5000, true);
        assert_eq!((r.verify_errors, r.latency.count()), (0, 0));
    }
}
