//! Rollout settings beyond stages: `[[rollouts.R.guardrails.custom]]` and `[rollouts.R.judge]`,
//! parsed into typed config, and every mistake reported with its key path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use rampart_core::config::{Config, CustomGuardrail, CustomRule, JudgeConfig, RecordedMetric};

fn config(custom: &str) -> String {
    format!(
        r#"
[providers.sim]
type = "mock"
[providers.sim.models.old]
[providers.sim.models.new]

[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "old"
[routes.support.variants.v2]
provider = "sim"
model = "new"
[routes.support.variants.judge]
provider = "sim"
model = "old"

[rollouts.support-v2]
route = "support"
candidate = "v2"
stages = [ {{ name = "canary", percent = 5 }} ]
{custom}
"#
    )
}

fn errors(custom: &str) -> Vec<String> {
    match Config::from_toml_str(&config(custom)) {
        Ok(_) => panic!("config should be invalid"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn custom_guardrails_parse_in_file_order() {
    let c = Config::from_toml_str(&config(
        r#"
[[rollouts.support-v2.guardrails.custom]]
name = "answer_length"
metric = "completion_tokens"
max_ratio = 1.5
[[rollouts.support-v2.guardrails.custom]]
name = "cost"
metric = "cost_usd"
max_increase = 0.002
"#,
    ))
    .unwrap();
    assert_eq!(
        c.rollouts["support-v2"].guardrails.custom,
        vec![
            CustomGuardrail {
                name: "answer_length".into(),
                metric: RecordedMetric::CompletionTokens,
                rule: CustomRule::MaxRatio(1.5),
            },
            CustomGuardrail {
                name: "cost".into(),
                metric: RecordedMetric::CostUsd,
                rule: CustomRule::MaxIncrease(0.002),
            },
        ]
    );
    let none = Config::from_toml_str(&config("")).unwrap();
    assert!(none.rollouts["support-v2"].guardrails.custom.is_empty());
}

#[test]
fn every_mistake_is_reported_with_its_path() {
    let errs = errors(
        r#"
[[rollouts.support-v2.guardrails.custom]]
name = "a"
metric = "tokens"
max_ratio = 1.5
[[rollouts.support-v2.guardrails.custom]]
name = "a"
metric = "latency_ms"
max_ratio = 1.5
max_increase = 10
[[rollouts.support-v2.guardrails.custom]]
name = "b"
metric = "error"
[[rollouts.support-v2.guardrails.custom]]
name = "c"
metric = "ttft_ms"
max_ratio = 0
[[rollouts.support-v2.guardrails.custom]]
name = "d"
metric = "prompt_tokens"
max_increase = -1
[[rollouts.support-v2.guardrails.custom]]
name = "error_rate"
metric = "error"
max_increase = 0.01
[[rollouts.support-v2.guardrails.custom]]
name = "has space"
metric = "refusal"
max_increase = 0.01
"#,
    );
    let p = "rollouts.support-v2.guardrails.custom";
    let expect = [
        format!(
            "{p}[0].metric: must be one of \"latency_ms\", \"ttft_ms\", \"prompt_tokens\", \"completion_tokens\", \"cost_usd\", \"error\", \"refusal\" (got `tokens`)"
        ),
        format!("{p}[1].name: is used by another custom guardrail of this rollout (got `a`)"),
        format!("{p}[1]: set exactly one of `max_increase` and `max_ratio`, not both"),
        format!("{p}[2]: needs a rule: set `max_increase` or `max_ratio`"),
        format!("{p}[3].max_ratio: must be a positive number, at most 1000 (got `0`)"),
        format!("{p}[4].max_increase: must be between 0 and 1000000000000 (got `-1`)"),
        format!("{p}[5].name: is the name of a built-in guardrail (got `error_rate`)"),
        format!(
            "{p}[6].name: must be non-empty and use only letters, digits, `-`, `_` and `.` (got `has space`)"
        ),
    ];
    for e in &expect {
        assert!(errs.contains(e), "missing {e}\nin {errs:#?}");
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
}

#[test]
fn unknown_keys_and_missing_fields_are_reported() {
    let errs = errors(
        r#"
[[rollouts.support-v2.guardrails.custom]]
name = "x"
metric = "error"
max_rate = 0.1
"#,
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("rollouts.support-v2.guardrails.custom[0]")
            && errs[0].contains("max_rate"),
        "{errs:#?}"
    );
    let errs = errors(
        r#"
[[rollouts.support-v2.guardrails.custom]]
metric = "error"
max_increase = 0.1
"#,
    );
    assert!(errs[0].contains("name"), "{errs:#?}");
}

#[test]
fn a_judge_and_embeddings_parse_with_safe_defaults() {
    let c = Config::from_toml_str(&config(
        "[rollouts.support-v2.judge]\nvariant = \"judge\"\n[rollouts.support-v2.gates]\nmin_win_rate = 0.45",
    ))
    .unwrap();
    let r = &c.rollouts["support-v2"];
    assert_eq!(
        r.judge,
        Some(JudgeConfig {
            variant: "judge".into(),
            sample_percent: 10.0,
            max_cost_usd_per_day: 1.0,
            max_in_flight: 4,
            timeout: Duration::from_secs(60),
        })
    );
    assert_eq!(r.gates.min_win_rate, Some(0.45));
    let c = Config::from_toml_str(&config(
        "[rollouts.support-v2.embeddings]\nprovider = \"sim\"\nmodel = \"text-embedding-3-small\"",
    ))
    .unwrap();
    let e = c.rollouts["support-v2"].embeddings.as_ref().unwrap();
    assert_eq!(
        (e.provider.as_str(), e.model.as_str()),
        ("sim", "text-embedding-3-small")
    );
    assert_eq!(
        Config::from_toml_str(&config("")).unwrap().rollouts["support-v2"].judge,
        None
    );
}

#[test]
fn judge_and_embeddings_mistakes_are_reported_with_their_paths() {
    let errs = errors(
        r#"[rollouts.support-v2.judge]
variant = "gpt-judge"
sample_percent = 150
max_cost_usd_per_day = 0
max_in_flight = 0
timeout = "soon"
"#,
    );
    for (path, got) in [
        ("rollouts.support-v2.judge.variant", "gpt-judge"),
        ("rollouts.support-v2.judge.sample_percent", "150"),
        ("rollouts.support-v2.judge.max_cost_usd_per_day", "0"),
        ("rollouts.support-v2.judge.max_in_flight", "0"),
        ("rollouts.support-v2.judge.timeout", "soon"),
    ] {
        assert!(
            errs.iter()
                .any(|e| e.starts_with(&format!("{path}:")) && e.contains(got)),
            "no error for {path} in {errs:#?}"
        );
    }
    let errs = errors("[rollouts.support-v2.embeddings]\nprovider = \"openai\"\nmodel = \" \"");
    for path in [
        "rollouts.support-v2.embeddings.provider:",
        "rollouts.support-v2.embeddings.model:",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(path)),
            "{path} in {errs:#?}"
        );
    }
    // A win-rate gate without a judge could never pass: refused, at the gate's own path.
    let errs = errors("[rollouts.support-v2.gates]\nmin_win_rate = 0.5");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("rollouts.support-v2.gates.min_win_rate:")
                && e.contains("needs a judge")),
        "{errs:#?}"
    );
}

#[test]
fn slow_signals_parse_with_defaults() {
    use rampart_core::config::{SlowAction, SlowSignalConfig, SlowThreshold};
    let c = Config::from_toml_str(&config(
        r#"
[[rollouts.support-v2.slow_signals]]
name = "csat"
max_decrease = 3
sustain = "48h"
[[rollouts.support-v2.slow_signals]]
name = "refunds"
higher_is_better = false
max_relative_decrease = 0.1
check_interval = "30m"
min_samples = 500
action = "rollback"
alpha = 0.01
[outcomes]
max_age = "7d"
"#,
    ))
    .unwrap();
    assert_eq!(c.outcomes.max_age, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(
        c.rollouts["support-v2"].slow_signals,
        vec![
            SlowSignalConfig {
                name: "csat".into(),
                higher_is_better: true,
                threshold: SlowThreshold::Absolute(3.0),
                sustain: Duration::from_secs(48 * 3600),
                check_interval: Duration::from_secs(3600),
                min_samples: 100,
                action: SlowAction::Pin,
                alpha: 0.05,
            },
            SlowSignalConfig {
                name: "refunds".into(),
                higher_is_better: false,
                threshold: SlowThreshold::Relative(0.1),
                sustain: Duration::ZERO,
                check_interval: Duration::from_secs(1800),
                min_samples: 500,
                action: SlowAction::Rollback,
                alpha: 0.01,
            },
        ]
    );
}

#[test]
fn slow_signal_mistakes_name_their_key() {
    let errs = errors(
        r#"
[[rollouts.support-v2.slow_signals]]
name = "csat"
[[rollouts.support-v2.slow_signals]]
name = "csat"
max_decrease = -1
max_relative_decrease = 0.2
sustain = "two days"
action = "page"
min_samples = 1
[outcomes]
max_age = "forever"
"#,
    );
    for want in [
        "rollouts.support-v2.slow_signals[0]: set exactly one of max_decrease and max_relative_decrease",
        "rollouts.support-v2.slow_signals[1].name: duplicate slow signal name (got `csat`)",
        "rollouts.support-v2.slow_signals[1]: set exactly one of max_decrease and max_relative_decrease",
        "rollouts.support-v2.slow_signals[1].sustain:",
        "rollouts.support-v2.slow_signals[1].action: must be `pin` or `rollback` (got `page`)",
        "rollouts.support-v2.slow_signals[1].min_samples: must be between 2 and 1000000000 (got `1`)",
        "outcomes.max_age:",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "missing `{want}` in {errs:#?}"
        );
    }
}
