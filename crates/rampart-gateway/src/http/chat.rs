//! `POST /v1/chat/completions`: the data plane.
//!
//! Read and check the body (size-capped), resolve the route, assign the cohort from the live
//! snapshot, rewrite the request for the chosen variant, call its provider, and answer as
//! OpenAI would, JSON or SSE, with rampart's headers. The request path takes no shared lock and
//! makes no database call: its event, and the baseline side of a shadow pair, leave through
//! bounded queues (see [`crate::record`]).

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use rampart_core::record::Outcome;
use rampart_core::request::{self, Answer};
use rampart_core::routing;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::plane::DataPlane;
use crate::providers::Reply;
use crate::record::Served;
use crate::shadow::ShadowJob;

pub const ROUTING_KEY: &str = "x-rampart-routing-key";
pub const TENANT: &str = "x-rampart-tenant";
pub const CLASS: &str = "x-rampart-class";

/// Read a request body, answering 413 past `limit` bytes.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
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

/// Parse and check a chat-completions body.
pub fn parse_request(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(map) = v else {
        return Err(ApiError::BadRequest(
            "request body must be a JSON object".into(),
        ));
    };
    match map.get("model") {
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`model` must be a non-empty string naming a route (got {other})"
            )));
        }
        None => {
            return Err(ApiError::BadRequest(
                "missing required field `model`".into(),
            ));
        }
    }
    match map.get("messages") {
        Some(Value::Array(msgs)) if !msgs.is_empty() => {
            for (i, m) in msgs.iter().enumerate() {
                if !m.get("role").is_some_and(Value::is_string) {
                    return Err(ApiError::BadRequest(format!(
                        "`messages[{i}]` must be an object with a string `role`"
                    )));
                }
            }
        }
        Some(Value::Array(_)) => {
            return Err(ApiError::BadRequest("`messages` must not be empty".into()));
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`messages` must be an array of message objects".into(),
            ));
        }
        None => {
            return Err(ApiError::BadRequest(
                "missing required field `messages`".into(),
            ));
        }
    }
    if let Some(s) = map.get("stream")
        && !s.is_boolean()
        && !s.is_null()
    {
        return Err(ApiError::BadRequest("`stream` must be a boolean".into()));
    }
    Ok(map)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()).filter(|s| !s.is_empty()))
            .map_err(|_| ApiError::BadRequest(format!("header `{name}` must be visible ASCII"))),
    }
}

