//! The comparison engine: per-pair features and aggregates with uncertainty. Pure.
//!
//! Map of the module (data flows top to bottom):
//!
//! * [`features`]: one [`Pair`](crate::record::Pair) → [`PairFeatures`] (exact / normalized match,
//!   token-F1 similarity, equivalence class, lengths, refusal, opening phrase, format). Holds no
//!   state; the only place that looks at texts.
//! * [`format`]: markdown / JSON / tool-call / citation detectors used by `features`.
//! * [`schema`]: a tiny JSON-schema subset validator (type, required, properties,
//!   additionalProperties, enum, const, items) for `response_format` and tool arguments.
//! * [`aggregate`]: the streaming [`Accumulator`]: `push(&PairFeatures)` for every pair, then
//!   `finish()` → [`ComparisonReport`]. Memory is bounded (reservoirs, sketches, capped maps),
//!   whatever the number of pairs.
//! * [`judge`]: LLM-as-judge prompt, verdict parsing, swap correction, win rate, spend cap.
//! * [`cohort`]: the canary-vs-control view from request events and feedback (unpaired tests).
//! * [`report`]: the serializable report model (stable JSON field names) and the shadow-gate input.
//! * [`render_text`], [`render_html`]: pure renderers of a report to a terminal string or a
//!   self-contained HTML page.
//!
//! Invariants: nothing here performs I/O, reads the clock or uses ambient randomness (the
//! reservoir and bootstrap seeds come from [`CompareConfig`]); the same pairs in the same order
//! give the same report, byte for byte.

pub mod aggregate;
pub mod cohort;
pub mod features;
pub mod format;
pub mod judge;
pub mod render_html;
pub mod render_text;
pub mod report;
pub mod schema;

pub use aggregate::{Accumulator, CompareConfig};
pub use cohort::{CohortAccumulator, CohortReport};
pub use features::{Equivalence, PairFeatures, SideFeatures, pair_features};
pub use judge::{JudgeBudget, JudgeTally, Verdict, judge_prompt, parse_verdict};
pub use render_html::{
    GuardrailPoint, outcomes_section, render_html, render_html_page, render_html_with,
};
pub use render_text::render_text;
pub use report::{ComparisonReport, ShadowGateInput, shadow_gate_input};
