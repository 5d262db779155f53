//! A fleet of real `rampart serve` processes on one scratch PostgreSQL database (see
//! `tests/postgres.rs` for the server used), and a TCP proxy in front of PostgreSQL that a test
//! can cut and restore to simulate the database going away.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rampart_store::postgres::scratch::ScratchDatabase;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rampart");
pub const URL_ENV: &str = "RAMPART_TEST_CLUSTER_DB";

/// A scratch database on the tests' server; an unreachable server fails the test.
pub fn scratch(prefix: &str) -> ScratchDatabase {
    ScratchDatabase::for_tests(prefix)
        .unwrap_or_else(|e| panic!("PostgreSQL is required (set RAMPART_TEST_PG_URL): {e}"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One replica: its id, port and process.
pub struct Replica {
    pub id: String,
    pub port: u16,
    cfg: PathBuf,
    child: Option<Child>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Replica {
    /// Write its config (`[server]`, `[store]`, `[cluster]` then `body`) and start it; returns
    /// once it listens.
    pub fn start(dir: &Path, id: &str, cluster: &str, body: &str, db_url: &str) -> Replica {
        let port = free_port();
        let cfg = dir.join(format!("{id}.toml"));
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[store]\ntype = \"postgres\"\n\
             url_env = \"{URL_ENV}\"\npool_size = 4\nflush_interval = \"20ms\"\n\
             [cluster]\nreplica_id = \"{id}\"\n{cluster}\n{body}"
        );
        std::fs::write(&cfg, text).unwrap();
        let mut r = Replica {
            id: id.to_string(),
            port,
            cfg,
            child: None,
        };
        r.spawn(db_url);
        r
    }

    fn spawn(&mut self, db_url: &str) {
        let log = std::fs::File::create(self.cfg.with_extension("log")).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.cfg)
            .env(URL_ENV, db_url)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rampart serve {} exited: {status}", self.id);
            }
            // Poll interval of the bounded wait.
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("rampart serve {} did not start listening", self.id);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no drain, no goodbye to PostgreSQL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait for the drain (which flushes the event writer).
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let status = Command::new("kill")
            .args(["-s", "TERM", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = c.wait().unwrap();
        assert!(exit.success(), "{} exit status {exit:?}", self.id);
    }

    /// `GET /admin/rollouts/{rollout}`.
    pub async fn status(&self, rollout: &str) -> Value {
        get_json(&format!("{}/admin/rollouts/{rollout}", self.url())).await
    }

    /// The audit log's actions for `rollout`, oldest first.
    pub async fn audit(&self, rollout: &str) -> Vec<Value> {
        let v = get_json(&format!("{}/admin/rollouts/{rollout}/events", self.url())).await;
        v["events"].as_array().cloned().unwrap_or_default()
    }

    /// `POST /admin/rollouts/{rollout}/{command}`: the status code and body.
    pub async fn order(&self, rollout: &str, command: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/admin/rollouts/{rollout}/{command}", self.url()))
            .json(
                &serde_json::json!({"reason": format!("{command} from a test"), "actor": self.id}),
            )
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    /// `rampart status ROLLOUT --server URL`, as a person reads it.
    pub fn cli_status(&self, rollout: &str) -> String {
        let out = Command::new(BIN)
            .args(["status", rollout, "--server", &self.url()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub async fn readyz(&self) -> String {
        match reqwest::get(format!("{}/readyz", self.url())).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        }
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

pub async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// One answered chat request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub replica: usize,
    pub sent_ms: i64,
    pub status: u16,
    pub variant: String,
    /// `x-rampart-cohort`: `canary`, `control` or `unkeyed`.
    pub cohort: String,
    pub fallback: bool,
    pub request_id: String,
}

/// One keyed chat request to `url`; status 0 when no answer came (the replica is gone).
pub async fn chat(c: &reqwest::Client, url: &str, key: &str, replica: usize) -> Answer {
    let sent_ms = now_ms();
    let sent = c
        .post(format!("{url}/v1/chat/completions"))
        .header("x-rampart-routing-key", key)
        .json(&serde_json::json!({"model": "support", "messages": [{"role": "user", "content": "where is my card"}]}))
        .send()
        .await;
    let Ok(r) = sent else {
        return Answer {
            replica,
            sent_ms,
            status: 0,
            variant: String::new(),
            cohort: String::new(),
            fallback: false,
            request_id: String::new(),
        };
    };
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    Answer {
        replica,
        sent_ms,
        status: r.status().as_u16(),
        variant: h("x-rampart-variant"),
        cohort: h("x-rampart-cohort"),
        fallback: r.headers().contains_key("x-rampart-fallback"),
        request_id: h("x-rampart-request-id"),
    }
}

/// Wait until `cond` holds (checked every 50 ms); panics after `limit`, which only guards
/// against a hung test: every assertion on timing is made on measured times.
pub async fn until<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "gave up waiting for: {what}");
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until `f` gives a value (checked every 50 ms), as [`until`].
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for: {what}");
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP proxy to PostgreSQL that the test can cut (every connection closed, new ones refused
/// at once) and restore: the database "goes away" for the replicas behind it, and only them.
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<tokio::sync::Notify>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(tokio::sync::Notify::new());
        let (up2, cut2, target) = (up.clone(), cut.clone(), target.to_string());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (target, cut) = (target.clone(), cut2.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.notified() => {}
                    }
                });
            }
        });
        Proxy { port, up, cut }
    }

    /// Close every open connection and refuse new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `url` (a `postgres://…/db` URL) with its host and port replaced by the proxy's.
pub fn through(url: &str, port: u16) -> String {
    let scheme_end = url.find("://").unwrap() + 3;
    let rest = &url[scheme_end..];
    let (auth, hostpath) = match rest.rfind('@') {
        Some(i) => (&rest[..=i], &rest[i + 1..]),
        None => ("", rest),
    };
    let path = hostpath.find('/').map_or("", |i| &hostpath[i..]);
    format!("{}{auth}127.0.0.1:{port}{path}", &url[..scheme_end])
}

/// `host:port` of a `postgres://` URL.
pub fn host_port(url: &str) -> String {
    let scheme_end = url.find("://").unwrap() + 3;
    let rest = &url[scheme_end..];
    let hostpath = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = hostpath.split(['/', '?']).next().unwrap();
    if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    }
}
