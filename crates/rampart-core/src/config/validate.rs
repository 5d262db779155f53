//! Raw → typed config. Collects every error instead of stopping at the first.
//!
//! Each top-level table, and each entry of `providers`, `routes` and `rollouts`, is deserialized
//! on its own, so a typo in one entry does not hide the mistakes in the others.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::refusal::Phrases;
use serde::de::DeserializeOwned;

use super::raw::*;
use super::*;

mod alerts;
mod cluster;
mod providers;
pub mod ranges;
mod rollouts;
mod routes;
mod server;

use alerts::validate_alerts;
use cluster::validate_cluster;
use providers::validate_provider;
use ranges::Bound;
use rollouts::validate_rollout;
use routes::validate_route;
use server::{validate_server, validate_shadow, validate_store};

pub(super) struct Collector {
    errors: Vec<ConfigError>,
    /// Numeric keys read that [`ranges::RANGES`] does not list (the table test keeps it empty).
    unlisted: Vec<String>,
    /// Rows of [`ranges::RANGES`] some key was checked against (the table test wants them all).
    used: BTreeSet<&'static str>,
}

impl Collector {
    fn new() -> Collector {
        Collector {
            errors: Vec::new(),
            unlisted: Vec::new(),
            used: BTreeSet::new(),
        }
    }

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

    /// The range of the key at `path` from [`ranges::RANGES`]; `fallback` for a key it does not
    /// list (noted for the table test).
    fn bound(&mut self, path: &str, fallback: Bound) -> Bound {
        match ranges::lookup(path) {
            Some(r) => {
                self.used.insert(r.key);
                r.bound
            }
            None => {
                self.unlisted.push(path.to_string());
                fallback
            }
        }
    }

    /// A duration within its range; `default` when absent or wrong (with the error collected).
    pub(super) fn duration(
        &mut self,
        path: &str,
        raw: Option<&str>,
        default: Duration,
    ) -> Duration {
        let Some(s) = raw else { return default };
        let bound = self.bound(path, ranges::FALLBACK_DURATION);
        match parse_duration(s) {
            Ok(d) if bound.contains_duration(d) => d,
            Ok(_) => {
                self.push(path, bound.requirement(), Some(s.to_string()));
                default
            }
            Err(e) => {
                self.push(path, e.to_string(), Some(s.to_string()));
                default
            }
        }
    }

    /// A whole number within its range; `default` when absent or out of range.
    pub(super) fn int(&mut self, path: &str, v: Option<u64>, default: u64) -> u64 {
        let Some(n) = v else { return default };
        let bound = self.bound(path, ranges::FALLBACK_COUNT);
        if bound.contains_u64(n) {
            n
        } else {
            self.push(path, bound.requirement(), Some(n.to_string()));
            default
        }
    }

    /// A count (at least 1 unless the table says otherwise) that sizes something in memory.
    pub(super) fn count(&mut self, path: &str, v: Option<u64>, default: usize) -> usize {
        let n = self.int(path, v, default as u64);
        usize::try_from(n).unwrap_or(default)
    }

    /// A real number within its range (`fallback` for a key the table does not list); `None`
    /// when absent or out of range.
    fn real(&mut self, path: &str, v: Option<f64>, fallback: Bound) -> Option<f64> {
        let x = v?;
        let bound = self.bound(path, fallback);
        if bound.contains_f64(x) {
            Some(x)
        } else {
            self.push(path, bound.requirement(), Some(x.to_string()));
            None
        }
    }

    pub(super) fn rate(&mut self, path: &str, v: Option<f64>, default: f64) -> f64 {
        self.real(path, v, ranges::RATE).unwrap_or(default)
    }

    pub(super) fn percent(&mut self, path: &str, v: Option<f64>) -> f64 {
        self.real(path, v, ranges::PERCENT).unwrap_or(0.0)
    }

    /// A positive finite number (at most the table's bound).
    pub(super) fn positive(&mut self, path: &str, v: Option<f64>) -> Option<f64> {
        let fallback = Bound::Real {
            min: 0.0,
            max: f64::MAX,
            min_open: true,
            max_open: false,
        };
        self.real(path, v, fallback)
    }

