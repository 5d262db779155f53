//! The HTTP plumbing every remote provider shares: one pooled client that never follows
//! redirects, bounded answer bodies, error bodies read into [`ProviderError::Status`], and
//! server-sent events read with a time-to-first-byte and an idle-between-events timeout.

use std::time::{Duration, Instant};

use bytes::Bytes;
use eventsource_stream2::{Event, Eventsource};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use rampart_core::config::HttpSettings;
use serde_json::Value;

use super::{BuildError, ProviderError};

/// Largest answer rampart reads from a provider, JSON or a whole stream. Past it the answer is
/// a provider error: a provider cannot make the gateway buffer without bound.
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

/// Builds the pooled client for provider `name`. Redirects are never followed: a hop could
/// carry the API key to another origin (and a 302 would turn the POST into a GET); a 3xx is
/// reported as a provider error instead.
/// How long an idle pooled connection to a provider is kept. reqwest's default (90 s) kept a
/// load spike's connections, and their buffers, long after it: in `bench/soak.sh` the
/// gateway's memory stayed at the spike's level. A connection idle this long is closed; one in
/// use is never cut.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

pub fn client(name: &str, http: &HttpSettings) -> Result<reqwest::Client, BuildError> {
    reqwest::Client::builder()
        .connect_timeout(http.connect_timeout)
        .pool_max_idle_per_host(http.max_idle_per_host)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .build()
        .map_err(|e| BuildError::Client {
            provider: name.to_string(),
            message: e.to_string(),
        })
}

/// Reads the API key from `var` once; an unset or empty variable is a start-up error.
pub fn api_key(name: &str, var: Option<&str>) -> Result<Option<String>, BuildError> {
    match var {
        None => Ok(None),
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err(BuildError::MissingKey {
                provider: name.to_string(),
                var: var.to_string(),
            }),
        },
    }
}

/// Classifies a transport failure; `timeout` is what the message reports.
pub fn classify(e: &reqwest::Error, timeout: Duration) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout(timeout)
    } else if e.is_connect() {
        ProviderError::Connect(e.to_string())
    } else if e.is_decode() || e.is_body() {
        ProviderError::Invalid(e.to_string())
    } else {
        ProviderError::Connect(e.to_string())
    }
}

/// Sends `req`; a non-2xx answer becomes [`ProviderError::Status`] with the upstream's JSON
/// error (or its text wrapped in one) and its `Retry-After`, a 3xx a provider error.
/// `deadline` bounds the whole exchange up to the response headers.
pub async fn send(
    req: reqwest::RequestBuilder,
    deadline: Instant,
    timeout: Duration,
) -> Result<reqwest::Response, ProviderError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let resp = match tokio::time::timeout(left, req.send()).await {
        Err(_) => return Err(ProviderError::Timeout(timeout)),
        Ok(r) => r.map_err(|e| classify(&e, timeout))?,
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    if status.is_redirection() {
        return Err(ProviderError::Invalid(format!(
            "the provider answered {} (a redirect); rampart does not follow redirects from \
             providers: fix the provider's URL",
            status.as_u16()
        )));
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 64);
    let bytes = read_limited(resp, deadline, timeout).await?;
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
        retry_after,
    })
}

/// The whole body, at most [`MAX_ANSWER_BYTES`], read before `deadline`.
pub async fn read_limited(
    resp: reqwest::Response,
    deadline: Instant,
    timeout: Duration,
) -> Result<Bytes, ProviderError> {
    let read = async {
        let mut body = resp.bytes_stream();
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| classify(&e, timeout))?;
            if out.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    };
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(left, read)
        .await
        .unwrap_or(Err(ProviderError::Timeout(timeout)))
}

/// A successful answer that is not what was asked for (`null`, a list, an object without its
/// `key` array) is a provider error, not a success to pass on.
pub fn expect_array(v: &Value, key: &str, what: &str) -> Result<(), ProviderError> {
    if v.get(key).is_some_and(Value::is_array) {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "the provider's answer is not {what}: it has no `{key}` array"
        )))
    }
}

/// Parses a whole JSON answer.
pub async fn read_json(
    resp: reqwest::Response,
    deadline: Instant,
    timeout: Duration,
) -> Result<(Value, Bytes), ProviderError> {
    let bytes = read_limited(resp, deadline, timeout).await?;
    let v = serde_json::from_slice(&bytes).map_err(|e| {
        ProviderError::Invalid(format!("the provider's answer is not valid JSON: {e}"))
    })?;
    Ok((v, bytes))
}

