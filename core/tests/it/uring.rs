//! Every mode on the io_uring engine, end to end over real sockets on 127.0.0.1.
//!
//! A test whose opcode this kernel's io_uring lacks (or where io_uring is disabled) is skipped
//! with the reason printed, as io-uring's own tests do, rather than failing.

use crate::common::{assert_good_stream, short};
use sendpath_core::report::v1::{Record, Status};
use sendpath_core::run::run_loopback;
use sendpath_core::send::uring::{bundle_missing, missing_for};
use sendpath_core::spec::{Batch, Engine, Mode, RunSpec, RxStall, UringOpts, UringOrdering};

/// The spec on the io_uring engine, or None (after printing why) if this kernel cannot run it.
fn uring(mode: Mode, msg_size: usize, flows: usize) -> Option<RunSpec> {
    if let Some(why) = missing_for(mode) {
        sendpath_core::testing::skip(sendpath_core::testing::Skip::NoIoUring, &why);
        return None;
    }
    Some(RunSpec {
        engine: Engine::Uring,
        ..short(mode, msg_size, flows)
    })
}

/// The spec on the io_uring engine sending bundles of `depth` messages, or None (after
/// printing why) if this kernel cannot.
fn bundles(mode: Mode, msg_size: usize, flows: usize, depth: usize) -> Option<RunSpec> {
    if let Some(why) = bundle_missing() {
        sendpath_core::testing::skip(sendpath_core::testing::Skip::NoIoUring, &why);
        return None;
    }
    let spec = uring(mode, msg_size, flows)?;
    Some(RunSpec {
        batch: batch_of(depth, msg_size),
        uring: UringOpts {
            depth,
            batch: depth,
            ordering: UringOrdering::Bundle,
        },
        ..spec
    })
}

/// The batch of `messages` messages of `msg_size` bytes.
fn batch_of(messages: usize, msg_size: usize) -> Batch {
    match messages {
        1 => Batch::One,
        n => Batch::Bytes((n * msg_size) as u64),
    }
}

fn assert_uring_record(r: &Record, threads: u64) {
    assert_good_stream(r);
    assert_eq!(r.spec.engine, Engine::Uring);
    assert_eq!(r.spec.threads, threads);
    let u = r.spec.uring.as_ref().expect("uring tunables recorded");
    assert!(u.depth >= 1 && u.batch >= 1);
    assert!(
        ["link", "bundle", "coalesce"].contains(&u.ordering.as_str()),
        "{}",
        u.ordering
    );
    assert!(!r.host.io_uring_ops.is_empty());
    assert!(r.host.io_uring_error.is_none());
}

fn assert_zerocopy_all_notified(r: &Record) {
    let z = r
        .zerocopy
        .as_ref()
        .expect("A3 reports zero-copy accounting");
    assert!(z.messages >= r.throughput.messages, "{z:?}");
    assert!(
        z.sends > 0 && z.sends <= z.messages + z.messages / 2,
        "{z:?}"
    );
    assert_eq!(z.completions, z.sends, "one notification per SEND_ZC");
    let hold = z.slot_hold_ns.as_ref().expect("slot hold times recorded");
    assert_eq!(hold.kind, "slot_hold");
    assert!(
        hold.count >= r.throughput.messages && hold.p50 > 0,
        "{hold:?}"
    );
    // Loopback delivers locally: the kernel copies and REPORT_USAGE says so.
    assert_eq!(z.copied_fraction, Some(1.0), "{z:?}");
    assert_eq!(z.verdict, "not_achieved");
}

#[test]
fn every_mode_two_flows_on_uring() {
    for mode in [Mode::A1, Mode::A2, Mode::A3] {
        let Some(spec) = uring(mode, 1024, 2) else {
            continue;
        };
        let r = run_loopback(&spec, 0).unwrap();
        assert_uring_record(&r, 2);
        let setup = &r.spec.uring.as_ref().unwrap().setup_flags;
        assert!(
            !setup.is_empty() || r.host.kernel.starts_with('5'),
            "setup flags recorded: {setup:?}"
        );
        if mode == Mode::A3 {
            assert_zerocopy_all_notified(&r);
        } else {
            assert!(r.zerocopy.is_none());
        }
    }
}

#[test]
fn smallest_and_odd_messages_stay_in_order_with_verify() {
    for (mode, size) in [
        (Mode::A1, 16),
        (Mode::A2, 16),
        (Mode::A1, 1003),
        (Mode::A2, 1003),
    ] {
        let Some(spec) = uring(mode, size, 1) else {
            continue;
        };
        let r = run_loopback(
            &RunSpec {
                verify: true,
                ..spec
            },
            0,
        )
        .unwrap();
        assert_uring_record(&r, 1);
        assert_eq!(r.integrity.verify_errors, 0);
    }
}

