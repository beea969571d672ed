//! `sendpath sweep`: the grid from the preset and the options, checked before any cell runs,
//! then measured here, on a far host, or once per impairment of the veth pair.

use crate::args::{SweepArgs, Target};
use crate::{impair, render, sweep};
use sendpath_core::run::Topology;
use sendpath_core::spec::RunSpec;
use std::process::ExitCode;

/// `sendpath sweep`.
pub(crate) fn sweep(a: SweepArgs) -> anyhow::Result<ExitCode> {
    let mut grid = sweep::Grid::preset(a.preset);
    if let Some(v) = a.modes {
        grid.modes = v;
    }
    match a.engines {
        Some(v) => grid.engines = v,
        None => {
            // A preset's uring cells are left out where io_uring cannot run at all
            // (asked for explicitly, they run and fail with the reason).
            if let Err(why) = sendpath_core::send::uring::probe_ops() {
                eprintln!("sweep: leaving the uring engine out: {why}");
                grid.engines.retain(|e| !e.facts().rings);
            }
        }
    }
    if let Some(v) = a.sizes {
        grid.sizes = v;
    }
    if let Some(v) = a.flows {
        grid.flows = v;
    }
    if let Some(v) = a.patterns {
        grid.patterns = v;
    }
    if let Some(v) = a.rate_fractions {
        if v.iter().any(|f| !(f.is_finite() && *f > 0.0 && *f <= 1.0)) {
            anyhow::bail!("--rate-fractions must be in (0, 1]");
        }
        grid.rate_fractions = v;
    }
    if let Some(v) = a.duration {
        grid.duration_s = v;
    }
    if let Some(v) = a.warmup {
        grid.warmup_s = v;
    }
    if let Some(v) = a.reps {
        if v == 0 {
            anyhow::bail!("--reps must be at least 1");
        }
        grid.reps = v;
        grid.min_reps = v;
    }
    if let Some(v) = a.max_reps {
        if v < grid.min_reps.min(grid.reps) || v == 0 || v > 1000 {
            anyhow::bail!(
                "--max-reps {v} must be between the fewest repetitions ({}) and 1000",
                grid.min_reps.min(grid.reps)
            );
        }
        grid.reps = v;
    }
    if let Some(v) = a.time_limit {
        grid.time_limit_s = (v > 0.0).then_some(v);
    }
    if let Some(v) = a.uring_orderings {
        grid.uring_orderings = v;
    }
    if let Some(mut v) = a.batches {
        v.sort();
        v.dedup();
        grid.batches = v;
    }
    grid.zc_slots = a.zc_slots;
    let (placement, pin) =
        sendpath_core::cli::placement_of(a.placement, a.pin.as_deref(), grid.placement)?;
    grid.base = RunSpec {
        verify: a.verify,
        rx: sweep::rx_of(a.rx, a.rx_discard),
        busy_poll: a.busy_poll,
        placement,
        pin,
        timestamps: a.timestamps,
        profile: if a.no_profile {
            None
        } else {
            a.profile.or(grid.base.profile)
        },
        ..RunSpec::default()
    };
    // Every cell's options are checked before any runs: a bad value is one line, not a
    // failed record per cell.
    for (spec, _) in grid.cells() {
        // (A rate cell's rate comes from its stream cell's capacity, measured later.)
        let rate = spec.rate.or(spec.rate_fraction.map(|_| 1.0));
        RunSpec { rate, ..spec }.validate()?;
    }
    let impairments = a.impairments.as_deref().map(impair::parse).transpose()?;
    if let Some(d) = &a.resume {
        // (With --impairments each impairment's sub-sweep resumes in its directory.)
        let there = match &impairments {
            None => d.join("results.jsonl").is_file(),
            // (a sub-sweep interrupted before its first record leaves its directory)
            Some(list) => list.iter().any(|i| impair::sub_dir(d, i).is_dir()),
        };
        if !there {
            anyhow::bail!(
                "--resume {}: no results.jsonl there to resume (a new sweep takes --out)",
                d.display()
            );
        }
    }
    let dir = a.resume.or(a.out).unwrap_or_else(sweep::default_out_dir);
    let mut target = a.place.resolve()?;
    if let Target::Local(Topology::Veth(v)) = &target {
        // Every cell would fail the same way: say it once, before starting.
        if !v.is_up() {
            anyhow::bail!(
                "the veth topology {}/{} is not up: run `sendpath topology up` first",
                v.server_ns,
                v.client_ns
            );
        }
    }
    let shaped = match (&impairments, &target) {
        (None, _) => None,
        (Some(list), Target::Local(Topology::Veth(v))) => {
            impair::check(v, list)?;
            Some((v.clone(), list.clone()))
        }
        (Some(_), _) => anyhow::bail!(
            "--impairments shape the veth pair: add --topology veth (after `sendpath topology up`)"
        ),
    };
    let per_rep = grid.cells().len() as u64 / grid.reps.max(1);
    eprintln!(
        "sweep: {per_rep} cells x {} -> {}",
        if grid.min_reps < grid.reps {
            format!(
                "{} to {} reps (more while a comparison group is not settled{})",
                grid.min_reps,
                grid.reps,
                grid.time_limit_s
                    .map(|t| format!(", none past {t:.0} s"))
                    .unwrap_or_default()
            )
        } else {
            format!("{} reps", grid.reps)
        },
        dir.join("results.jsonl").display()
    );
    let progress = !a.no_progress;
    let done = |o: &sweep::Outcome, dir: &std::path::Path| -> anyhow::Result<()> {
        let overhead = o.wall_s - o.cell_time_s;
        let mut not_run = String::new();
        if o.settled_early > 0 {
            not_run += &format!(", {} not needed (settled or decided)", o.settled_early);
        }
        if o.past_time_limit > 0 {
            not_run += &format!(", {} left out by the time limit", o.past_time_limit);
        }
        sendpath_core::say!(
            "sweep done: {} repetitions measured ({} failed), {} skipped{not_run}; wall {:.1} s for {:.1} s of warm-up + windows (overhead {:.1} s, {:.1}% of cell time)",
            o.measured,
            o.failed,
            o.skipped,
            o.wall_s,
            o.cell_time_s,
            overhead,
            if o.cell_time_s > 0.0 { overhead / o.cell_time_s * 100.0 } else { 0.0 }
        );
        sendpath_core::say!("results: {}", o.results.display());
        if !a.no_report && o.measured + o.skipped > 0 {
            render(&o.results, dir)?;
        }
        Ok(())
    };
    if let (Some((v, list)), Target::Local(t)) = (&shaped, &mut target) {
        // The qdisc comes off however the sweep ends (an error, a signal included).
        let _clear = impair::Clear(v);
        impair::clear_on_signal(v)?;
        let mut failed = 0;
        for i in list {
            // (What this kernel cannot apply of it was said by the check.)
            let _not_applied = v
                .apply(i)
                .map_err(|e| anyhow::anyhow!("--impairments {}: {e}", i.name))?;
            let sub = impair::sub_dir(&dir, i);
            eprintln!(
                "sweep: impairment {} ({}) -> {}",
                i.name,
                i.what,
                sub.display()
            );
            let o = sweep::run(&grid, t, &sub, progress)?;
            done(&o, &sub)?;
            failed += o.failed;
        }
        let p = impair::comparison(&dir, list)?;
        sendpath_core::say!("impairments compared: {}", p.display());
        return Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let o = match &mut target {
        Target::Local(t) => sweep::run(&grid, t, &dir, progress)?,
        Target::Remote(d) => {
            // An unreachable or refusing far host fails every cell the same way: say
            // it once, before starting.
            let far = d.connect()?;
            eprintln!(
                "sweep: far host {} ({}, {} CPUs)",
                far.kernel, far.cpu_model, far.cores
            );
            let o = sweep::run(&grid, d, &dir, progress)?;
            d.close();
            o
        }
    };
    done(&o, &dir)?;
    Ok(if o.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
