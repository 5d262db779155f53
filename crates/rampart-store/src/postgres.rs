//! [`PgStore`]: the PostgreSQL backend, for several replicas sharing one database.
//!
//! Invariants:
//! - The store traits are blocking. The store owns a small private Tokio runtime (one worker,
//!   thread `rampart-pg`) that drives `tokio-postgres` connections from a `deadpool` pool of
//!   `store.pool_size`; a call hands its future to that runtime and waits for the answer on a
//!   std channel. So it works from the writer thread and from `spawn_blocking`, and it never
//!   enters or starts a runtime on the caller's thread (a call made on an async worker would
//!   block that worker, as a SQLite call would: don't).
//! - Schema: numbered migrations (`postgres/migrations/`), applied at open in one transaction that
//!   first takes an advisory lock, so replicas starting together migrate once; a database written
//!   by a newer build is refused ([`migrate`]).
//! - `events`, `feedback`, `pairs` and `pair_features` are partitioned by UTC day; partitions are
//!   created ahead and on demand, and retention drops whole partitions, never `DELETE`
//!   ([`partitions`]).
//! - Events and pairs are written in batches: `COPY` into session temp tables, then one
//!   `INSERT … SELECT` per table that skips rows already stored, in one transaction ([`batch`]).
//! - Every query is parameterised; the only formatted SQL is partition DDL built from integers
//!   this code computed.
//! - `rollout_state.version` grows by one with every save: every control change is a
//!   compare-and-set on it with its audit rows in the same transaction, and sends `NOTIFY`
//!   ([`versioned`]); a replica's own connection hears those and holds the controller's lease
//!   ([`link`]).
//! - Per-second window aggregates of the replicas (`window_aggregates`) are written once per
//!   key and deleted row-wise past a day ([`aggregates`]).
//! - Text holding NUL characters (which PostgreSQL's `text` cannot store) is written with U+FFFD
//!   in their place by batch writes; a single-row write of such text fails with a data error.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rampart_core::compare::PairFeatures;
use rampart_core::record::{Feedback, Pair, RequestEvent};
use tokio_postgres::NoTls;

use crate::error::{Result, StoreError};
use crate::{
    AuditEntry, CasOutcome, EventStore, FeedbackStore, PairFilter, PairPage, PairQuery, PairStore,
    RolloutChange, RolloutStore, Store, StoredRollout,
};

mod aggregates;
mod batch;
mod copy;
pub mod link;
mod migrate;
mod outcomes;
pub mod partitions;
mod queries;
mod rows;
pub mod scratch;
mod versioned;

pub use link::{Link, LinkError, LinkEvent};
pub use partitions::Maintenance;

/// Rows per page when walking all pairs of a rollout, and all their features.
const PAIR_PAGE: usize = 1000;
const FEATURE_PAGE: usize = 4096;

/// How a [`PgStore`] is sized and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections kept open, at most (`store.pool_size`).
    pub pool_size: usize,
    /// Rows older than this are dropped with their day's partition (`store.retention`).
    pub retention: Duration,
    /// How often partitions are created ahead and expired ones dropped; `None`: only when
    /// [`PgStore::maintain`] is called (tests). The first run is at open either way when `Some`.
    pub maintenance_interval: Option<Duration>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            retention: Duration::from_secs(30 * 86_400),
            maintenance_interval: Some(Duration::from_secs(3600)),
        }
    }
}

/// What the runtime's tasks share.
pub(crate) struct Shared {
    pool: Pool,
    /// For the replica's own connection outside the pool ([`PgStore::link`]).
    config: Arc<tokio_postgres::Config>,
    partitions: partitions::Partitions,
    retention: Duration,
}

impl Shared {
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        Ok(self.pool.get().await?)
    }
}

/// PostgreSQL storage for everything rampart keeps. Cheap to share behind an `Arc`.
pub struct PgStore {
    shared: Arc<Shared>,
    handle: tokio::runtime::Handle,
    /// `Some` until dropped; shut down in the background so dropping never blocks or panics.
    runtime: Option<tokio::runtime::Runtime>,
    target: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// `host:port/database` of a connection config, for messages (never the password).
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

fn setup(message: String) -> StoreError {
    StoreError::PostgresSetup(message)
}

impl PgStore {
    /// Open the database whose URL the environment variable `var` holds (`store.url_env`).
    pub fn open_env(var: &str, opts: PgOptions) -> Result<PgStore> {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => PgStore::connect(&url, opts),
            _ => Err(setup(format!(
                "store.url_env: the environment variable `{var}` is not set; it must hold the \
                 PostgreSQL URL (e.g. postgres://rampart@127.0.0.1:5432/rampart)"
            ))),
        }
    }

