//! Configuration: the TOML file parsed into [`raw`] structs, then validated into [`Config`].
//!
//! Invariants of a validated [`Config`]: every variant names a declared provider (and, for a
//! `mock` provider, a declared model); every route's baseline is one of its variants; every
//! rollout names a declared route and a candidate variant other than the baseline, and has at
//! least one stage with percents in [0, 100]. Loading never stops at the first mistake: every
//! problem is collected as a [`ConfigError`] naming its key path and the offending value.

pub mod cluster;
pub mod raw;
mod validate;
pub mod warnings;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use validate::{DurationError, parse_duration, ranges};
pub use warnings::{ConfigWarning, warnings};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path, e.g. `rollouts.support-v2.stages[2].percent`.
    pub path: String,
    pub message: String,
    /// The offending value as written, when there is one.
    pub got: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.got {
            Some(got) => write!(f, "{}: {} (got `{}`)", self.path, self.message, got),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Every problem found in a config file, in file order as far as possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub routes: BTreeMap<String, RouteConfig>,
    pub rollouts: BTreeMap<String, RolloutConfig>,
    pub shadow: ShadowConfig,
    pub refusals: RefusalConfig,
    pub alerts: AlertsConfig,
    pub outcomes: OutcomesConfig,
    pub telemetry: TelemetryConfig,
    /// `[cluster]`: replicas sharing PostgreSQL.
    pub cluster: cluster::ClusterConfig,
}

/// `[telemetry]`: where OpenTelemetry traces go (OTLP over HTTP, protobuf). Without an
/// endpoint no span is made.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP collector (`…/v1/traces` is appended), e.g.
    /// `http://localhost:4318`.
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
    /// Finished spans waiting for export; past it a span is dropped and counted.
    pub queue_capacity: usize,
    pub export_timeout: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: "rampart".into(),
            queue_capacity: 2048,
            export_timeout: Duration::from_secs(10),
        }
    }
}

/// `[outcomes]`: slow business signals posted to `POST /v1/outcomes`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomesConfig {
    /// An outcome about a request served longer ago than this is refused (default 30 days).
    pub max_age: Duration,
}

