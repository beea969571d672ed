//! Every mode on the threads engine, end to end over real sockets on 127.0.0.1.

use crate::common;

use crate::common::{assert_good_stream, fake_sender, pair, short};
use sendpath_core::pattern::run_receiver;
use sendpath_core::pattern::run_sender;
use sendpath_core::recv::RecvOptions;
use sendpath_core::report::v1::{Record, Status};
use sendpath_core::report::{from_flows, Context};
use sendpath_core::run::run_loopback;
use sendpath_core::spec::{Mode, RunSpec, RxMode};
use sendpath_core::{host, Error};
use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn a1_two_flows_all_messages_accounted() {
    let r = run_loopback(&short(Mode::A1, 1024, 2), 0).unwrap();
    assert_good_stream(&r);
    assert!(r.zerocopy.is_none());
}

#[test]
fn a2_two_flows_all_messages_accounted() {
    let r = run_loopback(&short(Mode::A2, 1024, 2), 0).unwrap();
    assert_good_stream(&r);
    assert!(r.zerocopy.is_none());
}

#[test]
fn a2_smallest_message_is_header_only() {
    let r = run_loopback(&short(Mode::A2, 16, 1), 0).unwrap();
    assert_good_stream(&r);
}

#[test]
fn a3_two_flows_every_send_completed_and_copy_reported() {
    let r = run_loopback(&short(Mode::A3, 4096, 2), 0).unwrap();
    assert_good_stream(&r);
    let z = r.zerocopy.expect("A3 reports zero-copy accounting");
    assert!(z.sends >= r.throughput.messages, "{z:?}");
    assert_eq!(z.completions, z.sends, "every zero-copy send completed");
    assert!(z.max_outstanding >= 1 && z.max_outstanding <= 2 * 64);
    // On loopback the kernel copies data delivered locally: every completion says COPIED,
    // and the record must say zero-copy was not achieved.
    assert_eq!(z.copied_fraction, Some(1.0));
    assert_eq!(z.verdict, "not_achieved");
}

#[test]
fn a3_verify_under_load_with_tiny_slot_pool() {
    // Two slots per flow and 64 KiB messages: slots are reused constantly, so a slot
    // rewritten before its completion would corrupt payloads the receiver checks.
    let spec = RunSpec {
        zc_slots: 2,
        verify: true,
        ..short(Mode::A3, 65536, 2)
    };
    let r = run_loopback(&spec, 0).unwrap();
    assert_good_stream(&r);
    assert_eq!(r.integrity.verify_errors, 0);
    assert!(
        r.integrity.verified_bytes > 10 * 65536,
        "{}",
        r.integrity.verified_bytes
    );
    let z = r.zerocopy.unwrap();
    assert_eq!(z.completions, z.sends);
    assert!(
        z.max_outstanding <= 2 * 2,
        "never more than the pool per flow: {z:?}"
    );
}

#[test]
fn verify_passes_for_copy_modes_with_odd_sizes() {
    for mode in [Mode::A1, Mode::A2] {
        let spec = RunSpec {
            verify: true,
            ..short(mode, 1000 + 3, 1)
        };
        let r = run_loopback(&spec, 0).unwrap();
        assert_good_stream(&r);
        assert!(r.integrity.verified_bytes > 0);
    }
}

#[test]
fn rx_discard_counts_bytes_without_latency() {
    let spec = RunSpec {
        rx: RxMode::Discard,
        ..short(Mode::A2, 4096, 1)
    };
    let r = run_loopback(&spec, 0).unwrap();
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    assert!(r.throughput.bytes > 0);
    assert!(
        r.latency_ns.is_none(),
        "no latency with a discarding receiver"
    );
    assert!(!r.integrity.seq_checked);
    assert_eq!(
        r.integrity.seq_errors, 0,
        "the tail after the window is still checked"
    );
    assert!(r.sender.reported, "end frame still read after discarding");
    assert_eq!(r.spec.rx, RxMode::Discard);
}

#[test]
fn no_latency_run_has_null_latency() {
    let spec = RunSpec {
        latency: false,
        ..short(Mode::A1, 256, 1)
    };
    let r = run_loopback(&spec, 0).unwrap();
    assert_eq!(r.status, Status::Ok);
    assert!(r.latency_ns.is_none());
    assert!(r.throughput.messages > 0);
}

