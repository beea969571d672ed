//! `sendpath bench`: speed comparisons measured back to back in one process, reported as
//! medians over rounds and as ratios (never as timed unit tests: the machine is noisy).
//!
//! Each suite is a list of cells; every round runs every cell once, in order, so drift of the
//! machine affects all cells alike.

use sendpath_core::report::v1::{Record, Status};
use sendpath_core::run::run_loopback;
use sendpath_core::spec::{
    Batch, Engine, Mode, Pattern, RunSpec, RxMode, UringOpts, UringOrdering,
};

/// Which comparison to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// A1/A2/A3 at 64 B, 1 KiB, 16 KiB, 64 KiB, one flow, threads engine.
    Paths,
    /// What per-message latency recording costs: each size with and without it.
    LatencyCost,
    /// io_uring vs blocking threads, same mode, back to back: A1 64 B and 16 KiB one flow,
    /// A1 64 B 8 flows (uring on 2 threads vs 8 threads), A3 16 KiB and 64 KiB, A2 64 B and
    /// 16 KiB, both io_uring orderings (bundle, linked chains) for A1, and the io_uring
    /// receiver (`--rx uring`) against the copying one.
    Uring,
    /// Zero-copy against the copy baseline: A1 and A3 on both engines (each with its default
    /// ordering: A3 on io_uring coalesces), 64 B .. 64 KiB, one flow, with the copying and
    /// the discarding receiver; ratios A3/A1 per engine and A3 uring/A3 threads, and how many
    /// messages one zero-copy send carried.
    Zerocopy,
    /// What `--timestamps` costs: A1, A2, A3 streams at 1 KiB on both engines and A1 rr at 64 B, each without
    /// stamps, with one message in 256 and one in 64 stamped.
    Timestamps,
    /// What `--profile` costs: A1 and A3 streams at 1 KiB and 64 KiB on both engines, and A1
    /// and A3 rr at 64 B on threads, each without and with the sampler at 1 kHz, back to back.
    Profile,
    /// Copy discipline at equal batching: A1, A2, A3 on both engines at one message per send
    /// and at 512K per send, 64 B .. 64 KiB, one flow; messages/s, Gbit/s, sender CPU per
    /// byte, messages per call, and the ratios A2/A1, A3/A1, A3/A2 at each batch. Beside them
    /// A1 and A2 io_uring send bundles as the engine ran them before the batch axis.
    Batch,
}

/// Sizes of the batch suite.
const BATCH_SIZES: [usize; 4] = [64, 1024, 16384, 65536];
/// The batched level of the batch suite.
const BATCH_LEVEL: Batch = Batch::Bytes(512 << 10);

/// Stamping of the timestamps suite's cells, in order within each group.
const STAMP_EVERY: [Option<u64>; 3] = [None, Some(256), Some(64)];

/// Sizes of the zerocopy suite.
const ZC_SIZES: [usize; 5] = [64, 1024, 4096, 16384, 65536];
/// Cells per (receiver, size) of the zerocopy suite, in this order.
const ZC_CELLS: [(Mode, Engine); 4] = [
    (Mode::A1, Engine::Threads),
    (Mode::A3, Engine::Threads),
    (Mode::A1, Engine::Uring),
    (Mode::A3, Engine::Uring),
];

/// `spec` on the io_uring engine as it ran before the batch axis, which the uring, zerocopy
/// and timestamps suites compare: A1 and A2 in send bundles of up to 32 messages within 512
/// KiB, A3 in coalesced sends of 512 KiB.
fn on_uring(spec: RunSpec) -> RunSpec {
    let facts = spec.mode.facts();
    let fit = ((512 << 10) / spec.msg_size.max(1)).max(1);
    let per_send = match (facts.bundle_form, facts.gathered_segments) {
        (false, _) => fit,
        // A1 staged each bundled message: as many as fit 512 KiB, at most 32.
        (true, 0) => fit.min(32),
        // A2 bundled 32 messages of header and payload whatever their size.
        (true, _) => 32,
    };
    let ordering = if spec.mode.facts().bundle_form {
        UringOrdering::Bundle
    } else {
        UringOrdering::Coalesce
    };
    let mut s = RunSpec {
        engine: Engine::Uring,
        batch: if per_send > 1 {
            Batch::Bytes((per_send * spec.msg_size) as u64)
        } else {
            Batch::One
        },
        ..spec
    };
    let ordering = if per_send > 1 {
        ordering
    } else {
        UringOrdering::Link
    };
    s.resolve_batch(Some(ordering), None, None, None)
        .expect("a batch its ordering carries");
    s
}

