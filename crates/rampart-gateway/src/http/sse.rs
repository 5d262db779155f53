//! Server-sent events out: the events of a relayed stream, and the response that carries them.
//!
//! An event is framed as axum's `Event::default().data(text)` frames it (`data: ` before each
//! line of the text, a blank line after; tested byte for byte below), but in one buffer of the
//! right size: axum's grows its buffer from nothing, three allocations and copies an event,
//! which on a twenty-chunk answer was several percent of the relay's instructions. The
//! response has the headers axum's `Sse` sets, and its body is [`coalesced`].

use std::convert::Infallible;

use axum::body::Body;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::coalesce::coalesced;

/// One `data` event carrying `text`: `data: ` opens the text and follows each line break
/// (`\n` or `\r`) in it, and a blank line ends the event.
pub fn data(text: &str) -> Bytes {
    if text.is_empty() {
        // axum writes no field for empty data: the event is its end alone.
        return Bytes::from_static(b"\n");
    }
    const FIELD: &[u8] = b"data: ";
    let breaks = memchr::memchr2_iter(b'\n', b'\r', text.as_bytes()).count();
    let mut out = BytesMut::with_capacity(FIELD.len() * (breaks + 1) + text.len() + 2);
    out.put_slice(FIELD);
    let mut from = 0;
    for at in memchr::memchr2_iter(b'\n', b'\r', text.as_bytes()) {
        out.put_slice(text.as_bytes().get(from..=at).unwrap_or_default());
        out.put_slice(FIELD);
        from = at + 1;
    }
    out.put_slice(text.as_bytes().get(from..).unwrap_or_default());
    out.put_slice(b"\n\n");
    out.freeze()
}

/// A `text/event-stream` response whose body is `events`, written as they become ready.
pub fn response<S>(events: S) -> Response
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let mut resp = coalesced(Response::new(Body::from_stream(
        events.map(Ok::<Bytes, Infallible>),
    )));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::response::IntoResponse;
    use axum::response::sse::{Event, Sse};
    use proptest::prelude::*;

    /// The bytes axum's `Sse` writes for one `Event::default().data(text)`.
    fn axum_bytes(text: &str) -> bytes::Bytes {
        let events = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(
            Event::default().data(text),
        )]);
        let body = Sse::new(events).into_response().into_body();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(axum::body::to_bytes(body, usize::MAX))
            .unwrap()
    }

    proptest! {
        #[test]
        fn an_event_is_framed_as_axum_frames_it(
            parts in proptest::collection::vec(
                proptest::sample::select(vec!["{\"a\":1}", "\n", "\r", "\r\n", " ", "data: ", "é", "[DONE]", ":", ""]),
                0..12,
            )
        ) {
            let text = parts.concat();
            prop_assert_eq!(super::data(&text), axum_bytes(&text));
        }
    }

    #[tokio::test]
    async fn the_response_is_an_event_stream_with_axums_headers() {
        let events = futures_util::stream::iter([super::data("{\"x\":1}"), super::data("[DONE]")]);
        let resp = super::response(events);
        let ours = resp.headers().clone();
        let axum = Sse::new(futures_util::stream::empty::<
            Result<Event, std::convert::Infallible>,
        >())
        .into_response();
        assert_eq!(ours, *axum.headers());
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&body[..], b"data: {\"x\":1}\n\ndata: [DONE]\n\n");
    }

    /// Events that are ready together reach hyper as one frame, which it writes with one
    /// `writev`: the response's body is coalesced (`coalesce.rs`; without it, one write each).
    #[tokio::test]
    async fn events_ready_together_leave_as_one_frame() {
        use http_body_util::BodyExt;
        let events = futures_util::stream::iter(["a", "b", "[DONE]"].map(super::data));
        let mut body = super::response(events).into_body();
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        assert_eq!(frames, [&b"data: a\n\ndata: b\n\ndata: [DONE]\n\n"[..]]);
    }
}
