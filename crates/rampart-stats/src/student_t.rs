//! Student's t distribution, and the one-sample (or paired) t-test and interval: a mean
//! estimated from a handful of observations, e.g. the comparison report's per-class length
//! ratio, where the normal (z) interval is far too narrow.
//!
//! Definition: `T = Z / √(V/ν)` with `Z ~ N(0, 1)` and `V ~ χ²_ν` independent (Student 1908,
//! *The probable error of a mean*, Biometrika 6:1–25; Fisher 1925). Its two-sided tail is a
//! regularized incomplete beta function (Abramowitz & Stegun 26.7.1; Numerical Recipes, 3rd
//! ed., §6.14.9):
//!
//! `P(|T| ≥ t) = I_{ν/(ν+t²)}(ν/2, ½)`, so `P(T ≥ t) = ½·I_{ν/(ν+t²)}(ν/2, ½)` for `t ≥ 0`.
//!
//! Quantiles are computed by inverting that tail numerically (no table, any real `ν > 0`):
//! Newton's method on `P(T ≥ t) − q` with the density
//! `f(t) = (1 + t²/ν)^{−(ν+1)/2} / (√ν·B(ν/2, ½))`, kept inside a bracket by bisection.
//!
//! The test: for observations `x₁…x_n`, `x̄`, `s` (n − 1 denominator), `t = (x̄ − μ₀)/(s/√n)`
//! on `ν = n − 1` degrees of freedom; two-sided p-value `P(|T_ν| ≥ |t|)`; interval
//! `x̄ ∓ t_{ν, (1+level)/2}·s/√n`. Exact for normal data at every `n ≥ 2`; for other data the
//! usual large-sample approximation, and on a symmetric distribution (an A/A comparison's
//! log ratios) it stays close to its level even at small `n`. Reference:
//! `scipy.stats.ttest_1samp`, `scipy.stats.t.interval`.

use crate::special::{beta_inc_reg_pair, ln_gamma};
use crate::{Interval, Result, StatsError};

/// Checks `ν > 0` and finite.
fn check_df(df: f64) -> Option<()> {
    (df > 0.0 && df.is_finite()).then_some(())
}

/// Upper tail `P(T_ν ≥ t)` (module docs). `None` for `ν ≤ 0`, a non-finite `ν` or a NaN `t`.
pub fn sf(t: f64, df: f64) -> Option<f64> {
    check_df(df)?;
    if t.is_nan() {
        return None;
    }
    if t.is_infinite() {
        return Some(if t > 0.0 { 0.0 } else { 1.0 });
    }
    let x = df / (df + t * t);
    // (I, 1 − I) = (P(|T| ≥ |t|), P(|T| < |t|)), the smaller computed directly.
    let (two_tail, inside) = beta_inc_reg_pair(df / 2.0, 0.5, x)?;
    Some(if t >= 0.0 {
        0.5 * two_tail
    } else {
        0.5 + 0.5 * inside
    })
}

/// CDF `P(T_ν ≤ t) = sf(−t)`.
pub fn cdf(t: f64, df: f64) -> Option<f64> {
    sf(-t, df)
}

/// Two-sided tail `P(|T_ν| ≥ |t|) = I_{ν/(ν+t²)}(ν/2, ½)`.
pub fn two_sided_p(t: f64, df: f64) -> Option<f64> {
    check_df(df)?;
    if t.is_nan() {
        return None;
    }
    if t.is_infinite() {
        return Some(0.0);
    }
    beta_inc_reg_pair(df / 2.0, 0.5, df / (df + t * t)).map(|(p, _)| p)
}

/// Density `f_ν(t)` (module docs), computed in log space.
pub fn pdf(t: f64, df: f64) -> Option<f64> {
    check_df(df)?;
    let ln_beta = ln_gamma(df / 2.0)? + ln_gamma(0.5)? - ln_gamma(df / 2.0 + 0.5)?;
    let ln_f = -(df + 1.0) / 2.0 * (t * t / df).ln_1p() - 0.5 * df.ln() - ln_beta;
    Some(ln_f.exp())
}