/// `spec` at `batch` on `engine`, as `sendpath run --batch` resolves it.
fn at_batch(spec: RunSpec, engine: Engine, batch: Batch) -> RunSpec {
    let mut s = RunSpec {
        engine,
        batch,
        ..spec
    };
    s.resolve_batch(None, None, None, None)
        .expect("the default ordering carries any batch");
    s
}

/// A ratio the uring suite reports: candidate cell / baseline cell (msgs/s medians).
struct Compare {
    label: &'static str,
    baseline: usize,
    candidate: usize,
}

fn uring_compares() -> Vec<Compare> {
    let c = |label, baseline, candidate| Compare {
        label,
        baseline,
        candidate,
    };
    vec![
        c("(a) A1 64 B, 1 flow: uring bundle / threads", 0, 1),
        c("(a) same, uring linked chains / threads", 0, 12),
        c("(a') no latency recording, bundle", 2, 3),
        c("(b) A1 16 KiB, 1 flow: uring bundle / threads", 4, 5),
        c("(b) same, uring linked chains / threads", 4, 13),
        c("(c) A1 64 B, 8 flows: uring 2 thr / threads 8 thr", 6, 7),
        c("(d) A3 16 KiB, 1 flow: uring / threads", 8, 9),
        c("(d) A3 64 KiB, 1 flow: uring / threads", 10, 11),
        c("A2 64 B, 1 flow: uring bundle / threads", 14, 15),
        c("A2 16 KiB, 1 flow: uring bundle / threads", 16, 17),
        c("A1 64 B uring bundle depth 128 / threads", 0, 18),
        c("A1 64 B uring link depth 128 / threads", 0, 19),
        c("A1 64 B threads: --rx uring / copy receiver", 0, 20),
        c("A1 16 KiB threads: --rx uring / copy receiver", 4, 21),
        c("A1 64 B uring bundle: --rx uring / copy receiver", 1, 22),
    ]
}

struct Cell {
    label: String,
    spec: RunSpec,
}

