//! Tests and intervals for proportions: the Wilson score interval, the pooled two-proportion
//! z-test, and McNemar's test for paired binary outcomes (exact binomial and χ²).
//!
//! Undefined cases (no discordant pairs for the χ² McNemar, a pooled rate of 0 or 1 for the
//! z-test) return [`StatsError::NotComputable`].

use crate::normal::{cdf, isf, sf};
use crate::special::{binomial_cdf, erfc};
use crate::{Alternative, Interval, Result, StatsError, TestResult, check_alpha};

/// Successes out of trials for one arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Number of successes, `≤ total`.
    pub successes: u64,
    /// Number of trials.
    pub total: u64,
}

impl Counts {
    /// Builds a `Counts`.
    pub fn new(successes: u64, total: u64) -> Self {
        Counts { successes, total }
    }
}

/// Wilson score interval for a binomial proportion, confidence `1 − alpha` (two-sided).
///
/// Formula (Wilson 1927): with `z = z_{1−α/2}`, `p̂ = successes/n`,
/// `center = (p̂ + z²/(2n)) / (1 + z²/n)`, `half = z·√(p̂(1−p̂)/n + z²/(4n²)) / (1 + z²/n)`,
/// interval `[max(0, center − half), min(1, center + half)]`.
/// Reference: `statsmodels.stats.proportion.proportion_confint(method='wilson')`.
pub fn wilson_interval(successes: u64, n: u64, alpha: f64) -> Result<Interval> {
    check_alpha(alpha)?;
    if n == 0 {
        return Err(StatsError::InvalidInput("n must be at least 1"));
    }
    if successes > n {
        return Err(StatsError::InvalidInput("successes must not exceed n"));
    }
    let z = isf(alpha / 2.0).ok_or(StatsError::InvalidInput("alpha must be in (0, 1)"))?;
    let nf = n as f64;
    let p = successes as f64 / nf;
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    Ok(Interval {
        low: (center - half).max(0.0),
        high: (center + half).min(1.0),
    })
}

/// Pooled two-proportion z-test of treatment vs control.
///
/// Formula: `z = (x_t/n_t − x_c/n_c) / √(p̄(1−p̄)(1/n_t + 1/n_c))`, `p̄ = (x_t+x_c)/(n_t+n_c)`;
/// p-value `2·Q(|z|)` (two-sided), `Q(z)` (larger), `Φ(z)` (smaller).
/// Reference: `statsmodels.stats.proportion.proportions_ztest(prop_var=False)`.
/// Not computable when `p̄` is 0 or 1.
pub fn two_proportion_ztest(
    treatment: Counts,
    control: Counts,
    alternative: Alternative,
) -> Result<TestResult> {
    if treatment.total == 0 || control.total == 0 {
        return Err(StatsError::InvalidInput(
            "each arm needs at least one trial",
        ));
    }
    if treatment.successes > treatment.total || control.successes > control.total {
        return Err(StatsError::InvalidInput("successes must not exceed total"));
    }
    let (nt, nc) = (treatment.total as f64, control.total as f64);
    let diff = treatment.successes as f64 / nt - control.successes as f64 / nc;
    let pooled = (treatment.successes + control.successes) as f64 / (nt + nc);
    let var = pooled * (1.0 - pooled) * (1.0 / nt + 1.0 / nc);
    if var <= 0.0 {
        return Err(StatsError::NotComputable("pooled proportion is 0 or 1"));
    }
    let z = diff / var.sqrt();
    let p_value = match alternative {
        Alternative::TwoSided => 2.0 * sf(z.abs()),
        Alternative::Larger => sf(z),
        Alternative::Smaller => cdf(z),
    };
    Ok(TestResult {
        statistic: z,
        p_value: p_value.clamp(0.0, 1.0),
    })
}

/// Result of McNemar's exact test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McNemarExact {
    /// `min(b, c)`.
    pub statistic: u64,
    /// Two-sided exact p-value.
    pub p_value: f64,
}

