//! A mergeable quantile sketch for latencies with a relative-error guarantee (DDSketch:
//! Masson, Rim & Lee 2019, *DDSketch: A Fast and Fully-Mergeable Quantile Sketch with
//! Relative-Error Guarantees*, VLDB).
//!
//! A positive value `v` goes to bucket `i = ⌈ln v / ln γ⌉`, `γ = (1 + α)/(1 − α)`, so bucket
//! `i` covers `(γ^{i−1}, γ^i]`; the bucket's representative `2γ^i/(γ + 1)` is within relative
//! error α of every value in it. Zeros are counted separately. The quantile at `q` estimates
//! the order statistic `x_(⌊q·(n−1)⌋)` (0-based) within relative error α.
//!
//! Invariants: counts are integers, so [`DdSketch::merge`] is exactly associative and
//! commutative for counts, min and max (the float `sum` is associative up to rounding).
//! Negative, NaN and infinite values are rejected. Memory is one `u64` per bucket between the
//! smallest and largest bucket seen (≈ 920 buckets for 0.01 ms … 100 s at α = 1 %).

use std::fmt;

/// Why a value or a sketch was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SketchError {
    /// The value is negative, NaN or infinite.
    InvalidValue,
    /// The relative accuracy is outside [1e-4, 0.5].
    InvalidAccuracy,
    /// Merging sketches with different relative accuracies.
    IncompatibleAccuracy,
    /// The bytes are not a sketch serialized by [`DdSketch::to_bytes`].
    Corrupt,
}

impl fmt::Display for SketchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            SketchError::InvalidValue => "value must be finite and ≥ 0",
            SketchError::InvalidAccuracy => "relative accuracy must be in [1e-4, 0.5]",
            SketchError::IncompatibleAccuracy => "sketches have different relative accuracies",
            SketchError::Corrupt => "corrupt sketch encoding",
        };
        f.write_str(s)
    }
}

impl std::error::Error for SketchError {}

/// Default relative accuracy: 1 %.
pub const DEFAULT_RELATIVE_ACCURACY: f64 = 0.01;

/// Smallest supported relative accuracy (keeps bucket indices far inside `i32`).
pub const MIN_RELATIVE_ACCURACY: f64 = 1e-4;
/// Largest supported relative accuracy.
pub const MAX_RELATIVE_ACCURACY: f64 = 0.5;

const MAGIC: &[u8; 4] = b"RDD1";