fn cells(suite: Suite, duration_s: f64) -> Vec<Cell> {
    let base = RunSpec {
        duration_s,
        warmup_s: 0.2,
        ..RunSpec::default()
    };
    let sizes = [64usize, 1024, 16384, 65536];
    let mut out = Vec::new();
    match suite {
        Suite::Paths => {
            for &size in &sizes {
                for &mode in Mode::ALL {
                    out.push(Cell {
                        label: format!("{mode} {size}"),
                        spec: RunSpec {
                            mode,
                            msg_size: size,
                            ..base.clone()
                        },
                    });
                }
            }
        }
        Suite::Uring => {
            let pair = |out: &mut Vec<Cell>, name: &str, spec: RunSpec, threads: Option<usize>| {
                out.push(Cell {
                    label: format!("{name} threads"),
                    spec: spec.clone(),
                });
                out.push(Cell {
                    label: format!("{name} uring"),
                    spec: RunSpec {
                        threads,
                        ..on_uring(spec)
                    },
                });
            };
            let a1 = |size, flows| RunSpec {
                mode: Mode::A1,
                msg_size: size,
                flows,
                ..base.clone()
            };
            pair(&mut out, "a1 64", a1(64, 1), None);
            pair(
                &mut out,
                "a1 64 nolat",
                RunSpec {
                    latency: false,
                    ..a1(64, 1)
                },
                None,
            );
            pair(&mut out, "a1 16k", a1(16384, 1), None);
            pair(&mut out, "a1 64 x8", a1(64, 8), Some(2));
            for size in [16384, 65536] {
                pair(
                    &mut out,
                    &format!("a3 {}k", size >> 10),
                    RunSpec {
                        mode: Mode::A3,
                        msg_size: size,
                        ..base.clone()
                    },
                    None,
                );
            }
            for size in [64, 16384] {
                out.push(Cell {
                    label: format!("a1 {} uring link", size_label(size)),
                    spec: RunSpec {
                        engine: Engine::Uring,
                        uring: {
                            let depth =
                                UringOpts::auto_depth(UringOrdering::Link, Mode::A1, size, false);
                            UringOpts {
                                depth,
                                batch: depth,
                                ordering: UringOrdering::Link,
                            }
                        },
                        ..a1(size, 1)
                    },
                });
            }
            for size in [64, 16384] {
                pair(
                    &mut out,
                    &format!("a2 {}", size_label(size)),
                    RunSpec {
                        mode: Mode::A2,
                        msg_size: size,
                        ..base.clone()
                    },
                    None,
                );
            }
            let rx_cells = [
                ("a1 64 rx-uring", a1(64, 1), Engine::Threads),
                ("a1 16k rx-uring", a1(16384, 1), Engine::Threads),
                ("a1 64 uring rx-uring", a1(64, 1), Engine::Uring),
            ];
            for ordering in [UringOrdering::Bundle, UringOrdering::Link] {
                out.push(Cell {
                    label: format!("a1 64 uring {ordering} d128"),
                    spec: RunSpec {
                        engine: Engine::Uring,
                        uring: UringOpts {
                            depth: 128,
                            batch: 128,
                            ordering,
                        },
                        ..a1(64, 1)
                    },
                });
            }
            for (label, spec, engine) in rx_cells {
                let spec = RunSpec {
                    rx: RxMode::Uring,
                    ..spec
                };
                out.push(Cell {
                    label: label.into(),
                    spec: match engine {
                        Engine::Uring => on_uring(spec),
                        Engine::Threads => spec,
                    },
                });
            }
        }
        Suite::Zerocopy => {
            for rx in [RxMode::Copy, RxMode::Discard] {
                for size in ZC_SIZES {
                    for (mode, engine) in ZC_CELLS {
                        let spec = RunSpec {
                            mode,
                            msg_size: size,
                            rx,
                            ..base.clone()
                        };
                        out.push(Cell {
                            label: format!("{rx} {} {mode} {engine}", size_label(size)),
                            spec: match engine {
                                Engine::Uring => on_uring(spec),
                                Engine::Threads => spec,
                            },
                        });
                    }
                }
            }
        }
        Suite::Timestamps => {
            let groups = [
                (Mode::A1, Pattern::Stream, 1024, Engine::Threads),
                (Mode::A2, Pattern::Stream, 1024, Engine::Threads),
                (Mode::A3, Pattern::Stream, 1024, Engine::Threads),
                // A ring's sends are cut around each sample (send/uring/stamp.rs): that costs
                // too, so each mode on its default ordering.
                (Mode::A1, Pattern::Stream, 1024, Engine::Uring),
                (Mode::A2, Pattern::Stream, 1024, Engine::Uring),
                (Mode::A3, Pattern::Stream, 1024, Engine::Uring),
                (Mode::A1, Pattern::Rr, 64, Engine::Threads),
            ];
            for (mode, pattern, size, engine) in groups {
                for every in STAMP_EVERY {
                    let spec = RunSpec {
                        mode,
                        pattern,
                        msg_size: size,
                        timestamps: every,
                        ..base.clone()
                    };
                    let spec = match engine {
                        Engine::Uring => on_uring(spec),
                        Engine::Threads => spec,
                    };
                    // (io_uring streams round N up to whole sends: the label says what ran.)
                    out.push(Cell {
                        label: format!(
                            "{mode} {engine} {pattern} {size} {}",
                            spec.stamp_every()
                                .map_or("off".to_string(), |n| format!("1/{n}"))
                        ),
                        spec,
                    });
                }
            }
        }
        Suite::Profile => {
            let mut groups = Vec::new();
            for size in [1024usize, 65536] {
                for engine in [Engine::Threads, Engine::Uring] {
                    for mode in [Mode::A1, Mode::A3] {
                        groups.push((mode, Pattern::Stream, size, engine));
                    }
                }
            }
            // rr: a context switch or two per transaction, each switching the sampler too.
            groups.push((Mode::A1, Pattern::Rr, 64, Engine::Threads));
            groups.push((Mode::A3, Pattern::Rr, 64, Engine::Threads));
            for (mode, pattern, size, engine) in groups {
                for profile in [None, Some(1000)] {
                    let spec = RunSpec {
                        mode,
                        pattern,
                        msg_size: size,
                        profile,
                        ..base.clone()
                    };
                    out.push(Cell {
                        label: format!(
                            "{mode} {engine} {pattern} {} {}",
                            size_label(size),
                            if profile.is_some() { "1kHz" } else { "off" }
                        ),
                        spec: at_batch(spec, engine, Batch::One),
                    });
                }
            }
        }
        Suite::Batch => {
            for size in BATCH_SIZES {
                for engine in [Engine::Threads, Engine::Uring] {
                    for batch in [Batch::One, BATCH_LEVEL] {
                        for &mode in Mode::ALL {
                            let spec = RunSpec {
                                mode,
                                msg_size: size,
                                ..base.clone()
                            };
                            out.push(Cell {
                                label: format!("{mode} {engine} {} b{batch}", size_label(size)),
                                spec: at_batch(spec, engine, batch),
                            });
                        }
                    }
                }
                for mode in [Mode::A1, Mode::A2] {
                    let spec = RunSpec {
                        mode,
                        msg_size: size,
                        ..base.clone()
                    };
                    out.push(Cell {
                        label: format!("{mode} uring {} bundles", size_label(size)),
                        spec: on_uring(spec),
                    });
                }
            }
        }
        Suite::LatencyCost => {
            for &size in &sizes {
                for latency in [true, false] {
                    out.push(Cell {
                        label: format!(
                            "a1 {size} {}",
                            if latency { "latency" } else { "no-latency" }
                        ),
                        spec: RunSpec {
                            mode: Mode::A1,
                            msg_size: size,
                            latency,
                            ..base.clone()
                        },
                    });
                }
            }
        }
    }
    out
}