/// McNemar's exact test on the discordant pairs `b` and `c` of a paired 2×2 table.
///
/// Formula: `p = min(1, 2·P[Binomial(b+c, ½) ≤ min(b, c)])`, with the binomial tail computed
/// as a regularized incomplete beta function (safe for counts up to 2·10⁹ and beyond);
/// `p = 1` when `b = c = 0`. Reference: `statsmodels...mcnemar(table, exact=True)`;
/// McNemar (1947).
pub fn mcnemar_exact(b: u64, c: u64) -> McNemarExact {
    let k = b.min(c);
    let n = b.saturating_add(c);
    let tail = binomial_cdf(k, n, 0.5).unwrap_or(1.0);
    McNemarExact {
        statistic: k,
        p_value: (2.0 * tail).min(1.0),
    }
}

/// McNemar's χ² test (1 degree of freedom) on the discordant pairs `b` and `c`.
///
/// Formula: `χ² = (|b − c| − k)² / (b + c)` with `k = 1` (Edwards' continuity correction) or
/// `0`; not clamped, so `b = c` with correction gives `1/(b+c)`. p-value
/// `= P[χ²₁ ≥ χ²] = erfc(√(χ²/2))`. Reference: `statsmodels...mcnemar(exact=False)`.
/// Not computable when `b + c = 0`.
pub fn mcnemar_chi2(b: u64, c: u64, correction: bool) -> Result<TestResult> {
    let n = b as f64 + c as f64;
    if n == 0.0 {
        return Err(StatsError::NotComputable("no discordant pairs"));
    }
    let k = if correction { 1.0 } else { 0.0 };
    let diff = (b as f64 - c as f64).abs() - k;
    let statistic = diff * diff / n;
    Ok(TestResult {
        statistic,
        p_value: erfc((statistic / 2.0).sqrt()).clamp(0.0, 1.0),
    })
}

