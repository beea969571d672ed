//! Which bucket a CPU sample goes to: the rules that read a sample (its symbols, leaf first)
//! against the kernel table (`table.rs`).
//!
//! A kernel sample's call chain is walked from the leaf outward and the first frame the table
//! names decides; helpers any path uses (locks, allocation, freeing, `__check_object_size`)
//! name no bucket, so their caller decides. A copy primitive (`_copy_from_iter`, `memcpy`, ...)
//! is a copy, and its callers say which: under `skb_copy_ubufs` (the kernel copying a
//! zero-copy skb's pages when it delivers them locally) it is `copy_deferred`, otherwise
//! `copy_kernel`. A user-space sample has only its leaf: libc's copy routines and Rust's are
//! `copy_user` (A1's staging), syscall wrappers `syscall`, our io_uring loop `io_uring`, the
//! zero-copy bookkeeping (`sendpath_core::zerocopy`) `zerocopy`, the rest of our own code and
//! the latency histograms `app`.

use super::table::{Rule, KERNEL};
use sendpath_record::profile_v1::Bucket;

/// One frame of a sample: its symbol (None when it could not be named) and whether it is in
/// the kernel.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// The symbol's name, demangled.
    pub name: Option<&'a str>,
    /// A kernel address.
    pub kernel: bool,
}

fn rule_of(name: &str) -> Option<Rule> {
    KERNEL
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, r)| *r)
}

/// The bucket of a user-space leaf: libc's and Rust's copy routines, syscall wrappers, our
/// io_uring loop; else none (`other`).
fn user_bucket(name: &str) -> Option<Bucket> {
    const COPY: &[&str] = &[
        "memcpy",
        "memmove",
        "__memcpy",
        "__memmove",
        "__mempcpy",
        "core::ptr::copy",
        "core::slice::<impl [T]>::copy_from_slice",
        "compiler_builtins::mem::memcpy",
        "compiler_builtins::mem::memmove",
    ];
    const SYSCALL: &[&str] = &[
        "send",
        "sendmsg",
        "sendto",
        "recv",
        "recvmsg",
        "recvfrom",
        "syscall",
        "__libc_",
        "__send",
        "__recv",
        "__GI___libc_",
        "read",
        "write",
        "poll",
        "__poll",
        "epoll_wait",
    ];
    if COPY.iter().any(|c| name.starts_with(c)) {
        return Some(Bucket::CopyUser);
    }
    if SYSCALL
        .iter()
        .any(|c| name == *c || (c.ends_with('_') && name.starts_with(c)))
    {
        return Some(Bucket::Syscall);
    }
    if name.contains("io_uring") || name.contains("::uring::") || name.contains("uring_sys") {
        return Some(Bucket::IoUring);
    }
    // Our zero-copy bookkeeping (slots held until their completion, completions read from
    // the error queue) is zero-copy's user-space cost.
    if name.contains("sendpath_core::zerocopy::") {
        return Some(Bucket::Zerocopy);
    }
    // Our own code (a generic's name can start with `<`) and the latency histograms.
    const APP: &[&str] = &["sendpath", "hdrhistogram::"];
    if APP
        .iter()
        .any(|a| name.trim_start_matches('<').starts_with(a))
    {
        return Some(Bucket::App);
    }
    None
}

