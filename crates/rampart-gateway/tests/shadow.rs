//! Shadow traffic: the candidate answers in the background, the user only ever sees the
//! baseline, and every shadowed request becomes one stored pair.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestGateway, chat, config, metric, metrics, wait_pairs};
use rampart_gateway::clock::ManualClock;
use rampart_store::{EventStore, PairStore};
use serde_json::{Value, json};

const SHADOW_ALL: &str = r#"{ name = "shadow", shadow_percent = 100 }"#;

async fn send(url: &str, key: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-rampart-routing-key", key)
        .header("x-rampart-class", "card_arrival")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn user_never_waits_for_a_slow_candidate() {
    let cfg = config(SHADOW_ALL, "").replace(
        "[providers.sim.models.new]\nstyle = \"formal\"\nlatency_ms = { median = 5, p95 = 8 }",
        "[providers.sim.models.new]\nstyle = \"formal\"\nlatency_ms = { median = 2000, p95 = 2050 }",
    );
    let t = TestGateway::start(&cfg).await;
    let mut ids = Vec::new();
    let futs = (0..20).map(|i| {
        let url = t.url.clone();
        async move {
            let r = send(
                &url,
                &format!("user-{i}"),
                &chat("support", &format!("question {i} about my card")),
            )
            .await;
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["x-rampart-variant"], "v1");
            assert_eq!(r.headers()["x-rampart-cohort"], "control");
            let id = r.headers()["x-rampart-request-id"]
                .to_str()
                .unwrap()
                .to_string();
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["model"], "old");
            id
        }
    });
    ids.extend(futures_util::future::join_all(futs).await);

    // Every user answer is in; no candidate could have answered yet, so no pair exists.
    t.gw.writer.flush().await.unwrap();
    assert_eq!(t.store.count_pairs("support-v2").unwrap(), 0);
    assert_eq!(t.store.count_events().unwrap(), 20);

    // Once the candidate answers, every pair is stored.
    assert_eq!(wait_pairs(&t, 20).await, 20);
    for id in &ids {
        let ev = t.store.get_event(id).unwrap().unwrap();
        let pair = t
            .store
            .recent_pairs("support-v2", 100, None, None)
            .unwrap()
            .into_iter()
            .find(|p| &p.request_id == id)
            .unwrap();
        assert!(
            ev.latency_ms < pair.candidate.latency_ms,
            "user {} vs candidate {}",
            ev.latency_ms,
            pair.candidate.latency_ms
        );
        assert!(pair.candidate.latency_ms >= 1500.0);
        assert_eq!(pair.baseline.variant, "v1");
        assert_eq!(pair.candidate.variant, "v2");
        assert_eq!(pair.candidate.model, "new");
        assert_eq!(pair.candidate.prompt_version.as_deref(), Some("p2"));
        assert_eq!(pair.class.as_deref(), Some("card_arrival"));
        assert!(pair.baseline.text.as_deref().unwrap().len() > 10);
        assert!(pair.candidate.text.as_deref().unwrap().len() > 10);
        assert!(pair.prompt.as_deref().unwrap().contains("about my card"));
        assert!(pair.candidate.error.is_none());
    }
    let m = metrics(&t.url).await;
    assert_eq!(
        metric(
            &m,
            r#"rampart_shadow_requests_total{route="support",variant="v2",outcome="ok"}"#
        ),
        20.0
    );
    // User-facing counters saw each request once, on the baseline only.
    assert_eq!(
        metric(
            &m,
            r#"rampart_requests_total{route="support",variant="v1",cohort="control",outcome="ok"}"#
        ),
        20.0
    );
    assert_eq!(
        metric(
            &m,
            r#"rampart_requests_total{route="support",variant="v2",cohort="control",outcome="ok"}"#
        ),
        0.0
    );
}

