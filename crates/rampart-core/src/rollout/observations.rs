//! Observations: what the gateway's controller task measures and hands to [`step`](super::step()).
//!
//! Everything is a counter the gateway can keep cheaply per cohort and per time bucket (one
//! bucket per second or per `check_interval`), summed over the rolling `guardrails.window` for
//! the kill switch and over the current stage (since [`RolloutState::stage_epoch_ms`]) for the
//! gates and the sample-ratio check. Latency enters as a [`LatencyTail`]: the control's p95 over
//! the window and how many requests of each cohort were slower than `p95_latency_max_ratio ×` that
//! p95, which [`LatencyTail::from_sketches`] computes from the per-cohort window [`DdSketch`]es.
//!
//! Custom guardrails (`guardrails.custom`) enter as [`MetricMoments`] (count, sum, sum of
//! squares) of their metric per cohort over the window, in [`WindowCounts::custom`].
//!
//! Invariants the gateway must keep: counts of one cohort satisfy `errors, refusals ≤ requests`
//! and `thumbs_up + thumbs_down ≤ feedback`; `unkeyed` requests are in neither cohort. Stage
//! counters restart when the stage epoch changes (a transition, a resume from a hold, a reset).
//!
//! [`RolloutState::stage_epoch_ms`]: super::RolloutState::stage_epoch_ms

use rampart_stats::sketch::DdSketch;
use serde::{Deserialize, Serialize};

/// Counters of one cohort over some span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CohortCounts {
    /// Requests answered (or failed) in the span.
    pub requests: u64,
    /// Requests that ended in an error (upstream failure, timeout, 5xx).
    pub errors: u64,
    /// Answers classified as refusals.
    pub refusals: u64,
    /// Feedback events received for requests of this cohort.
    pub feedback: u64,
    /// Of which thumbs up.
    pub thumbs_up: u64,
    /// Of which thumbs down.
    pub thumbs_down: u64,
    /// Distinct routing keys seen (the unit of randomisation), when the gateway tracks them
    /// (e.g. with a HyperLogLog); the SRM check prefers it to request counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_keys: Option<u64>,
}

impl CohortCounts {
    /// Adds another span's counters (distinct keys are not additive and are dropped).
    pub fn add(&mut self, other: &CohortCounts) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.refusals += other.refusals;
        self.feedback += other.feedback;
        self.thumbs_up += other.thumbs_up;
        self.thumbs_down += other.thumbs_down;
        self.distinct_keys = None;
    }

    /// Subtracts a span previously added (saturating), for a sliding window of buckets.
    pub fn sub(&mut self, other: &CohortCounts) {
        self.requests = self.requests.saturating_sub(other.requests);
        self.errors = self.errors.saturating_sub(other.errors);
        self.refusals = self.refusals.saturating_sub(other.refusals);
        self.feedback = self.feedback.saturating_sub(other.feedback);
        self.thumbs_up = self.thumbs_up.saturating_sub(other.thumbs_up);
        self.thumbs_down = self.thumbs_down.saturating_sub(other.thumbs_down);
        self.distinct_keys = None;
    }
}

/// The latency tail of a span: the control's p95 and, per cohort, the requests slower than
/// `threshold_ms = p95_latency_max_ratio × control_p95_ms`.
///
/// "Canary p95 > ratio × control p95" holds exactly when more than 5 % of canary requests are
/// slower than `ratio × control p95`, so the kill switch tests that share, a proportion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyTail {
    /// The control cohort's p95 over the span, in milliseconds.
    pub control_p95_ms: f64,
    /// `p95_latency_max_ratio × control_p95_ms`.
    pub threshold_ms: f64,
    /// Control requests slower than the threshold.
    pub control_slow: u64,
    /// Canary requests slower than the threshold.
    pub canary_slow: u64,
    /// Canary requests with a latency (the denominator of `canary_slow`).
    pub canary_total: u64,
    /// Control requests with a latency.
    pub control_total: u64,
}

impl LatencyTail {
    /// Computes the tail from the window's per-cohort sketches of request durations (any unit,
    /// reported as ms). `None` when either sketch is empty, the ratio is not > 0, or the
    /// sketches' accuracies differ. Counts are exact up to the sketch's relative accuracy α: a
    /// value within α of the threshold may be counted on either side.
    pub fn from_sketches(control: &DdSketch, canary: &DdSketch, ratio: f64) -> Option<LatencyTail> {
        if control.count() == 0 || canary.count() == 0 || !(ratio > 0.0 && ratio.is_finite()) {
            return None;
        }
        if control.relative_accuracy().to_bits() != canary.relative_accuracy().to_bits() {
            return None;
        }
        let p95 = control.quantile(0.95)?;
        let threshold = ratio * p95;
        Some(LatencyTail {
            control_p95_ms: p95,
            threshold_ms: threshold,
            control_slow: count_above(control, threshold),
            canary_slow: count_above(canary, threshold),
            canary_total: canary.count(),
            control_total: control.count(),
        })
    }
}

/// Values of a sketch in buckets strictly above the bucket holding `x`.
///
/// DDSketch bucket `i` holds `(γ^(i−1), γ^i]`, `γ = (1+α)/(1−α)` (Masson, Rim & Lee 2019), so
/// the bucket of `x` is `⌈ln x / ln γ⌉`.
pub fn count_above(sketch: &DdSketch, x: f64) -> u64 {
    if !(x > 0.0 && x.is_finite()) {
        return sketch.count().saturating_sub(sketch.zero_count());
    }
    let a = sketch.relative_accuracy();
    let gamma = (1.0 + a) / (1.0 - a);
    let key = (x.ln() / gamma.ln()).ceil() as i64;
    sketch
        .bins()
        .into_iter()
        .filter(|(i, _)| i64::from(*i) > key)
        .map(|(_, c)| c)
        .sum()
}

