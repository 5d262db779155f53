//! One function per subcommand.

mod client;
mod demo;
mod operate;
pub mod outcomes;
mod pairs;
pub mod replay;
mod report;
mod serve;

pub use demo::{DemoArgs, Scenario, demo};
pub use operate::{action, plan, status};
pub use pairs::pairs;
pub use report::{ReportFormat, report};
pub use serve::{mock_llm, serve};

use std::path::Path;
use std::process::ExitCode;

use rampart_core::config::Config;

use crate::EXIT_CONFIG;

/// `rampart check-config`: print every error as `path: message (got `value`)`; exit 64 if any.
pub fn check_config(path: &Path, strict: bool) -> ExitCode {
    match Config::from_path(path) {
        Ok(cfg) => {
            let warnings = rampart_core::config::warnings(&cfg);
            println!(
                "{}: ok ({} providers, {} routes, {} rollouts, {} warning(s))",
                path.display(),
                cfg.providers.len(),
                cfg.routes.len(),
                cfg.rollouts.len(),
                warnings.len()
            );
            for w in &warnings {
                println!("warning: {w}");
            }
            if strict && !warnings.is_empty() {
                eprintln!("{}: --strict: warnings are errors", path.display());
                return ExitCode::from(EXIT_CONFIG);
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{}: {} error(s)", path.display(), errors.0.len());
            for e in &errors.0 {
                println!("{e}");
            }
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Run a client command on a small runtime.
pub fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    f: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}
