//! `[providers.NAME]`: where variants' calls go, and the simulated provider's models.
//!
//! One function per `type`; each first rejects the keys that belong to another type, so a
//! misplaced key is named rather than ignored.

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
    let mut ok = c
        .positive(&format!("{path}.median"), Some(l.median))
        .is_some();
    ok &= c.positive(&format!("{path}.p95"), Some(l.p95)).is_some();
    if ok && l.p95 < l.median {
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

/// The `type`s and the keys each accepts beyond `type` itself.
const TYPES: [(&str, &[&str]); 4] = [
    ("openai", &["base_url", "api_key_env", HTTP_KEYS_MARK]),
    (
        "azure_openai",
        &["endpoint", "api_version", "api_key_env", HTTP_KEYS_MARK],
    ),
    (
        "anthropic",
        &[
            "base_url",
            "api_key_env",
            "anthropic_version",
            HTTP_KEYS_MARK,
        ],
    ),
    ("mock", &["seed", "models"]),
];
const HTTP_KEYS_MARK: &str = "(http)";
const HTTP_KEYS: [&str; 6] = [
    "timeout",
    "connect_timeout",
    "first_byte_timeout",
    "idle_timeout",
    "max_idle_per_host",
    "retries",
];

/// Largest `retries`: more only multiplies load on a provider that is already failing.
pub const MAX_RETRIES: u64 = 10;

pub(super) fn validate_provider(
    c: &mut Collector,
    name: &str,
    raw: RawProvider,
) -> Option<ProviderConfig> {
    let path = format!("providers.{name}");
    let Some((kind_name, allowed)) = TYPES.iter().find(|(t, _)| *t == raw.kind) else {
        c.push(
            format!("{path}.type"),
            "must be \"openai\", \"azure_openai\", \"anthropic\" or \"mock\"",
            Some(raw.kind.clone()),
        );
        return None;
    };
    reject_foreign_keys(c, &path, kind_name, allowed, &raw);
    let kind = match *kind_name {
        "openai" => ProviderKind::OpenAi(OpenAiProvider {
            base_url: url(c, &format!("{path}.base_url"), raw.base_url.clone(), None),
            api_key_env: raw.api_key_env.clone().filter(|s| !s.is_empty()),
            http: http_settings(c, &path, &raw),
        }),
        "azure_openai" => ProviderKind::AzureOpenAi(validate_azure(c, &path, &raw)),
        "anthropic" => ProviderKind::Anthropic(AnthropicProvider {
            base_url: url(
                c,
                &format!("{path}.base_url"),
                raw.base_url.clone(),
                Some("https://api.anthropic.com"),
            ),
            api_key_env: raw.api_key_env.clone().filter(|s| !s.is_empty()),
            anthropic_version: non_empty(
                c,
                &format!("{path}.anthropic_version"),
                raw.anthropic_version.clone(),
            )
            .unwrap_or_else(|| "2023-06-01".to_string()),
            http: http_settings(c, &path, &raw),
        }),
        _ => ProviderKind::Mock(validate_mock(c, &path, raw)),
    };
    Some(ProviderConfig {
        name: name.to_string(),
        kind,
    })
}

/// Names every key set in `raw` that `kind` does not take.
fn reject_foreign_keys(
    c: &mut Collector,
    path: &str,
    kind: &str,
    allowed: &[&str],
    raw: &RawProvider,
) {
    let set = [
        ("base_url", raw.base_url.is_some()),
        ("api_key_env", raw.api_key_env.is_some()),
        ("endpoint", raw.endpoint.is_some()),
        ("api_version", raw.api_version.is_some()),
        ("anthropic_version", raw.anthropic_version.is_some()),
        ("seed", raw.seed.is_some()),
        ("models", !raw.models.is_empty()),
        ("timeout", raw.timeout.is_some()),
        ("connect_timeout", raw.connect_timeout.is_some()),
        ("first_byte_timeout", raw.first_byte_timeout.is_some()),
        ("idle_timeout", raw.idle_timeout.is_some()),
        ("max_idle_per_host", raw.max_idle_per_host.is_some()),
        ("retries", raw.retries.is_some()),
    ];
    let http = allowed.contains(&HTTP_KEYS_MARK);
    for (key, present) in set {
        let ok = allowed.contains(&key) || (http && HTTP_KEYS.contains(&key));
        if present && !ok {
            let owners: Vec<&str> = TYPES
                .iter()
                .filter(|(_, keys)| {
                    keys.contains(&key)
                        || (keys.contains(&HTTP_KEYS_MARK) && HTTP_KEYS.contains(&key))
                })
                .map(|(t, _)| *t)
                .collect();
            c.push(
                format!("{path}.{key}"),
                format!(
                    "not a key of type = \"{kind}\" (only of {})",
                    owners.join(", ")
                ),
                None,
            );
        }
    }
}

/// An http(s) URL without its trailing slash; `default` when absent, else required.
fn url(c: &mut Collector, path: &str, raw: Option<String>, default: Option<&str>) -> String {
    match raw {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            u.trim_end_matches('/').to_string()
        }
        Some(u) => {
            c.push(path, "must be an http:// or https:// URL", Some(u));
            String::new()
        }
        None => match default {
            Some(d) => d.to_string(),
            None => {
                c.push(path, "is required for this provider type", None);
                String::new()
            }
        },
    }
}

