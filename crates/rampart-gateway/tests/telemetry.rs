//! OpenTelemetry end to end: a test OTLP/HTTP collector (protobuf, decoded with
//! `opentelemetry-proto`) receives the spans of keyed, unkeyed and shadowed requests with the
//! GenAI and `rampart.*` attributes; an incoming `traceparent` is continued; the shadow call's
//! span links to its request's span. With the collector down or hanging, requests are answered
//! as before and the lost spans are counted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::{TestGateway, chat, config, metric, metrics};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
struct Got {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    links: Vec<String>,
    attrs: BTreeMap<String, String>,
    service: String,
}

type Spans = Arc<Mutex<Vec<Got>>>;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// An OTLP/HTTP collector: `POST /v1/traces` with a protobuf `ExportTraceServiceRequest`.
async fn collector() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            post(|State(spans): State<Spans>, body: Bytes| async move {
                let req = ExportTraceServiceRequest::decode(body).unwrap();
                let mut got = spans.lock().await;
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| r.attributes.iter())
                        .find(|kv| kv.key == "service.name")
                        .map(|kv| text(&kv.value))
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            got.push(Got {
                                name: s.name.clone(),
                                trace_id: hex(&s.trace_id),
                                span_id: hex(&s.span_id),
                                parent_span_id: hex(&s.parent_span_id),
                                links: s.links.iter().map(|l| hex(&l.span_id)).collect(),
                                attrs: s
                                    .attributes
                                    .iter()
                                    .map(|kv| (kv.key.clone(), text(&kv.value)))
                                    .collect(),
                                service: service.clone(),
                            });
                        }
                    }
                }
                axum::http::StatusCode::OK
            }),
        )
        .with_state(spans.clone());
    (common::spawn_app(app).await, spans)
}