    /// A finite number of at least zero (at most the table's bound); `None` when absent or wrong.
    pub(super) fn non_negative(&mut self, path: &str, v: Option<f64>) -> Option<f64> {
        let fallback = Bound::Real {
            min: 0.0,
            max: f64::MAX,
            min_open: false,
            max_open: false,
        };
        self.real(path, v, fallback)
    }

    pub(super) fn open_unit(&mut self, path: &str, v: Option<f64>, default: f64) -> f64 {
        self.real(path, v, ranges::OPEN_UNIT).unwrap_or(default)
    }
}

/// Why a duration did not parse (the message names what is wrong, not the key path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("must be a duration with a unit, like \"30s\", \"5m\", \"24h\" or \"7d\"")]
    NoUnit,
    #[error("not a valid duration: {0}")]
    Invalid(String),
}

/// Parse a duration written with its unit: `"30s"`, `"5m"`, `"24h"`, `"7d"`, `"250ms"`.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    if t.is_empty() || t.chars().all(|c| c.is_ascii_digit()) {
        return Err(DurationError::NoUnit);
    }
    humantime::parse_duration(t).map_err(|e| DurationError::Invalid(e.to_string()))
}

pub(super) fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn validate_telemetry(c: &mut Collector, raw: RawTelemetry) -> TelemetryConfig {
    let d = TelemetryConfig::default();
    let otlp_endpoint = raw
        .otlp_endpoint
        .map(|u| u.trim_end_matches('/').to_string());
    if let Some(u) = &otlp_endpoint
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        c.push(
            "telemetry.otlp_endpoint",
            "must be an http:// or https:// URL (OTLP over HTTP)",
            Some(u.clone()),
        );
    }
    TelemetryConfig {
        otlp_endpoint,
        service_name: raw
            .service_name
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(d.service_name),
        queue_capacity: c.count(
            "telemetry.queue_capacity",
            raw.queue_capacity,
            d.queue_capacity,
        ),
        export_timeout: c.duration(
            "telemetry.export_timeout",
            raw.export_timeout.as_deref(),
            d.export_timeout,
        ),
    }
}

pub(super) fn load(text: &str) -> Result<Config, ConfigErrors> {
    load_collecting(text, &mut Collector::new())
}

/// An empty file (or only comments): no provider, no route, nothing to serve.
fn empty_file() -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        path: "(file)".into(),
        message: "the config is empty: it needs at least a [providers.NAME] and a \
                  [routes.NAME] (see examples/quickstart.toml)"
            .into(),
        got: None,
    }])
}

/// Parses the TOML; a syntax error is the only error reported (with its line).
fn parse_toml(text: &str) -> Result<toml::Table, ConfigErrors> {
    text.parse().map_err(|e: toml::de::Error| {
        let msg = e.message().to_string();
        let got = e.span().and_then(|s| text.get(s)).map(str::to_string);
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        let path = match line {
            Some(l) => format!("(line {l})"),
            None => "(file)".to_string(),
        };
        ConfigErrors(vec![ConfigError {
            path,
            message: format!("invalid TOML: {msg}"),
            got: got.filter(|g| !g.is_empty()),
        }])
    })
}

/// The file's top-level sections, each deserialized into its raw form (a section that does
/// not deserialize is reported and left at its default; a named entry that does not is `None`).
#[derive(Default)]
struct RawSections {
    server: RawServer,
    store: RawStore,
    shadow: RawShadow,
    refusals: RawRefusals,
    alerts: RawAlerts,
    outcomes: RawOutcomes,
    telemetry: RawTelemetry,
    cluster: super::cluster::RawCluster,
    providers: BTreeMap<String, Option<RawProvider>>,
    routes: BTreeMap<String, Option<RawRoute>>,
    rollouts: BTreeMap<String, Option<RawRollout>>,
}

