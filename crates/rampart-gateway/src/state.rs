//! The gateway's shared state and the data plane's snapshot.
//!
//! Routes and providers are fixed at start-up. The live position of every rollout lives in an
//! [`ArcSwap`] snapshot: the request path loads it without any lock, and the controller (or an
//! operator through the admin API) swaps in a new one, which every request admitted afterwards
//! sees at once.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rampart_core::config::{Config, RolloutConfig};
use rampart_core::routing::RolloutView;
use rampart_store::{Store, Writer, WriterConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::providers::{self, Provider};
use crate::shadow::ShadowDispatcher;

/// Live rollout positions, keyed by route name.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub by_route: HashMap<String, Arc<RolloutView>>,
}

/// A rollout's view before any controller decision: its first stage.
pub fn initial_view(r: &RolloutConfig) -> RolloutView {
    let first = r.stages.first();
    RolloutView {
        rollout: r.name.clone(),
        salt: r.salt.clone(),
        candidate: r.candidate.clone(),
        stage: first.map(|s| s.name.clone()).unwrap_or_default(),
        percent: first.map(|s| s.percent).unwrap_or(0.0),
        shadow_percent: first.map(|s| s.shadow_percent).unwrap_or(0.0),
        tenant_caps: r.tenants.clone(),
    }
}

pub struct Inner {
    pub config: Arc<Config>,
    pub snapshot: ArcSwap<Snapshot>,
    pub providers: HashMap<String, Provider>,
    pub metrics: Metrics,
    pub store: Arc<dyn Store>,
    pub writer: Writer,
    pub shadow: ShadowDispatcher,
    pub clock: Arc<dyn Clock>,
    /// Background work (shadow calls, controller) tracked for shutdown.
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
    /// Admin bearer token, read once from `server.admin_token_env`.
    pub admin_token: Option<String>,
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

/// Options a test or embedder may change; defaults are what `rampart serve` uses.
pub struct BuildOptions {
    pub clock: Arc<dyn Clock>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            clock: Arc::new(SystemClock),
        }
    }
}

impl Gateway {
    /// Build the gateway over an opened store. Must be called inside a Tokio runtime.
    pub fn build(
        config: Config,
        store: Arc<dyn Store>,
        opts: BuildOptions,
    ) -> Result<Gateway, String> {
        let providers = providers::build_all(&config)?;
        let metrics = Metrics::new(&config);
        let writer = Writer::spawn(
            store.clone(),
            WriterConfig {
                capacity: config.store.queue_capacity,
                batch_size: config.store.batch_size,
                flush_interval: config.store.flush_interval,
            },
        );
        let admin_token = config
            .server
            .admin_token_env
            .as_deref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|t| !t.is_empty());
        let mut snapshot = Snapshot::default();
        for r in config.rollouts.values() {
            snapshot
                .by_route
                .insert(r.route.clone(), Arc::new(initial_view(r)));
        }
        let shadow = ShadowDispatcher::new(&config.shadow);
        let tasks = TaskTracker::new();
        let inner = Inner {
            config: Arc::new(config),
            snapshot: ArcSwap::from_pointee(snapshot),
            providers,
            metrics,
            store,
            writer,
            shadow,
            clock: opts.clock,
            tasks,
            shutdown: CancellationToken::new(),
            admin_token,
        };
        let gw = Gateway(Arc::new(inner));
        gw.publish_rollout_metrics();
        Ok(gw)
    }

    /// Swap in a new position for one rollout; every request admitted afterwards sees it.
    pub fn set_view(&self, view: RolloutView) {
        let route = self
            .config
            .rollouts
            .get(&view.rollout)
            .map(|r| r.route.clone());
        let Some(route) = route else { return };
        self.snapshot.rcu(|cur| {
            let mut next = Snapshot::clone(cur);
            next.by_route.insert(route.clone(), Arc::new(view.clone()));
            next
        });
        self.publish_rollout_metrics();
    }

    pub fn view_of(&self, rollout: &str) -> Option<Arc<RolloutView>> {
        let route = &self.config.rollouts.get(rollout)?.route;
        self.snapshot.load().by_route.get(route).cloned()
    }

    fn publish_rollout_metrics(&self) {
        let snap = self.snapshot.load();
        for view in snap.by_route.values() {
            self.metrics
                .rollout_percent
                .get_or_create(&crate::metrics::RolloutLabels {
                    rollout: view.rollout.clone(),
                })
                .set(view.percent);
        }
    }
}
