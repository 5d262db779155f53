//! What the fault tests share: the real `rampart` binary as child processes, a keyed load
//! generator that remembers every answer it received, and signals.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_rampart");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process, killed when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {sig} failed");
    }

    /// Wait (bounded, 30 s) until the process's log holds `text`.
    pub async fn until_logged(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{text}` not logged within 30 s; log:\n{log}"
            );
            // Poll interval of the bounded wait.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The exit status, waiting at most `within` (then the test fails with the log).
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            // Poll interval of the bounded wait.
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the process did not exit within {within:?}; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

/// Start `rampart ARGS…` with its output in `dir/NAME.log`, and wait until `port` accepts.
pub fn spawn(dir: &Path, name: &str, args: &[&str], port: u16) -> Proc {
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut p = Proc { child, log };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return p;
        }
        if let Some(s) = p.child.try_wait().unwrap() {
            panic!(
                "{name} exited ({s}) before listening:\n{}",
                std::fs::read_to_string(&p.log).unwrap_or_default()
            );
        }
        // Poll interval of the bounded wait.
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{name} did not listen on {port}");
}

pub fn serve(dir: &Path, config: &str, port: u16) -> Proc {
    let cfg = dir.join("rampart.toml");
    std::fs::write(&cfg, config).unwrap();
    spawn(
        dir,
        "serve",
        &["serve", "--config", cfg.to_str().unwrap()],
        port,
    )
}

/// `rampart mock-llm` serving the mock models of `config` on `port`.
pub fn mock_llm(dir: &Path, name: &str, config: &str, port: u16) -> Proc {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, config).unwrap();
    let listen = format!("127.0.0.1:{port}");
    spawn(
        dir,
        name,
        &[
            "mock-llm",
            "--listen",
            &listen,
            "--config",
            cfg.to_str().unwrap(),
        ],
        port,
    )
}

/// One answer a client received in full.
#[derive(Debug, Clone)]
pub struct Ack {
    pub request_id: String,
    pub status: u16,
    pub at: Instant,
    pub body: String,
}

/// Keyed chat traffic from `workers` clients, each sending its next request when the last one
/// is answered, until [`Load::stop`]. Every answer read in full is kept.
pub struct Load {
    stop: Arc<AtomicBool>,
    pub acks: Arc<Mutex<Vec<Ack>>>,
    /// Requests that got no complete answer (refused connection, dropped connection, …).
    pub failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(port: u16, route: &str, workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(AtomicU64::new(0));
        let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let tasks = (0..workers)
            .map(|w| {
                let (stop, acks, failed) = (stop.clone(), acks.clone(), failed.clone());
                let (client, url, route) = (client.clone(), url.clone(), route.to_string());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let body = serde_json::json!({
                            "model": route,
                            "messages": [{"role": "user", "content": format!("Where is my card? ({w}/{n})")}],
                        });
                        let sent = client
                            .post(&url)
                            .header("x-rampart-routing-key", format!("user-{w}"))
                            .json(&body)
                            .send()
                            .await;
                        let Ok(r) = sent else {
                            failed.fetch_add(1, Ordering::SeqCst);
                            // Back off before the next attempt (pacing the load), not a wait for a result.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        };
                        let status = r.status().as_u16();
                        let id = r
                            .headers()
                            .get("x-rampart-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        match r.text().await {
                            Ok(body) => acks.lock().unwrap().push(Ack {
                                request_id: id,
                                status,
                                at: Instant::now(),
                                body,
                            }),
                            Err(_) => {
                                failed.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            acks,
            failed,
            tasks,
        }
    }

    pub fn acked(&self) -> usize {
        self.acks.lock().unwrap().len()
    }

    /// Wait (bounded) until at least `n` answers came back in all.
    pub async fn until_acked(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.acked() < n {
            assert!(
                Instant::now() < deadline,
                "only {} answers within 120s",
                self.acked()
            );
            // Poll interval of the bounded wait.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(self) -> Vec<Ack> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        Arc::try_unwrap(self.acks)
            .map(|m| m.into_inner().unwrap())
            .unwrap_or_else(|a| a.lock().unwrap().clone())
    }
}

/// The acknowledged answers (2xx with a request id) whose event `db` does not hold.
pub fn missing_events(db: &Path, acks: &[Ack]) -> Vec<Ack> {
    use rampart_store::EventStore;
    let store = rampart_store::SqliteStore::open(db).unwrap();
    acks.iter()
        .filter(|a| (200..300).contains(&a.status) && !a.request_id.is_empty())
        .filter(|a| !store.event_exists(&a.request_id).unwrap())
        .cloned()
        .collect()
}
