//! Paired bootstrap for judge scores: a percentile confidence interval of the mean
//! difference `candidate − baseline`, plus the normal-approximation interval.
//!
//! Determinism: resamples are generated in fixed blocks of [`BLOCK`] resamples; block `b`
//! draws from its own wyrand generator seeded with `splitmix64(seed, b)`. The vector of resample
//! means therefore depends only on the seed — never on the number of threads or on how rayon
//! schedules blocks — and the parallel and sequential entry points return bit-identical
//! intervals.
//!
//! Threads: [`paired_bootstrap`] runs on the caller's thread. The rayon fan-out,
//! [`paired_bootstrap_parallel`], is opt-in (the `parallel` feature): on the 2-core target the
//! gateway shares its cores with the request path, and the README's benchmark shows the
//! parallel path no faster there.

use crate::normal::isf;
use crate::percentile::linear_sorted;
use crate::{Interval, Result, StatsError};
#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// Resamples per independently seeded block.
pub const BLOCK: usize = 64;

/// Settings of [`paired_bootstrap`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapConfig {
    /// Number of bootstrap resamples (≥ 1; 10 000 – 20 000 is typical).
    pub n_resamples: usize,
    /// Two-sided confidence level in (0, 1), e.g. 0.95.
    pub confidence_level: f64,
    /// RNG seed; the same seed always gives the same interval.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            n_resamples: 20_000,
            confidence_level: 0.95,
            seed: 0,
        }
    }
}

/// Outcome of a paired bootstrap or normal interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedInterval {
    /// `mean(candidate − baseline)`.
    pub mean_diff: f64,
    /// The confidence interval of the mean difference.
    pub ci: Interval,
}

fn differences(baseline: &[f64], candidate: &[f64]) -> Result<Vec<f64>> {
    if baseline.len() != candidate.len() {
        return Err(StatsError::InvalidInput(
            "baseline and candidate differ in length",
        ));
    }
    if baseline.len() < 2 {
        return Err(StatsError::InvalidInput("need at least two pairs"));
    }
    let d: Vec<f64> = candidate.iter().zip(baseline).map(|(c, b)| c - b).collect();
    if d.iter().any(|x| !x.is_finite()) {
        return Err(StatsError::InvalidInput("scores must be finite"));
    }
    Ok(d)
}

fn mean(d: &[f64]) -> f64 {
    d.iter().sum::<f64>() / d.len() as f64
}

/// SplitMix64 finalizer (Steele, Lea & Flood 2014) used to derive per-block seeds.
fn splitmix64(seed: u64, block: u64) -> u64 {
    crate::rng::mix(seed.wrapping_add(block.wrapping_add(1).wrapping_mul(crate::rng::GOLDEN_GAMMA)))
}

/// The wyrand generator (Wang Yi, public domain; passes BigCrush and PractRand): one
/// 64×64→128-bit multiply per 64 random bits, the cheapest good generator for the ~10⁹
/// index draws of a large bootstrap.
struct WyRand(u64);

impl WyRand {
    #[inline(always)]
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    #[inline(always)]
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

/// Uniform index in `[0, n)` from a 32-bit draw by Lemire's multiply-shift with rejection
/// (Lemire 2019, *Fast Random Integer Generation in an Interval*): exact, and the rejection
/// branch (probability < n/2³²) is almost never taken.
#[inline(always)]
fn index32(r: u32, n: u32, threshold: u32, rng: &mut WyRand) -> usize {
    let mut m = u64::from(r) * u64::from(n);
    while (m as u32) < threshold {
        m = u64::from(rng.next_u32()) * u64::from(n);
    }
    (m >> 32) as usize
}

/// Fills `out` with the means of the resamples of block `block`.
fn fill_block(d: &[f64], seed: u64, block: usize, out: &mut [f64]) {
    let mut rng = WyRand(splitmix64(seed, block as u64));
    let inv_n = 1.0 / d.len() as f64;
    if let Ok(n) = u32::try_from(d.len()) {
        // Two indices per 64-bit draw.
        let threshold = n.wrapping_neg() % n;
        for slot in out.iter_mut() {
            let (mut a0, mut a1, mut a2, mut a3) = (0.0, 0.0, 0.0, 0.0);
            let mut k = 0;
            while k + 4 <= d.len() {
                let r = rng.next_u64();
                let s = rng.next_u64();
                a0 += d[index32(r as u32, n, threshold, &mut rng)];
                a1 += d[index32((r >> 32) as u32, n, threshold, &mut rng)];
                a2 += d[index32(s as u32, n, threshold, &mut rng)];
                a3 += d[index32((s >> 32) as u32, n, threshold, &mut rng)];
                k += 4;
            }
            while k < d.len() {
                a0 += d[index32(rng.next_u32(), n, threshold, &mut rng)];
                k += 1;
            }
            *slot = ((a0 + a1) + (a2 + a3)) * inv_n;
        }
    } else {
        // More than 2³² pairs: 64-bit multiply-shift (bias ≤ n/2⁶⁴).
        let n = d.len() as u128;
        for slot in out.iter_mut() {
            let mut acc = 0.0;
            for _ in 0..d.len() {
                acc += d[((u128::from(rng.next_u64()) * n) >> 64) as usize];
            }
            *slot = acc * inv_n;
        }
    }
}

fn check_config(cfg: &BootstrapConfig) -> Result<()> {
    if cfg.n_resamples == 0 {
        return Err(StatsError::InvalidInput("n_resamples must be at least 1"));
    }
    if !(cfg.confidence_level > 0.0 && cfg.confidence_level < 1.0) {
        return Err(StatsError::InvalidInput(
            "confidence_level must be in (0, 1)",
        ));
    }
    Ok(())
}

fn percentile_interval(mut means: Vec<f64>, mean_diff: f64, level: f64) -> Result<PairedInterval> {
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0 * 100.0;
    let low = linear_sorted(&means, tail).ok_or(StatsError::NotComputable("no resamples"))?;
    let high =
        linear_sorted(&means, 100.0 - tail).ok_or(StatsError::NotComputable("no resamples"))?;
    Ok(PairedInterval {
        mean_diff,
        ci: Interval { low, high },
    })
}

/// Paired percentile bootstrap of `mean(candidate − baseline)`, on the caller's thread.
///
/// Formula (Efron & Tibshirani, *An Introduction to the Bootstrap* (1993), §13.3): with
/// `dᵢ = candidateᵢ − baselineᵢ`, draw `n_resamples` resamples of n indices with replacement,
/// take each resample's mean, and report the `(1 − level)/2` and `(1 + level)/2` quantiles
/// of those means (linear interpolation between order statistics).
/// Reference: `scipy.stats.bootstrap(paired=True, method='percentile')`.
/// Deterministic for a given seed regardless of thread count (see the module docs).
/// Errors: length mismatch, fewer than two pairs, non-finite scores, bad config.
pub fn paired_bootstrap(
    baseline: &[f64],
    candidate: &[f64],
    cfg: &BootstrapConfig,
) -> Result<PairedInterval> {
    check_config(cfg)?;
    let d = differences(baseline, candidate)?;
    let mut means = vec![0.0; cfg.n_resamples];
    means
        .chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(b, out)| fill_block(&d, cfg.seed, b, out));
    percentile_interval(means, mean(&d), cfg.confidence_level)
}

