//! `[rollouts.NAME]`: stages, gates, guardrails, judge, embeddings and tenant caps.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Collector, name_ok};
use crate::config::raw::*;
use crate::config::*;

pub(super) fn validate_gates(
    c: &mut Collector,
    path: &str,
    raw: &RawGates,
    base: &GatesConfig,
) -> GatesConfig {
    GatesConfig {
        mde: c.open_unit(&format!("{path}.mde"), raw.mde, base.mde),
        alpha: c.open_unit(&format!("{path}.alpha"), raw.alpha, base.alpha),
        power: c.open_unit(&format!("{path}.power"), raw.power, base.power),
        min_equivalence: c.rate(
            &format!("{path}.min_equivalence"),
            raw.min_equivalence,
            base.min_equivalence,
        ),
        min_win_rate: match raw.min_win_rate {
            None => base.min_win_rate,
            Some(x) => Some(c.rate(&format!("{path}.min_win_rate"), Some(x), 0.5)),
        },
        min_class_pairs: c.int(
            &format!("{path}.min_class_pairs"),
            raw.min_class_pairs,
            base.min_class_pairs,
        ),
    }
}

pub(super) fn validate_rollout(
    c: &mut Collector,
    name: &str,
    raw: RawRollout,
    routes: &BTreeMap<String, RouteConfig>,
    known_providers: &BTreeSet<String>,
) -> Option<RolloutConfig> {
    let path = format!("rollouts.{name}");
    let route = routes.get(&raw.route);
    check_route_and_candidate(c, &path, &raw, routes);
    let gates = validate_gates(
        c,
        &format!("{path}.gates"),
        &raw.gates,
        &GatesConfig {
            mde: 0.02,
            alpha: 0.05,
            power: 0.8,
            min_equivalence: 0.70,
            min_win_rate: None,
            min_class_pairs: crate::compare::aggregate::DEFAULT_MIN_CLASS_PAIRS,
        },
    );
    let stages = validate_stages(c, &path, &raw.stages, &gates);
    let guardrails = validate_guardrails(c, &format!("{path}.guardrails"), &raw.guardrails);
    let judge = raw
        .judge
        .as_ref()
        .map(|j| validate_judge(c, &format!("{path}.judge"), j, &raw.route, route));
    let embeddings = raw
        .embeddings
        .as_ref()
        .map(|e| validate_embeddings(c, &format!("{path}.embeddings"), e, known_providers));
    if judge.is_none() {
        check_win_rate_has_judge(c, &path, &gates, &stages);
    }
    let tenants = validate_tenants(c, &path, &raw.tenants);
    let slow_signals = validate_slow_signals(c, &path, &raw.slow_signals);

    Some(RolloutConfig {
        name: name.to_string(),
        route: raw.route,
        candidate: raw.candidate,
        salt: raw.salt.unwrap_or_else(|| name.to_string()),
        stages,
        guardrails,
        gates,
        tenants,
        keep_baseline_warm: c.duration(
            &format!("{path}.keep_baseline_warm"),
            raw.keep_baseline_warm.as_deref(),
            Duration::from_secs(7 * 24 * 3600),
        ),
        cooldown: c.duration(
            &format!("{path}.cooldown"),
            raw.cooldown.as_deref(),
            Duration::from_secs(3600),
        ),
        fallback_to_baseline: raw.fallback_to_baseline.unwrap_or(true),
        judge,
        embeddings,
        slow_signals,
    })
}

