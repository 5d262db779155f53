//! What a rollback promises holds under faults: a change is routed at once, acknowledged only
//! once stored (retried until it is, surfaced while it is not), and survives a restart; tenant
//! caps never undo it; checks and pages stay on time whatever else is slow or busy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::post;
use common::{TestGateway, config, metric, metrics};
use rampart_core::rollout::{Command, CommandKind};
use rampart_core::routing::Cohort;
use rampart_gateway::clock::ManualClock;
use rampart_gateway::signal::Signal;
use rampart_store::RolloutStore;
use serde_json::{Value, json};
use tokio::sync::Mutex;

type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// Records every JSON body POSTed to `/{sink}`; `/hang` never answers.
async fn alert_receiver() -> (String, Received) {
    let got: Received = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route(
            "/hang",
            post(|| async {
                std::future::pending::<()>().await;
                axum::http::StatusCode::OK
            }),
        )
        .route(
            "/{sink}",
            post(
                |State(got): State<Received>,
                 Path(sink): Path<String>,
                 axum::Json(body): axum::Json<Value>| async move {
                    got.lock().await.push((sink, body));
                    axum::http::StatusCode::OK
                },
            ),
        )
        .with_state(got.clone());
    (common::spawn_app(app).await, got)
}

/// Poll `cond` every 20 ms until it holds or 30 s pass; whether it held.
async fn eventually<F, Fut>(mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1500 {
        if cond().await {
            return true;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn readyz(url: &str) -> String {
    reqwest::get(format!("{url}/readyz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn rollback() -> Command {
    Command::new(
        CommandKind::Rollback,
        "alice",
        "drill with the database locked",
    )
}

/// Item 1: with the SQLite file locked by another process, a rollback is routed at once, is
/// not acknowledged (503, not 200), shows on `/readyz`, the metrics and an alert, is stored
/// once the lock goes, and a restarted gateway comes back rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_with_the_database_locked_is_routed_at_once_acknowledged_only_once_stored_and_survives_restart()
 {
    let (alerts_url, alerts) = alert_receiver().await;
    let extra =
        format!("[alerts]\nmax_attempts = 1\n[[alerts.webhook]]\nurl = \"{alerts_url}/webhook\"\n");
    let cfg = config(r#"{ name = "canary-50", percent = 50 }"#, &extra);
    let t = TestGateway::start(&cfg).await;
    let u = t.url.clone();
    assert_eq!(readyz(&u).await, "ready");

    let lock = rusqlite::Connection::open(t.store.path()).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let r = reqwest::Client::new()
        .post(format!("{u}/admin/rollouts/support-v2/rollback"))
        .json(&json!({"reason": "drill with the database locked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        503,
        "a rollback that is not stored must not be acknowledged"
    );
    let err: Value = r.json().await.unwrap();
    let msg = err["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("not stored"), "{err}");
    // The data plane already routes by it.
    let view = t.gw.view_of("support-v2").unwrap();
    assert_eq!((view.stage.as_str(), view.percent), ("rolled_back", 0.0));
    // Surfaced while not stored: readyz, metrics, an alert.
    assert!(readyz(&u).await.starts_with("degraded:"));
    let m = metrics(&u).await;
    assert!(metric(&m, "rampart_control_writes_pending ") >= 1.0, "{m}");
    assert!(
        metric(&m, "rampart_control_write_failures_total ") >= 1.0,
        "{m}"
    );
    let alerted = eventually(|| async {
        alerts.lock().await.iter().any(|(_, b)| {
            b["reason"]
                .as_str()
                .is_some_and(|r| r.contains("cannot be stored"))
        })
    })
    .await;
    assert!(alerted, "{:?}", alerts.lock().await);

    // The lock goes: the writes are retried until stored, in order.
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    assert!(eventually(|| async { readyz(&u).await == "ready" }).await);
    let m = metrics(&u).await;
    assert_eq!(metric(&m, "rampart_control_writes_pending "), 0.0);
    let audit = t.store.audit_log("support-v2", 10).unwrap();
    assert!(audit.iter().any(|e| e.action == "rollback"), "{audit:?}");

    // A restart comes back rolled back.
    let (_, dir) = t.shutdown().await;
    let t = TestGateway::start_in(&cfg, None, dir).await;
    let view = t.gw.view_of("support-v2").unwrap();
    assert_eq!((view.stage.as_str(), view.percent), ("rolled_back", 0.0));
    t.shutdown().await;
}

/// Item 1, the acknowledged side: an order answered 200 is stored by then.
#[tokio::test]
async fn an_acknowledged_rollback_is_already_stored() {
    let t = TestGateway::start(&config(r#"{ name = "canary-50", percent = 50 }"#, "")).await;
    t.gw.command("support-v2", rollback()).await.unwrap();
    let stored = t.store.load_rollout_state("support-v2").unwrap().unwrap();
    assert!(stored.contains("rolled_back"), "{stored}");
    t.shutdown().await;
}

/// Item 2: tenant-cap updates racing a rollback never put users back on the candidate: every
/// change of the routing view goes through the controller, which derives it from the state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_caps_racing_a_rollback_never_undo_it() {
    let cfg = config(r#"{ name = "canary-50", percent = 50 }"#, "");
    let t = TestGateway::start(&cfg).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (gw, stop) = (t.gw.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) || i < 20 {
                let tenant = format!("tenant-{w}-{}", i % 10);
                gw.set_tenant_cap("support-v2", &tenant, f64::from(i % 50))
                    .await
                    .unwrap();
                i += 1;
            }
        }));
    }
    // The writers are racing once their caps reach the routing view.
    let racing = eventually(|| async {
        t.gw.view_of("support-v2")
            .is_some_and(|v| v.tenant_caps.len() >= 4)
    })
    .await;
    assert!(racing, "no tenant cap was applied");
    t.gw.command("support-v2", rollback()).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let view = t.gw.view_of("support-v2").unwrap();
    assert_eq!((view.stage.as_str(), view.percent), ("rolled_back", 0.0));
    assert!(view.tenant_caps.contains_key("tenant-3-9"), "{view:?}");
    let (_, dir) = t.shutdown().await;
    let t = TestGateway::start_in(&cfg, None, dir).await;
    let view = t.gw.view_of("support-v2").unwrap();
    assert_eq!((view.stage.as_str(), view.percent), ("rolled_back", 0.0));
    assert!(view.tenant_caps.contains_key("tenant-3-9"), "{view:?}");
    t.shutdown().await;
}

/// Item 12: sinks are delivered in parallel: a Slack webhook that never answers does not
/// delay the PagerDuty page (sequential delivery waited for Slack's 60 s timeout first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_slack_webhook_does_not_delay_the_pagerduty_page() {
    let (alerts_url, alerts) = alert_receiver().await;
    let extra = format!(
        "[alerts]\ntimeout = \"60s\"\nmax_attempts = 3\n[[alerts.slack]]\nurl = \"{alerts_url}/hang\"\n\
         [[alerts.pagerduty]]\nurl = \"{alerts_url}/pagerduty\"\nrouting_key = \"k\"\n"
    );
    let t = TestGateway::start(&config(r#"{ name = "canary-50", percent = 50 }"#, &extra)).await;
    t.gw.command("support-v2", rollback()).await.unwrap();
    let paged = eventually(|| async {
        alerts
            .lock()
            .await
            .iter()
            .any(|(sink, b)| sink == "pagerduty" && b["event_action"] == "trigger")
    })
    .await;
    assert!(paged, "PagerDuty was not paged while Slack hangs");
}

/// Item 12: a flood of signals never starves the check tick. The clock is manual; after it
/// moves past the next check, that check runs although signals keep arriving faster than the
/// controller takes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checks_stay_on_schedule_under_a_flood_of_signals() {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let cfg = config(r#"{ name = "canary-50", percent = 50 }"#, "")
        .replace("[rollouts.support-v2.tenants", "[rollouts.support-v2.guardrails]\ncheck_interval = \"100ms\"\n[rollouts.support-v2.tenants");
    let t = TestGateway::start_with(&cfg, Some(clock.clone())).await;
    assert!(eventually(|| async { t.gw.controller.status_of("support-v2").is_some() }).await);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut floods = Vec::new();
    for _ in 0..3 {
        let (gw, stop, clock, sent) = (t.gw.clone(), stop.clone(), clock.clone(), sent.clone());
        floods.push(tokio::spawn(async move {
            use rampart_gateway::clock::Clock;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..256 {
                    gw.signal(Signal::Request {
                        rollout: "support-v2".into(),
                        cohort: Cohort::Canary,
                        ts_ms: clock.now_ms(),
                        error: false,
                        refusal: false,
                        latency_ms: 5.0,
                        ttft_ms: None,
                        prompt_tokens: Some(5),
                        completion_tokens: Some(5),
                        cost_usd: Some(0.0),
                    });
                }
                sent.fetch_add(256, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }));
    }
    // Let the flood fill the queue (it has sent a queue's worth), then move past the next check.
    let capacity = t.gw.config.store.queue_capacity as u64;
    let flooding = eventually(|| async { sent.load(Ordering::Relaxed) >= capacity }).await;
    assert!(flooding, "the flood did not send {capacity} signals");
    clock.advance_ms(1_000);
    let target = 1_800_000_001_000;
    let checked = eventually(|| async {
        t.gw.controller
            .status_of("support-v2")
            .is_some_and(|s| s.updated_ms >= target && s.evaluation.is_some())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for f in floods {
        f.await.unwrap();
    }
    assert!(checked, "no check ran while signals flooded in");
    t.shutdown().await;
}
