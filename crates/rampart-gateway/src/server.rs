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
//!
//! Forced stop ([`serve_until`]'s `force`, a second signal): streams are cut and every
//! connection dropped at once, so no answer leaves after that point; each request still in
//! flight records itself (cancelled); background tasks are not waited for; then the writer is
//! closed, which stores everything queued. So every answer a client received has its event
//! stored, unless the store itself fails.

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
    serve_until(listener, gw, shutdown, std::future::pending()).await
}

/// [`serve`], and when `force` resolves (during the drain: a second signal), stop at once as
/// described above.
pub async fn serve_until(
    listener: TcpListener,
    gw: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
    force: impl Future<Output = ()> + Send + 'static,
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
        plane: gw.plane.clone(),
        limits: gw.config.server.connections,
        metrics: gw.metrics.clone(),
        draining: token.clone(),
        killed: tokio_util::sync::CancellationToken::new(),
    };
    let forced = tokio_util::sync::CancellationToken::new();
    {
        let (forced, draining, killed, cut) = (
            forced.clone(),
            token.clone(),
            ctx.killed.clone(),
            gw.plane.cut.clone(),
        );
        tokio::spawn(async move {
            force.await;
            forced.cancel();
            draining.cancel();
            cut.cancel();
            killed.cancel();
        });
    }
    accept_until_shutdown(&listener, &ctx, &conns).await;
    drop(listener);
    conns.close();
    drain(&gw, &ctx, &conns, &forced).await;
    if let Err(e) = gw.writer.close().await {
        tracing::error!(error = %e, "event writer did not close cleanly");
    }
    Ok(())
}

/// Wait for connections and background tasks within the grace period (cutting what is left at
/// its end), or until `forced`.
async fn drain(
    gw: &Gateway,
    ctx: &conn::Ctx,
    conns: &TaskTracker,
    forced: &tokio_util::sync::CancellationToken,
) {
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
    // A forced stop drops the connections (the `killed` token), so this returns at once.
    conns.wait().await;
    gw.tasks.close();
    tokio::select! {
        r = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            gw.tasks.wait(),
        ) => if r.is_err() {
            tracing::warn!("background tasks did not finish within the grace period");
        },
        _ = forced.cancelled() => {
            tracing::warn!("forced stop: not waiting for background tasks (shadow calls)");
        }
    }
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
