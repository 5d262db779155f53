//! Providers that misbehave: redirects, 429s, broken and hostile streams, slow streams, and
//! retries. Each upstream is a stand-in server over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use common::{TestGateway, chat, metric, metrics, spawn_app};
use rampart_core::record::Outcome;
use rampart_store::EventStore;
use serde_json::{Value, json};

/// An `openai` provider at `base_url` with extra provider keys.
fn cfg(base_url: &str, extra: &str) -> String {
    format!(
        r#"
[store]
flush_interval = "20ms"
[providers.up]
type = "openai"
base_url = "{base_url}"
{extra}
[routes.r]
baseline = "a"
[routes.r.variants.a]
provider = "up"
model = "m"
"#
    )
}

fn chunk(text: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
               "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
    )
}

/// An SSE answer whose parts are sent after their delays.
fn sse(parts: Vec<(Duration, String)>) -> Response {
    let s = futures_util::stream::unfold(parts.into_iter(), |mut it| async move {
        let (delay, part) = it.next()?;
        // The fault under test: the upstream sends this part late.
        tokio::time::sleep(delay).await;
        Some((Ok::<_, Infallible>(Bytes::from(part)), it))
    });
    let mut r = Response::new(Body::from_stream(s));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, "text/event-stream".parse().unwrap());
    r
}

fn streaming(text: &str) -> Value {
    let mut b = chat("r", text);
    b["stream"] = json!(true);
    b
}

async fn send(url: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The `data:` payloads of an SSE body.
fn datas(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

/// The stored event of request `id` (after flushing the writer).
async fn event(t: &TestGateway, id: &str) -> rampart_core::record::RequestEvent {
    for _ in 0..200 {
        t.gw.writer.flush().await.unwrap();
        if let Some(e) = t.store.get_event(id).unwrap() {
            return e;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("event {id} never stored");
}

fn request_id(r: &reqwest::Response) -> String {
    r.headers()["x-rampart-request-id"]
        .to_str()
        .unwrap()
        .to_string()
}

/// A redirect is not followed (the key would travel with it) and is a provider error.
#[tokio::test]
async fn redirects_are_provider_errors_and_never_followed() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let target = spawn_app(Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            "followed"
        }
    }))
    .await;
    for status in [StatusCode::FOUND, StatusCode::TEMPORARY_REDIRECT] {
        let loc = format!("{target}/v1/chat/completions");
        let up = spawn_app(Router::new().route(
            "/v1/chat/completions",
            post(move || {
                let loc = loc.clone();
                async move { (status, [(header::LOCATION, loc)], "") }
            }),
        ))
        .await;
        let t = TestGateway::start(&cfg(&format!("{up}/v1"), "")).await;
        let r = send(&t.url, &chat("r", "hi")).await;
        assert_eq!(r.status(), 502, "{status}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["code"], "upstream_invalid_response", "{b}");
        assert!(
            !b.to_string().contains(&target),
            "the redirect target leaks: {b}"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a redirect was followed");
}

/// A 429's `Retry-After` reaches the client (here too long to retry within the deadline).
#[tokio::test]
async fn retry_after_of_a_429_is_passed_to_the_client() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let up = spawn_app(Router::new().route(
        "/v1/chat/completions",
        post(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "120")],
                    axum::Json(json!({"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit"}})),
                )
            }
        }),
    ))
    .await;
    let t = TestGateway::start(&cfg(&format!("{up}/v1"), "timeout = \"5s\"")).await;
    let r = send(&t.url, &chat("r", "hi")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "120");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["message"], "slow down");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "no retry past the deadline");
}

/// A stream that closes without `[DONE]` ends with an OpenAI-shaped error event, not a
/// synthesised `[DONE]`, and is recorded as an error.
#[tokio::test]
async fn a_stream_cut_before_done_ends_in_an_error_event() {
    let up = spawn_app(Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            sse(vec![
                (Duration::ZERO, chunk("Hel")),
                (Duration::ZERO, chunk("lo")),
            ])
        }),
    ))
    .await;
    let t = TestGateway::start(&cfg(&format!("{up}/v1"), "")).await;
    let r = send(&t.url, &streaming("hi")).await;
    assert_eq!(r.status(), 200);
    let id = request_id(&r);
    let d = datas(&r.text().await.unwrap());
    assert!(!d.iter().any(|x| x == "[DONE]"), "{d:?}");
    let last: Value = serde_json::from_str(d.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "upstream_error", "{last}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[DONE]"),
        "{last}"
    );
    assert_eq!(d.len(), 3, "both chunks, then the error: {d:?}");
    let ev = event(&t, &id).await;
    assert_eq!(ev.outcome, Outcome::Error);
}

