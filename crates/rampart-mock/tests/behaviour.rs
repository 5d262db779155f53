//! Statistical and behavioural tests of the simulator, through its pure planning step
//! (`Simulator::plan`) so nothing sleeps, and through `complete`/`stream` on a paused clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{behaviour, chat, four_se, model, prompts};
use futures_util::StreamExt;
use rampart_core::config::Style;
use rampart_mock::generate::{self, REFUSAL_PHRASE};
use rampart_mock::{Plan, Simulator};
use serde_json::{Value, json};

fn sim(models: Vec<(&str, rampart_core::config::MockModel)>) -> Simulator {
    Simulator::new(
        models
            .into_iter()
            .map(|(n, m)| (n.to_string(), m))
            .collect::<BTreeMap<_, _>>(),
        7,
    )
}

fn plan(s: &Simulator, body: &Value, class: Option<&str>) -> Plan {
    match s.plan(body, class) {
        Ok((_, p, _)) => p,
        Err(e) => panic!("plan failed: {e}"),
    }
}

fn content(p: Plan) -> String {
    match p.outcome {
        Ok(c) => c.content,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

#[test]
fn same_style_models_agree_other_styles_differ() {
    let mut slower = behaviour(Style::Casual);
    slower.latency.median_ms = 900.0;
    slower.latency.p95_ms = 2000.0;
    let s = sim(vec![
        ("a", model(behaviour(Style::Casual))),
        ("b", model(slower)),
        ("f", model(behaviour(Style::Formal))),
    ]);
    let casual_open = [
        "Thanks for reaching out!",
        "Hey there,",
        "Hi!",
        "Oh, good one!",
    ];
    let formal_open = [
        "Thank you for",
        "We appreciate you contacting us",
        "Good day,",
    ];
    for p in prompts(300) {
        let a = content(plan(&s, &chat("a", &p), None));
        let b = content(plan(&s, &chat("b", &p), None));
        let f = content(plan(&s, &chat("f", &p), None));
        assert_eq!(a, b, "same style, same prompt");
        assert!(casual_open.iter().any(|o| a.starts_with(o)), "{a}");
        assert!(formal_open.iter().any(|o| f.starts_with(o)), "{f}");
        assert!(!formal_open.iter().any(|o| a.starts_with(o)), "{a}");
        let lower = a.to_lowercase();
        for k in generate::keywords(&p) {
            assert!(lower.contains(&k), "keyword {k} of {p:?} missing from {a}");
        }
    }
}

#[test]
fn length_factor_scales_mean_length() {
    let mut long = behaviour(Style::Formal);
    long.length_factor = 1.3;
    let s = sim(vec![
        ("base", model(behaviour(Style::Formal))),
        ("long", model(long)),
    ]);
    let (mut base, mut longer) = (0usize, 0usize);
    for p in prompts(1000) {
        base += words(&content(plan(&s, &chat("base", &p), None)));
        longer += words(&content(plan(&s, &chat("long", &p), None)));
    }
    let ratio = longer as f64 / base as f64;
    assert!((ratio - 1.3).abs() < 0.07, "length ratio {ratio}");
}

#[test]
fn latency_distribution_matches_config() {
    let s = sim(vec![("m", model(behaviour(Style::Casual)))]);
    let body = chat("m", "Where is my card?");
    let mut ms: Vec<f64> = (0..4000)
        .map(|_| plan(&s, &body, None).latency.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    let (median, p95) = (ms[2000], ms[3800]);
    assert!((median / 400.0 - 1.0).abs() < 0.06, "median {median}");
    assert!((p95 / 900.0 - 1.0).abs() < 0.10, "p95 {p95}");
}

#[test]
fn error_rate_within_four_standard_errors() {
    let mut b = behaviour(Style::Casual);
    b.error_rate = 0.1;
    let s = sim(vec![("m", model(b))]);
    let ps = prompts(4000);
    let errors: Vec<u16> = ps
        .iter()
        .filter_map(|p| {
            plan(&s, &chat("m", p), None)
                .outcome
                .err()
                .map(|e| e.status)
        })
        .collect();
    assert!(errors.iter().all(|s| *s == 500));
    let rate = errors.len() as f64 / ps.len() as f64;
    assert!(
        (rate - 0.1).abs() < four_se(0.1, ps.len()),
        "error rate {rate}"
    );
    // Unseeded: the same request fails some of the time, not always or never.
    let body = chat("m", &ps[0]);
    let fails = (0..2000)
        .filter(|_| plan(&s, &body, None).outcome.is_err())
        .count();
    assert!(
        (fails as f64 / 2000.0 - 0.1).abs() < four_se(0.1, 2000),
        "{fails}"
    );
}

#[test]
fn refusal_rate_and_class_overrides() {
    let mut m = model(behaviour(Style::Formal));
    m.base.refusal_rate = 0.02;
    let mut refunds = m.base.clone();
    refunds.refusal_rate = 0.2;
    m.overrides.insert("refunds".to_string(), refunds);
    let s = sim(vec![("m", m)]);
    let ps = prompts(4000);
    let rate = |class: Option<&str>| {
        let refused = ps
            .iter()
            .filter(|p| {
                let c = content(plan(&s, &chat("m", p), class));
                c.contains(REFUSAL_PHRASE)
            })
            .count();
        refused as f64 / ps.len() as f64
    };
    let (base, cards, refunds) = (rate(None), rate(Some("cards")), rate(Some("refunds")));
    assert!((base - 0.02).abs() < four_se(0.02, ps.len()), "base {base}");
    assert!(
        (cards - 0.02).abs() < four_se(0.02, ps.len()),
        "other class {cards}"
    );
    assert!(
        (refunds - 0.2).abs() < four_se(0.2, ps.len()),
        "refunds {refunds}"
    );
}

#[test]
fn seeded_requests_are_reproducible_across_simulators() {
    let mut b = behaviour(Style::Casual);
    b.error_rate = 0.3;
    b.refusal_rate = 0.3;
    let one = Simulator::new(BTreeMap::from([("m".to_string(), model(b.clone()))]), 1);
    let two = Simulator::new(BTreeMap::from([("m".to_string(), model(b))]), 2);
    let mut saw_error = false;
    let mut saw_ok = false;
    for (i, p) in prompts(200).iter().enumerate() {
        let mut body = chat("m", p);
        body["seed"] = json!(i);
        let x = plan(&one, &body, None);
        let y = plan(&two, &body, None);
        let z = plan(&one, &body, None);
        assert_eq!(x.latency, y.latency);
        assert_eq!(x.latency, z.latency);
        assert_eq!(x.outcome, y.outcome);
        assert_eq!(x.outcome, z.outcome);
        saw_error |= x.outcome.is_err();
        saw_ok |= x.outcome.is_ok();
    }
    assert!(saw_error && saw_ok);
}

#[test]
fn unknown_model_and_malformed_body() {
    let s = Simulator::with_default_models();
    s.record_received(true);
    let e = s.plan(&chat("nope", "hi"), None).err();
    assert_eq!(
        e.as_ref().map(|e| (e.status, e.code())),
        Some((404, "model_not_found"))
    );
    let e = s.plan(&json!({"model": "casual"}), None).err();
    assert_eq!(e.map(|e| e.status), Some(400));
    // Both were still recorded, with their class.
    let r = s.received();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].body["model"], "nope");
}

#[tokio::test(start_paused = true)]
async fn complete_waits_the_planned_latency_and_records_the_body() {
    let s = Simulator::with_default_models();
    s.record_received(true);
    let mut body = chat("formal", "How do I dispute a card payment?");
    body["seed"] = json!(3);
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup", "parameters": {}}}]);
    let planned = plan(&s, &body, None).latency;
    let t0 = tokio::time::Instant::now();
    let r = s.complete(&body, Some("disputes")).await;
    let Ok(r) = r else { panic!("{r:?}") };
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= planned && elapsed < planned + Duration::from_millis(2),
        "{elapsed:?} vs {planned:?}"
    );
    assert_eq!(r["object"], "chat.completion");
    assert_eq!(r["model"], "formal");
    assert_eq!(r["choices"][0]["message"]["role"], "assistant");
    assert_eq!(r["choices"][0]["finish_reason"], "stop");
    assert!(
        r["system_fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("fp_"))
    );
    let u = &r["usage"];
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(
            u["prompt_tokens"].as_u64().unwrap_or(0) + u["completion_tokens"].as_u64().unwrap_or(0)
        )
    );
    let last = s.received().pop();
    assert_eq!(last.as_ref().map(|r| &r.body), Some(&body));
    assert_eq!(last.and_then(|r| r.class).as_deref(), Some("disputes"));
}