    /// Connect to the database at `url` (a `postgres://` URL or a `key=value` string), bring
    /// its schema up to date and, when `opts.maintenance_interval` is set, create today's
    /// partitions and drop expired ones, then keep doing so in the background.
    pub fn connect(url: &str, opts: PgOptions) -> Result<PgStore> {
        // The parse error never quotes the URL (it may hold a password).
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| setup(format!("the PostgreSQL URL is invalid: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("rampart");
        }
        let target = describe(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rampart-pg")
            .enable_all()
            .build()?;
        let conn_config = Arc::new(config.clone());
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| setup(format!("cannot set up the PostgreSQL pool: {e}")))?;
        let store = PgStore {
            shared: Arc::new(Shared {
                pool,
                config: conn_config,
                partitions: partitions::Partitions::default(),
                retention: opts.retention,
            }),
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            target,
        };
        store
            .block(|s| async move { migrate::run(&s).await })
            .map_err(|e| match e {
                StoreError::Pool(_) => setup(format!(
                    "cannot connect to PostgreSQL at {}: {e}",
                    store.target
                )),
                other => other,
            })?;
        if let Some(every) = opts.maintenance_interval {
            store.maintain(now_ms())?;
            let shared = store.shared.clone();
            store
                .handle
                .spawn(partitions::keep_maintained(shared, every));
        }
        Ok(store)
    }

    /// `host:port/database` this store talks to.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Run `f`'s future on the store's runtime and wait for its answer.
    fn block<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let fut = f(self.shared.clone());
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| {
            StoreError::Unavailable("the PostgreSQL store's runtime stopped".to_string())
        })?
    }

    /// Create the partitions of today and the next days, and drop those wholly older than the
    /// retention at `now_ms`. Runs on its own every `maintenance_interval`.
    pub fn maintain(&self, now_ms: i64) -> Result<Maintenance> {
        self.block(move |s| async move { partitions::maintain(&s, now_ms).await })
    }

    /// The partitions of a partitioned table (`events`, `feedback`, `pairs`, `pair_features`),
    /// by name, oldest first.
    pub fn partitions(&self, table: &'static str) -> Result<Vec<String>> {
        self.block(move |s| async move {
            let client = s.client().await?;
            partitions::list(&client, table).await
        })
    }

    /// The schema version of the database (the number of applied migrations).
    pub fn schema_version(&self) -> Result<i64> {
        self.block(|s| async move { migrate::current(&s).await })
    }

    /// The schema version this build migrates to.
    pub fn latest_schema_version() -> i64 {
        migrate::latest()
    }

    /// Open this replica's own connection: notifications of control changes and the campaign
    /// for the controller's lease, checked every `tick` (see [`link`]). `replica_id` names the
    /// connection, so [`PgStore::leader`] can tell who holds the lease.
    pub fn link(&self, replica_id: &str, tick: Duration) -> Link {
        link::spawn(&self.handle, self.shared.config.clone(), replica_id, tick)
    }

    /// The id of the replica holding the controller's lease, if one does.
    pub fn leader(&self) -> Result<Option<String>> {
        self.block(|s| async move { link::leader(&s).await })
    }

    /// A rollout's state version: 1 after its first save, one more with each save.
    pub fn rollout_version(&self, rollout: &str) -> Result<Option<i64>> {
        let rollout = rollout.to_string();
        self.block(|s| async move { queries::rollout_version(&s, &rollout).await })
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl EventStore for PgStore {
    fn insert_events(&self, events: &[RequestEvent]) -> Result<()> {
        self.write_batch(events, &[])
    }

    fn event_exists(&self, request_id: &str) -> Result<bool> {
        let id = request_id.to_string();
        self.block(|s| async move { queries::event_exists(&s, &id).await })
    }

    fn get_event(&self, request_id: &str) -> Result<Option<RequestEvent>> {
        let id = request_id.to_string();
        self.block(|s| async move { queries::get_event(&s, &id).await })
    }

    fn count_events(&self) -> Result<u64> {
        self.block(|s| async move { queries::count_events(&s).await })
    }

    fn events_since(
        &self,
        rollout: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<RequestEvent>> {
        let rollout = rollout.to_string();
        self.block(|s| async move { queries::events_since(&s, &rollout, since_ms, limit).await })
    }

    fn latest_events(&self, rollout: &str, limit: usize) -> Result<Vec<RequestEvent>> {
        let rollout = rollout.to_string();
        self.block(|s| async move { queries::latest_events(&s, &rollout, limit).await })
    }
}

impl FeedbackStore for PgStore {
    fn insert_feedback(&self, fb: &Feedback) -> Result<bool> {
        let fb = fb.clone();
        self.block(|s| async move { queries::insert_feedback(&s, &fb).await })
    }

    fn feedback_for(&self, request_id: &str) -> Result<Vec<Feedback>> {
        let id = request_id.to_string();
        self.block(|s| async move { queries::feedback_for(&s, &id).await })
    }

    fn feedback_with_events(
        &self,
        rollout: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<(RequestEvent, Feedback)>> {
        let rollout = rollout.to_string();
        self.block(
            |s| async move { queries::feedback_with_events(&s, &rollout, since_ms, limit).await },
        )
    }
}

impl PairStore for PgStore {
    fn insert_pairs(&self, pairs: &[Pair]) -> Result<()> {
        self.write_batch(&[], pairs)
    }

    fn pairs_page(&self, rollout: &str, query: &PairQuery, limit: usize) -> Result<PairPage> {
        let (rollout, query) = (rollout.to_string(), query.clone());
        let rows =
            self.block(|s| async move { queries::pairs_page(&s, &rollout, &query, limit).await })?;
        Ok(PairPage::from_rows(rows, limit))
    }

    fn count_pairs(&self, rollout: &str) -> Result<u64> {
        let rollout = rollout.to_string();
        self.block(|s| async move { queries::count_pairs(&s, &rollout).await })
    }

    fn for_each_pair(&self, rollout: &str, f: &mut dyn FnMut(Pair)) -> Result<()> {
        // Keyset pagination: each page is its own short query, so a slow visitor holds no
        // connection and memory stays at one page.
        let mut after = i64::MIN;
        loop {
            let rollout = rollout.to_string();
            let page = self.block(move |s| async move {
                queries::pair_page(&s, &rollout, after, PAIR_PAGE).await
            })?;
            let full = page.len() == PAIR_PAGE;
            for (id, pair) in page {
                after = id;
                f(pair);
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn get_pair(&self, rollout: &str, request_id: &str) -> Result<Option<Pair>> {
        let (rollout, id) = (rollout.to_string(), request_id.to_string());
        self.block(|s| async move { queries::get_pair(&s, &rollout, &id).await })
    }

    fn for_each_pair_features(
        &self,
        rollout: &str,
        filter: &PairFilter,
        f: &mut dyn FnMut(PairFeatures),
    ) -> Result<()> {
        let mut after = i64::MIN;
        loop {
            let (rollout, filter) = (rollout.to_string(), filter.clone());
            let page = self.block(move |s| async move {
                queries::feature_page(&s, &rollout, &filter, after, FEATURE_PAGE).await
            })?;
            let full = page.len() == FEATURE_PAGE;
            for (id, features) in page {
                after = id;
                f(features);
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn recent_pair_features(
        &self,
        rollout: &str,
        filter: &PairFilter,
        limit: usize,
    ) -> Result<Vec<PairFeatures>> {
        let (rollout, filter) = (rollout.to_string(), filter.clone());
        self.block(
            |s| async move { queries::recent_pair_features(&s, &rollout, &filter, limit).await },
        )
    }
}

impl RolloutStore for PgStore {
    fn load_rollout_state(&self, rollout: &str) -> Result<Option<String>> {
        let rollout = rollout.to_string();
        self.block(|s| async move { queries::load_rollout_state(&s, &rollout).await })
    }

    fn save_rollout_state(&self, rollout: &str, state_json: &str, updated_ms: i64) -> Result<()> {
        let (rollout, json) = (rollout.to_string(), state_json.to_string());
        self.block(
            |s| async move { queries::save_rollout_state(&s, &rollout, &json, updated_ms).await },
        )
    }

    fn save_tenant_cap(
        &self,
        rollout: &str,
        tenant: &str,
        max_percent: f64,
        updated_ms: i64,
    ) -> Result<()> {
        let (rollout, tenant) = (rollout.to_string(), tenant.to_string());
        self.block(|s| async move {
            queries::save_tenant_cap(&s, &rollout, &tenant, max_percent, updated_ms).await
        })
    }

    fn tenant_caps(&self, rollout: &str) -> Result<BTreeMap<String, f64>> {
        let rollout = rollout.to_string();
        self.block(|s| async move { queries::tenant_caps(&s, &rollout).await })
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let entry = entry.clone();
        self.block(|s| async move { queries::append_audit(&s, &entry).await })
    }

    fn audit_log(&self, rollout: &str, limit: usize) -> Result<Vec<AuditEntry>> {
        let rollout = rollout.to_string();
        self.block(|s| async move { queries::audit_log(&s, &rollout, limit).await })
    }

    fn load_rollout(&self, rollout: &str) -> Result<Option<StoredRollout>> {
        let rollout = rollout.to_string();
        self.block(|s| async move { versioned::load(&s, &rollout).await })
    }

    fn rollout_versions(&self) -> Result<BTreeMap<String, i64>> {
        self.block(|s| async move { versioned::versions(&s).await })
    }

    fn apply_change(&self, change: &RolloutChange) -> Result<CasOutcome> {
        let change = change.clone();
        self.block(|s| async move { versioned::apply(&s, &change).await })
    }
}

impl Store for PgStore {
    fn outcomes(&self) -> Option<&dyn crate::OutcomeStore> {
        Some(self)
    }

    fn aggregates(&self) -> Option<&dyn crate::AggregateStore> {
        Some(self)
    }

    /// Events and pairs of a batch in one transaction: encoded for `COPY` on the calling thread
    /// (features computed here when a pair carries none), shipped to the database by the
    /// store's runtime.
    fn write_batch(&self, events: &[RequestEvent], pairs: &[Pair]) -> Result<()> {
        let encoded = batch::Encoded::new(events, pairs)?;
        if encoded.is_empty() {
            return Ok(());
        }
        self.block(|s| async move { batch::write(&s, encoded).await })
    }
}