fn non_empty(c: &mut Collector, path: &str, raw: Option<String>) -> Option<String> {
    match raw {
        Some(s) if s.trim().is_empty() => {
            c.push(path, "must not be empty", Some(s));
            None
        }
        other => other,
    }
}

/// A duration that must be above zero (its range in [`super::ranges::RANGES`] says how far).
fn positive_duration(
    c: &mut Collector,
    path: &str,
    raw: Option<&str>,
    default: Duration,
) -> Duration {
    c.duration(path, raw, default)
}

fn http_settings(c: &mut Collector, path: &str, raw: &RawProvider) -> HttpSettings {
    let d = HttpSettings::default();
    let timeout = positive_duration(
        c,
        &format!("{path}.timeout"),
        raw.timeout.as_deref(),
        d.timeout,
    );
    let retries = c.int(
        &format!("{path}.retries"),
        raw.retries,
        u64::from(d.retries),
    );
    let retries = u32::try_from(retries.min(MAX_RETRIES)).unwrap_or(d.retries);
    HttpSettings {
        timeout,
        connect_timeout: positive_duration(
            c,
            &format!("{path}.connect_timeout"),
            raw.connect_timeout.as_deref(),
            d.connect_timeout,
        ),
        // Unset: as long as the whole-answer timeout, so a config that only sets `timeout`
        // keeps its meaning for the wait before a stream starts.
        first_byte_timeout: positive_duration(
            c,
            &format!("{path}.first_byte_timeout"),
            raw.first_byte_timeout.as_deref(),
            timeout,
        ),
        idle_timeout: positive_duration(
            c,
            &format!("{path}.idle_timeout"),
            raw.idle_timeout.as_deref(),
            d.idle_timeout,
        ),
        max_idle_per_host: c.count(
            &format!("{path}.max_idle_per_host"),
            raw.max_idle_per_host,
            d.max_idle_per_host,
        ),
        retries,
    }
}

fn validate_azure(c: &mut Collector, path: &str, raw: &RawProvider) -> AzureOpenAiProvider {
    let api_version = match non_empty(c, &format!("{path}.api_version"), raw.api_version.clone()) {
        Some(v) => v,
        None => {
            if raw.api_version.is_none() {
                c.push(
                    format!("{path}.api_version"),
                    "is required for type = \"azure_openai\" (e.g. \"2024-10-21\")",
                    None,
                );
            }
            String::new()
        }
    };
    AzureOpenAiProvider {
        endpoint: url(c, &format!("{path}.endpoint"), raw.endpoint.clone(), None),
        api_version,
        api_key_env: raw.api_key_env.clone().filter(|s| !s.is_empty()),
        http: http_settings(c, path, raw),
    }
}

fn validate_mock(c: &mut Collector, path: &str, raw: RawProvider) -> MockProvider {
    let mut models = BTreeMap::new();
    for (mname, m) in raw.models {
        let mpath = format!("{path}.models.{mname}");
        let model = validate_mock_model(c, &mpath, m);
        models.insert(mname, model);
    }
    MockProvider {
        seed: c.int(&format!("{path}.seed"), raw.seed, 0),
        models,
    }
}

fn validate_mock_model(c: &mut Collector, mpath: &str, m: RawMockModel) -> MockModel {
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
            style: parse_style(c, &format!("{opath}.style"), o.style.as_deref(), base.style),
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
    let hang_rate = c.rate(&format!("{mpath}.hang_rate"), m.hang_rate, 0.0);
    MockModel {
        base,
        overrides,
        position_bias,
        hang_rate,
    }
}
