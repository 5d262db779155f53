//! `rampart status`, `pause`, `resume`, `promote`, `rollback`: operate a running gateway
//! through its admin API; and `rampart plan`: stage sizing from the config.

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use rampart_core::config::Config;
use serde_json::{Value, json};

use super::client::{AdminClient, segment};
use crate::EXIT_CONFIG;

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.4}"),
        None => "-".into(),
    }
}

/// Human-readable status of one rollout (the admin API's JSON).
pub fn render_status(r: &Value) -> String {
    let mut out = String::new();
    let st = &r["status"];
    out.push_str(&format!(
        "{}  route {}  {} → {}\n  state {}  stage {}  canary {}%  shadow {}%\n",
        r["name"].as_str().unwrap_or("?"),
        r["route"].as_str().unwrap_or("?"),
        r["baseline"].as_str().unwrap_or("?"),
        r["candidate"].as_str().unwrap_or("?"),
        st["phase"].as_str().unwrap_or("?"),
        r["stage"].as_str().unwrap_or("?"),
        num(&r["percent"]),
        num(&r["shadow_percent"]),
    ));
    out.push_str(&format!(
        "  this stage: control {} req, canary {} req{}\n",
        st["stage_control"]["requests"].as_u64().unwrap_or(0),
        st["stage_canary"]["requests"].as_u64().unwrap_or(0),
        st["stage_pairs"]["pairs"]
            .as_u64()
            .map(|p| format!(", {p} shadow pairs"))
            .unwrap_or_default(),
    ));
    if let Some(gs) = st["evaluation"]["guardrails"].as_array() {
        out.push_str("  guardrails (window):\n");
        for g in gs {
            out.push_str(&format!(
                "    {:<18} canary {:>8}  control {:>8}  test {:<28} evidence {:>8}  n {}/{}  {}\n",
                g["name"].as_str().unwrap_or("?"),
                num(&g["value_canary"]),
                num(&g["value_control"]),
                g["test"].as_str().unwrap_or(""),
                num(&g["evidence"]),
                g["samples_canary"],
                g["samples_control"],
                if g["breached"].as_bool() == Some(true) {
                    "BREACHED"
                } else {
                    "ok"
                },
            ));
        }
    }
    if let Some(gs) = st["evaluation"]["gates"]["reports"].as_array() {
        out.push_str("  gates:\n");
        for g in gs {
            let samples = match g["samples_needed"].as_u64() {
                Some(n) => format!("{}/{n}", g["samples"]),
                None => g["samples"].to_string(),
            };
            let eta = g["eta_seconds"]
                .as_f64()
                .map(|s| format!("  eta {s:.0}s"))
                .unwrap_or_default();
            out.push_str(&format!(
                "    {:<18} {:<6} value {:>8}  threshold {:>8}  samples {:<12} {}{}\n",
                g["name"].as_str().unwrap_or("?"),
                if g["passed"].as_bool() == Some(true) {
                    "pass"
                } else {
                    "wait"
                },
                num(&g["value"]),
                num(&g["threshold"]),
                samples,
                g["evidence"].as_str().unwrap_or(""),
                eta,
            ));
        }
    }
    out
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
    match rollout {
        Some(_) => print!("{}", render_status(&body)),
        None => {
            for r in body["rollouts"].as_array().cloned().unwrap_or_default() {
                print!("{}", render_status(&r));
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
    println!(
        "{rollout}: {action} done; now {} ({}% canary)",
        body["status"]["stage"].as_str().unwrap_or("?"),
        num(&body["status"]["percent"])
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
