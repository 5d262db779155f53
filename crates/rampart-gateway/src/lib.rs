//! rampart-gateway: the I/O shell around rampart's pure core.
//!
//! - [`http`]: the OpenAI-compatible data plane (`/v1/chat/completions`), feedback, metrics
//!   and health endpoints.
//! - [`providers`]: where variants' calls go (`openai`, in-process `mock`).
//! - [`shadow`]: mirrors sampled requests to the candidate through bounded, budgeted dispatch.
//! - [`embeddings`]: the embedding similarity of shadow pairs, when a rollout names a model.
//! - [`judge`]: judges a sample of shadow pairs with the rollout's judge variant (bounded,
//!   budgeted, positions swapped) before they are stored.
//! - [`record`]: per-request accounting (metrics, events, pair sides) through bounded queues.
//! - [`capture`]: what user and model text may be stored (`store.capture_text`, `store.redact`).
//! - [`controller`]: feeds the pure rollout state machine and carries out its decisions.
//! - [`report`]: the comparison report over stored pairs and events (admin API, shadow gate).
//! - [`alerts`]: Slack, PagerDuty and webhook delivery with retries.
//! - [`state`]: shared state and the `ArcSwap` snapshot the request path reads.
//! - [`metrics`]: every exported metric, with handles created once.
//! - [`server`]: serve and drain.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod capture;
pub mod clock;
pub mod controller;
pub mod embeddings;
pub mod error;
pub mod http;
pub mod judge;
pub mod metrics;
pub mod providers;
pub mod record;
pub mod report;
pub mod server;
pub mod shadow;
pub mod state;

pub use server::serve;
pub use state::{BuildOptions, Gateway};
