//! How fast the host is running right now: a fixed arithmetic loop timed on the CPU a cell is
//! measured on, just before its flows start and just after they end.
//!
//! Why: on a shared host (a cloud VM) the CPU's speed for busy code moves with what other
//! tenants run on the same physical core. Measured on the 2-vCPU VM this project is built on:
//! a 10 ms version of this probe took 9.8 ms in one stretch and 15-17 ms in the next (a 1.7x swing lasting from
//! seconds to minutes), and the throughput of back-to-back repetitions of one loopback cell
//! followed it (Pearson r = -0.85 between probe time and A1 16 KiB throughput over 24
//! repetitions), while a latency-bound loop of dependent multiplies barely moved (CV 1.2%): the
//! swing is contention for the core's execution units, not a clock change, and no setting of
//! ours removes it. The record keeps the probe so the analysis can say how much of a cell's
//! scatter the host explains, instead of leaving it to guesswork.
//!
//! The probe is outside the measured window (warm-up and window come between its two runs) and
//! costs about 3 ms per repetition (two probes of three 0.5 ms runs) where the window is 300 ms
//! or more.

use crate::error::Result;
use std::hint::black_box;
use std::time::Instant;

/// Names the probe's workload in the record, so that probes of different workloads are never
/// compared: six independent integer chains, `PROBE_ITERATIONS` steps, best of `PROBE_RUNS`.
pub const PROBE_NAME: &str = "alu6x500k-best3";
/// Loop iterations per run of the probe (about 0.5 ms on a current x86 core).
const PROBE_ITERATIONS: u64 = 500_000;
/// Runs per probe; the fastest counts, so an interrupt or a preemption in one run does not.
const PROBE_RUNS: usize = 3;

/// One run of the workload: six independent chains keep a wide core's integer units busy,
/// which is what a sibling hyperthread's load takes away (a single dependent chain would not
/// notice it). `black_box` on the inputs and the result keeps the compiler from folding the
/// loop; the chains themselves have no closed form it could use.
fn workload(iterations: u64) -> u64 {
    let (mut a, mut b, mut c) = black_box((1u64, 2u64, 3u64));
    let (mut d, mut e, mut f) = black_box((4u64, 5u64, 6u64));
    for _ in 0..black_box(iterations) {
        a = a.wrapping_mul(3).wrapping_add(1);
        b = b.wrapping_mul(5).wrapping_add(3);
        c = c.wrapping_mul(7).wrapping_add(5);
        d = d.wrapping_mul(9).wrapping_add(7);
        e ^= e << 1;
        f = f.wrapping_add(f >> 3);
    }
    black_box(a ^ b ^ c ^ d ^ e ^ f)
}

/// Nanoseconds the probe took on the calling thread (the fastest of its runs).
pub fn probe_ns() -> u64 {
    (0..PROBE_RUNS)
        .map(|_| {
            let t = Instant::now();
            workload(PROBE_ITERATIONS);
            t.elapsed().as_nanos() as u64
        })
        .min()
        .unwrap_or(0)
        .max(1)
}

/// Runs the probe on `cpu` (a thread pinned there), or on the calling thread when `None`.
pub fn probe_on(cpu: Option<usize>) -> Result<u64> {
    run_on(cpu, probe_ns)
}

/// Runs `f` on `cpu` (a thread pinned there), or on the calling thread when `None`.
fn run_on<T: Send + 'static>(
    cpu: Option<usize>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    match cpu {
        None => Ok(f()),
        Some(cpu) => std::thread::Builder::new()
            .name("speed-probe".into())
            .spawn(move || crate::affinity::pin_current(cpu).map(|_| f()))
            .map_err(|e| crate::error::Error::io("spawn the speed probe thread", e))?
            .join()
            .unwrap_or_else(|_| {
                Err(crate::error::Error::Internal(
                    "the speed probe panicked".into(),
                ))
            }),
    }
}

/// Most bytes one timing of [`memcpy_ns_per_byte`] copies (about a millisecond's worth).
const MEMCPY_BYTES_PER_RUN: usize = 4 << 20;

/// This host's memcpy speed at `size` bytes a copy, nanoseconds per byte: `size`-byte copies
/// between two buffers that stay in cache when they fit (as a sender's staging copy does),
/// repeated over about 4 MiB, best of three. What a copy bucket of `--profile` is compared
/// with: a copy path costing about this per byte is bound by memcpy itself.
///
/// Both buffers start on a page, as the send paths' own buffers do. That matters: on this
/// project's AMD EPYC VM, glibc 2.36 copies 2 KiB..64 KiB with `rep movsb`, which runs about
/// 20 times slower (0.50 against 0.024 ns/B at 64 KiB) when the destination sits a few bytes
/// past the source modulo 4 KiB, as two back-to-back heap blocks do; a probe on such buffers
/// measured the aliasing, not memcpy.
pub fn memcpy_ns_per_byte(size: usize) -> f64 {
    let size = size.max(1);
    let span = size.next_multiple_of(PAGE);
    let mut arena = vec![0xA5u8; 2 * span + PAGE];
    let start = arena.as_ptr().align_offset(PAGE).min(PAGE);
    let (src, dst) = arena[start..start + 2 * span].split_at_mut(span);
    let (src, dst) = (&src[..size], &mut dst[..size]);
    let reps = (MEMCPY_BYTES_PER_RUN / size).max(1);
    let best = (0..3)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                dst.copy_from_slice(black_box(src));
                black_box(&mut *dst);
            }
            t.elapsed().as_nanos() as f64
        })
        .fold(f64::INFINITY, f64::min);
    best / (reps * size) as f64
}

/// The page size the memcpy probe aligns its buffers to.
const PAGE: usize = 4096;

/// [`memcpy_ns_per_byte`] on `cpu`.
pub fn memcpy_on(cpu: Option<usize>, size: usize) -> Result<f64> {
    run_on(cpu, move || memcpy_ns_per_byte(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_does_work_that_scales_with_its_iterations() {
        // Not a timing claim: a loop the compiler had folded would take the same (near-zero)
        // time for any count. 50x the iterations must take clearly longer than 1x.
        let time = |n| {
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    workload(n);
                    t.elapsed().as_nanos()
                })
                .min()
                .unwrap()
        };
        let (short, long) = (time(20_000), time(1_000_000));
        assert!(
            long > 10 * short,
            "1M iterations {long} ns vs 20k {short} ns"
        );
        assert!(probe_ns() > 1);
    }

    #[test]
    fn memcpy_is_timed_per_byte() {
        let (small, large) = (memcpy_ns_per_byte(64), memcpy_ns_per_byte(1 << 20));
        assert!(small > 0.0 && small < 100.0, "{small}");
        assert!(large > 0.0 && large < 100.0, "{large}");
        assert!(memcpy_on(Some(100_000), 64).is_err());
    }

    #[test]
    fn a_pinned_probe_runs_on_an_allowed_cpu_and_refuses_a_missing_one() {
        let cpu = crate::affinity::allowed_cpus().unwrap()[0];
        assert!(probe_on(Some(cpu)).unwrap() > 1);
        assert!(probe_on(Some(100_000)).is_err());
    }
}
