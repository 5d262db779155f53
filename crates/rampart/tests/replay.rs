//! `rampart replay` end to end: the real binary, the `openai` provider against `rampart mock-llm`
//! over HTTP, SQLite on disk. The dataset is built from the bundled BANKING77 queries
//! (data/banking77, CC BY 4.0: Casanueva et al., "Efficient Intent Detection with Dual Sentence
//! Encoders", NLP4ConvAI 2020).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rampart_core::record::{Pair, PairSide};
use rampart_store::{PairStore, SqliteStore};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_rampart");
/// The class the refusing candidate refuses.
const REFUSED: &str = "card_arrival";
const CLASSES: [&str; 6] = [
    "card_arrival",
    "exchange_rate",
    "lost_or_stolen_card",
    "top_up_failed",
    "pin_blocked",
    "transfer_timing",
];
const PER_CLASS: usize = 25;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    p
}

/// The first `PER_CLASS` queries of each of `CLASSES`, as (text, class).
fn banking77() -> Vec<(String, String)> {
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/banking77/train.csv"
    ))
    .unwrap();
    let mut out = Vec::new();
    for class in CLASSES {
        let texts = csv.lines().skip(1).filter_map(|l| {
            // The category never holds a comma; the text may be quoted (RFC 4180).
            let (text, cat) = l.rsplit_once(',')?;
            let text = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                Some(q) => q.replace("\"\"", "\""),
                None => text.to_string(),
            };
            (cat == class).then_some(text)
        });
        out.extend(texts.take(PER_CLASS).map(|t| (t, class.to_string())));
    }
    assert_eq!(out.len(), CLASSES.len() * PER_CLASS);
    out
}

fn dataset(dir: &Path) -> PathBuf {
    let lines: Vec<String> = banking77()
        .into_iter()
        .enumerate()
        .map(|(i, (text, class))| {
            json!({
                "messages": [{"role": "user", "content": text}],
                "class": class,
                "routing_key": format!("user-{i}"),
            })
            .to_string()
        })
        .collect();
    write(dir, "banking77.jsonl", &(lines.join("\n") + "\n"))
}

