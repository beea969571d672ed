//! `--profile [HZ]`: where each side's CPU goes over the measured window, by sampling its
//! worker threads. This VM has no hardware counters, but a software clock samples anywhere:
//! each worker thread opens a sampler on its own `task-clock` (perf_event_open through
//! perf-event2, kernel and user instruction pointers with the kernel's call chain) when its
//! window opens and reads it when the window closes; the samples are named ([`symbols`]) and
//! put in one of the named [`Bucket`]s there ([`classify`]), outside the window, so what crosses the wire and
//! into the record is a table of times, not addresses.
//!
//! Each sample weighs the thread's task clock since the sample before it (the clock's value
//! comes with every sample): in a VM the sampling timer's interrupt is often late, and a late
//! sample stands for more than one period (counting samples x period measured 65% of the
//! task clock here). The weights add up to the thread's task clock over the window (the
//! record keeps both, and the tests check they agree). `task-clock` rather than `cpu-clock`:
//! the latter also counts the context switches themselves, 2-3 us each (a receiver switching
//! 15,000 times a second read 9-25% over its task clock). Softirq work done in the thread's
//! context (on loopback, the receive path runs in the sender's) counts for the thread, as its
//! task clock does; work ksoftirqd does is neither side's.
//!
//! Where the kernel refuses the sampler or hides its symbols, one line says so (once per
//! process) and the run goes on without a profile.

pub mod classify;
pub mod symbols;
mod table;

use sendpath_record::end_v1::{SideProfile, Weight};
use sendpath_record::profile_v1::Bucket;

use perf_event::data::Record as Data;
use perf_event::events::Software;
use perf_event::{Builder, SampleFlag};
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// Environment variable that makes the sampler act as refused, in builds with the
/// `test-hooks` feature (the tests turn it on; release builds ignore the variable).
pub const REFUSED_ENV: &str = "SENDPATH_TEST_NO_PROFILE";
/// What a profiled run does before anything is timed: once per process, the check that the
/// kernel shows its symbols and the symbolizer's reading of them (~80 ms of /proc/kallsyms,
/// and more under load: inside a first window or its short warm-up, it held a receiver off
/// its socket long enough to starve the window). `hz` None: nothing.
pub fn prepare(hz: Option<u32>) {
    static DONE: OnceLock<()> = OnceLock::new();
    if hz.is_some() {
        DONE.get_or_init(symbols::warm_up);
    }
}

/// Samples per second unless asked otherwise (`--profile` bare).
pub const DEFAULT_HZ: u32 = 1000;
/// The sampling rates `--profile` accepts.
pub const HZ_RANGE: std::ops::RangeInclusive<u32> = 10..=20_000;
/// Kernel frames kept per sample: enough to reach the syscall or softirq entry.
const MAX_STACK: u16 = 48;
/// Bytes one sample takes in the ring: header, ip, tid, a chain of [`MAX_STACK`] frames.
const SAMPLE_BYTES: usize = 8 + 8 + 8 + 8 + 8 * (MAX_STACK as usize + 2);
/// The ring buffer of one thread's sampler, bounds: a long window at a high rate loses
/// samples (counted) rather than holding more.
const MIN_RING: usize = 64 << 10;
/// See `MIN_RING`.
pub const MAX_RING: usize = 4 << 20;

/// The ring buffer a thread's sampler maps for a window of `window_s` at `hz` (a power of two,
/// room for every sample plus a fifth).
pub fn ring_bytes(hz: u32, window_s: f64) -> usize {
    let samples = (f64::from(hz) * window_s * 1.2).ceil().max(1.0) as usize;
    samples
        .saturating_mul(SAMPLE_BYTES)
        .clamp(MIN_RING, MAX_RING)
        .next_power_of_two()
}

/// Says once per process why there is no profile.
fn warn_once(why: &str) {
    static SAID: OnceLock<()> = OnceLock::new();
    if SAID.set(()).is_ok() {
        eprintln!("warning: no CPU profile: {why}; the run goes on without one");
    }
}

/// The sampler of the calling thread over its window.
pub struct ThreadSampler {
    sampler: perf_event::Sampler,
    period_ns: u64,
}

impl std::fmt::Debug for ThreadSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ThreadSampler({} ns)", self.period_ns)
    }
}

impl ThreadSampler {
    /// Starts sampling the calling thread at `hz` for a window of `window_s`; None (after one
    /// line, once per process) when the kernel refuses or hides its symbols.
    pub fn start(hz: u32, window_s: f64) -> Option<ThreadSampler> {
        match Self::open(hz, window_s) {
            Ok(s) => Some(s),
            Err(why) => {
                warn_once(&why);
                None
            }
        }
    }

