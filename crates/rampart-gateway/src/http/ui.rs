//! `/ui/`: the live dashboard, served by the gateway itself.
//!
//! The page is plain HTML, JavaScript and CSS embedded in the binary (`include_str!`): no build
//! step, no CDN, it works offline. It polls its data calls under `/ui/api/` every 2 s; each
//! reads in-memory aggregates (the controller's published status, the guardrail history ring)
//! or a bounded page of the store (pairs, audit log), never every row. The comparison report
//! aggregates every stored pair's features, so the page's call never computes it: it answers
//! from a per-rollout cache that a background task fills when the gateway starts and refreshes
//! while the page asks for it, at most as often as [`REPORT_MIN_AGE`] allows; until the first one is ready the call answers
//! `202 {"pending": true}` at once and the page asks again at its next poll. (The page shows the
//! pair sections only; the canary-cohort view over request events is the admin API's report.)
//!
//! Access follows the admin API's rule. Without an admin token configured, only loopback
//! clients are served. With one, every page and data call needs it: as `Authorization: Bearer`,
//! or as the session cookie `POST /ui/login` sets after checking the token once (a hash of the
//! token, `HttpOnly`, `SameSite=Strict`, no expiry: it lasts the browser session). Actions sent
//! with the cookie must also carry `x-rampart-ui: 1`, which a cross-site form cannot set.
//!
//! Guardrail history: a task samples the controller's published evaluation every 500 ms and
//! appends each new one to a per-rollout ring of the last [`HISTORY`] checks, so a chart is a
//! bounded read and the controller does no extra work. The ring is in memory: a restarted
//! gateway starts a new history.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rampart_core::rollout::step::Evaluation;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::http::admin;
use crate::state::Gateway;

/// Guardrail checks kept per rollout (at a 30 s check interval, six hours).
pub const HISTORY: usize = 720;
const COOKIE: &str = "rampart_ui";
const CSRF_HEADER: &str = "x-rampart-ui";

const INDEX_HTML: &str = include_str!("ui/index.html");
const LOGIN_HTML: &str = include_str!("ui/login.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// One guardrail at one check.
#[derive(Debug, Clone, Serialize)]
pub struct GuardrailPoint {
    pub name: String,
    pub canary: Option<f64>,
    pub control: Option<f64>,
    pub threshold: f64,
    /// The anytime-valid bound (sequential mode) or point estimate (threshold mode).
    pub evidence: Option<f64>,
    pub breached: bool,
}

/// One check of one rollout.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPoint {
    pub t_ms: i64,
    pub guardrails: Vec<GuardrailPoint>,
}

impl HistoryPoint {
    fn from_eval(t_ms: i64, ev: &Evaluation) -> HistoryPoint {
        HistoryPoint {
            t_ms,
            guardrails: ev
                .guardrails
                .iter()
                .map(|g| GuardrailPoint {
                    name: g.name.to_string(),
                    canary: g.value_canary,
                    control: g.value_control,
                    threshold: g.threshold,
                    evidence: g.evidence,
                    breached: g.breached,
                })
                .collect(),
        }
    }
}

/// Per-rollout rings of guardrail checks. The lock is held for a push or a copy, only by the
/// sampler and the dashboard's calls, never by the request path.
#[derive(Debug, Default)]
pub struct History {
    rings: Mutex<HashMap<String, VecDeque<HistoryPoint>>>,
}

impl History {
    pub fn push(&self, rollout: &str, p: HistoryPoint) {
        let Ok(mut rings) = self.rings.lock() else {
            return;
        };
        let ring = rings.entry(rollout.to_string()).or_default();
        if ring.len() == HISTORY {
            ring.pop_front();
        }
        ring.push_back(p);
    }

    pub fn points(&self, rollout: &str) -> Vec<HistoryPoint> {
        self.rings
            .lock()
            .ok()
            .and_then(|r| r.get(rollout).map(|ring| ring.iter().cloned().collect()))
            .unwrap_or_default()
    }
}

#[derive(Clone)]
struct Ui {
    gw: Gateway,
    history: Arc<History>,
    reports: Arc<Mutex<HashMap<String, CachedReport>>>,
}

