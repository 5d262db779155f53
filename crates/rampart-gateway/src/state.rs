//! Assembles both planes at start-up; the HTTP handlers' state.
//!
//! [`Gateway`] dereferences to the data plane's [`DataPlane`] (config, snapshot, metrics, …) and
//! adds what only the operator's side needs: the control handle and the admin token. Nothing
//! below this module imports it: data-plane handlers take [`DataPlane`] (axum's `FromRef`).

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::FromRef;
use rampart_core::config::Config;
use rampart_core::rollout::Command;
use rampart_store::{Store, Writer, WriterConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::{Clock, SystemClock};
use crate::control::{self, ControlError, ControlHandle, Order, RolloutStatus};
use crate::metrics::Metrics;
use crate::plane::{DataPlane, PlaneInner, Routing};
use crate::providers;
use crate::shadow::ShadowDispatcher;

pub use crate::plane::Snapshot;

/// Why [`Gateway::build`] refused to start (each message names the config key to fix).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Providers(#[from] providers::BuildError),
    #[error(
        "server.admin_token_env names the environment variable {var}, which is not set (or \
         empty): set it to the admin token, or remove admin_token_env to serve the admin API \
         to loopback clients only"
    )]
    AdminToken { var: String },
    /// A rollout's state could not be read. Its message already carries the store's error, so
    /// it is not a `source` (an error chain printed with `{:#}` would repeat it).
    #[error("{0}")]
    Restore(control::StartError),
    #[error(transparent)]
    Alerts(#[from] control::alerts::AlertsError),
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
}

pub struct Inner {
    pub plane: DataPlane,
    /// Admin bearer token, read once from `server.admin_token_env`.
    pub admin_token: Option<String>,
    /// The door to the controller: commands in, status out.
    pub controller: ControlHandle,
}

impl std::ops::Deref for Inner {
    type Target = DataPlane;
    fn deref(&self) -> &DataPlane {
        &self.plane
    }
}

/// Cheap-to-clone handle on the gateway's state.
#[derive(Clone)]
pub struct Gateway(pub Arc<Inner>);

impl std::ops::Deref for Gateway {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl FromRef<Gateway> for DataPlane {
    fn from_ref(gw: &Gateway) -> DataPlane {
        gw.plane.clone()
    }
}

/// Options a test or embedder may change; defaults are what `rampart serve` uses.
pub struct BuildOptions {
    pub clock: Arc<dyn Clock>,
    /// The PostgreSQL store again, when `store` is one: the replica then joins the cluster
    /// (version polling, notifications, the controller's lease; see `control::cluster`).
    pub pg: Option<Arc<rampart_store::PgStore>>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            clock: Arc::new(SystemClock),
            pg: None,
        }
    }
}

/// Several replicas: start the sync task (versions, notifications, the controller's lease);
/// its events go to the controller.
fn start_cluster(
    pg: Option<Arc<rampart_store::PgStore>>,
    health: Option<Arc<control::cluster::ClusterHealth>>,
    ctx: &control::Ctx,
) -> Option<tokio::sync::mpsc::Receiver<control::cluster::ClusterEvent>> {
    let (pg, health) = (pg?, health?);
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(control::cluster::sync::run(control::cluster::sync::Sync {
        store: ctx.store.clone(),
        pg,
        rollouts: ctx.config.rollouts.keys().cloned().collect(),
        poll_interval: ctx.config.cluster.poll_interval,
        stale_after: ctx.config.cluster.stale_after,
        health,
        clock: ctx.clock.clone(),
        events: tx,
        shutdown: ctx.shutdown.clone(),
    }));
    Some(rx)
}

