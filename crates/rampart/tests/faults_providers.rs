//! Faults against the real binary, part 2: providers that hang, fail and die. `rampart serve`
//! reaches two `rampart mock-llm` processes over HTTP (an `openai` provider each): the baseline
//! and a candidate shadowed on every request. See `faults.rs` for the map of the fault suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod faults_common;

use std::time::{Duration, Instant};

use faults_common::{Load, Proc, free_port, missing_events, mock_llm, serve};
use rampart_store::PairStore;

fn mock_config(model: &str, extra: &str) -> String {
    format!(
        r#"
[providers.sim]
type = "mock"
[providers.sim.models.{model}]
latency_ms = {{ median = 20, p95 = 50 }}
{extra}
"#
    )
}

fn gateway_config(port: u16, db: &std::path::Path, base: u16, cand: u16) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_grace = "10s"
[store]
path = "{db}"
flush_interval = "50ms"
[shadow]
timeout = "1s"
max_in_flight = 256
[providers.base]
type = "openai"
base_url = "http://127.0.0.1:{base}/v1"
timeout = "5s"
connect_timeout = "1s"
retries = 0
[providers.cand]
type = "openai"
base_url = "http://127.0.0.1:{cand}/v1"
timeout = "5s"
connect_timeout = "1s"
retries = 0
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "base"
model = "base-model"
[routes.support.variants.v2]
provider = "cand"
model = "cand-model"
[rollouts.support-v2]
route = "support"
candidate = "v2"
stages = [{{ name = "shadow", shadow_percent = 100, min_duration = "1h" }}]
"#,
        db = db.display()
    )
}

/// Pairs of the rollout, once at least `n` are stored (bounded wait).
async fn pairs_at_least(db: &std::path::Path, n: u64) -> Vec<rampart_core::record::Pair> {
    let store = rampart_store::SqliteStore::open(db).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.count_pairs("support-v2").unwrap() < n {
        assert!(Instant::now() < deadline, "fewer than {n} pairs stored");
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store
        .recent_pairs("support-v2", 100_000, None, None)
        .unwrap()
}

/// A candidate that hangs on 20 % of calls and fails 20 %, and then dies, never reaches a user;
/// its failures are stored on the pairs. Then the baseline dies: users get an OpenAI-shaped
/// 5xx that names no upstream address, and those requests are stored as errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hanging_failing_and_dying_candidates_never_reach_users_a_dead_baseline_is_a_clean_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rampart.db");
    let (port, base_port, cand_port) = (free_port(), free_port(), free_port());
    let base: Proc = mock_llm(
        dir.path(),
        "base",
        &mock_config("base-model", ""),
        base_port,
    );
    let cand: Proc = mock_llm(
        dir.path(),
        "cand",
        &mock_config("cand-model", "error_rate = 0.2\nhang_rate = 0.2"),
        cand_port,
    );
    let mut server = serve(
        dir.path(),
        &gateway_config(port, &db, base_port, cand_port),
        port,
    );

    let load = Load::start(port, "support", 16);
    load.until_acked(300).await;
    // The candidate dies mid-run.
    drop(cand);
    let n = load.acked();
    load.until_acked(n + 100).await;
    let acks = load.stop().await;
    let not_ok: Vec<_> = acks.iter().filter(|a| a.status != 200).collect();
    assert!(
        not_ok.is_empty(),
        "{} of {} users got a non-2xx: {:?}",
        not_ok.len(),
        acks.len(),
        not_ok.first()
    );

    // Pairs record the candidate's hangs (shadow timeout), injected 500s and the dead process.
    let pairs = pairs_at_least(&db, 300).await;
    let errors: Vec<&str> = pairs
        .iter()
        .filter_map(|p| p.candidate.error.as_deref())
        .collect();
    let share = errors.len() as f64 / pairs.len() as f64;
    assert!(
        share > 0.3,
        "candidate errors on {} of {} pairs",
        errors.len(),
        pairs.len()
    );
    assert!(pairs.iter().all(|p| p.baseline.error.is_none()));

    // The baseline dies: a clean, OpenAI-shaped 5xx, and the event is stored as an error.
    drop(base);
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .header("x-rampart-routing-key", "user-x")
        .json(&serde_json::json!({"model": "support", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let id = r.headers()["x-rampart-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = r.json().await.unwrap();
    assert!((500..600).contains(&status), "{status} {body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body["error"]["type"].is_string(), "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("127.0.0.1") && !text.contains(&base_port.to_string()),
        "the upstream address leaked to the client: {text}"
    );

    server.signal("TERM");
    let exit = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(missing_events(&db, &acks).is_empty());
    use rampart_store::EventStore;
    let store = rampart_store::SqliteStore::open(&db).unwrap();
    let ev = store
        .get_event(&id)
        .unwrap()
        .expect("the failed request's event");
    assert_eq!(ev.status, status);
    assert_ne!(ev.outcome, rampart_core::record::Outcome::Ok);
}
