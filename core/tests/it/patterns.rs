//! Request/response and open-loop patterns, end to end on loopback.

use crate::common;

use sendpath_core::report::v1::Status;
use sendpath_core::run::run_loopback;
use sendpath_core::spec::{Engine, Mode, Pattern, RunSpec, RxStall};

fn rr(mode: Mode, engine: Engine) -> RunSpec {
    RunSpec {
        pattern: Pattern::Rr,
        engine,
        verify: true,
        resp_size: Some(200),
        ..common::short(mode, 64, 2)
    }
}

fn assert_rr(spec: &RunSpec) {
    let r = run_loopback(spec, 0).unwrap();
    assert_eq!(r.status, Status::Ok, "{spec:?}: {:?}", r.error);
    let t = r.throughput.messages;
    assert!(t > 100, "{spec:?}: only {t} transactions");
    assert_eq!(
        r.throughput.transactions_per_s,
        Some(t as f64 / spec.duration_s)
    );
    assert_eq!(
        r.throughput.bytes,
        t * (64 + 200),
        "request + response bytes"
    );
    let l = r.latency_ns.as_ref().unwrap();
    assert_eq!(l.kind, "round_trip");
    assert_eq!(l.count, t, "one round trip per transaction");
    assert!(l.min > 0 && l.p99 >= l.p50);
    assert_eq!(r.integrity.seq_errors, 0);
    assert_eq!(r.integrity.verify_errors, 0);
    assert!(
        r.integrity.verified_bytes >= t * (200 - 16),
        "every response checked"
    );
    assert!(r.sender.reported, "the server's end frame arrived");
    // The server's socket sends the responses.
    common::assert_tcp_info(&r, t * 200);
    assert_eq!(r.spec.resp_size_bytes, Some(200));
    if spec.mode == Mode::A3 {
        let z = r.zerocopy.unwrap();
        assert_eq!(
            z.completions, z.sends,
            "server's zero-copy responses all completed"
        );
    }
}

#[test]
fn rr_every_mode_on_threads() {
    for mode in [Mode::A1, Mode::A2, Mode::A3] {
        assert_rr(&rr(mode, Engine::Threads));
    }
}

#[test]
fn rr_every_mode_on_uring() {
    if let Some(why) = sendpath_core::send::uring::missing_for(Mode::A3) {
        return sendpath_core::testing::skip(sendpath_core::testing::Skip::NoIoUring, &why);
    }
    for mode in [Mode::A1, Mode::A2, Mode::A3] {
        assert_rr(&rr(mode, Engine::Uring));
    }
}

#[test]
fn rr_busy_poll_is_recorded_and_works() {
    let spec = RunSpec {
        busy_poll: true,
        flows: 1,
        ..rr(Mode::A1, Engine::Threads)
    };
    let r = run_loopback(&spec, 0).unwrap();
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    assert!(r.spec.busy_poll);
    // Spinners share 2 CPUs with the rest of the test suite: only ask that it works.
    assert!(r.throughput.messages > 10, "{}", r.throughput.messages);
    assert_eq!(r.latency_ns.as_ref().unwrap().count, r.throughput.messages);
}

fn rate(rate: f64, msg: usize) -> RunSpec {
    RunSpec {
        pattern: Pattern::Rate,
        rate: Some(rate),
        duration_s: 1.0,
        warmup_s: 0.1,
        ..common::short(Mode::A1, msg, 1)
    }
}

#[test]
fn rate_far_below_capacity_is_kept_and_corrected_is_never_lower() {
    for engine in [Engine::Threads, Engine::Uring] {
        let spec = RunSpec {
            engine,
            ..rate(2000.0, 256)
        };
        let r = run_loopback(&spec, 0).unwrap();
        assert_eq!(r.status, Status::Ok, "{engine}: {:?}", r.error);
        let rt = r.rate.as_ref().unwrap();
        assert!(
            (rt.achieved_per_flow_per_s - 2000.0).abs() <= 0.05 * 2000.0,
            "{engine}: achieved {}",
            rt.achieved_per_flow_per_s
        );
        assert!(rt.kept);
        assert!(r.spec.tcp_nodelay, "latency patterns turn Nagle off");
        let c = r.latency_ns.as_ref().unwrap();
        let u = r.latency_uncorrected_ns.as_ref().unwrap();
        assert_eq!(c.kind, "one_way_from_intended");
        assert_eq!(c.count, u.count);
        assert_eq!(c.count, r.throughput.messages);
        assert!(
            c.p99 >= u.p99,
            "{engine}: corrected p99 {} < uncorrected {}",
            c.p99,
            u.p99
        );
        assert!(c.p50 >= u.p50);
    }
}

#[test]
fn a_stalled_receiver_shows_in_corrected_but_not_uncorrected_latency() {
    // 5000 msgs/s for 2 s; the receiver stops reading for 0.3 s with small socket buffers, so
    // the sender blocks: ~1500 messages (15%) are sent late. Measured from their actual send
    // time they look fine; measured from when they should have been sent, they do not.
    let spec = RunSpec {
        duration_s: 2.0,
        rx_stall: Some(RxStall {
            after_s: 0.5,
            for_s: 0.3,
        }),
        ..rate(5000.0, 1024)
    };
    let r = run_loopback(&spec, 0).unwrap();
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    let c = r.latency_ns.as_ref().unwrap();
    let u = r.latency_uncorrected_ns.as_ref().unwrap();
    assert!(
        c.p99 > 100_000_000,
        "corrected p99 {} ns should be ~0.3 s",
        c.p99
    );
    assert!(
        c.p99 > 20 * u.p99,
        "corrected p99 {} ns vs uncorrected {} ns",
        c.p99,
        u.p99
    );
}

#[test]
fn pattern_options_are_checked() {
    let base = common::short(Mode::A1, 64, 1);
    for (spec, needle) in [
        (
            RunSpec {
                pattern: Pattern::Rate,
                ..base.clone()
            },
            "--rate N",
        ),
        (
            RunSpec {
                pattern: Pattern::Rate,
                rate: Some(-1.0),
                ..base.clone()
            },
            "--rate -1",
        ),
        (
            RunSpec {
                rate: Some(10.0),
                ..base.clone()
            },
            "--rate needs --pattern rate",
        ),
        (
            RunSpec {
                pattern: Pattern::Rr,
                resp_size: Some(8),
                ..base.clone()
            },
            "--resp-size 8",
        ),
        (
            RunSpec {
                resp_size: Some(100),
                ..base.clone()
            },
            "--resp-size needs --pattern rr",
        ),
        (
            RunSpec {
                pattern: Pattern::Rr,
                latency: false,
                ..base.clone()
            },
            "drop --no-latency",
        ),
    ] {
        let e = run_loopback(&spec, 0).unwrap_err().to_string();
        assert!(e.contains(needle), "{e} should mention {needle}");
    }
}
