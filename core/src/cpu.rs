//! Per-thread CPU time and counters over the measured window.
//!
//! Each worker thread snapshots its own counters when it enters the window and again when it
//! leaves it ([`ThreadCounters`]); the deltas of all threads of one side are summed
//! ([`SideCounters::merge`]). Sources: the software counters come from the kernel's own
//! per-thread accounting, which costs nothing while the thread runs: `getrusage(RUSAGE_THREAD)`
//! (user/system time, context switches, page faults), `CLOCK_THREAD_CPUTIME_ID` (task-clock:
//! the `sum_exec_runtime` perf's task-clock counts) and `/proc/thread-self/sched` (CPU
//! migrations). Hardware counters (cycles, instructions, cache, L1D and LLC load misses) need
//! perf events, opened for the calling thread only, kernel mode included, where the CPU
//! exposes them. Perf software events are deliberately not used: a thread with perf events
//! pays for them at every context switch (measured here: +3.7 us on a 64 B sleeping ping-pong
//! round trip, 29.3 against 25.6 us), which would distort the latency being measured. A counter
//! the machine cannot count is `None` and named in `unsupported`, never 0. Which hardware
//! events open is probed once per process.

use nix::sys::resource::{getrusage, Usage, UsageWho};
use nix::sys::time::TimeVal;
use nix::time::{clock_gettime, ClockId};
pub use sendpath_record::end_v1::SideCounters;
use sendpath_record::v1::Counters;

use perf_event::events::{Cache, CacheId, CacheOp, CacheResult, Event, Hardware, Software};
use perf_event::{Builder, Counter};
use std::sync::OnceLock;

/// The perf events sendpath counts, by the name used in records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    TaskClock,
    ContextSwitches,
    CpuMigrations,
    PageFaults,
    Cycles,
    Instructions,
    CacheMisses,
    L1dLoadMisses,
    LlcLoadMisses,
}

const KINDS: [Kind; 9] = [
    Kind::TaskClock,
    Kind::ContextSwitches,
    Kind::CpuMigrations,
    Kind::PageFaults,
    Kind::Cycles,
    Kind::Instructions,
    Kind::CacheMisses,
    Kind::L1dLoadMisses,
    Kind::LlcLoadMisses,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::TaskClock => "task_clock",
            Kind::ContextSwitches => "context_switches",
            Kind::CpuMigrations => "cpu_migrations",
            Kind::PageFaults => "page_faults",
            Kind::Cycles => "cycles",
            Kind::Instructions => "instructions",
            Kind::CacheMisses => "cache_misses",
            Kind::L1dLoadMisses => "l1d_load_misses",
            Kind::LlcLoadMisses => "llc_load_misses",
        }
    }

    /// Counted from the kernel's per-thread accounting, never through perf events.
    fn is_software(self) -> bool {
        matches!(
            self,
            Kind::TaskClock | Kind::ContextSwitches | Kind::PageFaults | Kind::CpuMigrations
        )
    }

    fn open(self) -> std::io::Result<Counter> {
        fn build(e: impl Event) -> std::io::Result<Counter> {
            let mut b = Builder::new(e);
            // This thread only (pid 0, no inherit), any CPU, kernel mode included: on
            // loopback most of the send and receive work is kernel work.
            b.exclude_kernel(false).exclude_hv(false).enabled(true);
            b.build()
        }
        let cache = |which| Cache {
            which,
            operation: CacheOp::READ,
            result: CacheResult::MISS,
        };
        match self {
            Kind::TaskClock => build(Software::TASK_CLOCK),
            Kind::ContextSwitches => build(Software::CONTEXT_SWITCHES),
            Kind::CpuMigrations => build(Software::CPU_MIGRATIONS),
            Kind::PageFaults => build(Software::PAGE_FAULTS),
            Kind::Cycles => build(Hardware::CPU_CYCLES),
            Kind::Instructions => build(Hardware::INSTRUCTIONS),
            Kind::CacheMisses => build(Hardware::CACHE_MISSES),
            Kind::L1dLoadMisses => build(cache(CacheId::L1D)),
            Kind::LlcLoadMisses => build(cache(CacheId::LL)),
        }
    }
}

