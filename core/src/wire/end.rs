//! The end of a stream: the receiver's request and the sender's end frame, which carries its
//! side of the record.

use super::message::{put_header, END_SEQ, HEADER_LEN};
use crate::cpu::SideCounters;
use crate::zerocopy_stats::ZeroCopyStats;
use serde::{Deserialize, Serialize};

/// Largest end-frame JSON accepted.
pub const MAX_END_LEN: usize = 64 << 10;
/// The byte a stream or rate receiver sends when its window has ended: "send your end frame".
pub const END_REQUEST: u8 = b'E';

/// The sender's side of the record, sent in the end frame.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    pub tcp: Option<crate::tcpinfo::TcpFlowInfo>,
    /// `--timestamps`: the sender's stamps of sampled messages.
    #[serde(default)]
    pub stages: Option<crate::stamps::TxStages>,
    /// Send operations whose messages are in `messages` (send/sendmsg calls, or send SQEs on
    /// io_uring); 0 from a sender that did not count them.
    #[serde(default)]
    pub calls: u64,
}

/// How the io_uring engine ran a flow: the tunables and what the kernel accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UringSetup {
    /// Sender worker threads (one ring each).
    pub threads: u32,
    /// Sends in flight per flow (one linked chain).
    pub depth: u32,
    /// Completions each io_uring_enter waits for.
    pub batch: u32,
    /// `link` or `bundle` (see `UringOrdering`); empty from a sender that predates it.
    #[serde(default)]
    pub ordering: String,
    /// Ring setup flags the kernel accepted (fewer when it refused the fast set).
    pub setup_flags: Vec<String>,
    /// The ring fd was registered (no fd lookup per io_uring_enter).
    pub registered_ring_fd: bool,
}

/// Encodes the end frame: header with [`END_SEQ`] then the JSON report.
pub fn encode_end(report: &SenderReport) -> Vec<u8> {
    let json = serde_json::to_vec(report).expect("sender report serializes");
    let mut out = vec![0u8; HEADER_LEN];
    put_header(&mut out, END_SEQ, json.len() as u64);
    out.extend_from_slice(&json);
    out
}
