//! Recorded Anthropic Messages answers (JSON and SSE transcripts written from the published
//! API reference, in `tests/data/anthropic/`) translate to the expected OpenAI objects, field
//! by field; and OpenAI requests translate to Messages requests, refusing what cannot be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_gateway::providers::ProviderError;
use rampart_gateway::providers::anthropic::request::{DEFAULT_MAX_TOKENS, to_anthropic};
use rampart_gateway::providers::anthropic::response::{to_completion, to_openai_error};
use rampart_gateway::providers::anthropic::stream::{Step, Translator};
use serde_json::{Value, json};

fn data(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/data/anthropic/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The `data:` payloads of an SSE transcript, in order.
fn events(name: &str) -> Vec<Value> {
    data(name)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// Runs a transcript through the translator: the chunks, and whether it completed.
fn translate(name: &str) -> (Vec<Value>, Result<bool, ProviderError>) {
    let mut tr = Translator::new(1_700_000_000);
    let mut out = Vec::new();
    for ev in events(name) {
        match tr.step(&ev) {
            Ok(Step::Chunks(c)) => out.extend(c),
            Ok(Step::Done(c)) => {
                out.extend(c);
                return (out, Ok(true));
            }
            Err(e) => return (out, Err(e)),
        }
    }
    (out, Ok(false))
}

#[test]
fn json_answer_with_text_and_tool_use() {
    let v = to_completion(
        &serde_json::from_str(&data("message_tool_use.json")).unwrap(),
        1_700_000_000,
    );
    assert_eq!(v["id"], "msg_01Aq9w938a90dw8q");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["created"], 1_700_000_000);
    assert_eq!(v["model"], "claude-sonnet-4-20250514");
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "tool_calls");
    let msg = &choice["message"];
    assert_eq!(msg["role"], "assistant");
    assert_eq!(msg["content"], "I'll check the weather.");
    let call = &msg["tool_calls"][0];
    assert_eq!(call["id"], "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        args,
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
    // Cached input counts in prompt_tokens, as OpenAI counts it.
    assert_eq!(v["usage"]["prompt_tokens"], 472 + 10 + 100);
    assert_eq!(v["usage"]["completion_tokens"], 89);
    assert_eq!(v["usage"]["total_tokens"], 472 + 10 + 100 + 89);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 100);
}

#[test]
fn json_answer_stop_reasons_map_to_finish_reasons() {
    let mut msg: Value = serde_json::from_str(&data("message_text.json")).unwrap();
    let v = to_completion(&msg, 0);
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hi! My name is Claude."
    );
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["prompt_tokens"], 2095);
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ] {
        msg["stop_reason"] = json!(stop);
        assert_eq!(
            to_completion(&msg, 0)["choices"][0]["finish_reason"],
            finish
        );
    }
}

#[test]
fn errors_take_openai_shape_with_their_status() {
    let body: Value = serde_json::from_str(&data("error_overloaded.json")).unwrap();
    let (status, v) = to_openai_error(529, &body);
    assert_eq!(status, 529);
    assert_eq!(v["error"]["message"], "Overloaded");
    assert_eq!(v["error"]["type"], "server_error");
    assert_eq!(v["error"]["code"], "overloaded");
    let (status, v) = to_openai_error(
        429,
        &json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Number of requests has exceeded your rate limit"}}),
    );
    assert_eq!(
        (status, v["error"]["type"].as_str()),
        (429, Some("rate_limit_error"))
    );
    let (status, v) = to_openai_error(
        400,
        &json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}}),
    );
    assert_eq!(status, 400);
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["message"], "max_tokens: Field required");
}

#[test]
fn text_stream_becomes_chunks_with_finish_and_usage() {
    let (chunks, done) = translate("stream_text.sse");
    assert!(done.unwrap(), "message_stop completes the stream");
    // role chunk, two text deltas, finish chunk, usage chunk (ping and block stop skipped).
    assert_eq!(chunks.len(), 5, "{chunks:#?}");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
        assert_eq!(c["model"], "claude-sonnet-4-20250514");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hello");
    assert_eq!(chunks[2]["choices"][0]["delta"]["content"], "!");
    assert!(chunks[2]["choices"][0]["finish_reason"].is_null());
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[4]["choices"], json!([]));
    assert_eq!(chunks[4]["usage"]["prompt_tokens"], 25);
    assert_eq!(chunks[4]["usage"]["completion_tokens"], 15);
}

