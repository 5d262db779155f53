//! Multiple-comparison corrections: adjusted p-values for a family of tests (e.g. several
//! guardrail metrics checked at once).
//!
//! Both functions return adjusted p-values in the input order, each in `[0, 1]`.

use crate::{Result, StatsError};

fn validate(p: &[f64]) -> Result<()> {
    if p.iter().any(|x| !(0.0..=1.0).contains(x)) {
        return Err(StatsError::InvalidInput("p-values must be in [0, 1]"));
    }
    Ok(())
}

fn order(p: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    idx
}

/// Holm's step-down adjusted p-values (controls the family-wise error rate).
///
/// Formula (Holm 1979): sort ascending `p_(1) ≤ … ≤ p_(m)`;
/// `p̃_(i) = min(1, max_{j ≤ i} (m − j + 1)·p_(j))`.
/// Reference: `statsmodels.stats.multitest.multipletests(method='holm')`.
pub fn holm(p: &[f64]) -> Result<Vec<f64>> {
    validate(p)?;
    let m = p.len();
    let idx = order(p);
    let mut out = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in idx.iter().enumerate() {
        let adj = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(adj);
        out[i] = running;
    }
    Ok(out)
}

/// Benjamini–Hochberg step-up adjusted p-values (controls the false discovery rate under
/// independence or positive dependence).
///
/// Formula (Benjamini & Hochberg 1995): `p̃_(i) = min(1, min_{j ≥ i} m·p_(j)/j)`.
/// Reference: `statsmodels.stats.multitest.multipletests(method='fdr_bh')`.
pub fn benjamini_hochberg(p: &[f64]) -> Result<Vec<f64>> {
    validate(p)?;
    let m = p.len();
    let idx = order(p);
    let mut out = vec![0.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in idx.iter().enumerate().rev() {
        let adj = (m as f64 * p[i] / (rank + 1) as f64).min(1.0);
        running = running.min(adj);
        out[i] = running;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // statsmodels: multipletests([0.01, 0.04, 0.03, 0.005], method='holm')
        let h = holm(&[0.01, 0.04, 0.03, 0.005]).unwrap();
        let want = [0.03, 0.06, 0.06, 0.02];
        for (a, b) in h.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{h:?}");
        }
        // method='fdr_bh'
        let bh = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005]).unwrap();
        let want = [0.02, 0.04, 0.04, 0.02];
        for (a, b) in bh.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{bh:?}");
        }
        assert!(holm(&[1.5]).is_err());
        assert!(holm(&[]).unwrap().is_empty());
    }
}
