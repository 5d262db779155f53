//! Connection hygiene (slowloris): slow, partial and idle connections are closed on time and
//! counted, the connection cap holds, and normal traffic is served while they are open; at the
//! shutdown deadline a stream still open ends with an error event and leaves an event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{TestGateway, chat, config, metric, metrics};
use rampart_store::EventStore;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn limited(server: &str) -> String {
    config(r#"{ name = "c0", percent = 0 }"#, "").replace(
        "shutdown_grace = \"10s\"",
        &format!("shutdown_grace = \"10s\"\n{server}"),
    )
}

/// Wait (bounded) until the server closes `s`: a read returns EOF or an error. Returns what the
/// server wrote before closing.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn connect(url: &str) -> TcpStream {
    TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap()
}

async fn served(url: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat("support", "hello"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn partial_and_idle_connections_are_closed_while_normal_traffic_is_served() {
    let t = TestGateway::start(&limited(
        "header_read_timeout = \"500ms\"\nmax_connections = 400",
    ))
    .await;
    // 150 connections that send half a request head, 150 that send nothing.
    let mut slow = Vec::new();
    for i in 0..300 {
        let mut s = connect(&t.url).await;
        if i % 2 == 0 {
            s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
        }
        slow.push(s);
    }
    // With all of them open, ordinary requests are answered.
    for _ in 0..5 {
        assert_eq!(served(&t.url).await, 200);
    }
    for s in &mut slow {
        assert!(
            closed_by_server(s, Duration::from_secs(30)).await.is_some(),
            "a slow connection was left open"
        );
    }
    let m = metrics(&t.url).await;
    assert!(
        metric(&m, "rampart_connections_header_timeouts_total") >= 300.0,
        "{m}"
    );
    assert_eq!(served(&t.url).await, 200);
    t.shutdown().await;
}

#[tokio::test]
async fn a_body_not_sent_in_time_is_a_408_and_the_connection_closes() {
    let t = TestGateway::start(&limited("body_read_timeout = \"300ms\"")).await;
    let mut s = connect(&t.url).await;
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":",
    )
    .await
    .unwrap();
    let answer = closed_by_server(&mut s, Duration::from_secs(30))
        .await
        .expect("the connection stayed open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.body_read_timeout")
    );
    let m = metrics(&t.url).await;
    assert_eq!(metric(&m, "rampart_connections_body_timeouts_total"), 1.0);
    t.shutdown().await;
}

#[tokio::test]
async fn the_connection_cap_holds_and_the_next_client_is_served_once_a_slot_frees() {
    let t = TestGateway::start(&limited(
        "header_read_timeout = \"400ms\"\nmax_connections = 3",
    ))
    .await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(connect(&t.url).await);
    }
    // The fourth waits in the backlog until an idle one is closed, then is served.
    assert_eq!(served(&t.url).await, 200);
    let m = metrics(&t.url).await;
    assert!(
        metric(&m, "rampart_connections_waited_at_cap_total") >= 1.0,
        "{m}"
    );
    assert!(metric(&m, "rampart_connections_open") <= 3.0, "{m}");
    t.shutdown().await;
}

/// A stand-in upstream that sends one chunk, then nothing.
async fn hanging_stream() -> String {
    use axum::body::{Body, Bytes};
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            let first = format!(
                "data: {}\n\n",
                json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
                       "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]})
            );
            let s = futures_util::stream::once(async move {
                Ok::<_, std::convert::Infallible>(Bytes::from(first))
            })
            .chain(futures_util::stream::pending());
            let mut r = axum::response::Response::new(Body::from_stream(s));
            r.headers_mut()
                .insert("content-type", "text/event-stream".parse().unwrap());
            r
        }),
    );
    common::spawn_app(app).await
}

use futures_util::StreamExt;

#[tokio::test]
async fn a_stream_cut_at_the_grace_deadline_ends_with_an_error_event_and_is_recorded() {
    let up = hanging_stream().await;
    let cfg = format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "500ms"
[store]
flush_interval = "20ms"
[providers.up]
type = "openai"
base_url = "{up}/v1"
idle_timeout = "1h"
[routes.r]
baseline = "a"
[routes.r.variants.a]
provider = "up"
model = "m"
"#
    );
    let t = TestGateway::start(&cfg).await;
    let mut body = chat("r", "hi");
    body["stream"] = json!(true);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", t.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-rampart-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let mut stream = r.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("Hel"));
    let reader = tokio::spawn(async move {
        let mut rest = String::new();
        while let Some(Ok(b)) = stream.next().await {
            rest.push_str(&String::from_utf8_lossy(&b));
        }
        rest
    });
    let (store, _dir) = t.shutdown().await;
    let rest = reader.await.unwrap();
    assert!(
        rest.contains("\"error\"") && rest.contains("grace deadline"),
        "{rest:?}"
    );
    let ev = store
        .get_event(&id)
        .unwrap()
        .expect("the cut stream left no event");
    assert_eq!(ev.outcome, rampart_core::record::Outcome::Cancelled);
    assert_eq!(ev.status, 503);
    assert_eq!(ev.output_text.as_deref(), Some("Hel"));
}