/// Upper-tail quantile: the `t` with `P(T_ν ≥ t) = q` (scipy's `t.isf(q, ν)`), by inverting
/// [`sf`] (module docs). `None` unless `0 < q < 1` and `ν > 0` is finite.
pub fn isf(q: f64, df: f64) -> Option<f64> {
    check_df(df)?;
    if !(q > 0.0 && q < 1.0) {
        return None;
    }
    if q > 0.5 {
        return isf(1.0 - q, df).map(|t| -t);
    }
    if q == 0.5 {
        return Some(0.0);
    }
    // Bracket [lo, hi] with sf(lo) ≥ q > sf(hi); sf falls from ½ at 0 towards 0.
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while sf(hi, df)? > q {
        lo = hi;
        hi *= 2.0;
        if !hi.is_finite() {
            return None;
        }
    }
    let mut t = 0.5 * (lo + hi);
    for _ in 0..200 {
        let e = sf(t, df)? - q;
        if e > 0.0 {
            lo = t;
        } else {
            hi = t;
        }
        // d sf / dt = −f(t): Newton's step is t + e/f(t).
        let newton = t + e / pdf(t, df)?;
        let next = if newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        let done =
            (next - t).abs() <= 4.0 * f64::EPSILON * next.abs() || hi - lo <= f64::EPSILON * hi;
        t = next;
        if done {
            break;
        }
    }
    Some(t)
}

/// A one-sample (or paired) t-test with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    /// Observations.
    pub n: u64,
    /// Their mean `x̄`.
    pub mean: f64,
    /// Sample standard deviation (n − 1 denominator).
    pub sd: f64,
    /// Degrees of freedom `n − 1`.
    pub df: f64,
    /// `t = (x̄ − μ₀)/(s/√n)`.
    pub statistic: f64,
    /// Two-sided p-value `P(|T_df| ≥ |t|)`.
    pub p_value: f64,
    /// `x̄ ∓ t_{df, (1+level)/2}·s/√n`.
    pub interval: Interval,
}

