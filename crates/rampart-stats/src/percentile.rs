//! Exact percentiles of a sample: linear interpolation (Hyndman–Fan type 7, numpy's default,
//! Excel's PERCENTILE.INC) and nearest rank.
//!
//! Inputs are unsorted; NaN samples are rejected rather than silently ordered.

use crate::{Result, StatsError};

fn sorted(sample: &[f64], q: f64) -> Result<Vec<f64>> {
    if sample.is_empty() {
        return Err(StatsError::InvalidInput("empty sample"));
    }
    if !(0.0..=100.0).contains(&q) {
        return Err(StatsError::InvalidInput("q must be in [0, 100]"));
    }
    if sample.iter().any(|x| x.is_nan()) {
        return Err(StatsError::InvalidInput("sample contains NaN"));
    }
    let mut v = sample.to_vec();
    v.sort_by(f64::total_cmp);
    Ok(v)
}

/// Linear-interpolation percentile of an already sorted, non-empty slice (type 7).
pub fn linear_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 || !(0.0..=100.0).contains(&q) {
        return None;
    }
    let h = (n - 1) as f64 * q / 100.0;
    let j = h.floor();
    let frac = h - j;
    let j = j as usize;
    let lo = sorted[j.min(n - 1)];
    let hi = sorted[(j + 1).min(n - 1)];
    Some(lo + frac * (hi - lo))
}

/// Percentile `q` (in percent) by linear interpolation between order statistics.
///
/// Formula (Hyndman & Fan 1996, type 7): `h = (N − 1)·q/100`, `j = ⌊h⌋`,
/// value `x_j + (h − j)(x_{j+1} − x_j)` with `x_N := x_{N−1}`.
/// Reference: `numpy.percentile(method='linear')`.
pub fn percentile_linear(sample: &[f64], q: f64) -> Result<f64> {
    let v = sorted(sample, q)?;
    linear_sorted(&v, q).ok_or(StatsError::InvalidInput("empty sample"))
}

/// Percentile `q` (in percent) by nearest rank: `rank = max(1, ⌈q·N/100⌉)`, value
/// `x_{rank−1}`; always an element of the sample. `q·N` is multiplied before dividing so that
/// integral ranks stay exact. The nearest-rank definition of Hyndman & Fan (1996) type 1
/// (the inverse of the empirical CDF); equals `numpy.percentile(method='inverted_cdf')`.
pub fn percentile_nearest_rank(sample: &[f64], q: f64) -> Result<f64> {
    let v = sorted(sample, q)?;
    let n = v.len();
    let rank = ((q * n as f64) / 100.0).ceil().max(1.0) as usize;
    Ok(v[rank.min(n) - 1])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile_nearest_rank(&s, 57.0).unwrap(), 57.0);
        assert!((percentile_linear(&s, 99.0).unwrap() - 99.01).abs() < 1e-12);
        assert_eq!(percentile_linear(&[10.0, 20.0], 50.0).unwrap(), 15.0);
        assert_eq!(percentile_nearest_rank(&[10.0, 20.0], 50.0).unwrap(), 10.0);
        assert!(percentile_linear(&[], 50.0).is_err());
    }
}
