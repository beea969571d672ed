//! What a running sweep shows: a label per cell and the time left on the progress line.

use sendpath_core::spec::{Batch, Pattern, RunSpec};

/// A cell as the live table names it.
pub fn cell_label(s: &RunSpec) -> String {
    let pattern = match (s.pattern, s.rate_fraction) {
        (Pattern::Rate, Some(f)) => format!("rate@{:.0}%", f * 100.0),
        (p, _) => p.to_string(),
    };
    let pattern = match s.batch {
        Batch::One => pattern,
        b => format!("{pattern} {b}"),
    };
    format!(
        "{} {:<7} {:<11} {:>6} B x{}",
        s.mode,
        s.engine.as_str(),
        pattern,
        s.msg_size,
        s.flows
    )
}

/// The time left that the progress line shows: the bar's estimate (every planned repetition
/// at the pace so far), but no later than the time limit while it has not passed (the limit
/// cuts the rounds the estimate still counts; past it, only the fewest rounds are left to run).
pub fn time_left(
    eta: std::time::Duration,
    elapsed: std::time::Duration,
    limit_s: Option<f64>,
) -> std::time::Duration {
    match limit_s {
        Some(l) if elapsed.as_secs_f64() < l => eta.min(std::time::Duration::from_secs_f64(
            l - elapsed.as_secs_f64(),
        )),
        _ => eta,
    }
}
