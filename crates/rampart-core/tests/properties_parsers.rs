//! Property tests of what reads untrusted input in the core: the chat request parser, the
//! OpenAI answer reader (whole answers and stream chunks) and the outcome item parser. For any
//! input: no panic, a clear error or a result within the stated bounds, and memory bounded by
//! the input (never by a number the input names). Bounded case counts, so they run in CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use proptest::prelude::*;
use rampart_core::outcomes::{OutcomeItem, parse_item};
use rampart_core::request::{Answer, ChatRequest, ChunkFields, Limits, RequestError};
use serde_json::{Value, json};

/// Any JSON value, a few levels deep, with the numbers and strings parsers trip on.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("user"),
            Just("assistant"),
            Just("system"),
            Just("tool"),
            Just("[DONE]"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("model".to_string()),
                    Just("messages".to_string()),
                    Just("role".to_string()),
                    Just("content".to_string()),
                    Just("stream".to_string()),
                    Just("user".to_string()),
                    Just("choices".to_string()),
                    Just("delta".to_string()),
                    Just("index".to_string()),
                    Just("tool_calls".to_string()),
                    Just("function".to_string()),
                    Just("usage".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A plausible chat request with some fields replaced by anything.
fn chat_like() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just(json!("support")), any_json()],
        prop::collection::vec(
            prop_oneof![
                ".{0,20}".prop_map(|c| json!({"role": "user", "content": c})),
                any_json(),
            ],
            0..8,
        ),
        prop_oneof![Just(Value::Null), any_json()],
        prop_oneof![Just(json!(false)), Just(json!(true)), any_json()],
    )
        .prop_map(|(model, messages, extra, stream)| {
            json!({"model": model, "messages": messages, "tools": extra, "stream": stream})
        })
}

/// A `chat.completion` answer whose fields may each be of any type (or absent).
fn completion_like() -> impl Strategy<Value = Value> {
    let field = || prop_oneof![".{0,12}".prop_map(Value::String), any_json()];
    let count = || prop_oneof![any::<u64>().prop_map(|n| json!(n)), any_json()];
    let message = (field(), field(), prop_oneof![Just(Value::Null), any_json()]).prop_map(
        |(c, r, t)| json!({"role": "assistant", "content": c, "refusal": r, "tool_calls": t}),
    );
    let choice = (prop_oneof![message, any_json()], field())
        .prop_map(|(m, f)| json!({"index": 0, "message": m, "finish_reason": f}));
    let usage = prop_oneof![
        (count(), count()).prop_map(|(p, c)| json!({"prompt_tokens": p, "completion_tokens": c})),
        any_json(),
    ];
    (
        prop::collection::vec(prop_oneof![choice, any_json()], 0..3),
        prop::option::of(usage),
        any_json(),
    )
        .prop_map(|(choices, usage, extra)| {
            let mut v = json!({"id": "c1", "object": "chat.completion", "choices": choices, "extra": extra});
            if let Some(u) = usage {
                v["usage"] = u;
            }
            v
        })
}

/// A `chat.completion.chunk` whose fields may each be of any type (or absent).
fn chunk_like() -> impl Strategy<Value = Value> {
    let field = || prop_oneof![".{0,12}".prop_map(Value::String), any_json()];
    let fragment = (
        prop_oneof![(0u64..3).prop_map(|n| json!(n)), any_json()],
        field(),
    )
        .prop_map(|(i, a)| json!({"index": i, "function": {"arguments": a}}));
    let calls = prop_oneof![
        Just(Value::Null),
        prop::collection::vec(prop_oneof![fragment, any_json()], 0..3).prop_map(Value::Array),
        any_json(),
    ];
    let delta = (field(), field(), calls).prop_map(
        |(c, r, t)| json!({"role": "assistant", "content": c, "refusal": r, "tool_calls": t}),
    );
    let choice = (prop_oneof![delta, any_json()], field())
        .prop_map(|(d, f)| json!({"index": 0, "delta": d, "finish_reason": f}));
    let count = || prop_oneof![any::<u64>().prop_map(|n| json!(n)), any_json()];
    let usage = prop_oneof![
        (count(), count()).prop_map(|(p, c)| json!({"prompt_tokens": p, "completion_tokens": c})),
        any_json(),
    ];
    (
        prop_oneof![
            prop::collection::vec(prop_oneof![choice, any_json()], 0..3).prop_map(Value::Array),
            any_json(),
        ],
        prop::option::of(usage),
        prop::option::of(any_json()),
    )
        .prop_map(|(choices, usage, error)| {
            let mut v = json!({"id": "c1", "object": "chat.completion.chunk", "choices": choices});
            if let Some(u) = usage {
                v["usage"] = u;
            }
            if let Some(e) = error {
                v["error"] = e;
            }
            v
        })
}

