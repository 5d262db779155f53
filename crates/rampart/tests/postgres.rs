//! `rampart serve` on PostgreSQL (`store.type = "postgres"`): the real binary serves requests
//! and stores their events in the database, and a rollback persists across a restart. Also the
//! errors when the URL's variable is unset or the server unreachable.
//!
//! The server is `RAMPART_TEST_PG_URL`, or `postgres://postgres@127.0.0.1:5432/postgres`; an
//! unreachable server fails the tests (they never skip).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod replicas;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart_store::{EventStore, PgOptions, PgStore, RolloutStore};

const BIN: &str = env!("CARGO_BIN_EXE_rampart");
const URL_ENV: &str = "RAMPART_TEST_SERVE_DB";

fn config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("pg.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[store]
type = "postgres"
url_env = "{URL_ENV}"
pool_size = 4
flush_interval = "20ms"
[providers.sim]
type = "mock"
[providers.sim.models.m]
style = "casual"
latency_ms = {{ median = 5, p95 = 10 }}
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "m"
[routes.support.variants.v2]
provider = "sim"
model = "m"
[rollouts.r]
route = "support"
candidate = "v2"
stages = [ {{ name = "half", percent = 50, min_duration = "1h" }} ]
"#
        ),
    )
    .unwrap();
    path
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn start(cfg: &std::path::Path, port: u16, db_url: &str) -> Server {
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(cfg)
            .env(URL_ENV, db_url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Server(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            if let Some(status) = server.0.try_wait().unwrap() {
                panic!("rampart serve exited: {status}");
            }
            // Poll interval of the bounded wait.
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("rampart serve did not start listening");
    }

    /// SIGTERM, then wait for the drain (which flushes the event writer).
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-s", "TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.0.wait().unwrap();
        assert!(exit.success(), "exit status {exit:?}");
    }
}

/// Send keyed requests; the request ids and the variants that answered.
async fn send(port: u16, keys: std::ops::Range<u32>) -> Vec<(String, String)> {
    let c = reqwest::Client::new();
    let mut out = Vec::new();
    for i in keys {
        let r = c
            .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
            .header("x-rampart-routing-key", format!("user-{i}"))
            .json(&serde_json::json!({"model": "support", "messages": [{"role": "user", "content": "where is my card"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let header = |name: &str| r.headers()[name].to_str().unwrap().to_string();
        out.push((header("x-rampart-request-id"), header("x-rampart-variant")));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_stores_events_and_a_rollback_survives_a_restart() {
    let db = replicas::scratch("rampart_serve");
    let dir = tempfile::tempdir().unwrap();
    let port = replicas::free_port();
    let cfg = config(dir.path(), port);

    let server = Server::start(&cfg, port, db.url());
    let first = send(port, 0..40).await;
    // Half the keys go to the candidate at 50%: both variants answered.
    assert!(first.iter().any(|(_, v)| v == "v2") && first.iter().any(|(_, v)| v == "v1"));
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/admin/rollouts/r/rollback"))
        .json(&serde_json::json!({"reason": "pg test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    server.stop();

    let url = db.url().to_string();
    let opts = PgOptions {
        pool_size: 2,
        maintenance_interval: None,
        ..PgOptions::default()
    };
    let ids: Vec<String> = first.iter().map(|(id, _)| id.clone()).collect();
    let (state, audit) = tokio::task::spawn_blocking(move || {
        let store = PgStore::connect(&url, opts).unwrap();
        for id in &ids {
            let ev = store
                .get_event(id)
                .unwrap()
                .unwrap_or_else(|| panic!("event {id} missing"));
            assert_eq!((ev.status, ev.rollout.as_deref()), (200, Some("r")));
        }
        (
            store.load_rollout_state("r").unwrap(),
            store.audit_log("r", 10).unwrap(),
        )
    })
    .await
    .unwrap();
    assert!(state.is_some_and(|s| s.contains("rolled_back")));
    assert!(
        audit
            .iter()
            .any(|a| a.action == "rollback" && a.reason == "pg test")
    );

    // Restarted on the same database: still rolled back, every key on the baseline.
    let server = Server::start(&cfg, port, db.url());
    let status: serde_json::Value =
        reqwest::get(format!("http://127.0.0.1:{port}/admin/rollouts/r"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(status.to_string().contains("rolled_back"), "{status}");
    let second = send(port, 0..40).await;
    assert!(second.iter().all(|(_, v)| v == "v1"), "{second:?}");
    server.stop();
}

#[test]
fn serve_says_what_is_wrong_when_the_database_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), replicas::free_port());
    let run = |url: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config"])
            .arg(&cfg)
            .env_remove(URL_ENV);
        if let Some(u) = url {
            cmd.env(URL_ENV, u);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = run(None);
    assert!(
        err.contains("store.url_env") && err.contains(URL_ENV) && err.contains("not set"),
        "{err}"
    );
    let err = run(Some("postgres://rampart:hunter2@127.0.0.1:1/rampart"));
    assert!(
        err.contains("cannot connect to PostgreSQL at 127.0.0.1:1/rampart"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}
