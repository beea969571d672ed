//! What a CPU sample was spent on: the one table of named buckets and the rules that put a
//! sample (its symbols, leaf first) in one of them.
//!
//! A kernel sample's call chain is walked from the leaf outward and the first frame the table
//! names decides; helpers any path uses (locks, allocation, freeing, `__check_object_size`)
//! name no bucket, so their caller decides. A copy primitive (`_copy_from_iter`, `memcpy`, ...)
//! is a copy, and its callers say which: under `skb_copy_ubufs` (the kernel copying a
//! zero-copy skb's pages when it delivers them locally) it is `copy_deferred`, otherwise
//! `copy_kernel`. A user-space sample has only its leaf: libc's copy routines and Rust's are
//! `copy_user` (A1's staging), syscall wrappers `syscall`, our io_uring loop `io_uring`.

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
    /// Zero-copy's own work: pinning pages, completion notifications, reading the error queue.
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
    /// Everything else (named in the top symbols).
    Other,
}

impl Bucket {
    /// Every bucket, in the order the report shows them.
    pub const ALL: [Bucket; 11] = [
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
            Bucket::Other => "other",
        }
    }

    /// The bucket named `s`.
    pub fn parse(s: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

/// What one frame says about its sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// This frame decides.
    Is(Bucket),
    /// A copy primitive: a copy, of the kind its callers say.
    Copy,
    /// Under this frame, a copy is the deferred one.
    Defers,
    /// A helper every path uses: the caller decides.
    Helper,
}