/// An HTML page (or any non-event-stream body) in answer to a streaming request is a 502
/// before any byte of a stream, recorded as an error; invalid JSON inside a stream ends it
/// with an error event.
#[tokio::test]
async fn html_or_invalid_json_in_answer_to_a_stream_is_a_provider_error() {
    let up = spawn_app(
        Router::new()
            .route(
                "/html/chat/completions",
                post(|| async {
                    (
                        [(header::CONTENT_TYPE, "text/html")],
                        "<html><body>Bad gateway</body></html>",
                    )
                }),
            )
            .route(
                "/latin1/chat/completions",
                post(|| async {
                    let mut body = chunk("Hi").into_bytes();
                    body.extend_from_slice(
                        b"data: {\"choices\": [{\"delta\": {\"content\": \"caf\xe9\"}}]}\n\n",
                    );
                    ([(header::CONTENT_TYPE, "text/event-stream")], body)
                }),
            )
            .route(
                "/junk/chat/completions",
                post(|| async {
                    sse(vec![
                        (Duration::ZERO, chunk("Hi")),
                        (Duration::ZERO, "data: <html>oops</html>\n\n".into()),
                        (Duration::ZERO, "data: [DONE]\n\n".into()),
                    ])
                }),
            ),
    )
    .await;
    let t = TestGateway::start(&cfg(&format!("{up}/html"), "")).await;
    let r = send(&t.url, &streaming("hi")).await;
    assert_eq!(r.status(), 502);
    let id = request_id(&r);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "upstream_invalid_response", "{b}");
    assert_eq!(event(&t, &id).await.outcome, Outcome::Error);

    let t = TestGateway::start(&cfg(&format!("{up}/junk"), "")).await;
    let r = send(&t.url, &streaming("hi")).await;
    assert_eq!(r.status(), 200);
    let id = request_id(&r);
    let d = datas(&r.text().await.unwrap());
    assert_eq!(d.len(), 2, "{d:?}");
    let last: Value = serde_json::from_str(&d[1]).unwrap();
    assert_eq!(last["error"]["code"], "upstream_invalid_response", "{last}");
    assert_eq!(event(&t, &id).await.outcome, Outcome::Error);

    // An event stream that is not UTF-8 (here Latin-1) is malformed.
    let t = TestGateway::start(&cfg(&format!("{up}/latin1"), "")).await;
    let r = send(&t.url, &streaming("hi")).await;
    assert_eq!(r.status(), 200);
    let id = request_id(&r);
    let d = datas(&r.text().await.unwrap());
    assert_eq!(d.len(), 2, "{d:?}");
    let last: Value = serde_json::from_str(&d[1]).unwrap();
    assert_eq!(last["error"]["code"], "upstream_invalid_response", "{last}");
    assert_eq!(event(&t, &id).await.outcome, Outcome::Error);
}

/// A tool-call index of four billion is refused as a provider error instead of being
/// allocated for.
#[tokio::test]
async fn a_huge_streamed_tool_call_index_is_a_provider_error() {
    let evil = format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 4_000_000_000u64, "id": "x", "type": "function",
             "function": {"name": "f", "arguments": "{}"}}]}}]})
    );
    let up = spawn_app(Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let evil = evil.clone();
            async move {
                sse(vec![
                    (Duration::ZERO, chunk("Hi")),
                    (Duration::ZERO, evil),
                    (Duration::ZERO, "data: [DONE]\n\n".into()),
                ])
            }
        }),
    ))
    .await;
    let t = TestGateway::start(&cfg(&format!("{up}/v1"), "")).await;
    let r = send(&t.url, &streaming("hi")).await;
    assert_eq!(r.status(), 200);
    let id = request_id(&r);
    let d = datas(&r.text().await.unwrap());
    assert_eq!(d.len(), 2, "{d:?}");
    let last: Value = serde_json::from_str(&d[1]).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tool-call index 4000000000"),
        "{last}"
    );
    assert_eq!(event(&t, &id).await.outcome, Outcome::Error);
}