/// One-sample t-test of `mean = mu0` and the two-sided interval of the mean at
/// `confidence_level` (module docs). For paired data pass the differences.
///
/// Errors: fewer than two observations, a non-finite value, a level outside (0, 1)
/// (`InvalidInput`); no variation at all, `s = 0`, where `t` is undefined (`NotComputable`).
pub fn t_test(x: &[f64], mu0: f64, confidence_level: f64) -> Result<TTest> {
    if !(confidence_level > 0.0 && confidence_level < 1.0) {
        return Err(StatsError::InvalidInput(
            "confidence_level must be in (0, 1)",
        ));
    }
    if x.len() < 2 {
        return Err(StatsError::InvalidInput("need at least two observations"));
    }
    if !x.iter().all(|v| v.is_finite()) || !mu0.is_finite() {
        return Err(StatsError::InvalidInput("observations must be finite"));
    }
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let ss: f64 = x.iter().map(|v| (v - mean) * (v - mean)).sum();
    let sd = (ss / (n - 1.0)).sqrt();
    if sd == 0.0 {
        return Err(StatsError::NotComputable(
            "no variation: every observation is the same",
        ));
    }
    let df = n - 1.0;
    let se = sd / n.sqrt();
    let statistic = (mean - mu0) / se;
    let p_value = two_sided_p(statistic, df).ok_or(StatsError::NotComputable("t tail"))?;
    let q =
        isf((1.0 - confidence_level) / 2.0, df).ok_or(StatsError::NotComputable("t quantile"))?;
    Ok(TTest {
        n: x.len() as u64,
        mean,
        sd,
        df,
        statistic,
        p_value: p_value.clamp(0.0, 1.0),
        interval: Interval {
            low: mean - q * se,
            high: mean + q * se,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn quantiles_match_the_closed_forms_at_one_and_two_degrees_of_freedom() {
        for q in [
            1e-10, 1e-4, 0.0005, 0.005, 0.025, 0.05, 0.1, 0.3, 0.45, 0.7, 0.975,
        ] {
            // ν = 1 is the Cauchy distribution: t = tan(π(½ − q)) = 1/tan(πq).
            let cauchy = 1.0 / (PI * q).tan();
            assert!(close(isf(q, 1.0).unwrap(), cauchy, 1e-10), "ν=1 q={q}");
            // ν = 2: P(T ≥ t) = ½ − t/(2√(2 + t²)), so t = (1 − 2q)/√(2q(1 − q)).
            let two = (1.0 - 2.0 * q) / (2.0 * q * (1.0 - q)).sqrt();
            assert!(close(isf(q, 2.0).unwrap(), two, 1e-10), "ν=2 q={q}");
        }
    }

    #[test]
    fn tails_and_quantiles_round_trip_and_approach_the_normal() {
        for df in [0.5, 1.0, 3.0, 7.5, 19.0, 120.0, 1e4] {
            for q in [1e-8, 0.001, 0.025, 0.2, 0.5, 0.8] {
                let t = isf(q, df).unwrap();
                assert!(close(sf(t, df).unwrap(), q, 1e-9), "df={df} q={q}");
                assert!(close(cdf(-t, df).unwrap(), q, 1e-9), "df={df} q={q}");
            }
        }
        let z = crate::normal::isf(0.025).unwrap();
        assert!(close(isf(0.025, 1e7).unwrap(), z, 1e-6));
        // Heavier tails than the normal at small ν, and ordered in ν.
        assert!(isf(0.025, 2.0).unwrap() > isf(0.025, 5.0).unwrap());
        assert!(isf(0.025, 5.0).unwrap() > isf(0.025, 30.0).unwrap());
        assert!(isf(0.025, 30.0).unwrap() > z);
        // Textbook values (t tables, 4 decimals), as a cross-check of the definition.
        for (df, t) in [
            (1.0, 12.7062),
            (4.0, 2.7764),
            (10.0, 2.2281),
            (19.0, 2.0930),
        ] {
            assert!((isf(0.025, df).unwrap() - t).abs() < 5e-5, "df={df}");
        }
        assert_eq!(isf(0.0, 3.0), None);
        assert_eq!(isf(0.5, 0.0), None);
    }

    #[test]
    fn density_integrates_to_the_tail() {
        // ∫_t^∞ f = sf(t), by Simpson's rule on [t, t + 200] (the rest is below 1e-6 at ν = 3).
        let (df, t0) = (3.0, 0.7);
        let (a, b, n) = (t0, t0 + 200.0, 200_000);
        let h = (b - a) / n as f64;
        let mut s = pdf(a, df).unwrap() + pdf(b, df).unwrap();
        for i in 1..n {
            let w = if i % 2 == 1 { 4.0 } else { 2.0 };
            s += w * pdf(a + i as f64 * h, df).unwrap();
        }
        let integral = s * h / 3.0;
        assert!((integral - sf(t0, df).unwrap()).abs() < 2e-6, "{integral}");
    }

    #[test]
    fn t_test_of_a_small_sample() {
        // x̄ = 2, s = 1, n = 3: t = 2√3 on 2 df; p = 1 − t/√(2 + t²)·… from the ν = 2 form.
        let r = t_test(&[1.0, 2.0, 3.0], 0.0, 0.95).unwrap();
        let t = 2.0 * 3f64.sqrt();
        assert!(close(r.statistic, t, 1e-12));
        let p = 1.0 - t / (2.0 + t * t).sqrt();
        assert!(close(r.p_value, p, 1e-10), "{} vs {p}", r.p_value);
        let q = isf(0.025, 2.0).unwrap();
        assert!(close(r.interval.low, 2.0 - q / 3f64.sqrt(), 1e-12));
        assert!(close(r.interval.high, 2.0 + q / 3f64.sqrt(), 1e-12));
        assert!(matches!(
            t_test(&[1.0, 1.0, 1.0], 0.0, 0.95),
            Err(StatsError::NotComputable(_))
        ));
        assert!(t_test(&[1.0], 0.0, 0.95).is_err());
        assert!(t_test(&[1.0, f64::NAN], 0.0, 0.95).is_err());
    }
}
