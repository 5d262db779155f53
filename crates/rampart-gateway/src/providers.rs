//! LLM providers: where a variant's calls go.
//!
//! A [`Provider`] takes an OpenAI chat-completions body (already rewritten for the variant)
//! and returns either the whole JSON answer or a stream of `chat.completion.chunk` objects.
//! Failures are classified so the edge can answer 502 (unreachable), 504 (timeout) or pass
//! the upstream status through.

pub mod mock;
pub mod openai;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::stream::BoxStream;
use rampart_core::config::{Config, ProviderKind};
use serde_json::Value;

use crate::error::ApiError;

/// What a provider answered.
pub enum Reply {
    /// The whole answer, and its bytes as the provider sent them when there are any, so the
    /// client gets exactly the upstream body without a second serialization.
    Json(Value, Option<bytes::Bytes>),
    /// Chunks as they arrive; the stream ends after the last one (`[DONE]` is not included).
    Stream(BoxStream<'static, Result<Value, ProviderError>>),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("status {status}")]
    Status { status: u16, body: Value },
    #[error("invalid answer: {0}")]
    Invalid(String),
}

impl ProviderError {
    /// A short description for pairs and logs.
    pub fn describe(&self) -> String {
        match self {
            ProviderError::Status { status, body } => {
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
            ProviderError::Status { status, body } => ApiError::Upstream { status, body },
            ProviderError::Invalid(m) => ApiError::UpstreamInvalid(m),
        }
    }
}

/// One configured provider.
#[derive(Clone)]
pub enum Provider {
    OpenAi(Arc<openai::OpenAiClient>),
    Mock(Arc<rampart_mock::Simulator>),
}

impl Provider {
    /// Send one chat-completions call (`body` is its JSON). `class` is forwarded as
    /// `x-rampart-class`.
    pub async fn chat(
        &self,
        body: &bytes::Bytes,
        class: Option<&str>,
        stream: bool,
    ) -> Result<Reply, ProviderError> {
        match self {
            Provider::OpenAi(c) => c.chat(body, class, stream).await,
            Provider::Mock(sim) => mock::chat(sim, body, class, stream).await,
        }
    }

    /// Send one embeddings call (OpenAI's request and response shapes).
    pub async fn embeddings(&self, body: &Value) -> Result<Value, ProviderError> {
        match self {
            Provider::OpenAi(c) => c.embeddings(body).await,
            Provider::Mock(sim) => mock::embeddings(sim, body),
        }
    }
}

/// Build every configured provider. Fails when a named API-key variable is missing.
pub fn build_all(config: &Config) -> Result<HashMap<String, Provider>, String> {
    let mut out = HashMap::new();
    for (name, p) in &config.providers {
        let provider = match &p.kind {
            ProviderKind::OpenAi(o) => {
                Provider::OpenAi(Arc::new(openai::OpenAiClient::new(name, o)?))
            }
            ProviderKind::Mock(m) => Provider::Mock(Arc::new(rampart_mock::Simulator::new(
                m.models.clone(),
                m.seed,
            ))),
        };
        out.insert(name.clone(), provider);
    }
    Ok(out)
}
