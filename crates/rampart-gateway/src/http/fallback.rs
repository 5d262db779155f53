//! Fallback for canary users: when the candidate fails a canary user's request before the
//! first byte (an error or a timeout, after its retries), the request goes to the baseline
//! and the user gets its answer, marked `x-rampart-fallback: candidate-error`
//! (`rollouts.R.fallback_to_baseline`, default on).
//!
//! The candidate's failure has already been recorded as the candidate's (metrics, event,
//! guardrail signal) when this runs, so the kill switch sees exactly what it saw without the
//! fallback; the baseline's answer to a canary user is served but not recorded, so it cannot
//! dilute the canary cohort's error rate.

use axum::http::HeaderValue;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use rampart_core::config::RouteConfig;
use rampart_core::request::{self, ChatRequest};
use rampart_core::routing::RolloutView;

use crate::error::ApiError;
use crate::plane::DataPlane;
use crate::providers::{Chunks, Reply};

pub const HEADER: &str = "x-rampart-fallback";

/// What the failed candidate call was.
pub struct Failed<'a> {
    pub route: &'a RouteConfig,
    pub view: &'a RolloutView,
    pub request: &'a ChatRequest,
    pub class: Option<&'a str>,
    pub stream: bool,
}

/// The baseline's answer, or `None` when the rollout has no fallback or the baseline failed
/// too (the client then gets the candidate's error).
pub(super) async fn baseline_answer(
    gw: &DataPlane,
    f: Failed<'_>,
    mut marks: super::chat::Marks,
) -> Option<Response> {
    let enabled = gw
        .config
        .rollouts
        .get(&f.view.rollout)
        .is_some_and(|r| r.fallback_to_baseline);
    if !enabled {
        return None;
    }
    let variant = f.route.variants.get(&f.route.baseline)?;
    let provider = gw.providers.get(&variant.provider)?;
    let body = request::for_variant(f.request, variant, f.stream);
    let reply = provider.chat(&body, f.class, f.stream).await.ok()?;
    marks.variant = super::chat::Marks::value(&variant.name);
    let mut resp = match reply {
        Reply::Json(c) => super::json_response(c.body),
        Reply::Stream(chunks) => {
            let forward_usage = f.request.stream_usage;
            super::sse::response(relay(chunks, forward_usage))
        }
    };
    marks.set_on(resp.headers_mut());
    resp.headers_mut()
        .insert(HEADER, HeaderValue::from_static("candidate-error"));
    Some(resp)
}

/// The baseline's chunks as SSE events: an error ends the stream with an error event, the
/// end with `[DONE]`; the usage-only chunk only when the client asked for it.
fn relay(chunks: Chunks, forward_usage: bool) -> impl futures_util::Stream<Item = Bytes> {
    futures_util::stream::unfold((chunks, false), move |(mut s, done)| async move {
        if done {
            return None;
        }
        loop {
            let ev = match s.next().await {
                Some(Ok(chunk)) => match super::chat::chunk_event(&chunk, forward_usage) {
                    Some(ev) => return Some((ev, (s, false))),
                    None => continue,
                },
                Some(Err(e)) => super::sse::data(&ApiError::from(e).body().to_string()),
                None => super::sse::data("[DONE]"),
            };
            return Some((ev, (s, true)));
        }
    })
}
