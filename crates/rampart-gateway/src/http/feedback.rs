//! `POST /v1/feedback`: thumbs and edit outcomes against a served request.
//!
//! The feedback goes through the event writer, behind every event queued before it, so feedback
//! for a request answered a moment ago finds its event. Unknown request id → 404.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rampart_core::record::{EditOutcome, Feedback, Thumbs};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::http::chat::read_body;
use crate::plane::DataPlane;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    request_id: String,
    thumbs: Option<Thumbs>,
    outcome: Option<EditOutcome>,
    final_text: Option<String>,
}

pub async fn feedback(State(gw): State<DataPlane>, headers: HeaderMap, body: Body) -> Response {
    match handle(&gw, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(gw: &DataPlane, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(gw, headers, body).await?;
    let b: FeedbackBody = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid feedback: {e}; expected {{request_id, thumbs: \"up\"|\"down\"?, outcome: \"sent_unchanged\"|\"edited\"|\"rejected\"?, final_text?}}"
        ))
    })?;
    if b.request_id.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "`request_id` must not be empty".into(),
        ));
    }
    if b.thumbs.is_none() && b.outcome.is_none() && b.final_text.is_none() {
        return Err(ApiError::BadRequest(
            "feedback needs at least one of `thumbs`, `outcome`, `final_text`".into(),
        ));
    }
    let mut fb = Feedback {
        request_id: b.request_id.clone(),
        ts_ms: gw.clock.now_ms(),
        thumbs: b.thumbs,
        outcome: b.outcome,
        final_text: b.final_text,
    };
    crate::capture::feedback(&gw.config.store, &mut fb);
    let found = gw
        .writer
        .feedback(fb)
        .await
        .map_err(|e| ApiError::Unavailable(format!("cannot store feedback now: {e}")))?;
    if !found {
        return Err(ApiError::NotFound(format!(
            "no request with id `{}`",
            b.request_id
        )));
    }
    // Label the feedback counter with the request's route, variant and cohort.
    let store = gw.store.clone();
    let id = b.request_id.clone();
    if let Ok(Ok(Some(ev))) = tokio::task::spawn_blocking(move || store.get_event(&id)).await {
        if let Some(rollout) = &ev.rollout {
            gw.signal(crate::signal::Signal::Feedback {
                rollout: rollout.clone(),
                cohort: ev.cohort,
                ts_ms: gw.clock.now_ms(),
                thumbs: b.thumbs,
            });
        }
        let cohort = ev.cohort.as_str();
        if let Some(t) = b.thumbs {
            let kind = match t {
                Thumbs::Up => "thumbs_up",
                Thumbs::Down => "thumbs_down",
            };
            gw.metrics.feedback(&ev.route, &ev.variant, cohort, kind);
        }
        if let Some(o) = b.outcome {
            let kind = match o {
                EditOutcome::SentUnchanged => "sent_unchanged",
                EditOutcome::Edited => "edited",
                EditOutcome::Rejected => "rejected",
            };
            gw.metrics.feedback(&ev.route, &ev.variant, cohort, kind);
        }
    }
    Ok((
        StatusCode::OK,
        axum::Json(json!({"status": "recorded", "request_id": b.request_id})),
    )
        .into_response())
}
