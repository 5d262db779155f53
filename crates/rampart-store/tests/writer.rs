//! The batch writer against SQLite on disk: nothing lost, never blocking, ordered control calls,
//! retries through failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{Hooked, event, pair};
use rampart_core::record::{Feedback, Thumbs};
use rampart_store::{
    EventStore, FeedbackStore, PairStore, Record, SqliteStore, Store, StoreError, TrySendError,
    Writer, WriterConfig,
};

/// A flush interval no test waits for: only batch_size, flush(), feedback() or close() write.
const NEVER: Duration = Duration::from_secs(3600);

fn cfg(capacity: usize, batch_size: usize, flush_interval: Duration) -> WriterConfig {
    WriterConfig {
        capacity,
        batch_size,
        flush_interval,
    }
}

fn feedback(id: &str) -> Feedback {
    Feedback {
        request_id: id.into(),
        ts_ms: 2,
        thumbs: Some(Thumbs::Up),
        outcome: None,
        final_text: None,
    }
}

#[tokio::test]
async fn ten_thousand_events_all_land_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("r.db")).unwrap());
    let writer = Writer::spawn(store.clone(), cfg(16_384, 512, Duration::from_millis(20)));
    for i in 0..10_000 {
        writer
            .try_send(Record::Event(event(&format!("r{i}"), "ro", i)))
            .unwrap();
    }
    for i in 0..100 {
        writer
            .try_send(pair(&format!("r{i}"), "ro", i, None).into())
            .unwrap();
    }
    assert!(!writer.is_closed());
    let other = writer.clone();
    let (a, b) = tokio::join!(writer.close(), other.close());
    a.unwrap();
    b.unwrap();
    assert!(writer.is_closed());
    assert_eq!(store.count_events().unwrap(), 10_000);
    assert_eq!(store.count_pairs("ro").unwrap(), 100);
    let stats = writer.stats();
    assert_eq!(stats.written_events, 10_000);
    assert_eq!(stats.written_pairs, 100);
    assert_eq!((stats.queued, stats.lost, stats.write_errors), (0, 0, 0));
    assert!(stats.batches >= 10_100 / 512);

    // Closed: refuses records and control calls; closing again is fine.
    assert_eq!(
        writer.try_send(event("late", "ro", 0).into()),
        Err(TrySendError::Closed)
    );
    assert!(matches!(writer.flush().await, Err(StoreError::Closed)));
    assert!(matches!(
        writer.feedback(feedback("r1")).await,
        Err(StoreError::Closed)
    ));
    writer.close().await.unwrap();
}

#[tokio::test]
async fn a_stalled_writer_makes_try_send_report_full_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let store = Arc::new(Hooked::open(
        &dir.path().join("r.db"),
        Box::new(move |_, _| {
            // Stall every batch until the test releases it.
            entered_tx.lock().unwrap().send(()).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
            Ok(())
        }),
    ));
    let writer = Writer::spawn(store.clone(), cfg(2, 1, NEVER));
    writer.try_send(event("r0", "ro", 0).into()).unwrap();
    entered_rx.recv().unwrap(); // the writer holds r0 and is stuck in the store
    writer.try_send(event("r1", "ro", 1).into()).unwrap();
    writer.try_send(event("r2", "ro", 2).into()).unwrap();
    for i in 3..10 {
        assert_eq!(
            writer.try_send(event(&format!("r{i}"), "ro", i).into()),
            Err(TrySendError::Full)
        );
    }
    assert_eq!(writer.stats().queued, 3);
    for _ in 0..3 {
        release_tx.send(()).unwrap();
    }
    writer.close().await.unwrap();
    assert_eq!(store.count_events().unwrap(), 3);
    assert_eq!(writer.stats().written_events, 3);
}

#[tokio::test]
async fn feedback_sees_the_event_enqueued_just_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("r.db")).unwrap());
    let writer = Writer::spawn(store.clone(), cfg(1024, 1000, NEVER));
    writer.try_send(event("r1", "ro", 1).into()).unwrap();
    assert!(writer.feedback(feedback("r1")).await.unwrap());
    assert!(!writer.feedback(feedback("unknown")).await.unwrap());
    assert_eq!(store.feedback_for("r1").unwrap(), vec![feedback("r1")]);
    assert!(store.feedback_for("unknown").unwrap().is_empty());
    writer.close().await.unwrap();
}