/// Maximum-likelihood rates of two independent binomial arms under the linear null
/// `p_t = k·p_c + m` (the "restricted" estimates of a score test), returned as `(p_t, p_c)`.
///
/// Formula: maximise `ℓ(p) = a_t·ln(k·p + m) + b_t·ln(1 − k·p − m) + a_c·ln p + b_c·ln(1 − p)`
/// over `p = p_c` in the open interval where both rates lie in (0, 1), with `a = successes`,
/// `b = failures` of each arm (callers may pass smoothed, non-integer counts). Each term is the
/// logarithm of a positive linear function, so `ℓ` is strictly concave and its score `ℓ'(p)` falls
/// from +∞ to −∞ across the interval: the maximiser is the score's unique root, found by
/// Newton's method safeguarded by bisection, to machine precision. This is the restricted MLE
/// of Miettinen & Nurminen (1985),
/// *Comparative analysis of two rates* (Statistics in Medicine 4:213–226), for their difference
/// (`k = 1`) and ratio (`m = 0`) nulls, and of Farrington & Manning (1990, Statistics in Medicine
/// 9:1447–1454), written for the general linear null instead of their closed-form cubic.
/// Unlike a variance taken from one arm's own estimate, it uses both arms' data at the null:
/// a small arm that happened to see no events does not make the comparison look precise.
///
/// Errors: a negative or non-finite count, an arm with no observations (`a + b = 0`), `k ≤ 0`,
/// or a null that leaves no admissible rate (`m ≥ 1`, or `k + m ≤ 0`).
pub fn restricted_rates(
    treatment: (f64, f64),
    control: (f64, f64),
    k: f64,
    m: f64,
) -> Result<(f64, f64)> {
    let (at, bt) = treatment;
    let (ac, bc) = control;
    let ok = |x: f64| x.is_finite() && x >= 0.0;
    if ![at, bt, ac, bc].into_iter().all(ok) || at + bt <= 0.0 || ac + bc <= 0.0 {
        return Err(StatsError::InvalidInput(
            "counts must be finite, ≥ 0 and not all zero in an arm",
        ));
    }
    if !(k > 0.0 && k.is_finite() && m.is_finite()) {
        return Err(StatsError::InvalidInput("k must be > 0 and m finite"));
    }
    // p_c ∈ (lo, hi) keeps p_c and k·p_c + m inside (0, 1).
    let lo = (-m / k).max(0.0);
    let hi = ((1.0 - m) / k).min(1.0);
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        return Err(StatsError::InvalidInput(
            "the null leaves no admissible rate",
        ));
    }
    // Score and its derivative (negative everywhere: ℓ is strictly concave).
    let score = |p: f64| {
        let t = k * p + m;
        let s = at * k / t - bt * k / (1.0 - t) + ac / p - bc / (1.0 - p);
        let ds = -at * k * k / (t * t)
            - bt * k * k / ((1.0 - t) * (1.0 - t))
            - ac / (p * p)
            - bc / ((1.0 - p) * (1.0 - p));
        (s, ds)
    };
    // Newton's method kept inside a shrinking bracket (bisection when a step leaves it).
    let (mut a, mut b) = (lo, hi);
    let mut p = (ac / (ac + bc)).clamp(lo, hi);
    if !(p > a && p < b) {
        p = 0.5 * (a + b);
    }
    for _ in 0..200 {
        let (sc, ds) = score(p);
        if sc.is_nan() || sc > 0.0 {
            a = p;
        } else {
            b = p;
        }
        let newton = p - sc / ds;
        let next = if newton > a && newton < b {
            newton
        } else {
            0.5 * (a + b)
        };
        if (next - p).abs() <= 1e-15 * p || b - a <= 1e-15 * p {
            p = next;
            break;
        }
        p = next;
    }
    Ok(((k * p + m).clamp(0.0, 1.0), p))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wilson_contains_estimate() {
        for (x, n) in [(0, 1), (1, 1), (3, 7), (20, 20), (1, 10_000_000_000)] {
            let ci = wilson_interval(x, n, 0.05).unwrap();
            assert!(
                ci.low <= x as f64 / n as f64 + 1e-15 && x as f64 / n as f64 <= ci.high + 1e-15
            );
        }
        assert!(wilson_interval(1, 0, 0.05).is_err());
        assert!(wilson_interval(1, 2, 0.0).is_err());
    }

    #[test]
    fn mcnemar_exact_tiny() {
        let r = mcnemar_exact(0, 12);
        assert_eq!(r.statistic, 0);
        assert!((r.p_value - 0.000_488_281_25).abs() < 1e-17);
        assert_eq!(mcnemar_exact(0, 0).p_value, 1.0);
    }

    #[test]
    fn ztest_undefined() {
        let r = two_proportion_ztest(Counts::new(0, 5), Counts::new(0, 7), Alternative::TwoSided);
        assert!(matches!(r, Err(StatsError::NotComputable(_))));
    }

    #[test]
    fn restricted_rates_match_closed_forms() {
        // k = 1, m = 0: the restricted MLE is the pooled rate.
        let (pt, pc) = restricted_rates((30.0, 70.0), (10.0, 190.0), 1.0, 0.0).unwrap();
        assert!((pt - 40.0 / 300.0).abs() < 1e-12 && (pc - 40.0 / 300.0).abs() < 1e-12);
        // Difference null m: the score at the root is 0 (Farrington–Manning's equation).
        let (at, bt, ac, bc, m) = (60.0, 440.0, 100.0, 9_900.0, 0.01);
        let (pt, pc) = restricted_rates((at, bt), (ac, bc), 1.0, m).unwrap();
        assert!((pt - pc - m).abs() < 1e-12);
        let score = at / pt - bt / (1.0 - pt) + ac / pc - bc / (1.0 - pc);
        assert!(score.abs() < 1e-6 * (at + bt + ac + bc), "{score}");
        // The small control with no events is pulled towards what the canary implies.
        let (_, pc) = restricted_rates((78.5, 651.5), (0.5, 49.5), 2.0, 0.0).unwrap();
        assert!((0.045..0.06).contains(&pc), "{pc}");
        assert!(restricted_rates((1.0, 1.0), (1.0, 1.0), 1.0, 1.0).is_err());
        assert!(restricted_rates((1.0, 1.0), (0.0, 0.0), 1.0, 0.0).is_err());
    }
}
