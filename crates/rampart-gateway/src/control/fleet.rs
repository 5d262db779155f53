//! Guardrails over the whole fleet: the leader's window merged from every replica's
//! per-second aggregate rows, never from raw events.
//!
//! Every replica (several replicas only) seals its window's completed seconds each tick and
//! hands the rows to the aggregates task ([`super::cluster::aggregates`]), which writes them;
//! the request path never waits on any of it. The leader keeps, per rollout, a [`Fleet`]: a
//! [`Window`] fed by the rows of all replicas, its own included (its own signals feed only its
//! local window, which is flushed like the others': nothing is counted twice). Its gates and
//! guardrails read that window.
//!
//! Cost per check: the leader reads the rows of the last [`GRACE_S`] seconds (at most
//! replicas × sides × `GRACE_S` rows per rollout) and absorbs the ones it has not seen, once
//! each; a check merges one bucket per second of the guardrail window. Neither grows with the
//! traffic. A fleet window is rebuilt from the store (the window's rows, plus the stage's
//! counters summed in one query when the stage began earlier) when this replica starts leading
//! and when a stage began before the rows it holds (a state adopted from another replica).
//!
//! Invariants: a row is absorbed once (the `seen` keys cover every second an incremental read
//! can return); until a fleet window is complete (rebuilt since the replica leads) the leader
//! evaluates nothing but a kill-switch trip on its own traffic, as a follower does; a rebuild
//! answer is used only when its generation is the fleet's latest. A row written more than
//! [`GRACE_S`] seconds after its second (a replica cut off from the store) is missed by this
//! leader's window but counted by the next rebuild.

use std::collections::HashSet;

use rampart_core::config::RolloutConfig;
use rampart_core::rollout::Observations;
use rampart_stats::sketch::DdSketch;
use rampart_store::{AggregateRow, AggregateSide};
use tokio::sync::mpsc;

use super::cluster::aggregates::{self, Answer, Rebuild, Rebuilt, Work};
use super::controller::Controller;
use super::window::Window;

/// How far back (seconds) the leader's incremental read goes: a replica's row is written
/// within about a tick of its second's end, so a few seconds cover it with room to spare.
pub const GRACE_S: i64 = 10;
/// Rows waiting for the aggregates task at most (beyond: the oldest are dropped and counted).
const MAX_OUTBOX: usize = aggregates::MAX_PENDING;
/// A read unanswered for this long is given up (the task is stuck on the store).
const READ_TIMEOUT_MS: i64 = 30_000;

/// The leader's merged window of one rollout.
#[derive(Default)]
pub struct Fleet {
    pub window: Window,
    seen: HashSet<(i64, String, AggregateSide)>,
    /// Rebuilt since this replica leads, and every stage second since then is in it.
    pub complete: bool,
    generation: u64,
    awaiting: bool,
    /// The buckets hold every row read from this second on.
    covered_from: i64,
}

/// First second of the guardrail window ending at `now_ms`.
fn window_start(cfg: &RolloutConfig, now_ms: i64) -> i64 {
    (now_ms - cfg.guardrails.window.as_millis() as i64).div_euclid(1000)
}

/// The first second whose rows count in a stage that began at `epoch_ms` (whole seconds).
fn first_stage_second(epoch_ms: i64) -> i64 {
    (epoch_ms + 999).div_euclid(1000)
}

fn decode(row: &AggregateRow) -> Option<DdSketch> {
    let bytes = row.latency.as_ref()?;
    match DdSketch::from_bytes(bytes) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(rollout = %row.rollout, replica = %row.replica, error = %e, "unreadable latency sketch in a window aggregate");
            None
        }
    }
}

impl Fleet {
    /// Forget everything: to be rebuilt (a new leadership, or none).
    pub fn invalidate(&mut self) {
        self.generation += 1;
        self.window = Window::default();
        self.seen.clear();
        self.complete = false;
        self.awaiting = false;
    }

    /// A new stage epoch: counted from the buckets when they cover it, else rebuilt.
    pub fn restage(&mut self, epoch_ms: i64) {
        if self.complete && first_stage_second(epoch_ms) >= self.covered_from {
            self.window.restage_from_buckets(epoch_ms);
        } else {
            self.invalidate();
            self.window.reset_stage(epoch_ms);
        }
    }

    /// The fleet's observations, once complete.
    pub fn observations(&mut self, cfg: &RolloutConfig, now_ms: i64) -> Option<Observations> {
        if !self.complete {
            return None;
        }
        self.covered_from = self.covered_from.max(window_start(cfg, now_ms));
        Some(self.window.observations(cfg, now_ms))
    }

    fn absorb(&mut self, cfg: &RolloutConfig, row: &AggregateRow, now_ms: i64) {
        if !self
            .seen
            .insert((row.second, row.replica.clone(), row.side))
        {
            return;
        }
        let sketch = decode(row);
        self.window
            .absorb(row, sketch.as_ref(), window_start(cfg, now_ms));
    }

