//! The HTTP plumbing every remote provider shares: one pool of HTTP/1.1 connections per provider
//! (hyper's, over rustls for `https`; see [`pool`]) that never follows redirects, bounded answer
//! bodies, error bodies read into [`ProviderError::Status`], and server-sent events read with a
//! time-to-first-byte and an idle-between-events timeout.
//!
//! The client is hyper's own connection API under a small pool, not reqwest's nor hyper-util's
//! pooled client: per call reqwest adds a URL-to-URI conversion, a redirect policy and a retry
//! layer that rampart does not use (it never follows redirects and retries in
//! [`super::retry`]), about 2.5 µs of CPU a call on one core (`bench/vs-nginx.sh BARE=1`, the
//! bare proxy with either client), and hyper-util's client runs each connection as a task of its
//! own (see [`pool`] for what that costs). The connector is the one reqwest used (hyper-rustls
//! with the webpki roots), so `https` providers are reached as before.
//! Proxy environment variables (`HTTPS_PROXY`, …) are not read: providers are reached directly.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper_util::client::legacy::connect::HttpConnector;
use rampart_core::config::HttpSettings;
use serde_json::Value;
use sseer::errors::EventStreamError;
use sseer::event_stream::EventStream;

use super::{BuildError, ProviderError};

/// Largest answer rampart reads from a provider, JSON or a whole stream. Past it the answer is
/// a provider error: a provider cannot make the gateway buffer without bound.
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

/// How long an idle pooled connection to a provider is kept. reqwest's default (90 s) kept a
/// load spike's connections, and their buffers, long after it: in `bench/soak.sh` the
/// gateway's memory stayed at the spike's level. A connection idle this long is closed; one in
/// use is never cut.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// One server-sent event of a provider's stream; its text shares the bytes it arrived in.
pub use sseer::event::Event;

mod pool;

/// What a provider answers: its status, headers and a body read as it arrives.
pub type Response = http::Response<pool::Body>;

/// A request to a provider: a whole body, sent with its `Content-Length`.
pub type Request = http::Request<Full<Bytes>>;

/// One provider's pooled client. Cloning shares the pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: pool::Pool,
}

/// Builds a provider's pooled client. Redirects are never followed (hyper's client
/// has no such policy): a hop could carry the API key to another origin, and a 302 would turn
/// the POST into a GET; a 3xx is reported as a provider error instead (see [`send`]).
pub fn client(http: &HttpSettings) -> HttpClient {
    HttpClient {
        inner: pool::Pool::new(connector(http), http.max_idle_per_host, POOL_IDLE_TIMEOUT),
    }
}

/// TCP (no delay, the configured connect timeout) under rustls with the webpki roots, for
/// `http` and `https` URLs alike.
fn connector(http: &HttpSettings) -> hyper_rustls::HttpsConnector<HttpConnector> {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(http.connect_timeout));
    tcp.enforce_http(false);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp)
}

/// The absolute `http`/`https` URI of provider `name`'s `url`, checked once at start-up.
pub fn uri(name: &str, url: &str) -> Result<http::Uri, BuildError> {
    let bad = |why: String| BuildError::Client {
        provider: name.to_string(),
        message: format!("invalid base_url `{url}`: {why}"),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.authority().is_some() => Ok(uri),
        _ => Err(bad("it must be an absolute http:// or https:// URL".into())),
    }
}

/// A header value built once at start-up from configuration (a key, a version); `secret`
/// values are marked sensitive so they never show in debug output.
pub fn header_value(
    name: &str,
    what: &str,
    value: &str,
    secret: bool,
) -> Result<HeaderValue, BuildError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| BuildError::Client {
        provider: name.to_string(),
        message: format!("{what} is not a valid HTTP header value"),
    })?;
    v.set_sensitive(secret);
    Ok(v)
}

/// A POST of the JSON `body` (shared with the caller, not copied) to `uri`, with `headers`
/// and, when the client sent one, its `x-rampart-class`.
pub fn post_json(
    uri: http::Uri,
    body: Bytes,
    headers: &[(HeaderName, HeaderValue)],
    class: Option<&str>,
) -> Request {
    let mut req = http::Request::new(Full::new(body));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = uri;
    let h = req.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        h.insert(name.clone(), value.clone());
    }
    // The class came in as a request header already checked to be visible ASCII.
    if let Some(v) = class.and_then(|c| HeaderValue::from_str(c).ok()) {
        h.insert(crate::http::chat::CLASS.clone(), v);
    }
    req
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

