//! Stage sizing for `rampart plan`: per stage, the samples each cohort needs (the same power
//! calculation as the `min_samples` gate, [`super::gates::required_samples`]) and how long the
//! stage should take at a given traffic.
//!
//! Traffic model: `traffic_rps` keyed requests per second, split `percent : 100 − percent`
//! between canary and control; a shadow stage mirrors `shadow_percent` of the control's users,
//! so pairs arrive at `traffic_rps × shadow_percent/100`. Expected duration =
//! `max(min_duration, n / slower cohort's rate)`; a 100 % stage lasts `keep_baseline_warm`.

use std::time::Duration;

use serde::Serialize;

use super::gates::{is_shadow, required_samples};
use crate::config::RolloutConfig;

/// The plan for one stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StagePlan {
    pub stage: String,
    pub percent: f64,
    pub shadow_percent: f64,
    /// Samples per cohort (pairs in a shadow stage); `None` for a 100 % stage.
    pub required_samples_per_cohort: Option<u64>,
    /// `None` when the stage cannot finish at this traffic (no traffic reaches a cohort).
    pub expected_duration: Option<Duration>,
}

/// Plans every stage of `cfg` at `traffic_rps` keyed requests per second, with the control's
/// guarded rates (error, refusal, …) as `control_rates` (empty: the rate floor).
pub fn plan(cfg: &RolloutConfig, traffic_rps: f64, control_rates: &[f64]) -> Vec<StagePlan> {
    let rates: &[f64] = if control_rates.is_empty() {
        &[0.0]
    } else {
        control_rates
    };
    let rps = if traffic_rps.is_finite() {
        traffic_rps.max(0.0)
    } else {
        0.0
    };
    cfg.stages
        .iter()
        .map(|s| {
            if s.percent >= 100.0 {
                return StagePlan {
                    stage: s.name.clone(),
                    percent: s.percent,
                    shadow_percent: s.shadow_percent,
                    required_samples_per_cohort: None,
                    expected_duration: Some(s.min_duration.max(cfg.keep_baseline_warm)),
                };
            }
            let n = required_samples(&s.gates, rates);
            let slowest_rate = if is_shadow(s) {
                rps * s.shadow_percent / 100.0
            } else {
                rps * s.percent.min(100.0 - s.percent) / 100.0
            };
            let expected_duration = n.and_then(|n| {
                (slowest_rate > 0.0).then(|| {
                    let secs = n as f64 / slowest_rate;
                    s.min_duration.max(Duration::from_secs_f64(secs.min(1e12)))
                })
            });
            StagePlan {
                stage: s.name.clone(),
                percent: s.percent,
                shadow_percent: s.shadow_percent,
                required_samples_per_cohort: n,
                expected_duration,
            }
        })
        .collect()
}