/// DDSketch with a dense, growable bucket store.
#[derive(Debug, Clone, PartialEq)]
pub struct DdSketch {
    alpha: f64,
    gamma: f64,
    inv_ln_gamma: f64,
    /// Bucket index of `counts[0]`.
    offset: i32,
    counts: Vec<u64>,
    zero_count: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for DdSketch {
    fn default() -> Self {
        Self::with_params(DEFAULT_RELATIVE_ACCURACY)
    }
}

impl DdSketch {
    fn with_params(alpha: f64) -> Self {
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        DdSketch {
            alpha,
            gamma,
            inv_ln_gamma: 1.0 / gamma.ln(),
            offset: 0,
            counts: Vec::new(),
            zero_count: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// An empty sketch with relative accuracy `alpha` in [1e-4, 0.5]. Memory is about
    /// `ln(max/min)/(2α)` buckets of 8 bytes.
    pub fn new(alpha: f64) -> Result<Self, SketchError> {
        if !(MIN_RELATIVE_ACCURACY..=MAX_RELATIVE_ACCURACY).contains(&alpha) {
            return Err(SketchError::InvalidAccuracy);
        }
        Ok(Self::with_params(alpha))
    }

    /// The relative accuracy α.
    pub fn relative_accuracy(&self) -> f64 {
        self.alpha
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the values added.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Smallest value added, `None` when empty.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest value added, `None` when empty.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// Mean of the values added, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    fn index(&self, v: f64) -> i32 {
        // v > 0 and finite: |ln v| ≤ 745 and 1/ln γ < 5000, so the index fits in i32.
        (v.ln() * self.inv_ln_gamma).ceil() as i32
    }

    fn value_of(&self, index: i32) -> f64 {
        2.0 * self.gamma.powi(index) / (self.gamma + 1.0)
    }

    fn add_to_bucket(&mut self, index: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(n);
            return;
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            let mut v = vec![0u64; grow + self.counts.len()];
            v[grow..].copy_from_slice(&self.counts);
            self.counts = v;
            self.offset = index;
        }
        let pos = (index - self.offset) as usize;
        if pos >= self.counts.len() {
            self.counts.resize(pos + 1, 0);
        }
        self.counts[pos] += n;
    }

    /// Adds one value (≥ 0, finite).
    #[inline]
    pub fn add(&mut self, v: f64) -> Result<(), SketchError> {
        if !(v >= 0.0 && v.is_finite()) {
            return Err(SketchError::InvalidValue);
        }
        if v == 0.0 {
            self.zero_count += 1;
        } else {
            let i = self.index(v);
            let pos = i.wrapping_sub(self.offset) as u32 as usize;
            if pos < self.counts.len() {
                self.counts[pos] += 1;
            } else {
                self.add_to_bucket(i, 1);
            }
        }
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        Ok(())
    }

    /// Estimate of the `q`-quantile (`q` in [0, 1]): within relative error α of the order
    /// statistic `x_(⌊q·(n−1)⌋)`, clamped to [min, max]. `None` when empty or `q ∉ [0, 1]`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        if rank < self.zero_count {
            return Some(0.0);
        }
        let mut seen = self.zero_count;
        for (pos, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen > rank {
                let v = self.value_of(self.offset + pos as i32);
                return Some(v.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// Merges `other` into `self` (bucket counts add). Errors if the accuracies differ.
    pub fn merge(&mut self, other: &DdSketch) -> Result<(), SketchError> {
        if self.alpha.to_bits() != other.alpha.to_bits() {
            return Err(SketchError::IncompatibleAccuracy);
        }
        if other.count == 0 {
            return Ok(());
        }
        for (pos, &c) in other.counts.iter().enumerate() {
            if c > 0 {
                self.add_to_bucket(other.offset + pos as i32, c);
            }
        }
        self.zero_count += other.zero_count;
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        Ok(())
    }

    /// Non-empty buckets as `(index, count)`, ascending by index (zeros not included; see
    /// [`DdSketch::zero_count`]).
    pub fn bins(&self) -> Vec<(i32, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(p, &c)| (self.offset + p as i32, c))
            .collect()
    }

    /// Number of exact zeros added.
    pub fn zero_count(&self) -> u64 {
        self.zero_count
    }

    /// Compact binary encoding: magic `RDD1`, α, sum, min, max (f64 LE), zero count, number of
    /// buckets (LEB128), then per non-empty bucket the zigzag-LEB128 index delta and the
    /// LEB128 count. The total count is recomputed on decoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let bins = self.bins();
        let mut out = Vec::with_capacity(44 + bins.len() * 3);
        out.extend_from_slice(MAGIC);
        for f in [self.alpha, self.sum, self.min, self.max] {
            out.extend_from_slice(&f.to_le_bytes());
        }
        put_varint(&mut out, self.zero_count);
        put_varint(&mut out, bins.len() as u64);
        let mut prev: i64 = 0;
        for (i, c) in bins {
            let delta = i64::from(i) - prev;
            put_varint(&mut out, ((delta << 1) ^ (delta >> 63)) as u64);
            put_varint(&mut out, c);
            prev = i64::from(i);
        }
        out
    }

    /// Decodes [`DdSketch::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SketchError> {
        let mut r = Reader { b: bytes, pos: 0 };
        if r.take(4)? != MAGIC {
            return Err(SketchError::Corrupt);
        }
        let alpha = r.f64()?;
        let mut s = DdSketch::new(alpha).map_err(|_| SketchError::Corrupt)?;
        let (sum, min, max) = (r.f64()?, r.f64()?, r.f64()?);
        s.zero_count = r.varint()?;
        let n = r.varint()?;
        let mut prev: i64 = 0;
        let mut first: Option<i64> = None;
        let mut total = s.zero_count;
        for _ in 0..n {
            let z = r.varint()?;
            let delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
            let idx = prev.checked_add(delta).ok_or(SketchError::Corrupt)?;
            let idx32 = i32::try_from(idx).map_err(|_| SketchError::Corrupt)?;
            let c = r.varint()?;
            // Indices strictly increase, counts are positive, and the dense store stays small.
            let bad_order = first.is_some() && delta <= 0;
            let too_wide = first.is_some_and(|f| idx - f > 1 << 24);
            if c == 0 || bad_order || too_wide {
                return Err(SketchError::Corrupt);
            }
            first.get_or_insert(idx);
            s.add_to_bucket(idx32, c);
            total = total.checked_add(c).ok_or(SketchError::Corrupt)?;
            prev = idx;
        }
        if r.pos != bytes.len() {
            return Err(SketchError::Corrupt);
        }
        s.count = total;
        s.sum = sum;
        if total > 0 {
            s.min = min;
            s.max = max;
        }
        Ok(s)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], SketchError> {
        let end = self.pos.checked_add(n).ok_or(SketchError::Corrupt)?;
        let s = self.b.get(self.pos..end).ok_or(SketchError::Corrupt)?;
        self.pos = end;
        Ok(s)
    }

    fn f64(&mut self) -> Result<f64, SketchError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(f64::from_le_bytes(a))
    }

    fn varint(&mut self) -> Result<u64, SketchError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first().ok_or(SketchError::Corrupt)?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SketchError::Corrupt)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_stats() {
        let mut s = DdSketch::default();
        for i in 1..=1000 {
            s.add(f64::from(i)).unwrap();
        }
        assert_eq!(s.count(), 1000);
        assert_eq!(s.min(), Some(1.0));
        assert_eq!(s.max(), Some(1000.0));
        assert_eq!(s.sum(), 500_500.0);
        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let est = s.quantile(q).unwrap();
            assert!((est - exact).abs() <= 0.01 * exact, "{q}: {est}");
        }
        assert!(s.add(-1.0).is_err() && s.add(f64::NAN).is_err());
    }

    #[test]
    fn zeros_and_round_trip() {
        let mut s = DdSketch::default();
        for v in [0.0, 0.0, 3.5, 1e-3, 7e5] {
            s.add(v).unwrap();
        }
        assert_eq!(s.quantile(0.0), Some(0.0));
        let back = DdSketch::from_bytes(&s.to_bytes()).unwrap();
        assert_eq!(back.bins(), s.bins());
        assert_eq!(back.count(), s.count());
        assert_eq!(back.quantile(0.9), s.quantile(0.9));
        assert!(DdSketch::from_bytes(&s.to_bytes()[..10]).is_err());
        assert!(DdSketch::from_bytes(b"nope").is_err());
        let empty = DdSketch::from_bytes(&DdSketch::default().to_bytes()).unwrap();
        assert_eq!(empty.count(), 0);
    }

    #[test]
    fn merge_rejects_other_accuracy() {
        let mut a = DdSketch::default();
        let b = DdSketch::new(0.02).unwrap();
        assert_eq!(a.merge(&b), Err(SketchError::IncompatibleAccuracy));
    }
}