impl Default for OutcomesConfig {
    fn default() -> Self {
        OutcomesConfig {
            max_age: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// `[[rollouts.R.slow_signals]]`: a slow gate on a business outcome (see
/// `rampart_core::rollout::slow_signals`).
#[derive(Debug, Clone, PartialEq)]
pub struct SlowSignalConfig {
    /// The outcome's `name` in `POST /v1/outcomes` (e.g. `csat`).
    pub name: String,
    /// `false` for outcomes where more is worse (refunds, escalations).
    pub higher_is_better: bool,
    /// The tolerated drop of the canary against the control.
    pub threshold: SlowThreshold,
    /// How long the breach must hold at every check before the action is taken.
    pub sustain: Duration,
    pub check_interval: Duration,
    /// Outcomes each cohort needs before the signal is tested.
    pub min_samples: u64,
    pub action: SlowAction,
    /// Error level of the anytime-valid interval (two-sided).
    pub alpha: f64,
}

/// How much worse the canary may be before a slow signal breaches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SlowThreshold {
    /// `max_decrease`: in the outcome's own units.
    Absolute(f64),
    /// `max_relative_decrease`: a fraction of the control's mean.
    Relative(f64),
}

/// What a sustained slow-signal breach does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlowAction {
    /// Hold the canary at 0 % (shadow continues) until a human resumes.
    Pin,
    /// Roll back, as the kill switch does.
    Rollback,
}

/// Where alerts go. URLs and keys may be read from env vars (`url_env`, `routing_key_env`) at
/// start-up; a named variable that is unset is a start-up error, not a silent drop.
#[derive(Debug, Clone, Default)]
pub struct AlertsConfig {
    pub sinks: Vec<AlertSink>,
    /// Attempts per alert and sink (with exponential backoff between them).
    pub max_attempts: u32,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SecretSource {
    Value(String),
    Env(String),
}

impl SecretSource {
    /// The value, reading the environment when it names a variable.
    pub fn resolve(&self) -> Option<String> {
        match self {
            SecretSource::Value(v) => Some(v.clone()),
            SecretSource::Env(var) => std::env::var(var).ok().filter(|v| !v.is_empty()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlertSink {
    /// Slack-compatible incoming webhook (`{"text": …}`).
    Slack { url: SecretSource },
    /// PagerDuty Events API v2: trigger with a dedup key per rollout, resolve on recovery.
    PagerDuty {
        url: String,
        routing_key: SecretSource,
    },
    /// Generic JSON webhook: the alert as JSON.
    Webhook { url: SecretSource },
    /// Opsgenie Alert API v2: create with an alias per rollout, close it on recovery.
    /// `url` is the API base (`https://api.opsgenie.com` or `https://api.eu.opsgenie.com`).
    Opsgenie { url: String, api_key: SecretSource },
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Name of the env var holding the admin bearer token. Without one, admin is loopback-only.
    /// A named variable that is unset or empty at start-up is a start-up error.
    pub admin_token_env: Option<String>,
    /// `server.admin_allow_unauthenticated`: the operator accepts a `listen` beyond loopback with
    /// no admin token (the admin API still answers loopback clients only, which behind a proxy
    /// on the same host means everyone the proxy lets through).
    pub admin_allow_unauthenticated: bool,
    pub max_body_bytes: usize,
    /// How long in-flight requests get to finish after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
    /// What one chat request may cost besides its size (`max_messages`, `max_json_depth`).
    pub limits: crate::request::Limits,
    /// Connection hygiene against slow or idle clients (slowloris).
    pub connections: ConnectionLimits,
}

/// How long a client may take, and how many connections it may hold. A connection past a
/// timeout is closed; one past the cap waits in the kernel's accept backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From the moment a connection waits for a request (at accept, or after the previous
    /// response) to the end of that request's headers. An idle keep-alive connection is closed
    /// after it too.
    pub header_read_timeout: Duration,
    /// To read a whole request body, once its headers are in.
    pub body_read_timeout: Duration,
    /// Most client connections open at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(15),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1_024,
        }
    }
}

#[derive(Debug, Clone)]
pub enum StoreKind {
    Sqlite {
        path: PathBuf,
    },
    /// PostgreSQL, for several replicas. The URL is read from the environment when the store is
    /// opened, never from the file.
    Postgres {
        /// Name of the environment variable holding the connection URL.
        url_env: String,
        /// Connections the store keeps open, at most.
        pool_size: usize,
        /// Events, pairs and feedback older than this are dropped, a whole day's partition at a
        /// time (so up to a day more is kept).
        retention: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    // Defaults: [`StoreConfig::DEFAULT_QUEUE_CAPACITY`] and the two below, the one place the
    // config and the writer's `Default` take them from.
    pub kind: StoreKind,
    /// Keep prompt and answer text in pairs; when false only a hash of the prompt is kept.
    pub capture_text: bool,
    /// Capacity of the bounded queue between the request path and the batch writer.
    pub queue_capacity: usize,
    pub batch_size: usize,
    pub flush_interval: Duration,
    /// With `capture_text` on, every match of these patterns is replaced by `[REDACTED]` in
    /// stored text (prompts, answers, tool calls, tools, feedback).
    pub redact: Vec<regex::Regex>,
}

impl StoreConfig {
    /// `store.queue_capacity` when unset.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;
    /// `store.batch_size` when unset.
    pub const DEFAULT_BATCH_SIZE: usize = 512;
    /// `store.flush_interval` when unset.
    pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(200);
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
}

#[derive(Debug, Clone)]
pub enum ProviderKind {
    OpenAi(OpenAiProvider),
    AzureOpenAi(AzureOpenAiProvider),
    Anthropic(AnthropicProvider),
    Mock(MockProvider),
}

impl ProviderKind {
    /// The `type` as written in the config.
    pub fn type_name(&self) -> &'static str {
        match self {
            ProviderKind::OpenAi(_) => "openai",
            ProviderKind::AzureOpenAi(_) => "azure_openai",
            ProviderKind::Anthropic(_) => "anthropic",
            ProviderKind::Mock(_) => "mock",
        }
    }
}

/// What every HTTP provider shares: timeouts, the connection pool and retries.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Whole answer of a non-streamed call (each attempt; retries stay within it too).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Streams: from sending the request to the first event.
    pub first_byte_timeout: Duration,
    /// Streams: longest silence between two events once the stream has started.
    pub idle_timeout: Duration,
    pub max_idle_per_host: usize,
    /// Extra attempts after a retryable failure (connect error, 429, 500, 502, 503, 529).
    pub retries: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            max_idle_per_host: 64,
            retries: 2,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    /// Base URL without a trailing slash, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key_env: Option<String>,
    pub http: HttpSettings,
}

/// Azure OpenAI: `{endpoint}/openai/deployments/{model}/chat/completions?api-version=…`,
/// key in the `api-key` header; a variant's `model` is the deployment name.
#[derive(Debug, Clone)]
pub struct AzureOpenAiProvider {
    /// Resource endpoint without a trailing slash, e.g. `https://my-res.openai.azure.com`.
    pub endpoint: String,
    pub api_version: String,
    pub api_key_env: Option<String>,
    pub http: HttpSettings,
}

/// Anthropic's native Messages API (`POST {base_url}/v1/messages`).
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    /// Without a trailing slash; default `https://api.anthropic.com`.
    pub base_url: String,
    pub api_key_env: Option<String>,
    /// The `anthropic-version` header; default `2023-06-01`.
    pub anthropic_version: String,
    pub http: HttpSettings,
}

#[derive(Debug, Clone)]
pub struct MockProvider {
    pub seed: u64,
    pub models: BTreeMap<String, MockModel>,
}

/// Register of a simulated answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    Casual,
    Formal,
    Terse,
}

