//! What each suite measures: its cells, in the order every round runs them, and the pairs
//! it compares.

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
pub(super) const BATCH_SIZES: [usize; 4] = [64, 1024, 16384, 65536];
/// The batched level of the batch suite.
pub(super) const BATCH_LEVEL: Batch = Batch::Bytes(512 << 10);

/// Stamping of the timestamps suite's cells, in order within each group.
pub(super) const STAMP_EVERY: [Option<u64>; 3] = [None, Some(256), Some(64)];

/// Sizes of the zerocopy suite.
pub(super) const ZC_SIZES: [usize; 5] = [64, 1024, 4096, 16384, 65536];
/// Cells per (receiver, size) of the zerocopy suite, in this order.
pub(super) const ZC_CELLS: [(Mode, Engine); 4] = [
    (Mode::A1, Engine::Threads),
    (Mode::A3, Engine::Threads),
    (Mode::A1, Engine::Uring),
    (Mode::A3, Engine::Uring),
];

/// `spec` on the io_uring engine as it ran before the batch axis, which the uring, zerocopy
/// and timestamps suites compare: A1 and A2 in send bundles of up to 32 messages within 512
/// KiB, A3 in coalesced sends of 512 KiB.
pub(super) fn on_uring(spec: RunSpec) -> RunSpec {
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
pub(super) fn at_batch(spec: RunSpec, engine: Engine, batch: Batch) -> RunSpec {
    let mut s = RunSpec {
        engine,
        batch,
        ..spec
    };
    s.resolve_batch(None, None, None, None)
        .expect("the default ordering carries any batch");
    s
}

/// A ratio the uring suite reports: candidate cell / baseline cell (msgs/s medians), the
/// cells named by their labels.
pub(super) struct Compare {
    pub(super) label: &'static str,
    pub(super) baseline: &'static str,
    pub(super) candidate: &'static str,
}

impl Compare {
    /// The positions of its baseline and candidate in `cells` (the suite's cells: a test
    /// checks that every label names one).
    pub(super) fn positions(&self, cells: &[Cell]) -> (usize, usize) {
        let at = |l: &str| {
            cells
                .iter()
                .position(|c| c.label == l)
                .unwrap_or_else(|| panic!("{}: no cell {l:?}", self.label))
        };
        (at(self.baseline), at(self.candidate))
    }
}

pub(super) fn uring_compares() -> Vec<Compare> {
    let c = |label, baseline, candidate| Compare {
        label,
        baseline,
        candidate,
    };
    let a1_64 = "a1 64 threads";
    vec![
        c(
            "(a) A1 64 B, 1 flow: uring bundle / threads",
            a1_64,
            "a1 64 uring",
        ),
        c(
            "(a) same, uring linked chains / threads",
            a1_64,
            "a1 64 uring link",
        ),
        c(
            "(a') no latency recording, bundle",
            "a1 64 nolat threads",
            "a1 64 nolat uring",
        ),
        c(
            "(b) A1 16 KiB, 1 flow: uring bundle / threads",
            "a1 16k threads",
            "a1 16k uring",
        ),
        c(
            "(b) same, uring linked chains / threads",
            "a1 16k threads",
            "a1 16k uring link",
        ),
        c(
            "(c) A1 64 B, 8 flows: uring 2 thr / threads 8 thr",
            "a1 64 x8 threads",
            "a1 64 x8 uring",
        ),
        c(
            "(d) A3 16 KiB, 1 flow: uring / threads",
            "a3 16k threads",
            "a3 16k uring",
        ),
        c(
            "(d) A3 64 KiB, 1 flow: uring / threads",
            "a3 64k threads",
            "a3 64k uring",
        ),
        c(
            "A2 64 B, 1 flow: uring bundle / threads",
            "a2 64 threads",
            "a2 64 uring",
        ),
        c(
            "A2 16 KiB, 1 flow: uring bundle / threads",
            "a2 16k threads",
            "a2 16k uring",
        ),
        c(
            "A1 64 B uring bundle depth 128 / threads",
            a1_64,
            "a1 64 uring bundle d128",
        ),
        c(
            "A1 64 B uring link depth 128 / threads",
            a1_64,
            "a1 64 uring link d128",
        ),
        c(
            "A1 64 B threads: --rx uring / copy receiver",
            a1_64,
            "a1 64 rx-uring",
        ),
        c(
            "A1 16 KiB threads: --rx uring / copy receiver",
            "a1 16k threads",
            "a1 16k rx-uring",
        ),
        c(
            "A1 64 B uring bundle: --rx uring / copy receiver",
            "a1 64 uring",
            "a1 64 uring rx-uring",
        ),
    ]
}

pub(super) struct Cell {
    pub(super) label: String,
    pub(super) spec: RunSpec,
}

pub(super) fn cells(suite: Suite, duration_s: f64) -> Vec<Cell> {
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
                        spec: sized(&base, mode, size),
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
                    sized(&base, Mode::A3, size),
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
                    sized(&base, Mode::A2, size),
                    None,
                );
            }
            let rx_cells = [
                ("a1 64 rx-uring", a1(64, 1), Engine::Threads),
                ("a1 16k rx-uring", a1(16384, 1), Engine::Threads),
                ("a1 64 uring rx-uring", a1(64, 1), Engine::Uring),
            ];
            for ordering in [UringOrdering::Bundle, UringOrdering::Link] {
                // 128 messages per bundle (the batch sets it), or linked chains of 128 SQEs
                // of one message each.
                let (batch, depth) = match ordering {
                    UringOrdering::Bundle => (Batch::Bytes(128 * 64), None),
                    _ => (Batch::One, Some(128)),
                };
                let mut spec = RunSpec {
                    engine: Engine::Uring,
                    batch,
                    ..a1(64, 1)
                };
                spec.resolve_batch(Some(ordering), depth, None, None)
                    .expect("a batch its ordering carries");
                out.push(Cell {
                    label: format!("a1 64 uring {ordering} d128"),
                    spec,
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
                            let spec = sized(&base, mode, size);
                            out.push(Cell {
                                label: format!("{mode} {engine} {} b{batch}", size_label(size)),
                                spec: at_batch(spec, engine, batch),
                            });
                        }
                    }
                }
                for mode in [Mode::A1, Mode::A2] {
                    let spec = sized(&base, mode, size);
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

pub(super) fn size_label(size: usize) -> String {
    if size >= 1024 {
        format!("{}k", size >> 10)
    } else {
        size.to_string()
    }
}

/// `base` for `mode` at messages of `size` bytes.
fn sized(base: &RunSpec, mode: Mode, size: usize) -> RunSpec {
    RunSpec {
        mode,
        msg_size: size,
        ..base.clone()
    }
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
    fn every_cell_of_every_suite_is_a_valid_spec() {
        use clap::ValueEnum;
        for suite in Suite::value_variants() {
            for c in cells(*suite, 0.1) {
                if let Err(e) = c.spec.validate() {
                    panic!("bench {suite:?}: {}: {e}", c.label);
                }
            }
        }
    }

    #[test]
    fn every_uring_comparison_names_the_cells_it_says() {
        let cells = cells(Suite::Uring, 0.1);
        for c in uring_compares() {
            let (b, k) = c.positions(&cells);
            let (b, k) = (&cells[b].spec, &cells[k].spec);
            assert_eq!(
                (b.mode, b.msg_size),
                (k.mode, k.msg_size),
                "{}: {} vs {}",
                c.label,
                c.baseline,
                c.candidate
            );
        }
        let a = uring_compares()[0].positions(&cells);
        assert_eq!(cells[a.1].spec.uring.ordering, UringOrdering::Bundle);
        let link = uring_compares()[1].positions(&cells);
        assert_eq!(cells[link.1].spec.uring.ordering, UringOrdering::Link);
    }
}
