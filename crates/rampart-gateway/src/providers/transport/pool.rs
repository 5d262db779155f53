//! Provider connections kept for reuse, each driven by the request using it, not by a task of
//! its own.
//!
//! hyper-util's pooled client spawns a task per connection: the answer's head and every body
//! frame cross from that task to the request's through a channel that holds one frame, so each
//! frame costs a wake of both tasks (`bench/callgrind.sh STREAM=1`: 48.5 task polls for a
//! 20-event stream). Here the connection's future is polled by whoever reads its answer, inside
//! [`Body::poll_frame`]: a frame that arrives is read, decoded and handed on in one poll of the
//! request's task.
//!
//! The price, and how it is paid:
//! - An idle connection is polled by nobody, so one the provider closed while idle is noticed
//!   when it is next taken: [`Pool::request`] polls it first, and a closed connection is dropped
//!   and the next one tried. One that closes between that check and the request being written
//!   gives its request back (hyper's `try_send_request`), which is sent again on another
//!   connection; a request that was written is never sent twice.
//! - A connection goes back to the pool only when its answer was read to the end: an answer
//!   dropped part-way leaves unread bytes on the connection, so it is closed instead.
//! - Connections idle for [`POOL_IDLE_TIMEOUT`](super::POOL_IDLE_TIMEOUT) are closed by a
//!   sweep (a task started with the first request) and skipped when taken.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http_body_util::Full;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tower::Service;

type Io = MaybeHttpsStream<TokioIo<TcpStream>>;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the request's URI has no scheme or host")]
    NoOrigin,
    #[error("cannot connect")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// Where a connection goes: scheme and host (with its port).
#[derive(Clone, PartialEq, Eq, Debug)]
struct Origin {
    scheme: Scheme,
    authority: Authority,
}

/// One HTTP/1.1 connection: the handle requests are sent on and the future that does its I/O.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: Pin<Box<http1::Connection<Io, Full<Bytes>>>>,
    /// The driver finished: the connection is closed (or broke); never reused.
    closed: bool,
}

impl Conn {
    /// Lets the connection do whatever I/O is ready (and registers for more).
    fn drive(&mut self, cx: &mut Context<'_>) {
        if !self.closed && self.driver.as_mut().poll(cx).is_ready() {
            self.closed = true;
        }
    }