/// How old a cached comparison report may get before a call triggers a recompute: at least
/// [`REPORT_MIN_AGE`], and [`REPORT_COST_FACTOR`] times what the last computation took, so
/// recomputing costs at most 1/20 of a core while a page watches (a report over 100,000 pairs
/// takes about 0.2 s: every 5 s; over a million, about 1.5 s: every 30 s).
const REPORT_MIN_AGE: Duration = Duration::from_secs(5);
const REPORT_COST_FACTOR: u32 = 20;

/// A rollout's last computed report (JSON), when, and whether a recompute is under way.
#[derive(Default)]
struct CachedReport {
    at: Option<std::time::Instant>,
    body: Option<axum::body::Bytes>,
    /// How long the last computation took.
    took: Duration,
    /// Why the last computation failed, while there is no report to show instead.
    error: Option<String>,
    refreshing: bool,
}

/// The dashboard's routes, with their own state; starts the history sampler.
pub fn router<S: Clone + Send + Sync + 'static>(gw: Gateway) -> Router<S> {
    let history = Arc::new(History::default());
    tokio::spawn(sample(gw.clone(), history.clone()));
    let ui = Ui {
        gw,
        history,
        reports: Arc::default(),
    };
    tokio::spawn(warm_reports(ui.clone()));
    let guarded = Router::new()
        .route("/ui/", get(|| async { page(INDEX_HTML) }))
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript", APP_JS) }),
        )
        .route("/ui/app.css", get(|| async { asset("text/css", APP_CSS) }))
        .route("/ui/api/rollouts", get(rollouts))
        .route("/ui/api/rollouts/{name}", get(rollout))
        .route("/ui/api/rollouts/{name}/history", get(history_points))
        .route("/ui/api/rollouts/{name}/events", get(events))
        .route("/ui/api/rollouts/{name}/pairs", get(pairs))
        .route("/ui/api/rollouts/{name}/report", get(report))
        .route("/ui/api/rollouts/{name}/{action}", post(action))
        .route_layer(axum::middleware::from_fn_with_state(ui.clone(), require_ui));
    Router::new()
        .merge(guarded)
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::permanent("/ui/") }),
        )
        .route("/ui/login", post(login))
        .with_state(ui)
}

/// Append each new evaluation the controller publishes to its rollout's ring.
async fn sample(gw: Gateway, history: Arc<History>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: BTreeMap<String, Evaluation> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = gw.shutdown.cancelled() => return,
        }
        let statuses = gw.controller.status.load();
        for (name, st) in statuses.iter() {
            let Some(ev) = &st.evaluation else { continue };
            if last.get(name) == Some(ev) {
                continue;
            }
            history.push(name, HistoryPoint::from_eval(st.updated_ms, ev));
            last.insert(name.clone(), ev.clone());
        }
    }
}

