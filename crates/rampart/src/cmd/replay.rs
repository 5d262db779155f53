//! `rampart replay --config FILE --rollout R (--dataset FILE.jsonl | --from-store [--since 7d]
//! [--limit N]) [--concurrency N] [--out FILE] [--format text|json|html]`: the rollout's
//! candidate and baseline answer a regression set (or captured prompts) offline; the pairs are
//! stored as an offline stage (`offline-<UTC time>-<pid>`) and judged by the rollout's shadow gates.
//!
//! Exit codes, so a CI pipeline can gate a change before it meets traffic:
//! - 0: the shadow gates pass;
//! - 1: they fail (the report says which, and which classes are flagged);
//! - 2: nothing was replayed: bad arguments, an invalid config, an unknown rollout, a dataset
//!   line that is not a valid request (every bad line is listed), no captured prompt to replay,
//!   or a store that cannot be opened;
//! - 3: the run failed part-way (the store refused the pairs);
//! - 130: interrupted (Ctrl-C): the pairs answered so far are stored and the report covers them
//!   (a second Ctrl-C quits at once).

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, anyhow};
use rampart_core::compare::{ComparisonReport, render_html_page, render_text};
use rampart_core::config::Config;
use rampart_core::replay::{
    OFFLINE_STAGE_PREFIX, ReplayItem, gate_stage, item_from_pair, parse_line,
};
use rampart_core::rollout::gates::GateOutcome;
use rampart_gateway::replay::{self as engine, ReplayPlan, RunSummary};
use rampart_store::Store;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::ReportFormat;

pub const EXIT_PASS: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_RUN: u8 = 3;
pub const EXIT_INTERRUPTED: u8 = 130;

/// Where the prompts come from.
pub enum Source {
    Dataset(PathBuf),
    /// Captured prompts of the rollout's pairs of the last `since`, newest first, at most `limit`.
    Store {
        since: Duration,
        limit: usize,
    },
}

pub struct ReplayArgs {
    pub config: PathBuf,
    pub rollout: String,
    pub source: Source,
    pub concurrency: usize,
    pub out: Option<PathBuf>,
    pub format: ReportFormat,
}

/// `rampart replay`'s arguments.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["dataset", "from_store"])))]
pub struct ReplayCli {
    #[arg(long, short)]
    config: PathBuf,
    #[arg(long)]
    rollout: String,
    /// JSONL: one OpenAI chat request a line, optionally with `class`, `tenant`, `routing_key`.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// Replay the prompts the store captured (`store.capture_text`) for this rollout.
    #[arg(long)]
    from_store: bool,
    /// With --from-store: how far back (a duration: `7d`, `12h`).
    #[arg(long, default_value = "7d", requires = "from_store")]
    since: String,
    /// With --from-store: the newest N captured prompts at most.
    #[arg(long, default_value_t = 1000, requires = "from_store")]
    limit: usize,
    /// Requests in flight at most (each calls both variants).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Write the report to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
}

/// `rampart replay`: checks the arguments, then [`replay`].
pub fn main(cli: ReplayCli) -> ExitCode {
    let source = match cli.dataset {
        Some(path) => Source::Dataset(path),
        None => match rampart_core::config::parse_duration(&cli.since) {
            Ok(since) => Source::Store {
                since,
                limit: cli.limit,
            },
            Err(e) => return usage(format!("--since: {e} (got `{}`)", cli.since)),
        },
    };
    replay(ReplayArgs {
        config: cli.config,
        rollout: cli.rollout,
        source,
        concurrency: cli.concurrency,
        out: cli.out,
        format: cli.format,
    })
}

/// A problem before anything was replayed (exit 2).
fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("rampart replay: {msg}");
    ExitCode::from(EXIT_USAGE)
}