fn too_large() -> ProviderError {
    ProviderError::Invalid(format!(
        "the provider's answer is larger than {MAX_ANSWER_BYTES} bytes"
    ))
}

/// The server-sent events of a streamed answer. Fails at once when the answer is not an event
/// stream (an HTML error page, a JSON body). Each event must arrive within `idle` of the
/// previous one, and the stream may carry at most [`MAX_ANSWER_BYTES`]; past either the
/// stream yields one error and ends.
pub fn events(
    resp: reqwest::Response,
    idle: Duration,
) -> Result<BoxStream<'static, Result<Event, ProviderError>>, ProviderError> {
    let ctype = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !ctype.to_ascii_lowercase().starts_with("text/event-stream") {
        return Err(ProviderError::Invalid(format!(
            "the provider answered a streaming request with `{}`, not an event stream",
            if ctype.is_empty() {
                "no content type"
            } else {
                &ctype
            }
        )));
    }
    let mut seen = 0usize;
    let bytes = resp.bytes_stream().map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len();
        Ok::<_, reqwest::Error>((chunk, seen))
    });
    // Stop at the byte limit before the event parser buffers past it.
    let bounded = bytes
        .map(|r| match r {
            Ok((_, seen)) if seen > MAX_ANSWER_BYTES => Err(Bounded::TooLarge),
            Ok((chunk, _)) => Ok(chunk),
            Err(e) => Err(Bounded::Transport(e)),
        })
        .take_while_inclusive_ok();
    let parsed = bounded.eventsource().map(move |ev| {
        ev.map_err(|e| {
            if !e.is_transport() {
                return ProviderError::Invalid(format!(
                    "the provider's event stream is malformed: {e}"
                ));
            }
            match e.into_transport() {
                Some(Bounded::Transport(t)) => classify(&t, idle),
                _ => too_large(),
            }
        })
    });
    Ok(with_idle_timeout(parsed, idle).boxed())
}

/// Why the byte stream stopped early.
#[derive(Debug)]
enum Bounded {
    TooLarge,
    Transport(reqwest::Error),
}

impl std::fmt::Display for Bounded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bounded::TooLarge => write!(f, "answer too large"),
            Bounded::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// Ends a stream after its first error (inclusive).
trait TakeWhileOk: Stream + Sized {
    fn take_while_inclusive_ok(self) -> BoxStream<'static, Self::Item>;
}

impl<S, T, E> TakeWhileOk for S
where
    S: Stream<Item = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    fn take_while_inclusive_ok(self) -> BoxStream<'static, Self::Item> {
        futures_util::stream::unfold((self.boxed(), false), |(mut s, failed)| async move {
            if failed {
                return None;
            }
            let item = s.next().await?;
            let failed = item.is_err();
            Some((item, (s, failed)))
        })
        .boxed()
    }
}

/// Yields `Err(Timeout(idle))` and ends when `idle` passes without an item; ends after any
/// error.
pub fn with_idle_timeout<S, T>(
    inner: S,
    idle: Duration,
) -> impl Stream<Item = Result<T, ProviderError>> + Send + 'static
where
    S: Stream<Item = Result<T, ProviderError>> + Send + 'static,
    T: Send + 'static,
{
    futures_util::stream::unfold((inner.boxed(), false), move |(mut s, over)| async move {
        if over {
            return None;
        }
        match tokio::time::timeout(idle, s.next()).await {
            Err(_) => Some((Err(ProviderError::Timeout(idle)), (s, true))),
            Ok(None) => None,
            Ok(Some(item)) => {
                let over = item.is_err();
                Some((item, (s, over)))
            }
        }
    })
}

/// Waits (until `deadline`) for the stream's first item, so a failure before the first byte
/// is an ordinary error the caller may retry or fall back from; then hands back the whole
/// stream. A stream that ends before any item is a provider error.
pub async fn first_item<T: Send + 'static>(
    mut s: BoxStream<'static, Result<T, ProviderError>>,
    deadline: Instant,
    timeout: Duration,
) -> Result<BoxStream<'static, Result<T, ProviderError>>, ProviderError> {
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, s.next()).await {
        Err(_) => Err(ProviderError::Timeout(timeout)),
        Ok(None) => Err(ProviderError::Invalid(
            "the provider's stream ended before its first event".into(),
        )),
        Ok(Some(Err(e))) => Err(e),
        Ok(Some(Ok(first))) => Ok(futures_util::stream::once(async move { Ok(first) })
            .chain(s)
            .boxed()),
    }
}