/// `rampart mock-llm` serving `base` and `refuser` (refuses every `REFUSED` request), with a
/// median latency of `median_ms`.
struct Mock {
    child: Child,
    url: String,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mock_llm(dir: &Path, median_ms: u64) -> Mock {
    let port = free_port();
    let cfg = write(
        dir,
        "mock.toml",
        &format!(
            r#"
[providers.sim]
type = "mock"
[providers.sim.models.base]
style = "casual"
latency_ms = {{ median = {median_ms}, p95 = {p95} }}
refusal_rate = 0.01
[providers.sim.models.refuser]
style = "casual"
latency_ms = {{ median = {median_ms}, p95 = {p95} }}
refusal_rate = 0.01
[[providers.sim.models.refuser.overrides]]
class = "{REFUSED}"
refusal_rate = 1.0
"#,
            p95 = median_ms * 2
        ),
    );
    let child = Command::new(BIN)
        .args([
            "mock-llm",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mock-llm did not start");
        // Poll interval of the bounded wait.
        std::thread::sleep(Duration::from_millis(20));
    }
    Mock {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// A gateway config whose rollout `support-v2` has candidate model `candidate`, both variants
/// on the `openai` provider pointed at the mock.
fn config(dir: &Path, mock: &Mock, candidate: &str, extra: &str) -> PathBuf {
    let store = format!("[store]\npath = \"{}\"", dir.join("rampart.db").display());
    config_on(dir, mock, candidate, &store, extra)
}

fn config_on(dir: &Path, mock: &Mock, candidate: &str, store: &str, extra: &str) -> PathBuf {
    write(
        dir,
        &format!("rampart-{candidate}.toml"),
        &format!(
            r#"
{store}
[providers.llm]
type = "openai"
base_url = "{url}/v1"
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "llm"
model = "base"
[routes.support.variants.v2]
provider = "llm"
model = "{candidate}"
[rollouts.support-v2]
route = "support"
candidate = "v2"
stages = [
  {{ name = "shadow", shadow_percent = 50, min_duration = "1h", gates = {{ mde = 0.1 }} }},
  {{ name = "canary", percent = 5, min_duration = "1h" }},
]
{extra}
"#,
            url = mock.url,
        ),
    )
}

fn replay(cfg: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["replay", "--rollout", "support-v2", "--config"])
        .arg(cfg)
        .args(args)
        .output()
        .unwrap()
}

fn stored_stages(dir: &Path) -> Vec<(String, u64)> {
    let store = SqliteStore::open(&dir.join("rampart.db")).unwrap();
    let mut by_stage = std::collections::BTreeMap::<String, u64>::new();
    store
        .for_each_pair("support-v2", &mut |p| {
            *by_stage.entry(p.stage).or_default() += 1;
        })
        .unwrap();
    by_stage.into_iter().collect()
}

#[test]
fn a_candidate_that_refuses_one_class_fails_and_an_identical_one_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mock = mock_llm(dir.path(), 5);
    let data = dataset(dir.path());
    let n = CLASSES.len() * PER_CLASS;

    // The refusing candidate: exit 1, the report flags its class and only that class.
    let refusing = config(dir.path(), &mock, "refuser", "");
    let out_json = dir.path().join("refusing.json");
    let out = Command::new(BIN)
        .args(["replay", "--rollout", "support-v2", "--config"])
        .arg(&refusing)
        .args([
            "--dataset",
            data.to_str().unwrap(),
            "--format",
            "json",
            "--out",
        ])
        .arg(&out_json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
    assert_eq!(doc["pairs"], n as u64);
    assert_eq!(doc["replay"]["passed"], false);
    assert_eq!(doc["replay"]["run"]["completed"], n as u64);
    assert_eq!(doc["replay"]["run"]["interrupted"], false);
    let flagged: Vec<&str> = doc["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["flags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "refusal")
        })
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(flagged, [REFUSED], "{}", doc["classes"]);
    let refusals = doc["replay"]["gates"]["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "shadow_refusals")
        .unwrap();
    assert_eq!(refusals["passed"], false);
    // The verdict also reaches the terminal.
    assert!(stderr.contains("verdict: FAIL"), "{stderr}");

    // Text: the flagged class and the failing gate, on stdout.
    let text = replay(&refusing, &["--dataset", data.to_str().unwrap()]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("classes: 1 of 6 flagged"), "{text}");
    let class_line = text
        .lines()
        .find(|l| l.trim_start().starts_with(REFUSED))
        .unwrap();
    assert!(class_line.contains("refusal"), "{class_line}");
    assert!(text.contains("shadow_refusals      FAIL"), "{text}");

    // The identical candidate (same answers, another model name): exit 0.
    let identical = config(dir.path(), &mock, "base", "");
    let html = dir.path().join("identical.html");
    let out = Command::new(BIN)
        .args(["replay", "--rollout", "support-v2", "--config"])
        .arg(&identical)
        .args([
            "--dataset",
            data.to_str().unwrap(),
            "--format",
            "html",
            "--out",
        ])
        .arg(&html)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("verdict: PASS"), "{stderr}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<section id=\"replay\">") && page.contains("verdict: PASS"));

    // Every run is its own offline stage, with every pair stored.
    let stages = stored_stages(dir.path());
    assert_eq!(stages.len(), 3, "{stages:?}");
    for (stage, count) in &stages {
        assert!(stage.starts_with("offline-"), "{stage}");
        assert_eq!(*count, n as u64, "{stage}");
    }
}

