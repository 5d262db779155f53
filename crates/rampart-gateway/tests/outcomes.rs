//! Slow business signals end to end over HTTP with an injected clock: outcomes posted days
//! late (by request id, and by routing key only) pin the canary; every keyed request after the
//! decision gets the baseline; the audit entry and the alert carry the evidence; a restarted
//! gateway stays pinned. And a batch with one bad item stores the others and names the bad one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::routing::post;
use common::TestGateway;
use rampart_gateway::clock::{Clock, ManualClock};
use rampart_store::{RolloutStore, Store};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const H: i64 = 3_600_000;
/// 2026-01-05T00:00:00Z
const T0: i64 = 1_767_571_200_000;

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

fn cfg(webhook: &str) -> String {
    common::config(
        r#"{ name = "canary-50", percent = 50, min_duration = "60d" }"#,
        &format!(
            r#"
[[rollouts.support-v2.slow_signals]]
name = "csat"
max_decrease = 2
sustain = "48h"
check_interval = "1s"
min_samples = 30
[[alerts.webhook]]
url = "{webhook}/hook"
"#
        ),
    )
}

type Received = Arc<Mutex<Vec<Value>>>;

async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                |State(got): State<Received>, axum::Json(body): axum::Json<Value>| async move {
                    got.lock().await.push(body);
                    axum::http::StatusCode::OK
                },
            ),
        )
        .with_state(got.clone());
    (common::spawn_app(app).await, got)
}

