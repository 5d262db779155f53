//! Anytime-valid two-sided interval for a difference of two means, for gates that look at a
//! slowly growing sample again and again (the slow business signals: CSAT, refunds, …).
//!
//! Formula. Arms `t` (canary) and `c` (control) with means `m`, sample variances `s²` and sizes
//! `n`: `Δ̂ = m_t − m_c`, `V = s_t²/n_t + s_c²/n_c`, information `I = 1/V`. The normal-mixture
//! boundary of [`crate::sequential::ConfidenceSequence`] (Robbins 1970; Howard, Ramdas,
//! McAuliffe & Sekhon 2021, *Time-uniform, nonparametric, nonasymptotic confidence sequences*,
//! §3) gives the radius `r = √((I+ρ)·ln((I+ρ)/(ρα²)))/I`, and `[Δ̂ − r, Δ̂ + r]` covers `Δ` at
//! every look simultaneously with probability ≥ 1 − α (Ville's inequality on the two-sided
//! mixture martingale). With plug-in sample variances the guarantee is asymptotic
//! (Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas 2021, *Time-uniform central limit theory and
//! asymptotic confidence sequences*, Thm 2.2), which is the same construction with the
//! variance factored out: ρ is fixed on the standardised scale.
//!
//! Tuning. ρ is chosen so the radius is smallest when each arm holds `tune_n` observations
//! ([`crate::sequential::ConfidenceSequence::tuned_for`] at `I = 1/(s_t²/tune_n + s_c²/tune_n)`),
//! i.e. on the standardised scale ρ depends on `tune_n` only, never on the outcomes' values.
//! A smaller `tune_n` reacts faster to large effects; a larger one is tighter late.
//!
//! One arm. [`mean_interval`] is the same construction for a single mean `μ` (status pages
//! and reports show each cohort's outcomes with it): `V = s²/n`, `I = 1/V`, ρ tuned at
//! `I = tune_n/s²`, so `[m − r, m + r]` covers `μ` at every look with probability ≥ 1 − α
//! (asymptotically, with the plug-in variance).

use crate::sequential::{ConfidenceSequence, MeanSummary};
use crate::{Result, StatsError};

/// An anytime-valid interval for `μ_t − μ_c`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanDifferenceInterval {
    /// `Δ̂ = m_t − m_c`.
    pub estimate: f64,
    /// `Δ̂ − r`.
    pub lower: f64,
    /// `Δ̂ + r`.
    pub upper: f64,
}

/// Per-arm running moments (count, sum, sum of squares), mergeable and O(1) to update.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub n: u64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl Moments {
    /// Adds one observation.
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        self.sum_sq += x * x;
    }

    /// Mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }

    /// Mean and unbiased sample variance `(Σx² − n·m²)/(n − 1)` (clamped at 0 against
    /// rounding). Errors with fewer than two observations.
    pub fn summary(&self) -> Result<MeanSummary> {
        if self.n < 2 {
            return Err(StatsError::NotComputable("fewer than two observations"));
        }
        let n = self.n as f64;
        let mean = self.sum / n;
        let variance = ((self.sum_sq - n * mean * mean) / (n - 1.0)).max(0.0);
        Ok(MeanSummary {
            mean,
            variance,
            n: self.n,
        })
    }
}

/// The anytime-valid interval of `μ_t − μ_c` at level `1 − alpha` (module docs).
///
/// Errors: an arm with fewer than two observations, both variances 0, `alpha ∉ (0, 1)`,
/// `tune_n = 0`.
pub fn mean_difference_interval(
    treatment: &Moments,
    control: &Moments,
    alpha: f64,
    tune_n: u64,
) -> Result<MeanDifferenceInterval> {
    if tune_n == 0 {
        return Err(StatsError::InvalidInput("tune_n must be > 0"));
    }
    let (t, c) = (treatment.summary()?, control.summary()?);
    let var = t.variance / t.n as f64 + c.variance / c.n as f64;
    if !(var > 0.0 && var.is_finite()) {
        return Err(StatsError::NotComputable("both arms are constant"));
    }
    let planned = (t.variance + c.variance) / tune_n as f64;
    let cs = ConfidenceSequence::tuned_for(alpha, 1.0 / planned)?;
    let r = cs.radius(var)?;
    let estimate = t.mean - c.mean;
    Ok(MeanDifferenceInterval {
        estimate,
        lower: estimate - r,
        upper: estimate + r,
    })
}

/// An anytime-valid interval for one mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanInterval {
    /// The sample mean `m`.
    pub mean: f64,
    /// `m − r`.
    pub lower: f64,
    /// `m + r`.
    pub upper: f64,
}

