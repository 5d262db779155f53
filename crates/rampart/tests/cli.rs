//! The `rampart` binary: config checking, signals and graceful drain, the pairs view.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_core::config::ProviderKind;

const BIN: &str = env!("CARGO_BIN_EXE_rampart");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    p
}

#[test]
fn check_config_lists_every_error_with_its_path_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "bad.toml",
        r#"
[server]
listen = "not-an-address"
[providers.sim]
type = "mock"
[providers.sim.models.m]
style = "sarcastic"
error_rate = 1.5
[providers.broken]
type = "openai"
bse_url = "typo"
[routes.support]
baseline = "v9"
[routes.support.variants.v1]
provider = "nowhere"
model = "m"
[rollouts.r]
route = "support"
candidate = "v7"
stages = [ { name = "c", percent = 150, min_duration = "10" } ]
[rollouts.r.guardrails]
window = "5 parsecs"
"#,
    );
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stdout = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "server.listen: must be an IP address and port, like \"127.0.0.1:8080\" (got `not-an-address`)",
        "providers.sim.models.m.style: must be one of \"casual\", \"formal\", \"terse\" (got `sarcastic`)",
        "providers.sim.models.m.error_rate: must be between 0 and 1 (got `1.5`)",
        "providers.broken.bse_url: unknown field `bse_url`",
        "routes.support.baseline: must name one of the route's variants (v1) (got `v9`)",
        "routes.support.variants.v1.provider: no such provider (declared: broken, sim) (got `nowhere`)",
        "rollouts.r.candidate: route `support` has no such variant (got `v7`)",
        "rollouts.r.stages[0].percent: must be between 0 and 100 (got `150`)",
        "rollouts.r.stages[0].min_duration: must be a duration with a unit",
        "rollouts.r.guardrails.window: not a valid duration",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }

    let ok = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/quickstart.toml"
        ))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let syntax = write(dir.path(), "syntax.toml", "[server\nlisten = 1");
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&syntax)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("invalid TOML")
    );
}

/// The gateway's config: route `support` on the upstream at `upstream` (an OpenAI-compatible
/// endpoint, see [`slow_upstream`]).
fn slow_config(dir: &std::path::Path, port: u16, upstream: u16) -> std::path::PathBuf {
    write(
        dir,
        "slow.toml",
        &format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_grace = "20s"
[store]
path = "{db}"
[providers.sim]
type = "openai"
base_url = "http://127.0.0.1:{upstream}/v1"
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "slow"
"#,
            db = dir.join("rampart.db").display()
        ),
    )
}

/// A slow upstream in this process: the simulator's model `slow` answering after
/// `latency_ms = (median, p95)`, recording what it receives so a test can wait until its
/// requests have reached the provider. Returns its port.
async fn slow_upstream(latency_ms: (u32, u32)) -> (u16, Arc<rampart_mock::Simulator>) {
    let mock = format!(
        r#"
[providers.sim]
type = "mock"
[providers.sim.models.slow]
style = "casual"
latency_ms = {{ median = {}, p95 = {} }}
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "slow"
"#,
        latency_ms.0, latency_ms.1
    );
    let config = rampart_core::config::Config::from_toml_str(&mock).unwrap();
    let ProviderKind::Mock(m) = &config.providers["sim"].kind else {
        panic!("the upstream's config declares a mock provider");
    };
    let sim = Arc::new(rampart_mock::Simulator::from_config(m));
    sim.record_received(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(rampart_mock::serve(
        listener,
        sim.clone(),
        std::future::pending(),
    ));
    (port, sim)
}

/// Wait (bounded, 30 s) until `cond` holds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(cfg: &std::path::Path, port: u16) -> Server {
    start_with(Command::new(BIN), cfg, port)
}

/// `rampart serve` pinned to one CPU (`taskset -c 0`), where it runs tokio's current-thread
/// runtime.
fn start_on_one_cpu(cfg: &std::path::Path, port: u16) -> Server {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0", BIN]);
    start_with(cmd, cfg, port)
}

