//! The data plane's shared handle: what serving, mirroring and recording a request need, and
//! nothing of the control plane.
//!
//! Routes and providers are fixed at start-up. The live position of every rollout lives in a
//! [`Routing`] snapshot: the request path loads it without any lock. Only the controller
//! publishes a new one (through its control handle), so a decision can never be overwritten by
//! a read-modify-write elsewhere; every request admitted afterwards sees it at once.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rampart_core::config::Config;
use rampart_core::routing::RolloutView;
use rampart_store::{Store, Writer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::providers::Provider;
use crate::shadow::ShadowDispatcher;
use crate::signal::{Signal, SignalSender};

/// Live rollout positions, keyed by route name.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub by_route: HashMap<String, Arc<RolloutView>>,
}

/// The routing snapshot. The data plane reads it ([`Routing::load`]); the controller is the
/// only writer ([`Routing::publish`]).
#[derive(Debug, Default)]
pub struct Routing(ArcSwap<Snapshot>);

impl Routing {
    pub fn new(snapshot: Snapshot) -> Routing {
        Routing(ArcSwap::from_pointee(snapshot))
    }

    /// The current snapshot (lock-free).
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.0.load()
    }

    /// Swap in one route's view. Called by the controller only.
    pub(crate) fn publish(&self, route: &str, view: RolloutView) {
        let view = Arc::new(view);
        self.0.rcu(|cur| {
            let mut next = Snapshot::clone(cur);
            next.by_route.insert(route.to_string(), view.clone());
            next
        });
    }
}

/// Everything the data plane shares.
pub struct PlaneInner {
    pub config: Arc<Config>,
    pub snapshot: Arc<Routing>,
    pub providers: HashMap<String, Provider>,
    pub metrics: Arc<Metrics>,
    pub store: Arc<dyn Store>,
    pub writer: Writer,
    pub shadow: ShadowDispatcher,
    pub judges: crate::judge::Judges,
    pub clock: Arc<dyn Clock>,
    /// Background work (shadow calls) tracked for shutdown.
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
    /// Fires at the shutdown grace deadline: open streams end with an error event and record
    /// themselves, so no stream is cut without an event.
    pub cut: CancellationToken,
    pub signals: SignalSender,
    /// OpenTelemetry spans (no-ops without `[telemetry] otlp_endpoint`).
    pub telemetry: crate::telemetry::Telemetry,
}

/// Cheap-to-clone handle on the data plane.
#[derive(Clone)]
pub struct DataPlane(pub Arc<PlaneInner>);

impl std::ops::Deref for DataPlane {
    type Target = PlaneInner;
    fn deref(&self) -> &PlaneInner {
        &self.0
    }
}

impl DataPlane {
    /// The live view of a rollout, by rollout name.
    pub fn view_of(&self, rollout: &str) -> Option<Arc<RolloutView>> {
        let route = &self.config.rollouts.get(rollout)?.route;
        self.snapshot.load().by_route.get(route).cloned()
    }

    /// Tell the controller about something it measures; never waits (overflow is counted).
    pub fn signal(&self, s: Signal) {
        if !self.signals.try_send(s) {
            self.metrics.event_dropped("controller_queue_full");
        }
    }
}