/// The anytime-valid interval of one arm's mean `μ` at level `1 − alpha` (module docs: the
/// normal-mixture radius at `V = s²/n`, ρ tuned for `tune_n` observations).
///
/// Errors: fewer than two observations, a variance of 0, `alpha ∉ (0, 1)`, `tune_n = 0`.
pub fn mean_interval(arm: &Moments, alpha: f64, tune_n: u64) -> Result<MeanInterval> {
    if tune_n == 0 {
        return Err(StatsError::InvalidInput("tune_n must be > 0"));
    }
    let s = arm.summary()?;
    let var = s.variance / s.n as f64;
    if !(var > 0.0 && var.is_finite()) {
        return Err(StatsError::NotComputable("the arm is constant"));
    }
    let cs = ConfidenceSequence::tuned_for(alpha, tune_n as f64 / s.variance)?;
    let r = cs.radius(var)?;
    Ok(MeanInterval {
        mean: s.mean,
        lower: s.mean - r,
        upper: s.mean + r,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn moments(xs: &[f64]) -> Moments {
        let mut m = Moments::default();
        xs.iter().for_each(|x| m.push(*x));
        m
    }

    #[test]
    fn summary_matches_the_textbook_variance() {
        let s = moments(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
            .summary()
            .unwrap();
        assert!((s.mean - 5.0).abs() < 1e-12);
        assert!((s.variance - 32.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn interval_is_centred_and_shrinks_with_more_data() {
        let small_t = moments(&[1.0, 3.0, 2.0, 4.0]);
        let small_c = moments(&[2.0, 4.0, 3.0, 5.0]);
        let a = mean_difference_interval(&small_t, &small_c, 0.05, 100).unwrap();
        assert!((a.estimate + 1.0).abs() < 1e-12);
        assert!(((a.upper + a.lower) / 2.0 - a.estimate).abs() < 1e-9);
        let mut big_t = Moments::default();
        let mut big_c = Moments::default();
        for _ in 0..100 {
            for x in [1.0, 3.0, 2.0, 4.0] {
                big_t.push(x);
                big_c.push(x + 1.0);
            }
        }
        let b = mean_difference_interval(&big_t, &big_c, 0.05, 100).unwrap();
        assert!(b.upper - b.lower < a.upper - a.lower);
        assert!(
            b.upper < 0.0,
            "400 vs 400 with a 1-point gap excludes 0: {b:?}"
        );
    }

    #[test]
    fn the_radius_is_the_confidence_sequence_radius() {
        // Δ̂ − lower = √((I+ρ) ln((I+ρ)/(ρα²)))/I with ρ = I_plan/u (sequential::tuned_for).
        let t = moments(&[0.0, 2.0, 4.0]);
        let c = moments(&[1.0, 3.0, 5.0]);
        let i = mean_difference_interval(&t, &c, 0.1, 3).unwrap();
        let var: f64 = 4.0 / 3.0 + 4.0 / 3.0;
        let cs = ConfidenceSequence::tuned_for(0.1, 1.0 / var).unwrap();
        assert!((i.estimate - i.lower - cs.radius(var).unwrap()).abs() < 1e-12);
    }

    #[test]
    fn one_arm_interval_is_the_confidence_sequence_radius_around_the_mean() {
        // m = 2, s² = 4, V = s²/3; r = √((I+ρ) ln((I+ρ)/(ρα²)))/I with ρ tuned at 1/V.
        let arm = moments(&[0.0, 2.0, 4.0]);
        let i = mean_interval(&arm, 0.1, 3).unwrap();
        let var: f64 = 4.0 / 3.0;
        let cs = ConfidenceSequence::tuned_for(0.1, 1.0 / var).unwrap();
        assert!((i.mean - 2.0).abs() < 1e-12);
        assert!((i.mean - i.lower - cs.radius(var).unwrap()).abs() < 1e-12);
        assert!((i.upper - i.mean - cs.radius(var).unwrap()).abs() < 1e-12);
        // Wider than the fixed-n 90 % interval (the price of looking at every n).
        assert!(i.upper - i.mean > 1.645 * var.sqrt());
        assert!(mean_interval(&moments(&[1.0, 1.0]), 0.05, 10).is_err());
        assert!(mean_interval(&moments(&[1.0]), 0.05, 10).is_err());
    }

    #[test]
    fn degenerate_inputs_are_errors_not_nans() {
        assert!(
            mean_difference_interval(&moments(&[1.0]), &moments(&[1.0, 2.0]), 0.05, 10).is_err()
        );
        assert!(
            mean_difference_interval(&moments(&[1.0, 1.0]), &moments(&[2.0, 2.0]), 0.05, 10)
                .is_err()
        );
        assert!(
            mean_difference_interval(&moments(&[1.0, 2.0]), &moments(&[1.0, 2.0]), 0.05, 0)
                .is_err()
        );
    }
}
