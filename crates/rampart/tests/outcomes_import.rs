//! `rampart outcomes import` against a real `rampart serve`: a CSV and a JSONL export, each with
//! one bad line; the good lines are stored, the bad one is named by its line number, exit 1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rampart");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path) -> (Server, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.join("rampart.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[store]
path = "{db}"
flush_interval = "20ms"
[providers.sim]
type = "mock"
[providers.sim.models.m]
style = "casual"
latency_ms = {{ median = 2, p95 = 4 }}
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
stages = [ {{ name = "c50", percent = 50, min_duration = "1h" }} ]
[[rollouts.r.slow_signals]]
name = "csat"
max_decrease = 1
"#,
            db = dir.join("rampart.db").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (Server(child), format!("http://127.0.0.1:{port}"));
        }
        // Poll interval of the bounded wait.
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("rampart serve did not start listening");
}

fn import(url: &str, file: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["outcomes", "import", "--server", url, "--file"])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_stores_good_lines_and_names_the_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = start(dir.path());
    let c = reqwest::Client::new();
    let mut ids = Vec::new();
    for key in ["user-1", "user-2"] {
        let r = c
            .post(format!("{url}/v1/chat/completions"))
            .header("x-rampart-routing-key", key)
            .json(&serde_json::json!({"model": "support", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        ids.push(
            r.headers()["x-rampart-request-id"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    // Wait (bounded) until the requests' events are stored: an outcome for one is accepted.
    let probe = serde_json::json!({"request_id": ids[1], "name": "probe", "value": 1});
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c
            .post(format!("{url}/v1/outcomes"))
            .json(&probe)
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "events never stored");
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let csv = dir.path().join("export.csv");
    std::fs::write(
        &csv,
        format!(
            "request_id,routing_key,rollout,name,value,at\n{},,,csat,80,\n,user-7,r,csat,\"65.5\",{}\nno-such-id,,,csat,10,\n",
            ids[0],
            humantime::format_rfc3339_seconds(std::time::SystemTime::now() - Duration::from_secs(3600))
        ),
    )
    .unwrap();
    let (code, stdout) = import(&url, &csv);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("2 outcome(s) stored, 1 refused"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 4: unknown request_id `no-such-id`"),
        "{stdout}"
    );

    let jsonl = dir.path().join("export.jsonl");
    std::fs::write(
        &jsonl,
        format!(
            "{{\"request_id\": \"{}\", \"name\": \"csat\", \"value\": 70}}\n{{not json\n{{\"routing_key\": \"user-8\", \"rollout\": \"r\", \"name\": \"csat\", \"value\": 90}}\n",
            ids[1]
        ),
    )
    .unwrap();
    let (code, stdout) = import(&url, &jsonl);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("2 outcome(s) stored, 1 refused"),
        "{stdout}"
    );
    assert!(stdout.contains("line 2: not JSON"), "{stdout}");

    let m = c
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csat: f64 = m
        .lines()
        .filter(|l| l.starts_with("rampart_outcomes_total{rollout=\"r\",name=\"csat\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(csat, 4.0, "{m}");

    // A file that is neither CSV nor JSONL is refused up front.
    let txt = dir.path().join("export.txt");
    std::fs::write(&txt, "x").unwrap();
    let out = Command::new(BIN)
        .args(["outcomes", "import", "--server", &url, "--file"])
        .arg(&txt)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
}
