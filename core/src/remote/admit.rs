//! What `sendpath serve` agrees to run: a test request checked against the CLI's own limits
//! and the server's ([`ServerLimits`]) before anything is bound or spawned.

use super::proto::{FarRole, TestRequest};
use crate::spec::memory::mib;
use crate::spec::{RunSpec, Side};

/// What one test may use on this server.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerLimits {
    /// Flows (connections, and on the threads engine a thread each).
    pub max_flows: usize,
    /// Warm-up plus window, seconds.
    pub max_seconds: f64,
    /// Bytes the server's side of a test may hold: [`RunSpec::memory`] of its role, which
    /// counts send buffers, receive buffers, rings, stamps and a fixed part per flow.
    pub max_buffer_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_flows: 64,
            max_seconds: 120.0,
            max_buffer_bytes: 2 << 30,
        }
    }
}

/// The spec this server will run for `req`, or why not.
pub fn admit(req: &TestRequest, limits: &ServerLimits) -> std::result::Result<RunSpec, String> {
    let spec = req.spec.clone();
    if let Some(p) = &spec.pin {
        // Each host pins its own side's threads to the CPUs of that side's role.
        let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
            .map_err(|e| format!("cannot read this host's CPUs: {e}"))?;
        for (side, cpus) in [("sender", &p.sender), ("receiver", &p.receiver)] {
            if cpus.is_empty() || cpus.len() > 1024 {
                return Err(format!(
                    "pin: the {side} CPU list must have 1 to 1024 entries"
                ));
            }
            if let Some(c) = cpus.iter().find(|&&c| !allowed.is_set(c).unwrap_or(false)) {
                return Err(format!(
                    "pin: this host cannot run the {side}'s threads on CPU {c}"
                ));
            }
        }
    }
    if spec.rx_stall.is_some() {
        return Err("rx_stall is a test hook a server does not run".into());
    }
    spec.validate().map_err(|e| e.to_string())?;
    if spec.flows > limits.max_flows {
        return Err(format!(
            "{} flows: this server allows at most {} (serve --max-flows)",
            spec.flows, limits.max_flows
        ));
    }
    let secs = spec.warmup_s + spec.duration_s;
    if secs > limits.max_seconds {
        return Err(format!(
            "{secs:.1} s of warm-up and window: this server allows at most {:.0} s (serve --max-seconds)",
            limits.max_seconds
        ));
    }
    // The server holds one side of the flows: the one its role plays.
    let side = match req.far_role {
        FarRole::Receiver => Side::Receiver,
        FarRole::Sender => Side::Sender,
    };
    let memory = spec.memory(side);
    if memory.total() > limits.max_buffer_bytes {
        return Err(format!(
            "the test would make this server hold about {} ({}): it allows {} (serve --max-buffer-mib)",
            mib(memory.total()),
            memory.describe(),
            mib(limits.max_buffer_bytes)
        ));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Mode;
    use sendpath_record::Pattern;

    fn req(spec: RunSpec, far_role: FarRole) -> TestRequest {
        TestRequest {
            spec,
            far_role,
            sender_clock_ahead_ns: 0,
        }
    }

    #[test]
    fn the_server_counts_the_side_it_plays() {
        let limits = ServerLimits::default();
        // 64 flows of 16 MiB messages with one slot: 4 GiB of receive buffers on the far
        // receiver (it passed the old bound of message x slots + 2 MiB per flow).
        let big = RunSpec {
            msg_size: 16 << 20,
            flows: 64,
            zc_slots: 1,
            ..RunSpec::default()
        };
        let e = admit(&req(big.clone(), FarRole::Receiver), &limits).unwrap_err();
        assert!(e.contains("receive buffers 4101 MiB"), "{e}");
        // Sending them holds two messages per flow: 2 GiB and a little more, also refused.
        let e = admit(&req(big, FarRole::Sender), &limits).unwrap_err();
        assert!(e.contains("send buffers"), "{e}");
        // rr responses count on both ends: 16 MiB x 40 slots x 4 flows is 2.5 GiB.
        let rr = RunSpec {
            mode: Mode::A3,
            pattern: Pattern::Rr,
            msg_size: 16,
            resp_size: Some(16 << 20),
            zc_slots: 40,
            flows: 4,
            ..RunSpec::default()
        };
        for role in [FarRole::Receiver, FarRole::Sender] {
            let e = admit(&req(rr.clone(), role), &limits).unwrap_err();
            assert!(e.contains("send buffers 26"), "{role:?}: {e}");
        }
        let small = RunSpec { zc_slots: 4, ..rr };
        admit(&req(small, FarRole::Receiver), &limits).unwrap();
    }
}
