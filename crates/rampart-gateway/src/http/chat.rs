//! `POST /v1/chat/completions`: the data plane.
//!
//! Read and check the body (size-capped), resolve the route, assign the cohort from the live
//! snapshot, rewrite the request for the chosen variant, call its provider, and answer as
//! OpenAI would, JSON or SSE, with rampart's headers. The request path takes no shared lock and
//! makes no database call: its event, and the baseline side of a shadow pair, leave through
//! bounded queues (see [`crate::record`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;
use tokio_util::sync::WaitForCancellationFutureOwned;

use rampart_core::config::{RouteConfig, VariantConfig};
use rampart_core::record::Outcome;
use rampart_core::request::{self, ChatRequest, Limits};
use rampart_core::routing::{self, RolloutView};

use crate::error::ApiError;
use crate::plane::DataPlane;
use crate::providers::{Chunk, Chunks, Provider, Reply};
use crate::record::Served;
use crate::shadow::ShadowJob;

/// The endpoint's path (the router's route, and the connection's shortcut to this handler).
pub const PATH: &str = "/v1/chat/completions";
// The request headers rampart reads, named once (a `&str` name is parsed on every look-up).
pub static ROUTING_KEY: HeaderName = HeaderName::from_static("x-rampart-routing-key");
pub static TENANT: HeaderName = HeaderName::from_static("x-rampart-tenant");
pub static CLASS: HeaderName = HeaderName::from_static("x-rampart-class");

// The response headers rampart adds, named once (a `&str` name is parsed on every insert).
static REQUEST_ID: HeaderName = HeaderName::from_static("x-rampart-request-id");
static VARIANT: HeaderName = HeaderName::from_static("x-rampart-variant");
static COHORT: HeaderName = HeaderName::from_static("x-rampart-cohort");
static STAGE: HeaderName = HeaderName::from_static("x-rampart-stage");

/// Read a request body: 413 past `server.max_body_bytes`, 408 (and the connection closed)
/// when it is not all in within `server.body_read_timeout`.
pub async fn read_body(
    gw: &DataPlane,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, ApiError> {
    let server = &gw.config.server;
    let limit = server.max_body_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let timeout = server.connections.body_read_timeout;
    let read = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(r) => r,
        Err(_) => {
            gw.metrics.connections.body_timeouts.inc();
            return Err(ApiError::BodyTimeout(timeout));
        }
    };
    read.map_err(|e| {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = src {
            if s.is::<http_body_util::LengthLimitError>() {
                return ApiError::PayloadTooLarge { limit };
            }
            src = s.source();
        }
        ApiError::BadRequest(format!("cannot read request body: {e}"))
    })
}

/// Parse and check a chat-completions body against the configured limits.
pub fn parse_request(bytes: bytes::Bytes, limits: Limits) -> Result<ChatRequest, ApiError> {
    ChatRequest::parse(bytes, limits).map_err(|e| {
        if e.is_limit() {
            ApiError::TooComplex(e.to_string())
        } else {
            ApiError::BadRequest(e.to_string())
        }
    })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()).filter(|s| !s.is_empty()))
            .map_err(|_| ApiError::BadRequest(format!("header `{name}` must be visible ASCII"))),
    }
}

/// The `x-rampart-*` headers an answer to a chat request carries, error answers included, as
/// far as they are known when it is given: set on the response itself, not gathered in a map of
/// their own and copied into it.
#[derive(Clone)]
pub(super) struct Marks {
    request_id: Option<HeaderValue>,
    pub(super) variant: Option<HeaderValue>,
    cohort: Option<HeaderValue>,
    stage: Option<HeaderValue>,
}

impl Marks {
    fn new(request_id: &str) -> Marks {
        Marks {
            request_id: HeaderValue::from_str(request_id).ok(),
            variant: None,
            cohort: None,
            stage: None,
        }
    }

    /// A header value from a configured name (route, variant, stage); `None` if it cannot be one.
    pub(super) fn value(text: &str) -> Option<HeaderValue> {
        HeaderValue::from_str(text).ok()
    }

    pub(super) fn set_on(self, h: &mut HeaderMap) {
        let marks = [
            (&REQUEST_ID, self.request_id),
            (&VARIANT, self.variant),
            (&COHORT, self.cohort),
            (&STAGE, self.stage),
        ];
        for (name, value) in marks {
            if let Some(v) = value {
                h.insert(name.clone(), v);
            }
        }
    }
}

pub async fn chat_completions(
    State(gw): State<DataPlane>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(gw.clone(), headers, body).await {
        Ok(r) => r,
        Err(failure) => {
            let (e, marks) = *failure;
            let mut resp = e.into_response();
            marks.set_on(resp.headers_mut());
            resp
        }
    }
}

