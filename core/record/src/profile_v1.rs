//! The record's `profile` section (`--profile`): where each side's CPU went over the window,
//! from sampling its worker threads with the software CPU clock. Part of schema v1
//! (additive: absent without `--profile`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where each side's CPU went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProfileV1 {
    /// Samples per second asked for.
    pub hz: u64,
    /// The sampling period, nanoseconds of a thread's on-CPU time.
    pub period_ns: u64,
    /// The sending side (null where its threads were not sampled).
    pub sender: Option<SideProfileV1>,
    /// The receiving side.
    pub receiver: Option<SideProfileV1>,
    /// This host's memcpy at the cell's message size, nanoseconds per byte (copies between
    /// two buffers of that size, timed on the sender's CPU after the window): what a copy
    /// bucket's ns per byte is compared with. Null where not measured (across hosts).
    #[serde(default)]
    pub memcpy_ns_per_byte: Option<f64>,
}

/// One side's profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SideProfileV1 {
    /// Samples taken over the window, all the side's threads.
    pub samples: u64,
    /// Samples the kernel lost (a full ring buffer).
    pub lost: u64,
    /// On-CPU nanoseconds the samples stand for: each sample weighs the CPU clock since the
    /// one before it, so this is the sampled threads' task clock, give or take a period each.
    pub sampled_ns: u64,
    /// The sampler's own clock over the window (perf's task clock of the side's threads):
    /// `sampled_ns` is this less each thread's last partial period.
    #[serde(default)]
    pub sampler_clock_ns: Option<u64>,
    /// The side's task clock over the window, as its counters read it (the scheduler's CPU
    /// time of its threads). It differs from `sampler_clock_ns` by what perf's clock does not
    /// see (the context switches themselves: with thousands of wake-ups on a shared CPU, a
    /// fifth of it) and what the scheduler gives to no task (interrupts taken on the thread).
    pub task_clock_ns: Option<u64>,
    /// Every bucket, in a fixed order: `copy_user`, `copy_kernel`, `copy_deferred`,
    /// `zerocopy`, `tcp`, `ip_dev`, `io_uring`, `syscall`, `sched`, `softirq`, `app`, `other`.
    pub buckets: Vec<BucketV1>,
    /// The 20 leaf symbols with the most time, with the bucket their samples went to.
    pub top: Vec<SymbolV1>,
}

/// One bucket of a side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BucketV1 {
    /// Its name.
    pub bucket: String,
    /// Samples in it.
    pub samples: u64,
    /// On-CPU nanoseconds they stand for.
    pub ns: u64,
    /// Its share of the side's sampled time (0..1).
    pub share: f64,
    /// Its on-CPU nanoseconds per byte received in the window (null without bytes).
    pub ns_per_byte: Option<f64>,
}

/// One symbol of a side's top list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SymbolV1 {
    /// The leaf symbol (`[unknown]` when it could not be named).
    pub symbol: String,
    /// The bucket its samples went to.
    pub bucket: String,
    /// Samples.
    pub samples: u64,
    /// Its share of the side's sampled time (0..1).
    pub share: f64,
}

/// Where a CPU sample went: one table of names, in the report's order (`BucketV1::bucket` is
/// one of [`Bucket::as_str`]).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Copies in user space (A1's staging memcpy).
    CopyUser,
    /// Copies between user memory and socket buffers, either way.
    CopyKernel,
    /// The kernel copying zero-copy pages after all (`skb_copy_ubufs`: locally delivered skbs).
    CopyDeferred,
    /// Zero-copy's own work: pinning pages, completion notifications, reading the error queue,
    /// and our bookkeeping of the buffers the kernel holds until their completions.
    Zerocopy,
    /// TCP, both directions (the receive side runs in the sender's softirq on loopback).
    Tcp,
    /// IP, the device layer, loopback and veth.
    IpDev,
    /// io_uring: submission, completion, task work (and our ring loop).
    IoUring,
    /// System call entry and exit, the socket layer's dispatch.
    Syscall,
    /// Scheduling, wake-ups, waiting, idle.
    Sched,
    /// Softirq machinery (network receive processing's frame).
    Softirq,
    /// sendpath's own user-space work: the send and receive loops, framing, sequence and
    /// payload checks, latency histograms (what any application adds, and the tool's cost).
    App,
    /// Everything else (named in the top symbols).
    Other,
}

impl Bucket {
    /// Every bucket, in the order the report shows them.
    pub const ALL: [Bucket; 12] = [
        Bucket::CopyUser,
        Bucket::CopyKernel,
        Bucket::CopyDeferred,
        Bucket::Zerocopy,
        Bucket::Tcp,
        Bucket::IpDev,
        Bucket::IoUring,
        Bucket::Syscall,
        Bucket::Sched,
        Bucket::Softirq,
        Bucket::App,
        Bucket::Other,
    ];

    /// The name in the record (`copy_user`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::CopyUser => "copy_user",
            Bucket::CopyKernel => "copy_kernel",
            Bucket::CopyDeferred => "copy_deferred",
            Bucket::Zerocopy => "zerocopy",
            Bucket::Tcp => "tcp",
            Bucket::IpDev => "ip_dev",
            Bucket::IoUring => "io_uring",
            Bucket::Syscall => "syscall",
            Bucket::Sched => "sched",
            Bucket::Softirq => "softirq",
            Bucket::App => "app",
            Bucket::Other => "other",
        }
    }

    /// The bucket named `s`.
    pub fn parse(s: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == s)
    }
}
