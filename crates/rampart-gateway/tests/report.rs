//! `GET /admin/rollouts/{name}/report`: the comparison report of a gateway run as JSON, text
//! and HTML, and the HTML page loaded in a real headless Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestGateway, chat, config};
use rampart_store::{EventStore, PairStore};
use serde_json::{Value, json};

const SHADOW_ALL: &str = r#"{ name = "shadow", shadow_percent = 100 }"#;
const PAIRS: u64 = 60;
const CLASSES: [&str; 3] = ["card_arrival", "refund", "pin_blocked"];

/// A run whose candidate answers in another style (formal vs casual, 1.3× longer).
async fn run_with_pairs() -> TestGateway {
    let t = TestGateway::start(&config(SHADOW_ALL, "")).await;
    let client = reqwest::Client::new();
    for i in 0..PAIRS {
        let class = CLASSES[i as usize % CLASSES.len()];
        let r = client
            .post(format!("{}/v1/chat/completions", t.url))
            .header("x-rampart-routing-key", format!("user-{i}"))
            .header("x-rampart-class", class)
            .json(&chat(
                "support",
                &format!("Question {i} about my {class}: what <b>should</b> I do & when?"),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.store.count_pairs("support-v2").unwrap() < PAIRS {
        assert!(Instant::now() < deadline, "pairs were not stored in time");
        t.gw.writer.flush().await.unwrap();
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t
}

async fn get(t: &TestGateway, path: &str) -> (u16, String, String) {
    let r = reqwest::get(format!("{}{path}", t.url)).await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

/// POST /v1/feedback.
async fn feedback(t: &TestGateway, body: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/feedback", t.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn cohort_view_includes_feedback() {
    let t = run_with_pairs().await;
    let events = t.store.events_since("support-v2", 0, 10).unwrap();
    assert!(events.len() >= 4);
    let served = |i: usize| {
        events[i]
            .output_text
            .clone()
            .expect("served text is stored")
    };
    let id = |i: usize| events[i].request_id.clone();
    // Thumbs: 3 up, 1 down. Outcomes: unchanged, edited (one character added), rejected.
    feedback(&t, json!({"request_id": id(0), "thumbs": "up", "outcome": "sent_unchanged", "final_text": served(0)})).await;
    feedback(&t, json!({"request_id": id(1), "thumbs": "up", "outcome": "edited", "final_text": format!("{}!", served(1))})).await;
    feedback(
        &t,
        json!({"request_id": id(2), "thumbs": "down", "outcome": "rejected"}),
    )
    .await;
    feedback(&t, json!({"request_id": id(3), "thumbs": "up"})).await;

    let (s, _, body) = get(&t, "/admin/rollouts/support-v2/report").await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let c = &v["cohorts"]["control"];
    assert_eq!(c["feedback_thumbs"], 4, "{c}");
    assert_eq!(c["thumbs_up_rate"], 0.75, "{c}");
    assert_eq!(c["thumbs_down_rate"], 0.25, "{c}");
    assert_eq!(c["feedback_outcomes"], 3, "{c}");
    for key in ["sent_unchanged_rate", "edited_rate", "rejected_rate"] {
        assert!(
            (c[key].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9,
            "{key}: {c}"
        );
    }
    // Mean of 1.0 (unchanged) and 1 − 1/(len+1) (one character added).
    let n = served(1).chars().count() as f64;
    let expected = (1.0 + (1.0 - 1.0 / (n + 1.0))) / 2.0;
    let sim = c["mean_edit_similarity"].as_f64().unwrap();
    assert!((sim - expected).abs() < 1e-9, "{sim} vs {expected}");
    // No feedback on the canary cohort (no canary traffic in the shadow stage).
    assert_eq!(v["cohorts"]["canary"]["thumbs_up_rate"], Value::Null);

    let (s, _, text) = get(
        &t,
        "/admin/rollouts/support-v2/report?format=text&width=200",
    )
    .await;
    assert_eq!(s, 200);
    assert!(text.contains("feedback: up 75.0%  down 25.0%"), "{text}");
    t.shutdown().await;
}

#[tokio::test]
async fn report_in_every_format() {
    let t = run_with_pairs().await;
    let base = "/admin/rollouts/support-v2/report";

    let (s, ct, body) = get(&t, base).await;
    assert_eq!(s, 200, "{body}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["rollout"], "support-v2");
    assert_eq!(v["pairs"], PAIRS);
    assert_eq!(v["comparable_pairs"], PAIRS);
    // A formal, longer candidate is not equivalent to a casual baseline, and it is longer.
    assert!(
        v["equivalence"]["rate"].as_f64().unwrap() < 0.5,
        "{}",
        v["equivalence"]
    );
    assert!(v["length_ratio"]["estimate"].as_f64().unwrap() > 1.0);
    let classes: Vec<&str> = v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["card_arrival", "pin_blocked", "refund"]);
    assert!(!v["most_different"].as_array().unwrap().is_empty());
    for key in [
        "refusal", "errors", "openings", "formats", "latency", "cost", "settings", "flags",
    ] {
        assert!(v.get(key).is_some(), "missing `{key}`");
    }
    assert_eq!(v["cohorts"]["control"]["requests"], PAIRS);
    assert_eq!(v["cohort_events_limit"], 200_000);

    let (s, ct, text) = get(&t, &format!("{base}?format=text&width=60")).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert!(text.contains(&format!("{PAIRS} pairs")), "{text}");
    assert!(text.contains("Canary cohort"), "{text}");
    for line in text.lines() {
        assert!(line.chars().count() <= 60, "line wider than 60: {line}");
    }

    let (s, ct, html) = get(&t, &format!("{base}?format=html")).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Texts from the data are escaped.
    assert!(!html.contains("<b>should</b>"));

    let (s, _, body) = get(&t, "/admin/rollouts/nope/report").await;
    assert_eq!(s, 404, "{body}");
    assert!(body.contains("unknown rollout `nope`"), "{body}");
    let (s, _, body) = get(&t, &format!("{base}?format=pdf")).await;
    assert_eq!(s, 400, "{body}");
    t.shutdown().await;
}

fn chromium() -> PathBuf {
    let candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "this test needs headless Chromium at /usr/bin/chromium \
                 (`apt-get install -y chromium`; .ci/run installs it)"
            )
        })
}

fn headless(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[tokio::test]
async fn html_report_renders_in_headless_chromium() {
    let browser = chromium();
    let t = run_with_pairs().await;
    let (s, _, html) = get(&t, "/admin/rollouts/support-v2/report?format=html").await;
    assert_eq!(s, 200);
    t.shutdown().await;

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&out).unwrap();
    let page = out.join("report.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());
    let profile = tempfile::tempdir().unwrap();

    let dom = headless(profile.path())
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", browser.display()));
    let stderr = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "chromium failed: {stderr}");
    for bad in ["Uncaught", "ERROR:CONSOLE", "Failed to load resource"] {
        assert!(!stderr.contains(bad), "console error `{bad}`:\n{stderr}");
    }
    let dom = String::from_utf8_lossy(&dom.stdout);
    for section in [
        "summary",
        "length",
        "openings",
        "formats",
        "classes",
        "guardrails",
        "pairs",
    ] {
        assert!(
            dom.contains(&format!("<section id=\"{section}\">")),
            "section `{section}` did not render:\n{dom}"
        );
    }
    assert!(dom.contains("<svg"), "no plot rendered");
    assert!(dom.contains("card_arrival") && dom.contains("pin_blocked"));

    let shot = out.join("report-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let run = headless(profile.path())
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,2400")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "screenshot failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot is empty"
    );
    eprintln!("screenshot: {}", shot.display());
}

/// The cohort view describes the rollout's newest events: on a long rollout whose early
/// traffic (control, all errors, thumbs down) is past the limit, none of it shows.
#[test]
fn the_cohort_view_reads_the_newest_events() {
    use rampart_core::record::{Feedback, Outcome, RequestEvent, Thumbs};
    use rampart_core::routing::Cohort;
    use rampart_store::{FeedbackStore, SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("r.db")).unwrap();
    let event = |i: i64, cohort: Cohort, outcome: Outcome| RequestEvent {
        request_id: format!("e{i}"),
        ts_ms: 1_000 + i,
        route: "support".into(),
        rollout: Some("ro".into()),
        stage: Some("canary-5".into()),
        variant: "v".into(),
        cohort,
        key_hash: None,
        tenant: None,
        class: None,
        status: if outcome == Outcome::Ok { 200 } else { 502 },
        outcome,
        latency_ms: 10.0,
        ttft_ms: None,
        prompt_tokens: 1,
        completion_tokens: 1,
        cost_usd: 0.0,
        refusal: false,
        streamed: false,
        finish_reason: None,
        output_text: Some("served".into()),
    };
    let early: Vec<_> = (0..30)
        .map(|i| event(i, Cohort::Control, Outcome::Error))
        .collect();
    let late: Vec<_> = (30..40)
        .map(|i| event(i, Cohort::Canary, Outcome::Ok))
        .collect();
    store.insert_events(&early).unwrap();
    store.insert_events(&late).unwrap();
    for id in ["e0", "e35"] {
        let fb = Feedback {
            request_id: id.into(),
            ts_ms: 9_000,
            thumbs: Some(Thumbs::Down),
            outcome: None,
            final_text: None,
        };
        assert!(store.insert_feedback(&fb).unwrap());
    }
    let (view, series) =
        rampart_gateway::report::cohort_view_of_latest(&store, "ro", 1, 10).unwrap();
    let view = view.unwrap();
    assert_eq!(view.control.requests, 0, "old events leaked into the view");
    assert_eq!(view.canary.requests, 10);
    assert_eq!(view.canary.feedback_thumbs, 1);
    assert_eq!(view.control.feedback_thumbs, 0);
    assert!(series.iter().all(|(_, name, _)| name.starts_with("canary")));
    let (all, _) = rampart_gateway::report::cohort_view_of_latest(&store, "ro", 1, 100).unwrap();
    assert_eq!(all.unwrap().control.requests, 30);
}
