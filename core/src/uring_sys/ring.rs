//! Making, entering and describing a ring.

use crate::error::{Error, Result};
use io_uring::{cqueue, squeue, types, IoUring};
use std::io;
use std::time::Duration;

/// Longest single wait inside `io_uring_enter`, so the loop can check its deadlines.
pub const WAIT_SLICE: Duration = Duration::from_millis(200);

/// Why io_uring cannot be used here, from the setup errno (and `kernel.io_uring_disabled`).
pub fn unavailable(e: &io::Error) -> Error {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| format!("kernel.io_uring_disabled = {}", s.trim()))
        .unwrap_or_else(|_| "kernel.io_uring_disabled not present".into());
    let why = match e.raw_os_error() {
        Some(libc::EPERM) => "io_uring_setup was refused (EPERM): disabled by sysctl, or blocked by a seccomp profile",
        Some(libc::ENOSYS) => "io_uring_setup does not exist (ENOSYS): kernel built without io_uring, or a sandbox hides it",
        _ => "io_uring_setup failed",
    };
    Error::Unsupported(format!("io_uring unavailable: {why} ({disabled}; {e})"))
}

/// `io_uring_enter`: submits, and waits for `want` completions at most as long as `args`'
/// timeout. A timeout, a signal or a full CQ is no error: the callers loop and check their
/// own deadlines.
pub fn enter(
    submitter: &io_uring::Submitter<'_>,
    want: usize,
    args: &types::SubmitArgs<'_, '_>,
) -> io::Result<()> {
    match submitter.submit_with_args(want, args) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// A ring and how it was set up.
pub struct Ring {
    pub ring: IoUring,
    /// Setup flags the kernel accepted.
    pub flags: Vec<String>,
    /// The ring fd is registered (`IORING_ENTER_REGISTERED_RING`: no fd lookup per enter).
    pub registered_ring_fd: bool,
}

/// Makes a ring with the fastest setup this kernel accepts: SINGLE_ISSUER + DEFER_TASKRUN
/// (measured 1.10x blocking sends at 64 B; a default ring 0.75x), dropping flags on EINVAL.
pub fn make_ring(sq: u32, cq: u32) -> Result<Ring> {
    type B = io_uring::Builder<squeue::Entry, cqueue::Entry>;
    type Tier = (&'static [&'static str], fn(&mut B));
    let tiers: [Tier; 4] = [
        (&["single_issuer", "defer_taskrun", "submit_all"], |b| {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_submit_all();
        }),
        (&["single_issuer", "coop_taskrun", "submit_all"], |b| {
            b.setup_single_issuer()
                .setup_coop_taskrun()
                .setup_submit_all();
        }),
        (&["coop_taskrun"], |b| {
            b.setup_coop_taskrun();
        }),
        (&[], |_| {}),
    ];
    let mut last = None;
    for (names, apply) in tiers {
        let mut b = IoUring::<squeue::Entry, cqueue::Entry>::builder();
        b.setup_clamp().setup_cqsize(cq);
        apply(&mut b);
        match b.build(sq) {
            Ok(ring) => {
                return Ok(Ring {
                    ring,
                    flags: names.iter().map(|s| s.to_string()).collect(),
                    registered_ring_fd: false,
                })
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)) => {
                return Err(unavailable(&e))
            }
            Err(e) => return Err(Error::io("io_uring_setup", e)),
        }
    }
    Err(Error::io(
        "io_uring_setup refused every flag set, even none",
        last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)),
    ))
}