type Failure = Box<(ApiError, Marks)>;

/// A request admitted to the data plane: parsed, its route resolved, its variant chosen.
struct Admitted<'a> {
    request: ChatRequest,
    route: &'a RouteConfig,
    routing_key: Option<String>,
    tenant: Option<String>,
    class: Option<String>,
    view: Option<Arc<RolloutView>>,
    assignment: routing::Assignment,
    variant: Arc<VariantConfig>,
    provider: Provider,
    marks: Marks,
}

async fn handle(gw: DataPlane, headers: HeaderMap, body: Body) -> Result<Response, Failure> {
    let started = Instant::now();
    let ts_ms = gw.clock.now_ms();
    let request_id = format!("req_{}", uuid::Uuid::now_v7().simple());
    let a = admit(&gw, &headers, body, Marks::new(&request_id)).await?;
    let stream = a.request.stream;
    let provider_body = request::for_variant(&a.request, &a.variant, stream);
    let mut span = gw.telemetry.request(&headers, &a.route.name);
    span.assigned(
        &request_id,
        &a.variant,
        a.assignment.cohort.as_str(),
        a.view.as_ref().map(|v| v.rollout.as_str()),
        a.view.as_ref().map(|v| v.stage.as_str()),
    );
    let mut served = Served {
        gw: gw.clone(),
        request_id,
        ts_ms,
        started,
        route: a.route.name.clone(),
        rollout: a.view.as_ref().map(|v| v.rollout.clone()),
        stage: a.view.as_ref().map(|v| v.stage.clone()),
        variant: a.variant.clone(),
        cohort: a.assignment.cohort,
        key_hash: a.routing_key.as_deref().map(routing::key_hash),
        tenant: a.tenant.clone(),
        class: a.class.clone(),
        streamed: stream,
        baseline_tx: None,
        done: false,
        span,
    };
    // Mirror to the candidate before waiting on the baseline, so both run concurrently.
    start_shadow(&gw, &a, &mut served);
    let reply = a
        .provider
        .chat(&provider_body, a.class.as_deref(), stream)
        .await;
    drop(provider_body);
    // A canary user whose candidate failed before the first byte may get the baseline's answer.
    let fallback = match &a.view {
        Some(v) if a.assignment.candidate => Some(super::fallback::Failed {
            route: a.route,
            view: v,
            request: &a.request,
            class: a.class.as_deref(),
            stream,
        }),
        _ => None,
    };
    let forward_usage = a.request.stream_usage;
    respond(&gw, reply, served, forward_usage, a.marks, fallback).await
}

/// Read, parse and check the request, resolve its route and choose its variant. Each refusal
/// is counted in `rampart_rejected_requests_total{reason}`.
async fn admit<'a>(
    gw: &'a DataPlane,
    headers: &HeaderMap,
    body: Body,
    mut marks: Marks,
) -> Result<Admitted<'a>, Failure> {
    let reject = |reason: &'static str, e: ApiError, m: &Marks| {
        gw.metrics.rejected(reason);
        Box::new((e, m.clone()))
    };
    let server = &gw.config.server;
    let bytes = read_body(gw, headers, body)
        .await
        .map_err(|e| reject("body", e, &marks))?;
    let request = parse_request(bytes, server.limits).map_err(|e| {
        let reason = if matches!(e, ApiError::TooComplex(_)) {
            "too_complex"
        } else {
            "invalid"
        };
        reject(reason, e, &marks)
    })?;
    let Some(route) = gw.config.routes.get(&request.model) else {
        // Route names are not listed: any client could read them.
        let e = ApiError::NotFound(format!(
            "unknown route `{}`: `model` must name a route configured on this gateway",
            truncate(&request.model, 80)
        ));
        return Err(reject("unknown_route", e, &marks));
    };
    let header = |name: &HeaderName| {
        header_str(headers, name)
            .map(|v| v.map(str::to_string))
            .map_err(|e| reject("invalid", e, &marks))
    };
    let routing_key = header(&ROUTING_KEY)?.or_else(|| request.user.clone());
    let tenant = header(&TENANT)?;
    let class = header(&CLASS)?;
    let snapshot = gw.snapshot.load();
    let view = snapshot.by_route.get(&request.model).cloned();
    let assignment = routing::assign(view.as_deref(), routing_key.as_deref(), tenant.as_deref());
    let variant_name = match &view {
        Some(v) if assignment.candidate => v.candidate.as_str(),
        _ => route.baseline.as_str(),
    };
    let Some(variant) = route.variants.get(variant_name).cloned() else {
        let e = ApiError::Internal(format!("variant `{variant_name}` is not configured"));
        return Err(Box::new((e, marks)));
    };
    let Some(provider) = gw.providers.get(&variant.provider).cloned() else {
        let e = ApiError::Internal(format!("provider `{}` is not configured", variant.provider));
        return Err(Box::new((e, marks)));
    };
    marks.variant = Marks::value(&variant.name);
    marks.cohort = Some(HeaderValue::from_static(assignment.cohort.as_str()));
    marks.stage = view.as_ref().and_then(|v| Marks::value(&v.stage));
    Ok(Admitted {
        request,
        route,
        routing_key,
        tenant,
        class,
        view,
        assignment,
        variant,
        provider,
        marks,
    })
}

