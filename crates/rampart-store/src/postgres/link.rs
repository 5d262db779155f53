//! A replica's own connection to PostgreSQL, outside the pool: it hears control changes
//! (`LISTEN rampart_rollouts`) and campaigns for the controller's lease, a session-level
//! advisory lock ([`LEADER_LOCK`]).
//!
//! Invariants:
//! - The lock lives and dies with this one connection: when the process dies or the connection
//!   drops, PostgreSQL releases it and another replica's next attempt (every `tick`) takes it.
//!   The session asks the server for TCP keepalives (5 s idle, 1 s apart, 3 probes), so a
//!   leader whose host vanishes without closing its socket loses the lock within about 8 s.
//! - Every tick the connection is used (a lock attempt, or `SELECT 1` once leading), each call
//!   bounded by [`QUERY_TIMEOUT`], so a dead connection is noticed within about a tick plus
//!   that timeout; then [`LinkEvent::Leading`]`(false)` and [`LinkEvent::Down`] are sent.
//! - After every (re)connection [`LinkEvent::Up`] is sent: notifications are lost while the
//!   connection is down, so the receiver reloads everything then.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::NOTIFY_CHANNEL;

/// The controller's lease: `pg_try_advisory_lock(int4, int4)` on `ramp`/`lead` in ASCII.
pub const LEADER_LOCK: (i32, i32) = (0x7261_6d70, 0x6c65_6164);

/// Bound on each call on the link's connection.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// What the link reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// Connected (again). Notifications may have been missed: reload everything.
    Up,
    /// The connection is lost or cannot be made (why).
    Down(String),
    /// A control change to this rollout was committed.
    Changed(String),
    /// This replica holds (true) or has lost (false) the controller's lease.
    Leading(bool),
}

/// Why the link's connection ended (sent on as [`LinkEvent::Down`]'s text).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no answer from PostgreSQL within {0:?}")]
    Timeout(Duration),
    #[error("{}", crate::error::postgres_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the connection closed")]
    Closed,
}

/// The link's receiving end. Dropping it closes the connection (and frees the lease).
pub struct Link {
    pub events: mpsc::Receiver<LinkEvent>,
    task: tokio::task::AbortHandle,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) fn spawn(
    handle: &tokio::runtime::Handle,
    config: Arc<tokio_postgres::Config>,
    replica_id: &str,
    tick: Duration,
) -> Link {
    let (tx, rx) = mpsc::channel(256);
    let mut config = (*config).clone();
    // The lease holder is found by its connection's application name (see `leader`).
    config.application_name(replica_id);
    let task = handle.spawn(run(config, tick, tx)).abort_handle();
    Link { events: rx, task }
}

async fn run(config: tokio_postgres::Config, tick: Duration, tx: mpsc::Sender<LinkEvent>) {
    loop {
        let why = match session(&config, tick, &tx).await {
            Ok(()) => return, // the receiver is gone
            Err(why) => why.to_string(),
        };
        if tx.send(LinkEvent::Down(why)).await.is_err() {
            return;
        }
        tokio::time::sleep(tick).await;
    }
}

/// One connection's life. `Ok(())` when the receiver is gone, `Err(why)` when the connection is.
async fn session(
    config: &tokio_postgres::Config,
    tick: Duration,
    tx: &mpsc::Sender<LinkEvent>,
) -> Result<(), LinkError> {
    let connect = tokio::time::timeout(QUERY_TIMEOUT * 2, config.connect(NoTls));
    let (client, mut conn) = connect
        .await
        .map_err(|_| LinkError::Timeout(QUERY_TIMEOUT * 2))??;
    let (ntx, mut nrx) = mpsc::unbounded_channel::<String>();
    // Drives the connection and forwards notifications; ends when the connection does.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if ntx.send(n.payload().to_string()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    let _abort = AbortOnDrop(driver.abort_handle());
    // The server frees the lease when this session ends; a peer that vanished without closing
    // (its host gone) is noticed by keepalives within about 8 s instead of the system's hours.
    let setup = format!(
        "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 1; \
         SET tcp_keepalives_count = 3; LISTEN {NOTIFY_CHANNEL}"
    );
    bounded(client.batch_execute(&setup)).await?;
    if tx.send(LinkEvent::Up).await.is_err() {
        return Ok(());
    }
    let mut leading = false;
    let mut every = tokio::time::interval(tick);
    let out = loop {
        tokio::select! {
            n = nrx.recv() => match n {
                Some(rollout) => {
                    // A full queue only delays the change to the next poll.
                    let _ = tx.try_send(LinkEvent::Changed(rollout));
                }
                None => break Err(LinkError::Closed),
            },
            _ = every.tick() => match lease(&client, leading).await {
                Ok(true) if !leading => {
                    leading = true;
                    if tx.send(LinkEvent::Leading(true)).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => break Err(e),
            },
        }
    };
    if leading {
        let _ = tx.send(LinkEvent::Leading(false)).await;
    }
    out
}

/// Try for the lease, or (holding it) check the connection still works. Whether it is held.
async fn lease(client: &tokio_postgres::Client, leading: bool) -> Result<bool, LinkError> {
    if leading {
        bounded(client.simple_query("SELECT 1")).await?;
        return Ok(true);
    }
    let row = bounded(client.query_one(
        "SELECT pg_try_advisory_lock($1, $2)",
        &[&LEADER_LOCK.0, &LEADER_LOCK.1],
    ))
    .await?;
    Ok(row.try_get(0)?)
}

async fn bounded<T>(
    f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, LinkError> {
    Ok(tokio::time::timeout(QUERY_TIMEOUT, f)
        .await
        .map_err(|_| LinkError::Timeout(QUERY_TIMEOUT))??)
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The application name of the connection holding the lease, if any (the leading replica's id).
pub(super) async fn leader(s: &super::Shared) -> crate::Result<Option<String>> {
    let c = s.client().await?;
    let row = c
        .query_opt(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
             AND l.classid::bigint = $1 AND l.objid::bigint = $2 \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&i64::from(LEADER_LOCK.0), &i64::from(LEADER_LOCK.1)],
        )
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}
