//! Anthropic Messages answer → OpenAI `chat.completion`, and Anthropic errors → OpenAI's error
//! shape. Pure.

use serde_json::{Value, json};

/// `stop_reason` → `finish_reason`: `end_turn`/`stop_sequence`/`pause_turn` → `stop`,
/// `max_tokens` → `length`, `tool_use` → `tool_calls`, `refusal` → `content_filter`.
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Anthropic `usage` → OpenAI `usage`. Anthropic's `input_tokens` excludes cached input, which
/// OpenAI's `prompt_tokens` includes: prompt = input + cache creation + cache read, and the
/// cache reads are reported as `prompt_tokens_details.cached_tokens`.
pub fn usage(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt =
        n("input_tokens") + n("cache_creation_input_tokens") + n("cache_read_input_tokens");
    let completion = n("output_tokens");
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": n("cache_read_input_tokens")},
    })
}

/// A whole Messages answer as a `chat.completion`. `created` is the Unix time to stamp.
pub fn to_completion(msg: &Value, created: u64) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in msg
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => calls.push(json!({
                "id": block.get("id").cloned().unwrap_or_default(),
                "type": "function",
                "function": {
                    "name": block.get("name").cloned().unwrap_or_default(),
                    "arguments": block.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into()),
                },
            })),
            // Thinking and server-tool blocks have no chat-completions counterpart.
            _ => {}
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) },
        "refusal": null,
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": msg.get("id").cloned().unwrap_or_default(),
        "object": "chat.completion",
        "created": created,
        "model": msg.get("model").cloned().unwrap_or_default(),
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(msg.get("stop_reason").and_then(Value::as_str)),
        }],
        "usage": usage(msg.get("usage").unwrap_or(&Value::Null)),
    })
}

/// An Anthropic error (`{"type":"error","error":{"type","message"}}`) as OpenAI's
/// `{"error":{"message","type","code"}}`; the status stays Anthropic's (529 for
/// `overloaded_error`, which OpenAI clients treat as a server error).
pub fn to_openai_error(status: u16, body: &Value) -> (u16, Value) {
    let kind = body
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("api_error");
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("the Anthropic API answered {status}"));
    let (openai_type, code) = match kind {
        "invalid_request_error" => ("invalid_request_error", "invalid_request"),
        "authentication_error" => ("authentication_error", "invalid_api_key"),
        "permission_error" => ("permission_error", "permission_denied"),
        "not_found_error" => ("invalid_request_error", "not_found"),
        "request_too_large" => ("invalid_request_error", "request_too_large"),
        "rate_limit_error" => ("rate_limit_error", "rate_limit_exceeded"),
        "overloaded_error" => ("server_error", "overloaded"),
        _ => ("server_error", "api_error"),
    };
    (
        status,
        json!({"error": {"message": message, "type": openai_type, "code": code, "param": null}}),
    )
}
