//! `rampart report ROLLOUT [--format text|json|html] [--out FILE]`: the comparison report from a
//! running gateway's `GET /admin/rollouts/{name}/report`. Text fits the terminal (`COLUMNS`,
//! default 120); JSON is the API's document, pretty-printed; HTML is one self-contained page.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::client::{AdminClient, segment};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Html,
}

impl ReportFormat {
    fn name(self) -> &'static str {
        match self {
            ReportFormat::Text => "text",
            ReportFormat::Json => "json",
            ReportFormat::Html => "html",
        }
    }
}

/// Terminal width from `COLUMNS`, 120 when unset or unreadable.
pub(crate) fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&w| w > 0)
        .unwrap_or(120)
}

pub async fn report(
    server: &str,
    rollout: &str,
    format: ReportFormat,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(server);
    let mut path = format!(
        "/admin/rollouts/{}/report?format={}",
        segment(rollout),
        format.name()
    );
    if format == ReportFormat::Text {
        path.push_str(&format!("&width={}", terminal_width()));
    }
    let mut body = client.get_text(&path).await?;
    if format == ReportFormat::Json {
        let v: serde_json::Value =
            serde_json::from_str(&body).context("the gateway's report is not JSON")?;
        body = serde_json::to_string_pretty(&v)?;
    }
    if !body.ends_with('\n') {
        body.push('\n');
    }
    match out {
        Some(file) => {
            std::fs::write(file, &body)
                .with_context(|| format!("cannot write {}", file.display()))?;
            eprintln!("wrote the {} report to {}", format.name(), file.display());
        }
        None => print!("{body}"),
    }
    Ok(ExitCode::SUCCESS)
}