impl Style {
    pub const ALL: [Style; 3] = [Style::Casual, Style::Formal, Style::Terse];

    pub fn as_str(self) -> &'static str {
        match self {
            Style::Casual => "casual",
            Style::Formal => "formal",
            Style::Terse => "terse",
        }
    }
}

/// A lognormal latency given by its median and 95th percentile, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySpec {
    pub median_ms: f64,
    pub p95_ms: f64,
}

/// Behaviour of one simulated model (or of one prompt class of it).
#[derive(Debug, Clone, PartialEq)]
pub struct MockBehaviour {
    pub style: Style,
    pub latency: LatencySpec,
    pub error_rate: f64,
    pub refusal_rate: f64,
    pub length_factor: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MockModel {
    pub base: MockBehaviour,
    /// Per prompt class (from `x-rampart-class`), the base with the override's fields applied.
    pub overrides: BTreeMap<String, MockBehaviour>,
    /// As a judge: probability of answering "the first one" whatever the answers.
    pub position_bias: f64,
    /// Share of calls that hang: no status, no byte, until the caller gives up (the simulator
    /// closes them after [`MockModel::HANG_FOR`]). For fault drills and soak tests.
    pub hang_rate: f64,
}

impl MockModel {
    /// How long a hanging call stays silent before the simulator closes it.
    pub const HANG_FOR: Duration = Duration::from_secs(600);
    /// The behaviour for a prompt class, falling back to the model's base behaviour.
    pub fn behaviour(&self, class: Option<&str>) -> &MockBehaviour {
        class
            .and_then(|c| self.overrides.get(c))
            .unwrap_or(&self.base)
    }
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    pub baseline: String,
    /// Shared, so the request path hands a variant on without copying it.
    pub variants: BTreeMap<String, Arc<VariantConfig>>,
}

impl RouteConfig {
    pub fn baseline_variant(&self) -> Option<&VariantConfig> {
        self.variants.get(&self.baseline).map(Arc::as_ref)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemPromptMode {
    /// Put the variant's system prompt first and keep the client's system messages.
    Prepend,
    /// Drop the client's system messages and use only the variant's.
    Replace,
}

#[derive(Debug, Clone)]
pub struct VariantConfig {
    pub name: String,
    pub provider: String,
    pub model: String,
    pub prompt_version: Option<String>,
    pub system_prompt: Option<String>,
    pub system_prompt_mode: SystemPromptMode,
    /// Request parameters the variant pins (temperature, max_tokens, …); they override the client's.
    pub params: serde_json::Map<String, serde_json::Value>,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
}

impl VariantConfig {
    /// Cost in USD of a call with these token counts.
    pub fn cost_usd(&self, prompt_tokens: u64, completion_tokens: u64) -> f64 {
        (prompt_tokens as f64 * self.input_usd_per_mtok
            + completion_tokens as f64 * self.output_usd_per_mtok)
            / 1e6
    }
}

#[derive(Debug, Clone)]
pub struct StageConfig {
    pub name: String,
    /// Share of keyed users served by the candidate, in percent.
    pub percent: f64,
    /// Share of keyed users whose requests are mirrored to the candidate, in percent.
    pub shadow_percent: f64,
    pub min_duration: Duration,
    pub max_duration: Option<Duration>,
    pub gates: GatesConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardrailMode {
    /// Anytime-valid sequential tests: safe to check continuously.
    Sequential,
    /// Plain threshold comparison on the window's point estimates.
    Threshold,
}

#[derive(Debug, Clone)]
pub struct GuardrailsConfig {
    pub mode: GuardrailMode,
    pub window: Duration,
    pub check_interval: Duration,
    pub error_rate_max: Option<f64>,
    pub p95_latency_max_ratio: Option<f64>,
    pub refusal_rate_max_increase: Option<f64>,
    pub thumbs_down_max_ratio: Option<f64>,
    pub alpha: f64,
    pub min_exposure: u64,
    pub catastrophic_error_rate: f64,
    pub catastrophic_min_requests: u64,
    /// User-defined guardrails, in file order (names unique and distinct from the built-ins).
    pub custom: Vec<CustomGuardrail>,
}

/// A per-request metric rampart records, which a custom guardrail can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedMetric {
    /// Whole-request latency (successful requests).
    LatencyMs,
    /// Time to the first content token (streamed, successful requests).
    TtftMs,
    PromptTokens,
    CompletionTokens,
    /// `prompt_tokens × input price + completion_tokens × output price` (answered requests).
    CostUsd,
    /// 1 for a failed request (upstream error, timeout), else 0 (every request).
    Error,
    /// 1 for an answer classified as a refusal, else 0 (every request).
    Refusal,
}

impl RecordedMetric {
    pub const ALL: [RecordedMetric; 7] = [
        RecordedMetric::LatencyMs,
        RecordedMetric::TtftMs,
        RecordedMetric::PromptTokens,
        RecordedMetric::CompletionTokens,
        RecordedMetric::CostUsd,
        RecordedMetric::Error,
        RecordedMetric::Refusal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordedMetric::LatencyMs => "latency_ms",
            RecordedMetric::TtftMs => "ttft_ms",
            RecordedMetric::PromptTokens => "prompt_tokens",
            RecordedMetric::CompletionTokens => "completion_tokens",
            RecordedMetric::CostUsd => "cost_usd",
            RecordedMetric::Error => "error",
            RecordedMetric::Refusal => "refusal",
        }
    }

    pub fn parse(s: &str) -> Option<RecordedMetric> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether the metric is a 0/1 indicator (tested as a proportion).
    pub fn is_binary(self) -> bool {
        matches!(self, RecordedMetric::Error | RecordedMetric::Refusal)
    }

    /// The resolution a value is known to (1 ms, 1 token, 1 µUSD): the kill switch floors each
    /// cohort's variance at `resolution²/12`, the variance of rounding to it, so a metric that
    /// is constant in the window (a longer system prompt adds the same tokens to every request)
    /// is still testable.
    pub fn resolution(self) -> f64 {
        match self {
            RecordedMetric::CostUsd => 1e-6,
            _ => 1.0,
        }
    }
}

/// When a custom guardrail trips (canary mean `m_t`, control mean `m_c`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomRule {
    /// `m_t − m_c > max_increase`.
    MaxIncrease(f64),
    /// `m_t > max_ratio × m_c`, tested as `m_t − max_ratio·m_c > 0`.
    MaxRatio(f64),
}

impl CustomRule {
    /// `(k, margin)` of the tested quantity `m_t − k·m_c > margin`.
    pub fn factor_and_margin(self) -> (f64, f64) {
        match self {
            CustomRule::MaxIncrease(x) => (1.0, x),
            CustomRule::MaxRatio(k) => (k, 0.0),
        }
    }
}

/// `[[rollouts.R.guardrails.custom]]`: a user-defined guardrail on one recorded metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomGuardrail {
    /// Unique within the rollout; names the guardrail in reports, alerts and audit records.
    pub name: String,
    pub metric: RecordedMetric,
    pub rule: CustomRule,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GatesConfig {
    pub mde: f64,
    pub alpha: f64,
    pub power: f64,
    pub min_equivalence: f64,
    pub min_win_rate: Option<f64>,
    /// Pairs a prompt class (or tenant) needs in the comparison report before any of its
    /// metrics is tested or flagged; fewer are shown as "too few pairs". Also the per-class
    /// refusal check of the shadow gate.
    pub min_class_pairs: u64,
}

#[derive(Debug, Clone)]
pub struct RolloutConfig {
    pub name: String,
    pub route: String,
    pub candidate: String,
    /// Salt of the sticky bucket; defaults to the rollout's name.
    pub salt: String,
    pub stages: Vec<StageConfig>,
    pub guardrails: GuardrailsConfig,
    pub gates: GatesConfig,
    /// Per tenant, the highest canary percent its users may see.
    pub tenants: BTreeMap<String, f64>,
    pub keep_baseline_warm: Duration,
    pub cooldown: Duration,
    /// When the candidate fails a canary user's request before the first byte, answer from the
    /// baseline instead (marked `x-rampart-fallback: candidate-error`); the failure still counts
    /// as the candidate's.
    pub fallback_to_baseline: bool,
    /// LLM-as-judge on shadow pairs; `None` when not configured.
    pub judge: Option<JudgeConfig>,
    /// Embedding similarity of shadow pairs; `None` when not configured.
    pub embeddings: Option<EmbeddingsConfig>,
    /// Slow gates on business outcomes, in file order (names unique).
    pub slow_signals: Vec<SlowSignalConfig>,
}

/// `[rollouts.R.embeddings]`: an OpenAI-compatible embeddings model that embeds both answers of
/// each shadow pair; their cosine is the pair's `embedding_similarity`, and a cosine of at least
/// 0.90 makes two differently worded answers `equivalent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsConfig {
    /// A provider name (`type = "openai"` calls `{base_url}/embeddings`; `type = "mock"` answers
    /// in process).
    pub provider: String,
    pub model: String,
}

