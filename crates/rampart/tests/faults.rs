//! Faults against the real binary, part 1: the store and the process. `rampart serve` runs as a
//! child process on SQLite on disk under keyed load; the test locks the database from outside,
//! sends signals with `kill`, and asserts what the users received and what was stored.
//!
//! The fault suite, and where each scenario of issue 10 is tested:
//! - locked database under load, second SIGTERM, SIGKILL under load: here;
//! - dying and hanging providers (real `rampart mock-llm` processes): `faults_providers.rs`;
//! - a rollback with the database locked (durable before acknowledged, survives a restart):
//!   `crates/rampart-gateway/tests/durability.rs`;
//! - cut streams, HTML or invalid JSON in a stream, a silent first byte, a silent stream:
//!   `crates/rampart-gateway/tests/provider_faults.rs`;
//! - slowloris (partial headers, partial bodies, idle keep-alive) and the connection cap, streams
//!   cut at the grace deadline: `crates/rampart-gateway/tests/connections.rs`;
//! - a first SIGTERM drains in-flight requests and stores their events: `cli.rs`.
//!
//! The gateway tests run the same `serve` in-process on port 0 against stand-in upstreams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod faults_common;

use std::time::{Duration, Instant};

use faults_common::{Load, free_port, missing_events, serve};

fn config(port: u16, db: &std::path::Path, flush: &str, latency: (u32, u32)) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_grace = "30s"
[store]
path = "{db}"
flush_interval = "{flush}"
[providers.sim]
type = "mock"
[providers.sim.models.m]
latency_ms = {{ median = {}, p95 = {} }}
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "m"
"#,
        latency.0,
        latency.1,
        db = db.display()
    )
}

/// Users keep being served while another process holds the SQLite write lock; a second SIGTERM
/// then stops the gateway at once (no answer leaves after it) and every answer users received
/// has its event stored once the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_database_then_a_second_sigterm_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rampart.db");
    let port = free_port();
    let mut server = serve(dir.path(), &config(port, &db, "50ms", (300, 600)), port);
    let load = Load::start(port, "support", 32);
    load.until_acked(100).await;

    // Another process takes the write lock: users must not notice.
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let before = load.acked();
    load.until_acked(before + 64).await;

    server.signal("TERM");
    server.until_logged("shutting down: draining").await;
    server.signal("TERM");
    server.until_logged("second signal").await;
    // Requests were in flight (300–600 ms each): the old behaviour answered them after the
    // writer had closed, and their events were refused. Every one of them is settled (answered
    // or cut) once the users stop, before the lock goes.
    let acks = load.stop().await;
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    let status = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130), "a second signal exits 130");
    let served: Vec<_> = acks.iter().filter(|a| a.status == 200).collect();
    assert_eq!(served.len(), acks.len(), "every answer users got was a 200");
    let missing = missing_events(&db, &acks);
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged answers have no stored event: {:?}",
        missing.len(),
        acks.len(),
        missing
            .iter()
            .map(|a| &a.request_id)
            .take(5)
            .collect::<Vec<_>>()
    );
}

/// `kill -9` under load: what is lost is at most what was acknowledged within the last flush
/// interval (plus the time one batch takes to write); everything older is on disk. Prints the
/// measurement the README's "Failure modes" section quotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_at_most_the_last_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rampart.db");
    let port = free_port();
    let flush = Duration::from_millis(200);
    let mut server = serve(dir.path(), &config(port, &db, "200ms", (20, 60)), port);
    let load = Load::start(port, "support", 32);
    load.until_acked(200).await;
    let started = Instant::now();
    // A measurement window under steady load (the rate below), not a wait for a result.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rate_from = load.acked();
    server.signal("KILL");
    let killed = Instant::now();
    let _ = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(30)))
        .await
        .unwrap();
    let acks = load.stop().await;
    let rate = rate_from as f64 / (killed - started).as_secs_f64();
    let missing = missing_events(&db, &acks);
    let oldest = missing
        .iter()
        .map(|a| killed.saturating_duration_since(a.at))
        .max()
        .unwrap_or_default();
    eprintln!(
        "kill -9 at ~{rate:.0} req/s: {} acknowledged, {} events lost, the oldest acknowledged \
         {oldest:?} before the kill (flush_interval {flush:?})",
        acks.len(),
        missing.len()
    );
    // One flush interval, plus one batch write on a busy machine.
    let bound = flush + Duration::from_secs(2);
    assert!(
        oldest <= bound,
        "an event acknowledged {oldest:?} before the kill was lost (bound {bound:?})"
    );
}
