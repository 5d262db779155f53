//! Running the gateway: accept connections within their limits, serve until shutdown, then
//! drain.
//!
//! Connections (see [`conn`]): at most `server.max_connections` are open at once (the next
//! waits in the kernel's accept backlog); a connection whose request headers are not all in
//! within `server.header_read_timeout` of it starting to wait for them (at accept, or after the
//! previous response: an idle keep-alive connection is closed then too) is closed; a body not
//! read within `server.body_read_timeout` is answered 408 and the connection closed. Each is
//! counted (`rampart_connections_*`).
//!
//! Shutdown order: stop admitting (readyz turns 503, no new shadow calls, no new connections,
//! keep-alive connections closed after their current request), let in-flight requests finish
//! within `server.shutdown_grace`; at the grace deadline open streams end with an error event
//! and every request still in flight is recorded as cancelled; wait for background tasks
//! (shadow calls) within what is left of the grace; then flush and close the event writer so
//! every admitted request's event is stored.

mod conn;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::state::Gateway;

/// How long connections get, after the grace deadline cut their streams, to write the error
/// event and record themselves before they are dropped.
const CUT_FLUSH: Duration = Duration::from_secs(2);

/// Serve `gw` on `listener` until `shutdown` resolves, then drain as described above.
pub async fn serve(
    listener: TcpListener,
    gw: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::http::router(gw.clone());
    let token = gw.shutdown.clone();
    let signal_token = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        signal_token.cancel();
    });
    let conns = TaskTracker::new();
    let ctx = conn::Ctx {
        app,
        limits: gw.config.server.connections,
        metrics: gw.metrics.clone(),
        draining: token.clone(),
        killed: tokio_util::sync::CancellationToken::new(),
    };
    accept_until_shutdown(&listener, &ctx, &conns).await;
    drop(listener);
    conns.close();
    let grace = gw.config.server.shutdown_grace;
    let deadline = Instant::now() + grace;
    if tokio::time::timeout(grace, conns.wait()).await.is_err() {
        tracing::warn!(grace = ?grace, "in-flight requests did not finish within the grace period; cutting them");
        // Streams end with an error event and record themselves; then whatever is left is
        // dropped, which records each remaining request as cancelled.
        gw.plane.cut.cancel();
        if tokio::time::timeout(CUT_FLUSH, conns.wait()).await.is_err() {
            ctx.killed.cancel();
            conns.wait().await;
        }
    }
    gw.tasks.close();
    if tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        gw.tasks.wait(),
    )
    .await
    .is_err()
    {
        tracing::warn!("background tasks did not finish within the grace period");
    }
    if let Err(e) = gw.writer.close().await {
        tracing::error!(error = %e, "event writer did not close cleanly");
    }
    Ok(())
}

/// Accept connections, at most `max_connections` open at once, until the gateway drains.
async fn accept_until_shutdown(listener: &TcpListener, ctx: &conn::Ctx, conns: &TaskTracker) {
    let permits = Arc::new(Semaphore::new(ctx.limits.max_connections));
    let m = &ctx.metrics.connections;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                m.waited_at_cap.inc();
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = ctx.draining.cancelled() => return,
                }
            }
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = ctx.draining.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                conns.spawn(conn::serve(ctx.clone(), stream, peer, permit));
            }
            Err(e) => {
                // Out of file descriptors, or the peer gave up before accept: count, back off
                // briefly so a persistent error does not spin, and keep serving.
                m.accept_errors.inc();
                tracing::warn!(error = %e, "accept failed");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
