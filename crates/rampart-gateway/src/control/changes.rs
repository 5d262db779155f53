//! What the controller does with its changes once it knows their fate, and with the changes
//! other replicas stored.
//!
//! Invariants (the correctness of several replicas rests on them):
//! - A change is applied to routing at once and stored as a compare-and-set on the version
//!   its lineage started from; no change is lost: when another change was stored first, the
//!   stored row becomes the new base (a new lineage) and every change still in flight is
//!   applied again on it, in order, by its [`Intent`]: an operator's command through the same
//!   pure `apply` (so a stored rollback refuses a racing promote, as on one node), a tenant
//!   cap as is, the controller's own decision by checking the rollout again at once.
//! - An operator's answer is sent only once its change is stored, or refused.
//! - A stored row from another replica is adopted only when it is newer than the controller's
//!   and nothing of its own is in flight for that rollout (what is in flight will be stored on
//!   top of it, or conflict and be re-applied on it).

use rampart_core::rollout::apply;
use rampart_store::{AuditEntry, StoredRollout};

use super::cluster::ClusterEvent;
use super::controller::{Controller, stored_state, write_for};
use super::handle::ControlError;
use super::persist::{Outcome, Report};
use super::runtime::{Done, Intent, Pending};

fn answer(done: Option<Done>, result: Result<super::RolloutStatus, ControlError>) {
    if let Some(d) = done {
        let _ = d.send(result);
    }
}

impl Controller {
    /// Apply an operator's intent (or one being re-applied) to the rollout's current state.
    pub(super) fn apply_intent(&mut self, rollout: &str, intent: Intent, done: Option<Done>) {
        let now = self.ctx.clock.now_ms();
        let Some(rt) = self.rollouts.get_mut(rollout) else {
            answer(done, Err(ControlError::UnknownRollout(rollout.to_string())));
            return;
        };
        match intent {
            Intent::Command(cmd) => match apply(&rt.cfg, &rt.state, &cmd, now) {
                Ok((state, actions)) => {
                    rt.enter(state);
                    self.execute(rollout, actions, Intent::Command(cmd), done);
                }
                Err(e) => answer(done, Err(e.into())),
            },
            Intent::Cap {
                tenant,
                max_percent,
            } => {
                // Stored first, then applied ([`Controller::on_report`]): a cap the store
                // refuses is not applied.
                let audit = AuditEntry {
                    rollout: rollout.to_string(),
                    ts_ms: now,
                    actor: "admin-api".into(),
                    action: "tenant_cap".into(),
                    from_state: String::new(),
                    to_state: String::new(),
                    reason: format!("tenant {tenant} capped at {max_percent}%"),
                    details: serde_json::json!({"tenant": tenant, "max_percent": max_percent}),
                };
                let cap = Some((tenant.clone(), max_percent));
                let w = write_for(rt, now, None, cap, vec![audit], true);
                let intent = Intent::Cap {
                    tenant,
                    max_percent,
                };
                self.queue(rollout, w, intent, done);
            }
            Intent::Note(entry) => {
                let w = write_for(rt, now, None, None, vec![entry.clone()], false);
                self.queue(rollout, w, Intent::Note(entry), done);
            }
            Intent::Auto | Intent::Init => {
                rt.next_check_ms = now;
                answer(done, Err(ControlError::Stopped));
            }
        }
    }

    /// What became of a write.
    pub(super) fn on_report(&mut self, report: Report) {
        let Some(rt) = self.rollouts.get_mut(&report.rollout) else {
            return;
        };
        // Not found: moved into a newer lineage by an earlier conflict's rebase.
        let Some(pos) = rt.pending.iter().position(|p| p.seq == report.seq) else {
            return;
        };
        match report.outcome {
            Outcome::Applied { version } => {
                let Some(p) = rt.pending.remove(pos) else {
                    return;
                };
                rt.stored_version = rt.stored_version.max(version);
                if let Intent::Cap {
                    tenant,
                    max_percent,
                } = &p.intent
                {
                    rt.caps.insert(tenant.clone(), *max_percent);
                    let rt = &self.rollouts[&report.rollout];
                    self.set_view(rt);
                }
                let status = self.status_of(&self.rollouts[&report.rollout]);
                answer(p.done, Ok(status));
            }
            Outcome::Failed(e) => {
                let p = rt.pending.remove(pos);
                let msg = format!("cannot store the tenant cap: {e}");
                answer(p.and_then(|p| p.done), Err(ControlError::NotStored(msg)));
            }
            Outcome::Conflict { current } => self.rebase(&report.rollout, current),
            Outcome::Skipped => {
                // Queued behind a conflict of its lineage, whose rebase moved every pending
                // change: a skipped change still here would be a bug; re-apply it anyway.
                tracing::warn!(rollout = %report.rollout, "a skipped control change was still pending");
                if let Some(p) = rt.pending.remove(pos) {
                    self.apply_intent(&report.rollout, p.intent, p.done);
                }
            }
        }
        self.publish_status();
    }

