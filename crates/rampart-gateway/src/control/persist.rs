//! Durable control changes: every rollout state, audit row and tenant cap the controller
//! decides is written by one task, in order, as a compare-and-set on the rollout's version
//! ([`rampart_store::RolloutStore::apply_change`]: state, cap and audit rows in one
//! transaction), and retried until it is stored.
//!
//! The controller never waits on the database: it routes first (the data plane sees a
//! rollback at once), queues the change here, and learns what became of it from a [`Report`]:
//! - `Applied`: stored at a new version;
//! - `Conflict`: another replica (or a lost answer) changed the rollout first; nothing was
//!   written, and the report carries the stored row, on which the controller re-applies its
//!   change (or refuses it) in a new *lineage*;
//! - `Skipped`: queued behind a conflict in the same lineage, so based on a version that is
//!   gone; the controller re-applies it with the conflict's;
//! - `Failed`: a one-attempt write (a tenant cap) that the store refused.
//!
//! The writer keeps, per rollout, the version the next change of the current lineage expects;
//! a write of a newer lineage starts from the version it carries.
//!
//! While a change is not stored:
//! - `/readyz` answers `degraded: …` ([`WriteHealth::degraded`]),
//! - `rampart_control_writes_pending` counts the writes waiting and
//!   `rampart_control_write_failures_total` every failed attempt,
//! - one critical alert per rollout and failure streak says the change is applied but not
//!   stored (a restart now would lose it).
//!
//! Retries back off from [`FIRST_BACKOFF`], doubling up to [`MAX_BACKOFF`]. On shutdown the
//! queue is drained with the same retries for as long as the gateway's drain allows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_core::rollout::{Alert, AlertKind, Severity};
use rampart_store::{AuditEntry, CasOutcome, RolloutChange, Store, StoredRollout};
use tokio::sync::mpsc;

use super::alerts::Alerts;
use crate::clock::Clock;
use crate::metrics::Metrics;

pub const FIRST_BACKOFF: Duration = Duration::from_millis(50);
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One control change to store.
#[derive(Debug, Clone)]
pub struct Write {
    pub rollout: String,
    /// The controller's lineage for this rollout: bumped whenever it takes the stored row as
    /// its base (after a conflict, or a change made by another replica).
    pub lineage: u64,
    /// The stored version the lineage started from (0: no row yet).
    pub base: i64,
    /// The new state as JSON; `None` keeps the stored one.
    pub state_json: Option<String>,
    pub tenant_cap: Option<(String, f64)>,
    pub audit: Vec<AuditEntry>,
    pub at_ms: i64,
    /// One attempt only: a failure is reported, not retried (tenant caps).
    pub once: bool,
}

/// What became of a write.
#[derive(Debug, Clone)]
pub enum Outcome {
    Applied { version: i64 },
    Conflict { current: Option<StoredRollout> },
    Skipped,
    Failed(String),
}

/// A write's outcome, sent back to the controller.
#[derive(Debug)]
pub struct Report {
    pub seq: u64,
    pub rollout: String,
    pub lineage: u64,
    pub outcome: Outcome,
}

/// The controller's end of the reports.
pub type Reports = mpsc::UnboundedReceiver<Report>;