    fn open(hz: u32, window_s: f64) -> Result<ThreadSampler, String> {
        if cfg!(feature = "test-hooks") && std::env::var_os(REFUSED_ENV).is_some() {
            return Err(format!(
                "the kernel refused a task-clock sampler ({REFUSED_ENV} is set)"
            ));
        }
        if let Some(why) = symbols::kernel_hidden() {
            return Err(why);
        }
        let period_ns = 1_000_000_000 / u64::from(hz.max(1));
        let mut sampler = Builder::new(Software::TASK_CLOCK)
            .observe_self()
            .any_cpu()
            .sample_period(period_ns)
            .sample(SampleFlag::IP | SampleFlag::TID | SampleFlag::CALLCHAIN | SampleFlag::READ)
            .exclude_kernel(false)
            .exclude_hv(true)
            // (Asked for although only the leaf of a user sample is used: with no user chain
            // at all a user sample's callchain is empty, which perf-event-data 0.1.8 fails
            // to parse.)
            .exclude_callchain_user(false)
            .sample_max_stack(MAX_STACK)
            .enabled(false)
            .build()
            .and_then(|c| c.sampled(ring_bytes(hz, window_s)))
            .map_err(|e| format!("the kernel refused a task-clock sampler with kernel addresses ({e}; kernel.perf_event_paranoid, or too little privilege)"))?;
        sampler
            .enable()
            .map_err(|e| format!("the task-clock sampler would not start: {e}"))?;
        Ok(ThreadSampler { sampler, period_ns })
    }

    /// Stops sampling and turns the samples into the thread's profile: each sample named and
    /// put in its bucket.
    pub fn finish(mut self) -> SideProfile {
        let _ = self.sampler.disable();
        // The sampler's own clock over its life: the samples' weights add up to it, less the
        // last partial period.
        let clock_ns = self.sampler.read().unwrap_or(0);
        let mut chains: Vec<(Vec<u64>, u64)> = Vec::new();
        let mut lost = 0;
        // The CPU clock's count (on-CPU ns) when each sample was taken: a late timer
        // interrupt (common in a VM) stands for more time than a period, so each sample weighs
        // the time since the one before it, and the weights add up to the task clock.
        let mut last_count = 0u64;
        while let Some(rec) = self.sampler.next_record() {
            match rec.parse_record() {
                Ok(Data::Sample(s)) => {
                    let count = s
                        .values()
                        .and_then(|g| g.get(0))
                        .map_or(last_count + self.period_ns, |e| e.value());
                    let weight = count.saturating_sub(last_count);
                    last_count = count;
                    // The kernel part of the chain, leaf first; a sample in user space has
                    // none, and its leaf alone counts (user frames without frame pointers
                    // are not worth trusting).
                    let mut chain = kernel_frames(s.callchain().unwrap_or(&[]));
                    if chain.is_empty() {
                        chain.extend(s.ip());
                    }
                    chains.push((chain, weight));
                }
                Ok(Data::Lost(l)) => lost += l.lost,
                // (Its time goes to the next sample, whose weight is the clock since this
                // one's: nothing is lost from the total.)
                Err(_) => lost += 1,
                _ => {}
            }
        }
        let mut p = SideProfile {
            period_ns: self.period_ns,
            clock_ns,
            lost,
            ..SideProfile::default()
        };
        add_chains(&mut p, &chains);
        p
    }
}

/// Call-chain entries at or above this are context markers, not addresses.
const PERF_CONTEXT_MAX: u64 = (-4095i64) as u64;
/// The marker before a chain's kernel frames.
const PERF_CONTEXT_KERNEL: u64 = (-128i64) as u64;

/// The kernel frames of a sample's call chain (between its kernel marker and the next one).
fn kernel_frames(chain: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut in_kernel = false;
    for &a in chain {
        if a >= PERF_CONTEXT_MAX {
            in_kernel = a == PERF_CONTEXT_KERNEL;
        } else if in_kernel {
            out.push(a);
        }
    }
    out
}

