//! Raw → typed config. Collects every error instead of stopping at the first.
//!
//! Each top-level table, and each entry of `providers`, `routes` and `rollouts`, is deserialized
//! on its own, so a typo in one entry does not hide the mistakes in the others.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::raw::*;
use super::*;

struct Collector {
    errors: Vec<ConfigError>,
}

impl Collector {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>, got: Option<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
            got,
        });
    }

    /// Deserialize one TOML value, reporting the failure with its full key path.
    fn de<T: DeserializeOwned>(&mut self, path: &str, value: toml::Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Some(v),
            Err(err) => {
                let inner = err.path().to_string();
                let full = if inner.is_empty() || inner == "." {
                    path.to_string()
                } else if inner.starts_with('[') {
                    format!("{path}{inner}")
                } else {
                    format!("{path}.{inner}")
                };
                self.push(full, err.into_inner().to_string().trim().to_string(), None);
                None
            }
        }
    }

    fn duration(&mut self, path: &str, raw: Option<&str>, default: Duration) -> Duration {
        match raw {
            None => default,
            Some(s) => match parse_duration(s) {
                Ok(d) => d,
                Err(msg) => {
                    self.push(path, msg, Some(s.to_string()));
                    default
                }
            },
        }
    }

    /// A count of at least 1.
    fn count(&mut self, path: &str, v: Option<u64>, default: usize) -> usize {
        match v {
            None => default,
            Some(0) => {
                self.push(path, "must be at least 1", Some("0".into()));
                default
            }
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        }
    }

    fn rate(&mut self, path: &str, v: Option<f64>, default: f64) -> f64 {
        match v {
            None => default,
            Some(x) if (0.0..=1.0).contains(&x) => x,
            Some(x) => {
                self.push(path, "must be between 0 and 1", Some(x.to_string()));
                default
            }
        }
    }

    fn percent(&mut self, path: &str, v: Option<f64>) -> f64 {
        match v {
            None => 0.0,
            Some(x) if (0.0..=100.0).contains(&x) => x,
            Some(x) => {
                self.push(path, "must be between 0 and 100", Some(x.to_string()));
                0.0
            }
        }
    }

    fn positive(&mut self, path: &str, v: Option<f64>) -> Option<f64> {
        match v {
            Some(x) if !(x > 0.0 && x.is_finite()) => {
                self.push(path, "must be a positive number", Some(x.to_string()));
                None
            }
            other => other,
        }
    }

    fn open_unit(&mut self, path: &str, v: Option<f64>, default: f64) -> f64 {
        match v {
            None => default,
            Some(x) if x > 0.0 && x < 1.0 => x,
            Some(x) => {
                self.push(
                    path,
                    "must be strictly between 0 and 1",
                    Some(x.to_string()),
                );
                default
            }
        }
    }
}

