//! The one statistics module: medians, rank correlation ([`spearman`]), and how sure a median
//! is and whether two cells differ: percentile bootstrap confidence intervals, deterministic (a fixed-seed generator), so the same records always give the same
//! answer, on the sweep's terminal, in the report and in `sendpath compare`.
//!
//! - A cell's median is *settled* when the half-width of its 90% CI is at most
//!   [`SETTLED_REL_HALF_WIDTH`] of the median; a cell that is not is *noisy*.
//! - One cell *beats* another when the 90% CI of the ratio of their medians lies wholly above
//!   [`MARGIN`] (resampling each cell's repetitions independently): a gap smaller than that is
//!   not a finding on a machine where such gaps do not repeat from run to run (this VM, see
//!   [`MARGIN`]); otherwise there is *no clear difference*, whatever the medians say.

/// Confidence level of every interval.
pub const LEVEL: f64 = 0.90;
/// A median is settled when its CI's half-width is at most this fraction of it.
pub const SETTLED_REL_HALF_WIDTH: f64 = 0.05;
/// A ratio must be clearly above this (its CI's lower end) to count as a win: 10% is the
/// smallest difference called a finding, because smaller ones do not repeat. Measured here over
/// nine runs of the main job (three sets of three, placement together): a mode's throughput
/// ratio to A1 moved from one run to the next by a median of 6-10% (p90 15-32%), more than a
/// run's own interval says (it describes that run's repetitions, not the machine's next mood).
/// Consecutive runs agreed on 70-91% of their findings with the bare 1.0, 88-97% with 1.05 and
/// 91-100% with 1.10. (Resampling whole rounds instead, pairing cells measured side by side,
/// narrowed the intervals and made it worse: 58-76%, 82-94%.)
pub const MARGIN: f64 = 1.10;
/// Bootstrap resamples per interval.
const RESAMPLES: usize = 2000;

/// xorshift64*: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Median (mean of the two middle values for an even count); NaN for none.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => s[n / 2],
        _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The median of `v`, None for none (where "no value" must not read as NaN).
pub fn median_if_any(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| median(v))
}

fn resample_median(v: &[f64], rng: &mut Rng, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend((0..v.len()).map(|_| v[rng.below(v.len())]));
    median(buf)
}

fn percentile_interval(mut stats: Vec<f64>) -> (f64, f64) {
    stats.sort_by(f64::total_cmp);
    let tail = (1.0 - LEVEL) / 2.0;
    let at = |q: f64| stats[((q * (stats.len() - 1) as f64).round() as usize).min(stats.len() - 1)];
    (at(tail), at(1.0 - tail))
}

/// The [`LEVEL`] confidence interval of the median of `v` (None for no values).
pub fn median_ci(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut rng = Rng::new(0x5e4d_9a7e ^ v.len() as u64);
    let mut buf = Vec::with_capacity(v.len());
    let stats = (0..RESAMPLES)
        .map(|_| resample_median(v, &mut rng, &mut buf))
        .collect();
    Some(percentile_interval(stats))
}

/// Half the width of the median's CI, relative to the median (0 for a zero median or a
/// single value: nothing more is known).
pub fn rel_half_width(v: &[f64]) -> f64 {
    let m = median(v);
    match median_ci(v) {
        Some((lo, hi)) if m != 0.0 && v.len() > 1 => (hi - lo) / 2.0 / m.abs(),
        _ => 0.0,
    }
}

/// The largest forecast [`reps_to_settle`] makes (a median near zero beside a wide spread
/// would otherwise ask for billions).
pub const MAX_FORECAST: usize = 1000;

/// About how many repetitions a cell whose median is known to ±`rel_half_width` over `n`
/// would need to settle, if more repetitions scatter as these did: an interval's width shrinks
/// as one over the square root of the count, so `n (rel_half_width / SETTLED)^2`, never fewer
/// than `n` nor more than [`MAX_FORECAST`] (unless `n` is). A forecast, not a promise: from 5 or
/// 6 repetitions it can be off by half.
pub fn reps_to_settle(n: usize, rel_half_width: f64) -> usize {
    let ratio = rel_half_width / SETTLED_REL_HALF_WIDTH;
    if !ratio.is_finite() {
        return n;
    }
    n.max((n as f64 * ratio * ratio).min(MAX_FORECAST as f64).ceil() as usize)
}

/// Whether `v` (at least `min_reps` values) pins its median down well enough.
pub fn settled(v: &[f64], min_reps: usize) -> bool {
    v.len() >= min_reps.max(1) && rel_half_width(v) <= SETTLED_REL_HALF_WIDTH
}