/// A failure to send a request or read its answer's head: the connection could not be made or
/// broke before the provider answered.
fn send_error(e: &pool::SendError) -> ProviderError {
    ProviderError::Connect(chain(e))
}

/// A failure while reading an answer's body: the provider's answer broke off.
fn body_error(e: &hyper::Error) -> ProviderError {
    ProviderError::Invalid(format!("the provider's answer broke off: {}", chain(e)))
}

/// An error and its sources, `: `-separated (hyper's own messages are terse: "client error
/// (Connect)" says nothing without "Connection refused (os error 111)").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Sends `req`; a non-2xx answer becomes [`ProviderError::Status`] with the upstream's JSON
/// error (or its text wrapped in one) and its `Retry-After`, a 3xx a provider error.
/// `deadline` bounds the whole exchange up to the response headers.
pub async fn send(
    client: &HttpClient,
    req: Request,
    deadline: Instant,
    timeout: Duration,
) -> Result<Response, ProviderError> {
    let left = deadline.saturating_duration_since(Instant::now());
    // Boxed, as hyper-util's client boxed its own: the exchange's future is over a kilobyte,
    // and every future awaiting a provider (a request's, a spawned shadow call's) is moved
    // whole into place.
    let exchange = Box::pin(client.inner.request(req));
    let resp = match tokio::time::timeout(left, exchange).await {
        Err(_) => return Err(ProviderError::Timeout(timeout)),
        Ok(r) => r.map_err(|e| send_error(&e))?,
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
        .get(RETRY_AFTER)
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

/// The whole body, at most [`MAX_ANSWER_BYTES`], read before `deadline`. A body that arrives
/// in one piece (the usual case) is handed on without a copy.
pub async fn read_limited(
    resp: Response,
    deadline: Instant,
    timeout: Duration,
) -> Result<Bytes, ProviderError> {
    let read = async {
        let mut body = resp.into_body();
        let mut first = Bytes::new();
        let mut more: Option<bytes::BytesMut> = None;
        while let Some(frame) = body.frame().await {
            let Ok(chunk) = frame.map_err(|e| body_error(&e))?.into_data() else {
                continue; // trailers
            };
            let seen = first.len() + more.as_ref().map_or(0, |m| m.len());
            if seen + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large());
            }
            match &mut more {
                Some(m) => m.extend_from_slice(&chunk),
                None if first.is_empty() => first = chunk,
                None => {
                    let mut m = bytes::BytesMut::with_capacity(first.len() + chunk.len());
                    m.extend_from_slice(&first);
                    m.extend_from_slice(&chunk);
                    more = Some(m);
                }
            }
        }
        Ok(more.map_or(first, bytes::BytesMut::freeze))
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
    resp: Response,
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
    resp: Response,
    idle: Duration,
) -> Result<BoxStream<'static, Result<Event, ProviderError>>, ProviderError> {
    let ctype = resp
        .headers()
        .get(CONTENT_TYPE)
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
    let parsed = EventStream::new(BodyFrames::new(resp.into_body())).map(|ev| {
        ev.map_err(|e| match e {
            EventStreamError::Transport(BodyStop::Transport(t)) => body_error(&t),
            EventStreamError::Transport(BodyStop::TooLarge) => too_large(),
            EventStreamError::Utf8Error(e) => {
                ProviderError::Invalid(format!("the provider's event stream is malformed: {e}"))
            }
        })
    });
    Ok(with_idle_timeout(parsed.boxed(), idle).boxed())
}

/// A provider's answer body as a stream of its data frames (each a shared `Bytes`, handed to
/// the event parser without a copy), ending with one error past [`MAX_ANSWER_BYTES`] or when
/// the connection fails, so the parser never buffers past the limit.
struct BodyFrames {
    body: pool::Body,
    seen: usize,
    over: bool,
}

impl BodyFrames {
    fn new(body: pool::Body) -> BodyFrames {
        BodyFrames {
            body,
            seen: 0,
            over: false,
        }
    }
}

/// Why the byte stream stopped early.
#[derive(Debug)]
enum BodyStop {
    TooLarge,
    Transport(hyper::Error),
}

