//! rampart-core: the pure core of rampart.
//!
//! - [`config`]: the TOML config, parsed into raw structs and validated into typed config.
//! - [`routing`]: the sticky bucket function and cohorts.
//! - [`rollout`]: the rollout state machine, gates and guardrails (the kill switch).
//! - [`compare`]: per-pair comparison features and aggregates for reports and shadow gates.
//! - [`record`]: the records stored per request, feedback and shadow pair.
//! - [`outcomes`]: slow business outcomes: checks and attribution to the cohort served.
//! - [`replay`]: offline replay: dataset lines, captured prompts, the verdict over the pairs.
//!
//! Nothing here performs I/O or reads the clock; time and randomness are passed in.
#![forbid(unsafe_code)]

pub mod compare;
pub mod config;
pub mod hex;
pub mod outcomes;
pub mod record;
pub mod refusal;
pub mod replay;
pub mod request;
pub mod rollout;
pub mod routing;
