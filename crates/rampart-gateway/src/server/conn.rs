//! One client connection: HTTP/1.1 with a header-read timeout, closed gracefully when the
//! gateway drains and dropped when it gives up on draining.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rampart_core::config::ConnectionLimits;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::plane::DataPlane;

/// `POST /v1/chat/completions`, the data plane's one hot endpoint, goes straight to its handler;
/// everything else through the router. The router's matching, its error-shaping layer and its
/// request/response boxing cost about 8 µs of CPU per request (`bench/vs-nginx.sh` with
/// `BARE=1`: the bare proxy with and without an axum router), a fifth of a plain proxy's cost,
/// and the chat handler needs none of it: its errors are already in OpenAI's shape. Tested
/// alongside the router's own routes in `tests/data_plane.rs`.
async fn dispatch(
    app: Router,
    plane: DataPlane,
    peer: SocketAddr,
    mut req: http::Request<Incoming>,
) -> axum::response::Response {
    if req.method() == http::Method::POST && req.uri().path() == crate::http::chat::PATH {
        let (parts, body) = req.into_parts();
        return crate::http::chat::chat_completions(
            axum::extract::State(plane),
            parts.headers,
            axum::body::Body::new(body),
        )
        .await;
    }
    req.extensions_mut().insert(ConnectInfo(peer));
    match tower::ServiceExt::oneshot(app, req.map(axum::body::Body::new)).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// What every connection shares.
#[derive(Clone)]
pub struct Ctx {
    pub app: Router,
    /// The chat endpoint's handle, served without the router (see [`dispatch`]).
    pub plane: DataPlane,
    pub limits: ConnectionLimits,
    pub metrics: Arc<Metrics>,
    /// The gateway stops admitting: finish the current request, then close.
    pub draining: CancellationToken,
    /// The drain gave up: drop the connection now (its requests record themselves cancelled).
    pub killed: CancellationToken,
}

/// Serve one connection until it closes, times out, or the drain gives up on it. Holds its
/// slot under `server.max_connections` (`permit`) until then.
pub async fn serve(ctx: Ctx, stream: TcpStream, peer: SocketAddr, permit: OwnedSemaphorePermit) {
    let m = &ctx.metrics.connections;
    m.accepted.inc();
    m.open.inc();
    let (app, plane) = (ctx.app.clone(), ctx.plane.clone());
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let (app, plane) = (app.clone(), plane.clone());
        async move { Ok::<_, Infallible>(dispatch(app, plane, peer, req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(ctx.limits.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = ctx.draining.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                r = conn.as_mut() => Some(r),
                _ = ctx.killed.cancelled() => None,
            }
        }
    };
    match result {
        Some(Err(e)) if e.is_timeout() => {
            m.header_timeouts.inc();
        }
        Some(Err(e)) => tracing::debug!(error = %e, %peer, "connection ended with an error"),
        Some(Ok(())) => {}
        None => {
            m.killed.inc();
        }
    }
    m.open.dec();
    drop(permit);
}
