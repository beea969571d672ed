//! `--batch` end to end over real sockets: every mode on both engines sends the same messages
//! per send operation, every byte still checked; sendmsg's iovec limit is recorded where it
//! holds A2 below the batch; a batch through tiny socket buffers, and a send call cut short
//! inside a batch, go on in order.

use crate::common::{assert_good_stream, short};
use sendpath_core::report::v1::Status;
use sendpath_core::run::run_loopback;
use sendpath_core::send::uring::missing_for;
use sendpath_core::spec::{Batch, Engine, Mode, RunSpec, RxStall};

/// `mode` on `engine` at `msg_size` and `batch`, with --verify, resolved as `sendpath run`
/// does.
fn batched(mode: Mode, engine: Engine, msg_size: usize, batch: &str) -> RunSpec {
    let mut s = RunSpec {
        engine,
        batch: batch.parse().unwrap(),
        verify: true,
        ..short(mode, msg_size, 1)
    };
    s.resolve_batch(None, None, None, None).unwrap();
    s
}

/// Whether the io_uring engine cannot run `mode` here (the test then says so and skips it).
fn skip(mode: Mode, engine: Engine) -> bool {
    if engine == Engine::Uring {
        if let Some(why) = missing_for(mode) {
            sendpath_core::testing::skip(
                sendpath_core::testing::Skip::NoIoUring,
                &format!("{mode} on io_uring: {why}"),
            );
            return true;
        }
    }
    false
}

#[test]
fn every_mode_on_both_engines_sends_the_same_messages_per_call_every_byte_checked() {
    for engine in [Engine::Threads, Engine::Uring] {
        for size in [64usize, 16384] {
            let mut per_call = Vec::new();
            for mode in [Mode::A1, Mode::A2, Mode::A3] {
                if skip(mode, engine) {
                    continue;
                }
                let spec = batched(mode, engine, size, "32K");
                let r = run_loopback(&spec, 0).unwrap();
                let what = format!("{mode} {engine} {size} B");
                assert_good_stream(&r);
                assert_eq!(r.integrity.verify_errors, 0, "{what}");
                assert!(r.integrity.verified_bytes > 0, "{what}");
                assert_eq!(r.spec.batch, Some(Batch::Bytes(32768)), "{what}");
                let c = r
                    .calls
                    .as_ref()
                    .unwrap_or_else(|| panic!("{what}: no calls"));
                assert_eq!(c.batch_messages, (32768 / size) as u64, "{what}");
                assert_eq!(c.capped_by, None, "{what}");
                let off = c.messages_per_call / c.batch_messages as f64;
                assert!(
                    (0.95..=1.0).contains(&off),
                    "{what}: {} messages per call of {}",
                    c.messages_per_call,
                    c.batch_messages
                );
                assert!(
                    (c.bytes_per_call / (c.messages_per_call * size as f64) - 1.0).abs() < 1e-9,
                    "{what}"
                );
                per_call.push(c.batch_messages);
            }
            per_call.dedup();
            assert!(per_call.len() <= 1, "{engine} {size} B: {per_call:?}");
        }
    }
}

#[test]
fn one_message_per_call_is_one_message_per_call_on_both_engines() {
    for engine in [Engine::Threads, Engine::Uring] {
        for mode in [Mode::A1, Mode::A3] {
            if skip(mode, engine) {
                continue;
            }
            let r = run_loopback(&batched(mode, engine, 1024, "1"), 0).unwrap();
            assert_good_stream(&r);
            let c = r.calls.expect("calls");
            assert_eq!(c.batch_messages, 1);
            assert!(
                (c.messages_per_call - 1.0).abs() < 0.01,
                "{mode} {engine}: {}",
                c.messages_per_call
            );
        }
    }
}

#[test]
fn the_iovec_limit_of_a2_is_recorded_where_it_holds_the_batch() {
    for engine in [Engine::Threads, Engine::Uring] {
        if skip(Mode::A2, engine) {
            continue;
        }
        let r = run_loopback(&batched(Mode::A2, engine, 64, "512K"), 0).unwrap();
        assert_good_stream(&r);
        assert_eq!(r.integrity.verify_errors, 0);
        let c = r.calls.expect("calls");
        assert_eq!(c.batch_messages, 512, "8192 asked, 512 fit 1024 iovecs");
        assert!(
            c.capped_by.as_deref().unwrap_or("").contains("1024 iovecs"),
            "{:?}",
            c.capped_by
        );
        assert!(
            c.messages_per_call > 0.95 * 512.0,
            "{}",
            c.messages_per_call
        );
    }
}

