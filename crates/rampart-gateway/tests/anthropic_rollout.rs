//! A rollout from an `openai` baseline to an `anthropic` candidate, both served by the
//! simulated provider over real HTTP (`/v1/chat/completions` and `/v1/messages`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::TestGateway;
use serde_json::{Value, json};

/// The simulated provider over HTTP; its base URL (no `/v1`).
async fn mock_llm() -> (String, Arc<rampart_mock::Simulator>) {
    let sim = Arc::new(rampart_mock::Simulator::with_default_models());
    sim.record_received(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(rampart_mock::serve(
        listener,
        sim.clone(),
        std::future::pending(),
    ));
    (url, sim)
}

fn config(mock: &str, percent: u32) -> String {
    format!(
        r#"
[store]
flush_interval = "20ms"
[providers.oai]
type = "openai"
base_url = "{mock}/v1"
[providers.claude]
type = "anthropic"
base_url = "{mock}"
retries = 0
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "oai"
model = "{model}"
input_usd_per_mtok = 2.5
output_usd_per_mtok = 10.0
[routes.support.variants.v2]
provider = "claude"
model = "{model}"
params = {{ max_tokens = 512 }}
input_usd_per_mtok = 3.0
output_usd_per_mtok = 15.0
[rollouts.support-v2]
route = "support"
candidate = "v2"
# The candidate's errors reach the client here (fallback is tested in tests/fallback.rs).
fallback_to_baseline = false
stages = [ {{ name = "canary", percent = {percent}, min_duration = "1h" }} ]
"#,
        model = first_model()
    )
}

fn first_model() -> String {
    rampart_mock::Simulator::with_default_models()
        .models()
        .next()
        .unwrap()
        .to_string()
}

async fn chat(t: &TestGateway, key: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", t.url))
        .header("x-rampart-routing-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn user(text: &str) -> Value {
    json!({"model": "support", "messages": [{"role": "user", "content": text}]})
}

#[tokio::test]
async fn canary_on_anthropic_answers_json_streams_and_tool_calls() {
    let (mock, sim) = mock_llm().await;
    let t = TestGateway::start(&config(&mock, 100)).await;

    // JSON.
    let r = chat(&t, "user-1", user("Where is my card?")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-rampart-variant"], "v2");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
            > 5,
        "{v}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let sent = sim.received().last().unwrap().body["x_anthropic"].clone();
    assert_eq!(
        sent["max_tokens"], 512,
        "the variant's params reach Anthropic: {sent}"
    );
    assert_eq!(
        sent["messages"][0]["content"][0]["text"],
        "Where is my card?"
    );

    // Streaming: chunks with the text, then [DONE].
    let mut b = user("Where is my card?");
    b["stream"] = json!(true);
    let r = chat(&t, "user-1", b).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let datas: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(*datas.last().unwrap(), "[DONE]", "{text}");
    let streamed: String = datas[..datas.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert!(streamed.len() > 5, "{text}");

    // Two-turn tool call: the model calls the function, the client sends the result.
    let tools = json!([{"type": "function", "function": {"name": "track_card",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}]);
    let mut b = user("Track card 1234");
    b["tools"] = tools.clone();
    let v: Value = chat(&t, "user-1", b).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    let call = v["choices"][0]["message"]["tool_calls"][0].clone();
    assert_eq!(call["function"]["name"], "track_card");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"query": "Track card 1234"}));
    let b = json!({"model": "support", "tools": tools, "messages": [
        {"role": "user", "content": "Track card 1234"},
        {"role": "assistant", "content": null, "tool_calls": [call.clone()]},
        {"role": "tool", "tool_call_id": call["id"], "content": "shipped on Monday"}
    ]});
    let v: Value = chat(&t, "user-1", b).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("shipped on Monday"),
        "{v}"
    );
    let sent = sim.received().last().unwrap().body["x_anthropic"].clone();
    assert_eq!(sent["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(
        sent["messages"][1]["content"][0]["input"], args,
        "arguments intact"
    );
    assert_eq!(sent["messages"][2]["content"][0]["tool_use_id"], call["id"]);

    // Streamed tool call: fragments join into the same arguments.
    let mut b = user("Track card 1234");
    b["tools"] = tools;
    b["stream"] = json!(true);
    let text = chat(&t, "user-1", b).await.text().await.unwrap();
    let mut joined = String::new();
    for d in text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
    {
        let c: Value = serde_json::from_str(d).unwrap();
        if let Some(a) = c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        {
            joined.push_str(a);
        }
    }
    assert_eq!(
        serde_json::from_str::<Value>(&joined).unwrap(),
        args,
        "{text}"
    );
}

#[tokio::test]
async fn anthropic_errors_map_to_openai_errors_with_their_status() {
    let (mock, _sim) = mock_llm().await;
    let t = TestGateway::start(&config(&mock, 100)).await;
    for (status, kind) in [
        (429, "rate_limit_error"),
        (529, "server_error"),
        (400, "invalid_request_error"),
    ] {
        let r = chat(&t, "user-1", user(&format!("please [[mock:{status}]]"))).await;
        assert_eq!(r.status(), status);
        if status == 429 {
            assert_eq!(r.headers()["retry-after"], "1");
        }
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], kind, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("simulated"),
            "{v}"
        );
    }
    // What cannot be translated is refused before any call, naming the field.
    let mut b = user("hi");
    b["n"] = json!(2);
    let r = chat(&t, "user-1", b).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("`n`"),
        "{v}"
    );
}

#[tokio::test]
async fn report_has_usage_and_cost_per_variant() {
    let (mock, _sim) = mock_llm().await;
    let t = TestGateway::start(&config(&mock, 50)).await;
    let (mut v1, mut v2) = (0, 0);
    for i in 0..40 {
        let r = chat(&t, &format!("user-{i}"), user("Where is my card?")).await;
        assert_eq!(r.status(), 200);
        match r.headers()["x-rampart-variant"].to_str().unwrap() {
            "v1" => v1 += 1,
            _ => v2 += 1,
        }
    }
    assert!(v1 > 0 && v2 > 0, "{v1} / {v2}");
    t.gw.writer.flush().await.unwrap();
    let body = reqwest::get(format!("{}/admin/rollouts/support-v2/report", t.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rep: Value = serde_json::from_str(&body).unwrap();
    for (side, n) in [("control", v1), ("canary", v2)] {
        let c = &rep["cohorts"][side];
        assert_eq!(c["requests"], n, "{side}: {c}");
        assert!(c["cost_total_usd"].as_f64().unwrap() > 0.0, "{side}: {c}");
        assert!(
            c["mean_completion_tokens"].as_f64().unwrap() > 0.0,
            "{side}: {c}"
        );
    }
}
