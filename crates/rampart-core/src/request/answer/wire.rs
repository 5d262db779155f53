//! A `chat.completion` body read straight from its bytes into the few fields rampart needs,
//! without building a `serde_json::Value` tree of the whole answer (every key, the id, the
//! model name, the message map: a dozen allocations and their drop per answer, on the request
//! path). Reads exactly what [`Answer::from_completion`] reads from a tree, with the same
//! leniency: a field of another type than expected is treated as absent, never as an error.
//! Only a body that is not JSON, or whose `choices` is missing or not an array, is refused.
//! A stream's chunks are read the same way, into [`ChunkFields`].

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{Answer, ChunkFields};

/// A derived struct also reads from an array (`[choices, usage]`): only an object is one.
fn object(bytes: &[u8], what: &str) -> Result<(), serde_json::Error> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(de::Error::custom(format_args!("{what} is a JSON object")));
    }
    Ok(())
}

/// Read a `chat.completion` body. Checked to be UTF-8 once, then read as text: serde_json's
/// byte reader would check each string it reads again.
pub fn completion(bytes: &[u8]) -> Result<Answer, serde_json::Error> {
    object(bytes, "a chat completion")?;
    let text = std::str::from_utf8(bytes)
        .map_err(|e| de::Error::custom(format_args!("a chat completion is UTF-8: {e}")))?;
    let wire: Completion = serde_json::from_str(text)?;
    let mut a = Answer::default();
    if let Some(choice) = wire.choices.0.and_then(|c| c.0) {
        if let Some(msg) = choice.message.0 {
            a.text = msg.content.0.unwrap_or_default();
            a.refusal_field = msg.refusal.0;
            a.tool_calls = msg.tool_calls;
        }
        a.finish_reason = choice.finish_reason.0;
    }
    if let Some(u) = wire.usage.0 {
        a.has_usage = true;
        a.prompt_tokens = u.prompt_tokens.0.unwrap_or(0);
        a.completion_tokens = u.completion_tokens.0.unwrap_or(0);
    }
    Ok(a)
}

/// Read one `chat.completion.chunk`.
pub fn chunk(text: &str) -> Result<ChunkFields, serde_json::Error> {
    object(text.as_bytes(), "a chat completion chunk")?;
    let wire: Chunk = serde_json::from_str(text)?;
    let (choices, first) = match wire.choices.0 {
        Some((n, first)) => (Some(n), first.and_then(|c| c.0)),
        None => (None, None),
    };
    let (delta, finish_reason) = match first {
        Some(c) => (c.delta.0, c.finish_reason.0),
        None => (None, None),
    };
    let (content, refusal, tool_calls) = match delta {
        Some(d) => (
            d.content.0,
            d.refusal.0,
            match d.tool_calls {
                Some(Value::Array(calls)) => Some(calls),
                _ => None,
            },
        ),
        None => (None, None, None),
    };
    Ok(ChunkFields {
        choices,
        content,
        refusal,
        tool_calls,
        finish_reason,
        usage: wire.usage.0.map(|u| {
            (
                u.prompt_tokens.0.unwrap_or(0),
                u.completion_tokens.0.unwrap_or(0),
            )
        }),
        error: wire.error.is_some(),
    })
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Counted<Loose<ChunkChoice>>,
    #[serde(default)]
    usage: Loose<Usage>,
    /// `null` reads as `None`.
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Loose<Delta>,
    #[serde(default)]
    finish_reason: Loose<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Loose<String>,
    #[serde(default)]
    refusal: Loose<String>,
    /// Kept as a tree: rare, and checked fragment by fragment. `null` reads as `None`.
    #[serde(default)]
    tool_calls: Option<Value>,
}

#[derive(Deserialize)]
struct Completion {
    choices: First<Loose<Choice>>,
    #[serde(default)]
    usage: Loose<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Loose<Message>,
    #[serde(default)]
    finish_reason: Loose<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Loose<String>,
    #[serde(default)]
    refusal: Loose<String>,
    /// Kept as a tree: rare, and stored as the provider sent it. `null` reads as `None`.
    #[serde(default)]
    tool_calls: Option<Value>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Loose<u64>,
    #[serde(default)]
    completion_tokens: Loose<u64>,
}

/// A value read as `T` when it has `T`'s shape, and as absent otherwise (skipped without being
/// built): `Value::as_str`, `as_u64` and `is_object` semantics, for strings, integers and
/// structs.
struct Loose<T>(Option<T>);

/// Whether a [`Loose`] type is read from a JSON object (a struct) or from a scalar.
trait Shape {
    const OBJECT: bool;
}
impl Shape for String {
    const OBJECT: bool = false;
}
impl Shape for u64 {
    const OBJECT: bool = false;
}
impl Shape for Choice {
    const OBJECT: bool = true;
}
impl Shape for Message {
    const OBJECT: bool = true;
}
impl Shape for Usage {
    const OBJECT: bool = true;
}
impl Shape for ChunkChoice {
    const OBJECT: bool = true;
}
impl Shape for Delta {
    const OBJECT: bool = true;
}

impl<T> Default for Loose<T> {
    fn default() -> Self {
        Loose(None)
    }
}

impl<'de, T: Deserialize<'de> + Shape> Deserialize<'de> for Loose<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor(PhantomData))
    }
}

struct LooseVisitor<T>(PhantomData<T>);

impl<T> LooseVisitor<T> {
    /// A scalar offered to `T`: kept if `T` takes it, absent if not.
    fn scalar<'de, E, D>(d: D) -> Result<Loose<T>, E>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de, Error = E>,
    {
        Ok(Loose(T::deserialize(d).ok()))
    }
}

impl<'de, T: Deserialize<'de> + Shape> Visitor<'de> for LooseVisitor<T> {
    type Value = Loose<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Self::scalar(s.into_deserializer())
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Self::scalar(s.into_deserializer())
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Self::scalar(n.into_deserializer())
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        // `as_u64` reads a non-negative integer, whichever way the parser typed it.
        match u64::try_from(n) {
            Ok(n) => Self::scalar(n.into_deserializer()),
            Err(_) => Ok(Loose(None)),
        }
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Loose::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        if T::OBJECT {
            return T::deserialize(MapAccessDeserializer::new(map)).map(|t| Loose(Some(t)));
        }
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose(None))
    }
}

/// The first element of an array (the rest skipped unbuilt); anything but an array is an error.
struct First<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// An array's length and its first element (the rest skipped unbuilt); absent when the value
/// is not an array (`Value::as_array` semantics).
struct Counted<T>(Option<(usize, Option<T>)>);

impl<T> Default for Counted<T> {
    fn default() -> Self {
        Counted(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Counted<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Counted<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Counted<T>, A::Error> {
                let first = seq.next_element::<T>()?;
                let mut n = usize::from(first.is_some());
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Counted(Some((n, first))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Counted<T>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Counted(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Counted<T>, E> {
                Ok(Counted(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Counted<T>, E> {
                Ok(Counted(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Counted<T>, E> {
                Ok(Counted(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Counted<T>, E> {
                Ok(Counted(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Counted<T>, E> {
                Ok(Counted(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Counted<T>, E> {
                Ok(Counted(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}