/// One keyed chat request: (request id, cohort, variant).
async fn ask(c: &reqwest::Client, url: &str, key: &str) -> (String, String, String) {
    let r = c
        .post(format!("{url}/v1/chat/completions"))
        .header("x-rampart-routing-key", key)
        .json(&common::chat("support", "my card has not arrived"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = |n: &str| r.headers()[n].to_str().unwrap().to_string();
    (
        h("x-rampart-request-id"),
        h("x-rampart-cohort"),
        h("x-rampart-variant"),
    )
}

async fn status(c: &reqwest::Client, url: &str) -> Value {
    c.get(format!("{url}/admin/rollouts/support-v2"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
}

/// Poll (bounded) until the controller has run a slow check at `at_ms` with `n` outcomes in
/// all; the rollout's status then.
async fn checked_at(c: &reqwest::Client, url: &str, at_ms: i64, n: u64) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        last = status(c, url).await;
        let s = &last["status"];
        let seen = s["slow_signals"][0]["n_control"].as_u64().unwrap_or(0)
            + s["slow_signals"][0]["n_canary"].as_u64().unwrap_or(0);
        let checked = s["state"]["slow"]["tracks"]["csat"]["last_check_ms"].as_i64();
        if seen == n && checked == Some(at_ms) || s["phase"] == "pinned" {
            return last;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no slow check at {at_ms} with {n} outcomes: {last:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_outcomes_pin_the_canary_and_a_restart_stays_pinned() {
    let (hook, alerts) = receiver().await;
    let config = cfg(&hook);
    let clock = Arc::new(ManualClock::new(T0));
    let t = TestGateway::start_with(&config, Some(clock.clone() as Arc<dyn Clock>)).await;
    let c = reqwest::Client::new();

    // Day 0: 160 users ask once each.
    let mut served = Vec::new();
    for u in 0..160 {
        let key = format!("user-{u}");
        let (id, cohort, variant) = ask(&c, &t.url, &key).await;
        assert_eq!(variant, if cohort == "canary" { "v2" } else { "v1" });
        served.push((key, id, cohort));
    }
    t.gw.writer.flush().await.unwrap();
    let canary = served.iter().filter(|s| s.2 == "canary").count();
    assert!(
        (40..120).contains(&canary),
        "{canary} of 160 in the 50% canary"
    );

    // Day 2: the CSAT survey results arrive, two days late. The canary's users are unhappier.
    // Every fourth by routing key only (the warehouse has no request ids for them).
    // The clock stops a second short of day 2 while they are posted, so the controller's first
    // check at day 2 cannot run before they are stored (a check at a given time runs once).
    clock.advance_ms(2 * 24 * H - 1_000);
    let items: Vec<Value> = served
        .iter()
        .enumerate()
        .map(|(i, (key, id, cohort))| {
            let noise = if i % 2 == 0 { 12.0 } else { -12.0 };
            let value = if cohort == "canary" { 55.0 } else { 72.0 } + noise;
            if i % 4 == 0 {
                json!({"routing_key": key, "rollout": "support-v2", "name": "csat", "value": value, "at": rfc3339(T0 + 60_000)})
            } else {
                json!({"request_id": id, "name": "csat", "value": value})
            }
        })
        .collect();
    let r = c
        .post(format!("{}/v1/outcomes", t.url))
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    clock.advance_ms(1_000);

    // First check at day 2 breaches; the breach must hold at every check for 48 h.
    let now = clock.now_ms();
    let s = checked_at(&c, &t.url, now, 160).await;
    let report = &s["status"]["slow_signals"][0];
    assert_eq!(report["status"], "breached", "{report:#}");
    assert_eq!(
        report["n_canary"].as_u64().unwrap() as usize,
        canary,
        "key-only items attributed by bucket"
    );
    assert!(report["upper"].as_f64().unwrap() < -2.0);
    assert_eq!(s["status"]["phase"], "stage");
    clock.advance_ms(24 * H);
    let s = checked_at(&c, &t.url, clock.now_ms(), 160).await;
    assert_eq!(
        s["status"]["phase"], "stage",
        "24 h is not the 48 h sustain"
    );
    clock.advance_ms(24 * H);
    let decided = clock.now_ms();
    let s = checked_at(&c, &t.url, decided, 160).await;
    assert_eq!(s["status"]["phase"], "pinned", "{s:#}");
    assert_eq!(s["percent"], 0.0);

    // Every keyed request after the decision gets the baseline, canary users included.
    for (key, _, _) in &served {
        let (_, cohort, variant) = ask(&c, &t.url, key).await;
        assert_eq!(
            (cohort.as_str(), variant.as_str()),
            ("control", "v1"),
            "{key}"
        );
    }

    // The audit entry carries the evidence.
    let audit = t.store.audit_log("support-v2", 10).unwrap();
    let pin = audit
        .iter()
        .find(|e| e.action == "pin")
        .expect("a pin in the audit log");
    assert_eq!(
        (pin.actor.as_str(), pin.to_state.as_str(), pin.ts_ms),
        ("controller", "pinned", decided)
    );
    assert!(pin.reason.contains("csat"), "{}", pin.reason);
    let ev = &pin.details["slow_signals"][0];
    assert_eq!(ev["name"], "csat");
    assert_eq!(
        ev["n_control"].as_u64().unwrap() + ev["n_canary"].as_u64().unwrap(),
        160
    );
    assert!(
        ev["upper"].as_f64().unwrap() < -2.0 && ev["limit"] == -2.0,
        "{ev}"
    );
    assert_eq!(ev["breach_since_ms"].as_i64(), Some(T0 + 48 * H));

    // The alert too.
    let mut got = Vec::new();
    for _ in 0..200 {
        got = alerts.lock().await.clone();
        if !got.is_empty() {
            break;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let alert = got.first().expect("an alert for the pin").to_string();
    assert!(
        alert.contains("csat") && alert.contains("pinned"),
        "{alert}"
    );

    // Outcome metrics per cohort.
    let m = common::metrics(&t.url).await;
    let counted = common::metric(
        &m,
        r#"rampart_outcomes_total{rollout="support-v2",name="csat",cohort="canary"}"#,
    ) + common::metric(
        &m,
        r#"rampart_outcomes_total{rollout="support-v2",name="csat",cohort="control"}"#,
    );
    assert_eq!(counted, 160.0, "{m}");

    // Outcomes per cohort where users look: the status (since the slow-signal epoch, with the
    // gate's own interval of the difference) and the report (JSON, text, HTML).
    let s = status(&c, &t.url).await;
    let o = &s["status"]["outcomes"][0];
    assert_eq!(
        (&o["name"], &o["slow_signal"]),
        (&json!("csat"), &json!(true)),
        "{o:#}"
    );
    let cohorts = o["cohorts"].as_array().unwrap();
    assert_eq!(cohorts[0]["cohort"], "control");
    assert_eq!(cohorts[1]["cohort"], "canary");
    assert_eq!(cohorts[1]["n"].as_u64().unwrap() as usize, canary);
    assert_eq!(cohorts[0]["n"].as_u64().unwrap() as usize, 160 - canary);
    for c in cohorts {
        let (lo, mean, hi) = (&c["ci_low"], &c["mean"], &c["ci_high"]);
        assert!(
            lo.as_f64() < mean.as_f64() && mean.as_f64() < hi.as_f64(),
            "{c}"
        );
    }
    assert_eq!(
        o["difference"]["ci_high"], ev["upper"],
        "the gate's interval"
    );
    assert_eq!(o["difference"]["ci_low"], ev["lower"]);
    let report = |format: &'static str| {
        let (c, url) = (c.clone(), t.url.clone());
        async move {
            c.get(format!(
                "{url}/admin/rollouts/support-v2/report?format={format}"
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
        }
    };
    let json_report: Value = serde_json::from_str(&report("json").await).unwrap();
    assert_eq!(json_report["outcomes"][0]["cohorts"], o["cohorts"]);
    let text = report("text").await;
    assert!(
        text.contains("Outcomes (business signals)") && text.contains("csat             canary"),
        "{text}"
    );
    assert!(report("html").await.contains("<section id=\"outcomes\">"));

    // A restart on the same database stays pinned, and only a human resumes it.
    let (_, dir) = t.shutdown().await;
    let clock2 = Arc::new(ManualClock::new(decided + H));
    let t2 = TestGateway::start_in(&config, Some(clock2.clone() as Arc<dyn Clock>), dir).await;
    assert_eq!(t2.gw.view_of("support-v2").unwrap().stage, "pinned");
    for (key, _, _) in served.iter().take(40) {
        assert_eq!(ask(&c, &t2.url, key).await.2, "v1");
    }
    let resumed = c
        .post(format!("{}/admin/rollouts/support-v2/resume", t2.url))
        .json(&json!({"reason": "tickets reviewed, cause fixed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200, "{}", resumed.text().await.unwrap());
    assert_eq!(t2.gw.view_of("support-v2").unwrap().percent, 50.0);
    t2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_one_bad_item_stores_the_others_and_names_the_bad_one() {
    let clock = Arc::new(ManualClock::new(T0));
    let t = TestGateway::start_with(
        &cfg("http://127.0.0.1:9"),
        Some(clock.clone() as Arc<dyn Clock>),
    )
    .await;
    let c = reqwest::Client::new();
    let (id, _, _) = ask(&c, &t.url, "user-1").await;
    let (old, _, _) = ask(&c, &t.url, "user-2").await;
    t.gw.writer.flush().await.unwrap();
    clock.advance_ms(31 * 24 * H);
    let (fresh, _, _) = ask(&c, &t.url, "user-3").await;
    t.gw.writer.flush().await.unwrap();
    let url = format!("{}/v1/outcomes", t.url);

    let batch = json!([
        {"request_id": fresh, "name": "csat", "value": 80},
        {"request_id": "no-such-request", "name": "csat", "value": 10},
        {"routing_key": "user-9", "rollout": "support-v2", "name": "refund", "value": 1.5},
    ]);
    let r = c.post(&url).json(&batch).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 2, "{body:#}");
    assert_eq!(
        body["refused"],
        json!([{"index": 1, "code": "unknown_request_id", "message": "unknown request_id `no-such-request`"}])
    );
    assert_eq!(body["error"]["code"], "outcomes_refused");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("item 1: unknown request_id `no-such-request`")
    );
    let stored = t
        .store
        .outcomes()
        .unwrap()
        .outcome_moments("support-v2", 0)
        .unwrap();
    let names: Vec<(&str, u64)> = stored.iter().map(|m| (m.name.as_str(), m.n)).collect();
    assert_eq!(names.iter().map(|(_, n)| n).sum::<u64>(), 2, "{names:?}");
    assert!(names.iter().any(|(n, _)| *n == "csat") && names.iter().any(|(n, _)| *n == "refund"));

    // Single items answer with their own 4xx in OpenAI's error shape.
    let cases = [
        (
            json!({"request_id": "nope", "name": "csat", "value": 1}),
            404,
            "unknown_request_id",
        ),
        (
            json!({"request_id": old, "name": "csat", "value": 1}),
            400,
            "outcome_too_old",
        ),
        (
            json!({"request_id": id, "name": "csat", "value": "great"}),
            400,
            "invalid_value",
        ),
        (
            json!({"routing_key": "u", "rollout": "nope", "name": "csat", "value": 1}),
            404,
            "unknown_rollout",
        ),
        (
            json!({"routing_key": "u", "name": "csat", "value": 1}),
            400,
            "missing_target",
        ),
        (
            json!({"request_id": fresh, "name": "csat", "value": 1, "at": "yesterday"}),
            400,
            "invalid_at",
        ),
        (
            json!({"request_id": fresh, "name": "", "value": 1}),
            400,
            "invalid_name",
        ),
        (
            json!({"request_id": fresh, "name": "csat", "value": 1, "score": 2}),
            400,
            "invalid_item",
        ),
    ];
    for (item, status, code) in cases {
        let r = c.post(&url).json(&item).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{item}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{item}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"request_id": fresh, "name": "csat", "value": 1}))
        .collect();
    assert_eq!(
        c.post(&url).json(&too_many).send().await.unwrap().status(),
        400
    );
    // A retried item is stored once.
    let again = c
        .post(&url)
        .json(&json!({"request_id": fresh, "name": "csat", "value": 80}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let csat = t
        .store
        .outcomes()
        .unwrap()
        .outcome_moments("support-v2", 0)
        .unwrap();
    assert_eq!(
        csat.iter()
            .filter(|m| m.name == "csat")
            .map(|m| m.n)
            .sum::<u64>(),
        1
    );
    t.shutdown().await;
}
