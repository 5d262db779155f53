//! Anthropic's streamed Messages events → OpenAI `chat.completion.chunk` objects.
//!
//! `message_start` opens the answer (a chunk with `delta.role`); each `content_block_delta`
//! becomes a chunk: `text_delta` → `delta.content`, a `tool_use` block's start and its
//! `input_json_delta`s → `delta.tool_calls` fragments numbered in the order the tool blocks
//! appear; `message_delta` carries the stop reason and output tokens; `message_stop` emits the
//! chunk with `finish_reason` and a usage-only chunk (`choices: []`), and ends the stream.
//! `ping` and unknown event types are skipped (the API may add new ones); an `error` event is a
//! provider error. A stream that ends before `message_stop` is a provider error.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::response::{finish_reason, to_openai_error, usage};
use crate::providers::ProviderError;

/// What one event produced.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Chunks to pass on (possibly none).
    Chunks(Vec<Value>),
    /// `message_stop`: these last chunks, then the stream is complete.
    Done(Vec<Value>),
}

#[derive(Debug, Default)]
pub struct Translator {
    id: String,
    model: String,
    created: u64,
    usage: Value,
    stop_reason: Option<String>,
    /// Content-block index → tool-call index, for `tool_use` blocks.
    tools: HashMap<u64, u64>,
}

impl Translator {
    pub fn new(created: u64) -> Translator {
        Translator {
            created,
            usage: json!({}),
            ..Translator::default()
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    }

    /// Folds Anthropic usage fields (later events carry updated counts) into the running total.
    fn merge_usage(&mut self, u: Option<&Value>) {
        if let (Some(Value::Object(u)), Value::Object(acc)) = (u, &mut self.usage) {
            for (k, v) in u {
                if v.is_u64() {
                    acc.insert(k.clone(), v.clone());
                }
            }
        }
    }

    /// Translates one event's JSON `data` (its `type` field names the event).
    pub fn step(&mut self, data: &Value) -> Result<Step, ProviderError> {
        let kind = data.get("type").and_then(Value::as_str).unwrap_or("");
        let out = match kind {
            "message_start" => {
                let msg = data.get("message").unwrap_or(&Value::Null);
                self.id = msg
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                self.model = msg
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                self.merge_usage(msg.get("usage"));
                vec![self.chunk(json!({"role": "assistant", "content": ""}), None)]
            }
            "content_block_start" => self.block_start(data)?,
            "content_block_delta" => self.block_delta(data)?,
            "message_delta" => {
                if let Some(r) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_string());
                }
                self.merge_usage(data.get("usage"));
                Vec::new()
            }
            "message_stop" => {
                let last = self.chunk(json!({}), Some(finish_reason(self.stop_reason.as_deref())));
                let mut usage_chunk = self.chunk(json!({}), None);
                usage_chunk["choices"] = json!([]);
                usage_chunk["usage"] = usage(&self.usage);
                return Ok(Step::Done(vec![last, usage_chunk]));
            }
            "error" => {
                // Mid-stream errors carry no HTTP status; overloaded is 529 on the wire.
                let status = match data.pointer("/error/type").and_then(Value::as_str) {
                    Some("overloaded_error") => 529,
                    Some("rate_limit_error") => 429,
                    Some("invalid_request_error") => 400,
                    _ => 500,
                };
                let (status, body) = to_openai_error(status, data);
                return Err(ProviderError::Status {
                    status,
                    body,
                    retry_after: None,
                });
            }
            // ping, content_block_stop, and event types added later.
            _ => Vec::new(),
        };
        Ok(Step::Chunks(out))
    }

    fn block_start(&mut self, data: &Value) -> Result<Vec<Value>, ProviderError> {
        let block = data.get("content_block").unwrap_or(&Value::Null);
        let index = block_index(data)?;
        match block.get("type").and_then(Value::as_str) {
            Some("tool_use") => {
                let n = self.tools.len() as u64;
                self.tools.insert(index, n);
                Ok(vec![self.chunk(
                    json!({"tool_calls": [{
                        "index": n,
                        "id": block.get("id").cloned().unwrap_or_default(),
                        "type": "function",
                        "function": {"name": block.get("name").cloned().unwrap_or_default(), "arguments": ""},
                    }]}),
                    None,
                )])
            }
            Some("text") => match block.get("text").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => Ok(vec![self.chunk(json!({"content": t}), None)]),
                _ => Ok(Vec::new()),
            },
            _ => Ok(Vec::new()),
        }
    }

    fn block_delta(&mut self, data: &Value) -> Result<Vec<Value>, ProviderError> {
        let delta = data.get("delta").unwrap_or(&Value::Null);
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => {
                let t = delta.get("text").and_then(Value::as_str).unwrap_or("");
                Ok(vec![self.chunk(json!({"content": t}), None)])
            }
            Some("input_json_delta") => {
                let index = block_index(data)?;
                let Some(n) = self.tools.get(&index) else {
                    return Err(ProviderError::Invalid(format!(
                        "the provider streamed tool input for content block {index}, which is not a tool_use block"
                    )));
                };
                let part = delta
                    .get("partial_json")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                Ok(vec![self.chunk(
                    json!({"tool_calls": [{"index": n, "function": {"arguments": part}}]}),
                    None,
                )])
            }
            // thinking_delta, signature_delta, citations_delta: nothing to pass on.
            _ => Ok(Vec::new()),
        }
    }
}

fn block_index(data: &Value) -> Result<u64, ProviderError> {
    data.get("index").and_then(Value::as_u64).ok_or_else(|| {
        ProviderError::Invalid("the provider streamed a content block without an index".into())
    })
}