#[test]
fn a3_uring_verify_under_load_with_tiny_slot_pool() {
    // Two slots per flow and 64 KiB messages: a slot is reused as soon as its notification
    // arrives, so a slot rewritten before it would corrupt payloads the receiver checks.
    let Some(spec) = uring(Mode::A3, 65536, 2) else {
        return;
    };
    let spec = RunSpec {
        zc_slots: 2,
        verify: true,
        ..spec
    };
    let r = run_loopback(&spec, 0).unwrap();
    assert_uring_record(&r, 2);
    assert_zerocopy_all_notified(&r);
    assert_eq!(r.integrity.verify_errors, 0);
    assert!(
        r.integrity.verified_bytes > 10 * 65536,
        "{}",
        r.integrity.verified_bytes
    );
    let z = r.zerocopy.unwrap();
    assert!(z.max_outstanding <= 2, "never more than the pool: {z:?}");
}

#[test]
fn four_flows_multiplexed_on_two_rings() {
    for mode in [Mode::A1, Mode::A3] {
        let Some(spec) = uring(mode, 4096, 4) else {
            continue;
        };
        let spec = RunSpec {
            threads: Some(2),
            verify: true,
            uring: UringOpts {
                depth: 8,
                batch: 4,
                ..UringOpts::default()
            },
            ..spec
        };
        let r = run_loopback(&spec, 0).unwrap();
        assert_uring_record(&r, 2);
        assert_eq!(r.integrity.verify_errors, 0);
        let u = r.spec.uring.as_ref().unwrap();
        assert_eq!((u.depth, u.batch), (8, 4));
        if mode == Mode::A3 {
            assert_zerocopy_all_notified(&r);
        }
    }
}

#[test]
fn depth_one_is_one_send_in_flight() {
    for (mode, ordering) in [
        (Mode::A1, UringOrdering::Link),
        (Mode::A2, UringOrdering::Link),
        (Mode::A1, UringOrdering::Bundle),
        (Mode::A2, UringOrdering::Bundle),
    ] {
        if ordering == UringOrdering::Bundle && bundle_missing().is_some() {
            continue;
        }
        let Some(spec) = uring(mode, 256, 1) else {
            return;
        };
        let r = run_loopback(
            &RunSpec {
                uring: UringOpts {
                    depth: 1,
                    batch: 1,
                    ordering,
                },
                ..spec
            },
            0,
        )
        .unwrap();
        assert_uring_record(&r, 1);
        assert_eq!(r.spec.uring.as_ref().unwrap().ordering, ordering);
    }
}

/// The spec on the io_uring engine with coalesced zero-copy sends of up to `depth` messages
/// from `slots` slots, or None if this kernel cannot.
fn coalesced(msg_size: usize, flows: usize, depth: usize, slots: usize) -> Option<RunSpec> {
    Some(RunSpec {
        zc_slots: slots,
        batch: batch_of(depth, msg_size),
        uring: UringOpts {
            depth,
            batch: depth,
            ordering: UringOrdering::Coalesce,
        },
        ..uring(Mode::A3, msg_size, flows)?
    })
}

#[test]
fn coalesced_zero_copy_is_the_default_of_a_batch_and_carries_it() {
    let Some(mut spec) = uring(Mode::A3, 1024, 2) else {
        return;
    };
    spec.batch = Batch::Bytes(512 << 10);
    spec.resolve_batch(None, None, None, None).unwrap();
    assert_eq!(spec.uring.ordering, UringOrdering::Coalesce);
    let r = run_loopback(&spec, 0).unwrap();
    assert_uring_record(&r, 2);
    assert_zerocopy_all_notified(&r);
    let z = r.zerocopy.unwrap();
    let per_send = z.messages_per_send.unwrap();
    assert!(
        per_send > 8.0 && per_send <= 512.0,
        "messages per SEND_ZC: {per_send} ({z:?})"
    );
    assert_eq!(
        r.spec.uring.as_ref().unwrap().ordering,
        UringOrdering::Coalesce
    );
}

#[test]
fn coalesced_sends_keep_order_and_payloads_with_few_slots() {
    // Few slots, runs of up to 3 messages that end at the pool's end (7 is not a multiple of
    // 3), 2 flows on one ring: a slot rewritten before the notification of every send over its
    // run would corrupt a payload the receiver checks.
    for (size, flows) in [(16, 1), (1003, 2), (65536, 2)] {
        let Some(spec) = coalesced(size, flows, 3, 7) else {
            return;
        };
        let r = run_loopback(
            &RunSpec {
                verify: true,
                threads: Some(1),
                ..spec
            },
            0,
        )
        .unwrap();
        assert_uring_record(&r, 1);
        assert_zerocopy_all_notified(&r);
        assert_eq!(r.integrity.verify_errors, 0, "{size}");
        assert_eq!(r.integrity.verified_bytes > 0, size > 16, "{size}");
        let z = r.zerocopy.unwrap();
        assert!(z.max_outstanding <= 7, "never more than the pool: {z:?}");
        assert!(z.messages_per_send.unwrap() > 1.0, "{z:?}");
    }
}

