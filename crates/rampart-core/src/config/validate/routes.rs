//! `[routes.NAME]`: the route's baseline and its variants (provider, model, prompt, params, prices).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::Collector;
use crate::config::raw::*;
use crate::config::*;

pub(super) fn toml_to_json(v: toml::Value) -> serde_json::Value {
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

pub(super) fn validate_route(
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
        check_provider(c, &vpath, &v, known_providers, providers);
        let variant = validate_variant(c, &vpath, vname.clone(), v);
        variants.insert(vname, Arc::new(variant));
    }
    RouteConfig {
        name: name.to_string(),
        baseline: raw.baseline,
        variants,
    }
}

/// A variant's provider is declared and, for a mock provider, declares the variant's model.
fn check_provider(
    c: &mut Collector,
    vpath: &str,
    v: &RawVariant,
    known_providers: &BTreeSet<String>,
    providers: &BTreeMap<String, ProviderConfig>,
) {
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
}

/// One variant: its system prompt mode, its pinned params (not the reserved ones) and prices.
fn validate_variant(c: &mut Collector, vpath: &str, name: String, v: RawVariant) -> VariantConfig {
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
    let mut price =
        |key: &str, p: Option<f64>| c.non_negative(&format!("{vpath}.{key}"), p).unwrap_or(0.0);
    let input = price("input_usd_per_mtok", v.input_usd_per_mtok);
    let output = price("output_usd_per_mtok", v.output_usd_per_mtok);
    VariantConfig {
        name,
        provider: v.provider,
        model: v.model,
        prompt_version: v.prompt_version,
        system_prompt: v.system_prompt,
        system_prompt_mode: mode,
        params,
        input_usd_per_mtok: input,
        output_usd_per_mtok: output,
    }
}