/// `[[slow_signals]]`: unique names, exactly one of `max_decrease` / `max_relative_decrease`,
/// `action` `pin` or `rollback`, `min_samples ≥ 2`.
fn validate_slow_signals(
    c: &mut Collector,
    path: &str,
    raw: &[RawSlowSignal],
) -> Vec<SlowSignalConfig> {
    let mut names = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let p = format!("{path}.slow_signals[{i}]");
        if s.name.trim().is_empty() || !name_ok(&s.name) {
            c.push(
                format!("{p}.name"),
                "names may use only letters, digits, '-', '_' and '.'",
                Some(s.name.clone()),
            );
        } else if !names.insert(s.name.clone()) {
            c.push(
                format!("{p}.name"),
                "duplicate slow signal name",
                Some(s.name.clone()),
            );
        }
        let threshold = match (s.max_decrease, s.max_relative_decrease) {
            (Some(d), None) => SlowThreshold::Absolute(
                c.non_negative(&format!("{p}.max_decrease"), Some(d))
                    .unwrap_or(0.0),
            ),
            (None, Some(r)) => {
                SlowThreshold::Relative(c.rate(&format!("{p}.max_relative_decrease"), Some(r), 0.0))
            }
            (Some(_), Some(_)) | (None, None) => {
                c.push(
                    p.clone(),
                    "set exactly one of max_decrease and max_relative_decrease",
                    None,
                );
                SlowThreshold::Absolute(0.0)
            }
        };
        let action = match s.action.as_deref() {
            None | Some("pin") => SlowAction::Pin,
            Some("rollback") => SlowAction::Rollback,
            Some(other) => {
                c.push(
                    format!("{p}.action"),
                    "must be `pin` or `rollback`",
                    Some(other.to_string()),
                );
                SlowAction::Pin
            }
        };
        let min_samples = c.int(&format!("{p}.min_samples"), s.min_samples, 100);
        out.push(SlowSignalConfig {
            name: s.name.clone(),
            higher_is_better: s.higher_is_better.unwrap_or(true),
            threshold,
            sustain: c.duration(
                &format!("{p}.sustain"),
                s.sustain.as_deref(),
                Duration::ZERO,
            ),
            check_interval: c.duration(
                &format!("{p}.check_interval"),
                s.check_interval.as_deref(),
                Duration::from_secs(3600),
            ),
            min_samples,
            action,
            alpha: c.open_unit(&format!("{p}.alpha"), s.alpha, 0.05),
        });
    }
    out
}

