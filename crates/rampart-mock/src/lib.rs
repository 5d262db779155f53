//! rampart-mock: the simulated LLM provider that rampart's demo, tests and benchmarks run
//! against. Realistic enough to exercise every gate and guardrail (registers, lengths,
//! refusals, lognormal latency, injected errors), deterministic, and cheap per call.
//!
//! Map of the crate:
//! - [`rng`]: portable hashing and a SplitMix64 generator; the source of every draw.
//! - [`generate`]: pure text generation: keywords, the answer in a style, refusals, token counts.
//! - [`judge`]: the simulated pairwise judge (MT-Bench prompt format, `[[A]]`/`[[B]]`/`[[C]]`).
//! - [`plan`]: the pure decision step, request → [`Plan`] (error or answer, latency, TTFT).
//! - [`simulator`]: [`Simulator`], which plans, waits on the tokio clock and shapes OpenAI bodies
//!   and stream chunks; it keeps the bounded log of [`Received`] requests.
//! - [`embeddings`]: deterministic hashed bag-of-words embeddings.
//! - [`server`]: the HTTP surface ([`router`], [`serve`]).
//! - [`anthropic`]: `POST /v1/messages`, the simulator in Anthropic's Messages format.
//! - [`error`]: [`SimError`], status plus OpenAI-shaped error body.
//!
//! Used in process by the gateway for `type = "mock"` providers, and standalone through
//! `rampart mock-llm`, which calls [`serve`].

pub mod anthropic;
pub mod embeddings;
pub mod error;
pub mod generate;
pub mod judge;
pub mod plan;
pub mod rng;
pub mod server;
pub mod simulator;

pub use error::SimError;
pub use plan::{Completion, FinishReason, Plan};
pub use server::{CLASS_HEADER, router, serve};
pub use simulator::{Received, Simulator};
