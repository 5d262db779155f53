//! Mann–Whitney U test (Wilcoxon rank-sum) for two independent samples, e.g. latencies of
//! the baseline and the candidate.
//!
//! Asymptotic normal approximation with tie correction and continuity correction.

use crate::normal::sf;
use crate::{Result, StatsError, TestResult};

/// Two-sided Mann–Whitney U test; the returned `statistic` is U of `x`.
///
/// Formula (Mann & Whitney 1947; tie correction per Lehmann, *Nonparametrics* (1975)):
/// `U = R_x − n_x(n_x+1)/2` with mid-ranks `R_x` of `x` in the pooled sample;
/// `U* = max(U, n_x n_y − U)`, `N = n_x + n_y`,
/// `σ = √(n_x n_y/12 · ((N + 1) − Σ(t³ − t)/(N(N − 1))))` over tie groups of size t,
/// `z = (U* − n_x n_y/2 − ½)/σ`, `p = min(1, 2·Q(z))`; `p = 1` when σ = 0 (all values tied).
/// Reference: `scipy.stats.mannwhitneyu(use_continuity=True, alternative='two-sided',
/// method='asymptotic')`.
/// Errors: an empty sample or a NaN value.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Result<TestResult> {
    if x.is_empty() || y.is_empty() {
        return Err(StatsError::InvalidInput("both samples must be non-empty"));
    }
    if x.iter().chain(y).any(|v| v.is_nan()) {
        return Err(StatsError::InvalidInput("samples contain NaN"));
    }
    let (nx, ny) = (x.len(), y.len());
    let mut pooled: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = pooled.len();
    let mut rank_sum_x = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && pooled[j].0 == pooled[i].0 {
            j += 1;
        }
        // ranks i+1 ..= j share the mid-rank (i + 1 + j) / 2
        let mid = (i + 1 + j) as f64 / 2.0;
        let in_x = pooled[i..j].iter().filter(|p| p.1).count();
        rank_sum_x += mid * in_x as f64;
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let (nxf, nyf, nf) = (nx as f64, ny as f64, n as f64);
    let u = rank_sum_x - nxf * (nxf + 1.0) / 2.0;
    let u_star = u.max(nxf * nyf - u);
    let var = nxf * nyf / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)));
    let p_value = if var > 0.0 {
        let z = (u_star - nxf * nyf / 2.0 - 0.5) / var.sqrt();
        (2.0 * sf(z)).min(1.0)
    } else {
        1.0
    };
    Ok(TestResult {
        statistic: u,
        p_value: p_value.clamp(0.0, 1.0),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn separated() {
        let r = mann_whitney_u(
            &[100.0, 110.0, 120.0, 130.0],
            &[200.0, 210.0, 220.0, 230.0, 240.0],
        )
        .unwrap();
        assert_eq!(r.statistic, 0.0);
        assert!((r.p_value - 0.019_964_453_305_216_043).abs() < 1e-12);
        let r = mann_whitney_u(&[1.0, 1.0], &[1.0]).unwrap();
        assert_eq!(r.p_value, 1.0);
    }
}
