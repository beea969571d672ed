//! The sender's end frame, version 1: what a sender says about its side of a flow when the
//! receiver asks at the end of the window (wire: a header with `END_SEQ`, then this as JSON).
//! The record ([`crate::v1`]) is built from it and the receiver's own measurements, so the two
//! share their types: the counters are the record's [`Counters`], TCP's view the record's
//! [`TcpFlowInfo`], the io_uring tunables the record's [`UringSpec`].
//!
//! Versioned like the record: its JSON Schema is committed as `docs/schema/end-v1.json` and a
//! test fails when the types drift from it. The frame travels inside the wire protocol, whose
//! version (`sendpath_core::wire::VERSION`, checked at the hello) covers it: an additive
//! change here (a new field with a default) is re-blessed; one that breaks an older reader
//! is a new module and a new wire version.

use crate::histogram::LatencyHistogram;
use crate::profile_v1::Bucket;
use crate::tcp_v1::TcpFlowInfo;
use crate::v1::{Counters, UringSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The sender's side of the record, sent in the end frame.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SenderReport {
    /// Messages whose send call started inside the measured window.
    pub messages: u64,
    /// Bytes of those messages.
    pub bytes: u64,
    /// CPU time and counters of the sender's thread over the window.
    pub counters: SideCounters,
    /// Zero-copy accounting (A3 only).
    pub zerocopy: Option<ZeroCopyStats>,
    /// Send calls that failed and were retried (e.g. EAGAIN); fatal errors end the run.
    pub send_errors: u64,
    /// Why the sender stopped early, if it did.
    pub error: Option<String>,
    /// How the io_uring engine was set up (None on the threads engine).
    #[serde(default)]
    pub uring: Option<UringSetup>,
    /// What TCP did to this flow over the window (TCP_INFO of the sending socket).
    #[serde(default)]
    pub tcp: Option<TcpFlowInfo>,
    /// `--timestamps`: the sender's stamps of sampled messages.
    #[serde(default)]
    pub stages: Option<TxStages>,
    /// Send operations whose messages are in `messages` (send/sendmsg calls, or send SQEs on
    /// io_uring); 0 from a sender that did not count them.
    #[serde(default)]
    pub calls: u64,
}

impl SenderReport {
    /// The JSON Schema of the end frame, as committed in `docs/schema/end-v1.json`.
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(SenderReport);
        serde_json::to_string_pretty(&schema).expect("schema serializes") + "\n"
    }
}

/// How the io_uring engine ran a flow: the record's tunables and what the kernel accepted, and
/// the sender's thread count (a remote receiver learns them here: the hello predates them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UringSetup {
    /// Sender worker threads (one ring each).
    pub threads: u64,
    /// Depth, batch, ordering, the ring's accepted setup flags and whether its fd was
    /// registered, as the record's `spec.uring` carries them.
    #[serde(flatten)]
    pub uring: UringSpec,
}

/// Zero-copy accounting of one flow or (summed) one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ZeroCopyStats {
    /// Zero-copy send calls issued (each is owed one completion).
    pub sends: u64,
    /// Send calls whose completion arrived.
    pub completions: u64,
    /// Completions that said the kernel copied after all.
    pub copied: u64,
    /// Most slots (message buffers) owned by the kernel at once.
    pub max_outstanding: u64,
    /// ENOBUFS answers (socket option memory for notifications exhausted), each followed by
    /// reaping and a retry.
    pub enobufs: u64,
    /// Messages the zero-copy sends carried (a message finished by a second send after a
    /// short one counts once): `messages / sends` is how many one send carried.
    #[serde(default)]
    pub messages: u64,
    /// Times the sender had a message to send and no free slot, and waited for a completion.
    #[serde(default)]
    pub slot_waits: u64,
    /// Per slot: from the first send over it to the moment the sender saw the completion that
    /// released it (ns). The threads engine reaps the error queue only when it needs a slot,
    /// so there this includes how long the completion sat unread.
    #[serde(default)]
    pub slot_hold: LatencyHistogram,
}