#[tokio::test]
async fn flush_writes_everything_enqueued_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("r.db")).unwrap());
    let writer = Writer::spawn(store.clone(), cfg(1024, 1000, NEVER));
    for i in 0..5 {
        writer
            .try_send(event(&format!("r{i}"), "ro", i).into())
            .unwrap();
    }
    // Neither batch_size nor the flush interval is reached: nothing written yet.
    assert_eq!(store.count_events().unwrap(), 0);
    writer.flush().await.unwrap();
    assert_eq!(store.count_events().unwrap(), 5);
    assert_eq!(writer.stats().queued, 0);
    // Flush with nothing queued returns at once; clones share the queue.
    let clone = writer.clone();
    clone.try_send(event("r5", "ro", 5).into()).unwrap();
    writer.flush().await.unwrap();
    assert_eq!(store.count_events().unwrap(), 6);
    writer.close().await.unwrap();
}

#[tokio::test]
async fn the_flush_interval_writes_a_partial_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (done_tx, done_rx) = mpsc::channel::<usize>();
    let done_tx = Mutex::new(done_tx);
    let store = Arc::new(Hooked::open(
        &dir.path().join("r.db"),
        Box::new(move |events, _| {
            done_tx.lock().unwrap().send(events.len()).unwrap();
            Ok(())
        }),
    ));
    let writer = Writer::spawn(store.clone(), cfg(1024, 1000, Duration::from_millis(10)));
    writer.try_send(event("r1", "ro", 1).into()).unwrap();
    writer.try_send(event("r2", "ro", 2).into()).unwrap();
    // No flush, no close: only the interval can trigger this write.
    let mut written = 0;
    while written < 2 {
        written += done_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    }
    writer.close().await.unwrap();
    assert_eq!(store.count_events().unwrap(), 2);
}

/// The writer sleeps through a batch's flush interval rather than waking per record; a full
/// batch must still be written at once, not at the deadline.
#[tokio::test]
async fn a_full_batch_is_written_without_waiting_for_the_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let (done_tx, done_rx) = mpsc::channel::<usize>();
    let done_tx = Mutex::new(done_tx);
    let store = Arc::new(Hooked::open(
        &dir.path().join("r.db"),
        Box::new(move |events, _| {
            done_tx.lock().unwrap().send(events.len()).unwrap();
            Ok(())
        }),
    ));
    let writer = Writer::spawn(store.clone(), cfg(1024, 10, NEVER));
    for i in 0..25 {
        writer
            .try_send(event(&format!("r{i}"), "ro", i).into())
            .unwrap();
    }
    // No flush, no close, an interval no test waits for: only full batches can be written.
    let mut written = 0;
    while written < 20 {
        written += done_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    }
    assert!(written <= 25, "{written}");
    writer.close().await.unwrap();
    assert_eq!(store.count_events().unwrap(), 25);
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    {
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let writer = Writer::spawn(store, cfg(1024, 100, NEVER));
        for i in 0..250 {
            writer
                .try_send(event(&format!("r{i}"), "ro", i).into())
                .unwrap();
        }
        writer
            .try_send(pair("r0", "ro", 0, Some("refunds")).into())
            .unwrap();
        writer.close().await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.count_events().unwrap(), 250);
    assert_eq!(
        store.recent_pairs("ro", 10, None, None).unwrap(),
        vec![pair("r0", "ro", 0, Some("refunds"))]
    );
}

/// Fails the first `n` batch writes with an I/O error (as a full disk would).
fn failing_first(path: &std::path::Path, n: u32) -> Arc<Hooked> {
    let calls = AtomicU32::new(0);
    Arc::new(Hooked::open(
        path,
        Box::new(move |_, _| {
            if calls.fetch_add(1, Ordering::SeqCst) < n {
                Err(StoreError::Io(std::io::Error::other("disk full")))
            } else {
                Ok(())
            }
        }),
    ))
}

#[tokio::test]
async fn a_failing_batch_is_retried_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = failing_first(&dir.path().join("r.db"), 3);
    let writer = Writer::spawn(store.clone(), cfg(1024, 1000, NEVER));
    for i in 0..100 {
        writer
            .try_send(event(&format!("r{i}"), "ro", i).into())
            .unwrap();
    }
    writer.close().await.unwrap();
    assert_eq!(store.count_events().unwrap(), 100);
    let stats = writer.stats();
    assert_eq!(stats.write_errors, 3);
    assert_eq!(
        (stats.written_events, stats.lost, stats.queued),
        (100, 0, 0)
    );
}