/// Starts `cmd serve --config cfg`, its log in `serve.log` beside `cfg`.
fn start_with(mut cmd: Command, cfg: &std::path::Path, port: u16) -> Server {
    let log = std::fs::File::create(cfg.with_file_name("serve.log")).unwrap();
    let mut child = cmd
        .args(["serve", "--config"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Server(child);
        }
        // Poll interval of the bounded wait.
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("rampart serve did not start listening");
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_stores_their_events() {
    sigterm_drains_and_stores(false).await;
}

/// The same on one CPU, where the gateway runs a current-thread runtime: the blocking store
/// writer, the drain and the signal handling work there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_cpu_sigterm_drains_in_flight_requests_and_stores_their_events() {
    sigterm_drains_and_stores(true).await;
}

async fn sigterm_drains_and_stores(one_cpu: bool) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (upstream, sim) = slow_upstream((1500, 1600)).await;
    let cfg = slow_config(dir.path(), port, upstream);
    let mut server = if one_cpu {
        start_on_one_cpu(&cfg, port)
    } else {
        start(&cfg, port)
    };
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let client = reqwest::Client::new();
    let in_flight: Vec<_> = (0..5)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .header("x-rampart-routing-key", format!("u{i}"))
                    .json(&serde_json::json!({"model": "support", "messages": [{"role": "user", "content": "slow one"}]}))
                    .send()
                    .await
                    .unwrap();
                let id = r.headers()["x-rampart-request-id"].to_str().unwrap().to_string();
                (r.status().as_u16(), id, r.text().await.unwrap())
            })
        })
        .collect();
    // Once the requests have reached the provider, ask the gateway to stop.
    until("five requests at the provider", || {
        sim.received().len() >= 5
    })
    .await;
    signal(&server.0, "TERM");
    let mut ids = Vec::new();
    for h in in_flight {
        let (status, id, body) = h.await.unwrap();
        assert_eq!(status, 200, "{body}");
        ids.push(id);
    }
    let status = tokio::task::spawn_blocking(move || server.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    if one_cpu {
        let log = std::fs::read_to_string(cfg.with_file_name("serve.log")).unwrap();
        assert!(
            log.contains("current-thread"),
            "on one CPU the runtime is the current-thread one; log:\n{log}"
        );
    }

    let store = rampart_store::SqliteStore::open(&dir.path().join("rampart.db")).unwrap();
    use rampart_store::EventStore;
    for id in ids {
        let ev = store
            .get_event(&id)
            .unwrap()
            .unwrap_or_else(|| panic!("event {id} missing"));
        assert_eq!(ev.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The in-flight request is far slower than the test is willing to wait.
    let (upstream, sim) = slow_upstream((60000, 61000)).await;
    let cfg = slow_config(dir.path(), port, upstream);
    let mut server = start(&cfg, port);
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    tokio::spawn(async move {
        let _ = reqwest::Client::new()
            .post(url)
            .json(&serde_json::json!({"model": "support", "messages": [{"role": "user", "content": "x"}]}))
            .send()
            .await;
    });
    until("the request at the provider", || !sim.received().is_empty()).await;
    signal(&server.0, "TERM");
    // The first signal was taken once the gateway stops accepting connections (it drains).
    until("the listener to close", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    })
    .await;
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "the first signal drains; it must not exit yet"
    );
    signal(&server.0, "INT");
    let status = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            if let Some(s) = server.0.try_wait().unwrap() {
                return Some(s);
            }
            // Poll interval of the bounded wait.
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    })
    .await
    .unwrap()
    .expect("the second signal did not stop the process");
    assert_eq!(status.code(), Some(130));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_needs_the_token_and_the_cli_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write(
        dir.path(),
        "admin.toml",
        &format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
admin_token_env = "RAMPART_ADMIN_TOKEN"
[store]
path = "{db}"
[providers.sim]
type = "mock"
[providers.sim.models.m]
style = "casual"
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
stages = [ {{ name = "c5", percent = 5, min_duration = "1h" }} ]
"#,
            db = dir.path().join("rampart.db").display()
        ),
    );
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("RAMPART_ADMIN_TOKEN", "s3cret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    for _ in 0..600 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        // Poll interval of the bounded wait.
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}/admin/rollouts");
    let c = reqwest::Client::new();
    assert_eq!(c.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        c.get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.get(&url)
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let server_url = format!("http://127.0.0.1:{port}");
    let cli = |args: &[&str], token: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .args(["--server", &server_url])
            .env_remove("RAMPART_ADMIN_TOKEN");
        if let Some(t) = token {
            cmd.env("RAMPART_ADMIN_TOKEN", t);
        }
        cmd.output().unwrap()
    };
    let out = cli(&["status", "r"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let out = cli(&["status", "r", "--json"], Some("s3cret"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stage"], "c5");
    // `rampart report`: the token is sent; JSON, terminal-width text, HTML to a file.
    let out = cli(&["report", "r", "--format", "json"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let out = cli(&["report", "r", "--format", "json"], Some("s3cret"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rollout"], "r");
    assert_eq!(v["pairs"], 0);
    let mut cmd = Command::new(BIN);
    let out = cmd
        .args(["report", "r", "--server", &server_url])
        .env("RAMPART_ADMIN_TOKEN", "s3cret")
        .env("COLUMNS", "40")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("rampart comparison report"), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 40), "{text}");
    let html = dir.path().join("report.html");
    let out = cli(
        &[
            "report",
            "r",
            "--format",
            "html",
            "--out",
            html.to_str().unwrap(),
        ],
        Some("s3cret"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );
    let out = cli(&["report", "nope"], Some("s3cret"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown rollout"));
    let out = cli(&["pause", "r", "--reason", "cli test"], Some("s3cret"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("paused"));
    let out = cli(
        &["rollback", "r", "--reason", "cli rollback"],
        Some("s3cret"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["status", "r"], Some("s3cret"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rolled_back"), "{text}");
    signal(&server.0, "TERM");
    let _ = server.0.wait();
}

#[test]
fn plan_prints_each_stage() {
    let out = Command::new(BIN)
        .args(["plan", "--config"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/openai.toml"
        ))
        .args(["--rps", "50", "--control-rates", "0.01,0.02"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for stage in ["shadow", "canary-1", "canary-5", "canary-25", "full"] {
        assert!(text.contains(stage), "{text}");
    }
    assert!(text.contains("samples per cohort"));
    // 1139 = the simple-convention sample size for 2% → 4% at α 0.05, power 0.8 (the larger
    // of the two control rates' needs), as rampart-stats computes it.
    assert!(text.contains("1139"), "{text}");
}
