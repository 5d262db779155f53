//! The kill switch end to end: a canary whose error rate jumps mid-run trips, every keyed
//! request admitted more than a second after the decision goes to the baseline, Slack and
//! PagerDuty hear about it, and a restarted gateway stays rolled back. Also: a pause pages
//! PagerDuty and the resume resolves that incident.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::routing::post;
use common::TestGateway;
use rampart_store::RolloutStore;
use serde_json::{Value, json};
use tokio::sync::Mutex;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An OpenAI-compatible upstream whose `candidate` model starts failing 20% of calls when told.
async fn flaky_upstream(broken: Arc<AtomicBool>) -> String {
    let counter = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |axum::Json(body): axum::Json<Value>| {
            let (broken, counter) = (broken.clone(), counter.clone());
            async move {
                // Simulated upstream latency, not a wait.
                tokio::time::sleep(Duration::from_millis(2)).await;
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if body["model"] == "candidate" && broken.load(Ordering::Relaxed) && n % 5 == 0 {
                    return (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        axum::Json(json!({"error": {"message": "boom", "type": "server_error", "code": null}})),
                    );
                }
                (
                    axum::http::StatusCode::OK,
                    axum::Json(json!({
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("answer from {}", body["model"])}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
                    })),
                )
            }
        }),
    );
    let url = format!("{}/v1", common::spawn_app(app).await);
    url
}

type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// Records every JSON body POSTed to `/{sink}`.
async fn alert_receiver() -> (String, Received) {
    let got: Received = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
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
    let url = common::spawn_app(app).await;
    (url, got)
}

fn config(upstream: &str, alerts: &str) -> String {
    format!(
        r#"
[store]
flush_interval = "20ms"
[providers.up]
type = "openai"
base_url = "{upstream}"
# The candidate's errors must reach the guardrails, not be retried away.
retries = 0
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "up"
model = "baseline"
[routes.support.variants.v2]
provider = "up"
model = "candidate"
[rollouts.support-v2]
route = "support"
candidate = "v2"
stages = [ {{ name = "canary-50", percent = 50, min_duration = "1h" }}, {{ name = "full", percent = 100 }} ]
[rollouts.support-v2.guardrails]
window = "30s"
check_interval = "100ms"
error_rate_max = 0.05
p95_latency_max_ratio = 5.0
refusal_rate_max_increase = 0.05
[alerts]
max_attempts = 3
[[alerts.slack]]
url = "{alerts}/slack"
[[alerts.pagerduty]]
url = "{alerts}/pagerduty"
routing_key = "pd-test-key"
[[alerts.webhook]]
url = "{alerts}/webhook"
"#
    )
}

