//! Running the gateway: serve until shutdown, then drain.
//!
//! Shutdown order: stop admitting (readyz turns 503, no new shadow calls), let in-flight requests
//! finish within `server.shutdown_grace`, wait for background tasks (shadow calls) within what
//! is left of it, then flush and close the event writer so every admitted request's event is
//! stored.

use std::future::Future;
use std::time::Instant;

use tokio::net::TcpListener;

use crate::state::Gateway;

/// Serve `gw` on `listener` until `shutdown` resolves, then drain as described above.
pub async fn serve(
    listener: TcpListener,
    gw: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::http::router(gw.clone());
    let token = gw.shutdown.clone();
    let signal_token = token.clone();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        signal_token.cancel();
    });
    let grace = gw.config.server.shutdown_grace;
    let mut server = std::pin::pin!(server.into_future());
    let result = tokio::select! {
        r = &mut server => r,
        _ = async { token.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace = ?grace, "in-flight requests did not finish within the grace period");
            Ok(())
        }
    };
    let deadline = Instant::now() + grace;
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
    result
}
