//! LLM providers: where a variant's calls go.
//!
//! A [`Provider`] takes an OpenAI chat-completions body (already rewritten for the variant)
//! and returns either the whole JSON answer or a stream of `chat.completion.chunk` objects.
//! Failures are classified so the edge can answer 502 (unreachable), 504 (timeout) or pass
//! the upstream status through.

pub mod anthropic;
pub mod guard;
pub mod mock;
pub mod openai;
pub mod retry;
pub mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::BoxStream;
use rampart_core::config::{Config, ProviderKind};
use rampart_core::request::{Answer, ChunkFields};
use serde_json::Value;

use crate::error::ApiError;

/// What a provider answered.
pub enum Reply {
    /// The whole answer.
    Json(Completion),
    /// Chunks as they arrive; the stream ends after the last one (`[DONE]` is not included).
    Stream(Chunks),
}

/// A streamed answer's chunks.
pub type Chunks = BoxStream<'static, Result<Chunk, ProviderError>>;

/// One `chat.completion.chunk`: the JSON text the client gets, as the provider sent it
/// (`openai`) or serialised once (translated or simulated chunks), and what rampart read from
/// it. The relay forwards the text and never re-encodes it.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The chunk's JSON text, sharing the bytes it arrived in.
    pub json: bytes_utils::Str,
    pub fields: ChunkFields,
}

impl Chunk {
    /// A chunk an upstream sent, read from its text without building a tree. Text the fast
    /// reader refuses is read again as a tree, so the verdict is the tree's: a provider error
    /// when it is not JSON, an error event (`{"error": …}`) as the upstream's error status.
    pub fn from_json(json: bytes_utils::Str) -> Result<Chunk, ProviderError> {
        let fields = match ChunkFields::from_json(&json) {
            Ok(f) if !f.error => f,
            _ => {
                let v: Value = serde_json::from_str(&json).map_err(|err| {
                    ProviderError::Invalid(format!(
                        "the provider sent a stream event that is not valid JSON: {err}"
                    ))
                })?;
                if v.get("error").is_some_and(|e| !e.is_null()) {
                    return Err(ProviderError::Status {
                        status: 502,
                        body: v,
                        retry_after: None,
                    });
                }
                ChunkFields::from_value(&v)
            }
        };
        Ok(Chunk { json, fields })
    }

    /// A chunk rampart built (translated from another format, or simulated).
    pub fn from_value(v: &Value) -> Chunk {
        Chunk {
            json: v.to_string().into(),
            fields: ChunkFields::from_value(v),
        }
    }
}

/// A whole `chat.completion`: the body the client gets, byte for byte as the provider sent it
/// (`openai`) or serialised once (translated or simulated answers), and what rampart read from
/// it. No JSON tree of the answer is kept.
pub struct Completion {
    pub body: bytes::Bytes,
    pub answer: Answer,
}

impl Completion {
    /// An upstream's answer, read from its bytes without building a tree. A body the fast
    /// reader refuses is read again as a tree, so the error (or, for an answer the tree reader
    /// takes, such as one with a duplicate key, the answer) is the same as the tree's.
    pub fn from_bytes(body: bytes::Bytes) -> Result<Completion, ProviderError> {
        if let Ok(answer) = Answer::from_completion_json(&body) {
            return Ok(Completion { body, answer });
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            ProviderError::Invalid(format!("the provider's answer is not valid JSON: {e}"))
        })?;
        transport::expect_array(&v, "choices", "a chat completion")?;
        Ok(Completion {
            answer: Answer::from_completion(&v),
            body,
        })
    }

    /// An answer rampart built (translated from another format, or simulated).
    pub fn from_value(v: &Value) -> Completion {
        Completion {
            body: bytes::Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            answer: Answer::from_completion(v),
        }
    }
}

/// Why the providers could not be built at start-up.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("providers.{provider}.api_key_env: environment variable {var} is not set")]
    MissingKey { provider: String, var: String },
    #[error("providers.{provider}: cannot build HTTP client: {message}")]
    Client { provider: String, message: String },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("connection failed: {0}")]
    Connect(String),
    /// The provider answered an error status; `retry_after` is its `Retry-After` header.
    #[error("status {status}")]
    Status {
        status: u16,
        body: Value,
        retry_after: Option<String>,
    },
    #[error("invalid answer: {0}")]
    Invalid(String),
    /// The request uses something this provider cannot do (a 400 naming the field).
    #[error("{0}")]
    Unsupported(String),
}

impl ProviderError {
    /// A short description for pairs and logs.
    pub fn describe(&self) -> String {
        match self {
            ProviderError::Status { status, body, .. } => {
                let msg = body
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                format!("status {status}: {msg}")
            }
            ProviderError::Timeout(_) => "timeout".to_string(),
            other => other.to_string(),
        }
    }
}

