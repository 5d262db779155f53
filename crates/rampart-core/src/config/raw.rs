//! The config file as written: `Raw*` structs that mirror the TOML one to one.
//!
//! Every struct denies unknown keys. Durations and addresses stay strings here; `validate`
//! turns them into typed values and reports every problem with its key path.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub admin_token_env: Option<String>,
    pub admin_allow_unauthenticated: Option<bool>,
    pub max_body_bytes: Option<u64>,
    pub shutdown_grace: Option<String>,
    pub request_timeout: Option<String>,
    pub max_messages: Option<u64>,
    pub max_json_depth: Option<u64>,
    pub header_read_timeout: Option<String>,
    pub body_read_timeout: Option<String>,
    pub max_connections: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub pool_size: Option<u64>,
    pub retention: Option<String>,
    pub capture_text: Option<bool>,
    pub queue_capacity: Option<u64>,
    pub batch_size: Option<u64>,
    pub flush_interval: Option<String>,
    pub redact: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    #[serde(rename = "type")]
    pub kind: String,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    pub timeout: Option<String>,
    pub connect_timeout: Option<String>,
    pub first_byte_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_idle_per_host: Option<u64>,
    pub retries: Option<u64>,
    /// `azure_openai`: the resource endpoint and `api-version`.
    pub endpoint: Option<String>,
    pub api_version: Option<String>,
    /// `anthropic`: the `anthropic-version` header.
    pub anthropic_version: Option<String>,
    pub seed: Option<u64>,
    #[serde(default)]
    pub models: BTreeMap<String, RawMockModel>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLatency {
    pub median: f64,
    pub p95: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMockModel {
    pub style: Option<String>,
    pub latency_ms: Option<RawLatency>,
    pub error_rate: Option<f64>,
    pub refusal_rate: Option<f64>,
    pub length_factor: Option<f64>,
    /// As a judge: probability of preferring whichever answer is shown first.
    pub position_bias: Option<f64>,
    /// Share of calls that get no answer at all (the connection stays open, silent).
    pub hang_rate: Option<f64>,
    #[serde(default)]
    pub overrides: Vec<RawMockOverride>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMockOverride {
    pub class: String,
    pub style: Option<String>,
    pub latency_ms: Option<RawLatency>,
    pub error_rate: Option<f64>,
    pub refusal_rate: Option<f64>,
    pub length_factor: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub baseline: String,
    #[serde(default)]
    pub variants: BTreeMap<String, RawVariant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariant {
    pub provider: String,
    pub model: String,
    pub prompt_version: Option<String>,
    pub system_prompt: Option<String>,
    pub system_prompt_mode: Option<String>,
    #[serde(default)]
    pub params: toml::Table,
    pub input_usd_per_mtok: Option<f64>,
    pub output_usd_per_mtok: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRollout {
    pub route: String,
    pub candidate: String,
    pub salt: Option<String>,
    #[serde(default)]
    pub stages: Vec<RawStage>,
    #[serde(default)]
    pub guardrails: RawGuardrails,
    #[serde(default)]
    pub gates: RawGates,
    #[serde(default)]
    pub tenants: BTreeMap<String, RawTenant>,
    pub keep_baseline_warm: Option<String>,
    pub cooldown: Option<String>,
    pub fallback_to_baseline: Option<bool>,
    pub judge: Option<RawJudge>,
    pub embeddings: Option<RawEmbeddings>,
    #[serde(default)]
    pub slow_signals: Vec<RawSlowSignal>,
}

/// `[[rollouts.R.slow_signals]]`: a business outcome posted later (`POST /v1/outcomes`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlowSignal {
    pub name: String,
    pub higher_is_better: Option<bool>,
    pub max_decrease: Option<f64>,
    pub max_relative_decrease: Option<f64>,
    pub sustain: Option<String>,
    pub check_interval: Option<String>,
    pub min_samples: Option<u64>,
    pub action: Option<String>,
    pub alpha: Option<f64>,
}

/// `[outcomes]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutcomes {
    pub max_age: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmbeddings {
    pub provider: String,
    pub model: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJudge {
    pub variant: String,
    pub sample_percent: Option<f64>,
    pub max_cost_usd_per_day: Option<f64>,
    pub max_in_flight: Option<u64>,
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub name: String,
    pub percent: Option<f64>,
    pub shadow_percent: Option<f64>,
    pub min_duration: Option<String>,
    pub max_duration: Option<String>,
    pub gates: Option<RawGates>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuardrails {
    pub mode: Option<String>,
    pub window: Option<String>,
    pub check_interval: Option<String>,
    pub error_rate_max: Option<f64>,
    pub p95_latency_max_ratio: Option<f64>,
    pub refusal_rate_max_increase: Option<f64>,
    pub thumbs_down_max_ratio: Option<f64>,
    pub alpha: Option<f64>,
    pub min_exposure: Option<u64>,
    pub catastrophic_error_rate: Option<f64>,
    pub catastrophic_min_requests: Option<u64>,
    /// `[[rollouts.R.guardrails.custom]]`: user-defined guardrails on a recorded metric.
    #[serde(default)]
    pub custom: Vec<RawCustomGuardrail>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCustomGuardrail {
    pub name: String,
    pub metric: String,
    pub max_increase: Option<f64>,
    pub max_ratio: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGates {
    pub mde: Option<f64>,
    pub alpha: Option<f64>,
    pub power: Option<f64>,
    pub min_equivalence: Option<f64>,
    pub min_win_rate: Option<f64>,
    pub min_class_pairs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenant {
    pub max_percent: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShadow {
    pub max_in_flight: Option<u64>,
    pub timeout: Option<String>,
    pub max_cost_usd_per_day: Option<f64>,
    pub max_tokens_per_day: Option<u64>,
    pub cache_ttl: Option<String>,
}

/// `[telemetry]`: OpenTelemetry traces.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    pub otlp_endpoint: Option<String>,
    pub service_name: Option<String>,
    pub queue_capacity: Option<u64>,
    pub export_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRefusals {
    pub phrases: Option<Vec<String>>,
    pub extra_phrases: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub max_attempts: Option<u32>,
    pub timeout: Option<String>,
    #[serde(default)]
    pub slack: Vec<RawAlertSink>,
    #[serde(default)]
    pub pagerduty: Vec<RawAlertSink>,
    #[serde(default)]
    pub webhook: Vec<RawAlertSink>,
    #[serde(default)]
    pub opsgenie: Vec<RawOpsgenie>,
}

/// `[[alerts.opsgenie]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpsgenie {
    pub api_key: Option<String>,
    pub api_key_env: Option<String>,
    /// `us` (default) or `eu`.
    pub region: Option<String>,
    /// Base URL overriding the region's (a proxy, or a stand-in in tests).
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlertSink {
    pub url: Option<String>,
    pub url_env: Option<String>,
    /// PagerDuty only.
    pub routing_key: Option<String>,
    pub routing_key_env: Option<String>,
}
