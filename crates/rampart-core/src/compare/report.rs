//! The comparison report model: what `rampart report --format json` prints and the admin API's
//! `/admin/rollouts/{name}/report` returns. Field names are part of the external contract
//! (DESIGN.md): add fields freely, rename none.
//!
//! Conventions: rates are fractions in [0, 1]; `ci_low`/`ci_high` bound a two-sided interval at
//! `settings.confidence_level`; `p_value` is the raw two-sided p-value of the named test and
//! `p_adjusted` the same p-value adjusted (Holm or Benjamini–Hochberg, `settings.adjustment`)
//! within its family (the overall metrics; all class × metric tests; all tenant × metric tests).
//! A metric is **flagged** when `p_adjusted < settings.alpha` **and** its effect reaches the
//! minimum effect size in `settings` — both, so a huge sample does not flag a trivial shift and
//! a large but noisy shift in a small class does not flag either. A class or tenant with fewer
//! than `settings.min_class_pairs` pairs is not tested at all (`too_few_pairs: true`, every
//! `p_adjusted` `null`, no flags) and is left out of its family's adjustment. A value that cannot
//! be computed (too few pairs) is `null`, never NaN.

use serde::{Deserialize, Serialize};

/// The whole report. Top-level JSON keys: `pairs`, `comparable_pairs`, `flags`, the metric
/// objects of [`Metrics`] (flattened: `equivalence`, `length_ratio`, `refusal`, `errors`,
/// `openings`, `formats`, `latency`, `cost`), `classes`, `tenants`, `most_different`, `judge`,
/// `settings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonReport {
    /// Pairs pushed.
    pub pairs: u64,
    /// Pairs where both sides answered (no error).
    pub comparable_pairs: u64,
    /// Names of the flagged overall metrics: `refusal`, `errors`, `length`, `openings`,
    /// `format:<feature>` (see [`FormatDrift::feature`]).
    pub flags: Vec<String>,
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Per prompt class (pairs with no class are left out), sorted by name.
    pub classes: Vec<GroupReport>,
    /// Per tenant (pairs with no tenant are left out), sorted by name.
    pub tenants: Vec<GroupReport>,
    /// The lowest-similarity comparable pairs, most different first.
    pub most_different: Vec<DifferentPair>,
    /// The judge's win rate over the judged pairs; `None` when no pair was judged.
    pub judge: Option<JudgeReport>,
    pub settings: Settings,
}

/// The metrics computed for the whole population and for each group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub equivalence: EquivalenceStats,
    pub length_ratio: LengthStats,
    pub refusal: PairedRate,
    pub errors: PairedRate,
    pub openings: Openings,
    pub formats: Vec<FormatDrift>,
    pub latency: Latency,
    pub cost: Cost,
}

/// Share of comparable pairs that are `identical` or `equivalent`, with a Wilson interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EquivalenceStats {
    pub rate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub identical: u64,
    pub equivalent: u64,
    pub materially_different: u64,
    /// Mean lexical similarity (token F1, see `compare::features`) over comparable pairs.
    pub mean_similarity: Option<f64>,
}

/// Candidate/baseline length.
///
/// `estimate` is the **geometric mean of the per-pair ratios** `(c + 1)/(b + 1)` of whitespace
/// token counts (add-one so empty answers count), i.e. `exp(mean(ln ratio))`: symmetric (a
/// halving and a doubling cancel) and not inflated by Jensen's inequality as the arithmetic
/// mean of ratios is. `test` names how the interval and `p_value` were obtained, on the
/// reservoir sample:
/// - `ks_2samp` (overall): `exp` of a seeded paired-bootstrap percentile interval of the mean log
///   ratio; `p_value` from the two-sample KS test of the two token-length distributions (exact
///   up to 1,000 pairs, the asymptotic distribution above).
/// - `paired_t` (classes, tenants): `exp` of the Student t interval of the mean log ratio,
///   `x̄ ∓ t_{n−1}·s/√n`, and `p_value` from the paired t-test of "mean log ratio = 0": valid at
///   small n, where a normal interval from two or three pairs can be arbitrarily narrow
///   (`ks_statistic` is still given, as a description). When every pair has the same ratio
///   the interval is that ratio and `p_value` is `null`.
///
/// Flag `length`: `p_adjusted < alpha`, the interval excludes 1 and `|estimate − 1| ≥
/// min_length_ratio_delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthStats {
    pub estimate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub baseline_mean_tokens: Option<f64>,
    pub candidate_mean_tokens: Option<f64>,
    pub baseline_mean_chars: Option<f64>,
    pub candidate_mean_chars: Option<f64>,
    /// Pairs in the reservoir sample the interval and the test use.
    pub sample: u64,
    /// `ks_2samp` (overall) or `paired_t` (classes and tenants); see above.
    #[serde(default)]
    pub test: String,
    pub ks_statistic: Option<f64>,
    pub p_value: Option<f64>,
    pub p_adjusted: Option<f64>,
    pub flagged: bool,
    /// Token-length histograms of both sides (overall only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub histogram: Option<Histogram>,
}