impl ZeroCopyStats {
    /// Adds another flow's accounting (max_outstanding: the largest of the two).
    pub fn merge(&mut self, o: &ZeroCopyStats) {
        self.sends += o.sends;
        self.completions += o.completions;
        self.copied += o.copied;
        self.max_outstanding = self.max_outstanding.max(o.max_outstanding);
        self.enobufs += o.enobufs;
        self.messages += o.messages;
        self.slot_waits += o.slot_waits;
        self.slot_hold.merge(&o.slot_hold);
    }

    /// Fraction of completions that were copies (None before any completion).
    pub fn copied_fraction(&self) -> Option<f64> {
        (self.completions > 0).then(|| self.copied as f64 / self.completions as f64)
    }

    /// Messages per zero-copy send call (None before any send).
    pub fn messages_per_send(&self) -> Option<f64> {
        (self.sends > 0).then(|| self.messages as f64 / self.sends as f64)
    }
}

/// The sender's side of the stages of one flow (`--timestamps`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TxStages {
    /// One message in this many was stamped.
    pub every: u64,
    /// Messages stamped in the window.
    pub sampled: u64,
    /// Send call (the message's send stamp) to SCHED: time in the socket's send queue and TCP.
    pub user_to_sched: LatencyHistogram,
    /// SCHED to SND: the queueing layer to the driver.
    pub sched_to_device: LatencyHistogram,
    /// Send call to ACK.
    pub send_to_ack: LatencyHistogram,
    /// (send call, SCHED, SND) on CLOCK_MONOTONIC of at most a few hundred stamped messages
    /// spread over the window, by seq / every, for the receiver to join with its stamps (the
    /// send call's time is the sender's: an rr response's header carries its request's time
    /// instead).
    pub joinable: Thinned<(u64, u64, u64)>,
    /// Stamps that named no sampled message (a short send's first call, a message given up).
    pub unmatched: u64,
}

/// A list thinned to at most `max` entries spread over what was offered: entry `k` (the
/// k-th offered, k = seq / every) is kept while `k` is a multiple of the stride, which
/// doubles, dropping every other entry kept, each time the list fills.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Thinned<T> {
    /// Kept entries, as (k, value).
    pub kept: Vec<(u64, T)>,
    /// Current stride (a power of two).
    pub stride: u64,
}

impl<T> Thinned<T> {
    /// Offers entry `k`, keeping at most `max`.
    pub fn offer(&mut self, k: u64, v: T, max: usize) {
        let stride = self.stride.max(1);
        if !k.is_multiple_of(stride) {
            return;
        }
        self.kept.push((k, v));
        if self.kept.len() >= max {
            let next = stride * 2;
            self.kept.retain(|(k, _)| k.is_multiple_of(next));
            self.stride = next;
        } else {
            self.stride = stride;
        }
    }
}

/// CPU time and counters of one side (sender threads or receiver threads) over the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SideCounters {
    /// User-mode CPU time.
    pub user_ns: u64,
    /// Kernel-mode CPU time (includes softirq work done in the thread's context).
    pub sys_ns: u64,
    /// The counters (task clock, context switches, ..., LLC misses), as the record's
    /// `counters` carries them; `None` where this machine or build cannot count one.
    #[serde(flatten)]
    pub counters: Counters,
    /// Names of the counters that are `None` because this machine or build cannot count them.
    pub unsupported: Vec<String>,
    /// CPUs this side's threads were on when the window ended (sorted, distinct). On a small
    /// machine whether the two sides shared a CPU changes loopback results several-fold.
    #[serde(default)]
    pub cpus: Vec<u32>,
    /// `--profile`: where this side's CPU went (None without it, or where the kernel refused
    /// the sampler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<SideProfile>,
}

