//! `--profile` on real runs: each side's buckets add up to its task clock, kernel symbols are
//! named, and the copy buckets tell the three send paths apart at 64 KiB on loopback.

use crate::common::short;
use sendpath_core::report::v1::{Record, SideProfileV1, Status};
use sendpath_core::run::run_loopback;
use sendpath_core::spec::{Mode, RunSpec};

fn profiled(mode: Mode, size: usize) -> Record {
    let spec = RunSpec {
        profile: Some(1000),
        ..short(mode, size, 1)
    };
    let r = run_loopback(&spec, 0).unwrap();
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    r
}

fn share(side: &SideProfileV1, bucket: &str) -> f64 {
    side.buckets
        .iter()
        .find(|b| b.bucket == bucket)
        .map_or(0.0, |b| b.share)
}

#[test]
fn a_real_runs_profile_names_kernel_symbols_and_adds_up() {
    let r = profiled(Mode::A2, 16384);
    let Some(p) = r.profile.as_ref() else {
        eprintln!("SKIPPED: this kernel refuses a task-clock sampler here");
        return;
    };
    assert_eq!((p.hz, p.period_ns), (1000, 1_000_000));
    assert_eq!(r.spec.profile_hz, Some(1000));
    for (name, side) in [("sender", &p.sender), ("receiver", &p.receiver)] {
        let side = side
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no profile"));
        assert!(side.samples > 20, "{name}: {side:?}");
        let task = side.task_clock_ns.unwrap() as f64;
        let sum: u64 = side.buckets.iter().map(|b| b.ns).sum();
        assert_eq!(sum, side.sampled_ns);
        assert!(
            (side.sampled_ns as f64 / task - 1.0).abs() < 0.10,
            "{name}: buckets {} ns against a task clock of {task} ns",
            side.sampled_ns
        );
        assert!((side.buckets.iter().map(|b| b.share).sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(side.buckets.len(), 11, "every bucket, in order");
        assert!(
            side.top
                .iter()
                .any(|s| s.symbol.starts_with("tcp_") || s.symbol.starts_with("_copy")),
            "{name}: kernel symbols named: {:?}",
            side.top
        );
        assert!(share(side, "other") < 0.2, "{name}: {side:?}");
        let per_byte: f64 = side.buckets.iter().filter_map(|b| b.ns_per_byte).sum();
        let want = side.sampled_ns as f64 / r.throughput.bytes as f64;
        assert!((per_byte / want - 1.0).abs() < 1e-6);
    }
    // The receiver's work is mostly the copy to user space.
    assert!(share(p.receiver.as_ref().unwrap(), "copy_kernel") > 0.3);
}

#[test]
fn the_copy_buckets_tell_the_send_paths_apart_at_64k() {
    let a1 = profiled(Mode::A1, 65536);
    let Some(p1) = a1.profile.as_ref().and_then(|p| p.sender.clone()) else {
        eprintln!("SKIPPED: this kernel refuses a task-clock sampler here");
        return;
    };
    let p2 = profiled(Mode::A2, 65536).profile.unwrap().sender.unwrap();
    let p3 = profiled(Mode::A3, 65536).profile.unwrap().sender.unwrap();
    let copies = |p: &SideProfileV1| share(p, "copy_user") + share(p, "copy_kernel");
    // A1 copies twice on the send side, A2 once, A3's copy is the deferred one (loopback).
    assert!(
        share(&p1, "copy_user") > 0.03,
        "A1 stages in user space: {p1:?}"
    );
    assert!(
        copies(&p1) > copies(&p2),
        "{} vs {}",
        copies(&p1),
        copies(&p2)
    );
    assert!(share(&p2, "copy_user") < 0.02, "{p2:?}");
    assert!(share(&p3, "copy_deferred") > 0.05, "{p3:?}");
    assert!(share(&p3, "zerocopy") > 0.0, "{p3:?}");
    assert!(share(&p2, "copy_deferred") < 0.01 && share(&p2, "zerocopy") < 0.01);
}
