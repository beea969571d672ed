//! `--rx uring`: the io_uring multishot receiver, end to end over real sockets on 127.0.0.1.
//! Skipped, with the reason printed, where io_uring is unusable.

use crate::common::{assert_good_stream, fake_sender, pair, short};
use sendpath_core::pattern::run_receiver;
use sendpath_core::pattern::run_sender;
use sendpath_core::recv::RecvOptions;
use sendpath_core::results::FlowResult;
use sendpath_core::run::run_loopback;
use sendpath_core::send::uring::missing_for;
use sendpath_core::spec::{Engine, Mode, Pattern, RunSpec, RxMode};
use std::thread;
use std::time::{Duration, Instant};

fn usable() -> bool {
    match missing_for(Mode::A1) {
        Some(why) => {
            sendpath_core::testing::skip(sendpath_core::testing::Skip::NoIoUring, &why);
            false
        }
        None => true,
    }
}

fn uring_rx(buffers: Option<(usize, usize)>) -> RecvOptions {
    RecvOptions {
        uring_buffers: buffers,
        ..RecvOptions::new(RxMode::Uring)
    }
}

#[test]
fn every_mode_and_engine_with_the_uring_receiver() {
    if !usable() {
        return;
    }
    for (mode, engine, size) in [
        (Mode::A1, Engine::Threads, 64),
        (Mode::A2, Engine::Threads, 1003),
        (Mode::A3, Engine::Threads, 65536),
        (Mode::A1, Engine::Uring, 64),
        (Mode::A2, Engine::Uring, 16384),
    ] {
        let spec = RunSpec {
            engine,
            rx: RxMode::Uring,
            verify: true,
            ..short(mode, size, 2)
        };
        let r = run_loopback(&spec, 0).unwrap();
        assert_good_stream(&r);
        assert_eq!(r.spec.rx, RxMode::Uring);
        assert_eq!(r.integrity.verify_errors, 0, "{mode} {engine} {size}");
        assert!(r.integrity.verified_bytes > 0);
        assert_eq!(r.latency_ns.as_ref().unwrap().count, r.throughput.messages);
    }
}

#[test]
fn busy_polling_uring_receiver_keeps_receiving() {
    // A busy-polling receiver enters without waiting; on a DEFER_TASKRUN ring completions
    // only come when it still asks for events (a zero timeout), or it starves after the
    // first receive.
    if !usable() {
        return;
    }
    let spec = RunSpec {
        rx: RxMode::Uring,
        busy_poll: true,
        duration_s: 0.5,
        ..short(Mode::A1, 1024, 1)
    };
    let started = Instant::now();
    let r = run_loopback(&spec, 0).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        r.status,
        sendpath_core::report::v1::Status::Ok,
        "{:?}",
        r.error
    );
    assert!(r.throughput.messages > 10_000, "{}", r.throughput.messages);
    assert_eq!(r.integrity.seq_errors, 0);
}

#[test]
fn receive_buffers_out_of_range_are_refused() {
    if !usable() {
        return;
    }
    for bufs in [(0, 4096), (2, 0), (40_000, 16)] {
        let spec = short(Mode::A1, 256, 1);
        let (s, c) = pair();
        let t = thread::spawn(move || run_sender(s, &spec, 0));
        let f = run_receiver(c, uring_rx(Some(bufs)));
        let _ = t.join().unwrap();
        let e = f.error.expect("refused");
        assert!(e.contains("io_uring receive buffers"), "{bufs:?}: {e}");
    }
}

#[test]
fn rate_pattern_with_the_uring_receiver() {
    if !usable() {
        return;
    }
    let spec = RunSpec {
        pattern: Pattern::Rate,
        rate: Some(5000.0),
        rx: RxMode::Uring,
        ..short(Mode::A2, 256, 1)
    };
    let r = run_loopback(&spec, 0).unwrap();
    assert_eq!(
        r.status,
        sendpath_core::report::v1::Status::Ok,
        "{:?}",
        r.error
    );
    assert_eq!(r.integrity.seq_errors, 0);
    assert!(r.latency_uncorrected_ns.is_some());
    let rate = r.rate.unwrap();
    assert!(rate.kept, "{rate:?}");
}

#[test]
fn rearms_when_the_buffers_run_out_and_loses_nothing() {
    // Two 4 KiB buffers against a sender of 1003-byte messages: the kernel runs out of
    // buffers over and over, ends the multishot recv with ENOBUFS, and it is re-armed.
    if !usable() {
        return;
    }
    let spec = RunSpec {
        verify: true,
        ..short(Mode::A1, 1003, 1)
    };
    let (s, c) = pair();
    let sp = spec.clone();
    let t = thread::spawn(move || run_sender(s, &sp, 0));
    let f = run_receiver(c, uring_rx(Some((2, 4096))));
    t.join().unwrap().unwrap();
    assert_eq!(f.error, None);
    assert!(f.sender.is_some(), "the end frame arrived");
    assert!(f.messages > 1000, "{}", f.messages);
    assert_eq!((f.seq_errors, f.verify_errors), (0, 0));
    assert!(f.rx_rearms > 0, "ENOBUFS never happened");
}

fn receive_from_fake(seqs: Vec<u64>, corrupt: Option<u64>, end: bool) -> (FlowResult, Duration) {
    let spec = RunSpec {
        warmup_s: 0.0,
        duration_s: 5.0,
        verify: true,
        ..RunSpec::default()
    };
    let (s, c) = pair();
    let t = thread::spawn(move || fake_sender(s, spec, seqs, corrupt, end));
    let started = Instant::now();
    let f = run_receiver(c, uring_rx(None));
    t.join().unwrap();
    (f, started.elapsed())
}

#[test]
fn counts_gaps_repeats_and_bad_payloads() {
    if !usable() {
        return;
    }
    let (f, _) = receive_from_fake(vec![0, 1, 3, 3, 4, 5], Some(4), true);
    assert_eq!(f.error, None);
    assert_eq!(f.messages, 6);
    // 1 -> 3 is a gap, 3 -> 3 a repeat; 4 follows 3 again.
    assert_eq!(f.seq_errors, 2);
    assert_eq!(f.verify_errors, 1);
    assert!(f.sender.is_some());
}

#[test]
fn a_sender_that_vanishes_keeps_what_was_measured() {
    if !usable() {
        return;
    }
    let (f, took) = receive_from_fake((0..100).collect(), None, false);
    assert!(took < Duration::from_secs(3), "ends when the peer closes");
    assert_eq!(f.messages, 100);
    assert!(f.sender.is_none());
    assert!(f
        .error
        .unwrap()
        .contains("sender's side of the record is missing"));
}
