//! The gateway's shared state and the data plane's snapshot.
//!
//! Routes and providers are fixed at start-up. The live position of every rollout lives in an
//! [`ArcSwap`] snapshot: the request path loads it without any lock, and the controller (or an
//! operator through the admin API) swaps in a new one, which every request admitted afterwards
//! sees at once.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rampart_core::config::Config;
use rampart_core::routing::RolloutView;
use rampart_store::{Store, Writer, WriterConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerts::Alerts;
use crate::clock::{Clock, SystemClock};
use crate::controller::{self, ControllerHandle};
use crate::metrics::Metrics;
use crate::providers::{self, Provider};
use crate::shadow::ShadowDispatcher;

/// Live rollout positions, keyed by route name.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub by_route: HashMap<String, Arc<RolloutView>>,
}

pub struct Inner {
    pub config: Arc<Config>,
    pub snapshot: ArcSwap<Snapshot>,
    pub providers: HashMap<String, Provider>,
    pub metrics: Metrics,
    pub store: Arc<dyn Store>,
    pub writer: Writer,
    pub shadow: ShadowDispatcher,
    pub judges: crate::judge::Judges,
    pub clock: Arc<dyn Clock>,
    /// Background work (shadow calls, controller) tracked for shutdown.
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
    /// Admin bearer token, read once from `server.admin_token_env`.
    pub admin_token: Option<String>,
    pub controller: ControllerHandle,
    pub alerts: Alerts,
    /// Tenant caps set through the admin API, per rollout.
    pub tenant_overrides: ArcSwap<HashMap<String, std::collections::BTreeMap<String, f64>>>,
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
        let metrics = Metrics::new(&config);
        let providers =
            providers::build_all(&config, &metrics.provider_retries).map_err(|e| e.to_string())?;
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
        // Restore each rollout before serving, so a gateway restarted after a trip comes back
        // rolled back rather than at the old percent, even for its first request.
        let now = opts.clock.now_ms();
        let mut restored = std::collections::BTreeMap::new();
        let mut overrides = HashMap::new();
        let mut snapshot = Snapshot::default();
        for r in config.rollouts.values() {
            let (state, loaded) = controller::load_state(store.as_ref(), &r.name, now);
            let mut view = state.view(r);
            let caps = store
                .tenant_caps(&r.name)
                .map_err(|e| format!("cannot read the tenant caps of rollout `{}`: {e}", r.name))?;
            if !caps.is_empty() {
                view.tenant_caps.extend(caps.clone());
                overrides.insert(r.name.clone(), caps);
            }
            snapshot.by_route.insert(r.route.clone(), Arc::new(view));
            restored.insert(r.name.clone(), (state, loaded));
        }
        let shadow = ShadowDispatcher::new(&config.shadow);
        let judges = crate::judge::Judges::new(&config);
        let tasks = TaskTracker::new();
        let (alerts, alert_task) = crate::alerts::build(&config.alerts, metrics.alerts.clone())?;
        let (controller, inbox) = controller::channel(config.store.queue_capacity);
        let inner = Inner {
            config: Arc::new(config),
            snapshot: ArcSwap::from_pointee(snapshot),
            providers,
            metrics,
            store,
            writer,
            shadow,
            judges,
            clock: opts.clock,
            tasks,
            shutdown: CancellationToken::new(),
            admin_token,
            controller,
            alerts,
            tenant_overrides: ArcSwap::from_pointee(overrides),
        };
        let gw = Gateway(Arc::new(inner));
        gw.publish_rollout_metrics();
        // Background work outside the tracker: it must outlive the drain of request-driven tasks.
        tokio::spawn(controller::run(gw.clone(), inbox, restored));
        if let Some(task) = alert_task {
            tokio::spawn(task.run(gw.shutdown.clone()));
        }
        Ok(gw)
    }

    /// Cap a tenant's canary percent at runtime: stored first (it survives restarts and
    /// controller transitions), then applied to every request admitted afterwards. A cap that
    /// cannot be stored is not applied, and the error says why.
    pub async fn set_tenant_cap(
        &self,
        rollout: &str,
        tenant: &str,
        max_percent: f64,
    ) -> Result<(), String> {
        let store = self.store.clone();
        let (r, t, now) = (rollout.to_string(), tenant.to_string(), self.clock.now_ms());
        match tokio::task::spawn_blocking(move || store.save_tenant_cap(&r, &t, max_percent, now))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("cannot store the tenant cap: {e}")),
            Err(e) => return Err(format!("cannot store the tenant cap: {e}")),
        }
        self.tenant_overrides.rcu(|cur| {
            let mut next = HashMap::clone(cur);
            next.entry(rollout.to_string())
                .or_default()
                .insert(tenant.to_string(), max_percent);
            next
        });
        if let Some(view) = self.view_of(rollout) {
            self.set_view(RolloutView::clone(&view));
        }
        Ok(())
    }

    /// Swap in a new position for one rollout; every request admitted afterwards sees it.
    /// Runtime tenant caps are merged over the configured ones.
    pub fn set_view(&self, mut view: RolloutView) {
        if let Some(o) = self.tenant_overrides.load().get(&view.rollout) {
            for (t, cap) in o {
                view.tenant_caps.insert(t.clone(), *cap);
            }
        }
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

    /// Tell the controller about something it measures; never waits (overflow is counted).
    pub fn signal(&self, s: controller::Signal) {
        if self.controller.signals.try_send(s).is_err() {
            self.metrics.event_dropped("controller_queue_full");
        }
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