impl SideCounters {
    /// Adds another thread's counters. A counter is known only if it is known for both.
    pub fn merge(&mut self, o: &SideCounters) {
        for &c in &o.cpus {
            if let Err(i) = self.cpus.binary_search(&c) {
                self.cpus.insert(i, c);
            }
        }
        self.user_ns += o.user_ns;
        self.sys_ns += o.sys_ns;
        self.counters.add(&o.counters);
        for u in &o.unsupported {
            if !self.unsupported.contains(u) {
                self.unsupported.push(u.clone());
            }
        }
        if let Some(p) = &o.profile {
            self.profile.get_or_insert_with(Default::default).merge(p);
        }
    }

    /// Total CPU time (user + system).
    pub fn cpu_ns(&self) -> u64 {
        self.user_ns + self.sys_ns
    }
}

impl Counters {
    /// Every counter, in the record's order (named in full: a new counter does not compile
    /// until it is listed here, so none is left out of a sum).
    fn each_mut(&mut self) -> [&mut Option<u64>; 9] {
        let Counters {
            task_clock_ns,
            context_switches,
            cpu_migrations,
            page_faults,
            cycles,
            instructions,
            cache_misses,
            l1d_load_misses,
            llc_load_misses,
        } = self;
        [
            task_clock_ns,
            context_switches,
            cpu_migrations,
            page_faults,
            cycles,
            instructions,
            cache_misses,
            l1d_load_misses,
            llc_load_misses,
        ]
    }

    /// Adds another side's counters: a counter stays known only where both know it.
    pub fn add(&mut self, o: &Counters) {
        let mut theirs = o.clone();
        for (mine, theirs) in self.each_mut().into_iter().zip(theirs.each_mut()) {
            *mine = mine.zip(*theirs).map(|(a, b)| a + b);
        }
    }
}

/// Most symbols a side keeps (the record shows the top 20).
pub const MAX_SYMBOLS: usize = 100;

/// One side's profile over the window: on-CPU time per bucket and the symbols it was in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SideProfile {
    /// The sampling period asked for, nanoseconds of on-CPU time.
    pub period_ns: u64,
    /// Samples taken.
    pub samples: u64,
    /// Samples the kernel lost (a full ring).
    pub lost: u64,
    /// The sampler's clock (perf's task clock of the thread) from start to finish, summed
    /// over threads. It is not the scheduler's CPU time: perf's clock stops while the thread
    /// is being switched out and in (which the scheduler charges to it), and runs through
    /// interrupts taken while the thread is on its CPU (which the scheduler, accounting
    /// interrupt time apart, charges to no task).
    #[serde(default)]
    pub clock_ns: u64,
    /// On-CPU nanoseconds the samples stand for (each weighs the CPU clock since the sample
    /// before it), per bucket.
    pub buckets: BTreeMap<Bucket, Weight>,
    /// The leaf symbols with the most time (at most [`MAX_SYMBOLS`]), each with the bucket its
    /// samples went to.
    pub symbols: Vec<SymbolCount>,
}

/// Samples and the on-CPU nanoseconds they stand for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Weight {
    /// Samples.
    pub samples: u64,
    /// On-CPU nanoseconds.
    pub ns: u64,
}

impl Weight {
    /// Adds `o`'s samples and time.
    pub fn add(&mut self, o: Weight) {
        self.samples += o.samples;
        self.ns += o.ns;
    }
}

/// Time in one leaf symbol (and bucket: the same symbol can serve two, e.g. `memcpy`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SymbolCount {
    /// The symbol, `[unknown]` when it could not be named.
    pub symbol: String,
    /// The bucket.
    pub bucket: Bucket,
    /// Samples and on-CPU time.
    pub weight: Weight,
}

impl SideProfile {
    /// Keeps the [`MAX_SYMBOLS`] symbols with the most time, most first.
    pub fn keep_top(&mut self, by_symbol: BTreeMap<(String, Bucket), Weight>) {
        let mut v: Vec<SymbolCount> = by_symbol
            .into_iter()
            .map(|((symbol, bucket), weight)| SymbolCount {
                symbol,
                bucket,
                weight,
            })
            .collect();
        v.sort_by(|a, b| b.weight.ns.cmp(&a.weight.ns).then(a.symbol.cmp(&b.symbol)));
        v.truncate(MAX_SYMBOLS);
        self.symbols = v;
    }

