//! `rampart demo`: the whole product in a few minutes, with no network and no keys.
//!
//! A gateway over the simulated provider and SQLite in a temp dir, a rollout with its stages
//! compressed to seconds, and a replay of the BANKING77 customer-support queries (Casanueva et
//! al. 2020, CC BY 4.0; bundled under `data/banking77/`) from a few thousand simulated users,
//! each sticky to their cohort, with some thumbs up/down feedback. A live line shows the stage,
//! traffic per cohort and the guardrails with their evidence; the run ends when the rollout
//! completes or is rolled back, with a summary (and one JSON line with `--json`).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::ValueEnum;
use rampart_core::config::Config;
use rampart_core::rollout::sim::SplitMix64;
use rampart_gateway::control::RolloutStatus;
use rampart_gateway::{BuildOptions, Gateway};
use rampart_store::{AuditEntry, PairStore, RolloutStore, SqliteStore, Store};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const BANKING77: &str = include_str!("../../../../data/banking77/train.csv");
const MAX_RUN: Duration = Duration::from_secs(170);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// The candidate's tone drifts and it refuses far more in one prompt class: the kill switch trips.
    Regression,
    /// An equivalent candidate: promoted stage by stage to 100%.
    Healthy,
    /// The candidate is much slower: the p95 latency guardrail trips.
    Latency,
    /// The candidate fails one call in five: the error-rate guardrail trips.
    Errors,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Regression => "regression",
            Scenario::Healthy => "healthy",
            Scenario::Latency => "latency",
            Scenario::Errors => "errors",
        }
    }

    /// The candidate model's simulated behaviour.
    fn candidate_model(self) -> &'static str {
        match self {
            Scenario::Regression => {
                r#"style = "formal"
latency_ms = { median = 38, p95 = 85 }
refusal_rate = 0.01
length_factor = 1.3
[[providers.sim.models.support-new.overrides]]
class = "cards"
refusal_rate = 0.5"#
            }
            Scenario::Healthy => {
                r#"style = "casual"
latency_ms = { median = 38, p95 = 85 }
refusal_rate = 0.01"#
            }
            Scenario::Latency => {
                r#"style = "casual"
latency_ms = { median = 140, p95 = 300 }
refusal_rate = 0.01"#
            }
            Scenario::Errors => {
                r#"style = "casual"
latency_ms = { median = 38, p95 = 85 }
refusal_rate = 0.01
error_rate = 0.2"#
            }
        }
    }
}

fn config_text(s: Scenario, db: &std::path::Path) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "5s"

[store]
path = "{db}"
flush_interval = "100ms"

[providers.sim]
type = "mock"
seed = 7
[providers.sim.models.support-old]
style = "casual"
latency_ms = {{ median = 40, p95 = 90 }}
refusal_rate = 0.01
[providers.sim.models.support-new]
{candidate}

[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "support-old"
prompt_version = "support-v1"
system_prompt = "You are a friendly support agent for a bank."
input_usd_per_mtok = 2.5
output_usd_per_mtok = 10.0
[routes.support.variants.v2]
provider = "sim"
model = "support-new"
prompt_version = "support-v2"
system_prompt = "You are a support agent for a bank."
input_usd_per_mtok = 1.0
output_usd_per_mtok = 4.0

[rollouts.support-v2]
route = "support"
candidate = "v2"
keep_baseline_warm = "1h"
stages = [
  {{ name = "shadow",    shadow_percent = 25, min_duration = "8s" }},
  {{ name = "canary-5",  percent = 5,   min_duration = "8s" }},
  {{ name = "canary-25", percent = 25,  min_duration = "8s" }},
  {{ name = "full",      percent = 100, min_duration = "5s" }},
]
[rollouts.support-v2.guardrails]
window = "30s"
check_interval = "1s"
error_rate_max = 0.05
p95_latency_max_ratio = 1.5
refusal_rate_max_increase = 0.05
thumbs_down_max_ratio = 2.0
[rollouts.support-v2.gates]
mde = 0.05
"#,
        db = db.display(),
        candidate = s.candidate_model(),
    )
}