fn limits() -> impl Strategy<Value = Limits> {
    (1usize..10, 2usize..=Limits::MAX_DEPTH_CEILING).prop_map(|(max_messages, max_depth)| Limits {
        max_messages,
        max_depth,
    })
}

fn check_parse(bytes: Vec<u8>, limits: Limits) -> Result<(), TestCaseError> {
    match ChatRequest::parse(Bytes::from(bytes.clone()), limits) {
        Ok(r) => {
            prop_assert!(!r.model.is_empty());
            let n = r.messages().count();
            prop_assert!(n >= 1 && n <= limits.max_messages, "{n} messages");
            // The view points into the bytes it was given: no copy, every span inside them.
            prop_assert_eq!(r.bytes().as_ref(), &bytes[..]);
            for (_, raw) in r.raw_fields() {
                prop_assert!(raw.len() <= bytes.len());
            }
        }
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            if let RequestError::TooManyMessages { got, limit } = e {
                prop_assert!(got > limit);
            }
        }
    }
    Ok(())
}

/// The depth check's definition: count `{`/`[` opened outside strings, byte by byte, a
/// backslash in a string escaping the byte after it.
fn too_deep_by_definition(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The depth check that skips strings with memchr says what the byte-by-byte definition
    /// says, on any mix of quotes, escapes and brackets (valid JSON or not).
    #[test]
    fn the_depth_check_agrees_with_its_definition(
        bytes in prop::collection::vec(prop::sample::select(b"\"\\{[]}a ".to_vec()), 0..200),
        max in 0usize..8,
    ) {
        let got = rampart_core::request::parse::check_depth(&bytes, max).is_err();
        prop_assert_eq!(got, too_deep_by_definition(&bytes, max));
    }

    #[test]
    fn the_request_parser_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256), l in limits()) {
        check_parse(bytes, l)?;
    }

    #[test]
    fn the_request_parser_takes_any_json(v in any_json(), l in limits()) {
        check_parse(serde_json::to_vec(&v).unwrap(), l)?;
    }

    #[test]
    fn the_request_parser_takes_near_valid_requests(v in chat_like(), l in limits()) {
        check_parse(serde_json::to_vec(&v).unwrap(), l)?;
    }

    /// Nesting past the limit is refused by the depth check, whatever the shape, before any
    /// tree is built.
    #[test]
    fn nesting_past_the_limit_is_a_limit_error(depth in 3usize..400, max in 2usize..=Limits::MAX_DEPTH_CEILING, array in any::<bool>()) {
        let (open, close) = if array { ("[", "]") } else { ("{\"a\":", "}") };
        let inner = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let body = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"x":{inner}}}"#);
        let got = ChatRequest::parse(Bytes::from(body), Limits { max_messages: 10, max_depth: max });
        if depth + 1 > max {
            prop_assert!(matches!(got, Err(RequestError::TooDeep { .. })), "{got:?}");
        } else {
            prop_assert!(got.is_ok(), "{got:?}");
        }
    }

    /// The request path reads answers from their bytes, without a tree: it reads what the tree
    /// reader reads, field for field, whatever type each field has.
    #[test]
    fn an_answer_read_from_bytes_equals_the_one_read_from_its_tree(v in completion_like()) {
        // Both read the same bytes (a float does not always survive a round trip).
        let bytes = serde_json::to_vec(&v).unwrap();
        let tree: Value = serde_json::from_slice(&bytes).unwrap();
        let got = Answer::from_completion_json(&bytes);
        prop_assert_eq!(got.ok(), Some(Answer::from_completion(&tree)));
    }

    /// Streamed chunks are read from their bytes too (and relayed as they came): the same
    /// fields as from their tree, whatever type each has.
    #[test]
    fn a_chunk_read_from_bytes_equals_the_one_read_from_its_tree(v in chunk_like()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        let tree: Value = serde_json::from_slice(&bytes).unwrap();
        let got = ChunkFields::from_json(std::str::from_utf8(&bytes).unwrap());
        prop_assert_eq!(got.ok(), Some(ChunkFields::from_value(&tree)));
    }

    /// Any JSON object is a chunk the byte reader reads as the tree reader does; anything
    /// else is refused.
    #[test]
    fn any_object_reads_as_a_chunk(v in any_json()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        let tree: Value = serde_json::from_slice(&bytes).unwrap();
        match ChunkFields::from_json(std::str::from_utf8(&bytes).unwrap()) {
            Ok(c) => prop_assert_eq!(c, ChunkFields::from_value(&tree)),
            Err(_) => prop_assert!(!tree.is_object()),
        }
    }

    /// Only a body that is not JSON or has no `choices` array is refused.
    #[test]
    fn an_answer_without_a_choices_array_is_refused(v in any_json()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        let tree: Value = serde_json::from_slice(&bytes).unwrap();
        let has_array = tree.get("choices").is_some_and(Value::is_array);
        let got = Answer::from_completion_json(&bytes);
        prop_assert_eq!(got.is_ok(), has_array, "{:?}", got);
        if let Ok(a) = got {
            prop_assert_eq!(a, Answer::from_completion(&tree));
        }
    }

    #[test]
    fn a_whole_answer_reads_without_panicking(v in any_json()) {
        let a = Answer::from_completion(&v);
        prop_assert!(a.text.len() <= serde_json::to_string(&v).unwrap().len());
    }

    /// Stream chunks of any shape fold without panicking, and what the answer holds grows
    /// with the chunks' size, not with the numbers they name (a tool-call `index` of four
    /// billion must not allocate four billion slots).
    #[test]
    fn stream_chunks_fold_with_memory_bounded_by_their_size(
        chunks in prop::collection::vec(any_json(), 0..12),
        index in prop_oneof![0u64..4, any::<u64>()],
    ) {
        let mut a = Answer::default();
        let hostile = json!({"choices": [{"delta": {"tool_calls": [{"index": index, "function": {"arguments": "{}"}}]}}]});
        for c in chunks.iter().chain(std::iter::once(&hostile)) {
            a.push_chunk(c);
        }
        let calls = a.tool_calls.as_ref().and_then(Value::as_array).map_or(0, Vec::len);
        prop_assert!(calls <= Answer::MAX_TOOL_CALLS, "{calls} tool-call slots");
    }

    #[test]
    fn outcome_items_parse_or_give_a_clear_error(
        name in prop_oneof![Just(None), ".{0,80}".prop_map(Some)],
        value in prop_oneof![Just(None), any_json().prop_map(Some)],
        at in prop_oneof![Just(None), ".{0,30}".prop_map(Some), Just(Some("2026-12-02T08:00:00Z".to_string()))],
        request_id in prop_oneof![Just(None), ".{0,10}".prop_map(Some)],
        routing_key in prop_oneof![Just(None), ".{0,10}".prop_map(Some)],
        rollout in prop_oneof![Just(None), ".{0,10}".prop_map(Some)],
        now in any::<i64>(),
    ) {
        let item = OutcomeItem { request_id, routing_key, rollout, name, value, at };
        match parse_item(&item, now) {
            Ok(p) => {
                prop_assert!(p.value.is_finite());
                prop_assert!(!p.name.is_empty());
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
