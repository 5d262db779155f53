//! The HTTP surface over a real TCP listener on 127.0.0.1:0, with a minimal HTTP/1.1 client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use rampart_mock::Simulator;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_line = String::from_utf8_lossy(&raw[..pos]);
        let size = usize::from_str_radix(size_line.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
    out
}

async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: mock\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if body.is_some() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!(
        "Content-Length: {}\r\n\r\n{payload}",
        payload.len()
    ));
    stream
        .write_all(req.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

async fn start() -> (
    std::net::SocketAddr,
    Arc<Simulator>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    let mut models = std::collections::BTreeMap::new();
    let mut fast = common::behaviour(rampart_core::config::Style::Casual);
    fast.latency.median_ms = 5.0;
    fast.latency.p95_ms = 10.0;
    models.insert("fast".to_string(), common::model(fast));
    let sim = Arc::new(Simulator::new(models, 1));
    sim.record_received(true);
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(rampart_mock::serve(listener, sim.clone(), async {
        let _ = rx.await;
    }));
    (addr, sim, tx, server)
}

#[tokio::test]
async fn json_sse_embeddings_models_and_received() {
    let (addr, sim, stop, server) = start().await;

    // Health and models.
    let r = request(addr, "GET", "/healthz", &[], None).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let r = request(addr, "GET", "/v1/models", &[], None).await;
    assert_eq!(r.json()["data"][0]["id"], "fast");

    // JSON completion, with pass-through fields and the class header.
    let body = json!({
        "model": "fast",
        "messages": [{"role": "user", "content": "Why is my card payment pending?"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        "response_format": {"type": "json_object"},
        "seed": 4,
    });
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[("x-rampart-class", "payments")],
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    let content = v["choices"][0]["message"]["content"].as_str().unwrap_or("");
    let inner: Value = serde_json::from_str(content).unwrap_or(Value::Null);
    assert!(
        inner["answer"]
            .as_str()
            .is_some_and(|a| a.contains("payment")),
        "{content}"
    );
    let again = request(addr, "POST", "/v1/chat/completions", &[], Some(&body)).await;
    assert_eq!(again.json()["choices"], v["choices"], "seeded calls repeat");

    // SSE with usage.
    let stream_body = json!({
        "model": "fast",
        "messages": [{"role": "user", "content": "How do I change my PIN?"}],
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[],
        Some(&stream_body),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = r.text();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("bad event {e:?}"))
        })
        .collect();
    assert_eq!(events.last().copied(), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or(Value::Null))
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let usage_chunk = &chunks[chunks.len() - 1];
    assert_eq!(usage_chunk["choices"], json!([]));
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(streamed.to_lowercase().contains("pin"), "{streamed}");
    assert_eq!(
        usage_chunk["usage"]["completion_tokens"].as_u64(),
        Some(rampart_mock::generate::approx_tokens(&streamed))
    );

    // Embeddings: deterministic, 256-dimensional by default.
    let eb = json!({"model": "any-embedder", "input": ["card arrival", "reset PIN"]});
    let e1 = request(addr, "POST", "/v1/embeddings", &[], Some(&eb))
        .await
        .json();
    let e2 = request(addr, "POST", "/v1/embeddings", &[], Some(&eb))
        .await
        .json();
    assert_eq!(e1, e2);
    assert_eq!(
        e1["data"][0]["embedding"].as_array().map(Vec::len),
        Some(256)
    );
    assert_eq!(e1["data"].as_array().map(Vec::len), Some(2));

    // Unknown model and malformed bodies.
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[],
        Some(&common::chat("nope", "hi")),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    let mut s = common::chat("nope", "hi");
    s["stream"] = json!(true);
    let r = request(addr, "POST", "/v1/chat/completions", &[], Some(&s)).await;
    assert_eq!(r.status, 404, "streaming errors are plain JSON");
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[],
        Some(&json!({"model": "fast"})),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");

    // What the provider received, with the class header.
    let r = request(addr, "GET", "/_mock/received", &[], None).await;
    let received = r.json();
    let list = received.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 6);
    assert_eq!(
        list[0]["body"], body,
        "tools and response_format arrive intact"
    );
    assert_eq!(list[0]["class"], "payments");
    assert_eq!(list[1]["class"], Value::Null);
    assert_eq!(sim.received().len(), 6);
    let r = request(addr, "DELETE", "/_mock/received", &[], None).await;
    assert_eq!(r.status, 204);
    assert!(sim.received().is_empty());

    let _ = stop.send(());
    let res = server.await;
    assert!(matches!(res, Ok(Ok(()))), "server shut down cleanly");
}