#[test]
fn a_short_send_inside_a_batch_resumes_in_order() {
    // Tiny socket buffers (the stall hook's 16 KiB) and 256 KiB batches: every call is cut
    // short, and the rest of the batch goes out after it, in order, every payload checked.
    for engine in [Engine::Threads, Engine::Uring] {
        for mode in [Mode::A1, Mode::A2, Mode::A3] {
            if skip(mode, engine) {
                continue;
            }
            let spec = RunSpec {
                rx_stall: Some(RxStall {
                    after_s: 0.05,
                    for_s: 0.05,
                }),
                ..batched(mode, engine, 1024, "256K")
            };
            let r = run_loopback(&spec, 0).unwrap();
            let what = format!("{mode} {engine}");
            // (The stall hook turns Nagle off, so this is not a plain stream record.)
            assert_eq!(r.status, Status::Ok, "{what}: {:?}", r.error);
            assert!(r.integrity.verified_bytes > 0, "{what}");
            assert_eq!(r.integrity.verify_errors, 0, "{what}");
            assert_eq!(r.integrity.seq_errors, 0, "{what}");
            let c = r.calls.expect("calls");
            assert_eq!(c.batch_messages, 256, "{what}");
        }
    }
}

/// A blocking send waits until the kernel took every byte, so a short send needs a timeout:
/// with SO_SNDTIMEO, a send that made progress returns what it sent when the timeout expires.
/// A slow reader (4 KiB a millisecond) and a 200 ms timeout cut each 2 MiB batch a few times;
/// each mode's strategy must resume inside the batch (inside an iovec, or a run of slots), in
/// order, every payload checked, and count the resumed calls.
#[test]
fn each_blocking_strategy_resumes_a_batch_cut_short_in_order() {
    use sendpath_core::send::threads::for_mode;
    use sendpath_core::wire::{Parsed, Parser};
    use std::io::Read;
    use std::os::fd::AsRawFd;
    const MSG: usize = 8192;
    const BATCH: usize = 256;
    for mode in [Mode::A1, Mode::A2, Mode::A3] {
        let (tx, mut rx) = crate::common::pair();
        let timeout = std::time::Duration::from_millis(200);
        tx.set_write_timeout(Some(timeout)).unwrap();
        sendpath_core::sock::set_send_buffer(&tx, 16384).unwrap();
        let spec = RunSpec {
            batch: Batch::Bytes((MSG * BATCH) as u64),
            verify: true,
            ..short(mode, MSG, 1)
        };
        let mut strategy = for_mode(&spec, tx.as_raw_fd()).unwrap();
        let reader = std::thread::spawn(move || {
            let mut p = Parser::new(MSG, true);
            let (mut seqs, mut bad) = (Vec::new(), 0);
            let mut buf = [0u8; 4096];
            while seqs.len() < 2 * BATCH {
                let n = rx.read(&mut buf).unwrap();
                assert!(n > 0, "the sender closed early");
                let parsed = p.feed(&buf[..n], |seq, _, ok| {
                    seqs.push(seq);
                    bad += usize::from(!ok);
                });
                assert_eq!(parsed.unwrap(), Parsed::More);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            (seqs, bad)
        });
        let mut calls = 0;
        let mut seq = 0;
        while seq < 2 * BATCH as u64 {
            let sent = strategy.send(tx.as_raw_fd(), seq, BATCH, 1).unwrap();
            seq += sent.messages as u64;
            calls += sent.calls;
        }
        let (seqs, bad) = reader.join().unwrap();
        assert_eq!(
            seqs,
            (0..2 * BATCH as u64).collect::<Vec<_>>(),
            "{mode}: in order"
        );
        assert_eq!(bad, 0, "{mode}: every payload as sent");
        assert!(
            calls > 2,
            "{mode}: {calls} calls for two batches: none was cut short and resumed"
        );
        if let Some(z) = strategy.finish(tx.as_raw_fd()).unwrap() {
            assert_eq!(
                z.completions, z.sends,
                "{mode}: every zero-copy call completed"
            );
            assert_eq!(
                z.sends, calls,
                "{mode}: a resumed call is a zero-copy send too"
            );
        }
    }
}
