//! The measured window: when it opens and closes, and what a thread counted inside it.

use crate::cpu::{SideCounters, ThreadCounters};
use crate::host::{HostCpu, ProcStat};
use crate::time::Nanos;

/// The measured window of one flow, on CLOCK_MONOTONIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First instant inside the window.
    pub start: Nanos,
    /// First instant after the window.
    pub end: Nanos,
}

impl Window {
    /// The window that follows `warmup_ns` after `t0` and lasts `duration_ns`.
    pub fn after(t0: Nanos, warmup_ns: Nanos, duration_ns: Nanos) -> Self {
        Window {
            start: t0 + warmup_ns,
            end: t0 + warmup_ns + duration_ns,
        }
    }

    /// Whether `now` is inside the window.
    #[inline]
    pub fn contains(&self, now: Nanos) -> bool {
        now >= self.start && now < self.end
    }
}

/// Tracks the measured window of one thread: its counters (and, if asked, /proc/stat) from the
/// first [`at`](WindowTracker::at) inside the window to the first one past it. Both sides use it.
pub struct WindowTracker {
    /// The window.
    pub window: Window,
    counters: Option<ThreadCounters>,
    stat: Option<ProcStat>,
    sample_host_cpu: bool,
    result_counters: Option<SideCounters>,
    host_cpu: Option<HostCpu>,
    done: bool,
    /// `--profile`: samples per second of the thread over the window.
    profile_hz: Option<u32>,
}

impl WindowTracker {
    /// Nothing counted yet; the window starts when [`at`](Self::at) first sees it.
    pub fn new(window: Window, sample_host_cpu: bool) -> Self {
        WindowTracker {
            window,
            counters: None,
            stat: None,
            sample_host_cpu,
            result_counters: None,
            host_cpu: None,
            done: false,
            profile_hz: None,
        }
    }

    /// Samples the thread's CPU at `hz` over the window too (`--profile`; None: not).
    pub fn profiled(self, hz: Option<u32>) -> Self {
        // (The run's entry has done this already, but for a receiver that learns the rate
        // from its hello: then here, before the window.)
        crate::profile::prepare(hz);
        WindowTracker {
            profile_hz: hz,
            ..self
        }
    }

    /// Advances to `now`; returns true if `now` is inside the window.
    #[inline]
    pub fn at(&mut self, now: u64) -> bool {
        if now < self.window.start {
            return false;
        }
        if now < self.window.end {
            if self.counters.is_none() && !self.done {
                let secs = (self.window.end - self.window.start) as f64 / 1e9;
                self.counters = Some(ThreadCounters::start_profiled(
                    self.profile_hz.map(|hz| (hz, secs)),
                ));
                if self.sample_host_cpu {
                    self.stat = ProcStat::read().ok();
                }
            }
            return true;
        }
        self.close();
        false
    }

    /// Closes the window (if still open) and returns the thread's counters over it; zero if
    /// the window was never entered.
    pub fn side_counters(&mut self) -> SideCounters {
        self.close();
        self.result_counters
            .take()
            .unwrap_or_else(crate::cpu::empty_side)
    }

    /// Ends the window now if it has not ended (stops the counters).
    pub fn close(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        if let Some(c) = self.counters.take() {
            self.result_counters = Some(c.stop());
        }
        if let (Some(a), Ok(b)) = (self.stat.take(), ProcStat::read()) {
            self.host_cpu = Some(b.since(&a));
        }
    }
}

impl WindowTracker {
    /// What the window took out of the thread: its counters, and the machine's CPU time by
    /// category if sampled. Closes the window first.
    pub fn take_results(&mut self) -> (Option<SideCounters>, Option<HostCpu>) {
        self.close();
        (self.result_counters.take(), self.host_cpu.take())
    }
}
