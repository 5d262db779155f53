//! Anthropic's native Messages API (`type = "anthropic"`). Clients keep speaking OpenAI's
//! chat-completions format; [`request`], [`response`] and [`stream`] translate both ways.
//! Key in `x-api-key`, version in `anthropic-version`.

pub mod request;
pub mod response;
pub mod stream;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::header::{HeaderName, HeaderValue};
use rampart_core::config::{AnthropicProvider, HttpSettings};
use serde_json::Value;

use super::transport::Event;
use super::{BuildError, Chunk, Chunks, Completion, ProviderError, Reply, transport};

pub struct AnthropicClient {
    client: transport::HttpClient,
    /// `{base_url}/v1/messages`.
    url: http::Uri,
    /// `x-api-key` and `anthropic-version`, built once.
    headers: Vec<(HeaderName, HeaderValue)>,
    pub http: HttpSettings,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl AnthropicClient {
    pub fn new(name: &str, cfg: &AnthropicProvider) -> Result<AnthropicClient, BuildError> {
        let version = &cfg.anthropic_version;
        let mut headers = vec![(
            HeaderName::from_static("anthropic-version"),
            transport::header_value(name, "the anthropic_version", version, false)?,
        )];
        if let Some(key) = transport::api_key(name, cfg.api_key_env.as_deref())? {
            let key = transport::header_value(name, "the API key", &key, true)?;
            headers.push((HeaderName::from_static("x-api-key"), key));
        }
        Ok(AnthropicClient {
            client: transport::client(&cfg.http),
            url: transport::uri(name, &format!("{}/v1/messages", cfg.base_url))?,
            headers,
            http: cfg.http.clone(),
        })
    }

    /// One attempt at a chat call (see `OpenAiClient::chat_once`).
    pub async fn chat_once(
        &self,
        body: &Value,
        class: Option<&str>,
        stream: bool,
        deadline: Instant,
    ) -> Result<Reply, ProviderError> {
        let messages = request::to_anthropic(body, stream)?;
        let json = serde_json::to_vec(&messages)
            .map_err(|e| ProviderError::Invalid(format!("cannot encode the request: {e}")))?;
        let req = transport::post_json(self.url.clone(), json.into(), &self.headers, class);
        let timeout = if stream {
            self.http.first_byte_timeout
        } else {
            self.http.timeout
        };
        let resp = transport::send(&self.client, req, deadline, timeout)
            .await
            .map_err(translate_error)?;
        if !stream {
            let (v, _) = transport::read_json(resp, deadline, timeout).await?;
            transport::expect_array(&v, "content", "a Messages answer")?;
            let completion = response::to_completion(&v, now_secs());
            return Ok(Reply::Json(Completion::from_value(&completion)));
        }
        let events = transport::events(resp, self.http.idle_timeout)?;
        let chunks = super::guard::bounded(chunks(events));
        Ok(Reply::Stream(
            transport::first_item(chunks, deadline, timeout).await?,
        ))
    }
}

/// An Anthropic error status keeps its status and `Retry-After`, with OpenAI's error shape.
fn translate_error(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::Status {
            status,
            body,
            retry_after,
        } => {
            let (status, body) = response::to_openai_error(status, &body);
            ProviderError::Status {
                status,
                body,
                retry_after,
            }
        }
        other => other,
    }
}

/// The translated chunk stream; ends cleanly only after `message_stop`.
fn chunks(events: BoxStream<'static, Result<Event, ProviderError>>) -> Chunks {
    let state = (
        events,
        stream::Translator::new(now_secs()),
        std::collections::VecDeque::<Value>::new(),
        false,
    );
    futures_util::stream::unfold(
        state,
        |(mut ev, mut tr, mut pending, mut over)| async move {
            loop {
                if let Some(c) = pending.pop_front() {
                    return Some((Ok(Chunk::from_value(&c)), (ev, tr, pending, over)));
                }
                if over {
                    return None;
                }
                let data = match ev.next().await {
                    None => Err(ProviderError::Invalid(
                        "the provider's stream ended before `message_stop`".into(),
                    )),
                    Some(Err(e)) => Err(e),
                    Some(Ok(e)) if e.data.trim().is_empty() => continue,
                    Some(Ok(e)) => serde_json::from_str::<Value>(&e.data).map_err(|err| {
                        ProviderError::Invalid(format!(
                            "the provider sent a stream event that is not valid JSON: {err}"
                        ))
                    }),
                };
                match data.and_then(|d| tr.step(&d)) {
                    Ok(stream::Step::Chunks(c)) => pending.extend(c),
                    Ok(stream::Step::Done(c)) => {
                        pending.extend(c);
                        over = true;
                    }
                    Err(e) => return Some((Err(e), (ev, tr, pending, true))),
                }
            }
        },
    )
    .boxed()
}
