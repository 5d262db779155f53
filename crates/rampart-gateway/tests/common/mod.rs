//! Test harness: a real gateway on 127.0.0.1:0 over a SQLite file in a temp dir.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use rampart_core::config::Config;
use rampart_gateway::clock::Clock;
use rampart_gateway::providers::Provider;
use rampart_gateway::{BuildOptions, Gateway};
use rampart_store::{SqliteStore, Store};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct TestGateway {
    pub url: String,
    pub gw: Gateway,
    pub store: Arc<SqliteStore>,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestGateway {
    pub async fn start(config_toml: &str) -> TestGateway {
        Self::start_with(config_toml, None).await
    }

    pub async fn start_with(config_toml: &str, clock: Option<Arc<dyn Clock>>) -> TestGateway {
        Self::start_in(config_toml, clock, tempfile::tempdir().unwrap()).await
    }

    /// Start over the store in `dir` (e.g. to restart a gateway on the same database).
    pub async fn start_in(
        config_toml: &str,
        clock: Option<Arc<dyn Clock>>,
        dir: tempfile::TempDir,
    ) -> TestGateway {
        let config = match Config::from_toml_str(config_toml) {
            Ok(c) => c,
            Err(e) => panic!("test config is invalid:\n{e}"),
        };
        let store = Arc::new(SqliteStore::open(&dir.path().join("rampart.db")).unwrap());
        let mut opts = BuildOptions::default();
        if let Some(c) = clock {
            opts.clock = c;
        }
        let gw = Gateway::build(config, store.clone() as Arc<dyn Store>, opts).unwrap();
        // The tests read what the simulators were sent (off in production).
        for p in gw.providers.values() {
            if let Provider::Mock(sim) = p {
                sim.record_received(true);
            }
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(rampart_gateway::serve(listener, gw.clone(), async move {
            let _ = rx.await;
        }));
        TestGateway {
            url,
            gw,
            store,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The in-process simulator behind a `type = "mock"` provider.
    pub fn sim(&self, provider: &str) -> Arc<rampart_mock::Simulator> {
        match self.gw.providers.get(provider) {
            Some(Provider::Mock(sim)) => sim.clone(),
            _ => panic!("provider {provider} is not a mock"),
        }
    }

    /// Stop serving, drain, and flush the writer. The temp dir lives as long as the result.
    pub async fn shutdown(mut self) -> (Arc<SqliteStore>, tempfile::TempDir) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (self.store.clone(), dir)
    }
}

/// Serve a stand-in upstream (a fake provider, an alert receiver) on 127.0.0.1:0; its base URL.
pub async fn spawn_app(app: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The gateway's `/metrics` text.
pub async fn metrics(url: &str) -> String {
    reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the first sample in `text` starting with `name_and_labels` (0 when absent).
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// How often the waits below look again (a poll interval, not a wait for a result).
pub const POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Wait until `probe` returns `Some`, and return it; panics naming `what` after 30 s (a bound
/// for a hung test, not a timing assertion).
pub async fn wait_until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up after 30 s waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Wait (bounded, 30 s) until the store holds `n` pairs of rollout `support-v2`, flushing the
/// writer; returns how many it holds.
pub async fn wait_pairs(t: &TestGateway, n: u64) -> u64 {
    use rampart_store::PairStore;
    for _ in 0..600 {
        t.gw.writer.flush().await.unwrap();
        let c = t.store.count_pairs("support-v2").unwrap();
        if c >= n {
            return c;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    t.store.count_pairs("support-v2").unwrap()
}

pub fn chat(model: &str, text: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// A config with one route `support` on the in-process mock: baseline `v1` (casual) and
/// candidate `v2` (formal), with a rollout whose first stage is given.
pub fn config(stage: &str, extra: &str) -> String {
    // Keep the controller from moving the rollout on its own during a test.
    let stage = if stage.contains("min_duration") {
        stage.to_string()
    } else {
        stage.replacen(" }", ", min_duration = \"1h\" }", 1)
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "10s"

[store]
flush_interval = "20ms"

[providers.sim]
type = "mock"
[providers.sim.models.old]
style = "casual"
latency_ms = {{ median = 5, p95 = 8 }}
[providers.sim.models.new]
style = "formal"
latency_ms = {{ median = 5, p95 = 8 }}
length_factor = 1.3

[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "old"
prompt_version = "p1"
system_prompt = "You are friendly."
input_usd_per_mtok = 2.5
output_usd_per_mtok = 10.0
[routes.support.variants.v2]
provider = "sim"
model = "new"
prompt_version = "p2"
system_prompt = "You are formal."
system_prompt_mode = "replace"
params = {{ temperature = 0.1 }}
input_usd_per_mtok = 1.0
output_usd_per_mtok = 4.0

[rollouts.support-v2]
route = "support"
candidate = "v2"
stages = [ {stage} ]
[rollouts.support-v2.tenants.enterprise]
max_percent = 0

{extra}
"#
    )
}
