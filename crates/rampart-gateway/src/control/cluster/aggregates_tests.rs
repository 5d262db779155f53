//! The aggregates task over a real (SQLite) store: rows written once, the leader's reads
//! answered in order, a rebuild's stage totals summed over the seconds before the window.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rampart_core::rollout::CohortCounts;
use rampart_store::{AggregateRow, AggregateSide, SqliteStore, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Rebuild, Task, Work, run};
use crate::clock::ManualClock;

fn row(second: i64, replica: &str, requests: u64) -> AggregateRow {
    AggregateRow {
        rollout: "r".into(),
        second,
        replica: replica.into(),
        side: AggregateSide::Canary,
        counts: CohortCounts {
            requests,
            ..CohortCounts::default()
        },
        latency: None,
        custom: Vec::new(),
    }
}

#[tokio::test]
async fn rows_are_written_and_the_leaders_reads_answered() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("a.db")).unwrap());
    let (work, work_rx) = mpsc::channel(4);
    let (answers, mut answers_rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(Task {
        store: store.clone(),
        replica: "a".into(),
        clock: Arc::new(ManualClock::new(1_000_000)),
        work: work_rx,
        answers,
        shutdown: shutdown.clone(),
    }));
    // A flush alone gets no answer; a retried row is harmless.
    let flush = vec![row(100, "a", 5), row(200, "a", 7), row(300, "b", 1)];
    work.send(Work {
        flush: flush.clone(),
        ..Work::default()
    })
    .await
    .unwrap();
    work.send(Work {
        flush: vec![flush[0].clone()],
        recent: vec!["r".into()],
        recent_since: 200,
        rebuilds: vec![Rebuild {
            rollout: "r".into(),
            generation: 3,
            window_start: 250,
            stage_from: Some(50),
        }],
    })
    .await
    .unwrap();
    let answer = answers_rx.recv().await.unwrap();
    assert_eq!(answer.recent, flush[1..].to_vec());
    let rebuilt = &answer.rebuilt[0];
    assert_eq!(rebuilt.ask.generation, 3);
    let (rows, totals) = rebuilt.data.as_ref().unwrap();
    assert_eq!(rows, &flush[2..].to_vec());
    assert_eq!(totals.len(), 1);
    assert_eq!(totals[0].counts.requests, 12);
    shutdown.cancel();
    task.await.unwrap();
    let stored = store
        .aggregates()
        .unwrap()
        .aggregates_since(&["r".into()], 0)
        .unwrap();
    assert_eq!(stored, flush);
}