#[test]
fn coalesced_sends_survive_a_stalled_receiver_and_tiny_buffers() {
    // The receiver stops reading for 0.2 s with tiny socket buffers: the sends in flight
    // block half done and every slot waits for its notification; nothing may be reordered,
    // repeated or rewritten early, and every notification must still arrive.
    for size in [1003, 16384] {
        let Some(spec) = coalesced(size, 1, 16, 32) else {
            return;
        };
        let r = run_loopback(
            &RunSpec {
                verify: true,
                duration_s: 0.6,
                rx_stall: Some(RxStall {
                    after_s: 0.1,
                    for_s: 0.2,
                }),
                ..spec
            },
            0,
        )
        .unwrap();
        assert_eq!(r.status, Status::Ok, "{:?}", r.error);
        assert!(r.integrity.seq_checked);
        assert_eq!(r.integrity.seq_errors, 0, "{size}");
        assert_eq!(r.integrity.verify_errors, 0, "{size}");
        let z = r.zerocopy.as_ref().unwrap();
        assert_eq!(z.completions, z.sends);
        let hold = z.slot_hold_ns.as_ref().unwrap();
        assert!(
            hold.max >= 100_000_000,
            "a slot was held through the stall: {hold:?}"
        );
    }
}

#[test]
fn missing_opcode_is_reported_not_failed() {
    // On a kernel without SEND_ZC this names the opcode; here every opcode exists.
    match missing_for(Mode::A3) {
        Some(why) => {
            sendpath_core::testing::skip(sendpath_core::testing::Skip::NoIoUring, &why);
            assert!(why.contains("send_zc") || why.contains("io_uring"), "{why}");
        }
        None => {
            let ops = &sendpath_core::host::facts().io_uring_ops;
            for op in ["send", "sendmsg", "send_zc"] {
                assert!(ops.iter().any(|o| o == op), "{ops:?}");
            }
        }
    }
}

#[test]
fn bundles_keep_every_size_in_order_with_verify() {
    // 16 B: header-only messages (A2 pushes one ring entry per message); 1003 B: messages
    // that straddle every segment boundary; 64 KiB: bundles larger than the socket takes.
    for (mode, size, flows, depth) in [
        (Mode::A1, 16, 1, 32),
        (Mode::A2, 16, 1, 32),
        (Mode::A1, 1003, 2, 64),
        (Mode::A2, 1003, 2, 64),
        (Mode::A1, 65536, 1, 16),
        (Mode::A2, 65536, 1, 16),
    ] {
        let Some(spec) = bundles(mode, size, flows, depth) else {
            return;
        };
        let r = run_loopback(
            &RunSpec {
                verify: true,
                ..spec
            },
            0,
        )
        .unwrap();
        assert_uring_record(&r, flows as u64);
        assert_eq!(
            r.spec.uring.as_ref().unwrap().ordering,
            UringOrdering::Bundle
        );
        assert_eq!(r.integrity.verify_errors, 0, "{mode} {size}");
        assert_eq!(r.integrity.verified_bytes > 0, size > 16, "{mode} {size}");
    }
}

#[test]
fn short_bundles_resume_exactly_where_they_stopped() {
    // Tiny socket buffers, a receiver that stalls, and bundles of 256 x 16 KiB (A1) or
    // 512 entries (A2): the kernel completes bundles short (here about a hundred per run)
    // and consumes ring entries it did not send. A byte sent twice or skipped would show up
    // as a sequence or payload error.
    for (mode, size) in [(Mode::A1, 16384), (Mode::A2, 1003)] {
        let Some(spec) = bundles(mode, size, 1, 256) else {
            return;
        };
        let r = run_loopback(
            &RunSpec {
                verify: true,
                duration_s: 0.6,
                rx_stall: Some(RxStall {
                    after_s: 0.1,
                    for_s: 0.2,
                }),
                ..spec
            },
            0,
        )
        .unwrap();
        // (The stall hook turns Nagle off, so this is not a plain stream record.)
        assert_eq!(r.status, Status::Ok, "{:?}", r.error);
        assert_eq!(
            r.spec.uring.as_ref().unwrap().ordering,
            UringOrdering::Bundle
        );
        assert!(r.integrity.seq_checked);
        assert_eq!(r.integrity.seq_errors, 0, "{mode} {size}");
        assert_eq!(r.integrity.verify_errors, 0, "{mode} {size}");
        assert!(r.integrity.verified_bytes > 0);
        assert!(r.throughput.messages > 0);
    }
}

#[test]
fn bundles_multiplex_eight_flows_on_two_rings() {
    let Some(spec) = bundles(Mode::A1, 64, 8, 32) else {
        return;
    };
    let r = run_loopback(
        &RunSpec {
            threads: Some(2),
            ..spec
        },
        0,
    )
    .unwrap();
    assert_uring_record(&r, 2);
    assert_eq!(r.latency_ns.as_ref().unwrap().count, r.throughput.messages);
}

#[test]
fn threads_engine_record_has_no_uring_object() {
    let r = run_loopback(&short(Mode::A1, 512, 1), 0).unwrap();
    assert_eq!(r.status, Status::Ok);
    assert!(r.spec.uring.is_none());
    assert_eq!(r.spec.threads, 1);
}
