//! `POST /v1/outcomes`: slow business signals (CSAT, refunds, …), one object or an array of up
//! to [`MAX_BATCH`].
//!
//! Each item is checked on its own ([`rampart_core::outcomes`]) and attributed to the cohort
//! and variant its request had when it was served: by `request_id` through the stored request
//! event, or by `routing_key` + `rollout` through the rollout's persisted percent history and
//! the sticky bucket. Valid items are stored in one transaction even when others are refused;
//! the answer names every refused item by its index. Answers:
//!
//! - every item accepted: `200 {"accepted": n, "refused": []}`;
//! - a single object refused: its 4xx (`404` for an unknown request id or rollout, `400`
//!   otherwise) in OpenAI's error shape, `code` naming the problem (`unknown_request_id`, …);
//! - a batch with refused items: `422`, `code = "outcomes_refused"`, the message naming the
//!   first refused items, plus `accepted` (how many were stored) and `refused`
//!   (`[{index, code, message}]`).
//!
//! A request's event reaches the store within the writer's `flush_interval`; an outcome posted
//! before that finds no request (404) and may be retried: an outcome of one name per request is
//! stored once.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rampart_core::config::Config;
use rampart_core::outcomes::{
    OutcomeError, OutcomeItem, OutcomeRecord, Parsed, Target, attribute_to_event, attribute_to_key,
    parse_item,
};
use rampart_core::rollout::RolloutState;
use rampart_store::Store;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::chat::read_body;
use crate::metrics::BusinessOutcomeLabels;
use crate::plane::DataPlane;

/// Most items in one call.
pub const MAX_BATCH: usize = 1000;

/// A refused item.
#[derive(Debug)]
struct Refusal {
    index: usize,
    error: ItemError,
}

#[derive(Debug)]
enum ItemError {
    Outcome(OutcomeError),
    Shape(String),
    Store(String),
}