fn size_label(size: usize) -> String {
    if size >= 1024 {
        format!("{}k", size >> 10)
    } else {
        size.to_string()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

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
    let med_m: Vec<f64> = msgs.into_iter().map(median).collect();
    let med_g: Vec<f64> = gbps.into_iter().map(median).collect();
    let med_per_send: Vec<f64> = per_send.into_iter().map(median).collect();
    let med_cpu: Vec<f64> = cpu.into_iter().map(median).collect();
    let med_per_call: Vec<f64> = per_call.into_iter().map(median).collect();
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
                sendpath_core::say!(
                    "{:<52} {:>6.2}x",
                    c.label,
                    med_m[c.candidate] / med_m[c.baseline]
                );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zerocopy_suite_rows_compare_a1_and_a3_of_one_size_and_receiver() {
        let cells = cells(Suite::Zerocopy, 0.1);
        assert_eq!(cells.len(), 2 * ZC_SIZES.len() * ZC_CELLS.len());
        for (row, group) in cells.chunks(ZC_CELLS.len()).enumerate() {
            let size = ZC_SIZES[row % ZC_SIZES.len()];
            for (c, (mode, engine)) in group.iter().zip(ZC_CELLS) {
                assert_eq!((c.spec.mode, c.spec.engine), (mode, engine), "{}", c.label);
                assert_eq!(c.spec.msg_size, size, "{}", c.label);
                assert_eq!(c.spec.rx, group[0].spec.rx, "{}", c.label);
                assert!(c.spec.validate().is_ok(), "{}", c.label);
            }
            assert_eq!(group[3].spec.uring.ordering, UringOrdering::Coalesce);
            assert_eq!(group[2].spec.uring.ordering, UringOrdering::Bundle);
        }
        assert_eq!(cells[0].spec.rx, RxMode::Copy);
        assert_eq!(cells[cells.len() - 1].spec.rx, RxMode::Discard);
    }

    #[test]
    fn every_uring_comparison_names_the_cells_it_says() {
        let cells = cells(Suite::Uring, 0.1);
        let label = |i: usize| cells[i].label.as_str();
        for c in uring_compares() {
            assert!(
                c.baseline < cells.len() && c.candidate < cells.len(),
                "{}",
                c.label
            );
            let (b, k) = (&cells[c.baseline].spec, &cells[c.candidate].spec);
            assert_eq!(
                (b.mode, b.msg_size),
                (k.mode, k.msg_size),
                "{}: {} vs {}",
                c.label,
                label(c.baseline),
                label(c.candidate)
            );
        }
        let a = &uring_compares()[0];
        assert_eq!(
            (label(a.baseline), label(a.candidate)),
            ("a1 64 threads", "a1 64 uring")
        );
        assert_eq!(
            cells[a.candidate].spec.uring.ordering,
            UringOrdering::Bundle
        );
        let link = &uring_compares()[1];
        assert_eq!(
            cells[link.candidate].spec.uring.ordering,
            UringOrdering::Link
        );
    }
}