async fn baseline_only_answer(body: &Value) -> (u16, Value) {
    let t = TestGateway::start(&config(r#"{ name = "c0", percent = 0 }"#, "")).await;
    let r = send(&t.url, "user-7", body).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn candidate_failures_never_reach_the_user() {
    let body = chat("support", "Why was I charged twice?");
    let (ref_status, ref_body) = baseline_only_answer(&body).await;

    // Candidate errors.
    let erroring = config(SHADOW_ALL, "").replace(
        "length_factor = 1.3",
        "length_factor = 1.3\nerror_rate = 1.0",
    );
    // Candidate times out (shadow timeout shorter than its latency).
    let slow = config(SHADOW_ALL, "[shadow]\ntimeout = \"100ms\"").replace(
        "[providers.sim.models.new]\nstyle = \"formal\"\nlatency_ms = { median = 5, p95 = 8 }",
        "[providers.sim.models.new]\nstyle = \"formal\"\nlatency_ms = { median = 3000, p95 = 3100 }",
    );
    // Candidate's provider is down.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let down = config(
        SHADOW_ALL,
        &format!("[providers.down]\ntype = \"openai\"\nbase_url = \"{dead_url}\"\n"),
    )
    .replace(
        "[routes.support.variants.v2]\nprovider = \"sim\"",
        "[routes.support.variants.v2]\nprovider = \"down\"",
    );

    for (name, cfg, expect_err, outcome) in [
        ("error", erroring, "status 500", "error"),
        ("timeout", slow, "timeout", "timeout"),
        ("down", down, "connection", "error"),
    ] {
        let t = TestGateway::start(&cfg).await;
        let r = send(&t.url, "user-7", &body).await;
        assert_eq!(r.status().as_u16(), ref_status, "{name}");
        assert_eq!(r.headers()["x-rampart-variant"], "v1");
        let got: Value = r.json().await.unwrap();
        assert_eq!(
            got["choices"], ref_body["choices"],
            "{name}: the user's answer changed"
        );
        assert_eq!(wait_pairs(&t, 1).await, 1, "{name}");
        let pair = &t.store.recent_pairs("support-v2", 1, None, None).unwrap()[0];
        let err = pair.candidate.error.as_deref().unwrap_or_default();
        assert!(
            err.contains(expect_err),
            "{name}: candidate error was {err:?}"
        );
        assert!(pair.baseline.error.is_none());
        assert_eq!(
            pair.baseline.text.as_deref(),
            got["choices"][0]["message"]["content"].as_str()
        );
        let m = metrics(&t.url).await;
        assert_eq!(
            metric(
                &m,
                &format!(
                    r#"rampart_shadow_requests_total{{route="support",variant="v2",outcome="{outcome}"}}"#
                )
            ),
            1.0,
            "{name}"
        );
    }
}

/// A candidate endpoint that answers slowly and records the most calls it ever had at once.
async fn slow_counting_upstream() -> (String, Arc<AtomicUsize>) {
    use axum::routing::post;
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (n2, m2) = (now.clone(), max.clone());
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let (now, max) = (n2.clone(), m2.clone());
            async move {
                let cur = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(cur, Ordering::SeqCst);
                // The slow upstream under test, not a wait.
                tokio::time::sleep(Duration::from_millis(400)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                axum::Json(json!({"choices": [{"message": {"role": "assistant", "content": "slow answer"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2}}))
            }
        }),
    );
    let url = format!("{}/v1", common::spawn_app(app).await);
    (url, max)
}

#[tokio::test]
async fn in_flight_limit_holds_under_a_burst_and_drops_are_counted() {
    let (url, max_seen) = slow_counting_upstream().await;
    let cfg = config(SHADOW_ALL, &format!("[shadow]\nmax_in_flight = 2\n[providers.slow]\ntype = \"openai\"\nbase_url = \"{url}\"\n"))
        .replace("[routes.support.variants.v2]\nprovider = \"sim\"", "[routes.support.variants.v2]\nprovider = \"slow\"");
    let t = TestGateway::start(&cfg).await;
    let futs = (0..100).map(|i| {
        let url = t.url.clone();
        async move {
            send(&url, &format!("burst-{i}"), &chat("support", "burst"))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(futs).await;
    assert!(statuses.iter().all(|s| *s == 200));

    let m = metrics(&t.url).await;
    let dropped = metric(
        &m,
        r#"rampart_shadow_dropped_total{reason="max_in_flight"}"#,
    );
    let started = 100.0 - dropped;
    assert!(
        dropped >= 90.0,
        "expected most of the burst dropped, got {dropped}"
    );
    assert_eq!(
        metric(
            &m,
            r#"rampart_shadow_requests_total{route="support",variant="v2",outcome="dropped"}"#
        ),
        dropped
    );
    assert_eq!(wait_pairs(&t, started as u64).await, started as u64);
    assert!(
        max_seen.load(Ordering::SeqCst) <= 2,
        "saw {} shadow calls in flight",
        max_seen.load(Ordering::SeqCst)
    );
    assert!(max_seen.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn tools_and_response_format_reach_the_candidate_intact() {
    let t = TestGateway::start(&config(SHADOW_ALL, "")).await;
    let mut body = chat("support", "Freeze my card please");
    body["tools"] = json!([{"type": "function", "function": {"name": "freeze_card", "description": "Freeze a card",
        "parameters": {"type": "object", "properties": {"card_id": {"type": "string"}}, "required": ["card_id"]}}}]);
    body["tool_choice"] = json!({"type": "function", "function": {"name": "freeze_card"}});
    body["response_format"] = json!({"type": "json_object"});
    body["seed"] = json!(11);
    let r = send(&t.url, "user-9", &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(wait_pairs(&t, 1).await, 1);
    let received = t.sim("sim").received();
    let cand = received
        .iter()
        .find(|r| r.body["model"] == "new")
        .expect("candidate call");
    for field in ["tools", "tool_choice", "response_format", "seed"] {
        assert_eq!(cand.body[field], body[field], "{field}");
    }
    assert_eq!(
        cand.body["temperature"], 0.1,
        "the candidate's pinned params apply"
    );
    assert_eq!(cand.body["messages"][0]["content"], "You are formal.");
    assert_eq!(cand.class.as_deref(), Some("card_arrival"));
    assert!(
        cand.body.get("stream").is_none(),
        "the shadow call does not stream"
    );
    // The pair keeps what the comparison needs to judge the format: the tool schemas and the
    // JSON mode, and its stored features were measured against them.
    let pair = &t.store.recent_pairs("support-v2", 1, None, None).unwrap()[0];
    assert_eq!(pair.tools.as_ref(), Some(&body["tools"]));
    assert_eq!(
        pair.response_format.as_ref(),
        Some(&body["response_format"])
    );
    let f = &t
        .store
        .recent_pair_features("support-v2", &Default::default(), 1)
        .unwrap()[0];
    // Both sides answered in JSON (the simulated provider honours JSON mode) and called no tool.
    for (side, sf) in [
        (&pair.baseline, &f.baseline),
        (&pair.candidate, &f.candidate),
    ] {
        assert!(side.tool_calls.is_none() && side.text.is_some());
        assert_eq!((sf.json_valid, sf.tool_calls_valid), (Some(true), None));
    }
}

#[tokio::test]
async fn streamed_user_request_pairs_the_concatenated_stream() {
    let t = TestGateway::start(&config(SHADOW_ALL, "")).await;
    let mut body = chat("support", "How long does a transfer take?");
    body["stream"] = json!(true);
    let r = send(&t.url, "user-3", &body).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let mut streamed = String::new();
    for d in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if d == "[DONE]" {
            break;
        }
        let c: Value = serde_json::from_str(d).unwrap();
        streamed.push_str(c["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
    }
    assert!(streamed.len() > 10);
    assert_eq!(wait_pairs(&t, 1).await, 1);
    let pair = &t.store.recent_pairs("support-v2", 1, None, None).unwrap()[0];
    assert_eq!(pair.baseline.text.as_deref(), Some(streamed.as_str()));
    assert!(pair.baseline.ttft_ms.is_some());
    assert!(pair.baseline.completion_tokens > 0);
}

#[tokio::test]
async fn budget_caps_stop_shadowing_until_the_next_day() {
    use rampart_gateway::clock::ManualClock;
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let cfg = config(SHADOW_ALL, "[shadow]\nmax_tokens_per_day = 300");
    let t = TestGateway::start_with(&cfg, Some(clock.clone())).await;
    let mut sent = 0;
    // Sequential requests; each shadow call spends roughly 100 tokens.
    loop {
        send(
            &t.url,
            &format!("u{sent}"),
            &chat("support", "What is the exchange rate today?"),
        )
        .await;
        sent += 1;
        // The shadow call has ended (and charged the budget) or was skipped.
        let m = wait_shadow_settled(&t, sent).await;
        if metric(
            &m,
            r#"rampart_shadow_dropped_total{reason="budget_tokens"}"#,
        ) > 0.0
            || sent > 20
        {
            break;
        }
    }
    assert!(sent <= 20, "the token budget never stopped shadowing");
    let pairs_today = wait_pairs(&t, 1).await;
    assert!(
        pairs_today >= 1 && pairs_today < sent,
        "{pairs_today} pairs for {sent} requests"
    );
    // More requests the same day are not shadowed: the skip is counted as the request is
    // served, and no pair follows.
    let dropped = |m: &str| metric(m, r#"rampart_shadow_dropped_total{reason="budget_tokens"}"#);
    let before = dropped(&metrics(&t.url).await);
    send(&t.url, "late", &chat("support", "another question")).await;
    assert_eq!(dropped(&metrics(&t.url).await), before + 1.0);
    assert_eq!(wait_pairs(&t, 0).await, pairs_today);

    // The next day the budget is fresh.
    clock.advance_ms(86_400_000);
    send(&t.url, "tomorrow", &chat("support", "a new day")).await;
    assert_eq!(wait_pairs(&t, pairs_today + 1).await, pairs_today + 1);

    // Cost cap, same story.
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let cfg = config(SHADOW_ALL, "[shadow]\nmax_cost_usd_per_day = 0.0001");
    let t = TestGateway::start_with(&cfg, Some(clock.clone())).await;
    for i in 0..5 {
        send(
            &t.url,
            &format!("c{i}"),
            &chat("support", "What is the exchange rate today?"),
        )
        .await;
        wait_shadow_settled(&t, i + 1).await;
    }
    let m = metrics(&t.url).await;
    assert!(metric(&m, r#"rampart_shadow_dropped_total{reason="budget_cost"}"#) >= 1.0);
    let before = wait_pairs(&t, 1).await;
    clock.advance_ms(86_400_000);
    send(&t.url, "next", &chat("support", "a new day")).await;
    assert_eq!(wait_pairs(&t, before + 1).await, before + 1);
}

#[tokio::test]
async fn canary_and_unkeyed_requests_are_not_shadowed_and_sampling_is_sticky() {
    let t = TestGateway::start(&config(r#"{ name = "s", shadow_percent = 30 }"#, "")).await;
    // Unkeyed: never shadowed.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", t.url))
        .json(&chat("support", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-rampart-cohort"], "unkeyed");
    // Keyed: exactly the users whose shadow bucket is under 30% are shadowed, every time.
    let mut expected = 0;
    for i in 0..60 {
        let key = format!("k{i}");
        let shadowed = rampart_core::routing::shadow_bucket("support-v2", &key) < 3000;
        expected += if shadowed { 2 } else { 0 };
        for _ in 0..2 {
            send(&t.url, &key, &chat("support", "hello again")).await;
        }
    }
    assert!(expected > 0);
    assert_eq!(wait_pairs(&t, expected).await, expected);
    // Shutting down drains every shadow task and flushes the writer: nothing more comes.
    let (store, _dir) = t.shutdown().await;
    assert_eq!(store.count_pairs("support-v2").unwrap(), expected);
}

/// Wait (bounded, 30 s) until `n` shadow decisions are settled: every call ended (ok, error or
/// timeout, counted once the budget is charged) or was skipped. Returns the metrics text.
async fn wait_shadow_settled(t: &TestGateway, n: u64) -> String {
    let settled = |m: &str| {
        m.lines()
            .filter(|l| {
                l.starts_with("rampart_shadow_requests_total{")
                    || l.starts_with("rampart_shadow_dropped_total{")
            })
            .filter(|l| !l.contains(r#"outcome="dropped""#))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let mut m = metrics(&t.url).await;
    for _ in 0..600 {
        if settled(&m) >= n as f64 {
            break;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
        m = metrics(&t.url).await;
    }
    m
}

#[tokio::test]
async fn identical_requests_hit_the_shadow_cache_within_its_ttl() {
    let t = TestGateway::start(&config(SHADOW_ALL, "[shadow]\ncache_ttl = \"1h\"")).await;
    let body = chat("support", "What are the fees for international transfers?");
    let mut stored = 0;
    for key in ["cache-a", "cache-b", "cache-c"] {
        assert_eq!(send(&t.url, key, &body).await.status(), 200);
        // One at a time, so the first answer is cached before the next request.
        stored += 1;
        wait_pairs(&t, stored).await;
    }
    assert_eq!(wait_pairs(&t, 3).await, 3);
    let calls_to_candidate = t
        .sim("sim")
        .received()
        .iter()
        .filter(|r| r.body["model"] == "new")
        .count();
    assert_eq!(
        calls_to_candidate, 1,
        "the candidate answered once; the rest came from the cache"
    );
    let pairs = t.store.recent_pairs("support-v2", 10, None, None).unwrap();
    assert_eq!(pairs.iter().filter(|p| p.candidate.cached).count(), 2);
    let texts: std::collections::BTreeSet<_> =
        pairs.iter().map(|p| p.candidate.text.clone()).collect();
    assert_eq!(texts.len(), 1, "cached answers are the candidate's answer");
    // A different request is not served from the cache.
    send(
        &t.url,
        "cache-d",
        &chat("support", "Something else entirely"),
    )
    .await;
    assert_eq!(wait_pairs(&t, 4).await, 4);
    assert_eq!(
        t.sim("sim")
            .received()
            .iter()
            .filter(|r| r.body["model"] == "new")
            .count(),
        2
    );
}

#[tokio::test]
async fn pairs_endpoint_filters_and_orders_newest_first() {
    // A manual clock a second apart per request gives every pair its own time to order by.
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let t = TestGateway::start_with(&config(SHADOW_ALL, ""), Some(clock.clone())).await;
    for (i, class) in ["cards", "refunds", "cards", "cash"].iter().enumerate() {
        clock.advance_ms(1_000);
        reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", t.url))
            .header("x-rampart-routing-key", format!("u{i}"))
            .header("x-rampart-class", *class)
            .json(&chat("support", &format!("question number {i}")))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(wait_pairs(&t, 4).await, 4);
    let get = |q: &str| {
        let url = format!("{}/admin/rollouts/support-v2/pairs{q}", t.url);
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let all = get("").await;
    let pairs = all["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 4);
    let ts: Vec<i64> = pairs.iter().map(|p| p["ts_ms"].as_i64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] >= w[1]), "newest first: {ts:?}");
    assert!(pairs[0]["baseline"]["text"].is_string() && pairs[0]["candidate"]["text"].is_string());
    assert_eq!(get("?limit=2").await["pairs"].as_array().unwrap().len(), 2);
    let cards = get("?class=cards").await;
    assert_eq!(cards["pairs"].as_array().unwrap().len(), 2);
    assert!(
        cards["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["class"] == "cards")
    );
    assert_eq!(get("?since=1h").await["pairs"].as_array().unwrap().len(), 4);
    let future = ts[0] + 60_000;
    assert_eq!(
        get(&format!("?since={future}")).await["pairs"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let r = reqwest::get(format!(
        "{}/admin/rollouts/support-v2/pairs?since=yesterday",
        t.url
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = reqwest::get(format!("{}/admin/rollouts/nope/pairs", t.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// `[rollouts.R.embeddings]` naming an `openai` provider: `rampart mock-llm`'s embeddings
/// endpoint over real HTTP; a dead endpoint leaves the similarity unset and is counted.
#[tokio::test]
async fn pairs_carry_the_embedding_similarity_of_their_answers() {
    use rampart_mock::embeddings::{DEFAULT_DIM, embed};
    let sim = Arc::new(rampart_mock::Simulator::new(Default::default(), 7));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let live_url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(rampart_mock::serve(listener, sim, std::future::pending()));
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);

    for (url, outcome) in [(live_url, "ok"), (dead_url, "error")] {
        let cfg = config(
            SHADOW_ALL,
            &format!(
                "[providers.emb]\ntype = \"openai\"\nbase_url = \"{url}\"\n\
                 [rollouts.support-v2.embeddings]\nprovider = \"emb\"\nmodel = \"text-embedding-3-small\"\n"
            ),
        );
        let t = TestGateway::start(&cfg).await;
        for i in 0..4 {
            let body = chat("support", &format!("Where is my card number {i}?"));
            assert_eq!(
                send(&t.url, &format!("user-{i}"), &body).await.status(),
                200
            );
        }
        assert_eq!(wait_pairs(&t, 4).await, 4);
        let pairs = t.store.recent_pairs("support-v2", 4, None, None).unwrap();
        let features = t
            .store
            .recent_pair_features("support-v2", &Default::default(), 4)
            .unwrap();
        for (p, f) in pairs.iter().zip(&features) {
            assert_eq!(f.embedding_similarity, p.embedding_similarity);
            if outcome == "error" {
                assert_eq!(p.embedding_similarity, None);
                continue;
            }
            let v = |t: &Option<String>| -> Vec<f64> {
                embed(t.as_deref().unwrap(), DEFAULT_DIM)
                    .into_iter()
                    .map(f64::from)
                    .collect()
            };
            let expected = rampart_core::compare::features::cosine(
                &v(&p.baseline.text),
                &v(&p.candidate.text),
            )
            .unwrap();
            let got = p.embedding_similarity.unwrap();
            assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        }
        let m = metrics(&t.url).await;
        assert_eq!(
            metric(
                &m,
                &format!(
                    "rampart_embeddings_total{{rollout=\"support-v2\",outcome=\"{outcome}\"}}"
                )
            ),
            4.0,
            "{m}"
        );
        t.shutdown().await;
    }
}