/// The ratio of medians `median(b) / median(a)` and its [`LEVEL`] CI, each cell's values
/// resampled independently (None when a side has no values or a zero median).
pub fn ratio_ci(a: &[f64], b: &[f64]) -> Option<Ratio> {
    let (ma, mb) = (median(a), median(b));
    if a.is_empty() || b.is_empty() || ma == 0.0 || !ma.is_finite() || !mb.is_finite() {
        return None;
    }
    let mut rng = Rng::new(0x0c0f_fee5 ^ ((a.len() as u64) << 16) ^ b.len() as u64);
    let (mut ba, mut bb) = (Vec::new(), Vec::new());
    let stats = (0..RESAMPLES)
        .filter_map(|_| {
            let ra = resample_median(a, &mut rng, &mut ba);
            let rb = resample_median(b, &mut rng, &mut bb);
            (ra != 0.0).then(|| rb / ra)
        })
        .collect::<Vec<_>>();
    if stats.is_empty() {
        return None;
    }
    let (lo, hi) = percentile_interval(stats);
    Some(Ratio {
        ratio: mb / ma,
        lo,
        hi,
    })
}

/// A ratio of medians with its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ratio {
    /// median(b) / median(a).
    pub ratio: f64,
    /// Lower end of the CI.
    pub lo: f64,
    /// Upper end of the CI.
    pub hi: f64,
}

impl Ratio {
    /// b is clearly above a: the whole CI is above [`MARGIN`].
    pub fn above(&self) -> bool {
        self.lo > MARGIN
    }

    /// b is clearly below a: the whole CI is below 1 / [`MARGIN`].
    pub fn below(&self) -> bool {
        self.hi < 1.0 / MARGIN
    }

    /// `1.24x, 90% CI 1.10-1.41`.
    pub fn text(&self) -> String {
        format!(
            "{:.2}x, {:.0}% CI {:.2}-{:.2}",
            self.ratio,
            LEVEL * 100.0,
            self.lo,
            self.hi
        )
    }
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation of two equally long series; None when either is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    let (rx, ry) = (ranks(x), ranks(y));
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repetitions_to_settle_grow_with_the_square_of_the_interval() {
        // +-10% over 6: twice the settled width, so four times the repetitions.
        assert_eq!(reps_to_settle(6, 0.10), 24);
        assert_eq!(reps_to_settle(6, 0.075), 14, "6 x 1.5^2 = 13.5, rounded up");
        assert_eq!(reps_to_settle(6, 0.03), 6, "settled already: never fewer");
        assert_eq!(reps_to_settle(5, f64::NAN), 5);
        assert_eq!(reps_to_settle(5, 1e12), MAX_FORECAST, "capped");
    }

    #[test]
    fn a_steady_series_settles_at_the_minimum_and_a_noisy_one_does_not() {
        let steady = [10.0, 10.2, 9.9];
        assert!(settled(&steady, 3));
        assert!(!settled(&steady[..2], 3), "not before the minimum");
        let noisy = [10.0, 14.0, 7.0, 12.0, 8.5, 13.0, 9.0];
        for n in 3..=noisy.len() {
            assert!(!settled(&noisy[..n], 3), "{n} values of a noisy series");
        }
        // One outlier among many steady values leaves the median settled.
        let outlier = [10.0, 10.1, 9.9, 10.0, 25.0, 10.05, 9.95];
        assert!(settled(&outlier, 3), "{}", rel_half_width(&outlier));
    }

    #[test]
    fn intervals_are_deterministic_and_hold_the_median() {
        let v = [3.0, 5.0, 4.0, 6.0, 5.5];
        let (lo, hi) = median_ci(&v).unwrap();
        assert_eq!(median_ci(&v), Some((lo, hi)), "same input, same interval");
        assert!(lo <= median(&v) && median(&v) <= hi);
        assert_eq!(median(&[1.0, 2.0]), 1.5);
        assert!(median(&[]).is_nan());
        assert_eq!(median_if_any(&[]), None);
        assert_eq!(median_if_any(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(rel_half_width(&[7.0]), 0.0);
    }

    #[test]
    fn a_ratio_is_clear_only_when_its_interval_excludes_one() {
        let a = [10.0, 10.5, 9.8, 10.2];
        let b = [13.0, 12.6, 13.4, 12.9];
        let r = ratio_ci(&a, &b).unwrap();
        assert!(r.above() && !r.below(), "{r:?}");
        assert!((r.ratio - 1.28).abs() < 0.03, "{r:?}");
        let close = [10.3, 9.7, 10.6, 9.9];
        let r = ratio_ci(&a, &close).unwrap();
        assert!(!r.above() && !r.below(), "a 2% gap within the noise: {r:?}");
        let seven = [10.75, 10.7, 10.8, 10.72];
        let r = ratio_ci(&a, &seven).unwrap();
        assert!(
            r.lo > 1.0 && !r.above(),
            "a clear 7% gap is below the margin: {r:?}"
        );
        assert!(ratio_ci(&[], &b).is_none() && ratio_ci(&[0.0], &b).is_none());
        assert!(r.text().contains("90% CI"));
    }

    #[test]
    fn spearman_sees_order_not_scale() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!((spearman(&x, &[10.0, 20.0, 30.0, 400.0, 5000.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((spearman(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&x, &[1.0; 5]), None);
        // Ties share their mean rank.
        assert_eq!(ranks(&[3.0, 1.0, 3.0]), vec![1.5, 0.0, 1.5]);
    }
}