/// `[rollouts.R.judge]`: a variant of the rollout's route judges a sample of shadow pairs, each
/// twice with the answers' positions swapped (see `rampart_core::compare::judge`).
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeConfig {
    /// The judging variant (its provider, model and parameters).
    pub variant: String,
    /// Percent of shadow pairs judged (by request id, deterministic).
    pub sample_percent: f64,
    /// No judge call starts once today's (UTC) judge spend reached this.
    pub max_cost_usd_per_day: f64,
    /// Pairs being judged at once; a pair past this is not judged (counted, never queued).
    pub max_in_flight: usize,
    /// Per judge call.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ShadowConfig {
    /// Shadow calls running at once; a call past this is skipped and counted, never queued.
    pub max_in_flight: usize,
    pub timeout: Duration,
    pub max_cost_usd_per_day: Option<f64>,
    pub max_tokens_per_day: Option<u64>,
    pub cache_ttl: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct RefusalConfig {
    /// Lower-cased phrases whose presence marks an answer as a refusal.
    pub phrases: crate::refusal::Phrases,
}

/// Phrases that mark a refusal when no list is configured.
pub const DEFAULT_REFUSAL_PHRASES: &[&str] = &[
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i'm unable to help",
    "i am unable to help",
    "i'm not able to help",
    "i am not able to help",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "i won't be able to help",
    "i must decline",
];

impl Config {
    /// Parse and validate TOML text; `Err` lists every problem found.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigErrors> {
        validate::load(text)
    }

    /// Read, parse and validate a config file.
    pub fn from_path(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                path: path.display().to_string(),
                message: format!("cannot read config file: {e}"),
                got: None,
            }])
        })?;
        Self::from_toml_str(&text)
    }

    /// The rollout acting on a route, if any.
    pub fn rollout_for_route(&self, route: &str) -> Option<&RolloutConfig> {
        self.rollouts.values().find(|r| r.route == route)
    }
}