    /// Whether a new request can be sent now: still open and not busy with an answer.
    fn poll_usable(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        self.drive(cx);
        if self.closed {
            return Poll::Ready(false);
        }
        Poll::Ready(matches!(self.sender.poll_ready(cx), Poll::Ready(Ok(()))))
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// The idle connections to one origin, oldest first.
struct Origins {
    origin: Origin,
    idle: VecDeque<Idle>,
}

struct Shared {
    /// One entry per origin a provider's URLs name (one or two): found by a scan, not a hash.
    origins: Mutex<Vec<Origins>>,
    max_idle_per_origin: usize,
    idle_timeout: Duration,
    /// The sweep task was started.
    sweeping: AtomicBool,
}

impl Shared {
    fn origins(&self) -> std::sync::MutexGuard<'_, Vec<Origins>> {
        self.origins.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection to `origin`; expired ones are dropped on the way.
    fn take(&self, origin: &Origin) -> Option<Conn> {
        let mut origins = self.origins();
        let idle = &mut origins.iter_mut().find(|o| &o.origin == origin)?.idle;
        expire(idle, self.idle_timeout);
        idle.pop_back().map(|i| i.conn)
    }

    fn put(&self, origin: Origin, conn: Conn) {
        if conn.closed {
            return;
        }
        let mut origins = self.origins();
        let at = match origins.iter().position(|o| o.origin == origin) {
            Some(at) => at,
            None => {
                origins.push(Origins {
                    origin,
                    idle: VecDeque::new(),
                });
                origins.len() - 1
            }
        };
        let idle = &mut origins[at].idle;
        expire(idle, self.idle_timeout);
        if idle.len() < self.max_idle_per_origin {
            idle.push_back(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    fn sweep(&self) {
        for o in self.origins().iter_mut() {
            expire(&mut o.idle, self.idle_timeout);
        }
    }
}

/// Drops (closes) the connections idle for `timeout` or longer: the oldest, at the front.
fn expire(idle: &mut VecDeque<Idle>, timeout: Duration) {
    let now = Instant::now();
    while idle
        .front()
        .is_some_and(|i| now.duration_since(i.since) >= timeout)
    {
        idle.pop_front();
    }
}

/// Pooled HTTP/1.1 connections to providers. Cloning shares the pool.
#[derive(Clone)]
pub struct Pool {
    connector: HttpsConnector<HttpConnector>,
    shared: Arc<Shared>,
}

impl Pool {
    pub fn new(
        connector: HttpsConnector<HttpConnector>,
        max_idle_per_origin: usize,
        idle_timeout: Duration,
    ) -> Pool {
        Pool {
            connector,
            shared: Arc::new(Shared {
                origins: Mutex::new(Vec::new()),
                max_idle_per_origin,
                idle_timeout,
                sweeping: AtomicBool::new(false),
            }),
        }
    }

    /// Sends `req` (its URI absolute) on an idle connection to its origin, or a new one.
    pub async fn request(
        &self,
        mut req: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Body>, SendError> {
        let origin = origin_form(&mut req)?;
        self.start_sweeping();
        while let Some(mut conn) = self.shared.take(&origin) {
            if !poll_fn(|cx| conn.poll_usable(cx)).await {
                continue;
            }
            match send(&mut conn, req).await {
                Ok(head) => return Ok(self.answer(head, conn, origin)),
                // Not written: the connection closed before it could be. Try another.
                Err(Unsent::Back(r)) => req = *r,
                Err(Unsent::Failed(e)) => return Err(e.into()),
            }
        }
        // Boxed: a connection is made rarely, and its future would be most of this one's size
        // (every request's, moved whole when it is boxed and when it is spawned).
        let mut conn = Box::pin(self.connect(&origin)).await?;
        match send(&mut conn, req).await {
            Ok(head) => Ok(self.answer(head, conn, origin)),
            Err(Unsent::Failed(e)) => Err(e.into()),
            Err(Unsent::Back(_)) => Err(SendError::Connect(
                "the new connection closed before the request was sent".into(),
            )),
        }
    }

    async fn connect(&self, origin: &Origin) -> Result<Conn, SendError> {
        let uri = http::Uri::builder()
            .scheme(origin.scheme.clone())
            .authority(origin.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| SendError::Connect(e.into()))?;
        let mut connector = self.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(SendError::Connect)?;
        let io = connector.call(uri).await.map_err(SendError::Connect)?;
        let (sender, driver) = http1::handshake(io).await?;
        Ok(Conn {
            sender,
            driver: Box::pin(driver),
            closed: false,
        })
    }

    fn answer(
        &self,
        head: http::Response<Incoming>,
        conn: Conn,
        origin: Origin,
    ) -> http::Response<Body> {
        head.map(|incoming| Body {
            reading: Some(Reading {
                incoming,
                conn,
                origin,
            }),
            pool: Arc::downgrade(&self.shared),
        })
    }

    /// Starts the task that closes expired idle connections (once per pool, from a request, so
    /// inside the runtime); it ends when the pool is dropped.
    fn start_sweeping(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // expired connections are still skipped and dropped when taken
        };
        if self.shared.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let pool = Arc::downgrade(&self.shared);
        let every = self.shared.idle_timeout;
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match pool.upgrade() {
                    Some(p) => p.sweep(),
                    None => return,
                }
            }
        });
    }
}

/// Makes `req`'s URI origin-form (`/path?query`, as HTTP/1.1 sends it) with a `Host` header,
/// and returns where it goes.
fn origin_form(req: &mut http::Request<Full<Bytes>>) -> Result<Origin, SendError> {
    let parts = std::mem::take(req.uri_mut()).into_parts();
    let (Some(scheme), Some(authority)) = (parts.scheme, parts.authority) else {
        return Err(SendError::NoOrigin);
    };
    let path = parts
        .path_and_query
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *req.uri_mut() = http::Uri::from(path);
    if !req.headers().contains_key(http::header::HOST) {
        let host =
            http::HeaderValue::from_str(authority.as_str()).map_err(|_| SendError::NoOrigin)?;
        req.headers_mut().insert(http::header::HOST, host);
    }
    Ok(Origin { scheme, authority })
}

/// A request that got no answer head.
enum Unsent {
    /// Never written: safe to send elsewhere.
    Back(Box<http::Request<Full<Bytes>>>),
    Failed(hyper::Error),
}

/// Sends `req` on `conn`, driving the connection until the answer's head is in.
async fn send(
    conn: &mut Conn,
    req: http::Request<Full<Bytes>>,
) -> Result<http::Response<Incoming>, Unsent> {
    let mut answer = std::pin::pin!(conn.sender.try_send_request(req));
    let got = poll_fn(|cx| {
        conn.drive(cx);
        answer.as_mut().poll(cx)
    })
    .await;
    got.map_err(|mut e| match e.take_message() {
        Some(req) => Unsent::Back(Box::new(req)),
        None => Unsent::Failed(e.into_error()),
    })
}

/// How long, and how many bytes, the rest of an answer dropped before its end is read in the
/// background so its connection can be reused (an event stream's consumer stops at `[DONE]`,
/// before the chunked body's last, empty, chunk). Past either the connection is closed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
const DRAIN_BYTES: usize = 64 << 10;

/// An answer's body. Reading it drives its connection, which goes back to the pool once the
/// body has been read to its end.
pub struct Body {
    reading: Option<Reading>,
    pool: Weak<Shared>,
}

struct Reading {
    incoming: Incoming,
    conn: Conn,
    origin: Origin,
}

impl Reading {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<hyper::Result<Frame<Bytes>>>> {
        self.conn.drive(cx);
        Pin::new(&mut self.incoming).poll_frame(cx)
    }
}

impl Body {
    fn release(&mut self) {
        if let (Some(r), Some(pool)) = (self.reading.take(), self.pool.upgrade()) {
            pool.put(r.origin, r.conn);
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let Some(reading) = &mut this.reading else {
            return Poll::Ready(None);
        };
        let frame = reading.poll_frame(cx);
        match &frame {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Err(_))) => this.reading = None,
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.reading
            .as_ref()
            .is_none_or(|r| r.incoming.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.reading
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |r| r.incoming.size_hint())
    }
}

impl Drop for Body {
    /// A body dropped before its end keeps its connection only if the rest is read: what is
    /// already in is read now, anything else by a short background task (see [`DRAIN_TIMEOUT`]).
    fn drop(&mut self) {
        let Some(mut reading) = self.reading.take() else {
            return;
        };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut left = DRAIN_BYTES;
        loop {
            match reading.poll_frame(&mut cx) {
                Poll::Ready(None) => {
                    self.reading = Some(reading);
                    return self.release();
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let n = frame.data_ref().map_or(0, Bytes::len);
                    match left.checked_sub(n) {
                        Some(l) => left = l,
                        None => return,
                    }
                }
                Poll::Ready(Some(Err(_))) => return,
                Poll::Pending => break,
            }
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.pool.clone();
        runtime.spawn(async move {
            let rest = async {
                while let Some(frame) = poll_fn(|cx| reading.poll_frame(cx)).await {
                    let n = frame.ok()?.data_ref().map_or(0, Bytes::len);
                    left = left.checked_sub(n)?;
                }
                Some(reading)
            };
            if let Ok(Some(done)) = tokio::time::timeout(DRAIN_TIMEOUT, rest).await
                && let Some(pool) = pool.upgrade()
            {
                pool.put(done.origin, done.conn);
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;

    use http_body_util::{BodyExt, StreamBody};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;
    use tokio::sync::{Notify, mpsc};

    use super::*;

    /// A provider stand-in counting the connections it accepted. `/json` answers with a length,
    /// `/stream` with three chunks, `/stall` with one chunk and then nothing, ever. After
    /// `close_idle` is notified it drops every connection (a provider's idle timeout), reporting
    /// each on `closed`.
    struct Upstream {
        url: String,
        accepted: Arc<AtomicUsize>,
        close_idle: Arc<Notify>,
        closed: mpsc::UnboundedReceiver<()>,
    }

    async fn answer(
        req: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>, Infallible>
    {
        let frames: Vec<&'static str> = match req.uri().path() {
            "/json" => return Ok(http::Response::new(Full::from("{\"ok\":true}").boxed())),
            "/stream" => vec!["data: 1\n\n", "data: 2\n\n", "data: [DONE]\n\n"],
            _ => vec!["data: 1\n\n"],
        };
        let stall = req.uri().path() == "/stall";
        let frames = futures_util::stream::iter(
            frames
                .into_iter()
                .map(|f| Ok::<_, Infallible>(Frame::data(Bytes::from_static(f.as_bytes())))),
        );
        let body = if stall {
            StreamBody::new(futures_util::StreamExt::chain(
                frames,
                futures_util::stream::pending(),
            ))
            .boxed()
        } else {
            StreamBody::new(frames).boxed()
        };
        Ok(http::Response::new(body))
    }

    async fn upstream() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let close_idle = Arc::new(Notify::new());
        let (tx, closed) = mpsc::unbounded_channel();
        let (count, close) = (accepted.clone(), close_idle.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let (close, tx) = (close.clone(), tx.clone());
                tokio::spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer));
                    tokio::select! {
                        _ = conn => {}
                        () = close.notified() => {}
                    }
                    let _ = tx.send(());
                });
            }
        });
        Upstream {
            url,
            accepted,
            close_idle,
            closed,
        }
    }

