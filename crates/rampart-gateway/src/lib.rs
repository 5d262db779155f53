//! rampart-gateway: the I/O shell around rampart's pure core.
//!
//! The data plane (serve, mirror, record), which shares a [`plane::DataPlane`] handle:
//! - [`http`]: the OpenAI-compatible data plane (`/v1/chat/completions`), feedback, metrics
//!   and health endpoints, and the admin API.
//! - [`providers`]: where variants' calls go (`openai`, in-process `mock`).
//! - [`shadow`]: mirrors sampled requests to the candidate through bounded, budgeted dispatch.
//! - [`embeddings`]: the embedding similarity of shadow pairs, when a rollout names a model.
//! - [`judge`]: judges a sample of shadow pairs with the rollout's judge variant (bounded,
//!   budgeted, positions swapped) before they are stored.
//! - [`record`]: per-request accounting (metrics, events, pair sides) through bounded queues.
//! - [`telemetry`]: OpenTelemetry spans of requests and shadow calls, exported over OTLP/HTTP.
//! - [`capture`]: what user and model text may be stored (`store.capture_text`, `store.redact`).
//! - [`signal`]: what the data plane tells the control plane about each request and pair.
//!
//! The control plane ([`control`]): the controller, its command handle, the shadow gate and
//! alerts. It alone publishes the routing snapshot the data plane reads.
//!
//! Shared: [`metrics`] (every exported metric), [`report`] (the comparison report over stored
//! pairs and events), [`clock`]. [`replay`]: offline replay (`rampart replay`) on a data plane
//! without a listener or controller. [`state`] assembles both planes at start-up and is the HTTP
//! handlers' state; [`server`] serves and drains.
#![forbid(unsafe_code)]

pub mod capture;
pub mod clock;
pub mod control;
pub mod embeddings;
pub mod error;
pub mod http;
pub mod judge;
pub mod metrics;
pub mod plane;
pub mod providers;
pub mod record;
pub mod replay;
pub mod report;
pub mod server;
pub mod shadow;
pub mod signal;
pub mod state;
pub mod telemetry;

pub use server::{serve, serve_until};
pub use state::{BuildError, BuildOptions, Gateway};
