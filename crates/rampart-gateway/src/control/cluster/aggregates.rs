//! The aggregates task: between the controller and the shared store's per-second window
//! aggregates ([`rampart_store::AggregateStore`]).
//!
//! The controller hands it [`Work`] through a small bounded queue, never waiting (when the
//! queue is full the controller keeps its rows for the next turn): the rows this replica sealed
//! (written in one insert; kept and retried when the store is away, at most [`MAX_PENDING`],
//! the oldest dropped and counted beyond that) and, on the leader, the reads of the fleet's
//! rows, whose [`Answer`] goes back to the controller. Store calls run on the blocking pool,
//! one at a time. Every ten minutes it deletes rows older than [`RETENTION_S`].

use std::collections::VecDeque;
use std::sync::Arc;

use rampart_store::{AggregateRow, AggregateTotal, Store, StoreError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{CallError, blocking};
use crate::clock::Clock;

/// Rows kept for a retry while the store cannot be written (about 20 minutes of one
/// rollout's rows from one replica).
pub const MAX_PENDING: usize = 5_000;
/// Rows older than this are deleted (a day).
pub const RETENTION_S: i64 = 86_400;
const PRUNE_EVERY_MS: i64 = 600_000;
/// How long the last write at shutdown may take.
const FINAL_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// One rollout's fleet window from scratch: its rows since `window_start` and, when its stage
/// began before that, the stage's counters summed over `[stage_from, window_start)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rebuild {
    pub rollout: String,
    pub generation: u64,
    pub window_start: i64,
    pub stage_from: Option<i64>,
}

/// What the controller asks for in one turn.
#[derive(Debug, Default)]
pub struct Work {
    /// Rows this replica sealed, to write.
    pub flush: Vec<AggregateRow>,
    /// Rows of these rollouts since `recent_since` (a second), the leader's incremental read.
    pub recent: Vec<String>,
    pub recent_since: i64,
    pub rebuilds: Vec<Rebuild>,
}

impl Work {
    pub fn reads(&self) -> bool {
        !self.recent.is_empty() || !self.rebuilds.is_empty()
    }
}

/// A rebuild's rows and totals (`None`: the read failed; ask again).
#[derive(Debug)]
pub struct Rebuilt {
    pub ask: Rebuild,
    pub data: Option<(Vec<AggregateRow>, Vec<AggregateTotal>)>,
}

/// The answer to a [`Work`] with reads: the rebuilds first, then the recent rows.
#[derive(Debug, Default)]
pub struct Answer {
    pub rebuilt: Vec<Rebuilt>,
    pub recent: Vec<AggregateRow>,
}

/// What the task works with.
pub struct Task {
    pub store: Arc<dyn Store>,
    pub replica: String,
    pub clock: Arc<dyn Clock>,
    pub work: mpsc::Receiver<Work>,
    pub answers: mpsc::Sender<Answer>,
    pub shutdown: CancellationToken,
}

fn unsupported() -> StoreError {
    StoreError::Unavailable("the store keeps no window aggregates".into())
}

impl Task {
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn rampart_store::AggregateStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CallError> {
        let store = self.store.clone();
        blocking(move || f(store.aggregates().ok_or_else(unsupported)?)).await
    }

    async fn flush(&self, pending: &mut VecDeque<AggregateRow>, dropped: &mut u64) {
        let excess = pending.len().saturating_sub(MAX_PENDING);
        if excess > 0 {
            pending.drain(..excess);
            *dropped += excess as u64;
            tracing::warn!(
                dropped = *dropped,
                "window aggregates dropped: the store has been away too long"
            );
        }
        if pending.is_empty() {
            return;
        }
        let rows: Vec<AggregateRow> = pending.iter().cloned().collect();
        match self.call(move |s| s.insert_aggregates(&rows)).await {
            Ok(()) => pending.clear(),
            Err(e) => {
                tracing::debug!(error = %e, kept = pending.len(), "cannot write window aggregates yet")
            }
        }
    }

    async fn read(&self, work: Work) -> Answer {
        let mut answer = Answer::default();
        for ask in work.rebuilds {
            let a = ask.clone();
            let got = self
                .call(move |s| {
                    let rows =
                        s.aggregates_since(std::slice::from_ref(&a.rollout), a.window_start)?;
                    let totals = match a.stage_from {
                        Some(from) if from < a.window_start => {
                            s.aggregate_totals(&a.rollout, from, a.window_start)?
                        }
                        _ => Vec::new(),
                    };
                    Ok((rows, totals))
                })
                .await;
            if let Err(e) = &got {
                tracing::warn!(rollout = %ask.rollout, error = %e, "cannot read the fleet's window");
            }
            answer.rebuilt.push(Rebuilt {
                ask,
                data: got.ok(),
            });
        }
        if !work.recent.is_empty() {
            let (rollouts, since) = (work.recent, work.recent_since);
            match self
                .call(move |s| s.aggregates_since(&rollouts, since))
                .await
            {
                Ok(rows) => answer.recent = rows,
                Err(e) => tracing::debug!(error = %e, "cannot read the fleet's recent aggregates"),
            }
        }
        answer
    }
}

pub async fn run(mut t: Task) {
    let mut pending: VecDeque<AggregateRow> = VecDeque::new();
    let mut dropped = 0u64;
    let mut next_prune = t.clock.now_ms();
    loop {
        let work = tokio::select! {
            _ = t.shutdown.cancelled() => break,
            w = t.work.recv() => match w {
                Some(w) => w,
                None => break,
            },
        };
        let Work {
            flush,
            recent,
            recent_since,
            rebuilds,
        } = work;
        pending.extend(flush);
        t.flush(&mut pending, &mut dropped).await;
        let now = t.clock.now_ms();
        if now >= next_prune {
            next_prune = now + PRUNE_EVERY_MS;
            let before = now.div_euclid(1000) - RETENTION_S;
            match t.call(move |s| s.prune_aggregates(before)).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "deleted old window aggregates"),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "cannot delete old window aggregates"),
            }
        }
        let reads = Work {
            flush: Vec::new(),
            recent,
            recent_since,
            rebuilds,
        };
        if reads.reads() {
            let answer = t.read(reads).await;
            if t.answers.send(answer).await.is_err() {
                break;
            }
        }
    }
    // What is left is written once more at shutdown (best effort, and never holding the drain
    // up for long when the store is away).
    let last = t.flush(&mut pending, &mut dropped);
    if tokio::time::timeout(FINAL_FLUSH, last).await.is_err() {
        tracing::debug!(
            rows = pending.len(),
            "window aggregates not written at shutdown"
        );
    }
    tracing::debug!(replica = %t.replica, "aggregates task stopped");
}

#[cfg(test)]
#[path = "aggregates_tests.rs"]
mod tests;
