//! Portable, seedable randomness: FNV-1a hashing and a SplitMix64 generator, from
//! [`rampart_stats::rng`] (the workspace's one copy).
//!
//! Everything the simulator decides is derived from these, so an answer, a refusal or a
//! latency draw is identical across platforms, Rust versions and crate versions.

pub use rampart_stats::rng::{SplitMix64 as Rng, combine, fnv1a, mix};
