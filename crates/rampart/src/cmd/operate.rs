//! `rampart status`, `pause`, `resume`, `promote`, `rollback`: operate a running gateway
//! through its admin API; and `rampart plan`: stage sizing from the config.

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use rampart_core::config::Config;
use rampart_core::outcomes::OutcomeSummary;
#[cfg(test)]
use rampart_core::routing::Cohort;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{AdminClient, segment};
use crate::EXIT_CONFIG;

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.4}"),
        None => "-".into(),
    }
}

/// What the CLI reads of the admin API's rollout document (`GET /admin/rollouts/{name}`);
/// missing fields read as their defaults, so an older or newer gateway still renders.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RolloutDoc {
    name: String,
    route: String,
    baseline: String,
    candidate: String,
    stage: String,
    percent: Option<f64>,
    shadow_percent: Option<f64>,
    status: StatusDoc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StatusDoc {
    phase: String,
    stage: String,
    percent: Option<f64>,
    stage_control: CountsDoc,
    stage_canary: CountsDoc,
    stage_pairs: Option<PairsDoc>,
    evaluation: Option<EvaluationDoc>,
    outcomes: Vec<OutcomeSummary>,
    cluster: Option<ClusterDoc>,
}

/// Several replicas: who answered, who leads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ClusterDoc {
    replica_id: String,
    leader: Option<String>,
    leading: bool,
    stale: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CountsDoc {
    requests: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PairsDoc {
    pairs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EvaluationDoc {
    guardrails: Option<Vec<GuardrailDoc>>,
    gates: Option<GatesDoc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GuardrailDoc {
    name: String,
    value_canary: Option<f64>,
    value_control: Option<f64>,
    test: String,
    evidence: Option<f64>,
    samples_canary: u64,
    samples_control: u64,
    breached: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GatesDoc {
    reports: Option<Vec<GateDoc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GateDoc {
    name: String,
    passed: bool,
    value: Option<f64>,
    threshold: Option<f64>,
    evidence: String,
    samples: u64,
    samples_needed: Option<u64>,
    eta_seconds: Option<f64>,
}

/// `POST /admin/rollouts/{name}/{action}`'s answer, as far as the CLI reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ActionDoc {
    status: StatusDoc,
}

/// Human-readable status of one rollout (the admin API's JSON).
pub fn render_status(r: &Value) -> String {
    let r: RolloutDoc = serde_json::from_value(r.clone()).unwrap_or_default();
    let or_q = |s: &str| {
        if s.is_empty() {
            "?".to_string()
        } else {
            s.to_string()
        }
    };
    let st = &r.status;
    let mut out = format!(
        "{}  route {}  {} → {}\n  state {}  stage {}  canary {}%  shadow {}%\n",
        or_q(&r.name),
        or_q(&r.route),
        or_q(&r.baseline),
        or_q(&r.candidate),
        or_q(&st.phase),
        or_q(&r.stage),
        num(r.percent),
        num(r.shadow_percent),
    );
    out.push_str(&format!(
        "  this stage: control {} req, canary {} req{}\n",
        st.stage_control.requests,
        st.stage_canary.requests,
        st.stage_pairs
            .as_ref()
            .and_then(|p| p.pairs)
            .map(|p| format!(", {p} shadow pairs"))
            .unwrap_or_default(),
    ));
    if let Some(c) = &st.cluster {
        out.push_str(&format!(
            "  replica {}{}  leader {}{}\n",
            c.replica_id,
            if c.leading { " (leads)" } else { "" },
            c.leader.as_deref().unwrap_or("none"),
            if c.stale {
                "  STALE: cut off from the database"
            } else {
                ""
            },
        ));
    }
    let ev = st.evaluation.as_ref();
    if let Some(gs) = ev.and_then(|e| e.guardrails.as_ref()) {
        out.push_str("  guardrails (window):\n");
        for g in gs {
            out.push_str(&render_guardrail(g));
        }
    }
    if let Some(gs) = ev
        .and_then(|e| e.gates.as_ref())
        .and_then(|g| g.reports.as_ref())
    {
        out.push_str("  gates:\n");
        for g in gs {
            out.push_str(&render_gate(g));
        }
    }
    if !st.outcomes.is_empty() {
        out.push_str("  outcomes (since the slow-signal epoch):\n");
        for line in rampart_core::outcomes::summary::render_lines(&st.outcomes) {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}

fn render_guardrail(g: &GuardrailDoc) -> String {
    format!(
        "    {:<18} canary {:>8}  control {:>8}  test {:<28} evidence {:>8}  n {}/{}  {}\n",
        g.name,
        num(g.value_canary),
        num(g.value_control),
        g.test,
        num(g.evidence),
        g.samples_canary,
        g.samples_control,
        if g.breached { "BREACHED" } else { "ok" },
    )
}

fn render_gate(g: &GateDoc) -> String {
    let samples = match g.samples_needed {
        Some(n) => format!("{}/{n}", g.samples),
        None => g.samples.to_string(),
    };
    let eta = g
        .eta_seconds
        .map(|s| format!("  eta {s:.0}s"))
        .unwrap_or_default();
    format!(
        "    {:<18} {:<6} value {:>8}  threshold {:>8}  samples {:<12} {}{}\n",
        g.name,
        if g.passed { "pass" } else { "wait" },
        num(g.value),
        num(g.threshold),
        samples,
        g.evidence,
        eta,
    )
}

pub async fn status(
    server: &str,
    rollout: Option<&str>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(server);
    let body = match rollout {
        Some(r) => {
            client
                .get(&format!("/admin/rollouts/{}", segment(r)))
                .await?
        }
        None => client.get("/admin/rollouts").await?,
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    #[derive(Deserialize)]
    struct List {
        rollouts: Vec<Value>,
    }
    match rollout {
        Some(_) => print!("{}", render_status(&body)),
        None => {
            let list: List = serde_json::from_value(body)
                .map_err(|e| anyhow!("unexpected answer from the admin API: {e}"))?;
            for r in &list.rollouts {
                print!("{}", render_status(r));
                println!();
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn action(
    server: &str,
    action: &str,
    rollout: &str,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    if reason.trim().is_empty() {
        return Err(anyhow!("--reason must not be empty"));
    }
    let client = AdminClient::new(server);
    let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let body = client
        .post(
            &format!("/admin/rollouts/{}/{action}", segment(rollout)),
            &json!({"reason": reason, "actor": format!("cli:{actor}")}),
        )
        .await?;
    let done: ActionDoc = serde_json::from_value(body).unwrap_or_default();
    let stage = Some(done.status.stage.as_str()).filter(|s| !s.is_empty());
    println!(
        "{rollout}: {action} done; now {} ({}% canary)",
        stage.unwrap_or("?"),
        num(done.status.percent)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn plan(
    config: &Path,
    rollout: Option<&str>,
    rps: f64,
    control_rates: &[f64],
    mde: Option<f64>,
) -> anyhow::Result<ExitCode> {
    let cfg = match Config::from_path(config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{}: invalid config:\n{errors}", config.display());
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let rollouts: Vec<_> = match rollout {
        Some(name) => vec![
            cfg.rollouts
                .get(name)
                .ok_or_else(|| anyhow!("no rollout `{name}` in {}", config.display()))?,
        ],
        None => cfg.rollouts.values().collect(),
    };
    for r in rollouts {
        let mut r = r.clone();
        if let Some(m) = mde {
            r.gates.mde = m;
            for s in &mut r.stages {
                s.gates.mde = m;
            }
        }
        println!(
            "rollout {}: {rps} keyed req/s, control rates {:?}, mde {}, alpha {}, power {}",
            r.name, control_rates, r.gates.mde, r.gates.alpha, r.gates.power
        );
        println!(
            "  {:<14} {:>8} {:>8} {:>20} {:>16}",
            "stage", "canary%", "shadow%", "samples per cohort", "expected"
        );
        for p in rampart_core::rollout::plan(&r, rps, control_rates) {
            println!(
                "  {:<14} {:>8} {:>8} {:>20} {:>16}",
                p.stage,
                p.percent,
                p.shadow_percent,
                p.required_samples_per_cohort
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                p.expected_duration
                    .map(|d| humanize(d.as_secs()))
                    .unwrap_or_else(|| "never (no traffic)".into()),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn humanize(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{:.1}d", s as f64 / 86_400.0),
        s if s >= 3600 => format!("{:.1}h", s as f64 / 3600.0),
        s if s >= 60 => format!("{:.1}m", s as f64 / 60.0),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test")]
mod tests {
    use super::*;

    #[test]
    fn status_text_lists_outcomes_per_cohort_when_there_are_any() {
        let rows = [(Cohort::Control, 70.0), (Cohort::Canary, 66.0)].map(|(cohort, m)| {
            rampart_core::outcomes::OutcomeMoments {
                name: "csat".into(),
                cohort,
                n: 4,
                sum: 4.0 * m,
                sum_sq: (m - 1.0).powi(2) * 2.0 + (m + 1.0).powi(2) * 2.0,
            }
        });
        let outcomes = rampart_core::outcomes::summarize(&rows, &[]);
        let doc = json!({"name": "r", "status": {"phase": "stage", "outcomes": outcomes}});
        let text = render_status(&doc);
        assert!(
            text.contains("outcomes (since the slow-signal epoch):"),
            "{text}"
        );
        assert!(
            text.contains("csat             control  n 4       mean 70.00 ["),
            "{text}"
        );
        assert!(text.contains("canary − control -4.00 ["), "{text}");
        let without = render_status(&json!({"name": "r", "status": {"phase": "stage"}}));
        assert!(!without.contains("outcomes"), "{without}");
        assert!(serde_json::to_value(&outcomes).unwrap()[0]["cohorts"][1]["n"] == 4);
    }
}
