//! Similarity measures between two texts: token F1 over normalized words (the report's
//! measure), the cosine of two embeddings, and chrF over character n-grams (behind the `chrf`
//! feature: only the similarity calibration example uses it). Formulas and sources are in the
//! parent module's doc.

use super::tokenize::scan;

/// Cosine similarity `a·b / (|a|·|b|)`; `None` for different lengths, empty or zero vectors.
pub fn cosine(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (mut dot, mut na, mut nb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let denom = (na * nb).sqrt();
    (denom > 0.0 && dot.is_finite()).then(|| (dot / denom).clamp(-1.0, 1.0))
}

/// Token F1 from the word hashes of two [`normalize`]d texts (see the module doc), with
/// `table` as scratch.
pub(super) fn token_f1_hashes(
    table: &mut NgramTable,
    reference: &[u64],
    hypothesis: &[u64],
) -> f64 {
    let (nr, nh) = (reference.len(), hypothesis.len());
    if nr == 0 && nh == 0 {
        return 1.0;
    }
    if nr == 0 || nh == 0 {
        return 0.0;
    }
    table.reset(nr);
    for &w in reference {
        table.add(w);
    }
    let matches = hypothesis.iter().filter(|&&w| table.take(w)).count();
    if matches == 0 {
        return 0.0;
    }
    let (p, r) = (matches as f64 / nh as f64, matches as f64 / nr as f64);
    2.0 * p * r / (p + r)
}

/// Per-thread scratch space of [`pair_features`] and [`token_f1`]: the two normalized texts and
/// the word multiset, reused from pair to pair.
#[derive(Default)]
pub(super) struct FeatureScratch {
    pub(super) baseline: Vec<u8>,
    pub(super) candidate: Vec<u8>,
    pub(super) baseline_words: Vec<u64>,
    pub(super) candidate_words: Vec<u64>,
    pub(super) table: NgramTable,
}

thread_local! {
    static FEATURE_SCRATCH: std::cell::RefCell<FeatureScratch> =
        std::cell::RefCell::default();
}

pub(super) fn with_scratch<T>(f: impl FnOnce(&mut FeatureScratch) -> T) -> T {
    FEATURE_SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        // Only reachable through re-entrance, which nothing here does; stay correct anyway.
        Err(_) => f(&mut FeatureScratch::default()),
    })
}

/// Token F1 of `hypothesis` against `reference` over their [`normalize`]d words, in [0, 1]; 1
/// for two texts without words, 0 when exactly one has none. See the module doc.
pub fn token_f1(reference: &str, hypothesis: &str) -> f64 {
    with_scratch(|s| {
        scan(reference, &mut s.baseline, &mut s.baseline_words);
        scan(hypothesis, &mut s.candidate, &mut s.candidate_words);
        token_f1_hashes(&mut s.table, &s.baseline_words, &s.candidate_words)
    })
}

/// A reusable open-addressing multiset of (order, n-gram hash) → count. Slots are valid only
/// when their stamp equals the current generation, so clearing is O(1).
#[derive(Default)]
pub(super) struct NgramTable {
    keys: Vec<u64>,
    counts: Vec<u32>,
    stamps: Vec<u32>,
    generation: u32,
    mask: usize,
}

impl NgramTable {
    /// Empties the table and sizes it for `n` distinct keys at most (load ≤ ½).
    fn reset(&mut self, n: usize) {
        let cap = (n * 2).next_power_of_two().max(16);
        if cap > self.keys.len() || self.generation == u32::MAX {
            self.keys = vec![0; cap];
            self.counts = vec![0; cap];
            self.stamps = vec![0; cap];
            self.generation = 0;
        }
        self.generation += 1;
        self.mask = self.keys.len() - 1;
    }