/// Shared-edge histograms of the two sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `bins + 1` edges.
    pub edges: Vec<f64>,
    pub baseline: Vec<u64>,
    pub candidate: Vec<u64>,
}

/// A yes/no property measured on both sides of the same pairs (refusal, error), tested with
/// McNemar's exact test on the discordant pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedRate {
    /// Pairs measured.
    pub n: u64,
    pub baseline_rate: Option<f64>,
    pub candidate_rate: Option<f64>,
    /// `candidate_rate − baseline_rate`.
    pub delta: Option<f64>,
    /// Pairs where only the baseline / only the candidate has the property.
    pub baseline_only: u64,
    pub candidate_only: u64,
    pub p_value: f64,
    pub p_adjusted: Option<f64>,
    pub flagged: bool,
}

/// One opening phrase and its share of a side's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpeningShare {
    pub phrase: String,
    pub count: u64,
    pub share: f64,
}

/// Opening phrases. `drift` is the total variation distance `½·Σ|p_b(o) − p_c(o)|` between the
/// two sides' opening distributions (0 = same, 1 = disjoint). The test: for each phrase among
/// the top-k of either side, McNemar's exact test on "this pair's answer opens with o"
/// (baseline vs candidate, paired); `p_value` is the smallest Bonferroni-adjusted of these
/// (`min(1, k'·p)`), `phrase` the phrase that gave it and `share_delta` its candidate − baseline
/// share. `drift_flagged`: `p_adjusted < alpha` and `|share_delta| ≥ min_opening_share_delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Openings {
    pub baseline_top: Vec<OpeningShare>,
    pub candidate_top: Vec<OpeningShare>,
    pub drift: Option<f64>,
    pub phrase: Option<String>,
    pub share_delta: Option<f64>,
    pub p_value: f64,
    pub p_adjusted: Option<f64>,
    pub drift_flagged: bool,
}

/// How often one format feature appears on each side and how often it changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormatDrift {
    /// `table`, `bullets`, `numbered`, `code`, `citation_numeric`, `citation_author_year`,
    /// `citation_url`, `json` (valid JSON when asked for), `tools` (valid tool calls),
    /// `truncated`. The flag name is `format:<feature>`.
    pub feature: String,
    pub n: u64,
    pub baseline_rate: Option<f64>,
    pub candidate_rate: Option<f64>,
    /// Share of pairs where the feature differs between the sides.
    pub changed_rate: Option<f64>,
    /// `more` (candidate has it more often), `less`, or `same`.
    pub direction: String,
    pub baseline_only: u64,
    pub candidate_only: u64,
    pub p_value: f64,
    pub p_adjusted: Option<f64>,
    pub flagged: bool,
}

/// Latency quantiles from DDSketches (1 % relative error); cached candidate answers excluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub baseline_n: u64,
    pub candidate_n: u64,
    pub baseline_p50_ms: Option<f64>,
    pub baseline_p95_ms: Option<f64>,
    pub candidate_p50_ms: Option<f64>,
    pub candidate_p95_ms: Option<f64>,
    pub p50_delta_ms: Option<f64>,
    pub p95_delta_ms: Option<f64>,
}

/// Cost per side. `*_per_success_usd` = total cost / answers without error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub baseline_total_usd: f64,
    pub candidate_total_usd: f64,
    pub baseline_mean_usd: Option<f64>,
    pub candidate_mean_usd: Option<f64>,
    pub mean_delta_usd: Option<f64>,
    pub baseline_per_success_usd: Option<f64>,
    pub candidate_per_success_usd: Option<f64>,
}

