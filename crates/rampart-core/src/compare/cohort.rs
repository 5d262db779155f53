//! The canary-cohort view: the same questions asked of live traffic, canary vs control, from
//! [`RequestEvent`]s and [`Feedback`]. The cohorts are different users, so tests are unpaired:
//! pooled two-proportion z-tests for error, refusal, thumbs-down and rejection rates;
//! Mann–Whitney U for latency and completion length (on seeded reservoir samples); p-values
//! Holm-adjusted over those six. A metric is flagged when its adjusted p-value is below α and
//! the effect reaches the minimum (2 points for rates, 10 % of the control's median latency or
//! mean length).
//!
//! Feedback: thumbs up/down rates (over feedback with thumbs), `sent_unchanged` / `edited` /
//! `rejected` rates (over feedback with an outcome), and the edit similarity between the served
//! text (`RequestEvent.output_text`) and the user's `final_text`
//! (`rampart_stats::edit::similarity`, Levenshtein over Unicode scalars, on the first
//! [`EDIT_CHARS`] characters of each to bound the O(n·m) cost).

use rampart_stats::Alternative;
use rampart_stats::mann_whitney::mann_whitney_u;
use rampart_stats::multiple::holm;
use rampart_stats::proportion::{Counts, two_proportion_ztest};
use rampart_stats::rng::SplitMix64;
use rampart_stats::sketch::DdSketch;
use serde::{Deserialize, Serialize};

use crate::record::{EditOutcome, Feedback, Outcome, RequestEvent, Thumbs};
use crate::routing::Cohort;

/// Characters of each text compared for the edit distance.
pub const EDIT_CHARS: usize = 2_000;
const RESERVOIR: usize = 5_000;
const MIN_RATE_DELTA: f64 = 0.02;
const MIN_RELATIVE: f64 = 0.10;
const ALPHA: f64 = 0.05;

#[derive(Debug, Clone)]
struct Side {
    requests: u64,
    errors: u64,
    ok: u64,
    refusals: u64,
    cost: f64,
    latency: DdSketch,
    latencies: Vec<f64>,
    lengths: Vec<f64>,
    seen_ok: u64,
    rng: SplitMix64,
    thumbs_up: u64,
    thumbs_down: u64,
    sent_unchanged: u64,
    edited: u64,
    rejected: u64,
    edit_similarity_sum: f64,
    edit_n: u64,
}

impl Side {
    fn new(seed: u64) -> Self {
        Side {
            requests: 0,
            errors: 0,
            ok: 0,
            refusals: 0,
            cost: 0.0,
            latency: DdSketch::default(),
            latencies: Vec::new(),
            lengths: Vec::new(),
            seen_ok: 0,
            rng: SplitMix64::new(seed),
            thumbs_up: 0,
            thumbs_down: 0,
            sent_unchanged: 0,
            edited: 0,
            rejected: 0,
            edit_similarity_sum: 0.0,
            edit_n: 0,
        }
    }

    fn push(&mut self, e: &RequestEvent) {
        self.requests += 1;
        self.cost += e.cost_usd;
        let _ = self.latency.add(e.latency_ms);
        if e.outcome != Outcome::Ok {
            self.errors += 1;
            return;
        }
        self.ok += 1;
        self.refusals += u64::from(e.refusal);
        // One reservoir slot decision for both samples (Algorithm R).
        self.seen_ok += 1;
        let item = (e.latency_ms, e.completion_tokens as f64);
        if self.latencies.len() < RESERVOIR {
            self.latencies.push(item.0);
            self.lengths.push(item.1);
        } else {
            let j = self.rng.below(self.seen_ok) as usize;
            if let (Some(l), Some(n)) = (self.latencies.get_mut(j), self.lengths.get_mut(j)) {
                *l = item.0;
                *n = item.1;
            }
        }
    }

    fn feedback(&mut self, e: &RequestEvent, f: &Feedback) {
        match f.thumbs {
            Some(Thumbs::Up) => self.thumbs_up += 1,
            Some(Thumbs::Down) => self.thumbs_down += 1,
            None => {}
        }
        match f.outcome {
            Some(EditOutcome::SentUnchanged) => self.sent_unchanged += 1,
            Some(EditOutcome::Edited) => self.edited += 1,
            Some(EditOutcome::Rejected) => self.rejected += 1,
            None => {}
        }
        if let (Some(served), Some(fin)) = (e.output_text.as_deref(), f.final_text.as_deref()) {
            let a: String = served.chars().take(EDIT_CHARS).collect();
            let b: String = fin.chars().take(EDIT_CHARS).collect();
            self.edit_similarity_sum += rampart_stats::edit::similarity(&a, &b);
            self.edit_n += 1;
        }
    }

