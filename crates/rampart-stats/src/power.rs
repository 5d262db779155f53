//! Power analysis for a difference of two proportions: the sample size per arm needed to
//! detect a given absolute change, and the inverse, the minimum detectable effect at a given
//! sample size.
//!
//! The product uses the **simple** convention (unpooled normal approximation on the
//! difference of proportions, the quantity the pooled z-test of
//! [`crate::proportion::two_proportion_ztest`] tests). Cohen's h is provided for parity with
//! statsmodels.

use crate::normal::{isf, ppf, sf};
use crate::{Result, StatsError};

/// One- or two-sided design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sides {
    /// Two-sided test, `z_a = z_{1−α/2}`.
    TwoSided,
    /// One-sided test in the direction of the effect, `z_a = z_{1−α}`.
    OneSided,
}

/// A required sample size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSize {
    /// The real-valued control-arm size before rounding up.
    pub n_control_raw: f64,
    /// `⌈n_control_raw⌉`.
    pub n_control: u64,
    /// `⌈ratio · n_control_raw⌉`.
    pub n_treatment: u64,
}

fn z_alpha(alpha: f64, sides: Sides) -> Result<f64> {
    crate::check_alpha(alpha)?;
    let q = match sides {
        Sides::TwoSided => alpha / 2.0,
        Sides::OneSided => alpha,
    };
    isf(q).ok_or(StatsError::InvalidInput("alpha must be in (0, 1)"))
}

fn check_common(p1: f64, mde_abs: f64, power: f64, ratio: f64) -> Result<f64> {
    if !(p1 > 0.0 && p1 < 1.0) {
        return Err(StatsError::InvalidInput("baseline rate must be in (0, 1)"));
    }
    let p2 = p1 + mde_abs;
    if mde_abs == 0.0 || !(p2 > 0.0 && p2 < 1.0) {
        return Err(StatsError::InvalidInput(
            "p1 + mde_abs must be in (0, 1) and differ from p1",
        ));
    }
    if !(power > 0.0 && power < 1.0) {
        return Err(StatsError::InvalidInput("power must be in (0, 1)"));
    }
    if !(ratio > 0.0 && ratio.is_finite()) {
        return Err(StatsError::InvalidInput("ratio must be finite and > 0"));
    }
    Ok(p2)
}

fn finish(raw: f64, ratio: f64) -> Result<SampleSize> {
    if !raw.is_finite() || raw > 9.0e15 {
        return Err(StatsError::NotComputable("sample size overflows"));
    }
    Ok(SampleSize {
        n_control_raw: raw,
        n_control: raw.ceil() as u64,
        n_treatment: (ratio * raw).ceil() as u64,
    })
}

/// Required sample size, simple convention (the product's choice).
///
/// Formula (unpooled normal approximation, e.g. Chow, Shao & Wang, *Sample Size Calculations
/// in Clinical Research* (2008), §4.2): `p2 = p1 + mde_abs`,
/// `n_control = (z_a + z_b)² · (p1(1−p1) + p2(1−p2)/r) / mde_abs²`, `z_b = z_power`,
/// `n_treatment = ⌈r · n_control_raw⌉`, `r = n_treatment/n_control`.
pub fn sample_size_simple(
    p1: f64,
    mde_abs: f64,
    alpha: f64,
    power: f64,
    sides: Sides,
    ratio: f64,
) -> Result<SampleSize> {
    sample_size_simple_z(p1, mde_abs, design_quantiles(alpha, power, sides)?, ratio)
}

/// The quantiles `(z_a, z_b)` of a design (`z_a` as for [`Sides`], `z_b = z_power`), for
/// callers that size many rates at the same `alpha` and `power` (see [`sample_size_simple_z`]).
pub fn design_quantiles(alpha: f64, power: f64, sides: Sides) -> Result<(f64, f64)> {
    let za = z_alpha(alpha, sides)?;
    if !(power > 0.0 && power < 1.0) {
        return Err(StatsError::InvalidInput("power must be in (0, 1)"));
    }
    let zb = ppf(power).ok_or(StatsError::InvalidInput("power must be in (0, 1)"))?;
    Ok((za, zb))
}

/// [`sample_size_simple`] with the design's quantiles from [`design_quantiles`] (same formula;
/// the quantiles are the costly part, so a gate checked every few seconds computes them once).
pub fn sample_size_simple_z(
    p1: f64,
    mde_abs: f64,
    (za, zb): (f64, f64),
    ratio: f64,
) -> Result<SampleSize> {
    let p2 = check_common(p1, mde_abs, 0.5, ratio)?;
    let raw = (za + zb).powi(2) * (p1 * (1.0 - p1) + p2 * (1.0 - p2) / ratio) / (mde_abs * mde_abs);
    finish(raw, ratio)
}

/// Cohen's effect size for proportions, `h = 2·asin(√p2) − 2·asin(√p1)` (signed).
/// Cohen, *Statistical Power Analysis for the Behavioral Sciences* (1988), §6.2;
/// `statsmodels.stats.proportion.proportion_effectsize(p2, p1)`.
pub fn cohens_h(p1: f64, p2: f64) -> f64 {
    2.0 * p2.sqrt().asin() - 2.0 * p1.sqrt().asin()
}

