//! The rollout controller's decisions: stages, gates, guardrails (the kill switch). Pure.