/// Parse a duration written with its unit: `"30s"`, `"5m"`, `"24h"`, `"7d"`, `"250ms"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() || t.chars().all(|c| c.is_ascii_digit()) {
        return Err(
            "must be a duration with a unit, like \"30s\", \"5m\", \"24h\" or \"7d\"".into(),
        );
    }
    humantime::parse_duration(t).map_err(|e| format!("not a valid duration: {e}"))
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub(super) fn load(text: &str) -> Result<Config, ConfigErrors> {
    let mut c = Collector { errors: Vec::new() };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let msg = e.message().to_string();
            let got = e.span().and_then(|s| text.get(s)).map(str::to_string);
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let path = match line {
                Some(l) => format!("(line {l})"),
                None => "(file)".to_string(),
            };
            return Err(ConfigErrors(vec![ConfigError {
                path,
                message: format!("invalid TOML: {msg}"),
                got: got.filter(|g| !g.is_empty()),
            }]));
        }
    };

    let mut server = RawServer::default();
    let mut store = RawStore::default();
    let mut shadow = RawShadow::default();
    let mut refusals = RawRefusals::default();
    let mut alerts = RawAlerts::default();
    let mut providers: BTreeMap<String, Option<RawProvider>> = BTreeMap::new();
    let mut routes: BTreeMap<String, Option<RawRoute>> = BTreeMap::new();
    let mut rollouts: BTreeMap<String, Option<RawRollout>> = BTreeMap::new();

    for (key, value) in table {
        match key.as_str() {
            "server" => server = c.de("server", value).unwrap_or_default(),
            "store" => store = c.de("store", value).unwrap_or_default(),
            "shadow" => shadow = c.de("shadow", value).unwrap_or_default(),
            "refusals" => refusals = c.de("refusals", value).unwrap_or_default(),
            "alerts" => alerts = c.de("alerts", value).unwrap_or_default(),
            "providers" | "routes" | "rollouts" => {
                let toml::Value::Table(entries) = value else {
                    c.push(key.as_str(), "must be a table", None);
                    continue;
                };
                for (name, v) in entries {
                    let path = format!("{key}.{name}");
                    if !name_ok(&name) {
                        c.push(
                            path.clone(),
                            "names may use only letters, digits, '-', '_' and '.'",
                            Some(name.clone()),
                        );
                    }
                    match key.as_str() {
                        "providers" => {
                            let p = c.de(&path, v);
                            providers.insert(name, p);
                        }
                        "routes" => {
                            let r = c.de(&path, v);
                            routes.insert(name, r);
                        }
                        _ => {
                            let r = c.de(&path, v);
                            rollouts.insert(name, r);
                        }
                    }
                }
            }
            other => c.push(
                other,
                "unknown section (expected one of: server, store, providers, routes, rollouts, shadow, refusals, alerts)",
                None,
            ),
        }
    }

    let server = validate_server(&mut c, server);
    let store = validate_store(&mut c, store);
    let shadow = validate_shadow(&mut c, shadow);
    let alerts = validate_alerts(&mut c, alerts);
    let refusals = RefusalConfig {
        phrases: refusals
            .phrases
            .unwrap_or_else(|| {
                DEFAULT_REFUSAL_PHRASES
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
            .into_iter()
            .chain(refusals.extra_phrases.unwrap_or_default())
            .map(|p| p.to_lowercase())
            .filter(|p| !p.trim().is_empty())
            .collect(),
    };

    let known_providers: BTreeSet<String> = providers.keys().cloned().collect();
    let providers: BTreeMap<String, ProviderConfig> = providers
        .into_iter()
        .filter_map(|(name, raw)| {
            let p = validate_provider(&mut c, &name, raw?)?;
            Some((name, p))
        })
        .collect();

    let mut vroutes = BTreeMap::new();
    for (name, raw) in routes {
        let Some(raw) = raw else { continue };
        let route = validate_route(&mut c, &name, raw, &known_providers, &providers);
        vroutes.insert(name, route);
    }

    let mut vrollouts = BTreeMap::new();
    let mut route_owner: BTreeMap<String, String> = BTreeMap::new();
    for (name, raw) in rollouts {
        let Some(raw) = raw else { continue };
        if let Some(owner) = route_owner.get(&raw.route) {
            c.push(
                format!("rollouts.{name}.route"),
                format!("route is already used by rollout `{owner}`; one rollout per route"),
                Some(raw.route.clone()),
            );
        } else {
            route_owner.insert(raw.route.clone(), name.clone());
        }
        if let Some(r) = validate_rollout(&mut c, &name, raw, &vroutes, &known_providers) {
            vrollouts.insert(name, r);
        }
    }

    if c.errors.is_empty() {
        Ok(Config {
            server,
            store,
            providers,
            routes: vroutes,
            rollouts: vrollouts,
            shadow,
            refusals,
            alerts,
        })
    } else {
        Err(ConfigErrors(c.errors))
    }
}

fn validate_server(c: &mut Collector, raw: RawServer) -> ServerConfig {
    let listen_raw = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen = match listen_raw.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            c.push(
                "server.listen",
                "must be an IP address and port, like \"127.0.0.1:8080\"",
                Some(listen_raw),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }
    };
    let max_body_bytes = match raw.max_body_bytes {
        None => 16 * 1024 * 1024,
        Some(0) => {
            c.push(
                "server.max_body_bytes",
                "must be at least 1",
                Some("0".into()),
            );
            16 * 1024 * 1024
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    if raw.request_timeout.is_some() {
        // Accepted for forward compatibility; provider timeouts bound requests today.
        c.duration(
            "server.request_timeout",
            raw.request_timeout.as_deref(),
            Duration::ZERO,
        );
    }
    ServerConfig {
        listen,
        admin_token_env: raw.admin_token_env.filter(|s| !s.is_empty()),
        max_body_bytes,
        shutdown_grace: c.duration(
            "server.shutdown_grace",
            raw.shutdown_grace.as_deref(),
            Duration::from_secs(30),
        ),
    }
}

fn validate_store(c: &mut Collector, raw: RawStore) -> StoreConfig {
    let kind = match raw.kind.as_deref().unwrap_or("sqlite") {
        "sqlite" => {
            if raw.url.is_some() {
                c.push("store.url", "only for type = \"postgres\"", raw.url.clone());
            }
            StoreKind::Sqlite {
                path: PathBuf::from(raw.path.unwrap_or_else(|| "rampart.db".into())),
            }
        }
        "postgres" => {
            c.push(
                "store.type",
                "the postgres store is not available in this build yet; use \"sqlite\"",
                Some("postgres".into()),
            );
            StoreKind::Postgres {
                url: raw.url.unwrap_or_default(),
            }
        }
        other => {
            c.push(
                "store.type",
                "must be \"sqlite\" or \"postgres\"",
                Some(other.to_string()),
            );
            StoreKind::Sqlite {
                path: PathBuf::from("rampart.db"),
            }
        }
    };
    StoreConfig {
        kind,
        capture_text: raw.capture_text.unwrap_or(true),
        queue_capacity: c.count("store.queue_capacity", raw.queue_capacity, 65_536),
        batch_size: c.count("store.batch_size", raw.batch_size, 512),
        flush_interval: c.duration(
            "store.flush_interval",
            raw.flush_interval.as_deref(),
            Duration::from_millis(200),
        ),
    }
}

fn validate_shadow(c: &mut Collector, raw: RawShadow) -> ShadowConfig {
    let max_tokens_per_day = match raw.max_tokens_per_day {
        Some(0) => {
            c.push(
                "shadow.max_tokens_per_day",
                "must be at least 1",
                Some("0".into()),
            );
            None
        }
        v => v,
    };
    ShadowConfig {
        max_in_flight: c.count("shadow.max_in_flight", raw.max_in_flight, 32),
        timeout: c.duration(
            "shadow.timeout",
            raw.timeout.as_deref(),
            Duration::from_secs(30),
        ),
        max_cost_usd_per_day: c.positive("shadow.max_cost_usd_per_day", raw.max_cost_usd_per_day),
        max_tokens_per_day,
        cache_ttl: raw
            .cache_ttl
            .as_deref()
            .map(|s| c.duration("shadow.cache_ttl", Some(s), Duration::ZERO)),
    }
}

fn parse_style(c: &mut Collector, path: &str, s: Option<&str>, default: Style) -> Style {
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

fn parse_latency(
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

fn validate_provider(c: &mut Collector, name: &str, raw: RawProvider) -> Option<ProviderConfig> {
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

fn toml_to_json(v: toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s),
        toml::Value::Integer(i) => serde_json::Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        toml::Value::Boolean(b) => serde_json::Value::Bool(b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(toml_to_json).collect())
        }
        toml::Value::Table(t) => {
            serde_json::Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

/// Request fields a variant may not pin: they belong to the client or to rampart.
const RESERVED_PARAMS: &[&str] = &["model", "messages", "stream", "user"];

fn validate_route(
    c: &mut Collector,
    name: &str,
    raw: RawRoute,
    known_providers: &BTreeSet<String>,
    providers: &BTreeMap<String, ProviderConfig>,
) -> RouteConfig {
    let path = format!("routes.{name}");
    if raw.variants.is_empty() {
        c.push(
            format!("{path}.variants"),
            "a route needs at least one variant",
            None,
        );
    } else if !raw.variants.contains_key(&raw.baseline) {
        c.push(
            format!("{path}.baseline"),
            format!(
                "must name one of the route's variants ({})",
                raw.variants.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            Some(raw.baseline.clone()),
        );
    }
    let mut variants = BTreeMap::new();
    for (vname, v) in raw.variants {
        let vpath = format!("{path}.variants.{vname}");
        if !known_providers.contains(&v.provider) {
            c.push(
                format!("{vpath}.provider"),
                format!(
                    "no such provider (declared: {})",
                    if known_providers.is_empty() {
                        "none".to_string()
                    } else {
                        known_providers
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
                Some(v.provider.clone()),
            );
        } else if let Some(ProviderConfig {
            kind: ProviderKind::Mock(m),
            ..
        }) = providers.get(&v.provider)
            && !m.models.contains_key(&v.model)
        {
            c.push(
                format!("{vpath}.model"),
                format!("the mock provider `{}` declares no such model", v.provider),
                Some(v.model.clone()),
            );
        }
        let mode = match v.system_prompt_mode.as_deref() {
            None | Some("prepend") => SystemPromptMode::Prepend,
            Some("replace") => SystemPromptMode::Replace,
            Some(other) => {
                c.push(
                    format!("{vpath}.system_prompt_mode"),
                    "must be \"prepend\" or \"replace\"",
                    Some(other.to_string()),
                );
                SystemPromptMode::Prepend
            }
        };
        let mut params = serde_json::Map::new();
        for (k, val) in v.params {
            if RESERVED_PARAMS.contains(&k.as_str()) {
                c.push(
                    format!("{vpath}.params.{k}"),
                    "cannot be pinned by a variant",
                    Some(val.to_string()),
                );
                continue;
            }
            params.insert(k, toml_to_json(val));
        }
        let price = |c: &mut Collector, key: &str, p: Option<f64>| match p {
            None => 0.0,
            Some(x) if x >= 0.0 && x.is_finite() => x,
            Some(x) => {
                c.push(
                    format!("{vpath}.{key}"),
                    "must be zero or more",
                    Some(x.to_string()),
                );
                0.0
            }
        };
        let input = price(c, "input_usd_per_mtok", v.input_usd_per_mtok);
        let output = price(c, "output_usd_per_mtok", v.output_usd_per_mtok);
        variants.insert(
            vname.clone(),
            Arc::new(VariantConfig {
                name: vname,
                provider: v.provider,
                model: v.model,
                prompt_version: v.prompt_version,
                system_prompt: v.system_prompt,
                system_prompt_mode: mode,
                params,
                input_usd_per_mtok: input,
                output_usd_per_mtok: output,
            }),
        );
    }
    RouteConfig {
        name: name.to_string(),
        baseline: raw.baseline,
        variants,
    }
}

fn validate_gates(
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
    }
}

fn validate_rollout(
    c: &mut Collector,
    name: &str,
    raw: RawRollout,
    routes: &BTreeMap<String, RouteConfig>,
    known_providers: &BTreeSet<String>,
) -> Option<RolloutConfig> {
    let path = format!("rollouts.{name}");
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
        },
    );

    if raw.stages.is_empty() {
        c.push(
            format!("{path}.stages"),
            "a rollout needs at least one stage",
            None,
        );
    }
    let mut stages = Vec::new();
    let mut names = BTreeSet::new();
    let mut last_percent = 0.0;
    for (i, s) in raw.stages.iter().enumerate() {
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
            Some(g) => validate_gates(c, &format!("{spath}.gates"), g, &gates),
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

    let g = &raw.guardrails;
    let gpath = format!("{path}.guardrails");
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
    if check_interval.is_zero() {
        c.push(
            format!("{gpath}.check_interval"),
            "must be longer than zero",
            g.check_interval.clone(),
        );
    }
    let guardrails = GuardrailsConfig {
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
        min_exposure: g.min_exposure.unwrap_or(100),
        catastrophic_error_rate: c.rate(
            &format!("{gpath}.catastrophic_error_rate"),
            g.catastrophic_error_rate,
            0.5,
        ),
        catastrophic_min_requests: g.catastrophic_min_requests.unwrap_or(20),
        custom: validate_custom_guardrails(c, &gpath, &g.custom),
    };

    let judge = raw.judge.as_ref().map(|j| {
        let jpath = format!("{path}.judge");
        if routes
            .get(&raw.route)
            .is_some_and(|r| !r.variants.contains_key(&j.variant))
        {
            c.push(
                format!("{jpath}.variant"),
                format!("route `{}` has no such variant", raw.route),
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
    });
    let embeddings = raw.embeddings.as_ref().map(|e| {
        if !known_providers.contains(&e.provider) {
            c.push(
                format!("{path}.embeddings.provider"),
                "no such provider",
                Some(e.provider.clone()),
            );
        }
        if e.model.trim().is_empty() {
            c.push(
                format!("{path}.embeddings.model"),
                "must not be empty",
                Some(e.model.clone()),
            );
        }
        EmbeddingsConfig {
            provider: e.provider.clone(),
            model: e.model.clone(),
        }
    });
    if judge.is_none() {
        let wants_judge = std::iter::once((format!("{path}.gates"), &gates))
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

    let mut tenants = BTreeMap::new();
    for (t, tc) in &raw.tenants {
        let v = c.percent(
            &format!("{path}.tenants.{t}.max_percent"),
            Some(tc.max_percent),
        );
        tenants.insert(t.clone(), v);
    }

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
        judge,
        embeddings,
    })
}

/// Names the built-in guardrails report under; a custom guardrail may not reuse them.
const BUILTIN_GUARDRAILS: [&str; 5] = [
    "catastrophic_error_rate",
    "error_rate",
    "p95_latency",
    "refusal_rate",
    "thumbs_down_rate",
];

fn validate_custom_guardrails(
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
            (Some(x), None) if x.is_finite() && x >= 0.0 => Some(CustomRule::MaxIncrease(x)),
            (Some(x), None) => {
                c.push(
                    format!("{path}.max_increase"),
                    "must be a finite number ≥ 0",
                    Some(x.to_string()),
                );
                None
            }
            (None, Some(k)) if k.is_finite() && k > 0.0 => Some(CustomRule::MaxRatio(k)),
            (None, Some(k)) => {
                c.push(
                    format!("{path}.max_ratio"),
                    "must be a positive number",
                    Some(k.to_string()),
                );
                None
            }
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

fn secret(
    c: &mut Collector,
    path: &str,
    key: &str,
    value: Option<String>,
    env: Option<String>,
) -> Option<SecretSource> {
    match (value, env) {
        (Some(_), Some(_)) => {
            c.push(
                format!("{path}.{key}"),
                format!("set either `{key}` or `{key}_env`, not both"),
                None,
            );
            None
        }
        (Some(v), None) => Some(SecretSource::Value(v)),
        (None, Some(e)) => Some(SecretSource::Env(e)),
        (None, None) => {
            c.push(
                format!("{path}.{key}"),
                format!("`{key}` or `{key}_env` is required"),
                None,
            );
            None
        }
    }
}

fn validate_alerts(c: &mut Collector, raw: RawAlerts) -> AlertsConfig {
    let mut sinks = Vec::new();
    let check_url = |c: &mut Collector, path: &str, s: &Option<SecretSource>| {
        if let Some(SecretSource::Value(u)) = s
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            c.push(
                format!("{path}.url"),
                "must be an http:// or https:// URL",
                Some(u.clone()),
            );
        }
    };
    for (i, s) in raw.slack.into_iter().enumerate() {
        let path = format!("alerts.slack[{i}]");
        let url = secret(c, &path, "url", s.url, s.url_env);
        check_url(c, &path, &url);
        if s.routing_key.is_some() || s.routing_key_env.is_some() {
            c.push(
                format!("{path}.routing_key"),
                "only for [[alerts.pagerduty]]",
                None,
            );
        }
        if let Some(url) = url {
            sinks.push(AlertSink::Slack { url });
        }
    }
    for (i, s) in raw.pagerduty.into_iter().enumerate() {
        let path = format!("alerts.pagerduty[{i}]");
        if s.url_env.is_some() {
            c.push(
                format!("{path}.url_env"),
                "not supported for PagerDuty; set `url`",
                None,
            );
        }
        let url = s
            .url
            .unwrap_or_else(|| "https://events.pagerduty.com/v2/enqueue".to_string());
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            c.push(
                format!("{path}.url"),
                "must be an http:// or https:// URL",
                Some(url.clone()),
            );
        }
        if let Some(routing_key) = secret(c, &path, "routing_key", s.routing_key, s.routing_key_env)
        {
            sinks.push(AlertSink::PagerDuty { url, routing_key });
        }
    }
    for (i, s) in raw.webhook.into_iter().enumerate() {
        let path = format!("alerts.webhook[{i}]");
        let url = secret(c, &path, "url", s.url, s.url_env);
        check_url(c, &path, &url);
        if let Some(url) = url {
            sinks.push(AlertSink::Webhook { url });
        }
    }
    let max_attempts = match raw.max_attempts {
        Some(0) => {
            c.push(
                "alerts.max_attempts",
                "must be at least 1",
                Some("0".into()),
            );
            4
        }
        Some(n) => n,
        None => 4,
    };
    AlertsConfig {
        sinks,
        max_attempts,
        timeout: c.duration(
            "alerts.timeout",
            raw.timeout.as_deref(),
            Duration::from_secs(10),
        ),
    }
}
