//! Bounds on what a provider's stream may make the gateway hold.
//!
//! Streamed tool calls arrive as fragments keyed by `index`, and whoever joins them keeps one
//! slot per index: an upstream sending `index: 4000000000` would make that join allocate
//! billions of slots. An index past [`MAX_TOOL_CALLS`], or one that skips ahead of the calls
//! seen so far, is a provider error and ends the stream.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::{Stream, StreamExt};
use rampart_core::request::ChunkFields;

use super::{Chunk, Chunks, ProviderError};

/// Most tool calls one answer may carry.
pub const MAX_TOOL_CALLS: u64 = 128;

/// Checks one chunk; `calls` is how many tool calls the stream has opened so far.
pub fn check_chunk(chunk: &ChunkFields, calls: &mut u64) -> Result<(), ProviderError> {
    if let Some(n @ 2..) = chunk.choices {
        return Err(ProviderError::Invalid(format!(
            "the provider streamed {n} choices in one chunk; rampart asks for one"
        )));
    }
    for frag in chunk.tool_calls.iter().flatten() {
        let index = match frag.get("index") {
            None => 0,
            Some(i) => i.as_u64().ok_or_else(|| {
                ProviderError::Invalid(format!("the provider streamed a tool-call index of {i}"))
            })?,
        };
        if index >= MAX_TOOL_CALLS || index > *calls {
            return Err(ProviderError::Invalid(format!(
                "the provider streamed tool-call index {index} after {calls} call(s) (at most \
                 {MAX_TOOL_CALLS}, in order)"
            )));
        }
        *calls = (*calls).max(index + 1);
    }
    Ok(())
}

/// `chunks`, ending with a provider error at the first chunk [`check_chunk`] refuses.
pub fn bounded(chunks: Chunks) -> Chunks {
    Box::pin(Bounded {
        chunks,
        calls: 0,
        over: false,
    })
}

/// See [`bounded`]: polled in place, no future per chunk.
struct Bounded {
    chunks: Chunks,
    /// Tool calls the stream has opened so far.
    calls: u64,
    over: bool,
}

impl Stream for Bounded {
    type Item = Result<Chunk, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.over {
            return Poll::Ready(None);
        }
        let item = ready!(this.chunks.poll_next_unpin(cx))
            .map(|item| item.and_then(|c| check_chunk(&c.fields, &mut this.calls).map(|()| c)));
        this.over = !matches!(item, Some(Ok(_)));
        Poll::Ready(item)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn call(index: Value) -> ChunkFields {
        ChunkFields::from_value(
            &json!({"choices": [{"delta": {"tool_calls": [{"index": index, "function": {"arguments": "{}"}}]}}]}),
        )
    }

    #[test]
    fn indexes_must_be_small_and_in_order() {
        let mut n = 0;
        check_chunk(&call(json!(0)), &mut n).unwrap();
        check_chunk(&call(json!(0)), &mut n).unwrap();
        check_chunk(&call(json!(1)), &mut n).unwrap();
        assert_eq!(n, 2);
        assert!(check_chunk(&call(json!(3)), &mut n).is_err(), "skips ahead");
        assert!(check_chunk(&call(json!(4_000_000_000u64)), &mut n).is_err());
        assert!(check_chunk(&call(json!(-1)), &mut n).is_err());
        let mut m = MAX_TOOL_CALLS;
        assert!(check_chunk(&call(json!(MAX_TOOL_CALLS)), &mut m).is_err());
    }
}
