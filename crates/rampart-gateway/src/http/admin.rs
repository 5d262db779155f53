//! The admin API under `/admin/`: rollout state, pairs, the comparison report, and (with the
//! controller) operator actions and the audit log.
//!
//! Access: with a token configured (`server.admin_token_env` names a set variable), every call
//! needs `Authorization: Bearer <token>`; without one, only loopback clients are answered.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rampart_store::{PairCursor, PairFlag, PairQuery};
use serde::Deserialize;
use serde_json::json;

use crate::control::ControlError;
use crate::error::ApiError;
use crate::state::Gateway;

/// Reject callers that are not allowed to use the admin API.
pub async fn require_admin(
    State(gw): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    match &gw.admin_token {
        Some(token) => {
            let presented = req
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer_token);
            if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
                return ApiError::Unauthorized("admin API: missing or wrong bearer token".into())
                    .into_response();
            }
        }
        None => {
            if !peer.ip().is_loopback() {
                return ApiError::Unauthorized(
                    "admin API: no admin token is configured, so only loopback clients are served"
                        .into(),
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 7235 §2.1).
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// Whether a presented secret equals the expected one, in time that depends on neither (not
/// even on their lengths): both are hashed to 32 bytes, and every byte of the digests is
/// compared whatever the earlier ones were.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    let diff = da
        .iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

pub(crate) fn rollout_json(gw: &Gateway, name: &str) -> Option<serde_json::Value> {
    let cfg = gw.config.rollouts.get(name)?;
    let view = gw.view_of(name)?;
    let statuses = gw.controller.status.load();
    let status = statuses.get(name).map(|s| s.as_ref());
    Some(json!({
        "status": status,
        "name": name,
        "route": cfg.route,
        "baseline": gw.config.routes.get(&cfg.route).map(|r| r.baseline.clone()),
        "candidate": cfg.candidate,
        "stage": view.stage,
        "percent": view.percent,
        "shadow_percent": view.shadow_percent,
        "tenant_caps": view.tenant_caps,
        "stages": cfg.stages.iter().map(|s| json!({
            "name": s.name, "percent": s.percent, "shadow_percent": s.shadow_percent,
            "min_duration_seconds": s.min_duration.as_secs(),
        })).collect::<Vec<_>>(),
    }))
}

pub async fn list_rollouts(State(gw): State<Gateway>) -> Response {
    let all: Vec<_> = gw
        .config
        .rollouts
        .keys()
        .filter_map(|n| rollout_json(&gw, n))
        .collect();
    axum::Json(json!({ "rollouts": all })).into_response()
}

pub async fn get_rollout(
    State(gw): State<Gateway>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    rollout_json(&gw, &name)
        .map(|v| axum::Json(v).into_response())
        .ok_or_else(|| unknown_rollout(&gw, &name))
}

pub fn unknown_rollout(gw: &Gateway, name: &str) -> ApiError {
    let known: Vec<&str> = gw.config.rollouts.keys().map(String::as_str).collect();
    ApiError::NotFound(format!(
        "unknown rollout `{name}`; known rollouts: {}",
        if known.is_empty() {
            "none".into()
        } else {
            known.join(", ")
        }
    ))
}

#[derive(Debug, Deserialize)]
pub struct PairsQuery {
    limit: Option<usize>,
    class: Option<String>,
    tenant: Option<String>,
    /// `refusal`, `format_change` or `low_similarity` (see [`rampart_store::PairFlag`]).
    flag: Option<String>,
    /// Unix milliseconds, or a duration ago such as `15m`.
    since: Option<String>,
    /// The previous page's `next`: this page holds the pairs older than it.
    before: Option<String>,
}

/// `GET /admin/rollouts/{name}/pairs?limit=&class=&tenant=&flag=&since=&before=`: the newest
/// pairs the filters keep, each with its flags, and `next` (the `before` of the next, older
/// page; `null` on the last one). Each page is a bounded read of the store's indexes.
pub async fn pairs(
    State(gw): State<Gateway>,
    Path(name): Path<String>,
    Query(q): Query<PairsQuery>,
) -> Result<Response, ApiError> {
    if !gw.config.rollouts.contains_key(&name) {
        return Err(unknown_rollout(&gw, &name));
    }
    let limit = q.limit.unwrap_or(20).clamp(1, 1000);
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => Some(match s.parse::<i64>() {
            Ok(ms) => ms,
            Err(_) => {
                let d = rampart_core::config::parse_duration(s)
                    .map_err(|e| ApiError::BadRequest(format!("`since`: {e} (got `{s}`)")))?;
                gw.clock.now_ms() - d.as_millis() as i64
            }
        }),
    };
    let bad =
        |field: &str, e: &dyn std::fmt::Display| ApiError::BadRequest(format!("`{field}`: {e}"));
    let empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let query = PairQuery {
        class: empty(q.class),
        tenant: empty(q.tenant),
        flag: empty(q.flag)
            .map(|f| f.parse::<PairFlag>())
            .transpose()
            .map_err(|e| bad("flag", &e))?,
        since_ms: since,
        before: empty(q.before)
            .map(|c| c.parse::<PairCursor>())
            .transpose()
            .map_err(|e| bad("before", &e))?,
    };
    let store = gw.store.clone();
    let page = tokio::task::spawn_blocking(move || store.pairs_page(&name, &query, limit))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Unavailable(format!("cannot read pairs: {e}")))?;
    Ok(axum::Json(page).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    reason: String,
    actor: Option<String>,
    expected_stage: Option<String>,
}

/// `POST /admin/rollouts/{name}/{pause|resume|promote|rollback|reset}`.
pub async fn action(
    State(gw): State<Gateway>,
    Path((name, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    use rampart_core::rollout::{Command, CommandKind};
    if !gw.config.rollouts.contains_key(&name) {
        return Err(unknown_rollout(&gw, &name));
    }
    let kind = match action.as_str() {
        "pause" => CommandKind::Pause,
        "resume" => CommandKind::Resume,
        "promote" => CommandKind::Promote,
        "rollback" => CommandKind::Rollback,
        "reset" => CommandKind::Reset,
        other => {
            return Err(ApiError::NotFound(format!(
                "unknown action `{other}`; use pause, resume, promote, rollback or reset"
            )));
        }
    };
    let b: ActionBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"reason\": \"…\", \"actor\"?: \"…\"}}: {e}"
        ))
    })?;
    if b.reason.trim().is_empty() {
        return Err(ApiError::BadRequest("`reason` must not be empty".into()));
    }
    let command = Command {
        kind,
        actor: b
            .actor
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| "admin-api".into()),
        reason: b.reason,
        expected_stage: b.expected_stage,
    };
    match gw.command(&name, command).await {
        Ok(status) => Ok(axum::Json(json!({ "status": status })).into_response()),
        Err(e) => Err(control_error(e)),
    }
}