/// Power of the normal test on Cohen's h at control size `n1`:
/// `s = |h|·√(n1·r/(1+r))`; two-sided `Q(z_a − s) + Q(z_a + s)`, one-sided `Q(z_a − s)`.
fn power_h(h: f64, n1: f64, ratio: f64, za: f64, sides: Sides) -> f64 {
    let s = h.abs() * (n1 * ratio / (1.0 + ratio)).sqrt();
    match sides {
        Sides::TwoSided => sf(za - s) + sf(za + s),
        Sides::OneSided => sf(za - s),
    }
}

/// Required sample size, Cohen's h convention; returns `(h, size)`.
///
/// Solves `power(n1) = power` by bisection (power is increasing in n1), with
/// `power(n1)` as in statsmodels' `NormalIndPower` including the far tail `Q(z_a + s)`.
/// Reference: `NormalIndPower().solve_power(effect_size=|h|, alpha, power, ratio)`.
pub fn sample_size_cohens_h(
    p1: f64,
    mde_abs: f64,
    alpha: f64,
    power: f64,
    sides: Sides,
    ratio: f64,
) -> Result<(f64, SampleSize)> {
    let p2 = check_common(p1, mde_abs, power, ratio)?;
    let za = z_alpha(alpha, sides)?;
    let h = cohens_h(p1, p2);
    if h == 0.0 {
        return Err(StatsError::NotComputable("zero effect size"));
    }
    let floor = power_h(h, 0.0, ratio, za, sides);
    if power <= floor {
        return Err(StatsError::InvalidInput(
            "power must exceed the test's size",
        ));
    }
    let mut hi = 1.0;
    while power_h(h, hi, ratio, za, sides) < power {
        hi *= 2.0;
        if hi > 1e18 {
            return Err(StatsError::NotComputable("sample size overflows"));
        }
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if power_h(h, mid, ratio, za, sides) < power {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok((h, finish(0.5 * (lo + hi), ratio)?))
}

/// Minimum detectable absolute effect at a given control-arm size, simple convention: the
/// `δ` (with the sign of `direction`) solving
/// `n_control·δ² = (z_a + z_b)²·(p1(1−p1) + (p1+δ)(1−p1−δ)/r)`, a quadratic in δ:
/// `(n + K/r)δ² − (K(1−2p1)/r)δ − K·p1(1−p1)(1 + 1/r) = 0`, `K = (z_a + z_b)²`.
/// `direction > 0` gives the increase, `< 0` the decrease. Not computable when the root
/// leaves (0, 1).
pub fn minimum_detectable_effect(
    p1: f64,
    n_control: f64,
    alpha: f64,
    power: f64,
    sides: Sides,
    ratio: f64,
    direction: f64,
) -> Result<f64> {
    if !(p1 > 0.0 && p1 < 1.0) {
        return Err(StatsError::InvalidInput("baseline rate must be in (0, 1)"));
    }
    if !(n_control > 0.0 && n_control.is_finite()) {
        return Err(StatsError::InvalidInput("n_control must be finite and > 0"));
    }
    if !(power > 0.0 && power < 1.0 && ratio > 0.0 && ratio.is_finite()) || direction == 0.0 {
        return Err(StatsError::InvalidInput(
            "power in (0,1), ratio > 0, direction ≠ 0",
        ));
    }
    let za = z_alpha(alpha, sides)?;
    let zb = ppf(power).ok_or(StatsError::InvalidInput("power must be in (0, 1)"))?;
    let k = (za + zb).powi(2);
    let a = n_control + k / ratio;
    let b = -k * (1.0 - 2.0 * p1) / ratio;
    let c = -k * p1 * (1.0 - p1) * (1.0 + 1.0 / ratio);
    let disc = (b * b - 4.0 * a * c).sqrt();
    let delta = if direction > 0.0 {
        (-b + disc) / (2.0 * a)
    } else {
        (-b - disc) / (2.0 * a)
    };
    let p2 = p1 + delta;
    if !(p2 > 0.0 && p2 < 1.0) {
        return Err(StatsError::NotComputable(
            "no detectable effect inside (0, 1)",
        ));
    }
    Ok(delta)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn typical_lift() {
        let s = sample_size_simple(0.05, 0.01, 0.05, 0.8, Sides::TwoSided, 1.0).unwrap();
        assert!((s.n_control_raw / 8_154.986_043_988_702 - 1.0).abs() < 1e-10);
        assert_eq!(s.n_control, 8155);
        let (h, c) = sample_size_cohens_h(0.05, 0.01, 0.05, 0.8, Sides::TwoSided, 1.0).unwrap();
        assert!((h - 0.043_907_314_544_633_15).abs() < 1e-14);
        assert!((c.n_control_raw / 8_142.595_394_203_74 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn mde_inverts_sample_size() {
        for (p1, mde, r) in [(0.05, 0.01, 1.0), (0.2, -0.05, 2.0), (0.001, 0.001, 0.25)] {
            let s = sample_size_simple(p1, mde, 0.05, 0.8, Sides::TwoSided, r).unwrap();
            let d =
                minimum_detectable_effect(p1, s.n_control_raw, 0.05, 0.8, Sides::TwoSided, r, mde)
                    .unwrap();
            assert!((d - mde).abs() < 1e-12 * mde.abs().max(1.0), "{d} vs {mde}");
        }
    }
}
