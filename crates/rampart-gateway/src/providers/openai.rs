//! Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, `rampart mock-llm`, …).
//!
//! One pooled `reqwest::Client` per provider with its own timeouts. The API key is read once,
//! at start-up, from the environment variable the config names; it is never logged.

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use rampart_core::config::OpenAiProvider;
use serde_json::Value;

use super::{ProviderError, Reply};

pub struct OpenAiClient {
    client: reqwest::Client,
    /// `{base_url}/chat/completions` and `{base_url}/embeddings`.
    url: String,
    embeddings_url: String,
    api_key: Option<String>,
    timeout: std::time::Duration,
}

impl OpenAiClient {
    pub fn new(name: &str, cfg: &OpenAiProvider) -> Result<OpenAiClient, String> {
        let api_key = match &cfg.api_key_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Some(v),
                _ => {
                    return Err(format!(
                        "providers.{name}.api_key_env: environment variable {var} is not set"
                    ));
                }
            },
        };
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .pool_max_idle_per_host(cfg.max_idle_per_host)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("providers.{name}: cannot build HTTP client: {e}"))?;
        Ok(OpenAiClient {
            client,
            url: format!("{}/chat/completions", cfg.base_url),
            embeddings_url: format!("{}/embeddings", cfg.base_url),
            api_key,
            timeout: cfg.timeout,
        })
    }

    fn classify(&self, e: reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            ProviderError::Timeout(self.timeout)
        } else if e.is_connect() {
            ProviderError::Connect(e.to_string())
        } else if e.is_decode() || e.is_body() {
            ProviderError::Invalid(e.to_string())
        } else {
            ProviderError::Connect(e.to_string())
        }
    }

    /// POSTs `body` to `url`; a non-2xx answer becomes [`ProviderError::Status`] with the
    /// upstream's JSON error (or its text wrapped in one).
    async fn post(
        &self,
        url: &str,
        body: bytes::Bytes,
        class: Option<&str>,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(self.timeout);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        if let Some(class) = class {
            req = req.header("x-rampart-class", class);
        }
        let resp = req.send().await.map_err(|e| self.classify(e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp.bytes().await.map_err(|e| self.classify(e))?;
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::json!({"error": {
                "message": String::from_utf8_lossy(&bytes).chars().take(2000).collect::<String>(),
                "type": "upstream_error",
                "code": null,
            }})
        });
        Err(ProviderError::Status {
            status: status.as_u16(),
            body,
        })
    }

    /// One embeddings call (`POST {base_url}/embeddings`).
    pub async fn embeddings(&self, body: &Value) -> Result<Value, ProviderError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ProviderError::Invalid(e.to_string()))?;
        let resp = self.post(&self.embeddings_url, bytes.into(), None).await?;
        let bytes = resp.bytes().await.map_err(|e| self.classify(e))?;
        serde_json::from_slice(&bytes).map_err(|e| ProviderError::Invalid(e.to_string()))
    }

    /// One chat call; `body` is the JSON request, shared (not copied) with the caller.
    pub async fn chat(
        &self,
        body: &bytes::Bytes,
        class: Option<&str>,
        stream: bool,
    ) -> Result<Reply, ProviderError> {
        let resp = self.post(&self.url, body.clone(), class).await?;
        if !stream {
            let bytes = resp.bytes().await.map_err(|e| self.classify(e))?;
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ProviderError::Invalid(e.to_string()))?;
            return Ok(Reply::Json(v, Some(bytes)));
        }
        let timeout = self.timeout;
        let events = resp
            .bytes_stream()
            .eventsource()
            .take_while(|ev| {
                let done = matches!(ev, Ok(e) if e.data.trim() == "[DONE]");
                futures_util::future::ready(!done)
            })
            .filter_map(move |ev| {
                let out = match ev {
                    Ok(e) if e.data.trim().is_empty() => None,
                    Ok(e) => Some(
                        serde_json::from_str::<Value>(&e.data)
                            .map_err(|err| ProviderError::Invalid(err.to_string())),
                    ),
                    Err(eventsource_stream::EventStreamError::Transport(t)) => {
                        Some(Err(if t.is_timeout() {
                            ProviderError::Timeout(timeout)
                        } else {
                            ProviderError::Invalid(t.to_string())
                        }))
                    }
                    Err(other) => Some(Err(ProviderError::Invalid(other.to_string()))),
                };
                futures_util::future::ready(out)
            });
        Ok(Reply::Stream(events.boxed()))
    }
}
