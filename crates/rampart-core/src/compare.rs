//! The comparison engine: per-pair features and aggregates with uncertainty. Pure.