fn page(html: &'static str) -> Response {
    asset("text/html; charset=utf-8", html)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The session cookie's value for `token`: a hash, so the token itself never sits in a cookie.
fn session_value(token: &str) -> String {
    let digest = Sha256::digest(format!("rampart-ui.{token}").as_bytes());
    rampart_core::hex::encode(&digest)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How a caller got in, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Loopback,
    Bearer,
    Cookie,
}

/// The admin API's rule, with the session cookie as a second way to present the token.
fn access(admin_token: Option<&str>, peer: SocketAddr, headers: &HeaderMap) -> Option<Access> {
    let Some(token) = admin_token else {
        return peer.ip().is_loopback().then_some(Access::Loopback);
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(admin::bearer_token);
    if bearer.is_some_and(|b| admin::constant_time_eq(b.as_bytes(), token.as_bytes())) {
        return Some(Access::Bearer);
    }
    let expected = session_value(token);
    cookie(headers, COOKIE)
        .is_some_and(|c| admin::constant_time_eq(c.as_bytes(), expected.as_bytes()))
        .then_some(Access::Cookie)
}

async fn require_ui(
    State(ui): State<Ui>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let token = ui.gw.admin_token.as_deref();
    let is_api = req.uri().path().starts_with("/ui/api/");
    match access(token, peer, req.headers()) {
        None if is_api || token.is_none() => ApiError::Unauthorized(match token {
            Some(_) => "dashboard: missing or wrong admin token".into(),
            None => "dashboard: no admin token is configured, so only loopback clients are served"
                .into(),
        })
        .into_response(),
        // A page without the token: the login form, which shows no data.
        None => (StatusCode::UNAUTHORIZED, page(LOGIN_HTML)).into_response(),
        Some(Access::Cookie)
            if req.method() == axum::http::Method::POST
                && req.headers().get(CSRF_HEADER).is_none_or(|v| v != "1") =>
        {
            ApiError::Unauthorized(format!(
                "dashboard actions need the `{CSRF_HEADER}: 1` header"
            ))
            .into_response()
        }
        Some(_) => next.run(req).await,
    }
}

/// `POST /ui/login` `{"token": …}`: check the admin token once; on success set the session
/// cookie.
async fn login(State(ui): State<Ui>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let Some(token) = ui.gw.admin_token.as_deref() else {
        return Err(ApiError::BadRequest(
            "no admin token is configured; the dashboard serves loopback clients only".into(),
        ));
    };
    let presented = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_string))
        .ok_or_else(|| ApiError::BadRequest("expected {\"token\": \"…\"}".into()))?;
    if !admin::constant_time_eq(presented.as_bytes(), token.as_bytes()) {
        return Err(ApiError::Unauthorized("wrong admin token".into()));
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict",
        session_value(token)
    );
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

async fn rollouts(State(ui): State<Ui>) -> Response {
    let all: Vec<_> = ui
        .gw
        .config
        .rollouts
        .keys()
        .filter_map(|n| admin::rollout_json(&ui.gw, n))
        .collect();
    axum::Json(json!({ "now_ms": ui.gw.clock.now_ms(), "rollouts": all })).into_response()
}

async fn rollout(State(ui): State<Ui>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let mut v =
        admin::rollout_json(&ui.gw, &name).ok_or_else(|| admin::unknown_rollout(&ui.gw, &name))?;
    v["now_ms"] = json!(ui.gw.clock.now_ms());
    Ok(axum::Json(v).into_response())
}

async fn history_points(
    State(ui): State<Ui>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if !ui.gw.config.rollouts.contains_key(&name) {
        return Err(admin::unknown_rollout(&ui.gw, &name));
    }
    Ok(axum::Json(json!({ "points": ui.history.points(&name) })).into_response())
}

async fn events(
    State(ui): State<Ui>,
    path: Path<String>,
    q: Query<admin::EventsQuery>,
) -> Result<Response, ApiError> {
    admin::events(State(ui.gw), path, q).await
}

async fn pairs(
    State(ui): State<Ui>,
    path: Path<String>,
    q: Query<admin::PairsQuery>,
) -> Result<Response, ApiError> {
    admin::pairs(State(ui.gw), path, q).await
}

/// Computes every rollout's report once at start, one after the other, so the page finds them
/// ready.
async fn warm_reports(ui: Ui) {
    let names: Vec<String> = ui.gw.config.rollouts.keys().cloned().collect();
    for name in names {
        if ui.gw.shutdown.is_cancelled() {
            return;
        }
        if claim_refresh(&ui, &name) {
            refresh_report(&ui, &name).await;
        }
    }
}

/// Marks `name`'s report as being recomputed when it is missing or stale (see
/// [`REPORT_MIN_AGE`]) and nobody recomputes it yet; true when the caller should recompute it.
fn claim_refresh(ui: &Ui, name: &str) -> bool {
    let Ok(mut m) = ui.reports.lock() else {
        return false;
    };
    let e = m.entry(name.to_string()).or_default();
    let max_age = REPORT_MIN_AGE.max(e.took * REPORT_COST_FACTOR);
    let stale = e.at.is_none_or(|at| at.elapsed() > max_age);
    let claim = stale && !e.refreshing;
    if claim {
        e.refreshing = true;
    }
    claim
}

/// The comparison report's pair sections as JSON, from the per-rollout cache; never computed
/// on the call. When the cached one is stale (see [`REPORT_MIN_AGE`]) a recompute starts in
/// the background; `x-rampart-report-age-ms` says how old the answer is. Before the first one is
/// ready: `202 {"rollout": …, "pending": true}`.
async fn report(State(ui): State<Ui>, Path(name): Path<String>) -> Result<Response, ApiError> {
    if !ui.gw.config.rollouts.contains_key(&name) {
        return Err(admin::unknown_rollout(&ui.gw, &name));
    }
    if claim_refresh(&ui, &name) {
        let (ui, name) = (ui.clone(), name.clone());
        tokio::spawn(async move { refresh_report(&ui, &name).await });
    }
    let cached = ui.reports.lock().ok().and_then(|m| {
        m.get(&name)
            .map(|e| (e.body.clone(), e.at.map(|at| at.elapsed()), e.error.clone()))
    });
    let Some((Some(body), Some(age), _)) = cached else {
        if let Some((_, _, Some(error))) = cached {
            return Err(ApiError::Unavailable(error));
        }
        let pending = json!({ "rollout": name, "pending": true });
        return Ok((StatusCode::ACCEPTED, axum::Json(pending)).into_response());
    };
    let mut resp = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&age.as_millis().to_string()) {
        resp.headers_mut().insert("x-rampart-report-age-ms", v);
    }
    Ok(resp)
}

