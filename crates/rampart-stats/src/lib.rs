//! rampart-stats: the statistics every gate and guardrail stands on.
//!
//! Pure functions, no I/O, no async, no global state. Every function documents its formula
//! and its source, and the crate is checked against the reference vectors in
//! `../shared/stats-vectors/` (`tests/vectors.rs`).
//!
//! Map of the crate:
//! * [`special`] — ln Γ, incomplete beta / gamma, `erfc`, χ² tail, binomial tail.
//! * [`normal`] — Φ, Q = 1 − Φ, Φ⁻¹.
//! * [`proportion`] — Wilson interval, pooled two-proportion z-test, McNemar (exact, χ²),
//!   rates restricted to a linear null (score-test variances).
//! * [`srm`] — sample-ratio-mismatch χ² goodness of fit.
//! * [`ks`] — two-sample Kolmogorov–Smirnov (exact lattice paths, asymptotic, limit series).
//! * [`student_t`] — Student's t distribution (tails, quantiles by inversion), the one-sample
//!   / paired t-test and interval (small-sample means, e.g. per-class length ratios).
//! * [`mann_whitney`] — Mann–Whitney U (asymptotic, tie- and continuity-corrected).
//! * [`percentile`] — linear (type 7) and nearest-rank percentiles.
//! * [`bootstrap`] — seeded, parallel paired bootstrap; normal-approximation interval.
//! * [`power`] — sample size and minimum detectable effect for two proportions.
//! * [`sequential`] — mSPRT always-valid p-values and anytime-valid confidence sequences
//!   (the kill switch's guardrail checks).
//! * [`mean_interval`] — anytime-valid interval for a difference of two means (slow gates).
//! * [`multiple`] — Holm and Benjamini–Hochberg adjusted p-values.
//! * [`sketch`] — mergeable relative-error quantile sketch (DDSketch) for latencies.
//! * [`edit`] — Levenshtein distance over Unicode scalar values.
//! * [`rng`] — FNV-1a and SplitMix64: the workspace's one seeded generator.
//!
//! Invariant: a value that cannot be computed (0/0, empty input, out-of-domain parameter) is
//! reported as [`StatsError`], never as a NaN.
#![forbid(unsafe_code)]

pub mod bootstrap;
pub mod edit;
pub mod ks;
pub mod mann_whitney;
pub mod mean_interval;
pub mod multiple;
pub mod normal;
pub mod percentile;
pub mod power;
pub mod proportion;
pub mod rng;
pub mod sequential;
pub mod sketch;
pub mod special;
pub mod srm;
pub mod student_t;

use std::fmt;

/// Why a statistic could not be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsError {
    /// The inputs are valid but the quantity is undefined for them (e.g. 0/0: no discordant
    /// pairs, a pooled rate of 0 or 1, no traffic at all).
    NotComputable(&'static str),
    /// The inputs are outside the function's domain (empty sample, α ∉ (0, 1), …).
    InvalidInput(&'static str),
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsError::NotComputable(why) => write!(f, "not computable: {why}"),
            StatsError::InvalidInput(why) => write!(f, "invalid input: {why}"),
        }
    }
}

impl std::error::Error for StatsError {}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, StatsError>;

/// A two-sided or one-sided alternative hypothesis, oriented as "treatment vs control".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// H1: the parameters differ.
    TwoSided,
    /// H1: treatment > control.
    Larger,
    /// H1: treatment < control.
    Smaller,
}

/// A test statistic and its p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    /// The test statistic (z, χ², U, D, … as documented by the function).
    pub statistic: f64,
    /// The p-value, in `[0, 1]`.
    pub p_value: f64,
}

/// A closed interval `[low, high]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower endpoint.
    pub low: f64,
    /// Upper endpoint.
    pub high: f64,
}

impl Interval {
    /// Whether `x` lies in `[low, high]`.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// Checks `0 < alpha < 1`.
pub(crate) fn check_alpha(alpha: f64) -> Result<()> {
    if alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidInput("alpha must be in (0, 1)"))
    }
}
