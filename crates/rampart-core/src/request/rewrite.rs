//! Rewriting a client's request for a variant, straight from its bytes to the provider's bytes.
//!
//! A variant pins the model, may inject its system prompt (prepended, or replacing the client's
//! system messages when `system_prompt_mode = "replace"`), and pins parameters. Every other
//! field of the client's request (tools, tool_choice, response_format, …) is copied through as
//! the client wrote it. The output is written once, with no JSON tree in between.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::ChatRequest;
use crate::config::{SystemPromptMode, VariantConfig};

fn push_key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    // A `&str` always serializes.
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
}

fn push_value(out: &mut Vec<u8>, v: &impl serde::Serialize) {
    if serde_json::to_writer(&mut *out, v).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// The client's request rewritten for `variant`, as the body to send. When streaming, usage is
/// always requested (`stream_options.include_usage = true`) so streamed token counts are known.
pub fn for_variant(request: &ChatRequest, variant: &VariantConfig, stream: bool) -> Bytes {
    let extra = variant.system_prompt.as_ref().map_or(0, String::len) + 256;
    let mut out = Vec::with_capacity(request.bytes().len() + extra);
    let mut first = true;
    out.push(b'{');
    push_key(&mut out, &mut first, "model");
    push_value(&mut out, &variant.model);
    push_key(&mut out, &mut first, "messages");
    write_messages(&mut out, request, variant);
    let pinned = |k: &str| {
        k == "model"
            || variant.params.contains_key(k)
            || (stream && (k == "stream" || k == "stream_options"))
    };
    for (k, raw) in request.raw_fields().filter(|(k, _)| !pinned(k)) {
        push_key(&mut out, &mut first, k);
        out.extend_from_slice(raw.as_bytes());
    }
    for (k, v) in &variant.params {
        push_key(&mut out, &mut first, k);
        push_value(&mut out, v);
    }
    if stream {
        push_key(&mut out, &mut first, "stream");
        out.extend_from_slice(b"true");
        let mut opts: Map<String, Value> = request
            .raw_field("stream_options")
            .and_then(|raw| serde_json::from_str(raw).ok())
            .unwrap_or_default();
        opts.insert("include_usage".into(), Value::Bool(true));
        push_key(&mut out, &mut first, "stream_options");
        push_value(&mut out, &opts);
    }
    out.push(b'}');
    Bytes::from(out)
}

fn write_messages(out: &mut Vec<u8>, request: &ChatRequest, variant: &VariantConfig) {
    let Some(prompt) = &variant.system_prompt else {
        out.extend_from_slice(request.raw_messages().as_bytes());
        return;
    };
    out.extend_from_slice(br#"[{"role":"system","content":"#);
    push_value(out, prompt);
    out.push(b'}');
    let replace = variant.system_prompt_mode == SystemPromptMode::Replace;
    for (role, raw) in request.messages() {
        if replace && matches!(role, "system" | "developer") {
            continue;
        }
        out.push(b',');
        out.extend_from_slice(raw.as_bytes());
    }
    out.push(b']');
}