/// Counts `chains` (addresses, leaf first, with the on-CPU ns each sample stands for) into
/// `p`.
fn add_chains(p: &mut SideProfile, chains: &[(Vec<u64>, u64)]) {
    let all: Vec<u64> = chains.iter().flat_map(|c| c.0.iter()).copied().collect();
    let names: HashMap<u64, Option<String>> =
        all.iter().copied().zip(symbols::resolve(&all)).collect();
    let mut by_symbol: BTreeMap<(String, Bucket), Weight> = BTreeMap::new();
    for (chain, ns) in chains {
        let frames: Vec<classify::Frame> = chain
            .iter()
            .map(|a| classify::Frame {
                name: names.get(a).and_then(|n| n.as_deref()),
                kernel: symbols::is_kernel(*a),
            })
            .collect();
        let b = classify::classify(&frames);
        let leaf = frames
            .first()
            .and_then(|f| f.name)
            .unwrap_or("[unknown]")
            .to_string();
        let w = Weight {
            samples: 1,
            ns: *ns,
        };
        p.buckets.entry(b).or_default().add(w);
        by_symbol.entry((leaf, b)).or_default().add(w);
        p.samples += 1;
    }
    p.keep_top(by_symbol);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_in_syscalls_is_sampled_with_kernel_symbols_that_add_up() {
        let Some(s) = ThreadSampler::start(1000, 0.3) else {
            return crate::testing::skip(
                crate::testing::Skip::NoSampler,
                "this kernel refuses a CPU-clock sampler here",
            );
        };
        let t = std::time::Instant::now();
        let c = crate::cpu::ThreadCounters::start();
        let devnull = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let buf = vec![7u8; 4096];
        let mut x = 0u64;
        while t.elapsed().as_millis() < 300 {
            use std::io::Write;
            (&devnull).write_all(&buf).unwrap();
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let counted = c.stop();
        let p = s.finish();
        assert!(p.samples > 100, "{p:?}");
        assert_eq!(
            p.buckets.values().map(|w| w.samples).sum::<u64>(),
            p.samples
        );
        let task = counted.counters.task_clock_ns.unwrap() as f64;
        let sampled = p.sampled_ns() as f64;
        // The weights add up to the sampler's clock, less at most the last period.
        assert!(
            p.clock_ns >= p.sampled_ns() && p.clock_ns - p.sampled_ns() <= 2 * p.period_ns,
            "sampled {sampled} against the sampler's clock {}",
            p.clock_ns
        );
        // Against the scheduler's task clock only roughly: perf's clock stops while the thread
        // is switched and runs through interrupts, so with other tests busy on both CPUs it
        // read 21% over here. (The exact check is the one above.)
        assert!(
            (sampled / task - 1.0).abs() < 0.4,
            "samples x period {sampled} against task clock {task} ({} lost)",
            p.lost
        );
        assert!(
            p.buckets
                .get(&Bucket::Syscall)
                .is_some_and(|w| w.samples > 0),
            "write(2) entry and exit: {p:?}"
        );
        assert!(
            p.symbols
                .iter()
                .any(|s| s.symbol.contains("sys") || s.symbol.contains("write")),
            "kernel symbols named: {:?}",
            p.symbols
        );
        let mut m = p.clone();
        m.merge(&p);
        assert_eq!(m.samples, 2 * p.samples);
        assert_eq!(m.symbols[0].weight.ns, 2 * p.symbols[0].weight.ns);
    }

    #[test]
    fn the_ring_holds_a_window_of_samples_within_bounds() {
        assert_eq!(
            ring_bytes(1000, 0.3),
            (360 * SAMPLE_BYTES).next_power_of_two()
        );
        assert_eq!(ring_bytes(10, 0.01), MIN_RING);
        assert_eq!(ring_bytes(20_000, 3600.0), MAX_RING);
    }
}

#[cfg(test)]
mod user_tests {
    use super::*;

    #[test]
    fn user_space_time_is_sampled_and_a_copy_is_named_copy_user() {
        let Some(s) = ThreadSampler::start(1000, 0.3) else {
            return crate::testing::skip(
                crate::testing::Skip::NoSampler,
                "this kernel refuses a CPU-clock sampler here",
            );
        };
        let t = std::time::Instant::now();
        let a = vec![1u8; 1 << 20];
        let mut b = vec![0u8; 1 << 20];
        while t.elapsed().as_millis() < 300 {
            b.copy_from_slice(std::hint::black_box(&a));
        }
        std::hint::black_box(&b);
        let p = s.finish();
        let copy = p.buckets.get(&Bucket::CopyUser).map_or(0, |w| w.ns);
        assert!(
            copy as f64 > 0.5 * p.sampled_ns() as f64,
            "a memcpy loop is mostly copy_user: {:?} {:?}",
            p.buckets,
            &p.symbols[..p.symbols.len().min(5)]
        );
    }

    #[test]
    fn only_the_kernel_part_of_a_chain_is_kept() {
        let (k, u) = (PERF_CONTEXT_KERNEL, (-512i64) as u64);
        assert_eq!(kernel_frames(&[k, 1, 2, u, 3, 4]), [1, 2]);
        assert_eq!(kernel_frames(&[u, 3, 4]), Vec::<u64>::new());
        assert_eq!(kernel_frames(&[]), Vec::<u64>::new());
    }
}
