//! A latency distribution as the record carries it: percentiles and the HDR histogram.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Latency statistics in nanoseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Latency {
    /// `one_way` (stream: receive time - send timestamp, includes socket-buffer queueing),
    /// `round_trip` (rr: request sent to response received), `one_way_from_intended`
    /// (rate: receive time - the time the schedule intended the send), or `slot_hold`
    /// (zero-copy: per slot, its first send to the completion that released it).
    pub kind: String,
    /// Samples.
    pub count: u64,
    /// Minimum.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Maximum.
    pub max: u64,
    /// Mean.
    pub mean: f64,
    /// The whole histogram: HdrHistogram V2 deflate, base64.
    pub hdr_v2_deflate_b64: String,
}
