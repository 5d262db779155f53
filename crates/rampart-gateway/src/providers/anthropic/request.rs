//! OpenAI chat-completions request → Anthropic Messages request. Pure.
//!
//! Follows Anthropic's Messages API reference (`POST /v1/messages`): system and developer
//! messages join `system`; user and assistant turns become `messages` with content blocks
//! (`text`, `image`, `tool_use`, `tool_result`); consecutive turns of one role are merged (tool
//! results must all sit in the user turn after the assistant's `tool_use`). A field that cannot
//! be translated is refused with its name, never dropped.

use serde_json::{Map, Value, json};

use crate::providers::ProviderError;

/// `max_tokens` when neither the request nor the variant's `params` set one (Anthropic
/// requires it).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Fields read and translated; anything else in the body is refused.
const TRANSLATED: [&str; 13] = [
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
];

fn refuse(field: &str, why: &str) -> ProviderError {
    ProviderError::Unsupported(format!(
        "`{field}` cannot be sent to an Anthropic model: {why}"
    ))
}

/// Translates `body`; `Err(Unsupported)` names the field that cannot be.
pub fn to_anthropic(body: &Value, stream: bool) -> Result<Value, ProviderError> {
    let Some(obj) = body.as_object() else {
        return Err(refuse("body", "not a JSON object"));
    };
    check_fields(obj)?;
    let mut out = Map::new();
    out.insert(
        "model".into(),
        obj.get("model").cloned().unwrap_or(Value::Null),
    );
    let (system, messages) = messages(obj.get("messages"))?;
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system.join("\n\n")));
    }
    out.insert("messages".into(), Value::Array(messages));
    let max_tokens = obj
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| obj.get("max_tokens").filter(|v| !v.is_null()));
    let max_tokens = match max_tokens {
        None => json!(DEFAULT_MAX_TOKENS),
        Some(v) if v.as_u64().is_some_and(|n| n > 0) => v.clone(),
        Some(v) => {
            return Err(refuse(
                "max_tokens",
                &format!("must be a positive integer (got {v})"),
            ));
        }
    };
    out.insert("max_tokens".into(), max_tokens);
    for key in ["temperature", "top_p"] {
        if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    match obj.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        Some(_) => return Err(refuse("stop", "must be a string or an array of strings")),
    }
    tools(obj, &mut out)?;
    if let Some(user) = obj.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    if stream {
        out.insert("stream".into(), Value::Bool(true));
    }
    Ok(Value::Object(out))
}

/// Refuses fields that have no Anthropic counterpart (unless set to their neutral value).
fn check_fields(obj: &Map<String, Value>) -> Result<(), ProviderError> {
    for (k, v) in obj {
        if TRANSLATED.contains(&k.as_str()) || v.is_null() {
            continue;
        }
        let neutral = match k.as_str() {
            "n" => v.as_u64() == Some(1),
            "logprobs" => v == &Value::Bool(false),
            "presence_penalty" | "frequency_penalty" => v.as_f64() == Some(0.0),
            "response_format" => v.get("type").and_then(Value::as_str) == Some("text"),
            _ => false,
        };
        if !neutral {
            let why = match k.as_str() {
                "n" => "Anthropic returns one answer per call",
                "logprobs" | "top_logprobs" => "Anthropic does not return log probabilities",
                "response_format" => {
                    "Anthropic has no JSON mode; describe the format in the prompt or use a tool"
                }
                _ => "it has no Anthropic equivalent",
            };
            return Err(refuse(k, why));
        }
    }
    Ok(())
}

/// The system text and the turns.
fn messages(raw: Option<&Value>) -> Result<(Vec<String>, Vec<Value>), ProviderError> {
    let Some(Value::Array(msgs)) = raw else {
        return Err(refuse("messages", "must be an array"));
    };
    let mut system = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let path = format!("messages[{i}]");
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.push(text_only(m.get("content"), &path)?);
                continue;
            }
            "user" => ("user", user_blocks(m.get("content"), &path)?),
            "assistant" => ("assistant", assistant_blocks(m, &path)?),
            "tool" => ("user", vec![tool_result(m, &path)?]),
            other => {
                return Err(refuse(
                    &format!("{path}.role"),
                    &format!("unknown role `{other}`"),
                ));
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((r, b)) if r == role => b.extend(blocks),
            _ => turns.push((role.to_string(), blocks)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, turns))
}

/// Text of a system message (a string or text parts).
fn text_only(content: Option<&Value>, path: &str) -> Result<String, ProviderError> {
    match content {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                match (
                    p.get("type").and_then(Value::as_str),
                    p.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => out.push(t),
                    _ => {
                        return Err(refuse(
                            &format!("{path}.content[{j}]"),
                            "only text parts are allowed here",
                        ));
                    }
                }
            }
            Ok(out.join("\n"))
        }
        None | Some(Value::Null) => Ok(String::new()),
        Some(_) => Err(refuse(
            &format!("{path}.content"),
            "must be a string or an array of parts",
        )),
    }
}

