//! A window's one-second buckets as aggregate rows ([`AggregateRow`]) and back: each replica
//! seals its completed seconds into rows ([`Window::seal`]); the leader's fleet window absorbs
//! every replica's rows ([`Window::absorb`]), so it holds what one window fed by all the
//! fleet's signals would hold.
//!
//! Invariants: a side's row carries everything its bucket side holds (counters, latency
//! sketch, custom moments), so absorbing the rows of a window gives back its observations
//! exactly (sketches merge bucket by bucket; moments by adding fields). The fleet's stage
//! counters cover the whole seconds since the stage began (a row is in the stage when its
//! second starts at or after the stage's epoch): the part of the epoch's own second that is
//! after the epoch is left out, which delays a gate by under a second and never counts a
//! previous stage's request.

use rampart_core::rollout::{CohortCounts, MetricMoments, PairedCounts};
use rampart_stats::sketch::DdSketch;
use rampart_store::{AggregateRow, AggregateSide, AggregateTotal};

use super::{Bucket, Side, Window, merge};

/// Whether a side holds nothing worth a row.
fn empty(s: &Side) -> bool {
    s.counts == CohortCounts::default() && s.latency.is_none() && s.custom.iter().all(|m| m.n == 0)
}

fn pair_counts(p: &PairedCounts, side: AggregateSide) -> CohortCounts {
    let baseline = side == AggregateSide::PairBaseline;
    CohortCounts {
        requests: p.pairs,
        errors: if baseline {
            p.baseline_errors
        } else {
            p.candidate_errors
        },
        refusals: if baseline {
            p.baseline_refusals
        } else {
            p.candidate_refusals
        },
        ..CohortCounts::default()
    }
}

/// Add one pair side's counters; the number of pairs comes with the baseline's row alone.
fn add_pair_side(into: &mut PairedCounts, side: AggregateSide, c: &CohortCounts) {
    if side == AggregateSide::PairBaseline {
        into.pairs += c.requests;
        into.baseline_errors += c.errors;
        into.baseline_refusals += c.refusals;
    } else {
        into.candidate_errors += c.errors;
        into.candidate_refusals += c.refusals;
    }
}

fn merge_moments(into: &mut Vec<MetricMoments>, from: &[MetricMoments]) {
    if into.len() < from.len() {
        into.resize(from.len(), MetricMoments::default());
    }
    for (i, m) in into.iter_mut().zip(from) {
        i.merge(m);
    }
}

impl Bucket {
    fn rows(&self, rollout: &str, replica: &str) -> Vec<AggregateRow> {
        let row =
            |side, counts, latency: &Option<DdSketch>, custom: &[MetricMoments]| AggregateRow {
                rollout: rollout.to_string(),
                second: self.second,
                replica: replica.to_string(),
                side,
                counts,
                latency: latency.as_ref().map(DdSketch::to_bytes),
                custom: custom.to_vec(),
            };
        let mut out = Vec::new();
        for (side, s) in [
            (AggregateSide::Control, &self.control),
            (AggregateSide::Canary, &self.canary),
        ] {
            if !empty(s) {
                out.push(row(side, s.counts, &s.latency, &s.custom));
            }
        }
        if self.pairs.pairs > 0 {
            for (side, latency) in [
                (AggregateSide::PairBaseline, &self.baseline_latency),
                (AggregateSide::PairCandidate, &self.candidate_latency),
            ] {
                out.push(row(side, pair_counts(&self.pairs, side), latency, &[]));
            }
        }
        out
    }

    fn absorb(&mut self, row: &AggregateRow, latency: Option<&DdSketch>) {
        let latency = latency.cloned();
        match row.side {
            AggregateSide::Control | AggregateSide::Canary => {
                let s = if row.side == AggregateSide::Canary {
                    &mut self.canary
                } else {
                    &mut self.control
                };
                s.counts.add(&row.counts);
                merge(&mut s.latency, &latency);
                merge_moments(&mut s.custom, &row.custom);
            }
            AggregateSide::PairBaseline => {
                add_pair_side(&mut self.pairs, row.side, &row.counts);
                merge(&mut self.baseline_latency, &latency);
            }
            AggregateSide::PairCandidate => {
                add_pair_side(&mut self.pairs, row.side, &row.counts);
                merge(&mut self.candidate_latency, &latency);
            }
        }
    }
}

impl Window {
    /// Seal every second before `now_ms`'s and return the rows of the buckets sealed now (at
    /// most one per side and second: what a replica flushes).
    pub fn seal(&mut self, rollout: &str, replica: &str, now_ms: i64) -> Vec<AggregateRow> {
        let through = now_ms.div_euclid(1000) - 1;
        let from = self.sealed_through.map_or(i64::MIN, |s| s + 1);
        let rows = self
            .buckets
            .iter()
            .filter(|b| b.second >= from && b.second <= through)
            .flat_map(|b| b.rows(rollout, replica))
            .collect();
        self.sealed_through = Some(self.sealed_through.map_or(through, |s| s.max(through)));
        rows
    }

    /// Whether a row of `second` counts in the current stage (whole seconds since its epoch).
    fn in_stage(&self, second: i64) -> bool {
        second.saturating_mul(1000) >= self.stage_since_ms
    }

    fn add_stage(&mut self, side: AggregateSide, c: &CohortCounts) {
        match side {
            AggregateSide::Control => self.stage_control.add(c),
            AggregateSide::Canary => self.stage_canary.add(c),
            AggregateSide::PairBaseline | AggregateSide::PairCandidate => {
                add_pair_side(&mut self.stage_pairs, side, c)
            }
        }
    }

    /// Take in one replica's row (its latency sketch decoded as `latency`): into the bucket of
    /// its second when that is at or after `window_start` (a second), and into the stage
    /// counters when it is in the stage. The caller absorbs each row once.
    pub fn absorb(&mut self, row: &AggregateRow, latency: Option<&DdSketch>, window_start: i64) {
        if self.in_stage(row.second) {
            self.add_stage(row.side, &row.counts);
        }
        if row.second < window_start {
            return;
        }
        let at = match self.buckets.binary_search_by_key(&row.second, |b| b.second) {
            Ok(i) => i,
            Err(i) => {
                self.buckets.insert(
                    i,
                    Bucket {
                        second: row.second,
                        ..Bucket::default()
                    },
                );
                i
            }
        };
        self.buckets[at].absorb(row, latency);
    }

    /// Add counters summed over seconds older than the buckets held (a long stage's beginning)
    /// to the stage counters.
    pub fn add_stage_totals(&mut self, totals: &[AggregateTotal]) {
        for t in totals {
            self.add_stage(t.side, &t.counts);
        }
    }

    /// Start a new stage at `epoch_ms` and count in it the buckets held whose seconds are in it.
    pub fn restage_from_buckets(&mut self, epoch_ms: i64) {
        self.reset_stage(epoch_ms);
        let mut control = CohortCounts::default();
        let mut canary = CohortCounts::default();
        let mut pairs = PairedCounts::default();
        for b in self.buckets.iter().filter(|b| b.second * 1000 >= epoch_ms) {
            control.add(&b.control.counts);
            canary.add(&b.canary.counts);
            for side in [AggregateSide::PairBaseline, AggregateSide::PairCandidate] {
                add_pair_side(&mut pairs, side, &pair_counts(&b.pairs, side));
            }
        }
        self.stage_control = control;
        self.stage_canary = canary;
        self.stage_pairs = pairs;
    }

    /// The oldest second a bucket is held for, if any.
    pub fn oldest_second(&self) -> Option<i64> {
        self.buckets.front().map(|b| b.second)
    }
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