/// Wait (bounded, 60 s) until `log` holds `n` requests whose send time passes `when`.
async fn wait_for_requests(
    log: &Mutex<Vec<(i64, String, String)>>,
    n: usize,
    when: impl Fn(i64) -> bool,
) {
    for _ in 0..1200 {
        if log.lock().await.iter().filter(|(s, _, _)| when(*s)).count() >= n {
            return;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} requests were served in 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_jump_trips_routes_everyone_to_baseline_alerts_and_survives_restart() {
    let broken = Arc::new(AtomicBool::new(false));
    let upstream = flaky_upstream(broken.clone()).await;
    let (alerts_url, alerts) = alert_receiver().await;
    let cfg = config(&upstream, &alerts_url);
    let t = TestGateway::start(&cfg).await;
    let client = reqwest::Client::new();

    // Steady keyed traffic: (sent at ms, key, variant served).
    let log: Arc<Mutex<Vec<(i64, String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (client, url, log, stop) = (client.clone(), t.url.clone(), log.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("user-{}", (w * 1000 + i) % 400);
                i += 1;
                let sent = now_ms();
                let Ok(r) = client
                    .post(format!("{url}/v1/chat/completions"))
                    .header("x-rampart-routing-key", &key)
                    .json(&json!({"model": "support", "messages": [{"role": "user", "content": "hello"}]}))
                    .send()
                    .await
                else {
                    continue;
                };
                let variant = r.headers()["x-rampart-variant"].to_str().unwrap().to_string();
                log.lock().await.push((sent, key, variant));
            }
        }));
    }

    // Healthy for 400 requests (every key, both cohorts): nothing trips.
    wait_for_requests(&log, 400, |_| true).await;
    assert_eq!(t.gw.view_of("support-v2").unwrap().stage, "canary-50");

    // The candidate starts failing one call in five.
    broken.store(true, Ordering::Relaxed);
    let mut tripped = false;
    for _ in 0..300 {
        if t.gw.view_of("support-v2").unwrap().stage == "rolled_back" {
            tripped = true;
            break;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tripped, "the kill switch did not trip");
    // Traffic after the trip (the audit entry's time is at or before now).
    let seen_trip = now_ms();
    wait_for_requests(&log, 60, |sent| sent > seen_trip + 1000).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    // The decision, from the audit log.
    let audit = t.store.audit_log("support-v2", 10).unwrap();
    let trip = audit
        .iter()
        .find(|e| e.to_state == "rolled_back")
        .expect("audit entry for the trip");
    assert_eq!(trip.actor, "controller");
    assert!(trip.reason.contains("error_rate"), "{}", trip.reason);
    assert!(
        trip.details.to_string().contains("error_rate"),
        "the audit entry carries the metrics: {}",
        trip.details
    );

    let log = log.lock().await;
    let before: Vec<_> = log.iter().filter(|(s, _, _)| *s < trip.ts_ms).collect();
    assert!(
        before.iter().any(|(_, _, v)| v == "v2"),
        "the canary served before the trip"
    );
    let after: Vec<_> = log
        .iter()
        .filter(|(s, _, _)| *s > trip.ts_ms + 1000)
        .collect();
    assert!(
        after.len() > 50,
        "only {} requests after the trip",
        after.len()
    );
    for (sent, key, variant) in &after {
        assert_eq!(
            variant,
            "v1",
            "{key} sent {}ms after the trip got {variant}",
            sent - trip.ts_ms
        );
    }
    let m = reqwest::get(format!("{}/metrics", t.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("rampart_kill_switch_tripped{rollout=\"support-v2\"} 1"),
        "{m}"
    );
    assert!(m.contains("rampart_rollout_percent{rollout=\"support-v2\"} 0"));

    // Slack, PagerDuty and the generic webhook got the page.
    let mut got = Vec::new();
    for _ in 0..100 {
        got = alerts.lock().await.clone();
        if got.len() >= 3 {
            break;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let slack = got
        .iter()
        .find(|(s, _)| s == "slack")
        .expect("slack payload");
    let text = slack.1["text"].as_str().unwrap();
    assert!(
        text.contains("support-v2") && text.contains("error_rate") && text.contains("rolled_back"),
        "{text}"
    );
    let pd = &got
        .iter()
        .find(|(s, _)| s == "pagerduty")
        .expect("pagerduty payload")
        .1;
    assert_eq!(pd["routing_key"], "pd-test-key");
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["dedup_key"], "rampart/support-v2");
    assert_eq!(pd["payload"]["severity"], "critical");
    assert_eq!(pd["payload"]["source"], "rampart");
    let details = &pd["payload"]["custom_details"];
    assert_eq!(details["stage"], "canary-50");
    assert_eq!(details["action_taken"], "rolled_back");
    assert!(details["samples"]["canary"].as_u64().unwrap() > 0);
    assert!(details["samples"]["control"].as_u64().unwrap() > 0);
    assert!(details["time"].as_str().unwrap().ends_with('Z'));
    let hook = &got
        .iter()
        .find(|(s, _)| s == "webhook")
        .expect("webhook payload")
        .1;
    assert_eq!(hook["kind"], "trip");

    // A restarted gateway on the same database comes back rolled back.
    let (_, dir) = t.shutdown().await;
    broken.store(false, Ordering::Relaxed);
    let t2 = TestGateway::start_in(&cfg, None, dir).await;
    assert_eq!(t2.gw.view_of("support-v2").unwrap().stage, "rolled_back");
    let canary_key = log
        .iter()
        .find(|(s, _, v)| *s < trip.ts_ms && v == "v2")
        .unwrap()
        .1
        .clone();
    let r = client
        .post(format!("{}/v1/chat/completions", t2.url))
        .header("x-rampart-routing-key", &canary_key)
        .json(&json!({"model": "support", "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-rampart-variant"], "v1");
    assert_eq!(r.headers()["x-rampart-stage"], "rolled_back");
}

/// PagerDuty's incident lifecycle: a pause triggers an incident under the rollout's dedup key,
/// and the resume resolves that same incident (an Events API v2 resolve carries no payload).
#[tokio::test]
async fn a_pause_pages_and_the_resume_resolves_the_same_incident() {
    let upstream = flaky_upstream(Arc::new(AtomicBool::new(false))).await;
    let (alerts_url, alerts) = alert_receiver().await;
    let t = TestGateway::start(&config(&upstream, &alerts_url)).await;
    let client = reqwest::Client::new();
    let pd_events = || async {
        alerts
            .lock()
            .await
            .iter()
            .filter(|(sink, _)| sink == "pagerduty")
            .map(|(_, body)| body.clone())
            .collect::<Vec<_>>()
    };
    for (action, expected) in [("pause", 1), ("resume", 2)] {
        let r = client
            .post(format!("{}/admin/rollouts/support-v2/{action}", t.url))
            .json(&json!({"reason": format!("{action} for the test")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{action}: {}", r.text().await.unwrap());
        let mut got = Vec::new();
        for _ in 0..100 {
            got = pd_events().await;
            if got.len() >= expected {
                break;
            }
            // Poll interval of the bounded wait.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(got.len(), expected, "{action}: {got:?}");
    }
    let got = pd_events().await;
    let (trigger, resolve) = (&got[0], &got[1]);
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["payload"]["class"], "hold");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    assert_eq!(resolve["dedup_key"], "rampart/support-v2");
    assert_eq!(resolve["routing_key"], "pd-test-key");
    assert!(resolve.get("payload").is_none(), "{resolve}");
}
