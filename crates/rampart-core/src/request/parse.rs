//! Parsing a client's chat-completions body once, into a compact view over its bytes.
//!
//! The body is never turned into a JSON tree. [`ChatRequest`] keeps the client's bytes (a
//! reference-counted [`Bytes`], shared by the variant call, the shadow call and the pair record
//! without copying), checked to be UTF-8 once and then read as text (serde_json's byte reader
//! would check every string it reads again, and every raw field it hands out), and the byte
//! range of each top-level field and of each message; the few fields rampart reads (`model`,
//! `stream`, `user`, `stream_options.include_usage`, each message's `role`) are read out as
//! small values. What one request may cost is bounded by [`Limits`]: the nesting depth, checked
//! before parsing, and the number of messages, past which messages are only counted, never
//! collected or read.

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;
use bytes_utils::Str;
use serde::Deserialize;
use serde::de::DeserializeSeed;
use serde_json::value::RawValue;

/// What one request may cost. The body size is bounded before parsing (`server.max_body_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries `messages` may have (`server.max_messages`).
    pub max_messages: usize,
    /// Deepest nesting of arrays and objects anywhere in the body (`server.max_json_depth`).
    pub max_depth: usize,
}

impl Limits {
    pub const DEFAULT_MAX_MESSAGES: usize = 2_048;
    pub const DEFAULT_MAX_DEPTH: usize = 64;
    /// serde_json refuses deeper documents itself; a configured depth may not exceed it.
    pub const MAX_DEPTH_CEILING: usize = 127;
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_messages: Limits::DEFAULT_MAX_MESSAGES,
            max_depth: Limits::DEFAULT_MAX_DEPTH,
        }
    }
}

/// Why a body was refused. Each message names the field, and a bound names its config key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("request body is not valid JSON: {0}")]
    Json(String),
    #[error("request body must be a JSON object")]
    NotObject,
    #[error("{0}")]
    Field(String),
    #[error(
        "`messages` has {got} entries; this gateway accepts at most {limit} per request (server.max_messages)"
    )]
    TooManyMessages { got: usize, limit: usize },
    #[error(
        "request body nests arrays and objects deeper than {limit} levels (server.max_json_depth)"
    )]
    TooDeep { limit: usize },
}

impl RequestError {
    /// Whether the request was refused for a configured bound rather than for its shape.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            RequestError::TooManyMessages { .. } | RequestError::TooDeep { .. }
        )
    }
}

/// One message: its role, and where its JSON object sits in the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: String,
    pub span: Range<usize>,
}

/// A checked chat-completions request: the client's bytes plus where each part sits.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The client's bytes, known to be UTF-8.
    body: Str,
    /// Top-level fields other than `messages`, sorted by key (a repeated key's last value wins).
    fields: Vec<(Key, Range<usize>)>,
    messages_span: Range<usize>,
    messages: Vec<Message>,
    pub model: String,
    pub stream: bool,
    /// The `user` field when it is a non-empty string.
    pub user: Option<String>,
    /// Whether the client itself asked for usage in its stream.
    pub stream_usage: bool,
}

/// A top-level key: where it sits in the body, or its text when JSON escapes were undone.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    At(Range<usize>),
    Unescaped(Box<str>),
}