/// One class or tenant. Exactly one of `class` / `tenant` is present in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tenant: Option<String>,
    pub pairs: u64,
    /// Fewer than `settings.min_class_pairs` pairs: the group's metrics are shown but not
    /// tested, and it is never flagged ("too few pairs").
    #[serde(default)]
    pub too_few_pairs: bool,
    /// Flagged metrics of this group (same names as the top-level `flags`).
    pub flags: Vec<String>,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// A pair from the "most different" list; texts are raw (renderers escape them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DifferentPair {
    pub request_id: String,
    pub class: Option<String>,
    pub similarity: f64,
    pub baseline: String,
    pub candidate: String,
}

/// LLM-as-judge results (see [`super::judge`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeReport {
    pub judged_pairs: u64,
    /// Swap-corrected: candidate wins + ½ ties, inconsistent verdicts counted as ties.
    pub win_rate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// From the first ordering only (baseline shown as A), for comparison.
    pub uncorrected_win_rate: Option<f64>,
    pub uncorrected_ci_low: Option<f64>,
    pub uncorrected_ci_high: Option<f64>,
    pub candidate_wins: u64,
    pub baseline_wins: u64,
    pub ties: u64,
    /// Pairs whose two orderings disagreed (counted as ties).
    pub inconsistent: u64,
    /// Verdicts that could not be parsed (the pair is left out).
    pub unparsed: u64,
    /// Pairs whose judge call failed (left out).
    pub errors: u64,
}

/// The settings the report was computed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub alpha: f64,
    pub confidence_level: f64,
    /// `holm` or `benjamini_hochberg`.
    pub adjustment: String,
    pub min_refusal_delta: f64,
    pub min_error_delta: f64,
    pub min_length_ratio_delta: f64,
    pub min_opening_share_delta: f64,
    pub min_format_delta: f64,
    /// Pairs a class or tenant needs before it is tested (`rollouts.R.gates.min_class_pairs`).
    #[serde(default)]
    pub min_class_pairs: u64,
    pub seed: u64,
}

/// The shadow stage's gate input (the controller advances only if `equivalence_ci_low ≥
/// min_equivalence`, no significant refusal increase, and `win_rate_ci_low ≥ min_win_rate`
/// when a judge is configured).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShadowGateInput {
    pub equivalence_ci_low: Option<f64>,
    /// The overall refusal rate rose with a flag, or any class's did.
    pub refusal_increase_significant: bool,
    pub win_rate_ci_low: Option<f64>,
}

/// Default `min_equivalence` of the shadow gate.
pub const DEFAULT_MIN_EQUIVALENCE: f64 = 0.70;

impl ShadowGateInput {
    /// The gate: `equivalence_ci_low ≥ min_equivalence`, no significant refusal increase, and,
    /// when `min_win_rate` is `Some` (a judge is configured), `win_rate_ci_low ≥ min_win_rate`.
    /// A missing value fails the gate (not enough evidence to advance).
    pub fn passes(&self, min_equivalence: f64, min_win_rate: Option<f64>) -> bool {
        let eq = self
            .equivalence_ci_low
            .is_some_and(|l| l >= min_equivalence);
        let judge = match min_win_rate {
            None => true,
            Some(min) => self.win_rate_ci_low.is_some_and(|l| l >= min),
        };
        eq && !self.refusal_increase_significant && judge
    }
}

/// The shadow gate's input from a report.
pub fn shadow_gate_input(report: &ComparisonReport) -> ShadowGateInput {
    let rose = |r: &PairedRate| r.flagged && r.delta.is_some_and(|d| d > 0.0);
    ShadowGateInput {
        equivalence_ci_low: report.metrics.equivalence.ci_low,
        refusal_increase_significant: rose(&report.metrics.refusal)
            || report.classes.iter().any(|c| rose(&c.metrics.refusal)),
        win_rate_ci_low: report.judge.as_ref().and_then(|j| j.ci_low),
    }
}

/// Hands the comparison's gate input to the rollout controller's observation type.
impl From<ShadowGateInput> for crate::rollout::observations::ShadowGateInput {
    fn from(g: ShadowGateInput) -> Self {
        crate::rollout::observations::ShadowGateInput {
            equivalence_ci_low: g.equivalence_ci_low,
            refusal_increase_significant: Some(g.refusal_increase_significant),
            win_rate_ci_low: g.win_rate_ci_low,
        }
    }
}
