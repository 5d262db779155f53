//! A client's chat request: parsed once ([`parse`]), rewritten for a variant ([`rewrite`]), and
//! the answer read back ([`answer`]). Pure.
//!
//! The request is never held as a JSON tree: [`ChatRequest`] is the client's bytes (shared,
//! reference-counted) plus where each field and message sits in them, so the variant call, the
//! shadow call and the pair record share one copy. What one request may cost is bounded by
//! [`Limits`] (message count, nesting depth).

pub mod answer;
pub mod parse;
pub mod rewrite;

pub use answer::{Answer, ChunkFields};
pub use parse::{ChatRequest, Limits, RequestError};
pub use rewrite::for_variant;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{SystemPromptMode, VariantConfig};
    use serde_json::{Map, Value, json};

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

    fn request() -> ChatRequest {
        ChatRequest::from_value(&json!({
            "model": "support",
            "temperature": 0.9,
            "messages": [{"role": "system", "content": "client sys"}, {"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "response_format": {"type": "json_object"},
            "x_custom": 1
        }))
        .unwrap()
    }

    /// Top-level fields come out sorted by key, a repeated key's last value winning, and a key
    /// written with escapes is found and rewritten by its text.
    #[test]
    fn fields_are_sorted_by_key_and_the_last_repeated_one_wins() {
        let text = r#"{"temperature":0.1,"model":"m","x_b":[1],"messages":[{"role":"user"}],
            "te\u006dperature":0.7,"a\"q":true,"x_a":{"k":2}}"#;
        let r = ChatRequest::parse(bytes::Bytes::from(text), Limits::default()).unwrap();
        let fields: Vec<(&str, &str)> = r.raw_fields().collect();
        assert_eq!(
            fields,
            vec![
                ("a\"q", "true"),
                ("model", "\"m\""),
                ("temperature", "0.7"),
                ("x_a", "{\"k\":2}"),
                ("x_b", "[1]")
            ]
        );
        assert_eq!(r.raw_field("temperature"), Some("0.7"));
        assert_eq!(r.raw_field("a\"q"), Some("true"));
        assert_eq!(r.raw_field("messages"), None);
        assert_eq!(r.raw_field("x_c"), None);
    }

    fn body(b: bytes::Bytes) -> Value {
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn prepend_keeps_client_system_and_other_fields() {
        let out = body(for_variant(
            &request(),
            &variant(SystemPromptMode::Prepend),
            false,
        ));
        assert_eq!(out["model"], "pinned-model");
        assert_eq!(out["temperature"], 0.2);
        let msgs = out["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0]["content"], "Be formal.");
        assert_eq!(msgs[1]["content"], "client sys");
        assert_eq!(out["tools"], request().field_value("tools").unwrap());
        assert_eq!(
            out["response_format"],
            request().field_value("response_format").unwrap()
        );
        assert_eq!(out["x_custom"], 1);
        assert!(out.get("stream_options").is_none());
    }

    #[test]
    fn replace_drops_client_system_and_stream_asks_usage() {
        let out = body(for_variant(
            &request(),
            &variant(SystemPromptMode::Replace),
            true,
        ));
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

    fn parse(v: &str) -> Result<ChatRequest, RequestError> {
        ChatRequest::parse(bytes::Bytes::from(v.to_string()), Limits::default())
    }

    #[test]
    fn parse_reads_fields_and_keeps_messages_raw() {
        let r = parse(
            r#"{"model":"support","user":"u1","stream":true,"stream_options":{"include_usage":true},
               "messages":[ {"role":"user","content":"a [ { \" b"} ]}"#,
        )
        .unwrap();
        assert_eq!(r.model, "support");
        assert_eq!(r.user.as_deref(), Some("u1"));
        assert!(r.stream && r.stream_usage);
        assert_eq!(
            r.raw_messages(),
            r#"[ {"role":"user","content":"a [ { \" b"} ]"#
        );
        let msgs: Vec<_> = r.messages().collect();
        assert_eq!(
            msgs,
            vec![("user", r#"{"role":"user","content":"a [ { \" b"}"#)]
        );
    }

    #[test]
    fn parse_refuses_bad_shapes_with_a_clear_error() {
        let cases = [
            ("not json", "not valid JSON"),
            ("[1]", "must be a JSON object"),
            (
                r#"{"messages":[{"role":"user"}]}"#,
                "missing required field `model`",
            ),
            (
                r#"{"model":"","messages":[{"role":"user"}]}"#,
                "non-empty string",
            ),
            (r#"{"model":"m"}"#, "missing required field `messages`"),
            (r#"{"model":"m","messages":[]}"#, "must not be empty"),
            (r#"{"model":"m","messages":{}}"#, "must be an array"),
            (r#"{"model":"m","messages":[{"role":1}]}"#, "`messages[0]`"),
            (
                r#"{"model":"m","messages":[{"role":"user"},"x"]}"#,
                "`messages[1]`",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"stream":"yes"}"#,
                "`stream` must be a boolean",
            ),
        ];
        for (body, want) in cases {
            let err = parse(body).unwrap_err().to_string();
            assert!(err.contains(want), "{body}: {err}");
        }
    }

    #[test]
    fn parse_bounds_message_count_and_depth() {
        let limits = Limits {
            max_messages: 3,
            max_depth: 4,
        };
        let msgs = |n: usize| vec![r#"{"role":"user","content":"x"}"#; n].join(",");
        let body = |n: usize| format!(r#"{{"model":"m","messages":[{}]}}"#, msgs(n));
        assert!(ChatRequest::parse(body(3).into(), limits).is_ok());
        let err = ChatRequest::parse(body(4).into(), limits).unwrap_err();
        assert_eq!(err, RequestError::TooManyMessages { got: 4, limit: 3 });
        assert!(err.is_limit() && err.to_string().contains("server.max_messages"));

        let deep = r#"{"model":"m","messages":[{"role":"user","content":[{"a":[1]}]}]}"#;
        let err = ChatRequest::parse(deep.to_string().into(), limits).unwrap_err();
        assert_eq!(err, RequestError::TooDeep { limit: 4 });
        assert!(err.to_string().contains("server.max_json_depth"));
        // Brackets inside strings do not count.
        let quoted = r#"{"model":"m","messages":[{"role":"user","content":"[[[[[[{{{{"}]}"#;
        assert!(ChatRequest::parse(quoted.to_string().into(), limits).is_ok());
    }

    #[test]
    fn rewrite_without_prompt_copies_messages_and_merges_stream_options() {
        let mut v = variant(SystemPromptMode::Prepend);
        v.system_prompt = None;
        let r = parse(
            r#"{"model":"support","messages":[{"role":"user","content":"hi"}],"stream_options":{"x":1},"temperature":0.9}"#,
        )
        .unwrap();
        let out = body(for_variant(&r, &v, true));
        assert_eq!(out["messages"], json!([{"role":"user","content":"hi"}]));
        assert_eq!(
            out["stream_options"],
            json!({"x": 1, "include_usage": true})
        );
        assert_eq!(out["temperature"], 0.2);
        assert_eq!(out["model"], "pinned-model");
    }
}
