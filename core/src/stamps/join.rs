//! Joining the two sides' stamps of the same messages, and the typical message's stages.

use super::{RxStages, TxStages};
use sendpath_record::histogram::LatencyHistogram;

/// The stages of the messages both sides stamped, each message's stages adding up to its
/// end-to-end time.
#[derive(Debug, Default)]
pub struct Joined {
    /// Messages joined.
    pub count: u64,
    /// Of those, messages whose stamps are not in the order of the stages (one clock and a
    /// correct join make this 0).
    pub out_of_order: u64,
    /// Send call -> SCHED.
    pub user_to_sched: LatencyHistogram,
    /// SCHED -> SND.
    pub sched_to_device: LatencyHistogram,
    /// SND -> receive stamp.
    pub device_to_stack: LatencyHistogram,
    /// Receive stamp -> read.
    pub stack_to_user: LatencyHistogram,
    /// Send call -> read.
    pub end_to_end: LatencyHistogram,
    /// Each joined message's four stages, in order (at most [`super::MAX_JOIN_SAMPLES`] per flow).
    pub messages: Vec<[u64; 4]>,
}

/// How many of the middle of the end-to-end distribution [`Joined::typical`] averages: the
/// messages from this fraction to 1 - it.
const TYPICAL_FROM: f64 = 0.4;

impl Joined {
    /// The typical message's stages: each stage's mean over the joined messages whose
    /// end-to-end time (the sum of their stages) lies between the 40th and 60th percentiles,
    /// with how many those were. They add up to those messages' mean end-to-end time.
    pub fn typical(&self) -> Option<(usize, [f64; 4])> {
        let mut m = self.messages.clone();
        m.sort_by_key(|s| s.iter().sum::<u64>());
        let n = m.len();
        let lo = (n as f64 * TYPICAL_FROM).floor() as usize;
        let hi = (n as f64 * (1.0 - TYPICAL_FROM)).ceil() as usize;
        let band = m.get(lo..hi.min(n)).filter(|b| !b.is_empty())?;
        let mean = |k: usize| band.iter().map(|s| s[k] as f64).sum::<f64>() / band.len() as f64;
        Some((band.len(), [0, 1, 2, 3].map(mean)))
    }
}

/// Joins the sender's (SCHED, SND) with the receiver's (send, receive, read) by seq.
pub fn join(tx: &TxStages, rx: &RxStages, into: &mut Joined) {
    let r = &rx.received.kept;
    let mut j = 0;
    for &(k, (user, sched, dev)) in &tx.joinable.kept {
        while j < r.len() && r[j].0 < k {
            j += 1;
        }
        let Some(&(rk, (stack, read))) = r.get(j) else {
            break;
        };
        if rk != k {
            continue;
        }
        into.count += 1;
        into.out_of_order +=
            u64::from(!(user <= sched && sched <= dev && dev <= stack && stack <= read));
        let stages = [
            sched.saturating_sub(user),
            dev.saturating_sub(sched),
            stack.saturating_sub(dev),
            read.saturating_sub(stack),
        ];
        into.user_to_sched.record(stages[0]);
        into.sched_to_device.record(stages[1]);
        into.device_to_stack.record(stages[2]);
        into.stack_to_user.record(stages[3]);
        into.end_to_end.record(read.saturating_sub(user));
        into.messages.push(stages);
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn stamps_fold_by_key_and_stages_join_by_seq() {
        let mut t = TxStamper {
            every: 2,
            bytes: 0,
            pending: VecDeque::new(),
            out: TxStages {
                every: 2,
                ..Default::default()
            },
        };
        // Messages of 100 bytes: 0 (stamped), 1, 2 (stamped).
        t.pending.push_back(Pending {
            key: 99,
            seq: 0,
            user: 10_000,
            offset: 1_000,
            sched: None,
            device: None,
            in_window: true,
        });
        t.bytes = 300;
        t.pending.push_back(Pending {
            key: 299,
            seq: 2,
            user: 20_000,
            offset: 1_000,
            sched: None,
            device: None,
            in_window: true,
        });
        let st = |kind, key, mono: u64| Stamp {
            kind,
            key,
            real_ns: mono + 1_000,
        };
        t.on_stamp(st(StampKind::Sched, 99, 10_500));
        t.on_stamp(st(StampKind::Device, 99, 10_700));
        t.on_stamp(st(StampKind::Sched, 299, 21_000));
        t.on_stamp(st(StampKind::Ack, 99, 30_000));
        t.on_stamp(st(StampKind::Sched, 12345, 1)); // a key nobody sent
        assert!(t.waiting(), "message 2 has no ACK yet");
        let out = t.finish();
        assert_eq!(out.unmatched, 2);
        assert_eq!(out.user_to_sched.summary("test").max / 10, 500 / 10);
        assert_eq!(out.sched_to_device.count(), 1);
        assert_eq!(out.send_to_ack.summary("test").count, 1);
        assert_eq!(out.joinable.kept, vec![(0, (10_000, 10_500, 10_700))]);
        let rx = RxStages {
            every: 2,
            received: Thinned {
                kept: vec![(0, (11_000, 12_000)), (1, (22_000, 23_000))],
                stride: 1,
            },
        };
        let mut j = Joined::default();
        join(&out, &rx, &mut j);
        assert_eq!((j.count, j.out_of_order), (1, 0));
        assert_eq!(j.device_to_stack.summary("test").min / 10, 30);
        assert_eq!(j.end_to_end.summary("test").min / 10, 200);
    }

    #[test]
    fn the_typical_message_adds_up_to_the_middle_of_end_to_end() {
        // Two skewed stages, each usually short and now and then long, never both: the sum
        // of the stages' medians (1 + 1) is far below the median end-to-end time (11); the
        // typical message's stages add up to it.
        let mut j = Joined::default();
        for i in 0..99u64 {
            let s = match i % 3 {
                0 => [1, 0, 0, 10],
                1 => [10, 0, 0, 1],
                _ => [1, 0, 0, 1],
            };
            j.user_to_sched.record(s[0]);
            j.stack_to_user.record(s[3]);
            j.messages.push(s);
        }
        let medians = j.user_to_sched.summary("test").p50 + j.stack_to_user.summary("test").p50;
        assert_eq!(medians, 2);
        let (n, t) = j.typical().unwrap();
        assert_eq!(n, 21, "the 40th to 60th percentiles of 99");
        assert!((t.iter().sum::<f64>() - 11.0).abs() < 1e-9, "{t:?}");
        assert!(t[0] > 4.0 && t[3] > 4.0, "both stages share it: {t:?}");
        assert!(Joined::default().typical().is_none());
    }
}
