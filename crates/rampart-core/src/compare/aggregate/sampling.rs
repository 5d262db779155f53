//! Sampling for the aggregator, apart from the statistics: a seeded reservoir of length pairs
//! (Vitter's Algorithm R: the i-th item replaces a uniformly chosen slot with probability k/i,
//! so the reservoir is a uniform sample of everything pushed) and the capped opening-phrase
//! counts. Both keep memory bounded whatever the number of pairs.

use std::collections::HashMap;

use rampart_stats::rng::SplitMix64;

/// Algorithm R over (baseline tokens, candidate tokens).
#[derive(Debug, Clone)]
pub(super) struct Reservoir {
    pub(super) cap: usize,
    pub(super) seen: u64,
    pub(super) items: Vec<(f64, f64)>,
    rng: SplitMix64,
}

impl Reservoir {
    pub(super) fn new(cap: usize, seed: u64) -> Self {
        Reservoir {
            cap,
            seen: 0,
            items: Vec::new(),
            rng: SplitMix64::new(seed),
        }
    }
    pub(super) fn push(&mut self, item: (f64, f64)) {
        self.seen += 1;
        if self.items.len() < self.cap {
            self.items.push(item);
        } else {
            let j = self.rng.below(self.seen);
            if let Some(slot) = self.items.get_mut(j as usize) {
                *slot = item;
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct OpeningCounts {
    pub(super) n: u64,
    pub(super) baseline: HashMap<String, u64>,
    pub(super) candidate: HashMap<String, u64>,
    pub(super) both: HashMap<String, u64>,
}

impl OpeningCounts {
    fn bump(map: &mut HashMap<String, u64>, key: &str, cap: usize) {
        if let Some(v) = map.get_mut(key) {
            *v += 1;
        } else if map.len() < cap {
            map.insert(key.to_string(), 1);
        }
    }
    pub(super) fn push(&mut self, b: Option<&str>, c: Option<&str>, cap: usize) {
        self.n += 1;
        let b = b.unwrap_or("(empty)");
        let c = c.unwrap_or("(empty)");
        Self::bump(&mut self.baseline, b, cap);
        Self::bump(&mut self.candidate, c, cap);
        if b == c {
            Self::bump(&mut self.both, b, cap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservoir_is_bounded_and_uniform_enough() {
        let mut r = Reservoir::new(100, 7);
        for i in 0..10_000 {
            r.push((i as f64, 0.0));
        }
        assert_eq!(r.items.len(), 100);
        let mean = r.items.iter().map(|x| x.0).sum::<f64>() / 100.0;
        // Uniform over 0..10000: mean 5000, sd of the mean ≈ 289.
        assert!((mean - 5_000.0).abs() < 1_200.0, "{mean}");
    }

    #[test]
    fn opening_maps_are_capped() {
        let mut o = OpeningCounts::default();
        for i in 0..50 {
            o.push(Some(&format!("p{i}")), Some("same"), 10);
        }
        assert_eq!(o.baseline.len(), 10);
        assert_eq!(o.n, 50);
    }
}
