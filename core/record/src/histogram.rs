//! A latency distribution in full: an HDR histogram in nanoseconds. The measuring threads
//! record into one each and merge them at the end; the end frame carries them whole, and a
//! record's [`Latency`] carries one as `hdr_v2_deflate_b64`, which
//! [`LatencyHistogram::from_base64`] reads back (readers of results can merge repetitions).

use crate::latency_v1::Latency;
use base64::Engine as _;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Lowest recordable value: 1 ns.
pub const LOWEST_NS: u64 = 1;
/// Highest recordable value: 60 s; larger values are clamped to it.
pub const HIGHEST_NS: u64 = 60_000_000_000;
/// Significant decimal digits kept.
pub const SIGFIGS: u8 = 3;

/// A latency histogram in nanoseconds (1 ns .. 60 s, 3 significant digits). In serialized
/// form (serde: the end frame) it is its V2 deflate base64 string.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyHistogram {
    h: Histogram<u64>,
}

impl Serialize for LatencyHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LatencyHistogram::from_base64(&s)
            .ok_or_else(|| serde::de::Error::custom("not a V2 deflate base64 HDR histogram"))
    }
}

impl JsonSchema for LatencyHistogram {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LatencyHistogram".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An HDR histogram of nanoseconds (1 ns .. 60 s, 3 significant digits): HdrHistogram V2 deflate, base64."
        })
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        LatencyHistogram {
            h: Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGFIGS)
                .expect("valid histogram bounds"),
        }
    }

    /// Records one value; values outside 1 ns .. 60 s are clamped.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.h.saturating_record(ns.clamp(LOWEST_NS, HIGHEST_NS));
    }

    /// Records `n` samples of one value (clamped as in [`record`](Self::record)).
    #[inline]
    pub fn record_n(&mut self, ns: u64, n: u64) {
        self.h
            .saturating_record_n(ns.clamp(LOWEST_NS, HIGHEST_NS), n);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.h.add(&other.h).expect("same bounds");
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// Percentiles, mean and extremes, and the whole histogram, as the record carries them
    /// under `kind`.
    pub fn summary(&self, kind: &str) -> Latency {
        let h = &self.h;
        let q = |x| h.value_at_quantile(x);
        Latency {
            kind: kind.into(),
            count: h.len(),
            min: if h.is_empty() { 0 } else { h.min() },
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            p9999: q(0.9999),
            max: h.max(),
            mean: if h.is_empty() { 0.0 } else { h.mean() },
            hdr_v2_deflate_b64: self.to_base64(),
        }
    }

    /// The histogram in HdrHistogram's V2 deflate format, base64-encoded (readable by every
    /// HdrHistogram implementation).
    pub fn to_base64(&self) -> String {
        let mut buf = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.h, &mut buf)
            .expect("serialize histogram to memory");
        base64::engine::general_purpose::STANDARD.encode(buf)
    }

    /// Reads a histogram written by [`to_base64`](Self::to_base64).
    pub fn from_base64(s: &str) -> Option<LatencyHistogram> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
        let h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut &bytes[..])
            .ok()?;
        Some(LatencyHistogram { h })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_summary_and_serialization_round_trip() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        for v in 1..=1000u64 {
            a.record(v * 1000);
        }
        b.record(0); // clamped to 1 ns
        b.record(u64::MAX); // clamped to 60 s
        a.merge(&b);
        let s = a.summary("test");
        assert_eq!(s.count, 1002);
        assert_eq!(s.min, 1);
        assert!(
            s.max >= HIGHEST_NS && s.max < HIGHEST_NS + HIGHEST_NS / 500,
            "{}",
            s.max
        );
        assert!((499_000..=502_000).contains(&s.p50), "{}", s.p50);
        let back = LatencyHistogram::from_base64(&a.to_base64()).unwrap();
        assert_eq!(back.summary("test"), s);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<LatencyHistogram>(&json).unwrap(), a);
        assert!(serde_json::from_str::<LatencyHistogram>("\"x\"").is_err());
        let mut c = LatencyHistogram::new();
        c.record_n(1000, 3);
        assert_eq!((c.count(), c.summary("test").p50), (3, 1000));
    }
}
