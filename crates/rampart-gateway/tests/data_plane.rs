//! The data plane end to end: variants applied, headers, bad input, provider failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestGateway, chat, config, metric, metrics};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(url: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{url}/v1/chat/completions"))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn post_raw(url: &str, body: Vec<u8>) -> (u16, Value) {
    let r = client()
        .post(format!("{url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn assert_openai_error(body: &Value, needle: &str) {
    let err = body
        .get("error")
        .unwrap_or_else(|| panic!("no error object in {body}"));
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
    assert!(err["type"].is_string(), "{body}");
    assert!(err.get("code").is_some(), "{body}");
}

#[tokio::test]
async fn baseline_answer_with_headers_and_variant_applied() {
    let t = TestGateway::start(&config(r#"{ name = "c100", percent = 100 }"#, "")).await;
    let mut body = chat("support", "My card still has not arrived");
    body["messages"] = json!([
        {"role": "system", "content": "client system"},
        {"role": "user", "content": "My card still has not arrived"}
    ]);
    body["tools"] = json!([{"type": "function", "function": {"name": "track_card", "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}}]);
    body["tool_choice"] = json!("auto");
    body["response_format"] = json!({"type": "text"});
    body["temperature"] = json!(0.9);

    // Unkeyed: baseline, cohort unkeyed, client's system message kept after the variant's.
    let r = post(&t.url, &body).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["x-rampart-variant"], "v1");
    assert_eq!(h["x-rampart-cohort"], "unkeyed");
    // A 100% stage completes the rollout at the controller's first check; either label is right.
    let stage = h["x-rampart-stage"].to_str().unwrap();
    assert!(stage == "c100" || stage == "completed", "{stage}");
    assert!(
        h["x-rampart-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "old");
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    // Keyed at 100%: candidate; its system prompt replaces the client's; params pinned.
    let r = client()
        .post(format!("{}/v1/chat/completions", t.url))
        .header("x-rampart-routing-key", "user-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-rampart-variant"], "v2");
    assert_eq!(r.headers()["x-rampart-cohort"], "canary");
    let received = t.sim("sim").received();
    assert_eq!(received.len(), 2);
    let first = &received[0].body;
    assert_eq!(first["model"], "old");
    assert_eq!(first["messages"][0]["content"], "You are friendly.");
    assert_eq!(first["messages"][1]["content"], "client system");
    assert_eq!(first["temperature"], 0.9);
    let second = &received[1].body;
    assert_eq!(second["model"], "new");
    assert_eq!(second["messages"].as_array().unwrap().len(), 2);
    assert_eq!(second["messages"][0]["content"], "You are formal.");
    assert_eq!(second["temperature"], 0.1);
    for b in [first, second] {
        assert_eq!(b["tools"], body["tools"]);
        assert_eq!(b["tool_choice"], body["tool_choice"]);
        assert_eq!(b["response_format"], body["response_format"]);
    }

    // The body's `user` is the routing key when the header is absent; tenant caps apply.
    let mut with_user = chat("support", "hello");
    with_user["user"] = json!("user-1");
    let r = post(&t.url, &with_user).await;
    assert_eq!(r.headers()["x-rampart-cohort"], "canary");
    let r = client()
        .post(format!("{}/v1/chat/completions", t.url))
        .header("x-rampart-routing-key", "user-1")
        .header("x-rampart-tenant", "enterprise")
        .json(&chat("support", "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-rampart-variant"], "v1");
    assert_eq!(r.headers()["x-rampart-cohort"], "control");

    // Events reach the store with their metadata.
    let (store, _dir) = t.shutdown().await;
    use rampart_store::EventStore;
    assert_eq!(store.count_events().unwrap(), 4);
}

#[tokio::test]
async fn class_header_is_forwarded_to_the_provider() {
    let t = TestGateway::start(&config(r#"{ name = "c0", percent = 0 }"#, "")).await;
    let r = client()
        .post(format!("{}/v1/chat/completions", t.url))
        .header("x-rampart-class", "refunds")
        .json(&chat("support", "refund please"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(t.sim("sim").received()[0].class.as_deref(), Some("refunds"));
}

#[tokio::test]
async fn bad_input_gets_a_clear_openai_error() {
    let t = TestGateway::start(&config(r#"{ name = "c0", percent = 0 }"#, "")).await;
    let u = &t.url;
    let (s, b) = post_raw(u, b"{not json".to_vec()).await;
    assert_eq!(s, 400);
    assert_openai_error(&b, "not valid JSON");
    // A refused body's answer carries its request id, and no variant: none was chosen.
    let r = client()
        .post(format!("{u}/v1/chat/completions"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["x-rampart-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    assert!(!r.headers().contains_key("x-rampart-variant"));

    let (s, b) = post_raw(u, br#"{"model":"support"}"#.to_vec()).await;
    assert_eq!(s, 400);
    assert_openai_error(&b, "messages");

    let (s, b) = post_raw(u, br#"{"model":"support","messages":"hi"}"#.to_vec()).await;
    assert_eq!(s, 400);
    assert_openai_error(&b, "array");

    let (s, b) = post_raw(
        u,
        br#"{"model":42,"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 400);
    assert_openai_error(&b, "model");

    let (s, b) = post_raw(
        u,
        br#"{"model":"support","messages":[{"content":"x"}]}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 400);
    assert_openai_error(&b, "role");

    let (s, b) = post_raw(
        u,
        br#"{"model":"support","stream":"yes","messages":[{"role":"user","content":"x"}]}"#
            .to_vec(),
    )
    .await;
    assert_eq!(s, 400);
    assert_openai_error(&b, "stream");

    let (s, b) = post_raw(u, br#"[1,2]"#.to_vec()).await;
    assert_eq!(s, 400);
    assert_openai_error(&b, "JSON object");

    let mut invalid_utf8 = br#"{"model":"support","messages":[{"role":"user","content":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    invalid_utf8.extend_from_slice(br#""}]}"#);
    let (s, b) = post_raw(u, invalid_utf8).await;
    assert_eq!(s, 400);
    assert_openai_error(&b, "not valid JSON");

    let (s, b) = post_raw(
        u,
        br#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 404);
    assert_openai_error(&b, "unknown route `nope`");
    // Any client could ask: the configured route names are not listed.
    assert!(!b.to_string().contains("support"), "{b}");

    // The server is still healthy after all of that.
    let r = client().get(format!("{u}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bodies_over_the_cap_get_413() {
    let t = TestGateway::start(&config(r#"{ name = "c0", percent = 0 }"#, "").replace(
        "shutdown_grace = \"10s\"",
        "shutdown_grace = \"10s\"\nmax_body_bytes = 1024",
    ))
    .await;
    let big = "x".repeat(4096);
    let (s, b) = post_raw(&t.url, serde_json::to_vec(&chat("support", &big)).unwrap()).await;
    assert_eq!(s, 413);
    assert_openai_error(&b, "larger than the configured limit of 1024 bytes");

    // Chunked upload without a content-length is capped too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![b' '; 800]), Ok(vec![b' '; 800])];
    let r = client()
        .post(format!("{}/v1/chat/completions", t.url))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn provider_errors_keep_their_status_and_shape() {
    let extra = "";
    let cfg = config(r#"{ name = "c0", percent = 0 }"#, extra).replace(
        "[providers.sim.models.old]\nstyle = \"casual\"",
        "[providers.sim.models.old]\nstyle = \"casual\"\nerror_rate = 1.0",
    );
    let t = TestGateway::start(&cfg).await;
    let r = post(&t.url, &chat("support", "hello")).await;
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["x-rampart-variant"], "v1");
    let b: Value = r.json().await.unwrap();
    assert!(b["error"]["message"].is_string(), "{b}");
    let (store, _dir) = t.shutdown().await;
    use rampart_store::EventStore;
    assert_eq!(store.count_events().unwrap(), 1);
}

/// An `openai` provider config pointing at `base_url`.
fn openai_config(base_url: &str, timeout: &str) -> String {
    format!(
        r#"
[store]
flush_interval = "20ms"
[providers.up]
type = "openai"
base_url = "{base_url}"
timeout = "{timeout}"
[routes.r]
baseline = "a"
[routes.r.variants.a]
provider = "up"
model = "casual"
"#
    )
}

async fn start_mock_llm(models: &str) -> (String, std::sync::Arc<rampart_mock::Simulator>) {
    let cfg = rampart_core::config::Config::from_toml_str(models).unwrap();
    let Some(rampart_core::config::ProviderConfig {
        kind: rampart_core::config::ProviderKind::Mock(m),
        ..
    }) = cfg.providers.get("sim")
    else {
        panic!("no mock provider")
    };
    let sim = std::sync::Arc::new(rampart_mock::Simulator::new(m.models.clone(), 7));
    sim.record_received(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(rampart_mock::serve(
        listener,
        sim.clone(),
        std::future::pending(),
    ));
    (url, sim)
}

const MOCK_MODELS: &str = r#"
[providers.sim]
type = "mock"
[providers.sim.models.casual]
style = "casual"
latency_ms = { median = 5, p95 = 10 }
[providers.sim.models.slow]
style = "casual"
latency_ms = { median = 3000, p95 = 3100 }
[providers.sim.models.broken]
style = "casual"
error_rate = 1.0
"#;

#[tokio::test]
async fn openai_provider_over_real_http_json_and_stream() {
    let (url, sim) = start_mock_llm(MOCK_MODELS).await;
    let t = TestGateway::start(&openai_config(&url, "5s")).await;
    let r = client()
        .post(format!("{}/v1/chat/completions", t.url))
        .header("x-rampart-class", "card_arrival")
        .json(&chat("r", "Where is my new card?"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
            > 10
    );
    assert_eq!(sim.received()[0].class.as_deref(), Some("card_arrival"));

    // Streaming: chunks forwarded, usage requested upstream but not shown to a client that
    // did not ask for it, then [DONE].
    let mut body = chat("r", "Where is my new card?");
    body["stream"] = json!(true);
    let r = client()
        .post(format!("{}/v1/chat/completions", t.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let stream_id = r.headers()["x-rampart-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let text = r.text().await.unwrap();
    let datas: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(*datas.last().unwrap(), "[DONE]");
    let mut streamed = String::new();
    for d in &datas[..datas.len() - 1] {
        let c: Value = serde_json::from_str(d).unwrap();
        assert!(
            !c["choices"].as_array().unwrap().is_empty(),
            "usage-only chunk leaked: {d}"
        );
        streamed.push_str(c["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
    }
    assert_eq!(
        streamed,
        v["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let upstream = &sim.received()[1].body;
    assert_eq!(upstream["stream_options"]["include_usage"], true);

    // The stream's usage and time to first token were recorded though the client saw no usage.
    let (store, _dir) = t.shutdown().await;
    use rampart_store::EventStore;
    assert_eq!(store.count_events().unwrap(), 2);
    let ev = store.get_event(&stream_id).unwrap().unwrap();
    assert!(ev.streamed);
    assert!(ev.completion_tokens > 0 && ev.prompt_tokens > 0, "{ev:?}");
    assert!(ev.ttft_ms.unwrap() <= ev.latency_ms);
    assert_eq!(ev.output_text.as_deref(), Some(streamed.as_str()));
}

#[tokio::test]
async fn provider_timeout_is_504_and_unreachable_is_502() {
    let (url, _sim) = start_mock_llm(MOCK_MODELS).await;
    let t = TestGateway::start(
        &openai_config(&url, "300ms").replace("model = \"casual\"", "model = \"slow\""),
    )
    .await;
    let r = post(&t.url, &chat("r", "hello")).await;
    assert_eq!(r.status(), 504);
    // An error answer carries rampart's headers as far as they were known: the variant was.
    let h = r.headers();
    assert!(
        h["x-rampart-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    assert!(h.contains_key("x-rampart-variant") && h.contains_key("x-rampart-cohort"));
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "upstream_timeout");

    let t2 = TestGateway::start(
        &openai_config(&url, "5s").replace("model = \"casual\"", "model = \"broken\""),
    )
    .await;
    let r = post(&t2.url, &chat("r", "hello")).await;
    assert_eq!(r.status(), 500, "upstream status passes through");
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b["error"]["type"], "server_error",
        "upstream body passes through: {b}"
    );

    // Nothing listens on this port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let t3 = TestGateway::start(&openai_config(&dead_url, "5s")).await;
    let r = post(&t3.url, &chat("r", "hello")).await;
    assert_eq!(r.status(), 502);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "upstream_unreachable");
    // The client is not told where the provider lives; the stored event keeps the detail.
    let port = dead_url.rsplit(':').next().unwrap().trim_end_matches("/v1");
    assert!(
        !b.to_string().contains(port),
        "upstream address leaked: {b}"
    );
    assert!(
        !b.to_string().contains("127.0.0.1"),
        "upstream address leaked: {b}"
    );
}

/// An upstream error whose message names an internal URL reaches the client without it.
#[tokio::test]
async fn upstream_error_messages_do_not_reveal_internal_urls() {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            (
                axum::http::StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": {
                    "message": "model not found at http://10.1.2.3:8000/internal/v1 (see https://vllm.internal/docs)",
                    "type": "invalid_request_error", "code": "model_not_found"}})),
            )
        }),
    );
    let url = common::spawn_app(app).await;
    let t = TestGateway::start(&openai_config(&format!("{url}/v1"), "5s")).await;
    let r = post(&t.url, &chat("r", "hello")).await;
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    let text = b.to_string();
    assert!(
        !text.contains("10.1.2.3") && !text.contains("vllm.internal"),
        "{b}"
    );
    assert_eq!(b["error"]["code"], "model_not_found");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model not found at [upstream]")
    );
}

/// One request cannot cost without bound: too many messages, or nesting too deep, is a 400
/// naming the config key, counted, and the gateway stays healthy.
#[tokio::test]
async fn requests_over_the_message_and_depth_limits_get_400_naming_the_limit() {
    let cfg = config(r#"{ name = "c0", percent = 0 }"#, "").replace(
        "shutdown_grace = \"10s\"",
        "shutdown_grace = \"10s\"\nmax_messages = 100\nmax_json_depth = 8",
    );
    assert!(
        cfg.contains("max_messages = 100"),
        "the harness config changed"
    );
    let t = TestGateway::start(&cfg).await;
    let msgs = |n: usize| vec![json!({"role": "user", "content": "x"}); n];
    let ok = json!({"model": "support", "messages": msgs(100)});
    assert_eq!(post(&t.url, &ok).await.status(), 200);

    let (s, b) = post_raw(
        &t.url,
        serde_json::to_vec(&json!({"model": "support", "messages": msgs(101)})).unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert_openai_error(&b, "server.max_messages");
    assert_eq!(b["error"]["code"], "request_too_complex");

    let mut deep = json!("x");
    for _ in 0..10 {
        deep = json!([deep]);
    }
    let body = json!({"model": "support", "messages": [{"role": "user", "content": deep}]});
    let (s, b) = post_raw(&t.url, serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(s, 400);
    assert_openai_error(&b, "server.max_json_depth");

    let m = metrics(&t.url).await;
    assert_eq!(
        metric(
            &m,
            "rampart_rejected_requests_total{reason=\"too_complex\"}"
        ),
        2.0
    );
}

/// Errors no handler wrote (405, extractor rejections) have OpenAI's shape too.
#[tokio::test]
async fn method_not_allowed_and_bad_queries_have_the_openai_error_shape() {
    let t = TestGateway::start(&config(r#"{ name = "c0", percent = 0 }"#, "")).await;
    let r = client()
        .get(format!("{}/v1/chat/completions", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers().get("allow").is_some());
    let b: Value = r.json().await.unwrap();
    assert_openai_error(&b, "method not allowed");
    assert_eq!(b["error"]["code"], "method_not_allowed");

    let r = client()
        .get(format!(
            "{}/admin/rollouts/support-v2/pairs?limit=many",
            t.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_openai_error(&b, "limit");
}

/// A full event queue: while the database is locked by another process the writer cannot
/// write, its queue (capacity 1) fills, and further events are dropped and counted, while
/// every request is still answered at once. Nothing is lost silently: stored + dropped = sent.
#[tokio::test]
async fn a_full_event_queue_drops_and_counts_without_blocking_requests() {
    use rampart_store::EventStore;
    const SENT: u64 = 30;
    let cfg = config(r#"{ name = "canary", percent = 50 }"#, "").replace(
        "[store]\nflush_interval = \"20ms\"",
        "[store]\nflush_interval = \"20ms\"\nqueue_capacity = 1\nbatch_size = 1",
    );
    assert!(
        cfg.contains("queue_capacity = 1"),
        "the harness config changed"
    );
    let t = TestGateway::start(&cfg).await;
    let lock = rusqlite::Connection::open(t.store.path()).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();

    let client = reqwest::Client::new();
    for i in 0..SENT {
        let r = client
            .post(format!("{}/v1/chat/completions", t.url))
            .header("x-rampart-routing-key", format!("user-{i}"))
            .json(&chat("support", "Where is my card?"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let m = metrics(&t.url).await;
    let dropped = metric(&m, "rampart_events_dropped_total{reason=\"queue_full\"}") as u64;
    // One event in the writer's hands, one in the queue, the rest dropped.
    assert!(dropped >= SENT - 3, "dropped {dropped} of {SENT}: {m}");

    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    t.gw.writer.flush().await.unwrap();
    assert_eq!(t.store.count_events().unwrap() + dropped, SENT);
    t.shutdown().await;
}