/// A stream longer than `timeout` whose chunks keep coming is not cut; one that goes silent
/// for longer than `idle_timeout` is, as a timeout.
#[tokio::test]
async fn streams_use_first_byte_and_idle_timeouts_not_the_whole_body_timeout() {
    let up = spawn_app(
        Router::new()
            .route(
                "/long/chat/completions",
                post(|| async {
                    let mut parts: Vec<(Duration, String)> = (0..10)
                        .map(|i| (Duration::from_millis(100), chunk(&format!("w{i} "))))
                        .collect();
                    parts.push((Duration::ZERO, "data: [DONE]\n\n".into()));
                    sse(parts)
                }),
            )
            .route(
                "/stall/chat/completions",
                post(|| async {
                    sse(vec![
                        (Duration::ZERO, chunk("Hi")),
                        (Duration::from_secs(30), "data: [DONE]\n\n".into()),
                    ])
                }),
            ),
    )
    .await;
    let keys = "timeout = \"300ms\"\nfirst_byte_timeout = \"5s\"\nidle_timeout = \"600ms\"";
    let t = TestGateway::start(&cfg(&format!("{up}/long"), keys)).await;
    let r = send(&t.url, &streaming("hi")).await;
    let id = request_id(&r);
    let d = datas(&r.text().await.unwrap());
    assert_eq!(d.last().map(String::as_str), Some("[DONE]"), "{d:?}");
    assert_eq!(d.len(), 11);
    assert_eq!(event(&t, &id).await.outcome, Outcome::Ok);

    let keys = "first_byte_timeout = \"5s\"\nidle_timeout = \"200ms\"";
    let t = TestGateway::start(&cfg(&format!("{up}/stall"), keys)).await;
    let r = send(&t.url, &streaming("hi")).await;
    let id = request_id(&r);
    let d = datas(&r.text().await.unwrap());
    assert_eq!(d.len(), 2, "{d:?}");
    let last: Value = serde_json::from_str(&d[1]).unwrap();
    assert_eq!(last["error"]["code"], "upstream_timeout", "{last}");
    assert_eq!(event(&t, &id).await.outcome, Outcome::Timeout);
}

/// Nothing within `first_byte_timeout`: a 504 before the stream starts.
#[tokio::test]
async fn a_stream_without_a_first_byte_in_time_is_a_504() {
    let up = spawn_app(Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            sse(vec![
                (Duration::from_secs(30), chunk("late")),
                (Duration::ZERO, "data: [DONE]\n\n".into()),
            ])
        }),
    ))
    .await;
    let keys = "timeout = \"60s\"\nfirst_byte_timeout = \"200ms\"";
    let t = TestGateway::start(&cfg(&format!("{up}/v1"), keys)).await;
    let r = send(&t.url, &streaming("hi")).await;
    assert_eq!(r.status(), 504);
    let id = request_id(&r);
    assert_eq!(event(&t, &id).await.outcome, Outcome::Timeout);
}

/// A stand-in that answers the statuses of `script` in turn (then 200s), recording when each
/// call arrived.
fn scripted(
    script: Vec<(u16, Option<&'static str>)>,
) -> (Router, Arc<std::sync::Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(std::sync::Mutex::new(Vec::new()));
    let a = arrivals.clone();
    let script = Arc::new(script);
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |_h: HeaderMap| {
            let a = a.clone();
            let script = script.clone();
            async move {
                let n = {
                    let mut a = a.lock().unwrap();
                    a.push(Instant::now());
                    a.len() - 1
                };
                match script.get(n) {
                    Some((status, retry_after)) => {
                        let mut r = (
                            StatusCode::from_u16(*status).unwrap(),
                            axum::Json(json!({"error": {"message": "busy", "type": "server_error", "code": null}})),
                        )
                            .into_response();
                        if let Some(v) = retry_after {
                            r.headers_mut()
                                .insert(header::RETRY_AFTER, v.parse().unwrap());
                        }
                        r
                    }
                    None => axum::Json(json!({
                        "id": "x", "object": "chat.completion", "model": "m",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
                    }))
                    .into_response(),
                }
            }
        }),
    );
    (app, arrivals)
}