    /// Adds another thread's profile (the same period).
    pub fn merge(&mut self, o: &SideProfile) {
        if self.samples == 0 && self.period_ns == 0 {
            self.period_ns = o.period_ns;
        }
        self.samples += o.samples;
        self.lost += o.lost;
        self.clock_ns += o.clock_ns;
        for (b, w) in &o.buckets {
            self.buckets.entry(*b).or_default().add(*w);
        }
        let mut by_symbol: BTreeMap<(String, Bucket), Weight> = BTreeMap::new();
        for s in self.symbols.iter().chain(&o.symbols) {
            by_symbol
                .entry((s.symbol.clone(), s.bucket))
                .or_default()
                .add(s.weight);
        }
        self.keep_top(by_symbol);
    }

    /// On-CPU nanoseconds the samples stand for.
    pub fn sampled_ns(&self) -> u64 {
        self.buckets.values().map(|w| w.ns).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_stay_known_only_where_both_sides_know_them() {
        let mut a = SideCounters {
            user_ns: 1,
            cpus: vec![1],
            counters: Counters {
                task_clock_ns: Some(10),
                cycles: Some(5),
                ..Default::default()
            },
            ..Default::default()
        };
        let b = SideCounters {
            user_ns: 2,
            sys_ns: 3,
            cpus: vec![0, 1],
            counters: Counters {
                task_clock_ns: Some(7),
                llc_load_misses: Some(4),
                ..Default::default()
            },
            unsupported: vec!["cycles".into()],
            ..Default::default()
        };
        a.merge(&b);
        assert_eq!((a.user_ns, a.sys_ns, a.cpu_ns()), (3, 3, 6));
        assert_eq!(a.cpus, [0, 1]);
        assert_eq!(a.counters.task_clock_ns, Some(17));
        assert_eq!(
            (a.counters.cycles, a.counters.llc_load_misses),
            (None, None)
        );
        assert_eq!(a.unsupported, ["cycles"]);
    }

    #[test]
    fn a_thinned_list_keeps_at_most_max_entries_spread_over_what_was_offered() {
        let mut t = Thinned::default();
        for k in 0..100u64 {
            t.offer(k, k * 10, 8);
        }
        assert!(t.kept.len() < 8, "{:?}", t.kept);
        assert_eq!(t.stride, 16);
        assert!(t.kept.iter().all(|(k, v)| k % 16 == 0 && *v == k * 10));
        assert_eq!(t.kept.first().map(|e| e.0), Some(0));
        assert_eq!(t.kept.last().map(|e| e.0), Some(96));
    }

    #[test]
    fn an_end_frame_reads_back_as_it_was_sent() {
        let mut zc = ZeroCopyStats {
            sends: 4,
            completions: 4,
            copied: 1,
            messages: 8,
            ..Default::default()
        };
        zc.slot_hold.record(1500);
        let r = SenderReport {
            messages: 8,
            bytes: 512,
            zerocopy: Some(zc),
            uring: Some(UringSetup {
                threads: 2,
                uring: UringSpec {
                    depth: 8,
                    batch: 4,
                    ordering: crate::UringOrdering::Bundle,
                    setup_flags: vec!["single_issuer".into()],
                    registered_ring_fd: true,
                },
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(&r).unwrap();
        // The tunables sit beside the thread count, as they always did on the wire.
        assert_eq!(json["uring"]["ordering"], "bundle");
        assert_eq!(json["uring"]["threads"], 2);
        assert!(json["zerocopy"]["slot_hold"].is_string());
        let back: SenderReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        let z = back.zerocopy.unwrap();
        assert_eq!(
            (z.copied_fraction(), z.messages_per_send()),
            (Some(0.25), Some(2.0))
        );
        assert_eq!(z.slot_hold.count(), 1);
    }
}