fn set_header(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

pub async fn chat_completions(
    State(gw): State<DataPlane>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(gw.clone(), headers, body).await {
        Ok(r) => r,
        Err((e, extra)) => {
            let mut resp = e.into_response();
            resp.headers_mut().extend(extra);
            resp
        }
    }
}

type Failure = (ApiError, HeaderMap);

async fn handle(gw: DataPlane, headers: HeaderMap, body: Body) -> Result<Response, Failure> {
    let started = Instant::now();
    let ts_ms = gw.clock.now_ms();
    let request_id = format!("req_{}", uuid::Uuid::now_v7().simple());
    let mut out_headers = HeaderMap::new();
    set_header(&mut out_headers, "x-rampart-request-id", &request_id);
    let reject = |gw: &DataPlane, reason: &'static str, e: ApiError, h: &HeaderMap| {
        gw.metrics.rejected(reason);
        (e, h.clone())
    };

    let bytes = read_body(&headers, body, gw.config.server.max_body_bytes)
        .await
        .map_err(|e| reject(&gw, "body", e, &out_headers))?;
    let req = parse_request(&bytes).map_err(|e| reject(&gw, "invalid", e, &out_headers))?;
    let route_name = req.get("model").and_then(Value::as_str).unwrap_or_default();
    let Some(route) = gw.config.routes.get(route_name) else {
        let known: Vec<&str> = gw.config.routes.keys().map(String::as_str).collect();
        return Err(reject(
            &gw,
            "unknown_route",
            ApiError::NotFound(format!(
                "unknown route `{route_name}`; known routes: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )),
            &out_headers,
        ));
    };
    let key_header =
        header_str(&headers, ROUTING_KEY).map_err(|e| reject(&gw, "invalid", e, &out_headers))?;
    let routing_key = key_header.or_else(|| {
        req.get("user")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    });
    let tenant =
        header_str(&headers, TENANT).map_err(|e| reject(&gw, "invalid", e, &out_headers))?;
    let class = header_str(&headers, CLASS).map_err(|e| reject(&gw, "invalid", e, &out_headers))?;
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);

    let snapshot = gw.snapshot.load();
    let view = snapshot.by_route.get(route_name);
    let assignment = routing::assign(view.map(|v| v.as_ref()), routing_key, tenant);
    let variant_name = match view {
        Some(v) if assignment.candidate => v.candidate.as_str(),
        _ => route.baseline.as_str(),
    };
    let Some(variant) = route.variants.get(variant_name) else {
        return Err((
            ApiError::Internal(format!("variant `{variant_name}` is not configured")),
            out_headers,
        ));
    };
    let Some(provider) = gw.providers.get(&variant.provider) else {
        return Err((
            ApiError::Internal(format!("provider `{}` is not configured", variant.provider)),
            out_headers,
        ));
    };
    set_header(&mut out_headers, "x-rampart-variant", &variant.name);
    set_header(
        &mut out_headers,
        "x-rampart-cohort",
        assignment.cohort.as_str(),
    );
    if let Some(v) = view {
        set_header(&mut out_headers, "x-rampart-stage", &v.stage);
    }

    let provider_body = request::for_variant(&req, variant, stream);
    let mut span = gw.telemetry.request(&headers, &route.name);
    span.assigned(
        &request_id,
        variant,
        assignment.cohort.as_str(),
        view.map(|v| v.rollout.as_str()),
        view.map(|v| v.stage.as_str()),
    );
    let mut served = Served {
        gw: gw.clone(),
        request_id,
        ts_ms,
        started,
        route: route.name.clone(),
        rollout: view.map(|v| v.rollout.clone()),
        stage: view.map(|v| v.stage.clone()),
        variant: variant.clone(),
        cohort: assignment.cohort,
        key_hash: routing_key.map(routing::key_hash),
        tenant: tenant.map(str::to_string),
        class: class.map(str::to_string),
        streamed: stream,
        baseline_tx: None,
        done: false,
        span,
    };

    // Mirror to the candidate before waiting on the baseline, so both run concurrently.
    if assignment.shadow
        && let Some(v) = view
        && let Some(cand) = route.variants.get(&v.candidate)
    {
        served.baseline_tx = gw.shadow.dispatch(
            &gw,
            ShadowJob {
                request: &req,
                route,
                candidate: cand,
                view: v,
                served: &served,
            },
        );
    }

    let reply = provider.chat(&provider_body, class, stream).await;
    match reply {
        Err(e) => {
            let err = ApiError::from(e);
            let outcome = if matches!(err, ApiError::UpstreamTimeout(_)) {
                Outcome::Timeout
            } else {
                Outcome::Error
            };
            served.finish(
                err.status().as_u16(),
                outcome,
                None,
                None,
                Some(err.to_string()),
            );
            if assignment.candidate
                && let Some(v) = view
            {
                let failed = super::fallback::Failed {
                    route,
                    view: v,
                    request: &req,
                    class,
                    stream,
                };
                if let Some(resp) =
                    super::fallback::baseline_answer(&gw, failed, out_headers.clone()).await
                {
                    return Ok(resp);
                }
            }
            Err((err, out_headers))
        }
        Ok(Reply::Json(v, raw)) => {
            let answer = Answer::from_completion(&v);
            served.finish(200, Outcome::Ok, Some(&answer), None, None);
            let mut resp = match raw {
                Some(bytes) => (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    bytes,
                )
                    .into_response(),
                None => axum::Json(v).into_response(),
            };
            resp.headers_mut().extend(out_headers);
            Ok(resp)
        }
        Ok(Reply::Stream(chunks)) => {
            let state = StreamState {
                chunks,
                rec: crate::record::StreamRecorder::new(served),
                forward_usage: request::client_wants_stream_usage(&req),
                done: false,
            };
            let sse = futures_util::stream::unfold(state, next_event);
            let mut resp = Sse::new(sse).into_response();
            resp.headers_mut().extend(out_headers);
            Ok(resp)
        }
    }
}

struct StreamState {
    chunks:
        futures_util::stream::BoxStream<'static, Result<Value, crate::providers::ProviderError>>,
    rec: crate::record::StreamRecorder,
    forward_usage: bool,
    done: bool,
}

/// Forward the provider's chunks as they arrive, accounting for each on the way.
async fn next_event(
    mut st: StreamState,
) -> Option<(Result<Event, std::convert::Infallible>, StreamState)> {
    if st.done {
        return None;
    }
    loop {
        match st.chunks.next().await {
            Some(Ok(chunk)) => {
                st.rec.push(&chunk);
                // The usage-only chunk was requested by rampart; pass it on only if the client asked too.
                let usage_only = chunk
                    .get("choices")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty)
                    && chunk.get("usage").is_some_and(|u| !u.is_null());
                if usage_only && !st.forward_usage {
                    continue;
                }
                return Some((Ok(Event::default().data(chunk.to_string())), st));
            }
            Some(Err(e)) => {
                let err = ApiError::from(e);
                st.rec.fail(&err);
                st.done = true;
                return Some((Ok(Event::default().data(err.body().to_string())), st));
            }
            None => {
                st.rec.complete();
                st.done = true;
                return Some((Ok(Event::default().data("[DONE]")), st));
            }
        }
    }
}