/// 503 twice then 200: the client sees one 200, and two retries are counted.
#[tokio::test]
async fn two_503s_then_200_is_one_200_and_two_counted_retries() {
    let (app, arrivals) = scripted(vec![(503, None), (503, None)]);
    let up = spawn_app(app).await;
    let t = TestGateway::start(&cfg(&format!("{up}/v1"), "retries = 2")).await;
    let r = send(&t.url, &chat("r", "hi")).await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["choices"][0]["message"]["content"], "fine");
    assert_eq!(arrivals.lock().unwrap().len(), 3);
    let m = metrics(&t.url).await;
    assert_eq!(
        metric(
            &m,
            "rampart_provider_retries_total{provider=\"up\",reason=\"503\"}"
        ),
        2.0,
        "{m}"
    );

    // With retries = 0 the first 503 is the answer.
    let (app, arrivals) = scripted(vec![(503, None)]);
    let up = spawn_app(app).await;
    let t = TestGateway::start(&cfg(&format!("{up}/v1"), "retries = 0")).await;
    assert_eq!(send(&t.url, &chat("r", "hi")).await.status(), 503);
    assert_eq!(arrivals.lock().unwrap().len(), 1);
}

/// `Retry-After: 1` is waited for before the retry.
#[tokio::test]
async fn retry_after_one_second_is_honoured() {
    let (app, arrivals) = scripted(vec![(429, Some("1"))]);
    let up = spawn_app(app).await;
    let t = TestGateway::start(&cfg(&format!("{up}/v1"), "timeout = \"30s\"")).await;
    let r = send(&t.url, &chat("r", "hi")).await;
    assert_eq!(r.status(), 200);
    let a = arrivals.lock().unwrap().clone();
    assert_eq!(a.len(), 2);
    assert!(
        a[1] - a[0] >= Duration::from_secs(1),
        "retried after {:?}",
        a[1] - a[0]
    );
    let m = metrics(&t.url).await;
    assert_eq!(
        metric(
            &m,
            "rampart_provider_retries_total{provider=\"up\",reason=\"429\"}"
        ),
        1.0
    );
}

/// A stream that fails after its first chunk reached the client is not retried.
#[tokio::test]
async fn a_stream_failing_after_its_first_chunk_is_not_retried() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let up = spawn_app(Router::new().route(
        "/v1/chat/completions",
        post(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { sse(vec![(Duration::ZERO, chunk("Hi"))]) }
        }),
    ))
    .await;
    let t = TestGateway::start(&cfg(&format!("{up}/v1"), "retries = 3")).await;
    let r = send(&t.url, &streaming("hi")).await;
    let d = datas(&r.text().await.unwrap());
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[1].contains("\"error\""), "{d:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let m = metrics(&t.url).await;
    assert!(!m.contains("rampart_provider_retries_total{"), "{m}");
}

/// Azure OpenAI: the deployment in the path, `api-version` in the query, the key in `api-key`
/// (never as a bearer token).
#[tokio::test]
async fn azure_openai_uses_its_url_scheme_and_api_key_header() {
    type Seen = Arc<std::sync::Mutex<Vec<(String, Option<String>, HeaderMap)>>>;
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push((
                uri.path().to_string(),
                uri.query().map(str::to_string),
                headers,
            ));
            axum::Json(json!({
                "id": "x", "object": "chat.completion", "model": "gpt-4o",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "from azure"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
            }))
        }
    });
    let up = spawn_app(app).await;
    let config = format!(
        r#"
[providers.az]
type = "azure_openai"
endpoint = "{up}/"
api_version = "2024-10-21"
# Any variable the test process has: cargo sets this one.
api_key_env = "CARGO_PKG_NAME"
[routes.r]
baseline = "a"
[routes.r.variants.a]
provider = "az"
model = "my-gpt4o deployment"
"#
    );
    let t = TestGateway::start(&config).await;
    let r = send(&t.url, &chat("r", "hi")).await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["choices"][0]["message"]["content"], "from azure");
    let seen = seen.lock().unwrap();
    let (path, query, headers) = &seen[0];
    assert_eq!(
        path,
        "/openai/deployments/my-gpt4o%20deployment/chat/completions"
    );
    assert_eq!(query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(headers["api-key"], env!("CARGO_PKG_NAME"));
    assert!(headers.get("authorization").is_none());
}