fn user_blocks(content: Option<&Value>, path: &str) -> Result<Vec<Value>, ProviderError> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(vec![json!({"type": "text", "text": s})]),
        Some(Value::Array(parts)) => parts,
        _ => {
            return Err(refuse(
                &format!("{path}.content"),
                "must be a string or an array of parts",
            ));
        }
    };
    let mut out = Vec::new();
    for (j, p) in parts.iter().enumerate() {
        let ppath = format!("{path}.content[{j}]");
        match p.get("type").and_then(Value::as_str) {
            Some("text") => out
                .push(json!({"type": "text", "text": p.get("text").cloned().unwrap_or_default()})),
            Some("image_url") => out.push(image(p, &ppath)?),
            other => {
                return Err(refuse(
                    &ppath,
                    &format!("content part type {other:?} is not supported"),
                ));
            }
        }
    }
    Ok(out)
}

/// `{"type":"image_url","image_url":{"url":…}}` → an `image` block with a base64 or URL
/// source.
fn image(part: &Value, path: &str) -> Result<Value, ProviderError> {
    let url = part
        .pointer("/image_url/url")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse(&format!("{path}.image_url.url"), "is missing"))?;
    if let Some(rest) = url.strip_prefix("data:") {
        let (media_type, data) = rest.split_once(";base64,").ok_or_else(|| {
            refuse(
                &format!("{path}.image_url.url"),
                "a data URL must be base64",
            )
        })?;
        return Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
        );
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(refuse(
        &format!("{path}.image_url.url"),
        "must be an http(s) or data URL",
    ))
}

fn assistant_blocks(m: &Value, path: &str) -> Result<Vec<Value>, ProviderError> {
    let mut out = Vec::new();
    let text = text_only(m.get("content"), path)?;
    if !text.is_empty() {
        out.push(json!({"type": "text", "text": text}));
    }
    if let Some(calls) = m.get("tool_calls").filter(|c| !c.is_null()) {
        let Some(calls) = calls.as_array() else {
            return Err(refuse(&format!("{path}.tool_calls"), "must be an array"));
        };
        for (j, c) in calls.iter().enumerate() {
            let cpath = format!("{path}.tool_calls[{j}]");
            let args = c
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}");
            let input: Value = if args.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(args).map_err(|e| {
                    refuse(
                        &format!("{cpath}.function.arguments"),
                        &format!("not valid JSON: {e}"),
                    )
                })?
            };
            out.push(json!({
                "type": "tool_use",
                "id": c.get("id").cloned().unwrap_or_default(),
                "name": c.pointer("/function/name").cloned().unwrap_or_default(),
                "input": input,
            }));
        }
    }
    Ok(out)
}

fn tool_result(m: &Value, path: &str) -> Result<Value, ProviderError> {
    let id = m
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            refuse(
                &format!("{path}.tool_call_id"),
                "is required for a tool message",
            )
        })?;
    Ok(json!({
        "type": "tool_result",
        "tool_use_id": id,
        "content": text_only(m.get("content"), path)?,
    }))
}

/// `tools`, `tool_choice` and `parallel_tool_calls`.
fn tools(obj: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<(), ProviderError> {
    if let Some(tools) = obj.get("tools").filter(|t| !t.is_null()) {
        let Some(tools) = tools.as_array() else {
            return Err(refuse("tools", "must be an array"));
        };
        let mut translated = Vec::new();
        for (i, t) in tools.iter().enumerate() {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(refuse(
                    &format!("tools[{i}].type"),
                    "only function tools are supported",
                ));
            }
            let f = t.get("function").cloned().unwrap_or_default();
            if f.get("strict").and_then(Value::as_bool) == Some(true) {
                return Err(refuse(
                    &format!("tools[{i}].function.strict"),
                    "Anthropic does not enforce strict schemas",
                ));
            }
            let mut tool = json!({
                "name": f.get("name").cloned().unwrap_or_default(),
                "input_schema": f.get("parameters").filter(|p| !p.is_null()).cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            });
            if let Some(d) = f.get("description").filter(|d| !d.is_null()) {
                tool["description"] = d.clone();
            }
            translated.push(tool);
        }
        out.insert("tools".into(), Value::Array(translated));
    }
    let mut choice = match obj.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "none" => Some(json!({"type": "none"})),
            "required" => Some(json!({"type": "any"})),
            other => return Err(refuse("tool_choice", &format!("unknown value `{other}`"))),
        },
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Some(json!({"type": "tool", "name": name})),
            None => {
                return Err(refuse(
                    "tool_choice",
                    "must be auto, none, required or a named function",
                ));
            }
        },
    };
    if obj.get("parallel_tool_calls").and_then(Value::as_bool) == Some(false) {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    if let Some(c) = choice {
        out.insert("tool_choice".into(), c);
    }
    Ok(())
}