/// How a refused or failed order reads to the operator.
fn control_error(e: ControlError) -> ApiError {
    match e {
        ControlError::Refused(e) => ApiError::Conflict(e.to_string()),
        ControlError::UnknownRollout(name) => {
            ApiError::NotFound(format!("unknown rollout `{name}`"))
        }
        ControlError::NotStored(msg) => ApiError::Unavailable(msg),
        ControlError::Stopped => ApiError::Unavailable("the controller is not running".into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantBody {
    max_percent: f64,
}

/// `PUT /admin/rollouts/{name}/tenants/{tenant}`: cap (or uncap, with 100) a tenant's canary percent.
pub async fn put_tenant(
    State(gw): State<Gateway>,
    Path((name, tenant)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    if !gw.config.rollouts.contains_key(&name) {
        return Err(unknown_rollout(&gw, &name));
    }
    let b: TenantBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("expected {{\"max_percent\": 0..100}}: {e}")))?;
    if !(0.0..=100.0).contains(&b.max_percent) {
        return Err(ApiError::BadRequest(format!(
            "`max_percent` must be between 0 and 100 (got {})",
            b.max_percent
        )));
    }
    gw.set_tenant_cap(&name, &tenant, b.max_percent)
        .await
        .map_err(control_error)?;
    get_rollout(State(gw), Path(name)).await
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    limit: Option<usize>,
}

/// `GET /admin/rollouts/{name}/events`: the audit log, oldest first.
pub async fn events(
    State(gw): State<Gateway>,
    Path(name): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    if !gw.config.rollouts.contains_key(&name) {
        return Err(unknown_rollout(&gw, &name));
    }
    let limit = q.limit.unwrap_or(200).clamp(1, 10_000);
    let store = gw.store.clone();
    let entries = tokio::task::spawn_blocking(move || store.audit_log(&name, limit))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Unavailable(format!("cannot read the audit log: {e}")))?;
    Ok(axum::Json(json!({ "events": entries })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `json` (default), `text` or `html`.
    format: Option<String>,
    /// Columns of the text rendering (default 120, at least 20).
    width: Option<usize>,
}

/// `GET /admin/rollouts/{name}/report?format=json|text|html[&width=N]`: the comparison report
/// over every stored pair of the rollout and the canary-cohort view of its request events
/// (see [`crate::report`]). Computed on a blocking thread, streaming the pairs.
pub async fn report(
    State(gw): State<Gateway>,
    Path(name): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    use rampart_core::compare::{outcomes_section, render_html_page, render_text};
    let Some(rollout) = gw.config.rollouts.get(&name) else {
        return Err(unknown_rollout(&gw, &name));
    };
    let config = crate::report::compare_config(&rollout.gates);
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "text" | "html") {
        return Err(ApiError::BadRequest(format!(
            "`format` must be json, text or html (got `{format}`)"
        )));
    }
    let store = gw.store.clone();
    let signals = rollout.slow_signals.clone();
    let r = tokio::task::spawn_blocking(move || {
        let mut r = crate::report::rollout_report(&*store, &name, config)?;
        r.outcomes = crate::report::outcome_summaries(&*store, &name, &signals)?;
        Ok::<_, rampart_store::StoreError>(r)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Unavailable(format!("cannot read the rollout's pairs: {e}")))?;
    let typed = |ct: &'static str, body: String| {
        ([(axum::http::header::CONTENT_TYPE, ct)], body).into_response()
    };
    Ok(match format {
        "text" => {
            let width = q.width.unwrap_or(120).max(20);
            let mut text = render_text(&r.report, width);
            text.push_str(&crate::report::cohort_text(r.cohorts.as_ref(), width));
            text.push_str(&crate::report::outcomes_text(&r.outcomes, width));
            typed("text/plain; charset=utf-8", text)
        }
        "html" => typed(
            "text/html; charset=utf-8",
            render_html_page(&r.report, &r.guardrails, "", &outcomes_section(&r.outcomes)),
        ),
        _ => axum::Json(r).into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, constant_time_eq};

    #[test]
    fn tokens_compare_equal_only_when_equal_whatever_their_lengths() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret "));
        assert!(!constant_time_eq(b"", b"s3cret"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for v in [
            "Bearer s3cret",
            "bearer s3cret",
            "BEARER s3cret",
            "bEaReR  s3cret",
        ] {
            assert_eq!(bearer_token(v), Some("s3cret"), "{v}");
        }
        assert_eq!(bearer_token("Basic s3cret"), None);
        assert_eq!(bearer_token("Bearers3cret"), None);
    }
}
