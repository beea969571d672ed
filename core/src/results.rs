//! What one flow's receiver measured (and, once the end frame arrived, what its sender said).

use crate::cpu::SideCounters;
use crate::host::HostCpu;
use crate::wire::end::SenderReport;
use crate::wire::hello::Hello;
use sendpath_record::histogram::LatencyHistogram;

/// What one flow's receiver saw.
#[derive(Debug, Default)]
pub struct FlowResult {
    /// The hello, if one arrived.
    pub hello: Option<Hello>,
    /// Whole messages received in the window.
    pub messages: u64,
    /// Bytes received in the window (messages x size; raw bytes in discard mode).
    pub bytes: u64,
    /// Gaps, repeats and reorders of the sequence.
    pub seq_errors: u64,
    /// Messages whose payload did not match the verify pattern.
    pub verify_errors: u64,
    /// Payload bytes checked against the verify pattern.
    pub verified_bytes: u64,
    /// Whether every message of the window had its sequence checked (false in discard mode).
    pub seq_checked: bool,
    /// Latency of every message received in the window (rr: round trips; rate: from the
    /// intended send time).
    pub latency: LatencyHistogram,
    /// `rate`: latency from the actual send time, for comparison.
    pub latency_uncorrected: Option<LatencyHistogram>,
    /// Receiver thread's counters over the window.
    pub counters: Option<SideCounters>,
    /// The sender's side, from the end frame.
    pub sender: Option<SenderReport>,
    /// Machine CPU time by category over this flow's window, if asked for.
    pub host_cpu: Option<HostCpu>,
    /// Why the flow ended badly, if it did. What was measured before is kept.
    pub error: Option<String>,
    /// `--rx uring`: times the multishot recv ended (no free buffer, a signal) and was
    /// re-armed.
    pub rx_rearms: u64,
    /// `--timestamps`: the receiver's stamps of sampled messages.
    pub stages: Option<crate::stamps::RxStages>,
    /// SO_BUSY_POLL microseconds set on this flow's socket (busy-poll over a NAPI device).
    pub napi_busy_poll_us: Option<u64>,
}