impl Stream for BodyFrames {
    type Item = Result<Bytes, BodyStop>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.over {
                return Poll::Ready(None);
            }
            let frame = match std::task::ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => {
                    this.over = true;
                    return Poll::Ready(Some(Err(BodyStop::Transport(e))));
                }
                Some(Ok(frame)) => frame,
            };
            // Trailers carry no events.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            this.seen += data.len();
            if this.seen > MAX_ANSWER_BYTES {
                this.over = true;
                return Poll::Ready(Some(Err(BodyStop::TooLarge)));
            }
            return Poll::Ready(Some(Ok(data)));
        }
    }
}

/// Yields `Err(Timeout(idle))` and ends when `idle` passes without an item; ends after any
/// error.
pub fn with_idle_timeout<T: Send + 'static>(
    inner: BoxStream<'static, Result<T, ProviderError>>,
    idle: Duration,
) -> IdleTimeout<T> {
    IdleTimeout {
        inner,
        idle,
        timer: Box::pin(tokio::time::sleep(idle)),
        waiting_since: tokio::time::Instant::now(),
        restart: false,
        over: false,
    }
}

/// See [`with_idle_timeout`]. The wait for an item starts when the stream is asked for it, as
/// `tokio::time::timeout(idle, inner.next())` per item would, but the timer is armed once and
/// moved only when it fires early (items came since it was set), not re-registered for every
/// item: a streamed answer's twenty events cost twenty clock reads instead of twenty timer
/// registrations and cancellations.
pub struct IdleTimeout<T> {
    inner: BoxStream<'static, Result<T, ProviderError>>,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// When the current wait for an item began.
    waiting_since: tokio::time::Instant,
    /// An item was handed out: the next poll starts a new wait.
    restart: bool,
    over: bool,
}

impl<T> Stream for IdleTimeout<T> {
    type Item = Result<T, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.over {
            return Poll::Ready(None);
        }
        if std::mem::take(&mut this.restart) {
            this.waiting_since = tokio::time::Instant::now();
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(item)) => {
                this.over = item.is_err();
                this.restart = true;
                return Poll::Ready(Some(item));
            }
            Poll::Ready(None) => {
                this.over = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        loop {
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let due = this.waiting_since + this.idle;
            if due <= tokio::time::Instant::now() {
                this.over = true;
                return Poll::Ready(Some(Err(ProviderError::Timeout(this.idle))));
            }
            this.timer.as_mut().reset(due);
        }
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_must_be_an_absolute_http_url() {
        assert!(uri("p", "http://127.0.0.1:8080/v1/chat/completions").is_ok());
        assert!(uri("p", "https://api.openai.com/v1/chat/completions").is_ok());
        for bad in [
            "ftp://host/v1",
            "/v1/chat/completions",
            "http://exa mple/v1",
            "api.openai.com",
        ] {
            let e = uri("p", bad).expect_err(bad).to_string();
            assert!(e.contains("providers.p") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn a_key_that_is_not_a_header_value_is_a_start_up_error() {
        let e = header_value("p", "the API key", "sk-\nx", true).unwrap_err();
        assert!(e.to_string().contains("the API key"), "{e}");
        assert!(
            header_value("p", "the API key", "sk-x", true)
                .unwrap()
                .is_sensitive()
        );
    }

    /// Items 70 ms apart never trip a 100 ms idle timeout, however many there are, nor does a
    /// consumer that takes its time between them; 100 ms of silence after the stream was asked
    /// for an item does, once, and the stream ends there.
    #[tokio::test(start_paused = true)]
    async fn the_idle_timeout_counts_from_each_wait_and_fires_after_a_silence() {
        let idle = Duration::from_millis(100);
        let items = futures_util::stream::unfold(0u32, |i| async move {
            let gap = if i < 30 { 70 } else { 3_600_000 };
            tokio::time::sleep(Duration::from_millis(gap)).await;
            Some((Ok::<u32, ProviderError>(i), i + 1))
        })
        .boxed();
        let mut s = with_idle_timeout(items, idle);
        for i in 0..30 {
            assert_eq!(s.next().await.unwrap().unwrap(), i);
            if i == 10 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        let asked = tokio::time::Instant::now();
        assert!(matches!(s.next().await, Some(Err(ProviderError::Timeout(d))) if d == idle));
        assert_eq!(asked.elapsed(), idle);
        assert!(s.next().await.is_none());
    }
}
