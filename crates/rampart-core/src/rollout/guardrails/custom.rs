//! Custom guardrails (`[[guardrails.custom]]`): one recorded metric's window moments, canary
//! against control, with the parent module's confidence sequence (see its docs, "Custom
//! guardrails", for the tests and their sources).

use std::borrow::Cow;

use rampart_stats::sequential::{ConfidenceSequence, MeanSummary, mean_difference_lower_bound};

use super::{GuardrailReport, sequential_lower_bound};
use crate::config::{CustomGuardrail, GuardrailMode, GuardrailsConfig};
use crate::rollout::observations::MetricMoments;

/// A custom guardrail on one window (module docs, "Custom guardrails").
pub(super) fn evaluate_custom(
    cfg: &GuardrailsConfig,
    g: &CustomGuardrail,
    t: &MetricMoments,
    c: &MetricMoments,
    binary_cs: Option<&ConfidenceSequence>,
) -> GuardrailReport {
    let (k, margin) = g.rule.factor_and_margin();
    let seq = cfg.mode == GuardrailMode::Sequential;
    let exposed = t.n >= cfg.min_exposure.max(2) && c.n >= 2;
    let (mt, mc) = (t.mean(), c.mean());
    let evidence = match (exposed, mt, mc) {
        (true, Some(a), Some(b)) if !seq => Some(a - k * b),
        (true, Some(_), Some(_)) if g.metric.is_binary() => {
            let count = |m: &MetricMoments| (m.sum.round().clamp(0.0, m.n as f64) as u64, m.n);
            binary_cs.and_then(|cs| sequential_lower_bound(count(t), Some(count(c)), k, margin, cs))
        }
        (true, Some(a), Some(b)) => {
            let floor = g.metric.resolution().powi(2) / 12.0;
            let vt = t.variance().unwrap_or(0.0).max(floor);
            let vc = c.variance().unwrap_or(0.0).max(floor);
            let info = (2 * cfg.min_exposure.max(50)) as f64 / vc;
            let level = (2.0 * cfg.alpha).min(0.5);
            let summary = |mean, variance, n| MeanSummary { mean, variance, n };
            ConfidenceSequence::tuned_for(level, info)
                .and_then(|cs| {
                    mean_difference_lower_bound(
                        summary(a, vt, t.n),
                        summary(b, vc, c.n),
                        k,
                        margin,
                        &cs,
                    )
                })
                .ok()
                .map(|check| check.lower_bound)
        }
        _ => None,
    };
    let test = match (g.rule, seq) {
        (crate::config::CustomRule::MaxIncrease(_), true) => "LB(mean_t − mean_c) > max_increase",
        (crate::config::CustomRule::MaxIncrease(_), false) => "mean_t − mean_c > max_increase",
        (crate::config::CustomRule::MaxRatio(_), true) => "LB(mean_t − max_ratio·mean_c) > 0",
        (crate::config::CustomRule::MaxRatio(_), false) => "mean_t − max_ratio·mean_c > 0",
    };
    GuardrailReport {
        name: Cow::Owned(g.name.clone()),
        value_canary: mt,
        value_control: mc,
        threshold: margin,
        evidence,
        test,
        samples_canary: t.n,
        samples_control: c.n,
        exposure_met: exposed,
        breached: evidence.is_some_and(|e| e > margin),
    }
}
