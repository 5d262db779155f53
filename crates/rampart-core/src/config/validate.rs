//! Raw → typed config. Collects every error instead of stopping at the first.
//!
//! Each top-level table, and each entry of `providers`, `routes` and `rollouts`, is deserialized
//! on its own, so a typo in one entry does not hide the mistakes in the others.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::raw::*;
use super::*;

mod alerts;
mod providers;
mod rollouts;
mod routes;
mod server;

use alerts::validate_alerts;
use providers::validate_provider;
use rollouts::validate_rollout;
use routes::validate_route;
use server::{validate_server, validate_shadow, validate_store};

pub(super) struct Collector {
    errors: Vec<ConfigError>,
}

impl Collector {
    pub(super) fn push(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        got: Option<String>,
    ) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
            got,
        });
    }

    /// Deserialize one TOML value, reporting the failure with its full key path.
    pub(super) fn de<T: DeserializeOwned>(&mut self, path: &str, value: toml::Value) -> Option<T> {
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

    pub(super) fn duration(
        &mut self,
        path: &str,
        raw: Option<&str>,
        default: Duration,
    ) -> Duration {
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
    pub(super) fn count(&mut self, path: &str, v: Option<u64>, default: usize) -> usize {
        match v {
            None => default,
            Some(0) => {
                self.push(path, "must be at least 1", Some("0".into()));
                default
            }
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        }
    }

    pub(super) fn rate(&mut self, path: &str, v: Option<f64>, default: f64) -> f64 {
        match v {
            None => default,
            Some(x) if (0.0..=1.0).contains(&x) => x,
            Some(x) => {
                self.push(path, "must be between 0 and 1", Some(x.to_string()));
                default
            }
        }
    }

    pub(super) fn percent(&mut self, path: &str, v: Option<f64>) -> f64 {
        match v {
            None => 0.0,
            Some(x) if (0.0..=100.0).contains(&x) => x,
            Some(x) => {
                self.push(path, "must be between 0 and 100", Some(x.to_string()));
                0.0
            }
        }
    }

    pub(super) fn positive(&mut self, path: &str, v: Option<f64>) -> Option<f64> {
        match v {
            Some(x) if !(x > 0.0 && x.is_finite()) => {
                self.push(path, "must be a positive number", Some(x.to_string()));
                None
            }
            other => other,
        }
    }

    pub(super) fn open_unit(&mut self, path: &str, v: Option<f64>, default: f64) -> f64 {
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

pub(super) fn name_ok(name: &str) -> bool {
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
    let mut outcomes = RawOutcomes::default();
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
            "outcomes" => outcomes = c.de("outcomes", value).unwrap_or_default(),
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
                "unknown section (expected one of: server, store, providers, routes, rollouts, shadow, refusals, alerts, outcomes)",
                None,
            ),
        }
    }

    let server = validate_server(&mut c, server);
    let store = validate_store(&mut c, store);
    let shadow = validate_shadow(&mut c, shadow);
    let alerts = validate_alerts(&mut c, alerts);
    let outcomes = OutcomesConfig {
        max_age: c.duration(
            "outcomes.max_age",
            outcomes.max_age.as_deref(),
            OutcomesConfig::default().max_age,
        ),
    };
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
            outcomes,
        })
    } else {
        Err(ConfigErrors(c.errors))
    }
}