impl From<ProviderError> for ApiError {
    fn from(e: ProviderError) -> ApiError {
        match e {
            ProviderError::Timeout(d) => ApiError::UpstreamTimeout(d),
            ProviderError::Connect(m) => ApiError::UpstreamUnreachable(m),
            ProviderError::Status {
                status,
                body,
                retry_after,
            } => ApiError::Upstream {
                status,
                body,
                retry_after,
            },
            ProviderError::Invalid(m) => ApiError::UpstreamInvalid(m),
            ProviderError::Unsupported(m) => ApiError::BadRequest(m),
        }
    }
}

/// One configured provider.
#[derive(Clone)]
pub enum Provider {
    /// A provider over HTTP, with retries.
    Remote(Arc<Remote>),
    Mock(Arc<rampart_mock::Simulator>),
}

/// The wire format a remote provider speaks.
pub enum Api {
    /// OpenAI's, on OpenAI's URL scheme or Azure's.
    OpenAi(openai::OpenAiClient),
    /// Anthropic's Messages API, translated both ways.
    Anthropic(anthropic::AnthropicClient),
}

pub struct Remote {
    pub name: String,
    pub api: Api,
    retries: retry::RetryCounter,
}

impl Remote {
    fn http(&self) -> &rampart_core::config::HttpSettings {
        match &self.api {
            Api::OpenAi(c) => &c.http,
            Api::Anthropic(c) => &c.http,
        }
    }

    async fn chat(
        &self,
        body: &bytes::Bytes,
        class: Option<&str>,
        stream: bool,
    ) -> Result<Reply, ProviderError> {
        let http = self.http();
        let budget = if stream {
            http.first_byte_timeout
        } else {
            http.timeout
        };
        let policy = retry::Policy {
            provider: &self.name,
            retries: http.retries,
            counter: &self.retries,
        };
        // Anthropic's translation reads the request as JSON; it is parsed once, before retries.
        let json = match &self.api {
            Api::Anthropic(_) => Some(serde_json::from_slice::<Value>(body).map_err(|e| {
                ProviderError::Unsupported(format!("the request is not valid JSON: {e}"))
            })?),
            Api::OpenAi(_) => None,
        };
        let json = &json;
        retry::run(policy, Instant::now() + budget, |deadline| async move {
            match (&self.api, json) {
                (Api::Anthropic(c), Some(v)) => c.chat_once(v, class, stream, deadline).await,
                (Api::Anthropic(_), None) => Err(ProviderError::Invalid("no request".into())),
                (Api::OpenAi(c), _) => c.chat_once(body, class, stream, deadline).await,
            }
        })
        .await
    }
}

impl Provider {
    /// Send one chat-completions call (OpenAI's shapes in and out, whatever the provider
    /// speaks). `class` is forwarded as `x-rampart-class`. Retryable failures are retried
    /// (see [`retry`]); a stream is returned once its first chunk is in, so every failure
    /// before the first byte is an `Err` here, and later ones arrive inside the stream.
    pub async fn chat(
        &self,
        body: &bytes::Bytes,
        class: Option<&str>,
        stream: bool,
    ) -> Result<Reply, ProviderError> {
        match self {
            Provider::Remote(r) => r.chat(body, class, stream).await,
            Provider::Mock(sim) => mock::chat(sim, body, class, stream).await,
        }
    }

    /// Send one embeddings call (OpenAI's request and response shapes).
    pub async fn embeddings(&self, body: &Value) -> Result<Value, ProviderError> {
        match self {
            Provider::Remote(r) => match &r.api {
                Api::OpenAi(c) => c.embeddings(body).await,
                Api::Anthropic(_) => Err(ProviderError::Unsupported(format!(
                    "provider `{}` is an Anthropic provider, which serves no embeddings",
                    r.name
                ))),
            },
            Provider::Mock(sim) => mock::embeddings(sim, body),
        }
    }
}

/// Build every configured provider; retries are counted in `retries`. Fails when a named
/// API-key variable is missing.
pub fn build_all(
    config: &Config,
    retries: &retry::RetryCounter,
) -> Result<HashMap<String, Provider>, BuildError> {
    let mut out = HashMap::new();
    for (name, p) in &config.providers {
        let api = match &p.kind {
            ProviderKind::OpenAi(o) => Api::OpenAi(openai::OpenAiClient::new(name, o)?),
            ProviderKind::AzureOpenAi(a) => Api::OpenAi(openai::OpenAiClient::azure(name, a)?),
            ProviderKind::Anthropic(a) => Api::Anthropic(anthropic::AnthropicClient::new(name, a)?),
            ProviderKind::Mock(m) => {
                let sim = rampart_mock::Simulator::new(m.models.clone(), m.seed);
                out.insert(name.clone(), Provider::Mock(Arc::new(sim)));
                continue;
            }
        };
        let remote = Remote {
            name: name.clone(),
            api,
            retries: retries.clone(),
        };
        out.insert(name.clone(), Provider::Remote(Arc::new(remote)));
    }
    Ok(out)
}