#[test]
fn invalid_spec_is_an_error_not_a_record() {
    let e = run_loopback(&short(Mode::A1, 8, 1), 0).unwrap_err();
    assert!(matches!(e, Error::InvalidSpec(_)), "{e}");
}

fn opts() -> RecvOptions {
    RecvOptions::new(RxMode::Copy)
}

fn record_of(spec: &RunSpec, flows: &[sendpath_core::results::FlowResult]) -> Record {
    let ctx = Context {
        topology: "loopback".into(),
        rep: 0,
        threads: 1,
        started_at: host::utc_now_rfc3339(),
    };
    from_flows(spec, &ctx, host::facts(), flows)
}

#[test]
fn receiver_counts_gaps_repeats_and_bad_payloads() {
    let spec = RunSpec {
        warmup_s: 0.0,
        duration_s: 5.0,
        verify: true,
        ..RunSpec::default()
    };
    let (s, c) = pair();
    let sp = spec.clone();
    let t = thread::spawn(move || fake_sender(s, sp, vec![0, 1, 3, 3, 4, 5], Some(4), true));
    let f = run_receiver(c, opts());
    t.join().unwrap();
    assert_eq!(f.error, None);
    assert_eq!(f.messages, 6);
    // 1 -> 3 is a gap, 3 -> 3 a repeat; 4 follows 3 again.
    assert_eq!(f.seq_errors, 2);
    assert_eq!(f.verify_errors, 1);
    let r = record_of(&spec, &[f]);
    assert_eq!(r.status, Status::Failed);
    let e = r.error.unwrap();
    assert!(
        e.contains("2 sequence errors") && e.contains("wrong payload"),
        "{e}"
    );
}

#[test]
fn a_stream_that_delivers_nothing_is_a_failed_record() {
    let spec = RunSpec {
        warmup_s: 0.0,
        duration_s: 5.0,
        ..RunSpec::default()
    };
    let (s, c) = pair();
    let sp = spec.clone();
    let t = thread::spawn(move || fake_sender(s, sp, vec![], None, true));
    let f = run_receiver(c, opts());
    t.join().unwrap();
    assert_eq!(f.error, None);
    let r = record_of(&spec, &[f]);
    assert_eq!(r.status, Status::Failed);
    assert!(
        r.error.as_deref().unwrap().contains("no message arrived"),
        "{:?}",
        r.error
    );
}

#[test]
fn sender_vanishing_mid_run_keeps_what_was_measured() {
    let spec = RunSpec {
        warmup_s: 0.0,
        duration_s: 5.0,
        ..RunSpec::default()
    };
    let (s, c) = pair();
    let sp = spec.clone();
    let t = thread::spawn(move || fake_sender(s, sp, (0..100).collect(), None, false));
    let started = Instant::now();
    let f = run_receiver(c, opts());
    t.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "ends when the peer closes"
    );
    assert_eq!(f.messages, 100, "measured messages kept");
    let r = record_of(&spec, &[f]);
    assert_eq!(r.status, Status::Failed);
    assert!(!r.sender.reported, "the sender's side is missing");
    assert!(r
        .error
        .unwrap()
        .contains("sender's side of the record is missing"));
    assert_eq!(r.throughput.messages, 100);
}

#[test]
fn discard_receiver_never_loses_an_end_frame_that_comes_early() {
    // The receiver reads the hello 80 ms late, so its window ends 80 ms after the sender's:
    // a receiver that discarded until a time margin before its own window's end threw the
    // end frame away with the bytes. Every receiver must get it, whatever the timing.
    for rx in [RxMode::Discard, RxMode::Copy, RxMode::Uring] {
        for mode in [Mode::A1, Mode::A3] {
            let spec = RunSpec {
                rx,
                ..short(mode, 16384, 1)
            };
            let f = common::late_receiver(spec, rx, Duration::from_millis(80));
            assert!(f.error.is_none(), "{rx} {mode}: {:?}", f.error);
            let sender = f.sender.expect("end frame read");
            assert!(sender.error.is_none());
            assert!(sender.messages > 0 && f.bytes > 0, "{rx} {mode}");
            if mode == Mode::A3 {
                let z = sender.zerocopy.expect("zero-copy accounting");
                assert_eq!(z.sends, z.completions);
            }
        }
    }
}

