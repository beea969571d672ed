//! `sendpath bench`: speed comparisons measured back to back in one process, reported as
//! medians over rounds and as ratios (never as timed unit tests: the machine is noisy).
//!
//! Each suite is a list of cells; every round runs every cell once, in order, so drift of the
//! machine affects all cells alike.

mod cells;

pub use cells::Suite;

use cells::*;
use sendpath_analysis::stats::median;
use sendpath_core::report::v1::{Record, Status};
use sendpath_core::run::run_loopback;
use sendpath_core::spec::Mode;

/// Runs `suite` for `rounds` rounds of `duration_s`-second cells; prints a table; calls
/// `on_record` with every record (e.g. to append it to a file).
pub fn run(
    suite: Suite,
    rounds: usize,
    duration_s: f64,
    place: (
        sendpath_core::spec::Placement,
        Option<sendpath_core::affinity::Pin>,
    ),
    mut on_record: impl FnMut(&Record) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut cells = cells(suite, duration_s);
    for c in &mut cells {
        (c.spec.placement, c.spec.pin) = place.clone();
    }
    let mut msgs: Vec<Vec<f64>> = vec![Vec::new(); cells.len()];
    let mut gbps: Vec<Vec<f64>> = vec![Vec::new(); cells.len()];
    let mut per_send: Vec<Vec<f64>> = vec![Vec::new(); cells.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); cells.len()];
    let mut per_call: Vec<Vec<f64>> = vec![Vec::new(); cells.len()];
    for round in 0..rounds {
        for (i, c) in cells.iter().enumerate() {
            let r = run_loopback(&c.spec, round as u64)?;
            if r.status != Status::Ok {
                anyhow::bail!("{}: {}", c.label, r.error.unwrap_or_default());
            }
            eprintln!(
                "round {round} {:<24} {:>12.0} msgs/s {:>8.3} Gbit/s",
                c.label, r.throughput.msgs_per_s, r.throughput.gbps
            );
            msgs[i].push(r.throughput.msgs_per_s);
            gbps[i].push(r.throughput.gbps);
            if let Some(m) = r.zerocopy.as_ref().and_then(|z| z.messages_per_send) {
                per_send[i].push(m);
            }
            if let Some(c) = r.derived.sender_cpu_ns_per_byte {
                cpu[i].push(c);
            }
            if let Some(c) = &r.calls {
                per_call[i].push(c.messages_per_call);
            }
            on_record(&r)?;
        }
    }
    let med_m: Vec<f64> = msgs.iter().map(|v| median(v)).collect();
    let med_g: Vec<f64> = gbps.iter().map(|v| median(v)).collect();
    let med_per_send: Vec<f64> = per_send.iter().map(|v| median(v)).collect();
    let med_cpu: Vec<f64> = cpu.iter().map(|v| median(v)).collect();
    let med_per_call: Vec<f64> = per_call.iter().map(|v| median(v)).collect();
    sendpath_core::say!("median of {rounds} round(s), {duration_s} s cells, loopback");
    match suite {
        Suite::Uring => {
            sendpath_core::say!("{:<24} {:>12} {:>9}", "cell", "msgs/s", "Gbit/s");
            for (i, c) in cells.iter().enumerate() {
                sendpath_core::say!("{:<24} {:>12.0} {:>9.3}", c.label, med_m[i], med_g[i]);
            }
            sendpath_core::say!();
            sendpath_core::say!("{:<52} {:>7}", "comparison (msgs/s medians)", "ratio");
            for c in uring_compares() {
                let (b, k) = c.positions(&cells);
                sendpath_core::say!("{:<52} {:>6.2}x", c.label, med_m[k] / med_m[b]);
            }
        }
        Suite::Paths => {
            sendpath_core::say!(
                "{:<8} {:>5} {:>12} {:>9} {:>9}",
                "size",
                "mode",
                "msgs/s",
                "Gbit/s",
                "vs A1"
            );
            for (i, c) in cells.iter().enumerate() {
                let a1 = med_m[i - i % Mode::ALL.len()];
                let (mode, size) = (c.spec.mode, c.spec.msg_size);
                sendpath_core::say!(
                    "{size:<8} {mode:>5} {:>12.0} {:>9.3} {:>8.2}x",
                    med_m[i],
                    med_g[i],
                    med_m[i] / a1
                );
            }
        }
        Suite::Zerocopy => {
            sendpath_core::say!(
                "{:<8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>9}",
                "rx",
                "size",
                "A1 thr",
                "A3 thr",
                "A1 uring",
                "A3 uring",
                "A3/A1 thr",
                "A3/A1 ur",
                "A3 ur/thr",
                "msgs/send"
            );
            for (row, group) in (0..cells.len()).step_by(ZC_CELLS.len()).enumerate() {
                let g = |k: usize| med_g[group + k];
                let c = &cells[group].spec;
                sendpath_core::say!(
                    "{:<8} {:>6} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}x {:>8.2}x {:>9.2}x {:>9.1}",
                    c.rx.as_str(),
                    size_label(ZC_SIZES[row % ZC_SIZES.len()]),
                    g(0),
                    g(1),
                    g(2),
                    g(3),
                    g(1) / g(0),
                    g(3) / g(2),
                    g(3) / g(1),
                    med_per_send[group + 3]
                );
            }
            sendpath_core::say!("(Gbit/s medians; msgs/send: messages per zero-copy send of A3 on io_uring, which coalesces; A3 on threads sends one message per call)");
        }
        Suite::Timestamps => {
            sendpath_core::say!(
                "{:<26} {:>12} {:>12} {:>12} {:>10} {:>10}",
                "cell",
                "off",
                "1/256",
                "1/64",
                "cost 1/256",
                "cost 1/64"
            );
            for g in (0..cells.len()).step_by(STAMP_EVERY.len()) {
                let c = &cells[g].spec;
                let (off, s256, s64) = (med_m[g], med_m[g + 1], med_m[g + 2]);
                sendpath_core::say!(
                    "{:<26} {:>12.0} {:>12.0} {:>12.0} {:>9.1}% {:>9.1}%",
                    format!("{} {} {} {}", c.mode, c.engine, c.pattern, c.msg_size),
                    off,
                    s256,
                    s64,
                    (1.0 - s256 / off) * 100.0,
                    (1.0 - s64 / off) * 100.0
                );
            }
            sendpath_core::say!("(msgs/s, or transactions/s for rr; cost = 1 - stamped/off; io_uring streams stamp one message in N rounded up to whole sends of --uring-depth: see the labels above)");
        }
        Suite::Profile => {
            sendpath_core::say!(
                "{:<24} {:>12} {:>12} {:>8}",
                "cell",
                "off msgs/s",
                "1kHz msgs/s",
                "cost"
            );
            for pair in (0..cells.len()).step_by(2) {
                let (off, on) = (med_m[pair], med_m[pair + 1]);
                let s = &cells[pair].spec;
                sendpath_core::say!(
                    "{:<24} {:>12.0} {:>12.0} {:>7.1}%",
                    format!(
                        "{} {} {} {}",
                        s.mode,
                        s.engine,
                        s.pattern,
                        size_label(s.msg_size)
                    ),
                    off,
                    on,
                    (1.0 - on / off) * 100.0
                );
            }
            sendpath_core::say!("(medians of msgs/s, or transactions/s for rr; cost = 1 - profiled/off: the sampler's interrupts and call chains in the window, and for rr the sampler switched with each thread; naming the samples happens after it)");
        }
        Suite::Batch => {
            let modes = Mode::ALL.len();
            // Per size: 2 engines x 2 batches x modes, then the two bundle cells.
            let per_size = 4 * modes + 2;
            sendpath_core::say!(
                "{:<6} {:<7} {:<5} {:<4} {:>12} {:>8} {:>8} {:>9}",
                "size",
                "engine",
                "batch",
                "mode",
                "msgs/s",
                "Gbit/s",
                "ns/B tx",
                "msgs/call"
            );
            for (i, c) in cells.iter().enumerate() {
                let s = &c.spec;
                let what = if i % per_size >= 4 * modes {
                    "bundles (before --batch)".to_string()
                } else {
                    s.batch.to_string()
                };
                sendpath_core::say!(
                    "{:<6} {:<7} {:<5} {:<4} {:>12.0} {:>8.3} {:>8.3} {:>9.1}",
                    size_label(s.msg_size),
                    s.engine.as_str(),
                    what,
                    s.mode.as_str(),
                    med_m[i],
                    med_g[i],
                    med_cpu[i],
                    med_per_call[i]
                );
            }
            sendpath_core::say!();
            sendpath_core::say!(
                "{:<6} {:<7} {:<5} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10}",
                "size",
                "engine",
                "batch",
                "A2/A1",
                "A3/A1",
                "A3/A2",
                "ns/B A2/A1",
                "ns/B A3/A1",
                "ns/B A3/A2"
            );
            for size_at in (0..cells.len()).step_by(per_size) {
                for group in (0..4).map(|k| size_at + k * modes) {
                    let s = &cells[group].spec;
                    let (t, p) = (|k| med_g[group + k], |k| med_cpu[group + k]);
                    sendpath_core::say!(
                        "{:<6} {:<7} {:<5} {:>7.2}x {:>7.2}x {:>7.2}x {:>9.2}x {:>9.2}x {:>9.2}x",
                        size_label(s.msg_size),
                        s.engine.as_str(),
                        s.batch.to_string(),
                        t(1) / t(0),
                        t(2) / t(0),
                        t(2) / t(1),
                        p(1) / p(0),
                        p(2) / p(0),
                        p(2) / p(1)
                    );
                }
            }
            sendpath_core::say!();
            sendpath_core::say!(
                "{:<6} {:<4} {:>22}",
                "size",
                "mode",
                "uring batched/bundles"
            );
            for size_at in (0..cells.len()).step_by(per_size) {
                // uring at the batched level is the fourth group; bundles come last.
                let batched = size_at + 3 * modes;
                for (k, bundle) in [(0, size_at + 4 * modes), (1, size_at + 4 * modes + 1)] {
                    sendpath_core::say!(
                        "{:<6} {:<4} {:>21.2}x",
                        size_label(cells[bundle].spec.msg_size),
                        cells[bundle].spec.mode.as_str(),
                        med_m[batched + k] / med_m[bundle]
                    );
                }
            }
            sendpath_core::say!("(medians; ratios of Gbit/s and of sender CPU ns per byte at equal batch and engine; msgs/call from the records' calls)");
        }
        Suite::LatencyCost => {
            sendpath_core::say!(
                "{:<8} {:>14} {:>14} {:>10}",
                "size",
                "with latency",
                "without",
                "cost"
            );
            for pair in (0..cells.len()).step_by(2) {
                let (with, without) = (med_m[pair], med_m[pair + 1]);
                sendpath_core::say!(
                    "{:<8} {:>14.0} {:>14.0} {:>9.1}%",
                    cells[pair].spec.msg_size,
                    with,
                    without,
                    (1.0 - with / without) * 100.0
                );
            }
            sendpath_core::say!("(msgs/s; cost = 1 - with/without: a clock read per message and a histogram record)");
        }
    }
    Ok(())
}