/// The kernel table: (prefix of the symbol, rule), checked in order, the first match wins.
/// Symbols may carry compiler suffixes (`.isra.0`, `.constprop.0`, `.part.0`).
const KERNEL: &[(&str, Rule)] = &[
    // Copies.
    ("_copy_from_iter", Rule::Copy),
    ("_copy_to_iter", Rule::Copy),
    ("copy_user_", Rule::Copy),
    ("rep_movs_alternative", Rule::Copy),
    ("__pi_memcpy", Rule::Copy),
    ("__memcpy", Rule::Copy),
    ("memcpy", Rule::Copy),
    ("memmove", Rule::Copy),
    ("__memmove", Rule::Copy),
    ("copy_page", Rule::Copy),
    ("csum_partial_copy", Rule::Copy),
    ("skb_copy_bits", Rule::Copy),
    ("skb_copy_datagram", Rule::Copy),
    ("simple_copy_to_iter", Rule::Copy),
    ("skb_copy_ubufs", Rule::Defers),
    ("skb_orphan_frags", Rule::Defers),
    ("__skb_zcopy_downgrade", Rule::Defers),
    // Zero-copy's own work.
    ("msg_zerocopy", Rule::Is(Bucket::Zerocopy)),
    ("__msg_zerocopy", Rule::Is(Bucket::Zerocopy)),
    ("zerocopy_", Rule::Is(Bucket::Zerocopy)),
    ("__zerocopy_", Rule::Is(Bucket::Zerocopy)),
    ("skb_zerocopy", Rule::Is(Bucket::Zerocopy)),
    ("skb_zcopy", Rule::Is(Bucket::Zerocopy)),
    ("net_zcopy", Rule::Is(Bucket::Zerocopy)),
    ("mm_account_pinned_pages", Rule::Is(Bucket::Zerocopy)),
    ("mm_unaccount_pinned_pages", Rule::Is(Bucket::Zerocopy)),
    ("gup_", Rule::Is(Bucket::Zerocopy)),
    ("get_user_pages", Rule::Is(Bucket::Zerocopy)),
    ("pin_user_pages", Rule::Is(Bucket::Zerocopy)),
    ("__get_user_pages", Rule::Is(Bucket::Zerocopy)),
    ("iov_iter_get_pages", Rule::Is(Bucket::Zerocopy)),
    ("iov_iter_extract", Rule::Is(Bucket::Zerocopy)),
    ("ip_recv_error", Rule::Is(Bucket::Zerocopy)),
    ("ipv6_recv_error", Rule::Is(Bucket::Zerocopy)),
    ("inet_recv_error", Rule::Is(Bucket::Zerocopy)),
    ("sock_recv_errqueue", Rule::Is(Bucket::Zerocopy)),
    ("sock_dequeue_err_skb", Rule::Is(Bucket::Zerocopy)),
    ("io_notif", Rule::Is(Bucket::Zerocopy)),
    ("io_tx_ubuf", Rule::Is(Bucket::Zerocopy)),
    ("io_sg_from_iter", Rule::Is(Bucket::Zerocopy)),
    // Helpers: whoever called them decides.
    ("_raw_spin", Rule::Helper),
    ("_raw_read", Rule::Helper),
    ("_raw_write", Rule::Helper),
    ("__pv_queued_spin", Rule::Helper),
    ("native_queued_spin", Rule::Helper),
    ("queued_spin", Rule::Helper),
    ("lock_sock", Rule::Helper),
    ("release_sock", Rule::Helper),
    ("__release_sock", Rule::Helper),
    ("mutex_", Rule::Helper),
    ("__mutex", Rule::Helper),
    ("kmem_cache", Rule::Helper),
    ("__kmalloc", Rule::Helper),
    ("kmalloc", Rule::Helper),
    ("kfree", Rule::Helper),
    ("__kfree", Rule::Helper),
    ("kmalloc_reserve", Rule::Helper),
    ("__slab", Rule::Helper),
    ("slab_", Rule::Helper),
    ("___slab", Rule::Helper),
    ("alloc_pages", Rule::Helper),
    ("__alloc_pages", Rule::Helper),
    ("__alloc_frozen", Rule::Helper),
    ("get_page_from_freelist", Rule::Helper),
    ("free_unref", Rule::Helper),
    ("__free_pages", Rule::Helper),
    ("__free_frozen", Rule::Helper),
    ("free_frozen", Rule::Helper),
    ("__folio_put", Rule::Helper),
    ("folio_", Rule::Helper),
    ("__put_page", Rule::Helper),
    ("put_page", Rule::Helper),
    ("page_frag", Rule::Helper),
    ("__page_frag", Rule::Helper),
    ("rmqueue", Rule::Helper),
    ("__rmqueue", Rule::Helper),
    ("__get_pfnblock", Rule::Helper),
    ("memset", Rule::Helper),
    ("__memset", Rule::Helper),
    ("__check_object_size", Rule::Helper),
    ("check_heap_object", Rule::Helper),
    ("__virt_addr_valid", Rule::Helper),
    ("__check_heap_object", Rule::Helper),
    ("refcount_", Rule::Helper),
    ("__refcount", Rule::Helper),
    ("rcu_", Rule::Helper),
    ("__rcu", Rule::Helper),
    ("__list_", Rule::Helper),
    ("list_", Rule::Helper),
    ("read_tsc", Rule::Helper),
    ("ktime_get", Rule::Helper),
    ("__x86_indirect", Rule::Helper),
    ("__x86_return", Rule::Helper),
    ("srso_", Rule::Helper),
    ("preempt_", Rule::Helper),
    ("__preempt", Rule::Helper),
    ("fput", Rule::Helper),
    ("__fput", Rule::Helper),
    ("fget", Rule::Helper),
    ("__fget", Rule::Helper),
    ("fdget", Rule::Helper),
    ("__fdget", Rule::Helper),
    ("mod_memcg", Rule::Helper),
    ("__mod_memcg", Rule::Helper),
    ("memcg_", Rule::Helper),
    ("__memcg", Rule::Helper),
    ("mem_cgroup", Rule::Helper),
    ("__mem_cgroup", Rule::Helper),
    ("obj_cgroup", Rule::Helper),
    ("__local_bh_enable", Rule::Helper),
    ("local_bh_enable", Rule::Helper),
    ("__cond_resched", Rule::Helper),
    ("__skb_datagram_iter", Rule::Helper),
    ("skb_release", Rule::Helper),
    ("skb_free", Rule::Helper),
    ("__kfree_skb", Rule::Helper),
    ("kfree_skb", Rule::Helper),
    ("consume_skb", Rule::Helper),
    ("__consume_stateless", Rule::Helper),
    ("napi_consume", Rule::Helper),
    ("skb_attempt_defer", Rule::Helper),
    ("skb_defer", Rule::Helper),
    ("__build_skb", Rule::Helper),
    ("__alloc_skb", Rule::Helper),
    ("alloc_skb", Rule::Helper),
    ("skb_clone", Rule::Helper),
    ("__skb_clone", Rule::Helper),
    ("skb_put", Rule::Helper),
    ("skb_push", Rule::Helper),
    ("pskb_", Rule::Helper),
    ("__pskb", Rule::Helper),
    // Softirq machinery before the layers it runs (a sample here is its own frame).
    ("handle_softirqs", Rule::Is(Bucket::Softirq)),
    ("__do_softirq", Rule::Is(Bucket::Softirq)),
    ("do_softirq", Rule::Is(Bucket::Softirq)),
    ("net_rx_action", Rule::Is(Bucket::Softirq)),
    ("__napi_poll", Rule::Is(Bucket::Softirq)),
    ("napi_", Rule::Is(Bucket::Softirq)),
    ("process_backlog", Rule::Is(Bucket::Softirq)),
    ("irq_exit", Rule::Is(Bucket::Softirq)),
    ("__irq_exit", Rule::Is(Bucket::Softirq)),
    ("run_ksoftirqd", Rule::Is(Bucket::Softirq)),
    ("__raise_softirq", Rule::Is(Bucket::Softirq)),
    ("raise_softirq", Rule::Is(Bucket::Softirq)),
    // TCP.
    ("tcp", Rule::Is(Bucket::Tcp)),
    ("__tcp", Rule::Is(Bucket::Tcp)),
    ("inet_csk", Rule::Is(Bucket::Tcp)),
    ("__inet_lookup", Rule::Is(Bucket::Tcp)),
    ("inet_lookup", Rule::Is(Bucket::Tcp)),
    ("inet_ehash", Rule::Is(Bucket::Tcp)),
    ("inet_sendmsg", Rule::Is(Bucket::Tcp)),
    ("inet_recvmsg", Rule::Is(Bucket::Tcp)),
    ("inet6_", Rule::Is(Bucket::Tcp)),
    ("sk_stream", Rule::Is(Bucket::Tcp)),
    ("sk_forced_mem", Rule::Is(Bucket::Tcp)),
    ("__sk_mem", Rule::Is(Bucket::Tcp)),
    ("sk_mem", Rule::Is(Bucket::Tcp)),
    ("sk_reset_timer", Rule::Is(Bucket::Tcp)),
    ("sk_page_frag", Rule::Is(Bucket::Tcp)),
    ("sock_def_readable", Rule::Is(Bucket::Tcp)),
    ("sock_rfree", Rule::Is(Bucket::Tcp)),
    ("sock_wfree", Rule::Is(Bucket::Tcp)),
    ("skb_entail", Rule::Is(Bucket::Tcp)),
    ("sk_filter", Rule::Is(Bucket::Tcp)),
    ("bpf_skops", Rule::Is(Bucket::Tcp)),
    ("__sk_dst", Rule::Is(Bucket::Tcp)),
    ("__sk_flush", Rule::Is(Bucket::Tcp)),
    // IP and the device layer.
    ("ip_", Rule::Is(Bucket::IpDev)),
    ("__ip_", Rule::Is(Bucket::IpDev)),
    ("ip4_", Rule::Is(Bucket::IpDev)),
    ("ipv4_", Rule::Is(Bucket::IpDev)),
    ("raw_local_deliver", Rule::Is(Bucket::IpDev)),
    ("dev_", Rule::Is(Bucket::IpDev)),
    ("__dev_", Rule::Is(Bucket::IpDev)),
    ("netif_", Rule::Is(Bucket::IpDev)),
    ("__netif_", Rule::Is(Bucket::IpDev)),
    ("netdev_", Rule::Is(Bucket::IpDev)),
    ("net_dev", Rule::Is(Bucket::IpDev)),
    ("loopback_", Rule::Is(Bucket::IpDev)),
    ("veth_", Rule::Is(Bucket::IpDev)),
    ("neigh_", Rule::Is(Bucket::IpDev)),
    ("dst_", Rule::Is(Bucket::IpDev)),
    ("nf_", Rule::Is(Bucket::IpDev)),
    ("nft_", Rule::Is(Bucket::IpDev)),
    ("sch_", Rule::Is(Bucket::IpDev)),
    ("qdisc_", Rule::Is(Bucket::IpDev)),
    ("__qdisc", Rule::Is(Bucket::IpDev)),
    ("pfifo", Rule::Is(Bucket::IpDev)),
    ("fq_codel", Rule::Is(Bucket::IpDev)),
    ("validate_xmit", Rule::Is(Bucket::IpDev)),
    ("eth_", Rule::Is(Bucket::IpDev)),
    ("skb_csum", Rule::Is(Bucket::IpDev)),
    ("__skb_checksum", Rule::Is(Bucket::IpDev)),
    ("skb_checksum", Rule::Is(Bucket::IpDev)),
    ("csum_", Rule::Is(Bucket::IpDev)),
    ("enqueue_to_backlog", Rule::Is(Bucket::IpDev)),
    ("rps_", Rule::Is(Bucket::IpDev)),
    ("__skb_gro", Rule::Is(Bucket::IpDev)),
    ("gro_", Rule::Is(Bucket::IpDev)),
    ("inet_gro", Rule::Is(Bucket::IpDev)),
    ("skb_network", Rule::Is(Bucket::IpDev)),
    // io_uring.
    ("io_", Rule::Is(Bucket::IoUring)),
    ("__io_", Rule::Is(Bucket::IoUring)),
    ("tctx_task_work", Rule::Is(Bucket::IoUring)),
    ("__do_sys_io_uring", Rule::Is(Bucket::IoUring)),
    ("__x64_sys_io_uring", Rule::Is(Bucket::IoUring)),
    ("task_work_run", Rule::Is(Bucket::IoUring)),
    // Scheduling and waiting.
    ("schedule", Rule::Is(Bucket::Sched)),
    ("__schedule", Rule::Is(Bucket::Sched)),
    ("finish_task_switch", Rule::Is(Bucket::Sched)),
    ("pick_next", Rule::Is(Bucket::Sched)),
    ("__pick_next", Rule::Is(Bucket::Sched)),
    ("try_to_wake_up", Rule::Is(Bucket::Sched)),
    ("ttwu_", Rule::Is(Bucket::Sched)),
    ("wake_up", Rule::Is(Bucket::Sched)),
    ("__wake_up", Rule::Is(Bucket::Sched)),
    ("autoremove_wake", Rule::Is(Bucket::Sched)),
    ("default_wake", Rule::Is(Bucket::Sched)),
    ("woken_wake", Rule::Is(Bucket::Sched)),
    ("wait_woken", Rule::Is(Bucket::Sched)),
    ("prepare_to_wait", Rule::Is(Bucket::Sched)),
    ("finish_wait", Rule::Is(Bucket::Sched)),
    ("sk_wait", Rule::Is(Bucket::Sched)),
    ("enqueue_", Rule::Is(Bucket::Sched)),
    ("dequeue_", Rule::Is(Bucket::Sched)),
    ("update_curr", Rule::Is(Bucket::Sched)),
    ("update_load", Rule::Is(Bucket::Sched)),
    ("update_rq", Rule::Is(Bucket::Sched)),
    ("__update_load", Rule::Is(Bucket::Sched)),
    ("select_task_rq", Rule::Is(Bucket::Sched)),
    ("set_next_entity", Rule::Is(Bucket::Sched)),
    ("put_prev", Rule::Is(Bucket::Sched)),
    ("psi_", Rule::Is(Bucket::Sched)),
    ("hrtimer", Rule::Is(Bucket::Sched)),
    ("__hrtimer", Rule::Is(Bucket::Sched)),
    ("tick_", Rule::Is(Bucket::Sched)),
    ("do_idle", Rule::Is(Bucket::Sched)),
    ("cpuidle", Rule::Is(Bucket::Sched)),
    ("default_idle", Rule::Is(Bucket::Sched)),
    ("pv_native_safe_halt", Rule::Is(Bucket::Sched)),
    ("do_nanosleep", Rule::Is(Bucket::Sched)),
    ("do_epoll", Rule::Is(Bucket::Sched)),
    ("do_sys_poll", Rule::Is(Bucket::Sched)),
    ("do_poll", Rule::Is(Bucket::Sched)),
    ("sched_", Rule::Is(Bucket::Sched)),
    ("__sched", Rule::Is(Bucket::Sched)),
    // System call entry and exit, the socket layer's dispatch.
    ("entry_SYSCALL", Rule::Is(Bucket::Syscall)),
    ("do_syscall", Rule::Is(Bucket::Syscall)),
    ("x64_sys_call", Rule::Is(Bucket::Syscall)),
    ("syscall_", Rule::Is(Bucket::Syscall)),
    ("exit_to_user", Rule::Is(Bucket::Syscall)),
    ("__x64_sys_", Rule::Is(Bucket::Syscall)),
    ("__se_sys", Rule::Is(Bucket::Syscall)),
    ("__do_sys", Rule::Is(Bucket::Syscall)),
    ("__sys_", Rule::Is(Bucket::Syscall)),
    ("___sys_", Rule::Is(Bucket::Syscall)),
    ("____sys_", Rule::Is(Bucket::Syscall)),
    ("sock_sendmsg", Rule::Is(Bucket::Syscall)),
    ("__sock_sendmsg", Rule::Is(Bucket::Syscall)),
    ("sock_recvmsg", Rule::Is(Bucket::Syscall)),
    ("sockfd_lookup", Rule::Is(Bucket::Syscall)),
    ("security_socket", Rule::Is(Bucket::Syscall)),
    ("copy_msghdr", Rule::Is(Bucket::Syscall)),
    ("__copy_msghdr", Rule::Is(Bucket::Syscall)),
    ("import_iovec", Rule::Is(Bucket::Syscall)),
    ("__import_iovec", Rule::Is(Bucket::Syscall)),
    ("iovec_from_user", Rule::Is(Bucket::Syscall)),
    ("move_addr_to", Rule::Is(Bucket::Syscall)),
    ("__put_user", Rule::Is(Bucket::Syscall)),
    ("__get_user", Rule::Is(Bucket::Syscall)),
];

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
        assert_eq!(u("sendpath_core::wire::parse::Parser::feed"), Bucket::Other);
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