    fn rebuilt(&mut self, cfg: &RolloutConfig, r: Rebuilt, now_ms: i64) {
        if r.ask.generation != self.generation || !self.awaiting {
            return;
        }
        self.awaiting = false;
        let Some((rows, totals)) = r.data else {
            return;
        };
        let epoch_ms = self.window.stage_since_ms;
        self.window = Window::default();
        self.window.reset_stage(epoch_ms);
        self.seen.clear();
        self.window.add_stage_totals(&totals);
        for row in &rows {
            self.absorb(cfg, row, now_ms);
        }
        self.covered_from = r.ask.window_start;
        self.complete = true;
    }

    /// What to ask for a rebuild, if one is due.
    fn rebuild(&mut self, rollout: &str, cfg: &RolloutConfig, now_ms: i64) -> Option<Rebuild> {
        if self.complete || self.awaiting {
            return None;
        }
        self.awaiting = true;
        let start = window_start(cfg, now_ms);
        let first = first_stage_second(self.window.stage_since_ms);
        Some(Rebuild {
            rollout: rollout.to_string(),
            generation: self.generation,
            window_start: start,
            stage_from: (first < start).then_some(first),
        })
    }
}

/// The controller's end of the aggregates task.
pub struct FleetLink {
    pub work: mpsc::Sender<Work>,
    /// Sealed rows not handed to the task yet.
    outbox: Vec<AggregateRow>,
    dropped: u64,
    /// When the read in flight was asked for.
    reading_since: Option<i64>,
}

impl FleetLink {
    pub fn new(work: mpsc::Sender<Work>) -> FleetLink {
        FleetLink {
            work,
            outbox: Vec::new(),
            dropped: 0,
            reading_since: None,
        }
    }
}

impl Controller {
    /// Seal this replica's completed seconds and hand them to the aggregates task, with the
    /// leader's reads of the fleet's rows (one read at a time). Never waits.
    pub(super) fn fleet_tick(&mut self, now_ms: i64) {
        let Some(replica) = self
            .ctx
            .cluster
            .as_ref()
            .map(|c| c.health.replica_id.clone())
        else {
            return;
        };
        let Some(link) = self.fleet.as_mut() else {
            return;
        };
        for (name, rt) in self.rollouts.iter_mut() {
            link.outbox.extend(rt.window.seal(name, &replica, now_ms));
        }
        let excess = link.outbox.len().saturating_sub(MAX_OUTBOX);
        if excess > 0 {
            link.outbox.drain(..excess);
            link.dropped += excess as u64;
            tracing::warn!(
                dropped = link.dropped,
                "window aggregates dropped: the aggregates task is behind"
            );
        }
        let stuck = link
            .reading_since
            .is_some_and(|t| now_ms - t > READ_TIMEOUT_MS);
        let mut work = Work::default();
        if self.leading && (link.reading_since.is_none() || stuck) {
            work.recent_since = now_ms.div_euclid(1000) - GRACE_S;
            for (name, rt) in self.rollouts.iter_mut() {
                let Some(fleet) = rt.fleet.as_mut() else {
                    continue;
                };
                if stuck {
                    fleet.awaiting = false;
                }
                match fleet.rebuild(name, &rt.cfg, now_ms) {
                    Some(r) => work.rebuilds.push(r),
                    None => work.recent.push(name.clone()),
                }
            }
        }
        if link.outbox.is_empty() && !work.reads() {
            return;
        }
        work.flush = std::mem::take(&mut link.outbox);
        let reads = work.reads();
        match link.work.try_send(work) {
            Ok(()) => {
                if reads {
                    link.reading_since = Some(now_ms);
                }
            }
            Err(e) => {
                let work = match e {
                    mpsc::error::TrySendError::Full(w) | mpsc::error::TrySendError::Closed(w) => w,
                };
                link.outbox = work.flush;
                for r in work.rebuilds {
                    if let Some(f) = self
                        .rollouts
                        .get_mut(&r.rollout)
                        .and_then(|rt| rt.fleet.as_mut())
                    {
                        f.awaiting = false;
                    }
                }
            }
        }
    }

    /// The fleet's rows read for the leader.
    pub(super) fn on_fleet_rows(&mut self, answer: Answer) {
        let now = self.ctx.clock.now_ms();
        if let Some(link) = self.fleet.as_mut() {
            link.reading_since = None;
        }
        for r in answer.rebuilt {
            if let Some(rt) = self.rollouts.get_mut(&r.ask.rollout)
                && let Some(f) = rt.fleet.as_mut()
            {
                f.rebuilt(&rt.cfg, r, now);
            }
        }
        let oldest = now.div_euclid(1000) - GRACE_S - 2;
        for row in &answer.recent {
            if let Some(rt) = self.rollouts.get_mut(&row.rollout)
                && let Some(f) = rt.fleet.as_mut()
                && f.complete
            {
                f.absorb(&rt.cfg, row, now);
            }
        }
        for rt in self.rollouts.values_mut() {
            if let Some(f) = rt.fleet.as_mut() {
                f.seen.retain(|(second, _, _)| *second >= oldest);
            }
        }
    }

    /// Leading or not any more: every fleet window is rebuilt before it is used again.
    pub(super) fn reset_fleet(&mut self) {
        for rt in self.rollouts.values_mut() {
            if let Some(f) = rt.fleet.as_mut() {
                f.invalidate();
                f.window.reset_stage(rt.state.stage_epoch_ms());
            }
        }
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
