//! CLOCK_MONOTONIC in nanoseconds: the clock of every timestamp on the wire.
//!
//! CLOCK_MONOTONIC is shared by all processes and network namespaces of one host, so a send
//! timestamp taken by the sender and a receive time taken by the receiver are comparable when
//! both run on one host (the only case where one-way latency is meaningful).

//!
//! The hot paths (a send timestamp per message, a receive time per read) use [`now_ns`]: on
//! x86_64 with an invariant TSC that the kernel itself uses as its clocksource, it reads the
//! TSC (about 14 ns in this VM, against 33 ns for `clock_gettime`) and maps it onto
//! CLOCK_MONOTONIC with a calibration taken once per process ([`calibrate`]). Both ends of an
//! in-process run share that mapping, so their difference is exact; between two processes the
//! mappings can disagree by the calibration error (about 1e-6 of the time since calibration,
//! a few microseconds over a 10 s run). Elsewhere [`now_ns`] is [`mono_ns`].

use std::sync::OnceLock;

/// Nanoseconds.
pub type Nanos = u64;

/// TSC ticks mapped onto CLOCK_MONOTONIC: `ns = mono0 + (tsc - tsc0) * mult >> 32`.
#[derive(Clone, Copy, Debug)]
struct TscMap {
    tsc0: u64,
    mono0: u64,
    mult: u64,
}

static TSC: OnceLock<Option<TscMap>> = OnceLock::new();

#[cfg(target_arch = "x86_64")]
#[inline]
fn rdtsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU and has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn rdtsc() -> u64 {
    0
}

/// The TSC is usable only if it is invariant and the kernel trusts it as its clocksource.
fn tsc_trusted() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has = |f: &str| {
        flags
            .lines()
            .filter(|l| l.starts_with("flags"))
            .all(|l| l.split_whitespace().any(|x| x == f))
    };
    let source =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .unwrap_or_default();
    has("constant_tsc") && has("nonstop_tsc") && source.trim() == "tsc"
}

/// One (tsc, mono) pair read as close together as possible (the tightest of a few tries).
fn pair() -> (u64, u64) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..16 {
        let a = rdtsc();
        let m = mono_ns();
        let b = rdtsc();
        if b.wrapping_sub(a) < best.0 {
            best = (b.wrapping_sub(a), a / 2 + b / 2, m);
        }
    }
    (best.1, best.2)
}

/// Calibrates the TSC mapping (about 50 ms, once per process; later calls return at once).
/// Call it before the measured work starts so the first [`now_ns`] does not pay for it.
pub fn calibrate() {
    TSC.get_or_init(|| {
        if !tsc_trusted() {
            return None;
        }
        let (t0, m0) = pair();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (t1, m1) = pair();
        let (dt, dm) = (t1.wrapping_sub(t0), m1.saturating_sub(m0));
        if dt == 0 || dm == 0 {
            return None;
        }
        Some(TscMap {
            tsc0: t1,
            mono0: m1,
            mult: ((dm as u128) << 32).checked_div(dt as u128)? as u64,
        })
    });
}

/// Fast CLOCK_MONOTONIC in nanoseconds for per-message timestamps (see the module docs).
#[inline]
pub fn now_ns() -> Nanos {
    match TSC.get() {
        Some(Some(m)) => {
            let d = rdtsc().wrapping_sub(m.tsc0);
            m.mono0 + ((d as u128 * m.mult as u128) >> 32) as u64
        }
        Some(None) => mono_ns(),
        None => {
            calibrate();
            now_ns()
        }
    }
}

/// Current CLOCK_MONOTONIC time in nanoseconds (vDSO, ~17-33 ns here).
#[inline]
pub fn mono_ns() -> Nanos {
    // CLOCK_MONOTONIC always exists on Linux.
    let ts =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// Seconds (fractions allowed) to nanoseconds.
pub fn secs_to_ns(s: f64) -> Nanos {
    (s * 1e9).round() as Nanos
}

/// Waits until [`now_ns`] reaches `deadline`: sleeps while it is far, spins for the last
/// 200 us (a sleep overshoots by tens of microseconds, too much for a paced sender).
pub fn wait_until(deadline: Nanos) {
    const SPIN_NS: u64 = 200_000;
    loop {
        let now = now_ns();
        if now >= deadline {
            return;
        }
        let left = deadline - now;
        if left > SPIN_NS {
            std::thread::sleep(std::time::Duration::from_nanos(left - SPIN_NS / 2));
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_clock_tracks_clock_monotonic() {
        calibrate();
        for _ in 0..5 {
            let a = mono_ns();
            let f = now_ns();
            let b = mono_ns();
            // Within the bracket, allowing a few microseconds of calibration error.
            assert!(f + 20_000 >= a && f <= b + 20_000, "{a} {f} {b}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let x = now_ns();
        let y = now_ns();
        assert!(y >= x, "monotonic");
    }
}