/// Sorts the top-level table into [`RawSections`], reporting unknown sections and bad names.
fn read_sections(c: &mut Collector, table: toml::Table) -> RawSections {
    let mut raw = RawSections::default();
    for (key, value) in table {
        match key.as_str() {
            "server" => raw.server = c.de("server", value).unwrap_or_default(),
            "store" => raw.store = c.de("store", value).unwrap_or_default(),
            "shadow" => raw.shadow = c.de("shadow", value).unwrap_or_default(),
            "refusals" => raw.refusals = c.de("refusals", value).unwrap_or_default(),
            "alerts" => raw.alerts = c.de("alerts", value).unwrap_or_default(),
            "outcomes" => raw.outcomes = c.de("outcomes", value).unwrap_or_default(),
            "telemetry" => raw.telemetry = c.de("telemetry", value).unwrap_or_default(),
            "cluster" => raw.cluster = c.de("cluster", value).unwrap_or_default(),
            "providers" | "routes" | "rollouts" => read_named(c, &key, value, &mut raw),
            other => c.push(
                other,
                "unknown section (expected one of: server, store, providers, routes, rollouts, shadow, refusals, alerts, outcomes, telemetry, cluster)",
                None,
            ),
        }
    }
    raw
}

/// The entries of `[providers]`, `[routes]` or `[rollouts]` (`key`), each under its name.
fn read_named(c: &mut Collector, key: &str, value: toml::Value, raw: &mut RawSections) {
    let toml::Value::Table(entries) = value else {
        c.push(key, "must be a table", None);
        return;
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
        match key {
            "providers" => {
                let p = c.de(&path, v);
                raw.providers.insert(name, p);
            }
            "routes" => {
                let r = c.de(&path, v);
                raw.routes.insert(name, r);
            }
            _ => {
                let r = c.de(&path, v);
                raw.rollouts.insert(name, r);
            }
        }
    }
}

/// The refusal phrases: the defaults (or `phrases`) plus `extra_phrases`, lower-cased.
fn validate_refusals(refusals: RawRefusals) -> RefusalConfig {
    let phrases = refusals.phrases.unwrap_or_else(|| {
        DEFAULT_REFUSAL_PHRASES
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    RefusalConfig {
        phrases: Phrases::new(
            phrases
                .into_iter()
                .chain(refusals.extra_phrases.unwrap_or_default()),
        ),
    }
}

/// Every rollout, each on a route no other rollout uses.
fn validate_rollouts(
    c: &mut Collector,
    rollouts: BTreeMap<String, Option<RawRollout>>,
    routes: &BTreeMap<String, RouteConfig>,
    known_providers: &BTreeSet<String>,
) -> BTreeMap<String, RolloutConfig> {
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
        if let Some(r) = validate_rollout(c, &name, raw, routes, known_providers) {
            vrollouts.insert(name, r);
        }
    }
    vrollouts
}

fn load_collecting(text: &str, c: &mut Collector) -> Result<Config, ConfigErrors> {
    let table = parse_toml(text)?;
    if table.is_empty() {
        return Err(empty_file());
    }
    let raw = read_sections(c, table);
    let server = validate_server(c, raw.server);
    let store = validate_store(c, raw.store);
    let shadow = validate_shadow(c, raw.shadow);
    let alerts = validate_alerts(c, raw.alerts);
    let outcomes = OutcomesConfig {
        max_age: c.duration(
            "outcomes.max_age",
            raw.outcomes.max_age.as_deref(),
            OutcomesConfig::default().max_age,
        ),
    };
    let refusals = validate_refusals(raw.refusals);

    let known_providers: BTreeSet<String> = raw.providers.keys().cloned().collect();
    let providers: BTreeMap<String, ProviderConfig> = raw
        .providers
        .into_iter()
        .filter_map(|(name, raw)| {
            let p = validate_provider(c, &name, raw?)?;
            Some((name, p))
        })
        .collect();

    let mut routes = BTreeMap::new();
    for (name, raw) in raw.routes {
        let Some(raw) = raw else { continue };
        let route = validate_route(c, &name, raw, &known_providers, &providers);
        routes.insert(name, route);
    }
    let rollouts = validate_rollouts(c, raw.rollouts, &routes, &known_providers);

    let telemetry = validate_telemetry(c, raw.telemetry);
    let cluster = validate_cluster(c, raw.cluster);
    if c.errors.is_empty() {
        Ok(Config {
            server,
            store,
            providers,
            routes,
            rollouts,
            shadow,
            refusals,
            alerts,
            outcomes,
            telemetry,
            cluster,
        })
    } else {
        Err(ConfigErrors(std::mem::take(&mut c.errors)))
    }
}