#[tokio::test]
async fn flush_waits_through_a_short_outage() {
    let dir = tempfile::tempdir().unwrap();
    let store = failing_first(&dir.path().join("r.db"), 2);
    let writer = Writer::spawn(store.clone(), cfg(1024, 1000, NEVER));
    for i in 0..100 {
        writer
            .try_send(event(&format!("r{i}"), "ro", i).into())
            .unwrap();
    }
    // Two failures, fewer than flush's patience: it returns once the batch is in.
    writer.flush().await.unwrap();
    assert_eq!(store.count_events().unwrap(), 100);
    assert_eq!(writer.stats().write_errors, 2);
    writer.close().await.unwrap();
}

#[tokio::test]
async fn an_outage_fails_flush_fast_and_close_reports_what_was_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = failing_first(&dir.path().join("r.db"), u32::MAX);
    let writer = Writer::spawn(store.clone(), cfg(1024, 1000, NEVER));
    for i in 0..10 {
        writer
            .try_send(event(&format!("r{i}"), "ro", i).into())
            .unwrap();
    }
    assert!(matches!(
        writer.flush().await,
        Err(StoreError::Unavailable(_))
    ));
    match writer.close().await {
        Err(StoreError::Lost { lost: 10, source }) => {
            assert!(matches!(*source, StoreError::Io(_)));
        }
        other => panic!("expected Lost(10), got {other:?}"),
    }
    assert_eq!(store.count_events().unwrap(), 0);
    let stats = writer.stats();
    assert_eq!((stats.lost, stats.queued, stats.written_events), (10, 0, 0));
    assert!(stats.write_errors >= 3);
}

#[tokio::test]
async fn a_rejected_record_is_isolated_and_the_rest_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Hooked::open(
        &dir.path().join("r.db"),
        Box::new(|events, _| {
            if events.iter().any(|e| e.request_id == "bad") {
                // Not transient: retrying the same record will never help.
                Err(StoreError::Serde(
                    serde_json::from_str::<serde_json::Value>("{").unwrap_err(),
                ))
            } else {
                Ok(())
            }
        }),
    ));
    let writer = Writer::spawn(store.clone(), cfg(1024, 1000, NEVER));
    for id in ["a", "b", "bad", "c"] {
        writer.try_send(event(id, "ro", 1).into()).unwrap();
    }
    writer.flush().await.unwrap();
    assert_eq!(store.count_events().unwrap(), 3);
    assert!(!store.event_exists("bad").unwrap());
    let stats = writer.stats();
    assert_eq!((stats.written_events, stats.lost, stats.queued), (3, 1, 0));
    writer.close().await.unwrap();
}

#[tokio::test]
async fn a_panicking_store_does_not_kill_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let calls = AtomicU32::new(0);
    let store = Arc::new(Hooked::open(
        &dir.path().join("r.db"),
        Box::new(move |_, _| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("store bug");
            }
            Ok(())
        }),
    ));
    let writer = Writer::spawn(store.clone() as Arc<dyn Store>, cfg(1024, 1000, NEVER));
    writer.try_send(event("r1", "ro", 1).into()).unwrap();
    writer.flush().await.unwrap();
    assert!(store.event_exists("r1").unwrap());
    assert_eq!(writer.stats().write_errors, 1);
    writer.try_send(event("r2", "ro", 2).into()).unwrap();
    writer.close().await.unwrap();
    assert_eq!(store.count_events().unwrap(), 2);
}

#[tokio::test]
async fn concurrent_senders_and_close_lose_nothing_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("r.db")).unwrap());
    let writer = Writer::spawn(store.clone(), cfg(256, 64, Duration::from_millis(1)));
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let w = writer.clone();
            let started = started_tx.clone();
            std::thread::spawn(move || {
                let mut accepted = 0u64;
                for i in 0..5_000 {
                    match w.try_send(event(&format!("t{t}-{i}"), "ro", i).into()) {
                        Ok(()) => {
                            accepted += 1;
                            if accepted == 100 {
                                let _ = started.send(());
                            }
                        }
                        Err(TrySendError::Full) => std::thread::yield_now(),
                        Err(TrySendError::Closed) => break,
                    }
                }
                accepted
            })
        })
        .collect();
    // Close while the senders are in full swing.
    started_rx.recv().unwrap();
    writer.close().await.unwrap();
    let accepted: u64 = senders.into_iter().map(|h| h.join().unwrap()).sum();
    // Every record try_send accepted was written, even those racing close().
    assert_eq!(store.count_events().unwrap(), accepted);
    assert_eq!(writer.stats().written_events, accepted);
}
