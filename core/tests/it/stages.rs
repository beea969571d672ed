//! `--timestamps`: where a message's time goes, from the kernel's stamps, on real sockets.
//! Every mode's stream and rr record has the stages, in order, adding up to end-to-end; A3's
//! zero-copy completions and its timestamps share one error queue and both are counted;
//! records without `--timestamps` do not change.

use crate::common;
use sendpath_core::report::v1::{Record, Status};
use sendpath_core::run::run_loopback;
use sendpath_core::send::uring::bundle_missing;
use sendpath_core::spec::{
    Batch, Engine, Mode, Pattern, RunSpec, RxMode, UringOpts, UringOrdering,
};

fn stamped(mode: Mode, engine: Engine, pattern: Pattern, size: usize) -> RunSpec {
    RunSpec {
        engine,
        pattern,
        timestamps: Some(4),
        ..common::short(mode, size, 1)
    }
}

fn assert_stages(r: &Record) {
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    let s = r.stages.as_ref().expect("stages recorded");
    // One in 4, except that an io_uring stream stamps whole sends: one in its depth.
    let every = match &r.spec.uring {
        Some(u) if r.spec.pattern == Pattern::Stream => 4u64.next_multiple_of(u.depth),
        _ => 4,
    };
    assert_eq!(r.spec.timestamps_every, Some(every));
    assert_eq!(s.every, every);
    assert!(s.sampled > 0 && s.joined > 0, "{s:?}");
    assert!(s.joined <= s.sampled);
    // Each stamp no earlier than the one before. Streams allow a few: with a long receive
    // queue a read's stamp can be older than the message's last packet (see the record's
    // `out_of_order`), so a message can read as received before it left the device.
    if r.spec.pattern == Pattern::Rr {
        assert_eq!(
            s.out_of_order, 0,
            "every stamp no earlier than the one before"
        );
    } else {
        assert!(
            s.out_of_order * 50 <= s.joined,
            "{} of {} out of order",
            s.out_of_order,
            s.joined
        );
    }
    let stage = |l: &Option<sendpath_core::report::v1::Latency>| {
        let l = l.as_ref().expect("stage present");
        assert_eq!(
            l.count, s.joined,
            "{}: one sample per joined message",
            l.kind
        );
        assert!(l.p50 <= l.p99 && l.min <= l.p50);
        l.mean
    };
    let parts = stage(&s.user_to_sched_ns)
        + stage(&s.sched_to_device_ns)
        + stage(&s.device_to_stack_ns)
        + stage(&s.stack_to_user_ns);
    let e2e = stage(&s.end_to_end_ns);
    // Each joined message's stages add up to its end-to-end time, so the means add up too
    // (to the histograms' 3 significant digits); medians need not.
    assert!(
        (parts - e2e).abs() <= 0.01 * e2e,
        "stage means add to {parts:.0} ns, end-to-end mean {e2e:.0} ns"
    );
    let ack = s.send_to_ack_ns.as_ref().expect("ACK stamps");
    assert!(ack.count >= s.joined && ack.p50 > 0);
}

#[test]
fn every_mode_has_its_stages_in_order_on_streams_and_rr() {
    for mode in [Mode::A1, Mode::A2, Mode::A3] {
        let r = run_loopback(&stamped(mode, Engine::Threads, Pattern::Stream, 4096), 0).unwrap();
        assert_stages(&r);
        common::assert_good_stream(&r);
        let r = run_loopback(&stamped(mode, Engine::Threads, Pattern::Rr, 64), 0).unwrap();
        assert_stages(&r);
    }
    // rr sends one message per call on io_uring too.
    let r = run_loopback(&stamped(Mode::A1, Engine::Uring, Pattern::Rr, 64), 0).unwrap();
    assert_stages(&r);
}

