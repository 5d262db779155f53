//! `rampart`: the command-line interface. Thin: it parses arguments, loads config, builds the
//! pieces from the library crates and runs them.
#![forbid(unsafe_code)]

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for an invalid config (EX_DATAERR's neighbour EX_USAGE, as DESIGN.md specifies).
pub const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(
    name = "rampart",
    version,
    about = "A gateway that makes LLM model and prompt changes safe to ship"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file and list every error.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the simulated LLM provider standalone (OpenAI-compatible).
    MockLlm {
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: String,
        /// A rampart config; the models of its `type = "mock"` providers are served.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::CheckConfig { config } => return cmd::check_config(&config),
        Command::Serve { config } => cmd::serve(&config),
        Command::MockLlm { listen, config } => cmd::mock_llm(&listen, config.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rampart: {e:#}");
            ExitCode::FAILURE
        }
    }
}
