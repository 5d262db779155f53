//! `rampart`: the command-line interface. Thin: it parses arguments, loads config, builds the
//! pieces from the library crates and runs them.
#![forbid(unsafe_code)]

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for an invalid config (EX_DATAERR's neighbour EX_USAGE, as DESIGN.md specifies).
pub const EXIT_CONFIG: u8 = 64;

/// jemalloc rather than glibc's malloc: glibc kept a load spike's freed memory (RSS stayed at
/// the spike's peak long after its connections had closed), jemalloc returns pages unused for
/// ten seconds to the system. Measured in `bench/soak.sh` and the README.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Validate a config file and list every error and warning.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
        /// Treat warnings (unpinned model, two changes at once, no shadow stage, a guardrail
        /// window shorter than its check interval) as errors: exit 64.
        #[arg(long)]
        strict: bool,
    },
    /// Run the simulated LLM provider standalone (OpenAI-compatible).
    MockLlm {
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: String,
        /// A rampart config; the models of its `type = "mock"` providers are served.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Recent shadow pairs of a rollout, baseline and candidate side by side.
    Pairs {
        rollout: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// The end-to-end demo: gateway + simulated provider + BANKING77 replay, in compressed time.
    /// The comparison report of a rollout: shadow pairs and the canary cohort.
    Report {
        rollout: String,
        #[arg(long, value_enum, default_value = "text")]
        format: cmd::ReportFormat,
        /// Write the report to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    Demo {
        #[arg(long, value_enum, default_value = "regression")]
        scenario: cmd::Scenario,
        /// End with one machine-readable summary line.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 3000)]
        users: usize,
        #[arg(long, default_value_t = 250.0)]
        rps: f64,
    },
    /// Status of the rollouts of a running gateway: stage, guardrails, gates.
    Status {
        rollout: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Freeze the ramp (the current split stays).
    Pause(ActionArgs),
    /// Resume a paused or held rollout.
    Resume(ActionArgs),
    /// Move to the next stage now.
    Promote(ActionArgs),
    /// Send everyone back to the baseline now.
    Rollback(ActionArgs),
    /// Business outcomes (CSAT, refunds, …) for the slow gates.
    Outcomes {
        #[command(subcommand)]
        action: OutcomesCommand,
    },
    /// Replay a dataset (or captured prompts) through both variants of a rollout, offline;
    /// exit 0 when the rollout's shadow gates pass, 1 when they fail, 2 when nothing could be
    /// replayed, 3 when the run failed part-way, 130 when interrupted.
    Replay(cmd::replay::ReplayCli),
    /// Stage sizing: samples per cohort and expected duration per stage.
    Plan {
        #[arg(long, short)]
        config: PathBuf,
        /// Only this rollout (default: all).
        #[arg(long)]
        rollout: Option<String>,
        /// Keyed requests per second reaching the route.
        #[arg(long)]
        rps: f64,
        /// Control rates of the guarded metrics (e.g. error and refusal rate), comma-separated.
        #[arg(long, value_delimiter = ',')]
        control_rates: Vec<f64>,
        /// Minimum detectable effect (absolute), overriding the config's `gates.mde`.
        #[arg(long)]
        mde: Option<f64>,
    },
}

#[derive(Subcommand)]
enum OutcomesCommand {
    /// Post a warehouse export (CSV with a header, or JSONL) to `POST /v1/outcomes`.
    Import {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
}

#[derive(clap::Args)]
struct ActionArgs {
    rollout: String,
    #[arg(long)]
    reason: String,
    #[arg(long, default_value = DEFAULT_SERVER)]
    server: String,
}

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo and client commands print their own output; servers log at info.
    let default_filter = match cli.command {
        Command::Serve { .. } | Command::MockLlm { .. } => "info",
        _ => "error",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::CheckConfig { config, strict } => return cmd::check_config(&config, strict),
        Command::Serve { config } => cmd::serve(&config),
        Command::Replay(args) => return cmd::replay::main(args),
        Command::MockLlm { listen, config } => cmd::mock_llm(&listen, config.as_deref()),
        Command::Pairs {
            rollout,
            limit,
            json,
            server,
        } => cmd::block_on(cmd::pairs(&server, &rollout, limit, json)),
        Command::Report {
            rollout,
            format,
            out,
            server,
        } => cmd::block_on(cmd::report(&server, &rollout, format, out.as_deref())),
        Command::Demo {
            scenario,
            json,
            users,
            rps,
        } => cmd::demo(cmd::DemoArgs {
            scenario,
            json,
            users,
            rps,
        }),
        Command::Status {
            rollout,
            json,
            server,
        } => cmd::block_on(cmd::status(&server, rollout.as_deref(), json)),
        Command::Outcomes {
            action: OutcomesCommand::Import { file, server },
        } => cmd::block_on(cmd::outcomes::import(&server, &file)),
        Command::Pause(a) => cmd::block_on(cmd::action(&a.server, "pause", &a.rollout, &a.reason)),
        Command::Resume(a) => {
            cmd::block_on(cmd::action(&a.server, "resume", &a.rollout, &a.reason))
        }
        Command::Promote(a) => {
            cmd::block_on(cmd::action(&a.server, "promote", &a.rollout, &a.reason))
        }
        Command::Rollback(a) => {
            cmd::block_on(cmd::action(&a.server, "rollback", &a.rollout, &a.reason))
        }
        Command::Plan {
            config,
            rollout,
            rps,
            control_rates,
            mde,
        } => cmd::plan(&config, rollout.as_deref(), rps, &control_rates, mde),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rampart: {e:#}");
            ExitCode::FAILURE
        }
    }
}