    fn pool() -> Pool {
        let http = rampart_core::config::HttpSettings::default();
        Pool::new(super::super::connector(&http), 8, Duration::from_secs(15))
    }

    /// `/json`'s answer, read whole through `pool`.
    async fn json(pool: &Pool, up: &Upstream) -> String {
        read_all(pool, format!("{}/json", up.url)).await
    }

    async fn get(pool: &Pool, url: String) -> Result<http::Response<Body>, SendError> {
        let mut req = http::Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = url.parse().unwrap();
        pool.request(req).await
    }

    async fn read_all(pool: &Pool, url: String) -> String {
        let body = get(pool, url).await.unwrap().into_body();
        let bytes = body.collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    impl Pool {
        fn idle_len(&self) -> usize {
            self.shared.origins().iter().map(|o| o.idle.len()).sum()
        }

        /// Polls every idle connection once, as a request taking it would, and says how many
        /// are still open.
        fn idle_open(&self) -> usize {
            let mut cx = Context::from_waker(std::task::Waker::noop());
            let mut open = 0;
            for o in self.shared.origins().iter_mut() {
                for i in &mut o.idle {
                    i.conn.drive(&mut cx);
                    open += usize::from(!i.conn.closed);
                }
            }
            open
        }
    }

    #[tokio::test]
    async fn answers_read_to_their_end_leave_their_connection_for_the_next_request() {
        let up = upstream().await;
        let pool = pool();
        for _ in 0..5 {
            assert_eq!(json(&pool, &up).await, "{\"ok\":true}");
            let stream = read_all(&pool, format!("{}/stream", up.url)).await;
            assert_eq!(stream, "data: 1\n\ndata: 2\n\ndata: [DONE]\n\n");
        }
        assert_eq!(up.accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle_len(), 1);
    }

    /// An event stream's reader stops at `[DONE]`, before the chunked body's end: the rest is
    /// read for it and the connection is still reused.
    #[tokio::test]
    async fn a_stream_dropped_after_its_last_event_keeps_its_connection() {
        let up = upstream().await;
        let pool = pool();
        for _ in 0..5 {
            let mut body = get(&pool, format!("{}/stream", up.url))
                .await
                .unwrap()
                .into_body();
            let mut seen = String::new();
            while !seen.ends_with("[DONE]\n\n") {
                let frame = body.frame().await.unwrap().unwrap();
                seen.push_str(std::str::from_utf8(frame.data_ref().unwrap()).unwrap());
            }
            drop(body);
            // A drain that has to wait for the end runs in the background: wait for it.
            while pool.idle_len() == 0 {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(up.accepted.load(Ordering::SeqCst), 1);
    }

    /// An answer whose rest never comes is given up after the drain timeout: its connection is
    /// closed, never handed to the next request (which would read the stalled answer's bytes).
    #[tokio::test(start_paused = true)]
    async fn an_answer_abandoned_part_way_closes_its_connection() {
        let mut up = upstream().await;
        let pool = pool();
        let mut body = get(&pool, format!("{}/stall", up.url))
            .await
            .unwrap()
            .into_body();
        body.frame().await.unwrap().unwrap();
        drop(body);
        up.closed.recv().await.unwrap(); // the drain gave up and closed it
        assert_eq!(pool.idle_len(), 0);
        assert_eq!(json(&pool, &up).await, "{\"ok\":true}");
        assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
    }

    /// A provider that closes idle connections: the next request is not failed by the closed
    /// one, it goes out on a new connection.
    #[tokio::test]
    async fn a_connection_the_provider_closed_while_idle_is_not_used() {
        let mut up = upstream().await;
        let pool = pool();
        assert_eq!(json(&pool, &up).await, "{\"ok\":true}");
        assert_eq!(pool.idle_len(), 1);
        up.close_idle.notify_waiters();
        up.closed.recv().await.unwrap();
        while pool.idle_open() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(json(&pool, &up).await, "{\"ok\":true}");
        assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_are_closed_after_the_idle_timeout() {
        let mut up = upstream().await;
        let pool = pool();
        assert_eq!(json(&pool, &up).await, "{\"ok\":true}");
        assert_eq!(pool.idle_len(), 1);
        // The clock is paused: a pool that never sweeps fails here at a minute, not never.
        tokio::time::timeout(Duration::from_secs(60), up.closed.recv())
            .await
            .expect("the idle connection was not closed")
            .unwrap();
        assert_eq!(pool.idle_len(), 0);
    }

    #[tokio::test]
    async fn a_request_without_an_origin_is_refused() {
        let pool = pool();
        let mut req = http::Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = "/v1/chat/completions".parse().unwrap();
        assert!(matches!(pool.request(req).await, Err(SendError::NoOrigin)));
    }
}
