//! `check-config` warnings: a valid config that breaks rollout discipline. Printed with their
//! key path; `rampart check-config --strict` turns them into errors.
//!
//! - a model name without a pinned version or date (`gpt-4o` drifts under you;
//!   `gpt-4o-2024-08-06` does not); simulated (`type = "mock"`) models are exempt;
//! - a candidate that changes both the model and the prompt against its baseline (one change at
//!   a time, or a regression cannot be blamed on either);
//! - a rollout with no shadow stage (the candidate meets users before anyone saw its answers);
//! - a guardrail window shorter than its check interval (some requests are never looked at).

use super::{Config, ConfigError, ProviderKind, VariantConfig};

/// One warning: the same shape as an error (`path: message (got `value`)`).
pub type ConfigWarning = ConfigError;

fn warn(path: String, message: &str, got: Option<String>) -> ConfigWarning {
    ConfigError {
        path,
        message: message.to_string(),
        got,
    }
}

/// Whether a model name carries a version or a date: a run of at least four digits
/// (`2024-08-06`, `20241022`, `0613`), or a tag after `@` or `:`.
pub fn model_is_pinned(model: &str) -> bool {
    let mut run = 0;
    for c in model.chars() {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 4 {
            return true;
        }
    }
    model
        .split(['@', ':'])
        .skip(1)
        .any(|tag| !tag.is_empty() && tag != "latest")
}

fn prompt_changed(a: &VariantConfig, b: &VariantConfig) -> bool {
    a.prompt_version != b.prompt_version || a.system_prompt != b.system_prompt
}

/// Every warning for a valid config, in a stable order.
pub fn warnings(cfg: &Config) -> Vec<ConfigWarning> {
    let mut out = Vec::new();
    for (rname, route) in &cfg.routes {
        for (vname, v) in &route.variants {
            let simulated = cfg
                .providers
                .get(&v.provider)
                .is_some_and(|p| matches!(p.kind, ProviderKind::Mock(_)));
            if !simulated && !model_is_pinned(&v.model) {
                out.push(warn(
                    format!("routes.{rname}.variants.{vname}.model"),
                    "model name has no pinned version or date; the provider may change it under you",
                    Some(v.model.clone()),
                ));
            }
        }
    }
    for (name, r) in &cfg.rollouts {
        let path = format!("rollouts.{name}");
        if let Some(route) = cfg.routes.get(&r.route)
            && let (Some(base), Some(cand)) =
                (route.baseline_variant(), route.variants.get(&r.candidate))
            && base.model != cand.model
            && prompt_changed(base, cand)
        {
            out.push(warn(
                format!("{path}.candidate"),
                &format!(
                    "changes both the model (`{}` → `{}`) and the prompt against baseline `{}`; change one at a time",
                    base.model, cand.model, route.baseline
                ),
                Some(r.candidate.clone()),
            ));
        }
        if !r.stages.iter().any(crate::rollout::gates::is_shadow) {
            out.push(warn(
                format!("{path}.stages"),
                "no shadow stage: the candidate meets users before its answers were compared",
                None,
            ));
        }
        let g = &r.guardrails;
        if g.window < g.check_interval {
            out.push(warn(
                format!("{path}.guardrails.window"),
                &format!(
                    "shorter than check_interval ({}); requests between windows are never checked",
                    humantime::format_duration(g.check_interval)
                ),
                Some(humantime::format_duration(g.window).to_string()),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::model_is_pinned;

    #[test]
    fn pinned_models() {
        for m in [
            "gpt-4o-2024-08-06",
            "claude-3-5-sonnet-20241022",
            "gpt-4-0613",
            "llama3:8b",
            "m@v3",
        ] {
            assert!(model_is_pinned(m), "{m}");
        }
        for m in [
            "gpt-4o",
            "gpt-4o-mini",
            "claude-sonnet",
            "llama3:latest",
            "o1",
        ] {
            assert!(!model_is_pinned(m), "{m}");
        }
    }
}
