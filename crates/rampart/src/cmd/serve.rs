//! `rampart serve` and `rampart mock-llm`: long-running servers with signal handling.
//!
//! The first SIGTERM/SIGINT starts a graceful drain; a second one stops at once: connections are
//! dropped (no answer leaves after it), the queued events are stored, and the process exits 130.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use rampart_core::config::{Config, ProviderKind, StoreKind};
use rampart_gateway::{BuildOptions, Gateway};
use rampart_store::{PgOptions, PgStore, SqliteStore, Store};
use tokio::net::TcpListener;

use crate::EXIT_CONFIG;

/// The async runtime: one worker thread per CPU the process may run on. On one CPU (a
/// container limited to one, or `taskset -c 0`) it is tokio's current-thread runtime: a
/// multi-thread runtime with its single worker does the same work with more hand-offs (measured:
/// 5-6 µs more CPU per proxied request, `bench/vs-nginx.sh` with `BARE=1`). Blocking work
/// (SQLite, the statistics) runs on the blocking pool either way.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let flavour = if one_cpu {
        "current-thread"
    } else {
        "multi-thread"
    };
    tracing::info!(runtime = flavour, "async runtime");
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// How long a second signal waits for the event writer to store what it has queued.
const SECOND_SIGNAL_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves on the first SIGTERM/SIGINT; on the second, cancels `force` (the server drops its
/// connections, records what was in flight as cancelled and closes the event writer) and, should
/// that take longer than [`SECOND_SIGNAL_FLUSH`] (a locked database), exits anyway.
async fn shutdown_signal(force: Option<tokio_util::sync::CancellationToken>) {
    wait_signal().await;
    tracing::info!(
        "shutting down: draining in-flight requests (send the signal again to exit now)"
    );
    tokio::spawn(async move {
        wait_signal().await;
        tracing::warn!("second signal: dropping connections, storing queued events, then exiting");
        if let Some(force) = force {
            force.cancel();
            tokio::time::sleep(SECOND_SIGNAL_FLUSH).await;
            tracing::error!("the event writer did not finish within 5s; queued events are lost");
        }
        std::process::exit(130);
    });
}

async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub fn serve(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = match Config::from_path(config_path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{}: invalid config:\n{errors}", config_path.display());
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    // Opened before the server's runtime starts: opening blocks (migrations, first connection).
    let (store, pg) = open_store(&config.store.kind)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let listen = config.server.listen;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let opts = BuildOptions {
            pg,
            ..BuildOptions::default()
        };
        let gw = Gateway::build(config, store, opts)?;
        tracing::info!(addr = %listener.local_addr()?, "rampart listening");
        let force = tokio_util::sync::CancellationToken::new();
        let signal = shutdown_signal(Some(force.clone()));
        rampart_gateway::serve_until(listener, gw, signal, force.clone().cancelled_owned()).await?;
        if force.is_cancelled() {
            tracing::warn!("stopped by a second signal");
            return Ok(ExitCode::from(130));
        }
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// The store, and the same store as PostgreSQL when it is one (for the cluster).
type Opened = (Arc<dyn Store>, Option<Arc<PgStore>>);

/// The configured backend, opened and migrated.
pub(crate) fn open_store(kind: &StoreKind) -> anyhow::Result<Opened> {
    Ok(match kind {
        StoreKind::Sqlite { path } => {
            (
                Arc::new(SqliteStore::open(path).with_context(|| {
                    format!("cannot open the SQLite store at {}", path.display())
                })?),
                None,
            )
        }
        StoreKind::Postgres {
            url_env,
            pool_size,
            retention,
        } => {
            let opts = PgOptions {
                pool_size: *pool_size,
                retention: *retention,
                ..PgOptions::default()
            };
            let store =
                PgStore::open_env(url_env, opts).context("cannot open the PostgreSQL store")?;
            tracing::info!(target = store.target(), "using the PostgreSQL store");
            let store = Arc::new(store);
            (store.clone(), Some(store))
        }
    })
}

pub fn mock_llm(listen: &str, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let sim = match config_path {
        None => rampart_mock::Simulator::with_default_models(),
        Some(p) => {
            let config = match Config::from_path(p) {
                Ok(c) => c,
                Err(errors) => {
                    eprintln!("{}: invalid config:\n{errors}", p.display());
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            let mut models = std::collections::BTreeMap::new();
            let mut seed = 0;
            for prov in config.providers.values() {
                if let ProviderKind::Mock(m) = &prov.kind {
                    models.extend(m.models.clone());
                    seed = m.seed;
                }
            }
            if models.is_empty() {
                return Err(anyhow!(
                    "{} declares no `type = \"mock\"` provider with models",
                    p.display()
                ));
            }
            rampart_mock::Simulator::new(models, seed)
        }
    };
    // `rampart mock-llm` is a test server: `/_mock/received` lists what it was sent.
    sim.record_received(true);
    let rt = runtime()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(addr = %listener.local_addr()?, "rampart mock-llm listening");
        rampart_mock::serve(listener, Arc::new(sim), shutdown_signal(None)).await?;
        Ok(ExitCode::SUCCESS)
    })
}
