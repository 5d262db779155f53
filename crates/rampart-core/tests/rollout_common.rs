//! Shared builders for the rollout tests (included with `#[path]`; no tests of its own).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use rampart_core::config::{
    GatesConfig, GuardrailMode, GuardrailsConfig, RolloutConfig, StageConfig,
};

pub fn gates() -> GatesConfig {
    GatesConfig {
        mde: 0.02,
        alpha: 0.05,
        power: 0.8,
        min_equivalence: 0.7,
        min_win_rate: None,
        min_class_pairs: 20,
    }
}

pub fn stage(name: &str, percent: f64, shadow: f64, min_s: u64, max_s: Option<u64>) -> StageConfig {
    StageConfig {
        name: name.to_string(),
        percent,
        shadow_percent: shadow,
        min_duration: Duration::from_secs(min_s),
        max_duration: max_s.map(Duration::from_secs),
        gates: gates(),
    }
}

/// The guardrails of a realistic config: all four guardrails, 5 m window, 5 s checks,
/// defaults elsewhere.
pub fn guardrails(mode: GuardrailMode) -> GuardrailsConfig {
    GuardrailsConfig {
        mode,
        window: Duration::from_secs(300),
        check_interval: Duration::from_secs(5),
        error_rate_max: Some(0.02),
        p95_latency_max_ratio: Some(1.5),
        refusal_rate_max_increase: Some(0.01),
        thumbs_down_max_ratio: Some(2.0),
        alpha: 0.05,
        min_exposure: 100,
        catastrophic_error_rate: 0.5,
        catastrophic_min_requests: 20,
        custom: Vec::new(),
    }
}

pub fn rollout(stages: Vec<StageConfig>, mode: GuardrailMode) -> RolloutConfig {
    RolloutConfig {
        name: "support-v2".into(),
        route: "support".into(),
        candidate: "v2".into(),
        salt: "support-v2".into(),
        stages,
        guardrails: guardrails(mode),
        gates: gates(),
        tenants: BTreeMap::new(),
        keep_baseline_warm: Duration::from_secs(7 * 24 * 3600),
        cooldown: Duration::from_secs(3600),
        fallback_to_baseline: true,
        judge: None,
        embeddings: None,
        slow_signals: Vec::new(),
    }
}

/// shadow 20% → 1% → 5% → 25% → 100%, short durations for the state-machine tests.
pub fn standard(mode: GuardrailMode) -> RolloutConfig {
    rollout(
        vec![
            stage("shadow", 0.0, 20.0, 60, Some(3600)),
            stage("canary-1", 1.0, 0.0, 60, Some(3600)),
            stage("canary-5", 5.0, 0.0, 60, Some(3600)),
            stage("canary-25", 25.0, 0.0, 60, None),
            stage("full", 100.0, 0.0, 60, None),
        ],
        mode,
    )
}
