//! Rewriting a client's chat request for a variant, and reading answers back. Pure.
//!
//! A variant pins the model, may inject its system prompt (prepended, or replacing the client's
//! system messages when `system_prompt_mode = "replace"`), and pins parameters. Every other
//! field of the client's request (tools, tool_choice, response_format, …) is left untouched.

use serde_json::{Map, Value, json};

use crate::config::{SystemPromptMode, VariantConfig};

/// The client's request rewritten for `variant`. When streaming, usage is always requested
/// (`stream_options.include_usage = true`) so streamed token counts are known.
pub fn for_variant(request: &Map<String, Value>, variant: &VariantConfig, stream: bool) -> Value {
    let mut body = request.clone();
    body.insert("model".into(), Value::String(variant.model.clone()));
    if let Some(prompt) = &variant.system_prompt {
        let mut messages: Vec<Value> = match body.remove("messages") {
            Some(Value::Array(m)) => m,
            _ => Vec::new(),
        };
        if variant.system_prompt_mode == SystemPromptMode::Replace {
            messages.retain(|m| {
                !matches!(
                    m.get("role").and_then(Value::as_str),
                    Some("system" | "developer")
                )
            });
        }
        messages.insert(0, json!({"role": "system", "content": prompt}));
        body.insert("messages".into(), Value::Array(messages));
    }
    for (k, v) in &variant.params {
        body.insert(k.clone(), v.clone());
    }
    if stream {
        body.insert("stream".into(), Value::Bool(true));
        let opts = body
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(o) = opts {
            o.insert("include_usage".into(), Value::Bool(true));
        } else {
            *opts = json!({"include_usage": true});
        }
    }
    Value::Object(body)
}

/// Whether the client itself asked for usage in its stream.
pub fn client_wants_stream_usage(request: &Map<String, Value>) -> bool {
    request
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// What rampart reads from an answer, streamed or not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub text: String,
    pub refusal_field: Option<String>,
    pub finish_reason: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub tool_calls: Option<Value>,
    /// Whether the answer carried a `usage` object.
    pub has_usage: bool,
}

impl Answer {
    /// Read a `chat.completion` body.
    pub fn from_completion(v: &Value) -> Answer {
        let mut a = Answer::default();
        if let Some(choice) = v.pointer("/choices/0") {
            let msg = choice.get("message");
            a.text = msg
                .and_then(|m| m.get("content"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            a.refusal_field = msg
                .and_then(|m| m.get("refusal"))
                .and_then(Value::as_str)
                .map(str::to_string);
            a.tool_calls = msg
                .and_then(|m| m.get("tool_calls"))
                .filter(|t| !t.is_null())
                .cloned();
            a.finish_reason = choice
                .get("finish_reason")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        a.read_usage(v);
        a
    }

    fn read_usage(&mut self, v: &Value) {
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.has_usage = true;
            self.prompt_tokens = u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
            self.completion_tokens = u
                .get("completion_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
        }
    }

    /// Fold one `chat.completion.chunk` into the answer. Returns whether it carried content
    /// (text, refusal or a tool call), which marks the first token.
    pub fn push_chunk(&mut self, chunk: &Value) -> bool {
        let mut content = false;
        if let Some(choice) = chunk.pointer("/choices/0") {
            if let Some(delta) = choice.get("delta") {
                if let Some(t) = delta.get("content").and_then(Value::as_str) {
                    if !t.is_empty() {
                        content = true;
                    }
                    self.text.push_str(t);
                }
                if let Some(r) = delta.get("refusal").and_then(Value::as_str) {
                    content = true;
                    self.refusal_field
                        .get_or_insert_with(String::new)
                        .push_str(r);
                }
                if let Some(Value::Array(calls)) = delta.get("tool_calls") {
                    content = true;
                    self.merge_tool_calls(calls);
                }
            }
            if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(f.to_string());
            }
        }
        self.read_usage(chunk);
        content
    }

    /// Streamed tool calls arrive as fragments keyed by `index`; join their arguments.
    fn merge_tool_calls(&mut self, fragments: &[Value]) {
        let calls = self
            .tool_calls
            .get_or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(calls) = calls else { return };
        for frag in fragments {
            let idx = frag.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            while calls.len() <= idx {
                calls.push(json!({"type": "function", "function": {"name": "", "arguments": ""}}));
            }
            let call = &mut calls[idx];
            if let Some(id) = frag.get("id") {
                call["id"] = id.clone();
            }
            if let Some(name) = frag.pointer("/function/name").and_then(Value::as_str) {
                let cur = call["function"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                call["function"]["name"] = Value::String(cur + name);
            }
            if let Some(args) = frag.pointer("/function/arguments").and_then(Value::as_str) {
                let cur = call["function"]["arguments"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                call["function"]["arguments"] = Value::String(cur + args);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::SystemPromptMode;

    fn variant(mode: SystemPromptMode) -> VariantConfig {
        let mut params = Map::new();
        params.insert("temperature".into(), json!(0.2));
        VariantConfig {
            name: "v2".into(),
            provider: "sim".into(),
            model: "pinned-model".into(),
            prompt_version: Some("p2".into()),
            system_prompt: Some("Be formal.".into()),
            system_prompt_mode: mode,
            params,
            input_usd_per_mtok: 1.0,
            output_usd_per_mtok: 4.0,
        }
    }

    fn request() -> Map<String, Value> {
        json!({
            "model": "support",
            "temperature": 0.9,
            "messages": [{"role": "system", "content": "client sys"}, {"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "response_format": {"type": "json_object"},
            "x_custom": 1
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn prepend_keeps_client_system_and_other_fields() {
        let out = for_variant(&request(), &variant(SystemPromptMode::Prepend), false);
        assert_eq!(out["model"], "pinned-model");
        assert_eq!(out["temperature"], 0.2);
        let msgs = out["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0]["content"], "Be formal.");
        assert_eq!(msgs[1]["content"], "client sys");
        assert_eq!(out["tools"], request()["tools"]);
        assert_eq!(out["response_format"], request()["response_format"]);
        assert_eq!(out["x_custom"], 1);
        assert!(out.get("stream_options").is_none());
    }

    #[test]
    fn replace_drops_client_system_and_stream_asks_usage() {
        let out = for_variant(&request(), &variant(SystemPromptMode::Replace), true);
        let msgs = out["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0]["content"], "Be formal.");
        assert_eq!(out["stream_options"]["include_usage"], true);
        assert_eq!(out["stream"], true);
    }

    #[test]
    fn reads_completion_and_chunks() {
        let a = Answer::from_completion(&json!({
            "choices": [{"message": {"content": "hello", "refusal": null}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1}
        }));
        assert_eq!(a.text, "hello");
        assert_eq!(a.refusal_field, None);
        assert_eq!((a.prompt_tokens, a.completion_tokens), (3, 1));

        let mut s = Answer::default();
        assert!(!s.push_chunk(&json!({"choices": [{"delta": {"role": "assistant"}}]})));
        assert!(s.push_chunk(&json!({"choices": [{"delta": {"content": "he"}}]})));
        assert!(s.push_chunk(&json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{\"a\""}}]}}]})));
        assert!(s.push_chunk(&json!({"choices": [{"delta": {"content": "llo", "tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}, "finish_reason": "stop"}]})));
        s.push_chunk(
            &json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}),
        );
        assert_eq!(s.text, "hello");
        assert_eq!(s.finish_reason.as_deref(), Some("stop"));
        assert_eq!(
            s.tool_calls.unwrap()[0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert!(s.has_usage);
        assert_eq!(s.completion_tokens, 2);
    }
}
