//! Sample ratio mismatch (SRM): does the observed traffic per arm match the planned split?
//!
//! A χ² goodness-of-fit test of observed counts against expected counts `T·wᵢ/Σw`. A tiny
//! p-value means assignment is broken and no other metric of the experiment can be trusted.

use crate::special::chi2_sf;
use crate::{Result, StatsError};

/// Outcome of the SRM check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SrmResult {
    /// `Σ (Oᵢ − Eᵢ)² / Eᵢ`; `None` when there is no traffic (T = 0).
    pub statistic: Option<f64>,
    /// χ²(df) upper tail of the statistic; `None` when there is no traffic.
    pub p_value: Option<f64>,
    /// Degrees of freedom, `k − 1`.
    pub df: u64,
}

/// χ² goodness of fit of `observed` counts per arm against planned `weights` (any scale).
///
/// Formula: `Eᵢ = T·wᵢ/Σw`, `T = ΣOᵢ`, `χ² = Σ (Oᵢ − Eᵢ)²/Eᵢ`, `df = k − 1`,
/// `p = Q(df/2, χ²/2)` (regularized upper incomplete gamma).
/// Reference: `scipy.stats.chisquare(f_obs, f_exp, ddof=0)`; Pearson (1900).
/// Errors: fewer than 2 arms, length mismatch, or a weight that is not finite and > 0.
pub fn srm_chisquare(observed: &[u64], weights: &[f64]) -> Result<SrmResult> {
    if observed.len() < 2 {
        return Err(StatsError::InvalidInput("need at least two arms"));
    }
    if observed.len() != weights.len() {
        return Err(StatsError::InvalidInput(
            "observed and weights differ in length",
        ));
    }
    if weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
        return Err(StatsError::InvalidInput("weights must be finite and > 0"));
    }
    let df = observed.len() as u64 - 1;
    let total: f64 = observed.iter().map(|&o| o as f64).sum();
    if total == 0.0 {
        return Ok(SrmResult {
            statistic: None,
            p_value: None,
            df,
        });
    }
    let wsum: f64 = weights.iter().sum();
    let statistic: f64 = observed
        .iter()
        .zip(weights)
        .map(|(&o, &w)| {
            let e = total * w / wsum;
            let d = o as f64 - e;
            d * d / e
        })
        .sum();
    let p_value =
        chi2_sf(statistic, df as f64).ok_or(StatsError::NotComputable("chi-square tail"))?;
    Ok(SrmResult {
        statistic: Some(statistic),
        p_value: Some(p_value),
        df,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn balanced_is_one() {
        let r = srm_chisquare(&[5000, 5000], &[1.0, 1.0]).unwrap();
        assert_eq!(r.statistic, Some(0.0));
        assert_eq!(r.p_value, Some(1.0));
        assert_eq!(r.df, 1);
    }

    #[test]
    fn no_traffic() {
        let r = srm_chisquare(&[0, 0, 0], &[1.0, 2.0, 3.0]).unwrap();
        assert!(r.statistic.is_none() && r.p_value.is_none());
        assert_eq!(r.df, 2);
    }
}