/// Which perf events open on this machine, probed once per process.
fn perf_supported() -> &'static [Kind] {
    static SUPPORTED: OnceLock<Vec<Kind>> = OnceLock::new();
    SUPPORTED.get_or_init(|| {
        KINDS
            .into_iter()
            .filter(|k| !k.is_software() && k.open().is_ok())
            .collect()
    })
}

/// Counter `k` of `c`.
fn slot(c: &mut Counters, k: Kind) -> &mut Option<u64> {
    match k {
        Kind::TaskClock => &mut c.task_clock_ns,
        Kind::ContextSwitches => &mut c.context_switches,
        Kind::CpuMigrations => &mut c.cpu_migrations,
        Kind::PageFaults => &mut c.page_faults,
        Kind::Cycles => &mut c.cycles,
        Kind::Instructions => &mut c.instructions,
        Kind::CacheMisses => &mut c.cache_misses,
        Kind::L1dLoadMisses => &mut c.l1d_load_misses,
        Kind::LlcLoadMisses => &mut c.llc_load_misses,
    }
}

/// An empty sum of a side's counters, the identity of [`SideCounters::merge`]: every counter
/// this machine counts 0, every other one `None` and named in `unsupported`.
pub fn empty_side() -> SideCounters {
    let mut s = SideCounters::default();
    for k in KINDS {
        if countable(k) {
            *slot(&mut s.counters, k) = Some(0);
        } else {
            s.unsupported.push(k.name().to_string());
        }
    }
    s
}

fn countable(k: Kind) -> bool {
    match k {
        Kind::CpuMigrations => migrations_countable(),
        k if k.is_software() => true,
        k => perf_supported().contains(&k),
    }
}

/// Whether this kernel counts a thread's migrations (asked once: reading the file takes about
/// half a millisecond, and every record's counter sums asked it several times).
fn migrations_countable() -> bool {
    static COUNTABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *COUNTABLE.get_or_init(|| thread_migrations().is_some())
}

/// The calling thread's CPU migrations so far (`se.nr_migrations` of
/// /proc/thread-self/sched; absent without CONFIG_SCHED_DEBUG).
fn thread_migrations() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
    s.lines()
        .find(|l| l.starts_with("se.nr_migrations"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|v| v.trim().parse().ok())
}

/// The names of the counters collected on this machine.
pub fn supported_counters() -> Vec<String> {
    KINDS
        .into_iter()
        .filter(|&k| countable(k))
        .map(|k| k.name().to_string())
        .collect()
}

#[derive(Clone, Copy, Debug)]
struct Snapshot {
    user_ns: u64,
    sys_ns: u64,
    task_clock_ns: u64,
    csw: u64,
    faults: u64,
    migrations: Option<u64>,
}

fn tv_ns(tv: TimeVal) -> u64 {
    tv.tv_sec() as u64 * 1_000_000_000 + tv.tv_usec() as u64 * 1000
}

fn snapshot() -> Snapshot {
    // Both exist for the calling thread on every Linux; a failure would read as zero time.
    let ru = getrusage(UsageWho::RUSAGE_THREAD).ok();
    let ts = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).ok();
    let ru_or = |f: fn(&Usage) -> u64| ru.as_ref().map_or(0, f);
    Snapshot {
        user_ns: ru_or(|u| tv_ns(u.user_time())),
        sys_ns: ru_or(|u| tv_ns(u.system_time())),
        task_clock_ns: ts.map_or(0, |t| {
            t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
        }),
        csw: ru_or(|u| (u.voluntary_context_switches() + u.involuntary_context_switches()) as u64),
        faults: ru_or(|u| (u.minor_page_faults() + u.major_page_faults()) as u64),
        migrations: thread_migrations(),
    }
}

/// Reads a counter, scaled for the time the kernel multiplexed it off the PMU.
fn read_scaled(c: &mut Counter) -> Option<u64> {
    let ct = c.read_count_and_time().ok()?;
    if ct.time_running == 0 || ct.time_running >= ct.time_enabled {
        return Some(ct.count);
    }
    Some((ct.count as u128 * ct.time_enabled as u128 / ct.time_running as u128) as u64)
}