/// The rollout's route exists and its candidate is one of the route's variants, not the baseline.
fn check_route_and_candidate(
    c: &mut Collector,
    path: &str,
    raw: &RawRollout,
    routes: &BTreeMap<String, RouteConfig>,
) {
    match routes.get(&raw.route) {
        None => c.push(
            format!("{path}.route"),
            format!(
                "no such route (declared: {})",
                if routes.is_empty() {
                    "none".to_string()
                } else {
                    routes.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
            Some(raw.route.clone()),
        ),
        Some(route) => {
            if !route.variants.contains_key(&raw.candidate) {
                c.push(
                    format!("{path}.candidate"),
                    format!("route `{}` has no such variant", raw.route),
                    Some(raw.candidate.clone()),
                );
            } else if route.baseline == raw.candidate {
                c.push(
                    format!("{path}.candidate"),
                    "must differ from the route's baseline",
                    Some(raw.candidate.clone()),
                );
            }
        }
    }
}

/// `stages`: at least one, unique names, a canary that never shrinks, `max_duration ≥ min_duration`.
fn validate_stages(
    c: &mut Collector,
    path: &str,
    raw: &[RawStage],
    gates: &GatesConfig,
) -> Vec<StageConfig> {
    if raw.is_empty() {
        c.push(
            format!("{path}.stages"),
            "a rollout needs at least one stage",
            None,
        );
    }
    let mut stages = Vec::new();
    let mut names = BTreeSet::new();
    let mut last_percent = 0.0;
    for (i, s) in raw.iter().enumerate() {
        let spath = format!("{path}.stages[{i}]");
        if !names.insert(s.name.clone()) {
            c.push(
                format!("{spath}.name"),
                "duplicate stage name",
                Some(s.name.clone()),
            );
        }
        let percent = c.percent(&format!("{spath}.percent"), s.percent);
        let shadow_percent = c.percent(&format!("{spath}.shadow_percent"), s.shadow_percent);
        if percent < last_percent {
            c.push(
                format!("{spath}.percent"),
                format!("stages must not shrink the canary (previous stage: {last_percent})"),
                Some(percent.to_string()),
            );
        }
        last_percent = last_percent.max(percent);
        let min_duration = c.duration(
            &format!("{spath}.min_duration"),
            s.min_duration.as_deref(),
            Duration::ZERO,
        );
        let max_duration = s
            .max_duration
            .as_deref()
            .map(|d| c.duration(&format!("{spath}.max_duration"), Some(d), Duration::ZERO));
        if let Some(max) = max_duration
            && max < min_duration
        {
            c.push(
                format!("{spath}.max_duration"),
                "must be at least min_duration",
                s.max_duration.clone(),
            );
        }
        let stage_gates = match &s.gates {
            Some(g) => validate_gates(c, &format!("{spath}.gates"), g, gates),
            None => gates.clone(),
        };
        stages.push(StageConfig {
            name: s.name.clone(),
            percent,
            shadow_percent,
            min_duration,
            max_duration,
            gates: stage_gates,
        });
    }
    stages
}

/// `guardrails`: the kill switch's test, window, schedule and thresholds.
fn validate_guardrails(c: &mut Collector, gpath: &str, g: &RawGuardrails) -> GuardrailsConfig {
    let mode = match g.mode.as_deref() {
        None | Some("sequential") => GuardrailMode::Sequential,
        Some("threshold") => GuardrailMode::Threshold,
        Some(other) => {
            c.push(
                format!("{gpath}.mode"),
                "must be \"sequential\" or \"threshold\"",
                Some(other.to_string()),
            );
            GuardrailMode::Sequential
        }
    };
    let window = c.duration(
        &format!("{gpath}.window"),
        g.window.as_deref(),
        Duration::from_secs(300),
    );
    let check_interval = c.duration(
        &format!("{gpath}.check_interval"),
        g.check_interval.as_deref(),
        Duration::from_secs(30),
    );
    GuardrailsConfig {
        mode,
        window,
        check_interval,
        error_rate_max: g
            .error_rate_max
            .map(|x| c.rate(&format!("{gpath}.error_rate_max"), Some(x), 1.0)),
        p95_latency_max_ratio: c.positive(
            &format!("{gpath}.p95_latency_max_ratio"),
            g.p95_latency_max_ratio,
        ),
        refusal_rate_max_increase: g
            .refusal_rate_max_increase
            .map(|x| c.rate(&format!("{gpath}.refusal_rate_max_increase"), Some(x), 1.0)),
        thumbs_down_max_ratio: c.positive(
            &format!("{gpath}.thumbs_down_max_ratio"),
            g.thumbs_down_max_ratio,
        ),
        alpha: c.open_unit(&format!("{gpath}.alpha"), g.alpha, 0.05),
        min_exposure: c.int(&format!("{gpath}.min_exposure"), g.min_exposure, 100),
        catastrophic_error_rate: c.rate(
            &format!("{gpath}.catastrophic_error_rate"),
            g.catastrophic_error_rate,
            0.5,
        ),
        catastrophic_min_requests: c.int(
            &format!("{gpath}.catastrophic_min_requests"),
            g.catastrophic_min_requests,
            20,
        ),
        custom: validate_custom_guardrails(c, gpath, &g.custom),
    }
}

/// `judge`: a variant of the rollout's own route, a sample, a daily budget and bounds.
fn validate_judge(
    c: &mut Collector,
    jpath: &str,
    j: &RawJudge,
    route_name: &str,
    route: Option<&RouteConfig>,
) -> JudgeConfig {
    if route.is_some_and(|r| !r.variants.contains_key(&j.variant)) {
        c.push(
            format!("{jpath}.variant"),
            format!("route `{route_name}` has no such variant"),
            Some(j.variant.clone()),
        );
    }
    JudgeConfig {
        variant: j.variant.clone(),
        sample_percent: match j.sample_percent {
            None => 10.0,
            v => c.percent(&format!("{jpath}.sample_percent"), v),
        },
        max_cost_usd_per_day: c
            .positive(
                &format!("{jpath}.max_cost_usd_per_day"),
                j.max_cost_usd_per_day,
            )
            .unwrap_or(1.0),
        max_in_flight: c.count(&format!("{jpath}.max_in_flight"), j.max_in_flight, 4),
        timeout: c.duration(
            &format!("{jpath}.timeout"),
            j.timeout.as_deref(),
            Duration::from_secs(60),
        ),
    }
}

/// `embeddings`: a declared provider and a model name.
fn validate_embeddings(
    c: &mut Collector,
    epath: &str,
    e: &RawEmbeddings,
    known_providers: &BTreeSet<String>,
) -> EmbeddingsConfig {
    if !known_providers.contains(&e.provider) {
        c.push(
            format!("{epath}.provider"),
            "no such provider",
            Some(e.provider.clone()),
        );
    }
    if e.model.trim().is_empty() {
        c.push(
            format!("{epath}.model"),
            "must not be empty",
            Some(e.model.clone()),
        );
    }
    EmbeddingsConfig {
        provider: e.provider.clone(),
        model: e.model.clone(),
    }
}

/// A `min_win_rate` anywhere in the rollout needs a judge to measure it.
fn check_win_rate_has_judge(
    c: &mut Collector,
    path: &str,
    gates: &GatesConfig,
    stages: &[StageConfig],
) {
    let wants_judge = std::iter::once((format!("{path}.gates"), gates))
        .chain(
            stages
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("{path}.stages[{i}].gates"), &s.gates)),
        )
        .find(|(_, g)| g.min_win_rate.is_some());
    if let Some((gpath, g)) = wants_judge {
        c.push(
            format!("{gpath}.min_win_rate"),
            format!("needs a judge: add [{path}.judge] with a `variant`"),
            g.min_win_rate.map(|x| x.to_string()),
        );
    }
}

