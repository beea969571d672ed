//! The record's `stages` section (`--timestamps`): where a message's microseconds go, from
//! the kernel's software timestamps. Part of schema v1 (additive).

use crate::latency_v1::Latency;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the time of sampled messages went (ns, HDR histograms like `latency_ns`). All on
/// CLOCK_MONOTONIC; the kernel's CLOCK_REALTIME stamps are moved onto it. The stages of a
/// message add up to its end-to-end time: user_to_sched + sched_to_device + device_to_stack
/// + stack_to_user = end_to_end (the percentiles of a sum are not the sums of percentiles).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StagesV1 {
    /// One message in this many (the last of each run: seq + 1 a multiple of it) was stamped.
    pub every: u64,
    /// Stamped messages sent in the window.
    pub sampled: u64,
    /// Of those, the messages both sides' stamps were joined for (at most 400 per flow,
    /// spread over the window): the four stages and `end_to_end` are over these. A sampled
    /// call is sent with MSG_EOR, so no later data shares its last packet (a later sample
    /// there would take over its stamps).
    pub joined: u64,
    /// Joined messages whose stamps were not in the order of the stages. 0 for rr; on a
    /// stream with a long receive queue a few (seen: under 1%, always device -> stack, by
    /// 5-30 µs): the read's receive stamp can be older than the message's last packet (the
    /// kernel merges queued packets; likely its receive-queue collapse, not pinned down).
    pub out_of_order: u64,
    /// Sender's stamps that named no sampled message (a short send's earlier call), and
    /// samples whose stamps never all came: never acknowledged before the flow ended, or (very
    /// dense sampling, several samples per 64 KiB) left without stamps by TCP.
    pub unmatched_stamps: u64,
    /// Send call -> SCHED (entered the queueing layer): socket send queue and TCP.
    pub user_to_sched_ns: Option<Latency>,
    /// SCHED -> SND (the driver took it: loopback and veth stamp in their xmit).
    pub sched_to_device_ns: Option<Latency>,
    /// SND -> RX_SOFTWARE (the receiving stack got it).
    pub device_to_stack_ns: Option<Latency>,
    /// RX_SOFTWARE -> the user's read returned it. For TCP the receive stamp of a read is that
    /// of the last packet it copied: exact when a read holds one message (rr), late for the
    /// earlier messages of a read that spans many (streams).
    pub stack_to_user_ns: Option<Latency>,
    /// Send call -> the peer acknowledged all of it (ACK stamp), over every acknowledged
    /// sample.
    pub send_to_ack_ns: Option<Latency>,
    /// Send call -> the user's read, for the same sampled messages.
    pub end_to_end_ns: Option<Latency>,
    /// The stages of a typical message: each stage's mean over the joined messages whose
    /// end-to-end time lies between its 40th and 60th percentiles. These add up to those
    /// messages' mean end-to-end time, about the median, which the stages' own medians need
    /// not (skewed stages: the median of a sum lies above the sum of the medians). Null where
    /// nothing was joined (and in records from before this field).
    #[serde(default)]
    pub typical: Option<TypicalStagesV1>,
}

/// One typical message's way, in ns (means over the messages around the end-to-end median).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TypicalStagesV1 {
    /// Messages averaged (the joined messages between the 40th and 60th percentiles of
    /// end-to-end time).
    pub messages: u64,
    /// Send call -> SCHED.
    pub user_to_sched_ns: f64,
    /// SCHED -> SND.
    pub sched_to_device_ns: f64,
    /// SND -> RX_SOFTWARE.
    pub device_to_stack_ns: f64,
    /// RX_SOFTWARE -> read.
    pub stack_to_user_ns: f64,
    /// Send call -> read: the sum of the four.
    pub end_to_end_ns: f64,
}
