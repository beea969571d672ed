//! Per-thread CPU time and counters over the measured window.
//!
//! Each worker thread snapshots its own counters when it enters the window and again when it
//! leaves it ([`ThreadCounters`]); the deltas of all threads of one side are summed
//! ([`SideCounters::merge`]). Sources: `getrusage(RUSAGE_THREAD)` for user/system time,
//! context switches and page faults, `CLOCK_THREAD_CPUTIME_ID` for task-clock (the same
//! `sum_exec_runtime` that perf's task-clock counts). Hardware counters (cycles, cache misses)
//! need perf events the CPU exposes: where it does not they are `None` and named in
//! `unsupported`, never 0.

use serde::{Deserialize, Serialize};

/// Counters that every Linux has through getrusage/clock_gettime.
const ALWAYS: &[&str] = &["task_clock", "context_switches", "page_faults"];
/// Counters not collected by this build on any machine, named in `unsupported`.
const NOT_COLLECTED: &[&str] = &[
    "cpu_migrations",
    "cycles",
    "instructions",
    "cache_misses",
    "l1d_load_misses",
    "llc_load_misses",
];

/// CPU time and counters of one side (sender threads or receiver threads) over the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SideCounters {
    /// User-mode CPU time.
    pub user_ns: u64,
    /// Kernel-mode CPU time (includes softirq work done in the thread's context).
    pub sys_ns: u64,
    /// Task clock: CPU time on-CPU, user + kernel.
    pub task_clock_ns: Option<u64>,
    /// Voluntary + involuntary context switches.
    pub context_switches: Option<u64>,
    /// Migrations between CPUs.
    pub cpu_migrations: Option<u64>,
    /// Minor + major page faults.
    pub page_faults: Option<u64>,
    /// CPU cycles (hardware counter).
    pub cycles: Option<u64>,
    /// Instructions retired (hardware counter).
    pub instructions: Option<u64>,
    /// Cache misses (hardware counter).
    pub cache_misses: Option<u64>,
    /// L1 data cache load misses (hardware counter).
    pub l1d_load_misses: Option<u64>,
    /// Last-level cache load misses (hardware counter).
    pub llc_load_misses: Option<u64>,
    /// Names of the counters that are `None` because this machine or build cannot count them.
    pub unsupported: Vec<String>,
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a? + b?)
}

impl SideCounters {
    /// An empty sum, the identity of [`merge`](Self::merge), with nothing counted yet.
    pub fn zero() -> Self {
        SideCounters {
            task_clock_ns: Some(0),
            context_switches: Some(0),
            page_faults: Some(0),
            unsupported: NOT_COLLECTED.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Adds another thread's counters. A counter is known only if it is known for both.
    pub fn merge(&mut self, o: &SideCounters) {
        self.user_ns += o.user_ns;
        self.sys_ns += o.sys_ns;
        self.task_clock_ns = add(self.task_clock_ns, o.task_clock_ns);
        self.context_switches = add(self.context_switches, o.context_switches);
        self.cpu_migrations = add(self.cpu_migrations, o.cpu_migrations);
        self.page_faults = add(self.page_faults, o.page_faults);
        self.cycles = add(self.cycles, o.cycles);
        self.instructions = add(self.instructions, o.instructions);
        self.cache_misses = add(self.cache_misses, o.cache_misses);
        self.l1d_load_misses = add(self.l1d_load_misses, o.l1d_load_misses);
        self.llc_load_misses = add(self.llc_load_misses, o.llc_load_misses);
        for u in &o.unsupported {
            if !self.unsupported.contains(u) {
                self.unsupported.push(u.clone());
            }
        }
    }

    /// Total CPU time (user + system).
    pub fn cpu_ns(&self) -> u64 {
        self.user_ns + self.sys_ns
    }
}

/// The names of the counters this build collects on this machine.
pub fn supported_counters() -> Vec<String> {
    ALWAYS.iter().map(|s| s.to_string()).collect()
}

#[derive(Clone, Copy, Debug)]
struct Snapshot {
    user_ns: u64,
    sys_ns: u64,
    task_clock_ns: u64,
    csw: u64,
    faults: u64,
}

fn tv_ns(tv: libc::timeval) -> u64 {
    tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000
}

fn snapshot() -> Snapshot {
    // SAFETY: rusage is plain data, zeroed is a valid value; getrusage only writes it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD is valid on Linux; &mut ru is writable.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is writable; the calling thread's CPU clock always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Snapshot {
        user_ns: tv_ns(ru.ru_utime),
        sys_ns: tv_ns(ru.ru_stime),
        task_clock_ns: ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64,
        csw: (ru.ru_nvcsw + ru.ru_nivcsw) as u64,
        faults: (ru.ru_minflt + ru.ru_majflt) as u64,
    }
}

/// Counters of the calling thread from [`ThreadCounters::start`] to [`ThreadCounters::stop`].
/// Must be started and stopped on the same thread.
#[derive(Debug)]
pub struct ThreadCounters {
    start: Snapshot,
}

impl ThreadCounters {
    /// Snapshots the calling thread's counters.
    pub fn start() -> Self {
        ThreadCounters { start: snapshot() }
    }

    /// The calling thread's counters since [`start`](Self::start).
    pub fn stop(&self) -> SideCounters {
        let end = snapshot();
        let s = self.start;
        SideCounters {
            user_ns: end.user_ns.saturating_sub(s.user_ns),
            sys_ns: end.sys_ns.saturating_sub(s.sys_ns),
            task_clock_ns: Some(end.task_clock_ns.saturating_sub(s.task_clock_ns)),
            context_switches: Some(end.csw.saturating_sub(s.csw)),
            page_faults: Some(end.faults.saturating_sub(s.faults)),
            unsupported: NOT_COLLECTED.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
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
        assert!(s.task_clock_ns.unwrap() >= 10_000_000, "{s:?}");
        assert!(s.cpu_ns() > 0);
        assert_eq!(s.cycles, None);
        assert!(s.unsupported.iter().any(|u| u == "cycles"));
        let mut sum = SideCounters::zero();
        sum.merge(&s);
        sum.merge(&s);
        assert_eq!(sum.task_clock_ns, Some(2 * s.task_clock_ns.unwrap()));
        assert_eq!(sum.cycles, None);
    }
}