/// BANKING77's 77 intents folded into nine prompt classes, so per-class effects are visible.
pub fn prompt_class(intent: &str) -> &'static str {
    const TOPICS: &[(&str, &str)] = &[
        ("refund", "refunds"),
        ("top_up", "top_up"),
        ("topping_up", "top_up"),
        ("transfer", "transfers"),
        ("exchange", "exchange"),
        ("currency", "exchange"),
        ("fiat", "exchange"),
        ("cash", "cash"),
        ("atm", "cash"),
        ("card", "cards"),
        ("pin", "security"),
        ("passcode", "security"),
        ("verif", "security"),
        ("identity", "security"),
        ("compromised", "security"),
        ("payment", "payments"),
        ("charge", "payments"),
        ("fee", "payments"),
    ];
    TOPICS
        .iter()
        .find(|(k, _)| intent.contains(k))
        .map_or("account", |(_, t)| t)
}

/// The bundled queries as (text, class).
fn queries() -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for line in BANKING77.lines().skip(1) {
        // text,category — the text may be quoted and contain commas.
        let Some(idx) = line.rfind(',') else { continue };
        let (text, intent) = (&line[..idx], &line[idx + 1..]);
        let text = text.trim_matches('"').replace("\"\"", "\"");
        if !text.is_empty() {
            out.push((text, prompt_class(intent.trim())));
        }
    }
    out
}

#[derive(Default)]
struct Tally {
    control: AtomicU64,
    canary: AtomicU64,
    unkeyed: AtomicU64,
    failed: AtomicU64,
    feedback: AtomicU64,
}

pub struct DemoArgs {
    pub scenario: Scenario,
    pub json: bool,
    pub users: usize,
    pub rps: f64,
}

pub fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run(args))
}

