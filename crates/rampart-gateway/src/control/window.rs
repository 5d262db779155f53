//! What the controller measures per rollout: one-second buckets of per-cohort counters,
//! latency sketches and custom guardrails' metric moments over the guardrail window, and
//! counters since the stage began. Fed by [`Signal`]s; read as [`Observations`].
//!
//! Several replicas: each replica seals its completed seconds and flushes them as aggregate
//! rows, and the leader's fleet window is the same structure fed by those rows instead of
//! signals ([`rows`]). A sealed second is never written again: a late signal lands in the
//! first second not sealed yet.

use std::collections::VecDeque;

use rampart_core::config::{RecordedMetric, RolloutConfig};
use rampart_core::record::Thumbs;
use rampart_core::rollout::{
    CohortCounts, CustomMoments, LatencyTail, MetricMoments, Observations, PairedCounts,
    WindowCounts,
};
use rampart_core::routing::Cohort;
use rampart_stats::sketch::DdSketch;

use crate::signal::Signal;

mod rows;

#[derive(Default)]
struct Side {
    counts: CohortCounts,
    latency: Option<DdSketch>,
    /// Moments of each custom guardrail's metric, in `guardrails.custom` order (empty when
    /// there are none).
    custom: Vec<MetricMoments>,
}

impl Side {
    fn observe_latency(&mut self, ms: f64) {
        let s = self.latency.get_or_insert_with(DdSketch::default);
        let _ = s.add(ms.max(0.001));
    }
}

#[derive(Default)]
struct Bucket {
    second: i64,
    control: Side,
    canary: Side,
    pairs: PairedCounts,
    baseline_latency: Option<DdSketch>,
    candidate_latency: Option<DdSketch>,
}

impl Bucket {
    fn side(&mut self, cohort: Cohort) -> &mut Side {
        if cohort == Cohort::Canary {
            &mut self.canary
        } else {
            &mut self.control
        }
    }
}

/// One rollout's measurements.
#[derive(Default)]
pub struct Window {
    buckets: VecDeque<Bucket>,
    pub stage_since_ms: i64,
    pub stage_control: CohortCounts,
    pub stage_canary: CohortCounts,
    pub stage_pairs: PairedCounts,
    /// Seconds up to this one are sealed (flushed as rows); `None` until the first seal.
    sealed_through: Option<i64>,
}

fn merge(into: &mut Option<DdSketch>, from: &Option<DdSketch>) {
    if let Some(f) = from {
        match into {
            Some(i) => {
                let _ = i.merge(f);
            }
            None => *into = Some(f.clone()),
        }
    }
}

fn add_pairs(into: &mut PairedCounts, from: &PairedCounts) {
    into.pairs += from.pairs;
    into.baseline_errors += from.baseline_errors;
    into.candidate_errors += from.candidate_errors;
    into.baseline_refusals += from.baseline_refusals;
    into.candidate_refusals += from.candidate_refusals;
}

/// The value a finished request gives a custom guardrail's metric, `None` when it has none
/// (latency of a failed request, ttft of an unstreamed one, tokens and cost without an answer).
fn metric_value(metric: RecordedMetric, s: &Signal) -> Option<f64> {
    let Signal::Request {
        error,
        refusal,
        latency_ms,
        ttft_ms,
        prompt_tokens,
        completion_tokens,
        cost_usd,
        ..
    } = s
    else {
        return None;
    };
    let ok = !*error;
    match metric {
        RecordedMetric::LatencyMs => ok.then_some(*latency_ms),
        RecordedMetric::TtftMs => ttft_ms.filter(|_| ok),
        RecordedMetric::PromptTokens => prompt_tokens.filter(|_| ok).map(|t| t as f64),
        RecordedMetric::CompletionTokens => completion_tokens.filter(|_| ok).map(|t| t as f64),
        RecordedMetric::CostUsd => cost_usd.filter(|_| ok),
        RecordedMetric::Error => Some(f64::from(u8::from(*error))),
        RecordedMetric::Refusal => Some(f64::from(u8::from(*refusal))),
    }
}

impl Window {
    fn bucket(&mut self, ts_ms: i64) -> &mut Bucket {
        let mut second = ts_ms.div_euclid(1000);
        if let Some(sealed) = self.sealed_through {
            second = second.max(sealed + 1);
        }
        if self.buckets.back().is_none_or(|b| b.second < second) {
            self.buckets.push_back(Bucket {
                second,
                ..Bucket::default()
            });
        }
        // Late signals land in the newest bucket (or the first one not sealed); they are at most
        // a request's latency late.
        let n = self.buckets.len() - 1;
        &mut self.buckets[n]
    }

    /// Start counting a new stage (its epoch); the guardrail window carries over.
    pub fn reset_stage(&mut self, epoch_ms: i64) {
        self.stage_since_ms = epoch_ms;
        self.stage_control = CohortCounts::default();
        self.stage_canary = CohortCounts::default();
        self.stage_pairs = PairedCounts::default();
    }

    fn stage_counts(&mut self, cohort: Cohort) -> Option<&mut CohortCounts> {
        match cohort {
            Cohort::Control => Some(&mut self.stage_control),
            Cohort::Canary => Some(&mut self.stage_canary),
            Cohort::Unkeyed => None,
        }
    }

    pub fn observe(&mut self, cfg: &RolloutConfig, s: &Signal) {
        match s {
            Signal::Request { .. } => self.observe_request(cfg, s),
            Signal::Feedback {
                cohort,
                thumbs,
                ts_ms,
                ..
            } => self.observe_feedback(*cohort, *thumbs, *ts_ms),
            Signal::Pair { .. } => self.observe_pair(s),
        }
    }

