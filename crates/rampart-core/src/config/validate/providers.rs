//! `[providers.NAME]`: where variants' calls go, and the simulated provider's models.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Collector;
use crate::config::raw::*;
use crate::config::*;

pub(super) fn parse_style(c: &mut Collector, path: &str, s: Option<&str>, default: Style) -> Style {
    match s {
        None => default,
        Some(s) => match Style::ALL.iter().find(|st| st.as_str() == s) {
            Some(st) => *st,
            None => {
                c.push(
                    path,
                    "must be one of \"casual\", \"formal\", \"terse\"",
                    Some(s.to_string()),
                );
                default
            }
        },
    }
}

pub(super) fn parse_latency(
    c: &mut Collector,
    path: &str,
    raw: Option<RawLatency>,
    default: LatencySpec,
) -> LatencySpec {
    let Some(l) = raw else { return default };
    let mut ok = true;
    if !(l.median > 0.0 && l.median.is_finite()) {
        c.push(
            format!("{path}.median"),
            "must be a positive number of milliseconds",
            Some(l.median.to_string()),
        );
        ok = false;
    }
    if !(l.p95.is_finite() && l.p95 >= l.median) {
        c.push(
            format!("{path}.p95"),
            "must be at least the median",
            Some(l.p95.to_string()),
        );
        ok = false;
    }
    if ok {
        LatencySpec {
            median_ms: l.median,
            p95_ms: l.p95,
        }
    } else {
        default
    }
}

pub(super) fn validate_provider(
    c: &mut Collector,
    name: &str,
    raw: RawProvider,
) -> Option<ProviderConfig> {
    let path = format!("providers.{name}");
    let kind = match raw.kind.as_str() {
        "openai" => {
            if !raw.models.is_empty() {
                c.push(format!("{path}.models"), "only for type = \"mock\"", None);
            }
            let base_url = match raw.base_url {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                    u.trim_end_matches('/').to_string()
                }
                Some(u) => {
                    c.push(
                        format!("{path}.base_url"),
                        "must be an http:// or https:// URL",
                        Some(u),
                    );
                    String::new()
                }
                None => {
                    c.push(
                        format!("{path}.base_url"),
                        "is required for type = \"openai\"",
                        None,
                    );
                    String::new()
                }
            };
            ProviderKind::OpenAi(OpenAiProvider {
                base_url,
                api_key_env: raw.api_key_env.filter(|s| !s.is_empty()),
                timeout: c.duration(
                    &format!("{path}.timeout"),
                    raw.timeout.as_deref(),
                    Duration::from_secs(60),
                ),
                connect_timeout: c.duration(
                    &format!("{path}.connect_timeout"),
                    raw.connect_timeout.as_deref(),
                    Duration::from_secs(5),
                ),
                max_idle_per_host: raw
                    .max_idle_per_host
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                    .unwrap_or(64),
            })
        }
        "mock" => {
            for (key, set) in [
                ("base_url", raw.base_url.is_some()),
                ("api_key_env", raw.api_key_env.is_some()),
            ] {
                if set {
                    c.push(format!("{path}.{key}"), "only for type = \"openai\"", None);
                }
            }
            let mut models = BTreeMap::new();
            for (mname, m) in raw.models {
                let mpath = format!("{path}.models.{mname}");
                let base = MockBehaviour {
                    style: parse_style(
                        c,
                        &format!("{mpath}.style"),
                        m.style.as_deref(),
                        Style::Casual,
                    ),
                    latency: parse_latency(
                        c,
                        &format!("{mpath}.latency_ms"),
                        m.latency_ms,
                        LatencySpec {
                            median_ms: 10.0,
                            p95_ms: 20.0,
                        },
                    ),
                    error_rate: c.rate(&format!("{mpath}.error_rate"), m.error_rate, 0.0),
                    refusal_rate: c.rate(&format!("{mpath}.refusal_rate"), m.refusal_rate, 0.0),
                    length_factor: c
                        .positive(&format!("{mpath}.length_factor"), m.length_factor)
                        .unwrap_or(1.0),
                };
                let mut overrides = BTreeMap::new();
                for (i, o) in m.overrides.into_iter().enumerate() {
                    let opath = format!("{mpath}.overrides[{i}]");
                    if overrides.contains_key(&o.class) {
                        c.push(
                            format!("{opath}.class"),
                            "duplicate class",
                            Some(o.class.clone()),
                        );
                    }
                    let b = MockBehaviour {
                        style: parse_style(
                            c,
                            &format!("{opath}.style"),
                            o.style.as_deref(),
                            base.style,
                        ),
                        latency: parse_latency(
                            c,
                            &format!("{opath}.latency_ms"),
                            o.latency_ms,
                            base.latency,
                        ),
                        error_rate: c.rate(
                            &format!("{opath}.error_rate"),
                            o.error_rate,
                            base.error_rate,
                        ),
                        refusal_rate: c.rate(
                            &format!("{opath}.refusal_rate"),
                            o.refusal_rate,
                            base.refusal_rate,
                        ),
                        length_factor: c
                            .positive(&format!("{opath}.length_factor"), o.length_factor)
                            .unwrap_or(base.length_factor),
                    };
                    overrides.insert(o.class, b);
                }
                let position_bias = c.rate(&format!("{mpath}.position_bias"), m.position_bias, 0.0);
                models.insert(
                    mname,
                    MockModel {
                        base,
                        overrides,
                        position_bias,
                    },
                );
            }
            ProviderKind::Mock(MockProvider {
                seed: raw.seed.unwrap_or(0),
                models,
            })
        }
        other => {
            c.push(
                format!("{path}.type"),
                "must be \"openai\" or \"mock\"",
                Some(other.to_string()),
            );
            return None;
        }
    };
    Some(ProviderConfig {
        name: name.to_string(),
        kind,
    })
}
