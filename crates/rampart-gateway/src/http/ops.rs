//! Operational endpoints: `/metrics` (Prometheus text), `/healthz` (the process answers) and
//! `/readyz` (it accepts traffic: not shutting down, writer alive; `degraded: …` while a rollout
//! state change is applied but not yet stored, or a replica cannot reach the shared store).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::Gateway;

pub async fn metrics(State(gw): State<Gateway>) -> Response {
    let stats = gw.writer.stats();
    gw.metrics.store.write_errors.set(stats.write_errors as i64);
    gw.metrics
        .store
        .written
        .set((stats.written_events + stats.written_pairs) as i64);
    gw.metrics.store.lost.set(stats.lost as i64);
    gw.metrics.store.queued.set(stats.queued as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gw.metrics.encode(),
    )
        .into_response()
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(gw): State<Gateway>) -> Response {
    if gw.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else if gw.writer.is_closed() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "event writer is not running",
        )
            .into_response()
    } else if let Some(why) = gw
        .controller
        .cluster
        .as_ref()
        .and_then(|c| c.degraded(gw.clock.now_ms()))
    {
        // Fail-static: serving from the last known state, events queued.
        (StatusCode::OK, format!("degraded: {why}")).into_response()
    } else if let Some(why) = gw.controller.writes.degraded() {
        // Still serving (routing already applies every change), but a restart now would lose
        // a change the store has not taken yet.
        (StatusCode::OK, format!("degraded: {why}")).into_response()
    } else {
        (StatusCode::OK, "ready").into_response()
    }
}
