//! The words and numbers the report's sections share.

use crate::derive::Metric;
use crate::plot::num_label;
use crate::summary::Crossover;

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(super) fn list_u64(v: &[u64], unit: &str) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x}{unit}")).collect();
    parts.join(", ")
}

pub(super) fn join<T: std::fmt::Display>(v: impl IntoIterator<Item = T>) -> String {
    v.into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `s` with its first letter upper-case.
pub(super) fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

pub(super) fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// The cell text of a crossover: `16384 B (1.41x, 90% CI 1.30-1.52)`, `1024 B (1.25x, 90% CI
/// 1.12-1.36; not at 16384 B)`, or `no clear win (64..16384 B)`.
pub fn crossover_text(c: &Crossover) -> String {
    match (c.first_win_bytes, c.ratio_at_first_win) {
        (Some(s), Some(r)) if c.loses_above.is_empty() => format!("{s} B ({})", r.text()),
        (Some(s), Some(r)) => format!(
            "{s} B ({}; not at {})",
            r.text(),
            list_u64(&c.loses_above, " B")
        ),
        _ => {
            let lo = c.sizes_compared.first().copied().unwrap_or(0);
            let hi = c.sizes_compared.last().copied().unwrap_or(0);
            let range = if lo == hi {
                format!("measured at {lo} B only")
            } else {
                format!("{lo}..{hi} B")
            };
            if c.unclear.is_empty() {
                format!("no clear win ({range})")
            } else {
                format!(
                    "no clear win ({range}; ahead within the noise at {})",
                    list_u64(&c.unclear, " B")
                )
            }
        }
    }
}

pub(super) fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 {
        format!("{:.2}x", b / a)
    } else {
        "-".into()
    }
}

pub(super) fn cell(r: &crate::derive::DerivedRow, m: Metric, scale: f64) -> String {
    match r.get(m) {
        None => "-".into(),
        Some(s) if s.is_noisy() => {
            format!("{} (±{})", num_label(s.median * scale), pct(s.ci_half))
        }
        Some(s) => num_label(s.median * scale),
    }
}
