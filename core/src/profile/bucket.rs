//! The named buckets a CPU sample can go to: one table of names, in the report's order.

use serde::{Deserialize, Serialize};

/// Where a CPU sample went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