async fn span_of(spans: &Spans, request_id: &str, shadow: bool) -> Got {
    for _ in 0..200 {
        let found = spans
            .lock()
            .await
            .iter()
            .find(|s| {
                s.attrs.get("rampart.request_id").map(String::as_str) == Some(request_id)
                    && s.attrs.contains_key("rampart.shadow") == shadow
            })
            .cloned();
        if let Some(s) = found {
            return s;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no span for {request_id} (shadow: {shadow}): {:#?}",
        spans.lock().await
    );
}

async fn send(t: &TestGateway, key: Option<&str>, traceparent: Option<&str>) -> (String, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", t.url))
        .header("x-rampart-class", "cards")
        .json(&chat("support", "my card has not arrived"));
    if let Some(k) = key {
        req = req.header("x-rampart-routing-key", k);
    }
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = |n: &str| r.headers()[n].to_str().unwrap().to_string();
    (h("x-rampart-request-id"), h("x-rampart-cohort"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_unkeyed_and_shadowed_requests_reach_the_collector_with_their_attributes() {
    let (url, spans) = collector().await;
    let t = TestGateway::start(&config(
        r#"{ name = "canary-50", percent = 50, shadow_percent = 100 }"#,
        &format!("[telemetry]\notlp_endpoint = \"{url}\"\nservice_name = \"rampart-test\"\n"),
    ))
    .await;

    // Keyed, inside a caller's trace.
    let parent_trace = "0af7651916cd43dd8448eb211c80319c";
    let parent_span = "b7ad6b7169203331";
    let (id, cohort) = send(
        &t,
        Some("user-1"),
        Some(&format!("00-{parent_trace}-{parent_span}-01")),
    )
    .await;
    let s = span_of(&spans, &id, false).await;
    assert_eq!(s.trace_id, parent_trace, "the caller's trace is continued");
    assert_eq!(s.parent_span_id, parent_span);
    assert_eq!(s.service, "rampart-test");
    assert_eq!(s.name, "chat support");
    for (k, v) in [
        ("gen_ai.operation.name", "chat"),
        ("rampart.route", "support"),
        ("rampart.rollout", "support-v2"),
        ("rampart.stage", "canary-50"),
        ("rampart.cohort", cohort.as_str()),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(s.attrs.get(k).map(String::as_str), Some(v), "{k}: {s:#?}");
    }
    let (variant, model) = if cohort == "canary" {
        ("v2", "new")
    } else {
        ("v1", "old")
    };
    assert_eq!(s.attrs["rampart.variant"], variant);
    assert_eq!(s.attrs["gen_ai.request.model"], model);
    assert!(s.attrs["gen_ai.usage.input_tokens"].parse::<u64>().unwrap() > 0);
    assert!(
        s.attrs["gen_ai.usage.output_tokens"]
            .parse::<u64>()
            .unwrap()
            > 0
    );

    // A control request's shadow call: a span in a trace of its own, linked to the request's
    // span. (Canary requests are served by the candidate and not shadowed.)
    let mut control = None;
    for i in 2..200 {
        let (id, cohort) = send(&t, Some(&format!("user-{i}")), None).await;
        if cohort == "control" {
            control = Some(id);
            break;
        }
    }
    let id = control.expect("a control request");
    let s = span_of(&spans, &id, false).await;
    assert_eq!(s.attrs["rampart.cohort"], "control");
    assert_eq!(s.attrs["rampart.variant"], "v1");
    let sh = span_of(&spans, &id, true).await;
    assert_eq!(sh.links, vec![s.span_id.clone()]);
    assert_ne!(sh.trace_id, s.trace_id);
    assert_eq!(sh.attrs["rampart.variant"], "v2");
    assert_eq!(sh.attrs["rampart.cohort"], "shadow");
    assert!(
        sh.attrs["gen_ai.usage.output_tokens"]
            .parse::<u64>()
            .unwrap()
            > 0
    );

    // Unkeyed, no traceparent: a new trace, cohort `unkeyed`, the baseline.
    let (id, cohort) = send(&t, None, None).await;
    assert_eq!(cohort, "unkeyed");
    let u = span_of(&spans, &id, false).await;
    assert_eq!(u.attrs["rampart.cohort"], "unkeyed");
    assert_eq!(u.attrs["rampart.variant"], "v1");
    assert_eq!(u.parent_span_id, "");

    let m = metrics(&t.url).await;
    assert_eq!(
        metric(&m, r#"rampart_trace_spans_total{outcome="dropped"}"#),
        0.0
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_hanging_collector_costs_requests_nothing_and_lost_spans_are_counted() {
    // Down: nothing listens on the port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let t = TestGateway::start(&config(
        r#"{ name = "canary-50", percent = 50, shadow_percent = 100 }"#,
        &format!("[telemetry]\notlp_endpoint = \"http://{closed}\"\n"),
    ))
    .await;
    for i in 0..10 {
        send(&t, Some(&format!("user-{i}")), None).await;
    }
    let mut failed = 0.0;
    for _ in 0..200 {
        failed = metric(
            &metrics(&t.url).await,
            r#"rampart_trace_spans_total{outcome="export_failed"}"#,
        );
        if failed >= 10.0 {
            break;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failed >= 10.0, "export failures counted: {failed}");
    t.shutdown().await;

    // Hanging: the collector accepts and never answers; the two-span queue fills, later
    // spans are dropped and counted, and every request is still answered.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = hang.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let held2 = held.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = hang.accept().await {
            held2.lock().await.push(sock);
        }
    });
    let t = TestGateway::start(&config(
        r#"{ name = "canary-50", percent = 50 }"#,
        &format!(
            "[telemetry]\notlp_endpoint = \"http://{addr}\"\nqueue_capacity = 2\nexport_timeout = \"60s\"\n"
        ),
    ))
    .await;
    for i in 0..20 {
        send(&t, Some(&format!("user-{i}")), None).await;
    }
    let dropped = metric(
        &metrics(&t.url).await,
        r#"rampart_trace_spans_total{outcome="dropped"}"#,
    );
    assert!(
        dropped >= 10.0,
        "spans past the queue are dropped and counted: {dropped}"
    );
    t.shutdown().await;
}
