//! The record's `profile` section from the sides' sampled profiles: each bucket's time, share
//! and nanoseconds per byte, and the top symbols.

use crate::cpu::SideCounters;
use sendpath_record::end_v1::SideProfile;
use sendpath_record::profile_v1::Bucket;
use sendpath_record::v1::{BucketV1, ProfileV1, SideProfileV1, SymbolV1};

/// Symbols a side lists in the record.
pub const TOP_SYMBOLS: usize = 20;

fn side_v1(p: &SideProfile, task_clock_ns: Option<u64>, bytes: u64) -> SideProfileV1 {
    let total = p.sampled_ns().max(1) as f64;
    SideProfileV1 {
        samples: p.samples,
        lost: p.lost,
        sampled_ns: p.sampled_ns(),
        sampler_clock_ns: (p.clock_ns > 0).then_some(p.clock_ns),
        task_clock_ns,
        buckets: Bucket::ALL
            .iter()
            .map(|b| {
                let w = p.buckets.get(b).copied().unwrap_or_default();
                BucketV1 {
                    bucket: b.as_str().into(),
                    samples: w.samples,
                    ns: w.ns,
                    share: w.ns as f64 / total,
                    ns_per_byte: (bytes > 0).then(|| w.ns as f64 / bytes as f64),
                }
            })
            .collect(),
        top: p
            .symbols
            .iter()
            .take(TOP_SYMBOLS)
            .map(|s| SymbolV1 {
                symbol: s.symbol.clone(),
                bucket: s.bucket.as_str().into(),
                samples: s.weight.samples,
                share: s.weight.ns as f64 / total,
            })
            .collect(),
    }
}

/// The profile of a cell sampled at `hz` whose sides counted `tx` and `rx` and received
/// `bytes` in the window; None when neither side has a profile (the sampler was refused).
pub fn profile_v1(
    hz: u32,
    tx: Option<&SideCounters>,
    rx: Option<&SideCounters>,
    bytes: u64,
) -> Option<ProfileV1> {
    let side = |c: Option<&SideCounters>| {
        let c = c?;
        Some(side_v1(
            c.profile.as_ref()?,
            c.counters.task_clock_ns,
            bytes,
        ))
    };
    let (sender, receiver) = (side(tx), side(rx));
    if sender.is_none() && receiver.is_none() {
        return None;
    }
    let period_ns = [tx, rx]
        .into_iter()
        .flatten()
        .find_map(|c| c.profile.as_ref().map(|p| p.period_ns))
        .unwrap_or(1_000_000_000 / u64::from(hz.max(1)));
    Some(ProfileV1 {
        hz: u64::from(hz),
        period_ns,
        sender,
        receiver,
        memcpy_ns_per_byte: None,
    })
}
