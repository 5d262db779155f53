//! Reading answers back: a whole `chat.completion`, or its stream chunk by chunk.

use serde_json::{Value, json};

mod wire;

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
    /// Most tool calls a streamed answer may open; fragments with a higher `index` are ignored
    /// here (the gateway's stream guard already ends such a stream as a provider error), so an
    /// index the upstream names can never size an allocation.
    pub const MAX_TOOL_CALLS: usize = 128;

    /// Read a `chat.completion` body from its bytes, building no tree of it: what
    /// [`Answer::from_completion`] reads, for the request path. Errs when the body is not JSON or
    /// its `choices` is missing or not an array.
    pub fn from_completion_json(bytes: &[u8]) -> Result<Answer, serde_json::Error> {
        wire::completion(bytes)
    }

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

    /// Fold one `chat.completion.chunk` tree into the answer: [`Answer::push`] of
    /// [`ChunkFields::from_value`].
    pub fn push_chunk(&mut self, chunk: &Value) -> bool {
        self.push(&ChunkFields::from_value(chunk))
    }

    /// Fold what was read from one `chat.completion.chunk` into the answer. Returns whether it
    /// carried content (text, refusal or a tool call), which marks the first token.
    pub fn push(&mut self, chunk: &ChunkFields) -> bool {
        let mut content = false;
        if let Some(t) = &chunk.content {
            content |= !t.is_empty();
            self.text.push_str(t);
        }
        if let Some(r) = &chunk.refusal {
            content = true;
            self.refusal_field
                .get_or_insert_with(String::new)
                .push_str(r);
        }
        if let Some(calls) = &chunk.tool_calls {
            content = true;
            self.merge_tool_calls(calls);
        }
        if let Some(f) = &chunk.finish_reason {
            self.finish_reason = Some(f.clone());
        }
        if let Some((prompt, completion)) = chunk.usage {
            self.has_usage = true;
            self.prompt_tokens = prompt;
            self.completion_tokens = completion;
        }
        content
    }

    /// Streamed tool calls arrive as fragments keyed by `index`; join their arguments.
    fn merge_tool_calls(&mut self, fragments: &[Value]) {
        let calls = self
            .tool_calls
            .get_or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(calls) = calls else { return };
        for frag in fragments {
            let idx = frag.get("index").and_then(Value::as_u64).unwrap_or(0);
            let Some(idx) = usize::try_from(idx)
                .ok()
                .filter(|i| *i < Self::MAX_TOOL_CALLS)
            else {
                continue;
            };
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

/// What rampart reads from one `chat.completion.chunk`: the first choice's delta, the usage,
/// and what the stream guard checks. Read from the chunk's text on the request path
/// ([`ChunkFields::from_json`]), so a relayed chunk is forwarded as the upstream wrote it and
/// never re-encoded; [`ChunkFields::from_value`] reads the same from a tree, with the same
/// leniency (a field of another type than expected is absent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkFields {
    /// How many choices the chunk carries; `None` when `choices` is absent or not an array.
    pub choices: Option<usize>,
    pub content: Option<String>,
    pub refusal: Option<String>,
    /// The first choice's `delta.tool_calls` when it is an array: fragments keyed by `index`.
    pub tool_calls: Option<Vec<Value>>,
    pub finish_reason: Option<String>,
    /// `(prompt_tokens, completion_tokens)` when `usage` is an object (a count that is not a
    /// non-negative integer reads as 0).
    pub usage: Option<(u64, u64)>,
    /// Whether the chunk has an `error` member that is not `null` (an error sent mid-stream).
    pub error: bool,
}

impl ChunkFields {
    /// Read a chunk from its text, building no tree. Errs when it is not a JSON object.
    /// The text is already UTF-8 (the event parser checked it), so it is not checked again.
    pub fn from_json(text: &str) -> Result<ChunkFields, serde_json::Error> {
        wire::chunk(text)
    }

    /// Read a chunk from its tree.
    pub fn from_value(v: &Value) -> ChunkFields {
        let choices = v.get("choices").and_then(Value::as_array);
        let first = choices.and_then(|c| c.first());
        let delta = first.and_then(|c| c.get("delta"));
        let text = |key: &str| {
            delta
                .and_then(|d| d.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        ChunkFields {
            choices: choices.map(Vec::len),
            content: text("content"),
            refusal: text("refusal"),
            tool_calls: delta
                .and_then(|d| d.get("tool_calls"))
                .and_then(Value::as_array)
                .cloned(),
            finish_reason: first
                .and_then(|c| c.get("finish_reason"))
                .and_then(Value::as_str)
                .map(str::to_string),
            usage: v.get("usage").filter(|u| u.is_object()).map(|u| {
                let count = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
                (count("prompt_tokens"), count("completion_tokens"))
            }),
            error: v.get("error").is_some_and(|e| !e.is_null()),
        }
    }

    /// The chunk `stream_options.include_usage` asks for: no choice, only the usage.
    pub fn usage_only(&self) -> bool {
        self.choices == Some(0) && self.usage.is_some()
    }
}