#[test]
fn a_sender_stops_when_asked_for_the_end_and_only_counts_its_window() {
    // The sender goes on past its window until the receiver asks for the end frame, but its
    // report counts the messages sent inside its window only.
    let spec = short(Mode::A2, 1024, 1);
    let f = common::late_receiver(spec, RxMode::Copy, Duration::from_millis(100));
    let s = f.sender.expect("end frame");
    assert!(s.messages > 0);
    assert!(
        f.messages > 0 && f.seq_errors == 0,
        "the receiver's own window is full of messages"
    );
    assert!(
        s.counters.counters.task_clock_ns.unwrap() < 350_000_000,
        "sender counters cover its 0.3 s window, not the 0.1 s after it: {:?}",
        s.counters.counters.task_clock_ns
    );
}

#[test]
fn receiver_vanishing_mid_run_ends_the_sender_with_a_clear_error() {
    let spec = RunSpec {
        warmup_s: 0.0,
        duration_s: 30.0,
        ..RunSpec::default()
    };
    let (s, mut c) = pair();
    // The receiver goes once the data is flowing: after its first megabyte.
    let t = thread::spawn(move || {
        let (mut buf, mut got) = (vec![0u8; 64 << 10], 0);
        while got < 1 << 20 {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        drop(c);
        got
    });
    let started = Instant::now();
    let e = run_sender(s, &spec, 0).unwrap_err();
    assert!(
        t.join().unwrap() >= 1 << 20,
        "the data flowed before the receiver went"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no hang: {:?}",
        started.elapsed()
    );
    assert!(matches!(e, Error::PeerClosed(_)), "{e}");
}

#[test]
fn a_peer_that_is_not_sendpath_is_rejected() {
    let (mut s, c) = pair();
    s.write_all(&[b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".as_slice(); 8].concat())
        .unwrap();
    let f = run_receiver(c, opts());
    assert!(f.error.unwrap().contains("not a sendpath sender"));
}

#[test]
fn a3_on_a_socket_without_zerocopy_fails_clearly() {
    // A Unix socket refuses SO_ZEROCOPY like a kernel without it: A3 must say so, never
    // fall back to a copying send.
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    use std::os::fd::AsRawFd;
    let spec = short(Mode::A3, 1024, 1);
    let e = sendpath_core::send::threads::for_mode(&spec, a.as_raw_fd())
        .err()
        .expect("A3 must refuse");
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    assert!(e.to_string().contains("SO_ZEROCOPY"));
}

#[test]
fn placement_is_recorded_and_honoured() {
    use sendpath_core::affinity::pin_for;
    use sendpath_core::spec::Placement;
    for placement in [Placement::Apart, Placement::Together] {
        let pin = pin_for(placement).unwrap().expect("pinned");
        let spec = RunSpec {
            placement,
            pin: Some(pin.clone()),
            ..short(Mode::A1, 1024, 2)
        };
        let r = run_loopback(&spec, 0).unwrap();
        assert_good_stream(&r);
        assert_eq!(r.spec.placement, Some(placement));
        let as_u64 = |v: &[usize]| v.iter().map(|&c| c as u64).collect::<Vec<_>>();
        assert!(!r.sender.cpus.is_empty() && !r.receiver.cpus.is_empty());
        for c in &r.sender.cpus {
            assert!(
                as_u64(&pin.sender).contains(c),
                "{placement}: sender on {c}"
            );
        }
        for c in &r.receiver.cpus {
            assert!(
                as_u64(&pin.receiver).contains(c),
                "{placement}: receiver on {c}"
            );
        }
        if placement == Placement::Together {
            assert_eq!(r.sender.cpus, r.receiver.cpus);
        }
        // The host's speed was probed on the sender's CPU, on both sides of the flows.
        let h = r.host_speed.as_ref().expect("a local run probes the host");
        assert_eq!(h.cpu, Some(pin.sender[0] as u64));
        assert!(h.before_ns > 0 && h.after_ns > 0, "{h:?}");
        assert_eq!(h.probe, sendpath_core::speed::PROBE_NAME);
    }
    let r = run_loopback(&short(Mode::A1, 1024, 1), 0).unwrap();
    assert_eq!(r.spec.placement, Some(Placement::Unpinned));
    assert!(r.spec.pin.is_none());
    assert_eq!(
        r.host_speed.as_ref().map(|h| h.cpu),
        Some(None),
        "unpinned probe"
    );
}
