//! What this kernel's io_uring can do.

use super::ring::unavailable;
use io_uring::{cqueue, opcode, squeue, IoUring, Probe};

/// The opcodes sendpath uses, by the names the host facts list.
pub fn known_ops() -> [(&'static str, u8); 6] {
    [
        ("send", opcode::Send::CODE),
        ("sendmsg", opcode::SendMsg::CODE),
        ("send_zc", opcode::SendZc::CODE),
        ("sendmsg_zc", opcode::SendMsgZc::CODE),
        ("recv", opcode::Recv::CODE),
        ("recvmsg", opcode::RecvMsg::CODE),
    ]
}

/// Probes io_uring once: the supported opcodes sendpath knows, or why io_uring is unusable.
pub fn probe_ops() -> std::result::Result<Vec<String>, String> {
    let ring: IoUring = IoUring::<squeue::Entry, cqueue::Entry>::builder()
        .build(2)
        .map_err(|e| unavailable(&e).to_string())?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("io_uring probe failed: {e}"))?;
    Ok(known_ops()
        .iter()
        .filter(|(_, c)| probe.is_supported(*c))
        .map(|(n, _)| n.to_string())
        .collect())
}

/// Why this kernel cannot send bundles (`--uring-ordering bundle`), or None if it can.
pub fn bundle_missing() -> Option<String> {
    let ring: IoUring = match IoUring::<squeue::Entry, cqueue::Entry>::builder().build(2) {
        Ok(r) => r,
        Err(e) => return Some(unavailable(&e).to_string()),
    };
    (!ring.params().is_feature_recvsend_bundle()).then(|| {
        "this kernel's io_uring has no send bundles (IORING_FEAT_RECVSEND_BUNDLE, Linux 6.10)"
            .to_string()
    })
}