    fn stats(&self) -> CohortStats {
        let r = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let thumbs = self.thumbs_up + self.thumbs_down;
        let outcomes = self.sent_unchanged + self.edited + self.rejected;
        CohortStats {
            requests: self.requests,
            error_rate: r(self.errors, self.requests),
            refusal_rate: r(self.refusals, self.ok),
            latency_p50_ms: self.latency.quantile(0.5),
            latency_p95_ms: self.latency.quantile(0.95),
            mean_completion_tokens: (!self.lengths.is_empty())
                .then(|| self.lengths.iter().sum::<f64>() / self.lengths.len() as f64),
            cost_total_usd: self.cost,
            cost_per_success_usd: (self.ok > 0).then(|| self.cost / self.ok as f64),
            feedback_thumbs: thumbs,
            thumbs_up_rate: r(self.thumbs_up, thumbs),
            thumbs_down_rate: r(self.thumbs_down, thumbs),
            feedback_outcomes: outcomes,
            sent_unchanged_rate: r(self.sent_unchanged, outcomes),
            edited_rate: r(self.edited, outcomes),
            rejected_rate: r(self.rejected, outcomes),
            mean_edit_similarity: (self.edit_n > 0)
                .then(|| self.edit_similarity_sum / self.edit_n as f64),
        }
    }
}

/// One cohort's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortStats {
    pub requests: u64,
    pub error_rate: Option<f64>,
    /// Over answered (non-error) requests.
    pub refusal_rate: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub mean_completion_tokens: Option<f64>,
    pub cost_total_usd: f64,
    pub cost_per_success_usd: Option<f64>,
    pub feedback_thumbs: u64,
    pub thumbs_up_rate: Option<f64>,
    pub thumbs_down_rate: Option<f64>,
    pub feedback_outcomes: u64,
    pub sent_unchanged_rate: Option<f64>,
    pub edited_rate: Option<f64>,
    pub rejected_rate: Option<f64>,
    /// Mean `1 − levenshtein/max_len` between the served and the final text.
    pub mean_edit_similarity: Option<f64>,
}

/// One canary-vs-control test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortTest {
    /// `errors`, `refusal`, `thumbs_down`, `rejected`, `latency`, `length`.
    pub metric: String,
    /// `two_proportion_z` or `mann_whitney_u`.
    pub test: String,
    pub control: Option<f64>,
    pub canary: Option<f64>,
    pub p_value: Option<f64>,
    pub p_adjusted: Option<f64>,
    pub flagged: bool,
}

/// The canary-cohort view. JSON keys: `control`, `canary`, `tests`, `flags`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortReport {
    pub control: CohortStats,
    pub canary: CohortStats,
    pub tests: Vec<CohortTest>,
    pub flags: Vec<String>,
}

/// Streams events and feedback of one rollout window into a [`CohortReport`].
#[derive(Debug, Clone)]
pub struct CohortAccumulator {
    control: Side,
    canary: Side,
}

impl CohortAccumulator {
    pub fn new(seed: u64) -> Self {
        CohortAccumulator {
            control: Side::new(seed),
            canary: Side::new(seed ^ 0xa5a5_a5a5),
        }
    }

    fn side(&mut self, cohort: Cohort) -> Option<&mut Side> {
        match cohort {
            Cohort::Control => Some(&mut self.control),
            Cohort::Canary => Some(&mut self.canary),
            Cohort::Unkeyed => None,
        }
    }

    /// Adds one request event (unkeyed requests are left out).
    pub fn push_event(&mut self, e: &RequestEvent) {
        if let Some(s) = self.side(e.cohort) {
            s.push(e);
        }
    }

    /// Adds one feedback, joined by the caller with the event it is about.
    pub fn push_feedback(&mut self, event: &RequestEvent, feedback: &Feedback) {
        if let Some(s) = self.side(event.cohort) {
            s.feedback(event, feedback);
        }
    }

