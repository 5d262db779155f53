//! `POST /v1/messages`: the simulator in Anthropic's Messages format (JSON and SSE, errors,
//! tool use), so the gateway's `anthropic` provider is tested over real HTTP.
//!
//! The request is checked as Anthropic checks it (`anthropic-version` header, `max_tokens`,
//! `messages`), turned into a chat request for the [`Simulator`] (which records it, with the
//! original under `x_anthropic`), and its answer is shaped as a Messages answer. Tool use is
//! deterministic: when the request offers `tools` (and `tool_choice` is not `none`) and the last
//! user turn carries no `tool_result`, the model calls the chosen (else the first) tool, filling
//! each required string property with the user's text; after a `tool_result` it answers in text
//! that quotes the result. A user text containing `[[mock:STATUS]]` (400, 429, 500, 529) gets
//! that error, a 429 with `retry-after: 1`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::error::SimError;
use crate::simulator::Simulator;

fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// An Anthropic error answer.
fn error(status: u16, message: impl Into<String>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body =
        json!({"type": "error", "error": {"type": error_type(status), "message": message.into()}});
    let mut r = (code, axum::Json(body)).into_response();
    if status == 429 {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

fn from_sim(e: SimError) -> Response {
    let message = e
        .body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("simulated error")
        .to_string();
    error(e.status, message)
}

/// Text of a content field (a string, or blocks whose text and tool results are joined).
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| match b.get("type").and_then(Value::as_str) {
                Some("text") => b.get("text").and_then(Value::as_str).map(str::to_string),
                Some("tool_result") => Some(text_of(b.get("content").unwrap_or(&Value::Null))),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The checked request, as the simulator's chat body, plus what the answer depends on.
struct Parsed {
    chat: Value,
    model: String,
    last_user: String,
    tool_result: Option<String>,
    tool: Option<Value>,
}

fn parse(headers: &HeaderMap, body: &Bytes) -> Result<Parsed, (u16, String)> {
    if !headers.contains_key("anthropic-version") {
        return Err((400, "anthropic-version: header is required".to_string()));
    }
    let raw: Value = serde_json::from_slice(body)
        .map_err(|e| (400, format!("the request body is not valid JSON: {e}")))?;
    let model = raw
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !raw.get("max_tokens").is_some_and(Value::is_u64) {
        return Err((400, "max_tokens: Field required".to_string()));
    }
    let Some(msgs) = raw
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    else {
        return Err((
            400,
            "messages: at least one message is required".to_string(),
        ));
    };
    let mut chat_msgs = Vec::new();
    if let Some(system) = raw.get("system") {
        chat_msgs.push(json!({"role": "system", "content": text_of(system)}));
    }
    for m in msgs {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "assistant" {
            return Err((400, format!("messages: unexpected role `{role}`")));
        }
        chat_msgs.push(
            json!({"role": role, "content": text_of(m.get("content").unwrap_or(&Value::Null))}),
        );
    }
    let last = msgs.last().unwrap_or(&Value::Null);
    let last_user = text_of(last.get("content").unwrap_or(&Value::Null));
    let tool_result = last
        .get("content")
        .and_then(Value::as_array)
        .and_then(|b| {
            b.iter()
                .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        })
        .map(|b| text_of(b.get("content").unwrap_or(&Value::Null)));
    let chat = json!({
        "model": model,
        "messages": chat_msgs,
        "max_tokens": raw["max_tokens"],
        "stream_options": {"include_usage": true},
        "x_anthropic": raw,
    });
    let tool = if tool_result.is_none() {
        pick_tool(&raw)
    } else {
        None
    };
    Ok(Parsed {
        chat,
        model,
        last_user,
        tool_result,
        tool,
    })
}

/// The tool the model calls, if any.
fn pick_tool(raw: &Value) -> Option<Value> {
    let tools = raw
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())?;
    let choice = raw.get("tool_choice");
    match choice.and_then(|c| c.get("type")).and_then(Value::as_str) {
        Some("none") => None,
        Some("tool") => {
            let name = choice.and_then(|c| c.get("name")).and_then(Value::as_str)?;
            tools
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
                .cloned()
        }
        _ => tools.first().cloned(),
    }
}

/// The call's input: each required (else each) property, strings set to `text`.
fn tool_input(tool: &Value, text: &str) -> Value {
    let schema = tool.get("input_schema").unwrap_or(&Value::Null);
    let props = schema.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_else(|| {
            props
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default()
        });
    let mut input = serde_json::Map::new();
    for name in required {
        let kind = props
            .and_then(|p| p.get(name))
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str);
        let v = match kind {
            Some("integer" | "number") => json!(1),
            Some("boolean") => json!(true),
            _ => json!(text),
        };
        input.insert(name.to_string(), v);
    }
    Value::Object(input)
}

fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

fn magic_status(text: &str) -> Option<u16> {
    let rest = &text[text.find("[[mock:")? + 7..];
    rest.get(..3)?.parse().ok()
}

pub async fn messages(sim: Arc<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let p = match parse(&headers, &body) {
        Ok(p) => p,
        Err((status, message)) => return error(status, message),
    };
    if let Some(status) = magic_status(&p.last_user) {
        sim.plan(&p.chat, None).ok();
        return error(status, format!("simulated {status}"));
    }
    let class = headers
        .get(crate::CLASS_HEADER)
        .and_then(|v| v.to_str().ok());
    let stream = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("stream").and_then(Value::as_bool))
        .unwrap_or(false);
    if stream {
        return stream_answer(&sim, p, class).await;
    }
    let done = match sim.complete(&p.chat, class).await {
        Ok(v) => v,
        Err(e) => return from_sim(e),
    };
    let id = format!(
        "msg_{}",
        done["id"]
            .as_str()
            .unwrap_or("mock")
            .trim_start_matches("chatcmpl-")
    );
    let (content, stop) = match (&p.tool, &p.tool_result) {
        (Some(tool), _) => (
            json!([{"type": "tool_use", "id": format!("toolu_{id}"), "name": tool["name"], "input": tool_input(tool, &p.last_user)}]),
            "tool_use",
        ),
        (None, result) => {
            let text = done
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .unwrap_or("");
            let text = match result {
                Some(r) => format!("The tool returned: {r}. {text}"),
                None => text.to_string(),
            };
            let finish = done
                .pointer("/choices/0/finish_reason")
                .and_then(Value::as_str)
                .unwrap_or("stop");
            (json!([{"type": "text", "text": text}]), stop_reason(finish))
        }
    };
    axum::Json(json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": p.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": {
            "input_tokens": done["usage"]["prompt_tokens"],
            "output_tokens": done["usage"]["completion_tokens"],
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }))
    .into_response()
}

