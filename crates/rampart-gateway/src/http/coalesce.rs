//! One socket write for the events that are ready together.
//!
//! hyper's server writes and flushes a response body's frames each time the body says
//! `Pending`. A relayed stream says so after every event: the upstream connection's task hands
//! its body over one frame at a time, so even when the provider sent twenty events in one TCP
//! segment, each reached the client in its own `writev` (17 per 20-chunk stream, measured with
//! `strace -c`), and on loopback such a write costs more CPU than all of rampart's work on the
//! event. [`Coalesce`] holds what is ready: when the inner body has nothing *now*, it lets the
//! other tasks run (the upstream connection hands over its next frame) and looks again, and
//! sends what it holds only when [`LOOKS`] looks in a row found nothing, or when it holds
//! [`MAX_BATCH`] bytes. The bytes are the same, in the same order; only their grouping into
//! writes changes (tested below, and on the wire in `tests/provider_faults.rs`). A stream whose
//! events arrive apart (a model generating) sends each as it comes, [`LOOKS`] scheduler passes
//! later (microseconds). On a multi-thread runtime the task's own wake-up runs it again first,
//! so there it mostly sends event by event, as without it.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use hyper::body::{Body as HttpBody, Frame};

/// How many times the task lets the others run, finding nothing new, before it sends what it
/// holds. The upstream connection's next frame takes two scheduler passes to reach the body
/// (measured: one look sent every event on its own), so three covers it with one to spare.
pub const LOOKS: u8 = 3;

/// Room taken when the first event of a batch is held: a twenty-event answer's worth.
const INITIAL_HOLD: usize = 4 * 1024;

/// Bytes held at most before they are sent: a handful of events, well under a socket buffer.
pub const MAX_BATCH: usize = 16 * 1024;

/// `resp` with its body coalesced.
pub fn coalesced(resp: Response) -> Response {
    resp.map(|body| Body::new(Coalesce::new(body)))
}

/// A body whose ready data frames are sent together (see the module's doc).
pub struct Coalesce<B: HttpBody> {
    inner: B,
    held: BytesMut,
    /// How often the inner body said `Pending` since the last frame while bytes were held.
    looks: u8,
    /// What ended the inner body (an error, trailers, or its end), sent after the held bytes.
    after: Option<Option<Result<Frame<Bytes>, B::Error>>>,
}

impl<B: HttpBody<Data = Bytes>> Coalesce<B> {
    pub fn new(inner: B) -> Self {
        Coalesce {
            inner,
            held: BytesMut::new(),
            looks: 0,
            after: None,
        }
    }

    fn take_held(&mut self) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Poll::Ready(Some(Ok(Frame::data(self.held.split().freeze()))))
    }
}

impl<B> HttpBody for Coalesce<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        // Set only together with held bytes, which the previous call sent.
        if let Some(end) = this.after.take() {
            return Poll::Ready(end);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.looks = 0;
                        if this.held.is_empty() && data.len() >= MAX_BATCH {
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        if this.held.is_empty() {
                            // Room for a typical batch up front, so held events are not
                            // re-copied by each growth of the buffer.
                            this.held.reserve(data.len().max(INITIAL_HOLD));
                        }
                        this.held.extend_from_slice(&data);
                        if this.held.len() >= MAX_BATCH {
                            return this.take_held();
                        }
                    }
                    Err(trailers) => return this.end_with(Some(Ok(trailers))),
                },
                Poll::Ready(Some(Err(e))) => return this.end_with(Some(Err(e))),
                Poll::Ready(None) => return this.end_with(None),
                Poll::Pending if this.held.is_empty() => return Poll::Pending,
                Poll::Pending if this.looks < LOOKS => {
                    // Let the tasks already woken (the upstream connection) run, then look again.
                    this.looks += 1;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Pending => {
                    this.looks = 0;
                    return this.take_held();
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_empty() && self.after.is_none() && self.inner.is_end_stream()
    }
}

impl<B: HttpBody<Data = Bytes>> Coalesce<B> {
    /// The inner body ended (or failed, or sent trailers): send what is held first.
    fn end_with(
        &mut self,
        end: Option<Result<Frame<Bytes>, B::Error>>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if self.held.is_empty() {
            return Poll::Ready(end);
        }
        self.after = Some(end);
        self.take_held()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::convert::Infallible;

    /// A body that plays a script: `Some(text)` is a ready frame, `None` a `Pending` (the task
    /// woken at once, as a channel with the next frame already on its way would).
    struct Script(VecDeque<Option<&'static str>>);

    impl HttpBody for Script {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.0.pop_front() {
                Some(Some(t)) => {
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(t.as_bytes())))))
                }
                Some(None) => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                None => Poll::Ready(None),
            }
        }
    }

    /// The frames `Coalesce` sends for `script`.
    async fn frames(script: &[Option<&'static str>]) -> Vec<String> {
        let mut body = Coalesce::new(Script(script.iter().copied().collect()));
        let mut out = Vec::new();
        while let Some(f) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            let data = f.unwrap().into_data().unwrap();
            out.push(String::from_utf8(data.to_vec()).unwrap());
        }
        out
    }

    #[tokio::test]
    async fn frames_ready_together_or_a_few_pendings_apart_go_out_together() {
        let out = frames(&[Some("a"), Some("b"), None, Some("c"), None, None, Some("d")]).await;
        assert_eq!(out, ["abcd"]);
    }

    #[tokio::test]
    async fn more_pendings_in_a_row_than_looks_send_what_is_held() {
        let idle = [None; LOOKS as usize + 1];
        let mut script = vec![Some("a")];
        script.extend(idle);
        script.push(Some("b"));
        script.extend(idle);
        script.push(Some("c"));
        let out = frames(&script).await;
        assert_eq!(out, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn nothing_is_held_past_the_batch_size() {
        let big: &'static str = Box::leak("x".repeat(MAX_BATCH - 1).into_boxed_str());
        let out = frames(&[Some(big), Some("yz"), Some("w")]).await;
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_BATCH + 1);
        assert_eq!(out[1], "w");
        assert_eq!(out.concat(), format!("{big}yzw"));
    }

    #[tokio::test]
    async fn an_empty_body_stays_empty() {
        assert!(frames(&[None, None]).await.is_empty());
    }
}