async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir().context("cannot create a temp dir")?;
    let db = dir.path().join("rampart-demo.db");
    let config = Config::from_toml_str(&config_text(args.scenario, &db))
        .map_err(|e| anyhow!("demo config is invalid:\n{e}"))?;
    let store = Arc::new(SqliteStore::open(&db)?);
    let gw = Gateway::build(
        config,
        store.clone() as Arc<dyn Store>,
        BuildOptions::default(),
    )?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(rampart_gateway::serve(listener, gw.clone(), async move {
        let _ = stop_rx.await;
    }));

    say(
        &args,
        format!(
            "rampart demo · scenario {} · {} simulated users · {} req/s · BANKING77 queries (Casanueva et al. 2020, CC BY 4.0)",
            args.scenario.name(),
            args.users,
            args.rps
        ),
    );
    let load = drive_load(&args, &gw, &url).await?;

    // Let in-flight requests finish, then stop the gateway (it flushes the writer).
    let _ = tokio::time::timeout(Duration::from_secs(10), load.inflight.acquire_many(256)).await;
    let status = gw.controller.status.load().get("support-v2").cloned();
    let _ = stop_tx.send(());
    let _ = server.await;

    let outcome = Outcome::read(&store, load, status);
    if args.json {
        println!("{}", outcome.summary(&args));
    } else {
        outcome.print();
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress line: to stdout, or to stderr when stdout carries the JSON summary.
fn say(args: &DemoArgs, line: String) {
    if args.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// What the load loop leaves behind.
struct Load {
    final_phase: String,
    tally: Arc<Tally>,
    inflight: Arc<tokio::sync::Semaphore>,
    started: Instant,
}

/// Sends simulated users' requests at `args.rps` (paced by the clock: this is load
/// generation, not a wait for a result) and reports progress every second, until the rollout
/// ends or [`MAX_RUN`] passes.
async fn drive_load(args: &DemoArgs, gw: &Gateway, url: &str) -> anyhow::Result<Load> {
    let queries = Arc::new(queries());
    if queries.is_empty() {
        return Err(anyhow!("the bundled BANKING77 queries are empty"));
    }
    let tally = Arc::new(Tally::default());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let inflight = Arc::new(tokio::sync::Semaphore::new(256));
    let started = Instant::now();
    let mut rng = SplitMix64::new(0x5eed ^ args.scenario as u64);
    let period = Duration::from_secs_f64(1.0 / args.rps.max(1.0));
    let mut next_report = Duration::from_secs(1);
    let mut sent: u64 = 0;
    let final_phase = loop {
        let due = started + period.mul_f64(sent as f64);
        tokio::time::sleep_until(due.into()).await;
        sent += 1;
        let user = rng.index(args.users.max(1));
        let (text, class) = queries[rng.index(queries.len())].clone();
        let feedback_roll = rng.next_u64();
        if let Ok(permit) = inflight.clone().try_acquire_owned() {
            let (client, url, tally) = (client.clone(), url.to_string(), tally.clone());
            tokio::spawn(async move {
                let _permit = permit;
                one_request(&client, &url, user, &text, class, feedback_roll, &tally).await;
            });
        }
        let elapsed = started.elapsed();
        if elapsed >= next_report {
            next_report += Duration::from_secs(1);
            let status = gw.controller.status.load().get("support-v2").cloned();
            if let Some(st) = &status {
                say(args, progress_line(elapsed, st, &tally));
                if matches!(
                    st.phase,
                    "rolled_back" | "completed" | "ready_to_decommission"
                ) {
                    break st.phase.to_string();
                }
            }
            if elapsed >= MAX_RUN {
                break status.map_or("unknown".into(), |s| s.phase.to_string());
            }
        }
    };
    Ok(Load {
        final_phase,
        tally,
        inflight,
        started,
    })
}

/// The demo's result, read back from the store and the controller's last status.
struct Outcome {
    load: Load,
    status: Option<Arc<RolloutStatus>>,
    audit: Vec<AuditEntry>,
    reason: String,
    pairs: u64,
}

impl Outcome {
    fn read(store: &SqliteStore, load: Load, status: Option<Arc<RolloutStatus>>) -> Outcome {
        let audit = store.audit_log("support-v2", 100).unwrap_or_default();
        let reason = audit
            .iter()
            .rev()
            .find(|e| e.action != "tenant_cap")
            .map(|e| e.reason.clone())
            .unwrap_or_else(|| "no transition yet".into());
        let pairs = store.count_pairs("support-v2").unwrap_or(0);
        Outcome {
            load,
            status,
            audit,
            reason,
            pairs,
        }
    }

    fn cohorts(&self) -> Value {
        let t = &self.load.tally;
        json!({
            "control": t.control.load(Ordering::Relaxed),
            "canary": t.canary.load(Ordering::Relaxed),
            "unkeyed": t.unkeyed.load(Ordering::Relaxed),
        })
    }

    /// The human-readable ending: final state, traffic, audit log, last guardrails.
    fn print(&self) {
        let (tally, cohorts, audit) = (&self.load.tally, self.cohorts(), &self.audit);
        println!();
        println!("final state: {}", self.load.final_phase);
        println!("reason:      {}", self.reason);
        println!(
            "traffic:     control {} · canary {} · unkeyed {} · shadow pairs {} · failed {} · feedback {}",
            cohorts["control"],
            cohorts["canary"],
            cohorts["unkeyed"],
            self.pairs,
            tally.failed.load(Ordering::Relaxed),
            tally.feedback.load(Ordering::Relaxed)
        );
        println!("audit log:");
        for e in audit {
            println!(
                "  {:>7.1}s  {:<10} {:<12} → {:<14} {}",
                (e.ts_ms - audit.first().map_or(e.ts_ms, |f| f.ts_ms)) as f64 / 1000.0,
                e.action,
                e.from_state,
                e.to_state,
                e.reason
            );
        }
        if let Some(st) = &self.status
            && let Some(ev) = &st.evaluation
        {
            println!("guardrails at the end:");
            for g in &ev.guardrails {
                println!(
                    "  {:<18} canary {:>7} control {:>7} {:<30} evidence {:>7} {}",
                    g.name,
                    fmt(g.value_canary),
                    fmt(g.value_control),
                    g.test,
                    fmt(g.evidence),
                    if g.breached { "BREACHED" } else { "ok" }
                );
            }
        }
    }

    /// The `--json` summary.
    fn summary(&self, args: &DemoArgs) -> Value {
        json!({
            "scenario": args.scenario.name(),
            "final_state": self.load.final_phase,
            "reason": self.reason,
            "stage": self.status.as_ref().map(|s| s.stage.clone()),
            "cohorts": self.cohorts(),
            "pairs": self.pairs,
            "failed_requests": self.load.tally.failed.load(Ordering::Relaxed),
            "elapsed_seconds": (self.load.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "transitions": self.audit.iter().map(|e| json!({"action": e.action, "from": e.from_state, "to": e.to_state, "reason": e.reason})).collect::<Vec<_>>(),
        })
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.3}"))
}

fn progress_line(
    elapsed: Duration,
    st: &rampart_gateway::control::RolloutStatus,
    tally: &Tally,
) -> String {
    let mut g = String::new();
    if let Some(ev) = &st.evaluation {
        for r in &ev.guardrails {
            g.push_str(&format!(
                " {}={}/{}{}",
                short(&r.name),
                fmt(r.value_canary),
                fmt(r.value_control),
                match (r.breached, r.evidence) {
                    (true, _) => " BREACH".to_string(),
                    (false, Some(e)) => format!(" (lb {e:.3})"),
                    _ => String::new(),
                }
            ));
        }
    }
    format!(
        "[{:>5.1}s] {:<10} {:>5}% canary {:>3}% shadow | control {:>6} canary {:>5} pairs {:>5} |{}",
        elapsed.as_secs_f64(),
        st.stage,
        st.percent,
        st.shadow_percent,
        tally.control.load(Ordering::Relaxed),
        tally.canary.load(Ordering::Relaxed),
        st.stage_pairs.map_or(0, |p| p.pairs),
        g
    )
}

fn short(name: &str) -> &str {
    match name {
        "error_rate" => "err",
        "p95_latency" => "slow",
        "refusal_rate" => "refusal",
        "thumbs_down_rate" => "thumbs_down",
        other => other,
    }
}

async fn one_request(
    client: &reqwest::Client,
    url: &str,
    user: usize,
    text: &str,
    class: &str,
    feedback_roll: u64,
    tally: &Tally,
) {
    let body = json!({"model": "support", "messages": [{"role": "user", "content": text}]});
    let resp = client
        .post(format!("{url}/v1/chat/completions"))
        .header("x-rampart-routing-key", format!("user-{user}"))
        .header("x-rampart-class", class)
        .json(&body)
        .send()
        .await;
    let Ok(resp) = resp else {
        tally.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let cohort = resp
        .headers()
        .get("x-rampart-cohort")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let id = resp
        .headers()
        .get("x-rampart-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ok = resp.status().is_success();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    match cohort.as_str() {
        "canary" => tally.canary.fetch_add(1, Ordering::Relaxed),
        "unkeyed" => tally.unkeyed.fetch_add(1, Ordering::Relaxed),
        _ => tally.control.fetch_add(1, Ordering::Relaxed),
    };
    if !ok {
        tally.failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // One answer in ten gets a thumb; refusals are disliked.
    if feedback_roll.is_multiple_of(10) {
        let refused = answer["choices"][0]["message"]["content"]
            .as_str()
            .is_some_and(|t| t.contains("I'm sorry, but I can't help"));
        let down = refused || (feedback_roll / 10).is_multiple_of(20);
        let fb = json!({"request_id": id, "thumbs": if down { "down" } else { "up" }});
        if client
            .post(format!("{url}/v1/feedback"))
            .json(&fb)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            tally.feedback.fetch_add(1, Ordering::Relaxed);
        }
    }
}