    #[cfg(feature = "chrf")]
    fn key(order: usize, h: u64) -> u64 {
        // Orders are kept apart: a 1-gram never matches a 2-gram.
        h ^ (order as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn slot(&self, key: u64) -> usize {
        let mut i = (key.wrapping_mul(0xff51_afd7_ed55_8ccd) >> 32) as usize & self.mask;
        loop {
            if self.stamps[i] != self.generation || self.keys[i] == key {
                return i;
            }
            i = (i + 1) & self.mask;
        }
    }

    fn add(&mut self, key: u64) {
        let i = self.slot(key);
        if self.stamps[i] == self.generation {
            self.counts[i] += 1;
        } else {
            self.stamps[i] = self.generation;
            self.keys[i] = key;
            self.counts[i] = 1;
        }
    }

    /// Takes one occurrence of `key` if any is left (clipped counting); whether it did.
    fn take(&mut self, key: u64) -> bool {
        let i = self.slot(key);
        if self.stamps[i] == self.generation && self.counts[i] > 0 {
            self.counts[i] -= 1;
            true
        } else {
            false
        }
    }
}

#[cfg(feature = "chrf")]
mod chrf_impl {
    use rampart_stats::rng::{FNV_OFFSET, FNV_PRIME};

    use super::NgramTable;

    /// chrF's maximum n-gram order and β.
    const CHRF_ORDER: usize = 6;
    const CHRF_BETA: f64 = 2.0;

    /// FNV-1a over chars, extended one char at a time: the hash of `chars[i..=i+k]` for every
    /// order `k + 1` ≤ [`CHRF_ORDER`] starting at `i`, passed to `f(k, hash)`.
    fn for_each_ngram(chars: &[char], mut f: impl FnMut(usize, u64)) {
        let len = chars.len();
        for i in 0..len {
            let mut h: u64 = FNV_OFFSET;
            for (k, &c) in chars[i..len.min(i + CHRF_ORDER)].iter().enumerate() {
                h ^= u64::from(c);
                h = h.wrapping_mul(FNV_PRIME);
                f(k, h);
            }
        }
    }

    /// Per-thread scratch space of [`chrf`], so a report over a million pairs allocates nothing
    /// per pair here.
    #[derive(Default)]
    struct ChrfScratch {
        reference: Vec<char>,
        hypothesis: Vec<char>,
        table: NgramTable,
    }

    thread_local! {
        static CHRF_SCRATCH: std::cell::RefCell<ChrfScratch> = std::cell::RefCell::default();
    }

    /// chrF (β = 2, orders 1..=6) of `hypothesis` against `reference`, in [0, 1]; 1 for two empty
    /// texts, 0 when exactly one is empty. See the module doc for the formula. The clipped n-gram
    /// matches are counted with a multiset of the reference's n-grams (linear time).
    pub fn chrf(reference: &str, hypothesis: &str) -> f64 {
        CHRF_SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut s) => chrf_with(&mut s, reference, hypothesis),
            // Only reachable through re-entrance, which chrf never does; stay correct anyway.
            Err(_) => chrf_with(&mut ChrfScratch::default(), reference, hypothesis),
        })
    }

    fn chrf_with(s: &mut ChrfScratch, reference: &str, hypothesis: &str) -> f64 {
        let ChrfScratch {
            reference: r,
            hypothesis: h,
            table,
        } = s;
        r.clear();
        r.extend(reference.chars().filter(|c| !c.is_whitespace()));
        h.clear();
        h.extend(hypothesis.chars().filter(|c| !c.is_whitespace()));
        if r.is_empty() && h.is_empty() {
            return 1.0;
        }
        if r.is_empty() || h.is_empty() {
            return 0.0;
        }
        table.reset(r.len() * CHRF_ORDER);
        for_each_ngram(r, |k, g| table.add(NgramTable::key(k, g)));
        let mut matches = [0usize; CHRF_ORDER];
        for_each_ngram(h, |k, g| {
            if table.take(NgramTable::key(k, g)) {
                matches[k] += 1;
            }
        });
        let (mut p_sum, mut r_sum, mut orders) = (0.0, 0.0, 0usize);
        for (k, &m) in matches.iter().enumerate() {
            // n-grams of order k+1 in a text of L chars: L − k.
            let (rn, hn) = (r.len().saturating_sub(k), h.len().saturating_sub(k));
            if rn == 0 || hn == 0 {
                break;
            }
            p_sum += m as f64 / hn as f64;
            r_sum += m as f64 / rn as f64;
            orders += 1;
        }
        if orders == 0 {
            return 0.0;
        }
        let (p, rc) = (p_sum / orders as f64, r_sum / orders as f64);
        let b2 = CHRF_BETA * CHRF_BETA;
        if p + rc == 0.0 {
            0.0
        } else {
            (1.0 + b2) * p * rc / (b2 * p + rc)
        }
    }
}
#[cfg(feature = "chrf")]
pub use chrf_impl::chrf;

#[cfg(all(test, feature = "chrf"))]
mod tests {
    use super::chrf;

    #[test]
    fn chrf_bounds_and_order() {
        assert_eq!(chrf("", ""), 1.0);
        assert_eq!(chrf("abc", ""), 0.0);
        assert!((chrf("the card arrives soon", "the card arrives soon") - 1.0).abs() < 1e-12);
        let near = chrf(
            "Your card will arrive in 3 days.",
            "Your card should arrive in 3 days.",
        );
        let far = chrf(
            "Your card will arrive in 3 days.",
            "I cannot help with that request.",
        );
        assert!(near > 0.70 && far < 0.4, "{near} {far}");
        // Non-space-separated scripts work (character n-grams).
        assert!(chrf("東京へ行きます", "東京へ行きました") > 0.6);
    }
}
