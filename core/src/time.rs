//! CLOCK_MONOTONIC in nanoseconds: the clock of every timestamp on the wire.
//!
//! CLOCK_MONOTONIC is shared by all processes and network namespaces of one host, so a send
//! timestamp taken by the sender and a receive time taken by the receiver are comparable when
//! both run on one host (the only case where one-way latency is meaningful).

/// Nanoseconds.
pub type Nanos = u64;

/// Current CLOCK_MONOTONIC time in nanoseconds (vDSO, ~17 ns here).
#[inline]
pub fn mono_ns() -> Nanos {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Seconds (fractions allowed) to nanoseconds.
pub fn secs_to_ns(s: f64) -> Nanos {
    (s * 1e9).round() as Nanos
}

/// Sleeps until the monotonic clock reaches `deadline`.
pub fn sleep_until(deadline: Nanos) {
    let now = mono_ns();
    if deadline > now {
        std::thread::sleep(std::time::Duration::from_nanos(deadline - now));
    }
}