pub fn replay(args: ReplayArgs) -> ExitCode {
    let config = match Config::from_path(&args.config) {
        Ok(c) => Arc::new(c),
        Err(errors) => {
            return usage(format!(
                "{}: invalid config:\n{errors}",
                args.config.display()
            ));
        }
    };
    let Some(route) = config.rollouts.get(&args.rollout).map(|r| r.route.clone()) else {
        let known: Vec<&str> = config.rollouts.keys().map(String::as_str).collect();
        return usage(format!(
            "no rollout `{}` in {} (rollouts: {})",
            args.rollout,
            args.config.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    };
    let store = match super::serve::open_store(&config.store.kind) {
        Ok((s, _)) => s,
        Err(e) => return usage(format!("{e:#}")),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return usage(format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async {
        let items = match load_items(&args, &config, &route, &store).await {
            Ok(items) => items,
            Err(code) => return code,
        };
        match run(&args, config, store, items).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("rampart replay: {e:#}");
                ExitCode::from(EXIT_RUN)
            }
        }
    })
}

/// The items to replay, or the exit code of why there are none.
async fn load_items(
    args: &ReplayArgs,
    config: &Config,
    route: &str,
    store: &Arc<dyn Store>,
) -> Result<Vec<(usize, ReplayItem)>, ExitCode> {
    match &args.source {
        Source::Dataset(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
            let mut items = Vec::new();
            let mut bad = 0usize;
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                match parse_line(line, route, config.server.limits) {
                    Ok(item) => items.push((i + 1, item)),
                    Err(e) => {
                        bad += 1;
                        eprintln!("{}:{}: {e}", path.display(), i + 1);
                    }
                }
            }
            if bad > 0 {
                return Err(usage(format!(
                    "{}: {bad} line(s) are not valid requests; nothing was replayed",
                    path.display()
                )));
            }
            if items.is_empty() {
                return Err(usage(format!("{}: no request to replay", path.display())));
            }
            Ok(items)
        }
        Source::Store { since, limit } => {
            let since_ms =
                now_ms().saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
            let (s, rollout, limit) = (store.clone(), args.rollout.clone(), *limit);
            let pairs = tokio::task::spawn_blocking(move || {
                s.recent_pairs(&rollout, limit, None, Some(since_ms))
            })
            .await
            .map_err(usage)?
            .map_err(|e| usage(format!("cannot read the stored pairs: {e}")))?;
            let live: Vec<_> = pairs
                .iter()
                .filter(|p| !p.stage.starts_with(OFFLINE_STAGE_PREFIX))
                .collect();
            let items: Vec<(usize, ReplayItem)> = live
                .iter()
                .filter_map(|p| item_from_pair(p, route))
                .enumerate()
                .map(|(i, item)| (i + 1, item))
                .collect();
            eprintln!(
                "replaying {} captured prompt(s) of rollout `{}` ({} pair(s) without captured text skipped)",
                items.len(),
                args.rollout,
                live.len() - items.len()
            );
            if items.is_empty() {
                return Err(usage(
                    "no captured prompt to replay in that window (is store.capture_text on?)",
                ));
            }
            Ok(items)
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `offline-20261202T081500.123Z-4711`: the run's stage name, unique per run (time to the
/// millisecond and the process id), since a pair already stored under a request id is skipped.
fn stage_name() -> String {
    let t = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    format!(
        "{OFFLINE_STAGE_PREFIX}{}-{}",
        t.replace(['-', ':'], ""),
        std::process::id()
    )
}

async fn run(
    args: &ReplayArgs,
    config: Arc<Config>,
    store: Arc<dyn Store>,
    items: Vec<(usize, ReplayItem)>,
) -> anyhow::Result<ExitCode> {
    // The first Ctrl-C stops the run (what was answered is stored and reported); a second one
    // exits at once.
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
            eprintln!(
                "\ninterrupted: storing the pairs answered so far (Ctrl-C again to quit now)"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
        }
    });
    let plane = engine::offline_plane(config.clone(), store.clone(), stop.clone())?;
    let plan = ReplayPlan {
        rollout: args.rollout.clone(),
        stage: stage_name(),
        concurrency: args.concurrency,
        items,
    };
    let stage = plan.stage.clone();
    eprintln!(
        "replaying {} request(s) against rollout `{}` as stage `{stage}` ({} at a time)",
        plan.items.len(),
        args.rollout,
        args.concurrency.max(1)
    );
    let progress = Progress::new();
    let summary = engine::run(&plane, plan, &stop, &|s| progress.show(s)).await?;
    progress.finish(&summary);
    let _ = plane.writer.close().await;
    let report = engine::report(store, &args.rollout, &stage).await?;
    let cfg = config
        .rollouts
        .get(&args.rollout)
        .ok_or_else(|| anyhow!("no rollout `{}`", args.rollout))?;
    let verdict = rampart_core::replay::verdict(cfg, summary.paired, &report);
    let doc = ReplayDoc {
        rollout: args.rollout.clone(),
        report,
        replay: Meta {
            source: match &args.source {
                Source::Dataset(p) => p.display().to_string(),
                Source::Store { .. } => "store".to_string(),
            },
            gate_stage: gate_stage(cfg).name,
            passed: verdict.all_passed,
            run: summary,
            gates: verdict,
        },
    };
    emit(args.format, args.out.as_deref(), &doc)?;
    Ok(ExitCode::from(if doc.replay.run.interrupted {
        EXIT_INTERRUPTED
    } else if doc.replay.passed {
        EXIT_PASS
    } else {
        EXIT_FAIL
    }))
}

/// The JSON document: the comparison report's keys at the top level (as `rampart report`),
/// plus `rollout` and `replay` (the run and the verdict).
#[derive(Serialize)]
struct ReplayDoc {
    rollout: String,
    #[serde(flatten)]
    report: ComparisonReport,
    replay: Meta,
}

#[derive(Serialize)]
struct Meta {
    /// The dataset's path, or `store`.
    source: String,
    /// The stage whose gate thresholds judged the run.
    gate_stage: String,
    passed: bool,
    run: RunSummary,
    gates: GateOutcome,
}

fn emit(format: ReportFormat, out: Option<&Path>, doc: &ReplayDoc) -> anyhow::Result<()> {
    let body = match format {
        ReportFormat::Json => serde_json::to_string_pretty(doc)? + "\n",
        ReportFormat::Text => {
            let width = super::report::terminal_width();
            format!("{}\n{}", summary_text(doc), render_text(&doc.report, width))
        }
        ReportFormat::Html => render_html_page(&doc.report, &[], &summary_html(doc), ""),
    };
    match out {
        Some(file) => {
            std::fs::write(file, &body)
                .with_context(|| format!("cannot write {}", file.display()))?;
            eprintln!("wrote the replay report to {}", file.display());
            // The verdict still goes to the terminal.
            eprint!("{}", summary_text(doc));
        }
        None => print!("{body}"),
    }
    Ok(())
}

fn summary_lines(doc: &ReplayDoc) -> Vec<String> {
    let (m, r) = (&doc.replay, &doc.replay.run);
    let mut lines = vec![
        format!(
            "rampart replay: rollout {} · stage {} · from {}",
            doc.rollout, r.stage, m.source
        ),
        format!(
            "{} of {} request(s) answered by both sides (errors: baseline {}, candidate {}); spent ${:.4}, {} tokens",
            r.completed, r.items, r.baseline_errors, r.candidate_errors, r.spent_usd, r.tokens
        ),
    ];
    if r.interrupted {
        lines.push(format!(
            "INTERRUPTED after {} of {} request(s): the pairs answered so far are stored; this report covers them only",
            r.completed, r.items
        ));
    }
    if let Some(why) = &r.budget_stop {
        lines.push(format!(
            "STOPPED by the budget ({why}: shadow.max_cost_usd_per_day / shadow.max_tokens_per_day) after {} of {} request(s)",
            r.completed, r.items
        ));
    }
    lines.push(format!(
        "verdict: {} (the shadow gates of stage `{}`)",
        if m.passed { "PASS" } else { "FAIL" },
        m.gate_stage
    ));
    for g in &m.gates.reports {
        let num = |x: Option<f64>| x.map_or_else(|| "–".to_string(), |v| format!("{v:.4}"));
        lines.push(format!(
            "  {:<20} {:<4}  value {:>8}  threshold {:>8}  {}",
            g.name,
            if g.passed { "pass" } else { "FAIL" },
            num(g.value),
            num(g.threshold),
            g.evidence
        ));
    }
    if let Some(c) = &m.gates.conflict {
        lines.push(format!("  conflict: {c}"));
    }
    lines
}

fn summary_text(doc: &ReplayDoc) -> String {
    summary_lines(doc).into_iter().map(|l| l + "\n").collect()
}

fn summary_html(doc: &ReplayDoc) -> String {
    let esc = rampart_core::compare::render_html::escape;
    let mut h = String::from("<section id=\"replay\"><h2>Offline replay</h2>");
    for l in summary_lines(doc) {
        h.push_str(&format!("<p>{}</p>", esc(&l)));
    }
    h.push_str("</section>\n");
    h
}

/// The progress line on stderr: redrawn in place on a terminal (at most ten times a second),
/// a line per tenth of the run otherwise.
struct Progress {
    tty: bool,
    last: Mutex<(Instant, usize)>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            last: Mutex::new((Instant::now(), 0)),
        }
    }

    fn line(s: &RunSummary) -> String {
        let width = 30usize;
        let filled = (s.completed * width).checked_div(s.items).unwrap_or(0);
        format!(
            "[{}{}] {}/{} · errors {}/{} · ${:.4}",
            "#".repeat(filled),
            "-".repeat(width - filled.min(width)),
            s.completed,
            s.items,
            s.baseline_errors,
            s.candidate_errors,
            s.spent_usd
        )
    }

    fn show(&self, s: &RunSummary) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let step = (s.items / 10).max(1);
        let due = if self.tty {
            last.0.elapsed() >= Duration::from_millis(100) || s.completed == s.items
        } else {
            s.completed / step > last.1 / step || s.completed == s.items
        };
        if !due {
            return;
        }
        *last = (Instant::now(), s.completed);
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r{}", Progress::line(s))
        } else {
            writeln!(err, "{}", Progress::line(s))
        };
        let _ = err.flush();
    }

    fn finish(&self, s: &RunSummary) {
        if self.tty {
            eprintln!("\r{}", Progress::line(s));
        }
    }
}