/// Computes `name`'s report (the pair sections: every stored pair's features, on a blocking
/// thread) into the cache.
async fn refresh_report(ui: &Ui, name: &str) {
    let store = ui.gw.store.clone();
    let rollout = name.to_string();
    let started = std::time::Instant::now();
    let computed = tokio::task::spawn_blocking(move || {
        let report = crate::report::compare_pairs(
            &*store,
            &rollout,
            &rampart_store::PairFilter::default(),
            rampart_core::compare::CompareConfig::default(),
        )
        .map_err(|e| format!("cannot read the rollout's pairs: {e}"))?;
        let mut v = serde_json::to_value(&report).map_err(|e| e.to_string())?;
        v["rollout"] = json!(rollout);
        serde_json::to_vec(&v).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let Ok(mut m) = ui.reports.lock() else {
        return;
    };
    let e = m.entry(name.to_string()).or_default();
    e.refreshing = false;
    e.took = started.elapsed();
    match computed {
        Ok(body) => {
            e.body = Some(body.into());
            e.at = Some(std::time::Instant::now());
            e.error = None;
        }
        Err(error) => {
            tracing::warn!(rollout = name, %error, "dashboard: comparison report failed");
            e.error = Some(error);
        }
    }
}

async fn action(
    State(ui): State<Ui>,
    path: Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    admin::action(State(ui.gw), path, body).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn without_a_token_only_loopback_gets_in() {
        let none = HeaderMap::new();
        assert_eq!(
            access(None, peer("127.0.0.1"), &none),
            Some(Access::Loopback)
        );
        assert_eq!(access(None, peer("::1"), &none), Some(Access::Loopback));
        assert_eq!(access(None, peer("192.0.2.7"), &none), None);
    }

    #[test]
    fn with_a_token_everyone_needs_it_as_bearer_or_session_cookie() {
        let t = Some("s3cret");
        assert_eq!(access(t, peer("127.0.0.1"), &HeaderMap::new()), None);
        let bearer = headers(&[("authorization", "Bearer s3cret")]);
        assert_eq!(access(t, peer("192.0.2.7"), &bearer), Some(Access::Bearer));
        let wrong = headers(&[("authorization", "Bearer nope")]);
        assert_eq!(access(t, peer("192.0.2.7"), &wrong), None);
        let c = format!("other=1; {COOKIE}={}", session_value("s3cret"));
        let cookie = headers(&[("cookie", &c)]);
        assert_eq!(access(t, peer("192.0.2.7"), &cookie), Some(Access::Cookie));
        let raw = headers(&[("cookie", "rampart_ui=s3cret")]);
        assert_eq!(access(t, peer("192.0.2.7"), &raw), None);
    }

    #[test]
    fn the_history_ring_keeps_the_newest_checks() {
        let h = History::default();
        for i in 0..(HISTORY as i64 + 5) {
            h.push(
                "r",
                HistoryPoint {
                    t_ms: i,
                    guardrails: Vec::new(),
                },
            );
        }
        let p = h.points("r");
        assert_eq!(p.len(), HISTORY);
        assert_eq!(p.first().unwrap().t_ms, 5);
        assert!(h.points("other").is_empty());
    }
}