    pub fn finish(&self) -> CohortReport {
        let (c, k) = (&self.control, &self.canary);
        let z = |xt: u64, nt: u64, xc: u64, nc: u64| {
            two_proportion_ztest(
                Counts::new(xt, nt),
                Counts::new(xc, nc),
                Alternative::TwoSided,
            )
            .ok()
            .map(|t| t.p_value)
        };
        let rate = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let mw = |x: &[f64], y: &[f64]| mann_whitney_u(x, y).ok().map(|t| t.p_value);
        let ct = c.thumbs_up + c.thumbs_down;
        let kt = k.thumbs_up + k.thumbs_down;
        let co = c.sent_unchanged + c.edited + c.rejected;
        let ko = k.sent_unchanged + k.edited + k.rejected;
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let mut tests = vec![
            (
                "errors",
                "two_proportion_z",
                rate(c.errors, c.requests),
                rate(k.errors, k.requests),
                z(k.errors, k.requests, c.errors, c.requests),
            ),
            (
                "refusal",
                "two_proportion_z",
                rate(c.refusals, c.ok),
                rate(k.refusals, k.ok),
                z(k.refusals, k.ok, c.refusals, c.ok),
            ),
            (
                "thumbs_down",
                "two_proportion_z",
                rate(c.thumbs_down, ct),
                rate(k.thumbs_down, kt),
                z(k.thumbs_down, kt, c.thumbs_down, ct),
            ),
            (
                "rejected",
                "two_proportion_z",
                rate(c.rejected, co),
                rate(k.rejected, ko),
                z(k.rejected, ko, c.rejected, co),
            ),
            (
                "latency",
                "mann_whitney_u",
                c.latency.quantile(0.5),
                k.latency.quantile(0.5),
                mw(&k.latencies, &c.latencies),
            ),
            (
                "length",
                "mann_whitney_u",
                mean(&c.lengths),
                mean(&k.lengths),
                mw(&k.lengths, &c.lengths),
            ),
        ]
        .into_iter()
        .map(|(metric, test, control, canary, p_value)| CohortTest {
            metric: metric.to_string(),
            test: test.to_string(),
            control,
            canary,
            p_value,
            p_adjusted: None,
            flagged: false,
        })
        .collect::<Vec<_>>();
        let raw: Vec<f64> = tests.iter().map(|t| t.p_value.unwrap_or(1.0)).collect();
        let adjusted = holm(&raw).unwrap_or_else(|_| raw.clone());
        let mut flags = Vec::new();
        for (t, p) in tests.iter_mut().zip(adjusted) {
            t.p_adjusted = t.p_value.map(|_| p);
            let big = match (t.control, t.canary) {
                (Some(a), Some(b)) if t.test == "two_proportion_z" => {
                    (b - a).abs() >= MIN_RATE_DELTA
                }
                (Some(a), Some(b)) => a > 0.0 && ((b - a) / a).abs() >= MIN_RELATIVE,
                _ => false,
            };
            t.flagged = t.p_value.is_some() && p < ALPHA && big;
            if t.flagged {
                flags.push(t.metric.clone());
            }
        }
        CohortReport {
            control: c.stats(),
            canary: k.stats(),
            tests,
            flags,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn event(id: usize, cohort: Cohort, refusal: bool, latency: f64) -> RequestEvent {
        RequestEvent {
            request_id: format!("r{id}"),
            ts_ms: id as i64,
            route: "support".into(),
            rollout: Some("r".into()),
            stage: Some("canary-5".into()),
            variant: "v".into(),
            cohort,
            key_hash: None,
            tenant: None,
            class: None,
            status: 200,
            outcome: Outcome::Ok,
            latency_ms: latency,
            ttft_ms: None,
            prompt_tokens: 10,
            completion_tokens: 40 + (id % 7) as u64,
            cost_usd: 0.001,
            refusal,
            streamed: false,
            finish_reason: Some("stop".into()),
            output_text: Some("Your card is on its way.".into()),
        }
    }

    #[test]
    fn flags_a_refusal_and_latency_rise_only() {
        let mut acc = CohortAccumulator::new(1);
        for i in 0..4_000 {
            let lat = 300.0 + (i % 100) as f64;
            acc.push_event(&event(i, Cohort::Control, i % 50 == 0, lat));
            acc.push_event(&event(i, Cohort::Canary, i % 10 == 0, lat * 1.5));
            acc.push_event(&event(i, Cohort::Unkeyed, true, 1.0));
        }
        let r = acc.finish();
        assert_eq!(r.flags, vec!["refusal".to_string(), "latency".to_string()]);
        assert_eq!(r.control.requests, 4_000);
    }

    #[test]
    fn same_cohorts_flag_nothing_and_feedback_is_measured() {
        let mut acc = CohortAccumulator::new(1);
        for i in 0..2_000 {
            for cohort in [Cohort::Control, Cohort::Canary] {
                let e = event(i, cohort, i % 20 == 0, 300.0 + (i % 100) as f64);
                acc.push_event(&e);
                let fb = Feedback {
                    request_id: e.request_id.clone(),
                    ts_ms: 0,
                    thumbs: Some(if i % 4 == 0 { Thumbs::Down } else { Thumbs::Up }),
                    outcome: Some(if i % 2 == 0 {
                        EditOutcome::Edited
                    } else {
                        EditOutcome::SentUnchanged
                    }),
                    final_text: (i % 2 == 0).then(|| "Your card is on its way!".to_string()),
                };
                acc.push_feedback(&e, &fb);
            }
        }
        let r = acc.finish();
        assert!(r.flags.is_empty(), "{:?}", r.flags);
        assert_eq!(r.canary.thumbs_down_rate, Some(0.25));
        assert_eq!(r.canary.edited_rate, Some(0.5));
        let sim = r.canary.mean_edit_similarity.unwrap();
        assert!((sim - (1.0 - 1.0 / 24.0)).abs() < 1e-12, "{sim}");
    }
}
