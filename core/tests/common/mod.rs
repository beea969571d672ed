//! Helpers shared by the integration tests.
#![allow(dead_code)]

use sendpath_core::report::v1::{Record, Status};
use sendpath_core::spec::{Mode, RunSpec};

/// A short spec: 0.3 s window after 0.1 s warm-up.
pub fn short(mode: Mode, msg_size: usize, flows: usize) -> RunSpec {
    RunSpec {
        mode,
        msg_size,
        flows,
        duration_s: 0.3,
        warmup_s: 0.1,
        ..RunSpec::default()
    }
}

/// Asserts the invariants every good stream record keeps.
pub fn assert_good_stream(r: &Record) {
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    assert!(r.throughput.bytes > 0, "no bytes");
    assert_eq!(
        r.throughput.bytes,
        r.throughput.messages * r.spec.msg_size_bytes,
        "bytes are whole messages"
    );
    assert_eq!(r.throughput.per_flow.len() as u64, r.spec.flows);
    for f in &r.throughput.per_flow {
        assert!(f.messages > 0, "flow {} received nothing", f.flow);
    }
    assert!(r.integrity.seq_checked);
    assert!(!r.spec.tcp_nodelay, "streams keep Nagle, like iperf3");
    assert_eq!(r.integrity.seq_errors, 0);
    let l = r.latency_ns.as_ref().expect("latency recorded");
    assert_eq!(
        l.count, r.throughput.messages,
        "one latency sample per message"
    );
    assert!(l.min > 0 && l.p50 >= l.min && l.p99 >= l.p50 && l.max >= l.p999);
    assert!(r.sender.reported && r.receiver.reported);
    assert!(r.sender.counters.task_clock_ns.unwrap() > 0);
    assert!(r.derived.sender_cpu_ns_per_byte.unwrap() > 0.0);
    // Hardware counters are unknown on this VM: null and named, never 0.
    for side in [&r.sender, &r.receiver] {
        if side.counters.cycles.is_none() {
            assert!(side.unsupported.iter().any(|u| u == "cycles"));
        }
    }
}