#[tokio::test(start_paused = true)]
async fn stream_spreads_chunks_until_the_latency() {
    let s = Simulator::with_default_models();
    let mut body = chat("casual", "My transfer has not arrived yet");
    body["seed"] = json!(11);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let planned = plan(&s, &body, None);
    let expected = content(planned.clone());
    let t0 = tokio::time::Instant::now();
    let stream = s.stream(&body, None).await;
    let Ok(mut stream) = stream else {
        panic!("stream failed")
    };
    let mut chunks = Vec::new();
    let mut first_at = None;
    while let Some(c) = stream.next().await {
        first_at.get_or_insert(t0.elapsed());
        chunks.push(c);
    }
    let total = t0.elapsed();
    let ms = Duration::from_millis(2);
    let first_at = first_at.unwrap_or_default();
    assert!(
        first_at >= planned.ttft && first_at < planned.ttft + ms,
        "{first_at:?}"
    );
    assert!(
        total >= planned.latency && total < planned.latency + ms,
        "{total:?}"
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, expected);
    let n = chunks.len();
    assert!(n > 10);
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "stop");
    assert!(
        chunks[..n - 2]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
    assert_eq!(chunks[n - 1]["choices"], json!([]));
    assert!(
        chunks[n - 1]["usage"]["completion_tokens"]
            .as_u64()
            .is_some_and(|t| t > 0)
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
}

#[tokio::test(start_paused = true)]
async fn injected_errors_arrive_after_the_ttft() {
    let mut b = behaviour(Style::Casual);
    b.error_rate = 1.0;
    let s = sim(vec![("m", model(b))]);
    let t0 = tokio::time::Instant::now();
    let e = s.complete(&chat("m", "hello"), None).await.err();
    assert!(t0.elapsed() > Duration::from_millis(10));
    assert_eq!(
        e.as_ref().map(|e| (e.status, e.kind())),
        Some((500, "server_error"))
    );
    let mut body = chat("m", "hello");
    body["stream"] = json!(true);
    assert_eq!(
        s.stream(&body, None).await.err().map(|e| e.status),
        Some(500)
    );
}

/// The received log is a test switch: off by default (the gateway's embedded provider serves
/// without a lock or a copy of each body), and it stops when switched off.
#[test]
fn received_log_is_off_unless_switched_on() {
    let s = Simulator::with_default_models();
    assert!(s.plan(&chat("casual", "hi"), None).is_ok());
    assert!(s.received().is_empty());
    s.record_received(true);
    assert!(s.plan(&chat("casual", "hi"), None).is_ok());
    assert_eq!(s.received().len(), 1);
    s.record_received(false);
    assert!(s.plan(&chat("casual", "hi"), None).is_ok());
    assert_eq!(s.received().len(), 1);
}
