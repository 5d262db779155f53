//! Benchmark of the dashboard's data calls over a year-sized store (run by `bench/ui.sh`).
//!
//! 1. Generates `--events N` (default 1,000,000) request events and `--pairs M` (default
//!    100,000) shadow pairs of rollout `support-v2` into a SQLite file through the store
//!    (batches of 10,000; nine classes, three tenants, short answers).
//! 2. Starts the real gateway over that store on 127.0.0.1:0 and lets the controller publish a
//!    status and the history sampler record a few checks.
//! 3. Times every call the dashboard's pages make, over HTTP, as the page makes them: the first
//!    call of each right after the gateway starts (with its status: the comparison report
//!    answers `202` until its first computation is done), then `--runs` (default 7) of each,
//!    printing the median and the slowest, and when the report was ready. Target: each call
//!    under 200 ms.
//!
//! `--db PATH` keeps the database (reused when it already holds the rows). Build in release.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_core::config::Config;
use rampart_core::record::{Outcome, Pair, PairSide, RequestEvent};
use rampart_core::routing::Cohort;
use rampart_gateway::{BuildOptions, Gateway};
use rampart_store::{EventStore, PairStore, SqliteStore, Store};

const ROLLOUT: &str = "support-v2";
const BATCH: usize = 10_000;
const CLASSES: [&str; 9] = [
    "cards",
    "transfers",
    "top_up",
    "exchange",
    "security",
    "account",
    "payments",
    "cash",
    "fees",
];
const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;

fn config(db: &std::path::Path) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
[store]
path = "{}"
[providers.sim]
type = "mock"
[providers.sim.models.old]
[providers.sim.models.new]
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "old"
[routes.support.variants.v2]
provider = "sim"
model = "new"
[rollouts.support-v2]
route = "support"
candidate = "v2"
stages = [ {{ name = "canary-25", percent = 25, shadow_percent = 10, min_duration = "7d" }}, {{ name = "full", percent = 100 }} ]
[rollouts.support-v2.guardrails]
check_interval = "1s"
"#,
        db.display()
    )
}

fn h(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
}

fn event(i: u64, n: u64, start: i64) -> RequestEvent {
    let x = h(i);
    let canary = x.is_multiple_of(4);
    RequestEvent {
        request_id: format!("req_e{i:012}"),
        ts_ms: start + (i as i64) * (YEAR_MS / n as i64),
        route: "support".into(),
        rollout: Some(ROLLOUT.into()),
        stage: Some("canary-25".into()),
        variant: if canary { "v2" } else { "v1" }.into(),
        cohort: if canary {
            Cohort::Canary
        } else {
            Cohort::Control
        },
        key_hash: Some(format!("k{}", x % 50_000)),
        tenant: Some(["acme", "globex", "initech"][(x % 3) as usize].into()),
        class: Some(CLASSES[(x % 9) as usize].into()),
        status: 200,
        outcome: if x.is_multiple_of(100) {
            Outcome::Error
        } else {
            Outcome::Ok
        },
        latency_ms: 200.0 + (x % 600) as f64,
        ttft_ms: None,
        prompt_tokens: 40,
        completion_tokens: 60 + x % 80,
        cost_usd: 0.0004,
        refusal: x % 50 == 1,
        streamed: false,
        finish_reason: Some("stop".into()),
        output_text: None,
    }
}

fn side(variant: &str, text: String, refusal: bool) -> PairSide {
    PairSide {
        variant: variant.into(),
        model: format!("model-{variant}"),
        completion_tokens: text.split_whitespace().count() as u64,
        prompt_tokens: 40,
        text: Some(text),
        finish_reason: Some("stop".into()),
        latency_ms: 300.0,
        cost_usd: 0.0003,
        refusal,
        ..PairSide::default()
    }
}

fn pair(i: u64, n: u64, start: i64) -> Pair {
    let x = h(i);
    let class = CLASSES[(x % 9) as usize];
    Pair {
        request_id: format!("req_p{i:012}"),
        ts_ms: start + (i as i64) * (YEAR_MS / n as i64),
        route: "support".into(),
        rollout: ROLLOUT.into(),
        stage: "canary-25".into(),
        key_hash: Some(format!("k{}", x % 50_000)),
        tenant: Some(["acme", "globex", "initech"][(x % 3) as usize].into()),
        class: Some(class.into()),
        prompt: Some(format!(
            "[{{\"role\":\"user\",\"content\":\"question {i} about {class}\"}}]"
        )),
        prompt_hash: format!("{x:016x}"),
        // Every 13th baseline answers in bullets (a format change against the candidate).
        baseline: side(
            "v1",
            if x.is_multiple_of(13) {
                format!("- {class}\n- step {}", x % 7)
            } else {
                format!("Sure! Here is how {class} works for you, step {}.", x % 7)
            },
            false,
        ),
        candidate: side(
            "v2",
            format!(
                "Certainly. The procedure regarding {class} is as follows, step {}.",
                x % 5
            ),
            x.is_multiple_of(40),
        ),
        tools: None,
        response_format: None,
        embedding_similarity: None,
        judge: None,
        features: None,
    }
}