    fn observe_request(&mut self, cfg: &RolloutConfig, s: &Signal) {
        let Signal::Request {
            cohort,
            ts_ms,
            error,
            refusal,
            latency_ms,
            ..
        } = s
        else {
            return;
        };
        let (err, refu) = (u64::from(*error), u64::from(*refusal));
        let Some(stage) = self.stage_counts(*cohort) else {
            return;
        };
        stage.requests += 1;
        stage.errors += err;
        stage.refusals += refu;
        let side = self.bucket(*ts_ms).side(*cohort);
        side.counts.requests += 1;
        side.counts.errors += err;
        side.counts.refusals += refu;
        if !*error {
            side.observe_latency(*latency_ms);
        }
        let custom = &cfg.guardrails.custom;
        if !custom.is_empty() {
            side.custom.resize(custom.len(), MetricMoments::default());
            for (m, g) in side.custom.iter_mut().zip(custom) {
                if let Some(v) = metric_value(g.metric, s) {
                    m.push(v);
                }
            }
        }
    }

    fn observe_feedback(&mut self, cohort: Cohort, thumbs: Option<Thumbs>, ts_ms: i64) {
        let up = u64::from(thumbs == Some(Thumbs::Up));
        let down = u64::from(thumbs == Some(Thumbs::Down));
        let Some(stage) = self.stage_counts(cohort) else {
            return;
        };
        stage.feedback += 1;
        stage.thumbs_up += up;
        stage.thumbs_down += down;
        let side = self.bucket(ts_ms).side(cohort);
        side.counts.feedback += 1;
        side.counts.thumbs_up += up;
        side.counts.thumbs_down += down;
    }

    fn observe_pair(&mut self, s: &Signal) {
        let Signal::Pair {
            ts_ms,
            baseline_error,
            candidate_error,
            baseline_refusal,
            candidate_refusal,
            baseline_latency_ms,
            candidate_latency_ms,
            ..
        } = s
        else {
            return;
        };
        let one = PairedCounts {
            pairs: 1,
            baseline_errors: u64::from(*baseline_error),
            candidate_errors: u64::from(*candidate_error),
            baseline_refusals: u64::from(*baseline_refusal),
            candidate_refusals: u64::from(*candidate_refusal),
            ..PairedCounts::default()
        };
        add_pairs(&mut self.stage_pairs, &one);
        let b = self.bucket(*ts_ms);
        add_pairs(&mut b.pairs, &one);
        if let Some(c) = candidate_latency_ms
            && !*baseline_error
            && !*candidate_error
        {
            let _ = b
                .baseline_latency
                .get_or_insert_with(DdSketch::default)
                .add(baseline_latency_ms.max(0.001));
            let _ = b
                .candidate_latency
                .get_or_insert_with(DdSketch::default)
                .add(c.max(0.001));
        }
    }

    /// Drop buckets older than the guardrail window ending at `now_ms`.
    fn expire(&mut self, cfg: &RolloutConfig, now_ms: i64) {
        let window_start = (now_ms - cfg.guardrails.window.as_millis() as i64).div_euclid(1000);
        while self
            .buckets
            .front()
            .is_some_and(|b| b.second < window_start)
        {
            self.buckets.pop_front();
        }
    }

    /// What the pure state machine looks at now (`shadow_gate` left for the caller).
    pub fn observations(&mut self, cfg: &RolloutConfig, now_ms: i64) -> Observations {
        self.expire(cfg, now_ms);
        let mut control = CohortCounts::default();
        let mut canary = CohortCounts::default();
        let (mut cl, mut tl) = (None, None);
        let mut pairs = PairedCounts::default();
        let (mut bl, mut cdl) = (None, None);
        let mut custom: Vec<CustomMoments> = cfg
            .guardrails
            .custom
            .iter()
            .map(|g| CustomMoments {
                name: g.name.clone(),
                ..CustomMoments::default()
            })
            .collect();
        for b in &self.buckets {
            control.add(&b.control.counts);
            canary.add(&b.canary.counts);
            // A cohort without traffic in a second has no moments there: take each side's own.
            for (i, acc) in custom.iter_mut().enumerate() {
                if let Some(c) = b.control.custom.get(i) {
                    acc.control.merge(c);
                }
                if let Some(t) = b.canary.custom.get(i) {
                    acc.canary.merge(t);
                }
            }
            merge(&mut cl, &b.control.latency);
            merge(&mut tl, &b.canary.latency);
            add_pairs(&mut pairs, &b.pairs);
            merge(&mut bl, &b.baseline_latency);
            merge(&mut cdl, &b.candidate_latency);
        }
        let ratio = cfg.guardrails.p95_latency_max_ratio;
        let tail = |a: &Option<DdSketch>, b: &Option<DdSketch>| match (a, b, ratio) {
            (Some(a), Some(b), Some(r)) => LatencyTail::from_sketches(a, b, r),
            _ => None,
        };
        pairs.latency = tail(&bl, &cdl);
        let mut stage_pairs = self.stage_pairs;
        stage_pairs.latency = None;
        Observations {
            window: WindowCounts {
                control,
                canary,
                latency: tail(&cl, &tl),
                custom,
            },
            stage_since_ms: self.stage_since_ms,
            stage_control: self.stage_control,
            stage_canary: self.stage_canary,
            paired_window: Some(pairs),
            paired_stage: Some(stage_pairs),
            shadow_gate: None,
        }
    }
}