impl Gateway {
    /// Build the gateway over an opened store. Must be called inside a Tokio runtime.
    pub fn build(
        config: Config,
        store: Arc<dyn Store>,
        opts: BuildOptions,
    ) -> Result<Gateway, BuildError> {
        let metrics = Arc::new(Metrics::new(&config));
        let providers = providers::build_all(&config, &metrics.providers.retries)?;
        let writer = Writer::spawn(
            store.clone(),
            WriterConfig {
                capacity: config.store.queue_capacity,
                batch_size: config.store.batch_size,
                flush_interval: config.store.flush_interval,
            },
        );
        let admin_token = admin_token(&config.server)?;
        // Restore each rollout before serving, so the first request is routed by the stored
        // state (a gateway restarted after a trip comes back rolled back).
        let restored = control::restore(&config, store.as_ref(), opts.clock.now_ms())
            .map_err(BuildError::Restore)?;
        let routing = Arc::new(Routing::new(restored.snapshot.clone()));
        let (alerts, alert_task) =
            control::alerts::build(&config.alerts, metrics.alerts.deliveries.clone())?;
        let (telemetry, trace_task) = crate::telemetry::Telemetry::build(
            &config.telemetry,
            crate::telemetry::SpanCounts::of(&metrics.traces),
        )?;
        let (signals, signal_rx) = crate::signal::channel(config.store.queue_capacity);
        let status = Arc::new(ArcSwap::from_pointee(Default::default()));
        let writes = Arc::new(control::persist::WriteHealth::default());
        let cluster_health = opts.pg.as_ref().map(|_| {
            let id = config.cluster.replica_id.clone();
            Arc::new(control::cluster::ClusterHealth::new(
                id.unwrap_or_else(control::cluster::default_replica_id),
            ))
        });
        let (controller, command_rx) =
            control::handle::channel(status.clone(), writes.clone(), cluster_health.clone());
        let config = Arc::new(config);
        let shutdown = CancellationToken::new();
        let plane = DataPlane(Arc::new(PlaneInner {
            shadow: ShadowDispatcher::new(&config.shadow),
            judges: crate::judge::Judges::new(&config),
            config: config.clone(),
            snapshot: routing.clone(),
            providers,
            metrics: metrics.clone(),
            store: store.clone(),
            writer,
            clock: opts.clock.clone(),
            tasks: TaskTracker::new(),
            shutdown: shutdown.clone(),
            cut: CancellationToken::new(),
            signals,
            telemetry,
        }));
        let on_stale = config.cluster.on_stale;
        let ctx = control::Ctx {
            config,
            store,
            clock: opts.clock,
            metrics,
            alerts,
            routing,
            status,
            shutdown: shutdown.clone(),
            tasks: plane.tasks.clone(),
            writes,
            cluster: cluster_health
                .clone()
                .map(|health| control::ClusterCtx { health, on_stale }),
        };
        let cluster_rx = start_cluster(opts.pg, cluster_health, &ctx);
        let inbox = control::Inbox {
            signals: signal_rx,
            commands: command_rx,
            cluster: cluster_rx,
        };
        // Background work outside the tracker: it must outlive the drain of request-driven tasks.
        tokio::spawn(control::controller::run(ctx, inbox, restored));
        if let Some(task) = trace_task {
            tokio::spawn(task.run(shutdown.clone()));
        }
        if let Some(task) = alert_task {
            tokio::spawn(task.run(shutdown));
        }
        Ok(Gateway(Arc::new(Inner {
            plane,
            admin_token,
            controller,
        })))
    }

    /// Send a state-machine command to the controller and wait for its answer.
    pub async fn command(
        &self,
        rollout: &str,
        command: Command,
    ) -> Result<RolloutStatus, ControlError> {
        self.controller.command(rollout, command).await
    }

    /// Cap a tenant's canary percent at runtime, through the controller: stored first (it
    /// survives restarts and controller transitions), then applied to every request admitted
    /// afterwards. A cap that cannot be stored is not applied, and the error says why.
    pub async fn set_tenant_cap(
        &self,
        rollout: &str,
        tenant: &str,
        max_percent: f64,
    ) -> Result<RolloutStatus, ControlError> {
        self.controller
            .order(
                rollout,
                Order::TenantCap {
                    tenant: tenant.to_string(),
                    max_percent,
                },
            )
            .await
    }
}

/// The admin token from the variable `server.admin_token_env` names. A named variable that is
/// unset or empty refuses the start: the operator asked for a token, and serving the admin API
/// without one (to every loopback peer, a local proxy's callers included) would be silent.
fn admin_token(server: &rampart_core::config::ServerConfig) -> Result<Option<String>, BuildError> {
    let Some(var) = server.admin_token_env.as_deref() else {
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(t) if !t.is_empty() => Ok(Some(t)),
        _ => Err(BuildError::AdminToken {
            var: var.to_string(),
        }),
    }
}