/// Every data call the pages make, as they make them (first pages of 20 pairs).
fn calls() -> Vec<(&'static str, String)> {
    let r = format!("/ui/api/rollouts/{ROLLOUT}");
    vec![
        ("rollouts page", "/ui/api/rollouts".to_string()),
        ("rollout status", r.clone()),
        ("guardrail history", format!("{r}/history")),
        ("audit log (50)", format!("{r}/events?limit=50")),
        ("comparison report", format!("{r}/report")),
        ("pairs (20)", format!("{r}/pairs?limit=20")),
        (
            "pairs by class (20)",
            format!("{r}/pairs?limit=20&class=fees"),
        ),
        (
            "pairs by tenant (20)",
            format!("{r}/pairs?limit=20&tenant=globex"),
        ),
        (
            "pairs, refusal (20)",
            format!("{r}/pairs?limit=20&flag=refusal"),
        ),
        (
            "pairs, format change (20)",
            format!("{r}/pairs?limit=20&flag=format_change"),
        ),
        (
            "pairs, low similarity (20)",
            format!("{r}/pairs?limit=20&flag=low_similarity"),
        ),
        (
            "pairs, class+tenant+flag (20)",
            format!("{r}/pairs?limit=20&class=fees&tenant=initech&flag=refusal"),
        ),
        // Worst cases: nothing matches, so the walk covers every pair the index holds.
        (
            "pairs, refusal, no match",
            format!("{r}/pairs?limit=20&tenant=nobody&flag=refusal"),
        ),
        (
            "pairs, low similarity, no match",
            format!("{r}/pairs?limit=20&tenant=nobody&flag=low_similarity"),
        ),
        (
            "pairs, class, no match",
            format!("{r}/pairs?limit=20&class=fees&tenant=nobody"),
        ),
    ]
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn fill(store: &SqliteStore, events: u64, pairs: u64) -> Result<(), Box<dyn Error>> {
    let start = 1_700_000_000_000;
    let have_e = store.count_events()?;
    let have_p = store.count_pairs(ROLLOUT)?;
    if have_e == events && have_p == pairs {
        return Ok(());
    }
    if have_e > 0 || have_p > 0 {
        return Err("the database holds other counts; remove it".into());
    }
    let t = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..events {
        batch.push(event(i, events, start));
        if batch.len() == BATCH {
            store.insert_events(&batch)?;
            batch.clear();
        }
    }
    store.insert_events(&batch)?;
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..pairs {
        batch.push(pair(i, pairs, start));
        if batch.len() == BATCH {
            store.insert_pairs(&batch)?;
            batch.clear();
        }
    }
    store.insert_pairs(&batch)?;
    eprintln!(
        "generated {events} events and {pairs} pairs in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let events: u64 = arg("--events").map_or(Ok(1_000_000), |s| s.parse())?;
    let pairs: u64 = arg("--pairs").map_or(Ok(100_000), |s| s.parse())?;
    let runs: usize = arg("--runs").map_or(Ok(7), |s| s.parse())?;
    let tmp = tempfile::tempdir()?;
    let db = arg("--db").map_or_else(|| tmp.path().join("ui-bench.db"), PathBuf::from);
    let store = Arc::new(SqliteStore::open(&db)?);
    fill(&store, events, pairs)?;

    let config = Config::from_toml_str(&config(&db))?;
    let started = Instant::now();
    let gw = Gateway::build(
        config,
        store.clone() as Arc<dyn Store>,
        BuildOptions::default(),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(rampart_gateway::serve(listener, gw, async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{url}{path}");
        async move {
            let t = Instant::now();
            let r = client.get(url).send().await?;
            let status = r.status();
            let body = r.bytes().await?;
            Ok::<_, Box<dyn Error>>((t.elapsed().as_secs_f64() * 1000.0, status, body))
        }
    };
    let calls = calls();
    // The first call of each right after the start, before anything is warm in the gateway.
    let mut first = Vec::new();
    for (_, path) in &calls {
        let (ms, status, _) = get(path.clone()).await?;
        first.push((ms, status));
    }
    // Until the comparison report is computed (the page shows "computing" until then).
    let report_path = format!("/ui/api/rollouts/{ROLLOUT}/report");
    let ready_ms = loop {
        let (_, status, _) = get(report_path.clone()).await?;
        if status == reqwest::StatusCode::OK {
            break started.elapsed().as_secs_f64() * 1000.0;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // A few checks for the history ring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A second page of the pairs: the cursor the first page gives.
    let (_, _, page) = get(format!("/ui/api/rollouts/{ROLLOUT}/pairs?limit=20")).await?;
    let next = serde_json::from_slice::<serde_json::Value>(&page)?["next"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let page2 = format!("/ui/api/rollouts/{ROLLOUT}/pairs?limit=20&before={next}");
    println!(
        "{events} events, {pairs} pairs; {runs} runs per call (cores: {})",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "{:<34} {:>16} {:>10} {:>10}",
        "call", "first ms (status)", "median ms", "max ms"
    );
    let rows = calls
        .into_iter()
        .zip(first.into_iter().map(Some))
        .chain([(("pairs, second page (20)", page2), None)]);
    for ((name, path), first) in rows {
        let mut ms = Vec::with_capacity(runs);
        let mut bytes = 0;
        for _ in 0..runs {
            let (t, status, body) = get(path.clone()).await?;
            if !status.is_success() {
                return Err(format!("{path}: {status}").into());
            }
            ms.push(t);
            bytes = body.len();
        }
        ms.sort_by(f64::total_cmp);
        let first = first.map_or("—".to_string(), |(t, s): (f64, reqwest::StatusCode)| {
            format!("{t:.1} ({})", s.as_u16())
        });
        println!(
            "{name:<34} {first:>16} {:>10.1} {:>10.1}   ({} KB)",
            ms[ms.len() / 2],
            ms[ms.len() - 1],
            bytes / 1000
        );
    }
    println!("comparison report computed {ready_ms:.0} ms after the gateway started");
    let _ = stop.send(());
    server.await??;
    Ok(())
}
