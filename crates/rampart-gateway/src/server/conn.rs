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

/// What every connection shares.
#[derive(Clone)]
pub struct Ctx {
    pub app: Router,
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
    let app = ctx.app.clone();
    let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let resp = tower::ServiceExt::oneshot(app, req.map(axum::body::Body::new)).await;
            Ok::<_, Infallible>(match resp {
                Ok(r) => r,
                Err(never) => match never {},
            })
        }
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