/// `tenants.T.max_percent`: a percentage per tenant.
fn validate_tenants(
    c: &mut Collector,
    path: &str,
    raw: &BTreeMap<String, RawTenant>,
) -> BTreeMap<String, f64> {
    raw.iter()
        .map(|(t, tc)| {
            let v = c.percent(
                &format!("{path}.tenants.{t}.max_percent"),
                Some(tc.max_percent),
            );
            (t.clone(), v)
        })
        .collect()
}

/// Names the built-in guardrails report under; a custom guardrail may not reuse them.
const BUILTIN_GUARDRAILS: [&str; 5] = [
    "catastrophic_error_rate",
    "error_rate",
    "p95_latency",
    "refusal_rate",
    "thumbs_down_rate",
];

pub(super) fn validate_custom_guardrails(
    c: &mut Collector,
    gpath: &str,
    raw: &[RawCustomGuardrail],
) -> Vec<CustomGuardrail> {
    let mut out = Vec::with_capacity(raw.len());
    let mut seen = BTreeSet::new();
    for (i, g) in raw.iter().enumerate() {
        let path = format!("{gpath}.custom[{i}]");
        let mut ok = true;
        if !name_ok(&g.name) {
            c.push(
                format!("{path}.name"),
                "must be non-empty and use only letters, digits, `-`, `_` and `.`",
                Some(g.name.clone()),
            );
            ok = false;
        } else if BUILTIN_GUARDRAILS.contains(&g.name.as_str()) {
            c.push(
                format!("{path}.name"),
                "is the name of a built-in guardrail",
                Some(g.name.clone()),
            );
            ok = false;
        } else if !seen.insert(g.name.as_str()) {
            c.push(
                format!("{path}.name"),
                "is used by another custom guardrail of this rollout",
                Some(g.name.clone()),
            );
            ok = false;
        }
        let metric = RecordedMetric::parse(&g.metric);
        if metric.is_none() {
            let allowed = RecordedMetric::ALL.map(|m| format!("\"{}\"", m.as_str()));
            c.push(
                format!("{path}.metric"),
                format!("must be one of {}", allowed.join(", ")),
                Some(g.metric.clone()),
            );
        }
        let rule = match (g.max_increase, g.max_ratio) {
            (Some(x), None) => c
                .non_negative(&format!("{path}.max_increase"), Some(x))
                .map(CustomRule::MaxIncrease),
            (None, Some(k)) => c
                .positive(&format!("{path}.max_ratio"), Some(k))
                .map(CustomRule::MaxRatio),
            (Some(_), Some(_)) => {
                c.push(
                    path.clone(),
                    "set exactly one of `max_increase` and `max_ratio`, not both",
                    None,
                );
                None
            }
            (None, None) => {
                c.push(
                    path.clone(),
                    "needs a rule: set `max_increase` or `max_ratio`",
                    None,
                );
                None
            }
        };
        if let (true, Some(metric), Some(rule)) = (ok, metric, rule) {
            out.push(CustomGuardrail {
                name: g.name.clone(),
                metric,
                rule,
            });
        }
    }
    out
}