    /// Another change was stored first: take the stored row as the new base and apply every
    /// change still in flight again on it, in order.
    fn rebase(&mut self, rollout: &str, current: Option<StoredRollout>) {
        let Some(rt) = self.rollouts.get_mut(rollout) else {
            return;
        };
        let moved: Vec<Pending> = rt.pending.drain(..).collect();
        tracing::info!(%rollout, in_flight = moved.len(), "another change was stored first; applying ours again on it");
        self.ctx.metrics.rollout.write_failures.inc();
        match current {
            Some(row) => self.take_row(rollout, row),
            None => {
                // No row at all (removed under us): store ours afresh.
                if let Some(rt) = self.rollouts.get_mut(rollout) {
                    rt.lineage += 1;
                    rt.lineage_base = 0;
                    rt.stored_version = 0;
                }
                self.queue_state(rollout, Vec::new(), Intent::Init, None);
            }
        }
        for p in moved {
            match p.intent {
                Intent::Init => {}
                Intent::Auto => {
                    if let Some(rt) = self.rollouts.get_mut(rollout) {
                        rt.next_check_ms = i64::MIN;
                    }
                }
                intent => self.apply_intent(rollout, intent, p.done),
            }
        }
    }

    /// Make a stored row the rollout's state and the base of a new lineage; route by it.
    fn take_row(&mut self, rollout: &str, row: StoredRollout) {
        let Some(rt) = self.rollouts.get_mut(rollout) else {
            return;
        };
        rt.lineage += 1;
        rt.lineage_base = row.version;
        rt.stored_version = row.version;
        if let Some(state) = stored_state(rollout, &row) {
            rt.enter(state);
        }
        rt.caps = row.tenant_caps;
        let rt = &self.rollouts[rollout];
        self.set_view(rt);
        self.publish_trip_metric(rt);
    }

    pub(super) fn on_cluster(&mut self, ev: ClusterEvent) {
        match ev {
            ClusterEvent::Adopt { rollout, row } => {
                let Some(rt) = self.rollouts.get(&rollout) else {
                    return;
                };
                if row.version <= rt.stored_version || !rt.pending.is_empty() {
                    return;
                }
                tracing::info!(%rollout, version = row.version, "adopting a change stored by another replica");
                self.take_row(&rollout, row);
            }
            ClusterEvent::Leading(leading) => self.on_leading(leading),
            ClusterEvent::Stale(stale) => {
                self.stale = stale;
                for rt in self.rollouts.values() {
                    self.set_view(rt);
                }
            }
        }
        self.publish_status();
    }

    fn on_leading(&mut self, leading: bool) {
        self.leading = leading;
        self.reset_fleet();
        let Some(replica) = self
            .ctx
            .cluster
            .as_ref()
            .map(|c| c.health.replica_id.clone())
        else {
            return;
        };
        if !leading {
            tracing::warn!(%replica, "this replica no longer leads the controller");
            for rt in self.rollouts.values_mut() {
                rt.last_eval = None;
            }
            return;
        }
        tracing::info!(%replica, "this replica leads the controller");
        let now = self.ctx.clock.now_ms();
        let names: Vec<String> = self.rollouts.keys().cloned().collect();
        for name in names {
            let Some(rt) = self.rollouts.get_mut(&name) else {
                continue;
            };
            rt.next_check_ms = now;
            let phase = rt.state.phase_name().to_string();
            let note = AuditEntry {
                rollout: name.clone(),
                ts_ms: now,
                actor: replica.clone(),
                action: "leader".into(),
                from_state: phase.clone(),
                to_state: phase,
                reason: format!("replica {replica} took the controller's lease"),
                details: serde_json::json!({"replica": replica}),
            };
            self.apply_intent(&name, Intent::Note(note), None);
        }
    }
}