/// Where the writer is in one rollout's lineage.
#[derive(Debug, Clone, Copy)]
struct Chain {
    lineage: u64,
    expected: i64,
    /// A conflict ended this lineage: its later writes are skipped.
    dead: bool,
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

/// The controller's end: queue writes; their outcomes come back as [`Report`]s.
pub struct Persister {
    tx: mpsc::UnboundedSender<(u64, Write)>,
    next: u64,
    health: Arc<WriteHealth>,
    metrics: Arc<Metrics>,
}

/// The writing task, consumed by [`WriterTask::run`].
pub struct WriterTask {
    rx: mpsc::UnboundedReceiver<(u64, Write)>,
    reports: mpsc::UnboundedSender<Report>,
    chains: HashMap<String, Chain>,
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

pub fn channel(d: WriterDeps) -> (Persister, WriterTask, Reports) {
    let WriterDeps {
        store,
        metrics,
        alerts,
        clock,
        health,
    } = d;
    let (tx, rx) = mpsc::unbounded_channel();
    let (rtx, rrx) = mpsc::unbounded_channel();
    (
        Persister {
            tx,
            next: 0,
            health: health.clone(),
            metrics: metrics.clone(),
        },
        WriterTask {
            rx,
            reports: rtx,
            chains: HashMap::new(),
            store,
            health,
            metrics,
            alerts,
            clock,
        },
        rrx,
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

    pub fn health(&self) -> Arc<WriteHealth> {
        self.health.clone()
    }
}

impl WriterTask {
    /// Store every queued write, in order, each retried until stored (or reported as
    /// conflicting). Ends when the controller drops its [`Persister`] and the queue is empty.
    pub async fn run(mut self) {
        while let Some((seq, w)) = self.rx.recv().await {
            let outcome = self.store_one(&w).await;
            self.health.set(|h| {
                h.0 = h.0.saturating_sub(1);
                h.1 = None;
            });
            self.metrics.rollout.writes_pending.dec();
            let _ = self.reports.send(Report {
                seq,
                rollout: w.rollout,
                lineage: w.lineage,
                outcome,
            });
        }
    }

    async fn store_one(&mut self, w: &Write) -> Outcome {
        let chain = self.chains.entry(w.rollout.clone()).or_insert(Chain {
            lineage: w.lineage,
            expected: w.base,
            dead: false,
        });
        if w.lineage > chain.lineage {
            *chain = Chain {
                lineage: w.lineage,
                expected: w.base,
                dead: false,
            };
        }
        if w.lineage < chain.lineage || chain.dead {
            return Outcome::Skipped;
        }
        let change = RolloutChange {
            rollout: w.rollout.clone(),
            expected_version: chain.expected,
            state_json: w.state_json.clone(),
            tenant_cap: w.tenant_cap.clone(),
            audit: w.audit.clone(),
            at_ms: w.at_ms,
        };
        let outcome = self.store_until_stored(&change, w.once).await;
        let chain = self.chains.entry(w.rollout.clone()).or_insert(Chain {
            lineage: w.lineage,
            expected: w.base,
            dead: false,
        });
        match &outcome {
            Outcome::Applied { version } => chain.expected = *version,
            Outcome::Conflict { .. } => chain.dead = true,
            Outcome::Skipped | Outcome::Failed(_) => {}
        }
        outcome
    }

    async fn store_until_stored(&self, change: &RolloutChange, once: bool) -> Outcome {
        let mut backoff = FIRST_BACKOFF;
        let mut alerted = false;
        let mut retried = false;
        loop {
            let (store, job) = (self.store.clone(), change.clone());
            let res = tokio::task::spawn_blocking(move || store.apply_change(&job)).await;
            let err = match res {
                Ok(Ok(CasOutcome::Applied { version })) => return Outcome::Applied { version },
                Ok(Ok(CasOutcome::Conflict { current })) => {
                    return match current {
                        // A retry after an attempt whose answer was lost, but which committed.
                        Some(c) if retried && committed(change, &c) => {
                            Outcome::Applied { version: c.version }
                        }
                        current => Outcome::Conflict { current },
                    };
                }
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            self.metrics.rollout.write_failures.inc();
            if once {
                return Outcome::Failed(err);
            }
            let rollout = change.rollout.as_str();
            tracing::error!(%rollout, error = %err, retry_in = ?backoff, "cannot store a control change; retrying");
            self.health.set(|h| h.1 = Some(err.clone()));
            if !alerted {
                alerted = true;
                self.alerts
                    .send(not_stored_alert(rollout, &err, self.clock.now_ms()));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            retried = true;
        }
    }
}

/// Whether the stored row is exactly what `change` would have made of its expected version.
fn committed(change: &RolloutChange, current: &StoredRollout) -> bool {
    current.version == change.expected_version + 1
        && change
            .state_json
            .as_ref()
            .is_none_or(|s| *s == current.state_json)
        && change
            .tenant_cap
            .as_ref()
            .is_none_or(|(t, m)| current.tenant_caps.get(t) == Some(m))
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
