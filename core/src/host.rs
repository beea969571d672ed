//! Facts about the machine, probed once, and the machine's CPU time by category.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// What the machine is and what it can do; carried in every record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// CPU model name.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// Running under a hypervisor (the CPU's `hypervisor` flag).
    pub virtualized: bool,
    /// Counters this build collects here.
    pub counters_supported: Vec<String>,
    /// io_uring opcodes the kernel supports that sendpath uses (empty if io_uring is absent).
    pub io_uring_ops: Vec<String>,
    /// Why io_uring cannot be used (setup refused: EPERM when `kernel.io_uring_disabled` or a
    /// seccomp profile forbids it, ENOSYS when the kernel lacks it); None when it works.
    pub io_uring_error: Option<String>,
    /// Whether `setsockopt(SO_ZEROCOPY)` works on a TCP socket.
    pub so_zerocopy: bool,
}

/// Probes the host once per process.
pub fn facts() -> &'static HostFacts {
    static FACTS: OnceLock<HostFacts> = OnceLock::new();
    FACTS.get_or_init(probe)
}

fn probe() -> HostFacts {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let virtualized = cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
    let (io_uring_ops, io_uring_error) = match crate::uring_sys::probe::probe_ops() {
        Ok(ops) => (ops, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    HostFacts {
        kernel: kernel_release(),
        cpu_model,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        virtualized,
        counters_supported: crate::cpu::supported_counters(),
        io_uring_ops,
        io_uring_error,
        so_zerocopy: so_zerocopy_works(),
    }
}

fn kernel_release() -> String {
    nix::sys::utsname::uname().map_or_else(
        |_| "unknown".into(),
        |u| u.release().to_string_lossy().into_owned(),
    )
}

/// The clock tick /proc/stat counts in (USER_HZ).
fn clock_ticks_per_s() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100, |t| t.max(1) as u64)
}

fn so_zerocopy_works() -> bool {
    use std::os::fd::AsRawFd;
    let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else {
        return false;
    };
    crate::sock::enable_so_zerocopy(l.as_raw_fd()).is_ok()
}

/// Machine-wide CPU time by category over an interval (from /proc/stat), as neper -S does:
/// on loopback much receive work runs in softirq, partly in ksoftirqd, which no per-thread
/// counter of either side sees.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCpu {
    /// User + nice.
    pub user_ns: u64,
    /// System (kernel, excluding irq and softirq).
    pub system_ns: u64,
    /// Softirq.
    pub softirq_ns: u64,
    /// Hard irq.
    pub irq_ns: u64,
    /// Idle + iowait.
    pub idle_ns: u64,
}

/// One reading of the aggregate `cpu` line of /proc/stat, in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct ProcStat {
    user: u64,
    system: u64,
    softirq: u64,
    irq: u64,
    idle: u64,
}

impl ProcStat {
    /// Reads /proc/stat now.
    pub fn read() -> Result<Self> {
        let s =
            std::fs::read_to_string("/proc/stat").map_err(|e| Error::io("read /proc/stat", e))?;
        Self::parse(&s)
    }

    /// Parses the aggregate `cpu` line (values in USER_HZ ticks).
    pub fn parse(s: &str) -> Result<Self> {
        let line = s
            .lines()
            .find(|l| l.starts_with("cpu "))
            .ok_or_else(|| Error::Setup("/proc/stat has no aggregate cpu line".into()))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let get = |i: usize| v.get(i).copied().unwrap_or(0);
        let hz = clock_ticks_per_s();
        let ns = |t: u64| t * (1_000_000_000 / hz);
        // user nice system idle iowait irq softirq steal ...
        Ok(ProcStat {
            user: ns(get(0) + get(1)),
            system: ns(get(2)),
            idle: ns(get(3) + get(4)),
            irq: ns(get(5)),
            softirq: ns(get(6)),
        })
    }

    /// CPU time by category from `earlier` to `self`.
    pub fn since(&self, earlier: &ProcStat) -> HostCpu {
        HostCpu {
            user_ns: self.user.saturating_sub(earlier.user),
            system_ns: self.system.saturating_sub(earlier.system),
            softirq_ns: self.softirq.saturating_sub(earlier.softirq),
            irq_ns: self.irq.saturating_sub(earlier.irq),
            idle_ns: self.idle.saturating_sub(earlier.idle),
        }
    }
}

/// The current UTC time as RFC 3339 (`2026-11-25T12:00:00Z`).
pub fn utc_now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// Formats a time as RFC 3339 UTC, to the second.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        let at = |s| rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_795_608_000), "2026-11-25T12:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn proc_stat_categories() {
        let a = ProcStat::parse("cpu  10 1 5 100 2 3 4 0 0 0\ncpu0 1 1 1 1\n").unwrap();
        let b = ProcStat::parse("cpu  20 1 9 150 2 3 10 0 0 0\n").unwrap();
        let d = b.since(&a);
        let tick = 1_000_000_000 / clock_ticks_per_s();
        assert_eq!(d.user_ns, 10 * tick);
        assert_eq!(d.system_ns, 4 * tick);
        assert_eq!(d.softirq_ns, 6 * tick);
        assert_eq!(d.idle_ns, 50 * tick);
        assert!(ProcStat::parse("nothing").is_err());
    }

    #[test]
    fn facts_are_probed() {
        let f = facts();
        assert!(f.cores >= 1);
        assert!(!f.kernel.is_empty());
    }
}