/// [`paired_bootstrap`] fanned out over rayon's global pool (opt-in: the `parallel` feature);
/// returns exactly the same interval for the same seed.
#[cfg(feature = "parallel")]
pub fn paired_bootstrap_parallel(
    baseline: &[f64],
    candidate: &[f64],
    cfg: &BootstrapConfig,
) -> Result<PairedInterval> {
    check_config(cfg)?;
    let d = differences(baseline, candidate)?;
    let mut means = vec![0.0; cfg.n_resamples];
    means
        .par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(b, out)| fill_block(&d, cfg.seed, b, out));
    percentile_interval(means, mean(&d), cfg.confidence_level)
}

/// Normal-approximation interval of the paired mean difference.
///
/// Formula: `mean(d) ∓ z_{(1+level)/2} · s/√n`, `s` the sample standard deviation (n − 1
/// denominator) of `dᵢ = candidateᵢ − baselineᵢ` (the paired z-interval; e.g. Wasserman,
/// *All of Statistics* (2004), §6.3.2).
pub fn paired_normal_interval(
    baseline: &[f64],
    candidate: &[f64],
    confidence_level: f64,
) -> Result<PairedInterval> {
    if !(confidence_level > 0.0 && confidence_level < 1.0) {
        return Err(StatsError::InvalidInput(
            "confidence_level must be in (0, 1)",
        ));
    }
    let d = differences(baseline, candidate)?;
    let n = d.len() as f64;
    let m = mean(&d);
    let ss: f64 = d.iter().map(|x| (x - m) * (x - m)).sum();
    let s = (ss / (n - 1.0)).sqrt();
    let z = isf((1.0 - confidence_level) / 2.0).ok_or(StatsError::InvalidInput(
        "confidence_level must be in (0, 1)",
    ))?;
    let half = z * s / n.sqrt();
    Ok(PairedInterval {
        mean_diff: m,
        ci: Interval {
            low: m - half,
            high: m + half,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[cfg(feature = "parallel")]
    #[test]
    fn deterministic_and_thread_independent() {
        let base: Vec<f64> = (0..500).map(|i| f64::from(i % 7)).collect();
        let cand: Vec<f64> = (0..500).map(|i| f64::from((i * 3) % 8)).collect();
        let cfg = BootstrapConfig {
            n_resamples: 1000,
            confidence_level: 0.95,
            seed: 42,
        };
        let a = paired_bootstrap_parallel(&base, &cand, &cfg).unwrap();
        let b = paired_bootstrap(&base, &cand, &cfg).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let c = pool.install(|| paired_bootstrap_parallel(&base, &cand, &cfg).unwrap());
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!(a.ci.contains(a.mean_diff));
    }

    #[test]
    fn constant_difference_zero_width() {
        let r = paired_bootstrap(
            &[1.0, 2.0, 3.0],
            &[1.5, 2.5, 3.5],
            &BootstrapConfig::default(),
        )
        .unwrap();
        assert!((r.ci.low - 0.5).abs() < 1e-12 && (r.ci.high - 0.5).abs() < 1e-12);
    }
}