/// Hand a shadowed request to the dispatcher; it shares the request's bytes, never copies them.
fn start_shadow(gw: &DataPlane, a: &Admitted, served: &mut Served) {
    if !a.assignment.shadow {
        return;
    }
    let Some(v) = &a.view else { return };
    let Some(cand) = a.route.variants.get(&v.candidate) else {
        return;
    };
    served.baseline_tx = gw.shadow.dispatch(
        gw,
        ShadowJob {
            request: &a.request,
            route: a.route,
            candidate: cand,
            view: v,
            served,
        },
    );
}

/// Answer the client from what the provider said, and record the request (at once for JSON and
/// errors, when the stream ends for SSE).
async fn respond(
    gw: &DataPlane,
    reply: Result<Reply, crate::providers::ProviderError>,
    mut served: Served,
    forward_usage: bool,
    marks: Marks,
    fallback: Option<super::fallback::Failed<'_>>,
) -> Result<Response, Failure> {
    match reply {
        Err(e) => {
            let err = ApiError::from(e);
            let outcome = if matches!(err, ApiError::UpstreamTimeout(_)) {
                Outcome::Timeout
            } else {
                Outcome::Error
            };
            let status = err.status().as_u16();
            served.finish(status, outcome, None, None, Some(err.to_string()));
            if let Some(failed) = fallback
                && let Some(resp) =
                    super::fallback::baseline_answer(gw, failed, marks.clone()).await
            {
                return Ok(resp);
            }
            Err(Box::new((err, marks)))
        }
        Ok(Reply::Json(c)) => {
            served.finish(200, Outcome::Ok, Some(&c.answer), None, None);
            let mut resp = super::json_response(c.body);
            marks.set_on(resp.headers_mut());
            Ok(resp)
        }
        Ok(Reply::Stream(chunks)) => {
            let cut = Box::pin(served.gw.cut.clone().cancelled_owned());
            let relay = Relay {
                chunks,
                rec: crate::record::StreamRecorder::new(served),
                forward_usage,
                cut,
                done: false,
            };
            let mut resp = super::sse::response(relay);
            marks.set_on(resp.headers_mut());
            Ok(resp)
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

/// The SSE event relaying `chunk` to the client: its text as the provider sent it, never
/// re-encoded. `None` for the usage-only chunk rampart asked for on its own account, when the
/// client did not ask for it too.
pub(super) fn chunk_event(chunk: &Chunk, forward_usage: bool) -> Option<Bytes> {
    if chunk.fields.usage_only() && !forward_usage {
        return None;
    }
    Some(super::sse::data(&chunk.json))
}

/// A streamed answer on its way to the client: the provider's chunks forwarded as they arrive,
/// each accounted for on the way. Polled in place (an `unfold` would move this state, with the
/// request's record, in and out of a future for every event).
struct Relay {
    chunks: Chunks,
    rec: crate::record::StreamRecorder,
    forward_usage: bool,
    /// The shutdown grace deadline ([`crate::plane::PlaneInner::cut`]), waited on by one
    /// future for the whole stream rather than a new one per event.
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
    done: bool,
}

impl futures_util::Stream for Relay {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let st = self.get_mut();
        if st.done {
            return Poll::Ready(None);
        }
        if st.cut.as_mut().poll(cx).is_ready() {
            let err = ApiError::Unavailable(
                "the gateway is shutting down and cut this stream at its grace deadline".into(),
            );
            st.rec.cut(&err);
            st.done = true;
            return Poll::Ready(Some(super::sse::data(&err.body().to_string())));
        }
        loop {
            match st.chunks.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    st.rec.push(&chunk.fields);
                    if let Some(ev) = chunk_event(&chunk, st.forward_usage) {
                        return Poll::Ready(Some(ev));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let err = ApiError::from(e);
                    st.rec.fail(&err);
                    st.done = true;
                    return Poll::Ready(Some(super::sse::data(&err.body().to_string())));
                }
                Poll::Ready(None) => {
                    st.rec.complete();
                    st.done = true;
                    return Poll::Ready(Some(super::sse::data("[DONE]")));
                }
            }
        }
    }
}
