//! Durable control changes: every rollout state, audit row and tenant cap the controller
//! decides is written by one task, in order, and retried until it is stored.
//!
//! The controller never waits on the database: it routes first (the data plane sees a
//! rollback at once), queues the writes here, and acknowledges an operator's order only once
//! its writes are stored (see [`Persister::stored`]). While a write is not stored:
//! - `/readyz` answers `degraded: …` ([`WriteHealth::degraded`]),
//! - `rampart_control_writes_pending` counts the writes waiting and
//!   `rampart_control_write_failures_total` every failed attempt,
//! - one critical alert per rollout and failure streak says the change is applied but not
//!   stored (a restart now would lose it).
//!
//! Retries back off from [`FIRST_BACKOFF`], doubling up to [`MAX_BACKOFF`]. On shutdown the
//! queue is drained with the same retries for as long as the gateway's drain allows.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_core::rollout::{Alert, AlertKind, Severity};
use rampart_store::{AuditEntry, Store, StoreError};
use tokio::sync::{mpsc, watch};

use super::alerts::Alerts;
use crate::clock::Clock;
use crate::metrics::Metrics;

pub const FIRST_BACKOFF: Duration = Duration::from_millis(50);
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One control change to store.
#[derive(Debug, Clone)]
pub enum Write {
    State {
        rollout: String,
        json: String,
        at_ms: i64,
    },
    Audit(AuditEntry),
    TenantCap {
        rollout: String,
        tenant: String,
        max_percent: f64,
        at_ms: i64,
    },
}

impl Write {
    fn rollout(&self) -> &str {
        match self {
            Write::State { rollout, .. } | Write::TenantCap { rollout, .. } => rollout,
            Write::Audit(e) => &e.rollout,
        }
    }

    pub(crate) fn store(&self, store: &dyn Store) -> Result<(), StoreError> {
        match self {
            Write::State {
                rollout,
                json,
                at_ms,
            } => store.save_rollout_state(rollout, json, *at_ms),
            Write::Audit(e) => store.append_audit(e),
            Write::TenantCap {
                rollout,
                tenant,
                max_percent,
                at_ms,
            } => store.save_tenant_cap(rollout, tenant, *max_percent, *at_ms),
        }
    }
}

/// Whether every control change is stored, for `/readyz`.
#[derive(Debug, Default)]
pub struct WriteHealth {
    /// Writes queued or being retried, and the last error while the oldest one fails.
    inner: Mutex<(u64, Option<String>)>,
}

impl WriteHealth {
    /// `Some(why)` while a control change is applied but not stored.
    pub fn degraded(&self) -> Option<String> {
        let g = self.inner.lock().ok()?;
        let (pending, err) = &*g;
        err.as_ref().map(|e| {
            format!("{pending} rollout state change(s) applied but not stored, retrying: {e}")
        })
    }

    fn set(&self, f: impl FnOnce(&mut (u64, Option<String>))) {
        if let Ok(mut g) = self.inner.lock() {
            f(&mut g);
        }
    }
}

/// The controller's end: queue writes, learn when they are stored.
pub struct Persister {
    tx: mpsc::UnboundedSender<(u64, Write)>,
    next: u64,
    stored: watch::Receiver<u64>,
    health: Arc<WriteHealth>,
    metrics: Arc<Metrics>,
}

/// The writing task, consumed by [`WriterTask::run`].
pub struct WriterTask {
    rx: mpsc::UnboundedReceiver<(u64, Write)>,
    stored: watch::Sender<u64>,
    store: Arc<dyn Store>,
    health: Arc<WriteHealth>,
    metrics: Arc<Metrics>,
    alerts: Alerts,
    clock: Arc<dyn Clock>,
}

/// What the writing task needs besides its queue.
pub struct WriterDeps {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub alerts: Alerts,
    pub clock: Arc<dyn Clock>,
    pub health: Arc<WriteHealth>,
}

pub fn channel(d: WriterDeps) -> (Persister, WriterTask) {
    let WriterDeps {
        store,
        metrics,
        alerts,
        clock,
        health,
    } = d;
    let (tx, rx) = mpsc::unbounded_channel();
    let (stx, srx) = watch::channel(0);
    (
        Persister {
            tx,
            next: 0,
            stored: srx,
            health: health.clone(),
            metrics: metrics.clone(),
        },
        WriterTask {
            rx,
            stored: stx,
            store,
            health,
            metrics,
            alerts,
            clock,
        },
    )
}

impl Persister {
    /// Queue a write; never waits. Returns its sequence number.
    pub fn queue(&mut self, w: Write) -> u64 {
        self.next += 1;
        self.health.set(|h| h.0 += 1);
        self.metrics.rollout.writes_pending.inc();
        if self.tx.send((self.next, w)).is_err() {
            tracing::error!("the control writer has stopped; a control change is not stored");
        }
        self.next
    }

    /// The sequence number of the newest write queued so far.
    pub fn last(&self) -> u64 {
        self.next
    }

    /// Watch the sequence number of the newest write stored (writes are stored in order).
    pub fn stored(&self) -> watch::Receiver<u64> {
        self.stored.clone()
    }

    pub fn health(&self) -> Arc<WriteHealth> {
        self.health.clone()
    }
}

impl WriterTask {
    /// Store every queued write, in order, each retried until stored. Ends when the
    /// controller drops its [`Persister`] and the queue is empty.
    pub async fn run(mut self) {
        while let Some((seq, w)) = self.rx.recv().await {
            self.store_until_stored(&w).await;
            self.health.set(|h| {
                h.0 = h.0.saturating_sub(1);
                h.1 = None;
            });
            self.metrics.rollout.writes_pending.dec();
            self.stored.send_replace(seq);
        }
    }

    async fn store_until_stored(&self, w: &Write) {
        let mut backoff = FIRST_BACKOFF;
        let mut alerted = false;
        loop {
            let (store, job) = (self.store.clone(), w.clone());
            let res = tokio::task::spawn_blocking(move || job.store(store.as_ref())).await;
            let err = match res {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            self.metrics.rollout.write_failures.inc();
            tracing::error!(rollout = %w.rollout(), error = %err, retry_in = ?backoff, "cannot store a control change; retrying");
            self.health.set(|h| h.1 = Some(err.clone()));
            if !alerted {
                alerted = true;
                self.alerts
                    .send(not_stored_alert(w.rollout(), &err, self.clock.now_ms()));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

fn not_stored_alert(rollout: &str, err: &str, at_ms: i64) -> Alert {
    Alert {
        severity: Severity::Critical,
        kind: AlertKind::Hold,
        rollout: rollout.to_string(),
        reason: format!(
            "a rollout state change is applied to routing but cannot be stored ({err}); \
             retrying until stored; a restart before then would undo it"
        ),
        stage: "state write".into(),
        action_taken: "retrying".into(),
        control_samples: 0,
        canary_samples: 0,
        at_ms,
        guardrails: Vec::new(),
    }
}
