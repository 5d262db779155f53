//! The simulator over HTTP: an OpenAI-compatible surface plus test helpers.
//!
//! | route | |
//! |---|---|
//! | `POST /v1/chat/completions` | JSON, or SSE (`data: {chunk}\n\n` … `data: [DONE]\n\n`) when `"stream": true` |
//! | `POST /v1/messages` | Anthropic's Messages API: JSON, or SSE when `"stream": true`; errors and tool use (see [`crate::anthropic`]) |
//! | `POST /v1/embeddings` | deterministic embeddings |
//! | `GET /v1/models` | the served models |
//! | `GET /_mock/received` | JSON array of `{body, class}`, oldest first; `DELETE` clears it |
//! | `GET /healthz` | `ok` |
//!
//! The prompt class comes from the `x-rampart-class` header. Errors are OpenAI-shaped JSON with
//! the simulator's status, also for streaming requests (they are decided before the first chunk).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::Value;

use crate::error::SimError;
use crate::simulator::Simulator;

/// Largest accepted request body (above the gateway's default 16 MiB cap, so the gateway's
/// limit is the one that bites).
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// The header carrying the prompt class.
pub const CLASS_HEADER: &str = "x-rampart-class";

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.body)).into_response()
    }
}

/// The simulator's routes (see the module doc).
pub fn router(sim: Arc<Simulator>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/messages", post(messages))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/_mock/received", get(received).delete(clear_received))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(sim)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then drains open connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Arc<Simulator>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(shutdown)
        .await
}

fn parse_json(body: &Bytes) -> Result<Value, SimError> {
    serde_json::from_slice(body).map_err(|e| {
        SimError::invalid_request(format!("the request body is not valid JSON: {e}"), "body")
    })
}

fn class_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(CLASS_HEADER).and_then(|v| v.to_str().ok())
}

async fn chat(State(sim): State<Arc<Simulator>>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match parse_json(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let class = class_of(&headers);
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        return match sim.complete(&body, class).await {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => e.into_response(),
        };
    }
    match sim.stream(&body, class).await {
        Err(e) => e.into_response(),
        Ok(chunks) => {
            let events = chunks
                .map(|c| Bytes::from(format!("data: {c}\n\n")))
                .chain(futures_util::stream::once(async {
                    Bytes::from_static(b"data: [DONE]\n\n")
                }))
                .map(Ok::<_, Infallible>);
            let mut resp = Response::new(Body::from_stream(events));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
    }
}

async fn messages(State(sim): State<Arc<Simulator>>, headers: HeaderMap, body: Bytes) -> Response {
    crate::anthropic::messages(sim, headers, body).await
}

async fn embeddings(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    match parse_json(&body).and_then(|b| sim.embeddings(&b)) {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn models(State(sim): State<Arc<Simulator>>) -> Response {
    axum::Json(sim.models_body()).into_response()
}

async fn received(State(sim): State<Arc<Simulator>>) -> Response {
    axum::Json(sim.received()).into_response()
}

async fn clear_received(State(sim): State<Arc<Simulator>>) -> StatusCode {
    sim.clear_received();
    StatusCode::NO_CONTENT
}