/// A whole answer reaches the client byte for byte as the upstream sent it (spacing, key order,
/// escapes and fields rampart does not know), and the event stores what the answer says; the
/// answer is read from its bytes, without a tree.
#[tokio::test]
async fn a_json_answer_passes_through_byte_for_byte_and_is_read_into_the_event() {
    const BODY: &str = "{ \"id\":\"c-1\",  \"object\":\"chat.completion\",\"x_vendor\":{\"k\":[1,2.50,null]},\n \
        \"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Caf\\u00e9 \\\"ok\\\"\",\
        \"refusal\":null},\"logprobs\":null,\"finish_reason\":\"length\"},{\"index\":1}],\
        \"usage\":{\"completion_tokens\":7,\"prompt_tokens\":11,\"total_tokens\":18} }";
    let up = spawn_app(Router::new().route(
        "/v1/chat/completions",
        post(|| async { ([(header::CONTENT_TYPE, "application/json")], BODY) }),
    ))
    .await;
    let t = TestGateway::start(&cfg(&format!("{up}/v1"), "")).await;
    let r = send(&t.url, &chat("r", "hi")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    let id = request_id(&r);
    assert_eq!(r.text().await.unwrap(), BODY);
    let e = event(&t, &id).await;
    assert_eq!((e.prompt_tokens, e.completion_tokens), (11, 7));
    assert_eq!(e.finish_reason.as_deref(), Some("length"));
    assert_eq!(e.output_text.as_deref(), Some("Café \"ok\""));
    assert!(!e.refusal);
}

/// A stream's chunks reach the client as the upstream wrote them (spacing, key order, escapes,
/// fields rampart does not know), each as one `data:` event, never re-encoded; the usage-only
/// chunk rampart asked for on its own account is held back unless the client asked for it
/// too; and the event stores what the chunks said.
#[tokio::test]
async fn stream_chunks_pass_through_byte_for_byte_and_are_read_into_the_event() {
    const CHUNKS: [&str; 5] = [
        // Azure's first chunk: no choice, no usage (content-filter results only).
        r#"{"choices":[],"created":0,"id":"","prompt_filter_results":[{"prompt_index":0}]}"#,
        r#"{ "id":"c-1","object":"chat.completion.chunk", "choices":[{"index":0,"delta":{"role":"assistant","content":"Caf\u00e9 "},"logprobs":null,"finish_reason":null}],"x_vendor":[1,2.50]}"#,
        r#"{"id":"c-1","choices":[{"delta":{"content":"\"ok\""},"index":0,"finish_reason":null}]}"#,
        r#"{"id":"c-1","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
        r#"{"id":"c-1","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}"#,
    ];
    let up = spawn_app(Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            let mut parts: Vec<(Duration, String)> = CHUNKS
                .iter()
                .map(|c| (Duration::ZERO, format!("data: {c}\n\n")))
                .collect();
            parts.push((Duration::ZERO, "data: [DONE]\n\n".into()));
            sse(parts)
        }),
    ))
    .await;
    let t = TestGateway::start(&cfg(&format!("{up}/v1"), "")).await;

    let r = send(&t.url, &streaming("hi")).await;
    assert_eq!(r.status(), 200);
    let id = request_id(&r);
    let got = datas(&r.text().await.unwrap());
    let mut want: Vec<String> = CHUNKS[..4].iter().map(|c| c.to_string()).collect();
    want.push("[DONE]".into());
    assert_eq!(
        got, want,
        "every chunk as sent, but the usage rampart asked for"
    );
    let e = event(&t, &id).await;
    assert_eq!(e.output_text.as_deref(), Some("Café \"ok\""));
    assert_eq!(e.finish_reason.as_deref(), Some("length"));
    assert_eq!((e.prompt_tokens, e.completion_tokens), (11, 7));
    assert_eq!(e.outcome, Outcome::Ok);

    let mut body = streaming("hi");
    body["stream_options"] = json!({"include_usage": true});
    let got = datas(&send(&t.url, &body).await.text().await.unwrap());
    let mut want: Vec<String> = CHUNKS.iter().map(|c| c.to_string()).collect();
    want.push("[DONE]".into());
    assert_eq!(got, want, "the usage too, when the client asked for it");
}