#[test]
fn io_uring_streams_stamp_every_sample_whatever_the_ordering() {
    // A ring sends many messages per call and many calls at once; the loop cuts its sends so
    // that each sample ends its call, alone on the armed socket. Every sample is then stamped
    // (not only those that happened to end a call), and each joins the receiver's stamps of
    // the same message, in order.
    for (mode, ordering, depth) in [
        (Mode::A1, UringOrdering::Bundle, 64),
        (Mode::A2, UringOrdering::Bundle, 16),
        (Mode::A1, UringOrdering::Link, 8),
        (Mode::A3, UringOrdering::Link, 8),
        (Mode::A3, UringOrdering::Coalesce, 16),
    ] {
        if ordering == UringOrdering::Bundle && bundle_missing().is_some() {
            continue;
        }
        let spec = RunSpec {
            uring: UringOpts {
                depth,
                batch: depth,
                ordering,
            },
            // A bundle or a coalesced send carries the batch: `depth` messages.
            batch: match ordering {
                UringOrdering::Link => Batch::One,
                _ => Batch::Bytes(depth as u64 * 1024),
            },
            zc_slots: 4 * depth,
            verify: true,
            timestamps: Some(3),
            ..stamped(mode, Engine::Uring, Pattern::Stream, 1024)
        };
        let r = run_loopback(&spec, 0).unwrap();
        let what = format!("{mode:?} {ordering:?}");
        assert_eq!(r.status, Status::Ok, "{what}: {:?}", r.error);
        assert_stages(&r);
        common::assert_good_stream(&r);
        assert_eq!(r.integrity.verify_errors, 0, "{what}");
        let s = r.stages.as_ref().unwrap();
        // One in `every` (4 rounded up to whole sends) of the window's messages, give or take
        // the window's edges (the sender's window, by send time, and the receiver's, by
        // arrival, drift apart by tens of ms under a loaded CI: a loose bound, which still
        // catches samples stamped only now and then).
        assert_eq!(s.every, depth as u64);
        let want = r.throughput.messages / s.every;
        assert!(
            s.sampled * 2 >= want && s.sampled <= 2 * want + 2,
            "{what}: {} samples stamped of {} messages",
            s.sampled,
            r.throughput.messages
        );
        if mode == Mode::A3 {
            let z = r.zerocopy.as_ref().unwrap();
            assert_eq!(z.completions, z.sends, "{what}: every SEND_ZC notified");
        }
    }
}

#[test]
fn dense_samples_keep_their_own_stamps() {
    // 64 B messages, one in 64 stamped: samples 4 KiB apart would share packets, and TCP keeps
    // only the later sample's key, leaving the earlier without stamps (measured without
    // MSG_EOR: 939 of 2063 samples). A sampled call goes with MSG_EOR, so TCP appends nothing
    // after it, and the samples keep their stamps (0 lost here, under load too).
    let spec = RunSpec {
        timestamps: Some(64),
        ..common::short(Mode::A1, 64, 1)
    };
    let r = run_loopback(&spec, 0).unwrap();
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    let s = r.stages.as_ref().unwrap();
    assert!(
        s.sampled > 100 && s.unmatched_stamps * 4 <= s.sampled,
        "{} of {} samples without their stamps",
        s.unmatched_stamps,
        s.sampled
    );
}

#[test]
fn a3_completions_and_timestamps_share_the_error_queue_and_both_count() {
    // Few slots, so the sender reaps completions all the time, with every other message
    // stamped: the reaper meets timestamps and the stamper meets completions.
    let spec = RunSpec {
        zc_slots: 8,
        timestamps: Some(2),
        verify: true,
        ..common::short(Mode::A3, 16384, 2)
    };
    let r = run_loopback(&spec, 0).unwrap();
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    let z = r.zerocopy.as_ref().unwrap();
    assert!(z.sends > 0);
    assert_eq!(z.completions, z.sends, "every zero-copy send completed");
    assert_eq!(r.integrity.verify_errors, 0, "no slot rewritten early");
    let s = r.stages.as_ref().unwrap();
    assert!(s.joined > 0 && s.out_of_order * 50 <= s.joined, "{s:?}");
    assert!(s.send_to_ack_ns.as_ref().unwrap().count > 0);
}

#[test]
fn without_timestamps_records_do_not_change_and_bad_uses_are_refused() {
    let r = run_loopback(&common::short(Mode::A2, 1024, 1), 0).unwrap();
    assert!(r.stages.is_none() && r.spec.timestamps_every.is_none());
    let line = r.to_json_line();
    assert!(!line.contains("\"stages\"") && !line.contains("timestamps_every"));
    for (spec, why) in [
        (
            RunSpec {
                timestamps: Some(0),
                ..common::short(Mode::A1, 1024, 1)
            },
            "1 to",
        ),
        (
            RunSpec {
                rx: RxMode::Discard,
                ..stamped(Mode::A1, Engine::Threads, Pattern::Stream, 1024)
            },
            "copy receiver",
        ),
    ] {
        let e = run_loopback(&spec, 0).unwrap_err().to_string();
        assert!(e.contains(why), "{e}");
    }
}