/// Counters of the calling thread from [`ThreadCounters::start`] to [`ThreadCounters::stop`].
/// Must be started and stopped on the same thread (perf events count the opening thread).
pub struct ThreadCounters {
    start: Snapshot,
    // RefCell: reading a counter needs &mut, and stop() is called through a shared borrow.
    perf: std::cell::RefCell<Vec<(Kind, Counter, u64)>>,
    /// `--profile`: the thread's sampler (taken by `stop`).
    sampler: std::cell::RefCell<Option<crate::profile::ThreadSampler>>,
}

impl std::fmt::Debug for ThreadCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadCounters")
            .field(
                "perf",
                &self
                    .perf
                    .borrow()
                    .iter()
                    .map(|p| p.0.name())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ThreadCounters {
    /// Opens the supported perf events for the calling thread and snapshots everything.
    pub fn start() -> Self {
        Self::start_profiled(None)
    }

    /// As [`start`](Self::start), sampling the thread too when `profile` says so: (samples
    /// per second, the window's seconds).
    pub fn start_profiled(profile: Option<(u32, f64)>) -> Self {
        let sampler = profile.and_then(|(hz, s)| crate::profile::ThreadSampler::start(hz, s));
        let mut perf = Vec::new();
        for &k in perf_supported() {
            if let Ok(mut c) = k.open() {
                if let Some(v) = read_scaled(&mut c) {
                    perf.push((k, c, v));
                }
            }
        }
        ThreadCounters {
            start: snapshot(),
            perf: std::cell::RefCell::new(perf),
            sampler: std::cell::RefCell::new(sampler),
        }
    }

    /// The calling thread's counters since [`start`](Self::start).
    pub fn stop(&self) -> SideCounters {
        let end = snapshot();
        let profile = self.sampler.borrow_mut().take().map(|s| s.finish());
        let s = self.start;
        let cpu = nix::sched::sched_getcpu();
        let mut out = SideCounters {
            user_ns: end.user_ns.saturating_sub(s.user_ns),
            sys_ns: end.sys_ns.saturating_sub(s.sys_ns),
            cpus: cpu.map(|c| vec![c as u32]).unwrap_or_default(),
            ..Default::default()
        };
        for (k, c, v0) in self.perf.borrow_mut().iter_mut() {
            *slot(&mut out.counters, *k) = read_scaled(c).map(|v| v.saturating_sub(*v0));
        }
        let c = &mut out.counters;
        c.task_clock_ns = Some(end.task_clock_ns.saturating_sub(s.task_clock_ns));
        c.context_switches = Some(end.csw.saturating_sub(s.csw));
        c.page_faults = Some(end.faults.saturating_sub(s.faults));
        c.cpu_migrations = match (s.migrations, end.migrations) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        for k in KINDS {
            if slot(&mut out.counters, k).is_none() {
                out.unsupported.push(k.name().to_string());
            }
        }
        out.profile = profile;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_thread_accumulates_cpu_and_unknown_stays_unknown() {
        let c = ThreadCounters::start();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 30 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let s = c.stop();
        assert!(s.counters.task_clock_ns.unwrap() >= 10_000_000, "{s:?}");
        assert!(s.cpu_ns() > 0);
        assert!(s.counters.context_switches.is_some() && s.counters.page_faults.is_some());
        // A counter is either counted or named unsupported, never both, never a silent 0.
        for k in KINDS {
            let mut copy = s.clone();
            let known = slot(&mut copy.counters, k).is_some();
            assert_ne!(known, s.unsupported.iter().any(|u| u == k.name()), "{k:?}");
        }
        let mut sum = empty_side();
        sum.merge(&s);
        sum.merge(&s);
        assert_eq!(
            sum.counters.task_clock_ns,
            Some(2 * s.counters.task_clock_ns.unwrap())
        );
        assert_eq!(sum.counters.cycles.is_some(), s.counters.cycles.is_some());
    }
}