/// The bucket of a sample whose frames are `chain`, leaf first (a user-space sample has just
/// its leaf; a kernel sample's chain may end in user frames, which are ignored).
pub fn classify(chain: &[Frame]) -> Bucket {
    let Some(leaf) = chain.first() else {
        return Bucket::Other;
    };
    if !leaf.kernel {
        return leaf.name.and_then(user_bucket).unwrap_or(Bucket::Other);
    }
    let mut copying = false;
    for f in chain.iter().take_while(|f| f.kernel) {
        let Some(name) = f.name else { continue };
        match rule_of(name) {
            Some(Rule::Defers) => return Bucket::CopyDeferred,
            Some(Rule::Copy) => copying = true,
            Some(Rule::Is(b)) if copying && b != Bucket::Zerocopy => return Bucket::CopyKernel,
            Some(Rule::Is(b)) if !copying => return b,
            // A copy under zero-copy's own frames (e.g. filling an skb's linear part) is
            // still a copy between user memory and socket buffers.
            Some(Rule::Is(_)) => return Bucket::CopyKernel,
            Some(Rule::Helper) | None => {}
        }
    }
    if copying {
        Bucket::CopyKernel
    } else {
        Bucket::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(names: &[&str]) -> Vec<Frame<'static>> {
        names
            .iter()
            .map(|n| Frame {
                name: Some(Box::leak(n.to_string().into_boxed_str())),
                kernel: true,
            })
            .collect()
    }

    #[test]
    fn kernel_samples_land_in_the_bucket_their_frames_name() {
        let cases: &[(&[&str], Bucket)] = &[
            // A1/A2 send: the copy into the socket buffer.
            (
                &["_copy_from_iter", "tcp_sendmsg_locked", "tcp_sendmsg"],
                Bucket::CopyKernel,
            ),
            (
                &[
                    "rep_movs_alternative",
                    "_copy_to_iter",
                    "__skb_datagram_iter",
                    "tcp_recvmsg_locked",
                ],
                Bucket::CopyKernel,
            ),
            // A3 on loopback: the deferred copy of the zero-copy pages.
            (
                &[
                    "__pi_memcpy",
                    "skb_copy_ubufs",
                    "__netif_receive_skb_one_core",
                    "process_backlog",
                ],
                Bucket::CopyDeferred,
            ),
            (
                &[
                    "alloc_pages_noprof",
                    "skb_copy_ubufs",
                    "__netif_receive_skb_core",
                ],
                Bucket::CopyDeferred,
            ),
            // Zero-copy's own work.
            (
                &[
                    "gup_fast_fallback",
                    "iov_iter_extract_pages",
                    "zerocopy_fill_skb_from_iter",
                ],
                Bucket::Zerocopy,
            ),
            (
                &["zerocopy_fill_skb_from_iter", "tcp_sendmsg_locked"],
                Bucket::Zerocopy,
            ),
            (
                &[
                    "_raw_spin_unlock_irqrestore",
                    "sock_dequeue_err_skb",
                    "ip_recv_error",
                ],
                Bucket::Zerocopy,
            ),
            (
                &["__msg_zerocopy_callback", "skb_release_data", "tcp_ack"],
                Bucket::Zerocopy,
            ),
            (
                &["io_notif_tw_complete", "tctx_task_work_run"],
                Bucket::Zerocopy,
            ),
            // Protocol layers; helpers defer to their callers.
            (
                &["tcp_ack", "tcp_rcv_established", "tcp_v4_rcv"],
                Bucket::Tcp,
            ),
            (
                &[
                    "_raw_spin_unlock_irqrestore",
                    "__wake_up_sync_key",
                    "sock_def_readable",
                ],
                Bucket::Sched,
            ),
            (
                &[
                    "kmem_cache_alloc_node_noprof",
                    "__alloc_skb",
                    "tcp_stream_alloc_skb",
                ],
                Bucket::Tcp,
            ),
            (
                &["__check_object_size", "skb_copy_datagram_iter"],
                Bucket::CopyKernel,
            ),
            (&["loopback_xmit", "dev_hard_start_xmit"], Bucket::IpDev),
            (&["ip_finish_output2.isra.0", "ip_output"], Bucket::IpDev),
            (
                &["__netif_receive_skb_core.constprop.0", "process_backlog"],
                Bucket::IpDev,
            ),
            (
                &[
                    "handle_softirqs",
                    "__local_bh_enable_ip",
                    "__dev_queue_xmit",
                ],
                Bucket::Softirq,
            ),
            (
                &["io_submit_sqes", "__do_sys_io_uring_enter"],
                Bucket::IoUring,
            ),
            (&["entry_SYSCALL_64_after_hwframe"], Bucket::Syscall),
            (&["do_syscall_64"], Bucket::Syscall),
            (
                &["finish_task_switch.isra.0", "__schedule", "schedule"],
                Bucket::Sched,
            ),
            (&["read_tsc", "ktime_get"], Bucket::Other),
            (&["something_unheard_of"], Bucket::Other),
        ];
        for (chain, want) in cases {
            assert_eq!(classify(&k(chain)), *want, "{chain:?}");
        }
    }

    #[test]
    fn user_samples_have_their_leaf_only() {
        let u = |n: &'static str| {
            classify(&[Frame {
                name: Some(n),
                kernel: false,
            }])
        };
        assert_eq!(u("__memmove_avx_unaligned_erms"), Bucket::CopyUser);
        assert_eq!(u("memcpy"), Bucket::CopyUser);
        assert_eq!(u("core::ptr::copy_nonoverlapping"), Bucket::CopyUser);
        assert_eq!(u("__libc_sendmsg"), Bucket::Syscall);
        assert_eq!(u("sendmsg"), Bucket::Syscall);
        assert_eq!(
            u("sendpath_core::send::uring::drive::drive"),
            Bucket::IoUring
        );
        assert_eq!(u("sendpath_core::wire::parse::Parser::feed"), Bucket::App);
        assert_eq!(u("hdrhistogram::Histogram<T>::record_n_inner"), Bucket::App);
        assert_eq!(
            u("<sendpath_core::recv::stream::Copy as sendpath_core::recv::Receiver>::read"),
            Bucket::App
        );
        assert_eq!(u("some_other_library::work"), Bucket::Other);
        assert_eq!(
            u("sendpath_core::zerocopy::pool::SlotPool::claim"),
            Bucket::Zerocopy
        );
        assert_eq!(
            classify(&[Frame {
                name: None,
                kernel: false
            }]),
            Bucket::Other
        );
        assert_eq!(classify(&[]), Bucket::Other);
        for b in Bucket::ALL {
            assert_eq!(Bucket::parse(b.as_str()), Some(b));
        }
    }
}