#[test]
fn a_bad_dataset_line_is_named_and_nothing_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let mock = mock_llm(dir.path(), 5);
    let cfg = config(dir.path(), &mock, "base", "");
    let data = write(
        dir.path(),
        "bad.jsonl",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n\n{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"class\":7}\n",
    );
    let out = replay(&cfg, &["--dataset", data.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.jsonl:3: `class` must be a non-empty string"),
        "{stderr}"
    );
    assert!(stored_stages(dir.path()).is_empty());
    let out = replay(&cfg, &["--rollout-typo"]);
    assert_eq!(out.status.code(), Some(2));
}

fn captured_pair(i: usize, text: &str, class: &str, ts_ms: i64) -> Pair {
    let side = PairSide {
        variant: "v1".into(),
        model: "base".into(),
        text: Some("an answer".into()),
        ..PairSide::default()
    };
    Pair {
        request_id: format!("live-{i}"),
        ts_ms,
        route: "support".into(),
        rollout: "support-v2".into(),
        stage: "shadow".into(),
        key_hash: None,
        tenant: None,
        class: Some(class.into()),
        prompt: Some(json!([{"role": "user", "content": text}]).to_string()),
        prompt_hash: format!("h{i}"),
        baseline: side.clone(),
        candidate: side,
        tools: None,
        response_format: None,
        embedding_similarity: None,
        judge: None,
        features: None,
    }
}

#[test]
fn from_store_replays_the_captured_prompts_against_the_current_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let mock = mock_llm(dir.path(), 5);
    let cfg = config(dir.path(), &mock, "refuser", "");
    // Live shadow pairs with captured prompts; the refused class is the newest.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let queries = banking77();
    let n = queries.len();
    let pairs: Vec<Pair> = queries
        .iter()
        .enumerate()
        .map(|(i, (t, c))| captured_pair(i, t, c, now - 3_600_000 - i as i64))
        .collect();
    {
        let store = SqliteStore::open(&dir.path().join("rampart.db")).unwrap();
        store.insert_pairs(&pairs).unwrap();
    }
    let out_json = dir.path().join("store.json");
    let out = Command::new(BIN)
        .args(["replay", "--rollout", "support-v2", "--config"])
        .arg(&cfg)
        .args([
            "--from-store",
            "--since",
            "1d",
            "--limit",
            "120",
            "--format",
            "json",
            "--out",
        ])
        .arg(&out_json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
    assert_eq!(doc["replay"]["source"], "store");
    assert_eq!(doc["replay"]["run"]["items"], 120);
    assert_eq!(doc["pairs"], 120);
    let flagged: Vec<&str> = doc["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["flags"].as_array().unwrap().is_empty())
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(flagged, [REFUSED]);
    // The mock was sent the newest 120 captured prompts, and not the older ones.
    let received: Value = serde_json::from_str(&http_get(&mock.url, "/_mock/received")).unwrap();
    let sent: Vec<&str> = received
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["body"]["messages"][0]["content"].as_str())
        .collect();
    assert_eq!(sent.len(), 240, "both variants, once each");
    for (i, (text, _)) in queries.iter().enumerate() {
        assert_eq!(
            sent.contains(&text.as_str()),
            i < 120,
            "query {i} of {n}: {text}"
        );
    }
    // Replayed pairs are an offline stage beside the live one; a second --from-store run
    // would not pick them up.
    let stages = stored_stages(dir.path());
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(
        stages[0].0.starts_with("offline-") && stages[0].1 == 120,
        "{stages:?}"
    );
    assert_eq!(stages[1], ("shadow".to_string(), n as u64));
}

/// A plain HTTP/1.1 GET; the body.
fn http_get(base: &str, path: &str) -> String {
    use std::io::Read;
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// Ctrl-C: the pairs answered so far are stored, the report covers them and says so; exit 130.
#[test]
fn ctrl_c_keeps_what_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let mock = mock_llm(dir.path(), 400);
    let cfg = config(dir.path(), &mock, "base", "");
    let data = dataset(dir.path());
    let out_json = dir.path().join("partial.json");
    let mut child = Command::new(BIN)
        .args(["replay", "--rollout", "support-v2", "--config"])
        .arg(&cfg)
        .args([
            "--dataset",
            data.to_str().unwrap(),
            "--concurrency",
            "2",
            "--format",
            "json",
            "--out",
        ])
        .arg(&out_json)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first progress line (a tenth of the run done), then interrupt.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no progress: {seen}"
        );
        seen.push_str(&line);
        if line.starts_with('[') {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "{seen}{rest}");
    assert!(rest.contains("INTERRUPTED after"), "{rest}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
    let done = doc["replay"]["run"]["completed"].as_u64().unwrap();
    assert_eq!(doc["replay"]["run"]["interrupted"], true);
    assert!(
        done > 0 && done < (CLASSES.len() * PER_CLASS) as u64,
        "{done}"
    );
    assert_eq!(doc["pairs"], done);
    let stages = stored_stages(dir.path());
    assert_eq!(stages.len(), 1);
    assert_eq!(stages[0].1, done, "every answered pair is stored, no more");
}

/// The run's budget (`shadow.max_tokens_per_day`, both variants counted): once spent, no new
/// line starts; the report covers what was answered and says why it stopped.
#[test]
fn the_shadow_budget_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let mock = mock_llm(dir.path(), 5);
    let cfg = config(
        dir.path(),
        &mock,
        "base",
        "[shadow]\nmax_tokens_per_day = 2000\n",
    );
    let data = dataset(dir.path());
    let out_json = dir.path().join("budget.json");
    let out = Command::new(BIN)
        .args(["replay", "--rollout", "support-v2", "--config"])
        .arg(&cfg)
        .args([
            "--dataset",
            data.to_str().unwrap(),
            "--concurrency",
            "1",
            "--format",
            "json",
            "--out",
        ])
        .arg(&out_json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Too few pairs for min_pairs: the gates fail.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("STOPPED by the budget (budget_tokens"),
        "{stderr}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
    let run = &doc["replay"]["run"];
    assert_eq!(run["budget_stop"], "budget_tokens");
    let (done, tokens) = (
        run["completed"].as_u64().unwrap(),
        run["tokens"].as_u64().unwrap(),
    );
    assert!(done > 1 && done < 150, "{run}");
    // One line at a time: it stopped at the first line that reached the cap.
    let store = SqliteStore::open(&dir.path().join("rampart.db")).unwrap();
    let mut per_pair = Vec::new();
    store
        .for_each_pair("support-v2", &mut |p| {
            let t = |s: &PairSide| s.prompt_tokens + s.completion_tokens;
            per_pair.push(t(&p.baseline) + t(&p.candidate));
        })
        .unwrap();
    assert_eq!(per_pair.len() as u64, done);
    assert_eq!(per_pair.iter().sum::<u64>(), tokens);
    assert!(tokens >= 2000, "{run}");
    assert!(tokens - per_pair.last().unwrap() < 2000, "{per_pair:?}");
    assert_eq!(doc["pairs"], done);
    let gate = doc["replay"]["gates"]["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "min_pairs")
        .unwrap();
    assert_eq!(gate["passed"], false);
}

/// The same run on PostgreSQL (`store.type = "postgres"`): every pair lands in the database as
/// the offline stage. Skips only when neither `RAMPART_TEST_PG_URL` nor `CI` is set and no
/// server answers at the default URL.
#[test]
fn replay_stores_its_pairs_in_postgres() {
    use rampart_store::postgres::scratch::ScratchDatabase;
    use rampart_store::{PgOptions, PgStore};
    // Never skipped: an unreachable server fails the test.
    let db = ScratchDatabase::for_tests("rampart_replay")
        .unwrap_or_else(|e| panic!("PostgreSQL is required (set RAMPART_TEST_PG_URL): {e}"));
    let dir = tempfile::tempdir().unwrap();
    let mock = mock_llm(dir.path(), 5);
    let store = "[store]\ntype = \"postgres\"\nurl_env = \"RAMPART_TEST_REPLAY_DB\"";
    let cfg = config_on(dir.path(), &mock, "refuser", store, "");
    let data = dataset(dir.path());
    let out = Command::new(BIN)
        .args(["replay", "--rollout", "support-v2", "--config"])
        .arg(&cfg)
        .args(["--dataset", data.to_str().unwrap()])
        .env("RAMPART_TEST_REPLAY_DB", db.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("classes: 1 of 6 flagged"), "{stdout}");
    let opts = PgOptions {
        pool_size: 1,
        maintenance_interval: None,
        ..PgOptions::default()
    };
    let pg = PgStore::connect(db.url(), opts).unwrap();
    let mut stages = std::collections::BTreeMap::<String, u64>::new();
    pg.for_each_pair("support-v2", &mut |p| {
        *stages.entry(p.stage).or_default() += 1
    })
    .unwrap();
    let stages: Vec<_> = stages.into_iter().collect();
    assert_eq!(stages.len(), 1, "{stages:?}");
    assert!(stages[0].0.starts_with("offline-"));
    assert_eq!(stages[0].1, (CLASSES.len() * PER_CLASS) as u64);
}
