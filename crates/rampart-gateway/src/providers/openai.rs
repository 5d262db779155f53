//! Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, `rampart mock-llm`, …), and Azure
//! OpenAI, which speaks the same wire format on its own URL scheme and key header.
//!
//! One pooled HTTP client per provider ([`transport`]) with its own timeouts. The API key is
//! read once, at start-up, from the environment variable the config names; it is never logged.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use rampart_core::config::{AzureOpenAiProvider, HttpSettings, OpenAiProvider};
use serde_json::Value;

use super::transport::Event;
use super::{BuildError, Chunk, Chunks, Completion, ProviderError, Reply, transport};

/// How the key travels: `Authorization: Bearer …` (OpenAI) or `api-key: …` (Azure OpenAI),
/// its header value built once, marked sensitive.
type Auth = Option<(HeaderName, HeaderValue)>;

fn auth(
    name: &str,
    key: Option<String>,
    header: HeaderName,
    bearer: bool,
) -> Result<Auth, BuildError> {
    let Some(key) = key else { return Ok(None) };
    let value = if bearer { format!("Bearer {key}") } else { key };
    Ok(Some((
        header,
        transport::header_value(name, "the API key", &value, true)?,
    )))
}

/// Where the chat and embeddings calls of one variant go.
enum Urls {
    /// `{base_url}/chat/completions` and `{base_url}/embeddings`, parsed once at start-up
    /// rather than on every call.
    Fixed {
        chat: http::Uri,
        embeddings: http::Uri,
    },
    /// Azure: the deployment (a variant's `model`) is part of the path.
    Azure {
        endpoint: String,
        api_version: String,
    },
}

pub struct OpenAiClient {
    client: transport::HttpClient,
    urls: Urls,
    auth: Auth,
    pub http: HttpSettings,
}

impl OpenAiClient {
    pub fn new(name: &str, cfg: &OpenAiProvider) -> Result<OpenAiClient, BuildError> {
        let key = transport::api_key(name, cfg.api_key_env.as_deref())?;
        Ok(OpenAiClient {
            client: transport::client(&cfg.http),
            urls: Urls::Fixed {
                chat: transport::uri(name, &format!("{}/chat/completions", cfg.base_url))?,
                embeddings: transport::uri(name, &format!("{}/embeddings", cfg.base_url))?,
            },
            auth: auth(name, key, AUTHORIZATION, true)?,
            http: cfg.http.clone(),
        })
    }

    pub fn azure(name: &str, cfg: &AzureOpenAiProvider) -> Result<OpenAiClient, BuildError> {
        let key = transport::api_key(name, cfg.api_key_env.as_deref())?;
        // The endpoint is checked here; each call's URI adds the deployment and the version.
        transport::uri(name, &cfg.endpoint)?;
        Ok(OpenAiClient {
            client: transport::client(&cfg.http),
            urls: Urls::Azure {
                endpoint: cfg.endpoint.clone(),
                api_version: cfg.api_version.clone(),
            },
            auth: auth(name, key, HeaderName::from_static("api-key"), false)?,
            http: cfg.http.clone(),
        })
    }

    /// The URL of `op` (`chat/completions` or `embeddings`) for the body's `model`.
    fn url(&self, op: &str, body: &[u8]) -> Result<http::Uri, ProviderError> {
        match &self.urls {
            Urls::Fixed { chat, embeddings } => Ok(if op == "embeddings" {
                embeddings.clone()
            } else {
                chat.clone()
            }),
            Urls::Azure {
                endpoint,
                api_version,
            } => {
                let deployment = model_of(body).unwrap_or_default();
                let url = format!(
                    "{endpoint}/openai/deployments/{}/{op}?api-version={}",
                    encode_segment(&deployment),
                    encode_segment(api_version)
                );
                url.parse()
                    .map_err(|e| ProviderError::Invalid(format!("cannot build the Azure URL: {e}")))
            }
        }
    }

    /// A POST of `body` (JSON bytes, shared with the caller rather than copied).
    fn request(&self, url: http::Uri, body: &Bytes, class: Option<&str>) -> transport::Request {
        transport::post_json(url, body.clone(), self.auth.as_slice(), class)
    }

    /// One embeddings call (`POST {base_url}/embeddings`).
    pub async fn embeddings(&self, body: &Value) -> Result<Value, ProviderError> {
        let deadline = Instant::now() + self.http.timeout;
        let bytes = Bytes::from(
            serde_json::to_vec(body).map_err(|e| ProviderError::Invalid(e.to_string()))?,
        );
        let req = self.request(self.url("embeddings", &bytes)?, &bytes, None);
        let resp = transport::send(&self.client, req, deadline, self.http.timeout).await?;
        Ok(transport::read_json(resp, deadline, self.http.timeout)
            .await?
            .0)
    }

    /// One attempt at a chat call. For a stream, returns once its first chunk has arrived
    /// (within `deadline`); later chunks each must come within the idle timeout.
    pub async fn chat_once(
        &self,
        body: &Bytes,
        class: Option<&str>,
        stream: bool,
        deadline: Instant,
    ) -> Result<Reply, ProviderError> {
        let req = self.request(self.url("chat/completions", body)?, body, class);
        let timeout = if stream {
            self.http.first_byte_timeout
        } else {
            self.http.timeout
        };
        let resp = transport::send(&self.client, req, deadline, timeout).await?;
        if !stream {
            let body = transport::read_limited(resp, deadline, timeout).await?;
            return Completion::from_bytes(body).map(Reply::Json);
        }
        let events = transport::events(resp, self.http.idle_timeout)?;
        let chunks = super::guard::bounded(chunks(events));
        Ok(Reply::Stream(
            transport::first_item(chunks, deadline, timeout).await?,
        ))
    }
}

/// The `model` of a JSON body, read without building the body's tree.
fn model_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ModelOnly {
        model: Option<String>,
    }
    serde_json::from_slice::<ModelOnly>(body).ok()?.model
}

/// Percent-encodes one URL path segment or query value (RFC 3986 unreserved kept).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// OpenAI's stream: `data: {chunk}` events ending in `data: [DONE]`. A stream that ends
/// without `[DONE]`, an event that is not JSON, or an `{"error": …}` event is a provider
/// error, and the stream ends there.
fn chunks(events: BoxStream<'static, Result<Event, ProviderError>>) -> Chunks {
    Box::pin(OpenAiChunks {
        events,
        over: false,
    })
}

/// See [`chunks`]: polled in place, no future per event.
struct OpenAiChunks {
    events: BoxStream<'static, Result<Event, ProviderError>>,
    over: bool,
}

impl Stream for OpenAiChunks {
    type Item = Result<Chunk, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.over {
            return Poll::Ready(None);
        }
        loop {
            let item = match ready!(this.events.poll_next_unpin(cx)) {
                None => Err(ProviderError::Invalid(
                    "the provider's stream ended without `data: [DONE]`".into(),
                )),
                Some(Err(e)) => Err(e),
                Some(Ok(e)) => {
                    let trimmed = e.data.trim();
                    if trimmed == "[DONE]" {
                        this.over = true;
                        return Poll::Ready(None);
                    }
                    if trimmed.is_empty() {
                        continue;
                    }
                    // The event's own bytes, trimmed or not: no copy.
                    Chunk::from_json(e.data.slice_ref(trimmed))
                }
            };
            this.over = item.is_err();
            return Poll::Ready(Some(item));
        }
    }
}