impl ItemError {
    fn code(&self) -> &'static str {
        match self {
            ItemError::Outcome(e) => e.code(),
            ItemError::Shape(_) => "invalid_item",
            ItemError::Store(_) => "store_error",
        }
    }
    fn message(&self) -> String {
        match self {
            ItemError::Outcome(e) => e.to_string(),
            ItemError::Shape(m) | ItemError::Store(m) => m.clone(),
        }
    }
    fn status(&self) -> StatusCode {
        match self {
            ItemError::Outcome(e) if e.is_not_found() => StatusCode::NOT_FOUND,
            ItemError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

pub async fn outcomes(State(gw): State<DataPlane>, headers: HeaderMap, body: Body) -> Response {
    match handle(&gw, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The items of a body: one object or an array of objects.
fn items_of(bytes: &[u8]) -> Result<(Vec<Value>, bool), ApiError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("body is not JSON: {e}")))?;
    match v {
        Value::Array(items) if items.is_empty() => {
            Err(ApiError::BadRequest("empty batch: no outcomes".into()))
        }
        Value::Array(items) if items.len() > MAX_BATCH => Err(ApiError::BadRequest(format!(
            "at most {MAX_BATCH} outcomes per call (got {})",
            items.len()
        ))),
        Value::Array(items) => Ok((items, true)),
        other => Ok((vec![other], false)),
    }
}

async fn handle(gw: &DataPlane, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(gw, headers, body).await?;
    let (items, batch) = items_of(&bytes)?;
    let now = gw.clock.now_ms();
    let mut refused = Vec::new();
    let mut parsed = Vec::with_capacity(items.len());
    for (index, v) in items.into_iter().enumerate() {
        let item = serde_json::from_value::<OutcomeItem>(v).map_err(|e| {
            ItemError::Shape(format!(
                "not an outcome: {e}; expected {{request_id | (routing_key, rollout), name, value, at?}}"
            ))
        });
        match item.and_then(|i| parse_item(&i, now).map_err(ItemError::Outcome)) {
            Ok(p) => parsed.push((index, p)),
            Err(error) => refused.push(Refusal { index, error }),
        }
    }
    let store = gw.store.clone();
    let config = gw.config.clone();
    let (accepted, more) = tokio::task::spawn_blocking(move || {
        attribute_and_store(store.as_ref(), &config, parsed, now)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("outcome task failed: {e}")))??;
    refused.extend(more);
    refused.sort_by_key(|r| r.index);
    for o in &accepted {
        count(gw, o);
    }
    Ok(answer(batch, accepted.len(), &refused))
}

fn count(gw: &DataPlane, o: &OutcomeRecord) {
    let configured = gw
        .config
        .rollouts
        .get(&o.rollout)
        .is_some_and(|r| r.slow_signals.iter().any(|s| s.name == o.name));
    gw.metrics
        .outcomes
        .total
        .get_or_create(&BusinessOutcomeLabels {
            rollout: o.rollout.clone(),
            name: if configured {
                o.name.clone()
            } else {
                "other".into()
            },
            cohort: o.cohort.as_str().to_string(),
        })
        .inc();
}

fn answer(batch: bool, accepted: usize, refused: &[Refusal]) -> Response {
    if refused.is_empty() {
        return (
            StatusCode::OK,
            axum::Json(json!({"accepted": accepted, "refused": []})),
        )
            .into_response();
    }
    if let (false, [only]) = (batch, refused) {
        let body = json!({"error": {
            "message": only.error.message(),
            "type": "invalid_request_error",
            "code": only.error.code(),
        }});
        return (only.error.status(), axum::Json(body)).into_response();
    }
    let listed: Vec<String> = refused
        .iter()
        .take(5)
        .map(|r| format!("item {}: {}", r.index, r.error.message()))
        .collect();
    let message = format!(
        "{} of {} outcomes refused ({} stored): {}{}",
        refused.len(),
        refused.len() + accepted,
        accepted,
        listed.join("; "),
        if refused.len() > 5 { "; …" } else { "" }
    );
    let items: Vec<Value> = refused
        .iter()
        .map(|r| json!({"index": r.index, "code": r.error.code(), "message": r.error.message()}))
        .collect();
    let body = json!({
        "error": {"message": message, "type": "invalid_request_error", "code": "outcomes_refused"},
        "accepted": accepted,
        "refused": items,
    });
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

/// Looks up each item's request or rollout, attributes it and stores the valid ones. Blocking.
fn attribute_and_store(
    store: &dyn Store,
    config: &Config,
    parsed: Vec<(usize, Parsed)>,
    now_ms: i64,
) -> Result<(Vec<OutcomeRecord>, Vec<Refusal>), ApiError> {
    let outcomes = store
        .outcomes()
        .ok_or_else(|| ApiError::Unavailable("this store backend does not keep outcomes".into()))?;
    let max_age = i64::try_from(config.outcomes.max_age.as_millis()).unwrap_or(i64::MAX);
    let mut states: BTreeMap<String, Option<RolloutState>> = BTreeMap::new();
    let mut records = Vec::with_capacity(parsed.len());
    let mut refused = Vec::new();
    for (index, p) in parsed {
        let res = match &p.target {
            Target::Request(id) => match store.get_event(id) {
                Ok(Some(ev)) => {
                    attribute_to_event(&p, &ev, max_age, now_ms).map_err(ItemError::Outcome)
                }
                Ok(None) => Err(ItemError::Outcome(OutcomeError::UnknownRequest(id.clone()))),
                Err(e) => Err(ItemError::Store(format!("cannot read the request: {e}"))),
            },
            Target::Key {
                routing_key,
                rollout,
            } => by_key(
                store,
                config,
                &mut states,
                &p,
                routing_key,
                rollout,
                max_age,
                now_ms,
            ),
        };
        match res {
            Ok(r) => records.push((index, r)),
            Err(error) => refused.push(Refusal { index, error }),
        }
    }
    let only: Vec<OutcomeRecord> = records.iter().map(|(_, r)| r.clone()).collect();
    if !only.is_empty() {
        outcomes
            .insert_outcomes(&only)
            .map_err(|e| ApiError::Unavailable(format!("cannot store outcomes now: {e}")))?;
    }
    Ok((only, refused))
}

#[expect(
    clippy::too_many_arguments,
    reason = "one item's lookups, with a per-batch cache"
)]
fn by_key(
    store: &dyn Store,
    config: &Config,
    states: &mut BTreeMap<String, Option<RolloutState>>,
    p: &Parsed,
    routing_key: &str,
    rollout: &str,
    max_age: i64,
    now_ms: i64,
) -> Result<OutcomeRecord, ItemError> {
    let unknown = || ItemError::Outcome(OutcomeError::UnknownRollout(rollout.to_string()));
    let cfg = config.rollouts.get(rollout).ok_or_else(unknown)?;
    let baseline = config
        .routes
        .get(&cfg.route)
        .map(|r| r.baseline.clone())
        .ok_or_else(unknown)?;
    if !states.contains_key(rollout) {
        let state = store
            .load_rollout_state(rollout)
            .map_err(|e| ItemError::Store(format!("cannot read the rollout: {e}")))?
            .and_then(|json| serde_json::from_str::<RolloutState>(&json).ok());
        states.insert(rollout.to_string(), state);
    }
    let state = states
        .get(rollout)
        .and_then(Option::as_ref)
        .ok_or_else(unknown)?;
    attribute_to_key(p, routing_key, cfg, state, &baseline, max_age, now_ms)
        .map_err(ItemError::Outcome)
}