#[test]
fn tool_use_stream_becomes_tool_call_fragments() {
    let (chunks, done) = translate("stream_tool_use.sse");
    assert!(done.unwrap());
    let mut text = String::new();
    let mut args = String::new();
    let mut name = None;
    let mut id = None;
    for c in &chunks {
        let delta = &c["choices"][0]["delta"];
        text.push_str(delta["content"].as_str().unwrap_or(""));
        if let Some(calls) = delta["tool_calls"].as_array() {
            assert_eq!(calls[0]["index"], 0, "the first tool block is tool call 0");
            if let Some(n) = calls[0]["function"]["name"].as_str() {
                name = Some(n.to_string());
                id = calls[0]["id"].as_str().map(str::to_string);
                assert_eq!(calls[0]["type"], "function");
            }
            args.push_str(calls[0]["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(text, "Okay, let's check");
    assert_eq!(name.as_deref(), Some("get_weather"));
    assert_eq!(id.as_deref(), Some("toolu_01T1x1fJ34qAmk2tNTrN7Up6"));
    let parsed: Value = serde_json::from_str(&args).unwrap();
    assert_eq!(parsed, json!({"location": "San Francisco, CA"}));
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[n - 1]["usage"]["prompt_tokens"], 472 + 30);
    assert_eq!(chunks[n - 1]["usage"]["completion_tokens"], 89);
}

#[test]
fn error_event_is_a_provider_error_and_a_cut_stream_does_not_complete() {
    let (chunks, res) = translate("stream_error.sse");
    assert_eq!(chunks.len(), 1);
    match res {
        Err(ProviderError::Status { status, body, .. }) => {
            assert_eq!(status, 529);
            assert_eq!(body["error"]["code"], "overloaded");
        }
        other => panic!("expected a provider error, got {other:?}"),
    }
    // Without message_stop the translator never reports completion.
    let mut tr = Translator::new(0);
    for ev in events("stream_text.sse").iter().take(4) {
        assert!(matches!(tr.step(ev), Ok(Step::Chunks(_))));
    }
}

#[test]
fn request_translation_covers_system_tools_images_and_tool_turns() {
    let body = json!({
        "model": "claude-x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image, and the weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "24C"}
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "END",
        "max_completion_tokens": 300,
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "user": "u-1",
        "n": 1,
        "stream_options": {"include_usage": true}
    });
    let a = to_anthropic(&body, true).unwrap();
    assert_eq!(a["model"], "claude-x");
    assert_eq!(a["system"], "Be brief.\n\nUse tools.");
    assert_eq!(a["max_tokens"], 300);
    assert_eq!(a["temperature"], 0.2);
    assert_eq!(a["top_p"], 0.9);
    assert_eq!(a["stop_sequences"], json!(["END"]));
    assert_eq!(a["stream"], true);
    assert_eq!(a["metadata"], json!({"user_id": "u-1"}));
    assert_eq!(
        a["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert_eq!(a["tools"][0]["name"], "get_weather");
    assert_eq!(a["tools"][0]["description"], "Weather");
    assert_eq!(a["tools"][0]["input_schema"]["required"], json!(["city"]));
    let msgs = a["messages"].as_array().unwrap();
    assert_eq!(
        msgs.len(),
        3,
        "user, assistant, one user turn with both results"
    );
    assert_eq!(msgs[0]["role"], "user");
    assert_eq!(
        msgs[0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
    );
    assert_eq!(
        msgs[0]["content"][2]["source"],
        json!({"type": "url", "url": "https://example.com/a.jpg"})
    );
    assert_eq!(
        msgs[1]["content"][0],
        json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(msgs[1]["content"][1]["input"], json!({"city": "Rome"}));
    assert_eq!(
        msgs[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "call_1", "content": "18C"})
    );
    assert_eq!(msgs[2]["content"][1]["tool_use_id"], "call_2");

    for (choice, expected) in [
        (json!("auto"), json!({"type": "auto"})),
        (json!("none"), json!({"type": "none"})),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"type": "tool", "name": "f"}),
        ),
    ] {
        let b = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": choice});
        assert_eq!(to_anthropic(&b, false).unwrap()["tool_choice"], expected);
    }
    let plain = to_anthropic(
        &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        false,
    )
    .unwrap();
    assert_eq!(plain["max_tokens"], DEFAULT_MAX_TOKENS);
    assert!(plain.get("stream").is_none() && plain.get("system").is_none());
}

#[test]
fn untranslatable_fields_are_refused_by_name() {
    for (field, value) in [
        ("n", json!(2)),
        ("logprobs", json!(true)),
        ("top_logprobs", json!(3)),
        ("response_format", json!({"type": "json_object"})),
        ("presence_penalty", json!(0.5)),
        ("logit_bias", json!({"50256": -100})),
    ] {
        let mut b = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        b[field] = value;
        match to_anthropic(&b, false) {
            Err(ProviderError::Unsupported(m)) => assert!(m.contains(&format!("`{field}`")), "{m}"),
            other => panic!("{field}: expected a refusal, got {other:?}"),
        }
    }
    let strict = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "strict": true}}]});
    assert!(
        matches!(to_anthropic(&strict, false), Err(ProviderError::Unsupported(m)) if m.contains("strict"))
    );
}