/// Count, sum and sum of squares of one metric's values over a span: enough for a mean and a
/// variance, and mergeable across buckets by adding the fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricMoments {
    pub n: u64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl MetricMoments {
    /// Adds one value (non-finite values are ignored).
    pub fn push(&mut self, x: f64) {
        if x.is_finite() {
            self.n += 1;
            self.sum += x;
            self.sum_sq += x * x;
        }
    }

    /// Adds another span's moments.
    pub fn merge(&mut self, other: &MetricMoments) {
        self.n += other.n;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }

    /// The sample mean, `None` without values.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The unbiased sample variance `(Σx² − (Σx)²/n)/(n − 1)`, clamped at 0 against rounding;
    /// `None` below two values.
    pub fn variance(&self) -> Option<f64> {
        (self.n > 1).then(|| {
            let n = self.n as f64;
            ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
        })
    }
}

/// One custom guardrail's metric over the window, per cohort.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomMoments {
    /// The guardrail's configured name.
    pub name: String,
    pub control: MetricMoments,
    pub canary: MetricMoments,
}

/// Control vs canary over the rolling window (the kill switch's input).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowCounts {
    pub control: CohortCounts,
    pub canary: CohortCounts,
    /// `None` when latencies are not tracked or a cohort has none in the window.
    pub latency: Option<LatencyTail>,
    /// Moments of each custom guardrail's metric (`guardrails.custom`), by guardrail name; a
    /// guardrail missing here has no data (and is not evaluable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<CustomMoments>,
}

/// Shadow pairs: the same request answered by the baseline (served) and the candidate
/// (mirrored). In [`LatencyTail`] and in the guardrails, "control" is the baseline answer and
/// "canary" the candidate's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PairedCounts {
    /// Completed pairs (both sides answered or failed).
    pub pairs: u64,
    pub baseline_errors: u64,
    pub candidate_errors: u64,
    pub baseline_refusals: u64,
    pub candidate_refusals: u64,
    /// Latency tail of the candidate's answers against the baseline's p95.
    pub latency: Option<LatencyTail>,
}

/// The comparison engine's verdict on a shadow stage (a hook: filled later by `compare`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowGateInput {
    /// Lower confidence bound of the share of pairs whose answers are equivalent.
    pub equivalence_ci_low: Option<f64>,
    /// Whether the candidate refuses significantly more often than the baseline on the pairs.
    pub refusal_increase_significant: Option<bool>,
    /// Lower confidence bound of the candidate's judge win rate.
    pub win_rate_ci_low: Option<f64>,
}

/// Everything one controller tick sees.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    /// Canary vs control over the rolling `guardrails.window`.
    pub window: WindowCounts,
    /// Start of the span the stage counters cover; must equal the state's
    /// [`stage_epoch_ms`](super::RolloutState::stage_epoch_ms), else the gates treat the stage
    /// counters as stale (they were collected for a previous stage) and wait.
    pub stage_since_ms: i64,
    /// Control since the stage started.
    pub stage_control: CohortCounts,
    /// Canary since the stage started.
    pub stage_canary: CohortCounts,
    /// Shadow pairs completed in the window (shadow stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired_window: Option<PairedCounts>,
    /// Shadow pairs completed since the stage started (shadow stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired_stage: Option<PairedCounts>,
    /// The comparison engine's shadow verdict, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_gate: Option<ShadowGateInput>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tail_from_sketches_counts_slow_requests() {
        let mut c = DdSketch::default();
        let mut t = DdSketch::default();
        for i in 1..=1000 {
            c.add(i as f64).unwrap();
            t.add(i as f64 * 2.0).unwrap();
        }
        let tail = LatencyTail::from_sketches(&c, &t, 1.5).unwrap();
        assert!((tail.control_p95_ms - 950.0).abs() < 20.0);
        assert_eq!(tail.control_slow, 0);
        // canary values 2i > ~1425 ⇔ i > ~712: about 288 of 1000.
        assert!(
            (270..=300).contains(&tail.canary_slow),
            "{}",
            tail.canary_slow
        );
        assert!(LatencyTail::from_sketches(&DdSketch::default(), &t, 1.5).is_none());
    }

    #[test]
    fn moments_merge_and_give_mean_and_variance() {
        let (mut a, mut b) = (MetricMoments::default(), MetricMoments::default());
        for x in [1.0, 2.0, 3.0] {
            a.push(x);
        }
        b.push(4.0);
        b.push(f64::NAN);
        a.merge(&b);
        assert_eq!(a.n, 4);
        assert_eq!(a.mean(), Some(2.5));
        assert!((a.variance().unwrap() - 5.0 / 3.0).abs() < 1e-12);
        assert_eq!(b.variance(), None);
        assert_eq!(MetricMoments::default().mean(), None);
    }

    #[test]
    fn window_counts_without_custom_still_load() {
        let old = r#"{"control":{"requests":1,"errors":0,"refusals":0,"feedback":0,"thumbs_up":0,"thumbs_down":0},"canary":{"requests":1,"errors":0,"refusals":0,"feedback":0,"thumbs_up":0,"thumbs_down":0},"latency":null}"#;
        let w: WindowCounts = serde_json::from_str(old).unwrap();
        assert!(w.custom.is_empty());
    }
}
