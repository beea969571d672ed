//! The record's `tcp` section: what TCP did to each flow over the window (TCP_INFO of its
//! sending socket), and what an impairment's loss rule dropped. Part of schema v1.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// TCP_INFO over the window: each flow's, and the sums.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TcpV1 {
    /// Whose socket was read: `sender` (the direction the cell measures).
    pub side: String,
    /// Per flow.
    pub per_flow: Vec<TcpFlowV1>,
    /// Segments retransmitted in the window, all flows.
    pub retransmits: Option<u64>,
    /// Bytes retransmitted in the window, all flows.
    pub bytes_retrans: Option<u64>,
    /// Time flows had data in flight, all flows, microseconds.
    pub busy_us: Option<u64>,
    /// Of that, time limited by the receiver's window.
    pub rwnd_limited_us: Option<u64>,
    /// Of that, time limited by the send buffer.
    pub sndbuf_limited_us: Option<u64>,
    /// Largest smoothed RTT of any flow at the window's end, microseconds.
    pub max_rtt_us: Option<u64>,
    /// Of the retransmissions, those the receivers reported as duplicates (DSACK), all flows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsack_dups: Option<u64>,
    /// Segments sent in the window, all flows (retransmissions and pure ACKs included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segs_out: Option<u64>,
    /// Segments the veth pair's loss rule dropped in the window (its nftables counter, read
    /// at the window's edges by the run's clock), all flows; absent without a loss rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impairment_dropped: Option<u64>,
}

/// One flow's TCP_INFO over the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TcpFlowV1 {
    /// The flow.
    pub flow: u64,
    /// What TCP did.
    #[serde(flatten)]
    pub info: TcpFlowInfo,
}

/// What TCP did to one flow over the window, on its sending socket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TcpFlowInfo {
    /// Segments retransmitted in the window (delta of `tcpi_total_retrans`).
    pub retransmits: Option<u64>,
    /// Bytes retransmitted in the window.
    pub bytes_retrans: Option<u64>,
    /// Bytes sent in the window, retransmissions included.
    pub bytes_sent: Option<u64>,
    /// Retransmissions the receiver reported as duplicates (DSACK) in the window: spurious
    /// ones, sent although the first copy had arrived (or was about to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsack_dups: Option<u64>,
    /// Segments sent in the window.
    pub segs_out: Option<u64>,
    /// Reordering events seen in the window.
    pub reord_seen: Option<u64>,
    /// Smoothed RTT at the window's end, microseconds.
    pub rtt_us: Option<u64>,
    /// Its variance (mean deviation), microseconds.
    pub rttvar_us: Option<u64>,
    /// Smallest RTT the connection has seen, microseconds.
    pub min_rtt_us: Option<u64>,
    /// Congestion window at the window's end, segments.
    pub cwnd: Option<u64>,
    /// Segment size at the window's end.
    pub mss: Option<u64>,
    /// Segments the kernel thinks are lost, at the window's end.
    pub lost: Option<u64>,
    /// The peer's receive window at the window's end, bytes.
    pub snd_wnd_bytes: Option<u64>,
    /// Most recent delivery rate estimate at the window's end, bytes per second.
    pub delivery_rate_bytes_per_s: Option<u64>,
    /// Time in the window the flow had data in flight, microseconds.
    pub busy_us: Option<u64>,
    /// Of that, time limited by the receiver's window.
    pub rwnd_limited_us: Option<u64>,
    /// Of that, time limited by the send buffer.
    pub sndbuf_limited_us: Option<u64>,
}
