//! CPU pinning of worker threads (`--pin`).
//!
//! Pinning keeps the scheduler from moving a side between CPUs mid-run and, for latency runs,
//! decides whether the two ends share a CPU (cheap wake-ups) or not (true cross-CPU cost). It
//! is recorded in the record because it changes the numbers a lot on a 2-core machine.

use crate::error::{Error, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use sendpath_record::Placement;
use serde::{Deserialize, Serialize};

/// Which CPUs each side's threads may run on. Threads of a side are spread round-robin over
/// its list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// CPUs of the sender (server) threads.
    pub sender: Vec<usize>,
    /// CPUs of the receiver (client) threads.
    pub receiver: Vec<usize>,
}

impl Pin {
    /// Bare `--pin`: each side on its own CPU (sender on the first CPU this process may use,
    /// receiver on the second; both on the one CPU of a 1-CPU machine).
    pub fn apart() -> Result<Pin> {
        let cpus = allowed_cpus()?;
        let first = cpus[0];
        let second = *cpus.get(1).unwrap_or(&first);
        Ok(Pin {
            sender: vec![first],
            receiver: vec![second],
        })
    }

    /// Parses `SENDER_CPUS:RECEIVER_CPUS`, each a list like `0`, `0,2` or `0-3`; an empty
    /// string means [`Pin::apart`].
    pub fn parse(s: &str) -> Result<Pin> {
        if s.trim().is_empty() {
            return Pin::apart();
        }
        let (a, b) = s.split_once(':').ok_or_else(|| {
            Error::InvalidSpec(format!(
                "--pin {s}: expected SENDER_CPUS:RECEIVER_CPUS, e.g. 0:1 or 0-1:2-3"
            ))
        })?;
        let pin = Pin {
            sender: parse_list(a)?,
            receiver: parse_list(b)?,
        };
        let allowed = allowed_cpus()?;
        for c in pin.sender.iter().chain(&pin.receiver) {
            if !allowed.contains(c) {
                return Err(Error::InvalidSpec(format!(
                    "--pin {s}: CPU {c} is not available (this process may use {allowed:?})"
                )));
            }
        }
        Ok(pin)
    }
}

/// The CPUs a placement puts each side on (None: unpinned). `Custom` has no CPUs of its own:
/// it comes with a [`Pin`] given by hand.
pub fn pin_for(p: Placement) -> Result<Option<Pin>> {
    match p {
        Placement::Unpinned | Placement::Custom => Ok(None),
        Placement::Apart => Pin::apart().map(Some),
        Placement::Together => {
            let cpu = allowed_cpus()?[0];
            Ok(Some(Pin {
                sender: vec![cpu],
                receiver: vec![cpu],
            }))
        }
    }
}

fn parse_list(s: &str) -> Result<Vec<usize>> {
    let bad = || Error::InvalidSpec(format!("--pin: '{s}' is not a CPU list (e.g. 0,2 or 0-3)"));
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi): (usize, usize) = (
                    lo.parse().map_err(|_| bad())?,
                    hi.parse().map_err(|_| bad())?,
                );
                if lo > hi || hi - lo > 4096 {
                    return Err(bad());
                }
                out.extend(lo..=hi);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0))
        .map_err(|e| Error::io("sched_getaffinity", e.into()))?;
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&i| set.is_set(i).unwrap_or(false))
        .collect();
    if cpus.is_empty() {
        return Err(Error::Setup("no CPU available to this process".into()));
    }
    Ok(cpus)
}

/// Pins the calling thread to `cpu`.
pub fn pin_current(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)
        .and_then(|_| sched_setaffinity(Pid::from_raw(0), &set))
        .map_err(|e| Error::io(format!("pin a thread to CPU {cpu}"), e.into()))
}

/// The CPU of the `i`-th thread of a side whose list is `cpus`.
pub fn cpu_for(cpus: &[usize], i: usize) -> usize {
    cpus[i % cpus.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_errors_name_the_option() {
        assert_eq!(parse_list("0,2").unwrap(), vec![0, 2]);
        assert_eq!(parse_list("1-3").unwrap(), vec![1, 2, 3]);
        assert!(parse_list("x").is_err());
        assert!(parse_list("3-1").is_err());
        let p = Pin::parse("0:0").unwrap();
        assert_eq!(p.sender, vec![0]);
        assert!(Pin::parse("0")
            .unwrap_err()
            .to_string()
            .contains("SENDER_CPUS:RECEIVER_CPUS"));
        assert!(Pin::parse("0:9999")
            .unwrap_err()
            .to_string()
            .contains("not available"));
        let a = Pin::apart().unwrap();
        assert_eq!(a.sender.len(), 1);
    }

    #[test]
    fn pinning_moves_the_thread() {
        let cpus = allowed_cpus().unwrap();
        let last = *cpus.last().unwrap();
        std::thread::spawn(move || {
            pin_current(last).unwrap();
            assert_eq!(nix::sched::sched_getcpu().unwrap(), last);
        })
        .join()
        .unwrap();
    }
}