fn sse_event(name: &str, data: Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

async fn stream_answer(sim: &Simulator, p: Parsed, class: Option<&str>) -> Response {
    let chunks = match sim.stream(&p.chat, class).await {
        Ok(c) => c,
        Err(e) => return from_sim(e),
    };
    let id = "msg_mock_stream";
    let start = sse_event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": p.model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        }}),
    );
    let ping = sse_event("ping", json!({"type": "ping"}));
    let tool = p.tool.clone();
    let block_start = match &tool {
        Some(t) => {
            json!({"type": "tool_use", "id": "toolu_mock_stream", "name": t["name"], "input": {}})
        }
        None => json!({"type": "text", "text": ""}),
    };
    let mut head = vec![
        start,
        sse_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": block_start}),
        ),
        ping,
    ];
    if let Some(t) = &tool {
        // The input in two pieces, as the API splits partial JSON.
        let input = tool_input(t, &p.last_user).to_string();
        let cut = input
            .char_indices()
            .nth(input.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        for part in [&input[..cut], &input[cut..]] {
            head.push(sse_event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": part}}),
            ));
        }
    } else if let Some(r) = &p.tool_result {
        head.push(sse_event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": format!("The tool returned: {r}. ")}}),
        ));
    }
    let is_tool = tool.is_some();
    let body = chunks.filter_map(move |c| {
        let out = chunk_events(&c, is_tool);
        async move { out }
    });
    let events = futures_util::stream::iter(head)
        .chain(body)
        .map(Ok::<_, Infallible>);
    let mut resp = Response::new(Body::from_stream(events));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp
}

/// The events of one simulator chunk: a text delta, or (the usage chunk) the closing events.
fn chunk_events(c: &Value, is_tool: bool) -> Option<Bytes> {
    let choices = c.get("choices").and_then(Value::as_array)?;
    if choices.is_empty() {
        let stop = if is_tool { "tool_use" } else { "end_turn" };
        let mut out = Vec::new();
        out.extend_from_slice(&sse_event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        out.extend_from_slice(&sse_event("message_delta", json!({"type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"input_tokens": c["usage"]["prompt_tokens"], "output_tokens": c["usage"]["completion_tokens"]}})));
        out.extend_from_slice(&sse_event("message_stop", json!({"type": "message_stop"})));
        return Some(Bytes::from(out));
    }
    if is_tool {
        return None;
    }
    let text = choices[0]
        .pointer("/delta/content")
        .and_then(Value::as_str)?;
    Some(sse_event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": text}}),
    ))
}