/// A body's top-level members in the order sent, each key borrowed from the body unless it
/// holds escapes (no tree, no map: a request has a handful of fields).
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Members<'de>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::with_capacity(8);
                while let Some(KeyText(k)) = map.next_key()? {
                    out.push((k, map.next_value()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A key as serde_json hands it over: borrowed when it had no escapes.
struct KeyText<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for KeyText<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<KeyText<'de>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeyText<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<KeyText<'de>, E> {
                Ok(KeyText(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText<'de>, E> {
                Ok(KeyText(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<KeyText<'de>, E> {
                Ok(KeyText(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'a> Members<'a> {
    /// Sorted by key, keeping the last of repeated keys (as a map built in order would).
    fn into_sorted(mut self) -> Vec<(Cow<'a, str>, &'a RawValue)> {
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::with_capacity(self.0.len());
        for m in self.0 {
            match out.last_mut() {
                Some(last) if last.0 == m.0 => *last = m,
                _ => out.push(m),
            }
        }
        out
    }
}

/// The value of `key` among sorted members.
fn member<'a>(top: &[(Cow<'a, str>, &'a RawValue)], key: &str) -> Option<&'a RawValue> {
    let i = top.binary_search_by(|(k, _)| k.as_ref().cmp(key)).ok()?;
    top.get(i).map(|(_, v)| *v)
}

#[derive(Deserialize)]
struct RoleOnly<'a> {
    #[serde(borrow)]
    role: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct IncludeUsage {
    include_usage: Option<bool>,
}

fn field(msg: &str) -> RequestError {
    RequestError::Field(msg.to_string())
}

/// The byte offset of `part` (borrowed from `whole`) in `whole`.
fn span_in(whole: &str, part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.len()
}

/// Refuse nesting deeper than `max` without building anything: one pass over the bytes that
/// counts open arrays and objects outside strings. A string is skipped to its closing quote
/// with `memchr` (the bytes of a chat body are mostly message text), a backslash escaping the
/// byte after it.
pub fn check_depth(bytes: &[u8], max: usize) -> Result<(), RequestError> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'"' => loop {
                let rest = bytes.get(i..).unwrap_or_default();
                match memchr::memchr2(b'"', b'\\', rest) {
                    // An unterminated string: nothing past it nests.
                    None => return Ok(()),
                    Some(at) if rest.get(at) == Some(&b'\\') => i += at + 2,
                    Some(at) => {
                        i += at + 1;
                        break;
                    }
                }
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Err(RequestError::TooDeep { limit: max });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

impl ChatRequest {
    /// Parse and check a body: a JSON object with a non-empty string `model`, a non-empty
    /// array `messages` of objects with a string `role`, and a boolean (or null) `stream`.
    pub fn parse(bytes: Bytes, limits: Limits) -> Result<ChatRequest, RequestError> {
        check_depth(&bytes, limits.max_depth.min(Limits::MAX_DEPTH_CEILING))?;
        let body = Str::from_inner(bytes).map_err(|e| {
            // serde_json's own error when it finds one (it does not check the strings it
            // skips), so a body that is not JSON either is refused as before.
            let bytes = e.into_inner();
            match serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                Err(e) => RequestError::Json(e.to_string()),
                Ok(_) => RequestError::Json("the body is not UTF-8".into()),
            }
        })?;
        let text: &str = &body;
        let top = match serde_json::from_str::<Members<'_>>(text) {
            Ok(t) => t.into_sorted(),
            Err(e) if e.is_data() => {
                // Valid JSON that is not an object, or not JSON at all.
                return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                    Ok(_) => RequestError::NotObject,
                    Err(e) => RequestError::Json(e.to_string()),
                });
            }
            Err(e) => return Err(RequestError::Json(e.to_string())),
        };
        let model = match member(&top, "model").map(|r| serde_json::from_str::<String>(r.get())) {
            Some(Ok(s)) if !s.is_empty() => s,
            Some(_) => {
                let got = member(&top, "model").map(|r| r.get()).unwrap_or_default();
                return Err(RequestError::Field(format!(
                    "`model` must be a non-empty string naming a route (got {})",
                    truncate(got, 80)
                )));
            }
            None => return Err(field("missing required field `model`")),
        };
        let Some(raw_messages) = member(&top, "messages") else {
            return Err(field("missing required field `messages`"));
        };
        let messages = read_messages(text, raw_messages, limits)?;
        let stream = match member(&top, "stream").map(|r| r.get()) {
            None | Some("null") | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(field("`stream` must be a boolean")),
        };
        let user = member(&top, "user")
            .and_then(|r| serde_json::from_str::<String>(r.get()).ok())
            .filter(|s| !s.is_empty());
        let stream_usage = member(&top, "stream_options")
            .and_then(|r| serde_json::from_str::<IncludeUsage>(r.get()).ok())
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let messages_span = span_in(text, raw_messages.get());
        let fields = top
            .iter()
            .filter(|(k, _)| k.as_ref() != "messages")
            .map(|(k, v)| {
                let key = match k {
                    Cow::Borrowed(k) => Key::At(span_in(text, k)),
                    Cow::Owned(k) => Key::Unescaped(k.as_str().into()),
                };
                (key, span_in(text, v.get()))
            })
            .collect();
        Ok(ChatRequest {
            fields,
            messages_span,
            messages,
            model,
            stream,
            user,
            stream_usage,
            body,
        })
    }

    /// A request built by rampart itself (the judge's), checked like a client's.
    pub fn from_value(value: &serde_json::Value) -> Result<ChatRequest, RequestError> {
        let bytes = serde_json::to_vec(value).map_err(|e| RequestError::Json(e.to_string()))?;
        ChatRequest::parse(Bytes::from(bytes), Limits::default())
    }

    /// The body as the client sent it.
    pub fn bytes(&self) -> &Bytes {
        self.body.inner()
    }

    fn text(&self, span: &Range<usize>) -> &str {
        // Spans come from `&str`s serde_json borrowed out of this text: on char boundaries.
        self.body.get(span.clone()).unwrap_or("null")
    }

    fn key<'a>(&'a self, key: &'a Key) -> &'a str {
        match key {
            Key::At(span) => self.text(span),
            Key::Unescaped(k) => k,
        }
    }

    /// The raw JSON of a top-level field other than `messages`.
    pub fn raw_field(&self, key: &str) -> Option<&str> {
        let i = self
            .fields
            .binary_search_by(|(k, _)| self.key(k).cmp(key))
            .ok()?;
        self.fields.get(i).map(|(_, s)| self.text(s))
    }

    /// Every top-level field other than `messages`, raw, sorted by key.
    pub fn raw_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, s)| (self.key(k), self.text(s)))
    }

    /// The `messages` array as the client sent it.
    pub fn raw_messages(&self) -> &str {
        self.text(&self.messages_span)
    }

    /// Each message's role and raw JSON object.
    pub fn messages(&self) -> impl Iterator<Item = (&str, &str)> {
        self.messages
            .iter()
            .map(|m| (m.role.as_str(), self.text(&m.span)))
    }

    /// A top-level field parsed as JSON (small fields such as `tools`; off the request path).
    pub fn field_value(&self, key: &str) -> Option<serde_json::Value> {
        self.raw_field(key)
            .and_then(|raw| serde_json::from_str(raw).ok())
    }
}

fn read_messages(body: &str, raw: &RawValue, limits: Limits) -> Result<Vec<Message>, RequestError> {
    let not_array = || field("`messages` must be an array of message objects");
    if !raw.get().starts_with('[') {
        return Err(not_array());
    }
    // One pass: the items up to the limit, and past it only their count.
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let (items, got) = UpTo(limits.max_messages)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|_| not_array())?;
    if got == 0 {
        return Err(field("`messages` must not be empty"));
    }
    if got > limits.max_messages {
        return Err(RequestError::TooManyMessages {
            got,
            limit: limits.max_messages,
        });
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let bad = || {
            RequestError::Field(format!(
                "`messages[{i}]` must be an object with a string `role`"
            ))
        };
        if !item.get().starts_with('{') {
            return Err(bad());
        }
        let head: RoleOnly<'_> = serde_json::from_str(item.get()).map_err(|_| bad())?;
        let role = head
            .role
            .and_then(|r| serde_json::from_str::<String>(r.get()).ok())
            .ok_or_else(bad)?;
        out.push(Message {
            role,
            span: span_in(body, item.get()),
        });
    }
    Ok(out)
}

/// A JSON array's first `.0` elements (raw) and its length, counted without keeping the rest.
struct UpTo(usize);

impl<'de> serde::de::DeserializeSeed<'de> for UpTo {
    type Value = (Vec<&'de RawValue>, usize);

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UpTo {
    type Value = (Vec<&'de RawValue>, usize);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(self.0));
        while items.len() < self.0 {
            match seq.next_element::<&RawValue>()? {
                Some(item) => items.push(item),
                None => {
                    let n = items.len();
                    return Ok((items, n));
                }
            }
        }
        let mut n = items.len();
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok((items, n))
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
