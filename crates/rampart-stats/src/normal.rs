//! The standard normal distribution: density, CDF Φ, survival function Q = 1 − Φ, quantile
//! Φ⁻¹ and its upper-tail counterpart.
//!
//! Tails are computed directly (`Q(z) = ½ erfc(z/√2)`), never as `1 − Φ`, so a p-value of
//! 1e-15 keeps its relative precision. Quantiles are accurate to a few ulps.

use crate::special::erfc;
use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// Standard normal density `φ(z) = e^{−z²/2} / √(2π)`.
pub fn pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * PI).sqrt()
}

/// Standard normal CDF `Φ(z) = ½ erfc(−z/√2)` (Abramowitz & Stegun 26.2.29).
pub fn cdf(z: f64) -> f64 {
    0.5 * erfc(-z * FRAC_1_SQRT_2)
}

/// Standard normal survival function `Q(z) = 1 − Φ(z) = ½ erfc(z/√2)`, computed without
/// cancellation in the upper tail.
pub fn sf(z: f64) -> f64 {
    0.5 * erfc(z * FRAC_1_SQRT_2)
}

// Acklam's rational approximation coefficients (relative error < 1.15e-9).
const A: [f64; 6] = [
    -3.969_683_028_665_376e1,
    2.209_460_984_245_205e2,
    -2.759_285_104_469_687e2,
    1.383_577_518_672_69e2,
    -3.066_479_806_614_716e1,
    2.506_628_277_459_239,
];
const B: [f64; 5] = [
    -5.447_609_879_822_406e1,
    1.615_858_368_580_409e2,
    -1.556_989_798_598_866e2,
    6.680_131_188_771_972e1,
    -1.328_068_155_288_572e1,
];
const C: [f64; 6] = [
    -7.784_894_002_430_293e-3,
    -3.223_964_580_411_365e-1,
    -2.400_758_277_161_838,
    -2.549_732_539_343_734,
    4.374_664_141_464_968,
    2.938_163_982_698_783,
];
const D: [f64; 4] = [
    7.784_695_709_041_462e-3,
    3.224_671_290_700_398e-1,
    2.445_134_137_142_996,
    3.754_408_661_907_416,
];

/// Acklam's initial approximation of Φ⁻¹(p) for `0 < p ≤ ½`.
fn acklam_lower(p: f64) -> f64 {
    const P_LOW: f64 = 0.024_25;
    if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Φ⁻¹(p) for `0 < p ≤ ½` (result ≤ 0): Acklam + two Halley steps on `Φ(x) − p`.
fn ppf_lower(p: f64) -> f64 {
    let mut x = acklam_lower(p);
    for _ in 0..2 {
        let e = cdf(x) - p;
        let u = e * (2.0 * PI).sqrt() * (0.5 * x * x).exp();
        let step = u / (1.0 + 0.5 * x * u);
        if !step.is_finite() {
            break;
        }
        x -= step;
    }
    x
}

/// Standard normal quantile `Φ⁻¹(p)`, `z_p`.
///
/// Formula: P. J. Acklam's rational approximation (2003, relative error 1.15e-9) refined by
/// two Halley steps `x ← x − u/(1 + x·u/2)`, `u = (Φ(x) − p)/φ(x)`, each against the tail that
/// keeps precision (for `p > ½` the symmetric `−Φ⁻¹(1 − p)`, where `1 − p` is exact).
/// Returns `None` unless `0 < p < 1`.
pub fn ppf(p: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    if p <= 0.5 {
        Some(ppf_lower(p))
    } else {
        Some(-ppf_lower(1.0 - p))
    }
}

/// Upper-tail quantile `Φ⁻¹(1 − q) = −Φ⁻¹(q)` (scipy's `norm.isf`), accurate for tiny `q`
/// such as `α/2`. Returns `None` unless `0 < q < 1`.
pub fn isf(q: f64) -> Option<f64> {
    ppf(q).map(|z| -z)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quantile_known_values() {
        assert!((ppf(0.975).unwrap() - 1.959_963_984_540_054).abs() < 1e-15);
        assert!((isf(0.025).unwrap() - 1.959_963_984_540_054).abs() < 1e-15);
        assert!((ppf(0.8).unwrap() - 0.841_621_233_572_914_3).abs() < 1e-15);
        assert_eq!(ppf(0.5).unwrap(), 0.0);
        assert!((ppf(1e-10).unwrap() + 6.361_340_902_404_056).abs() < 1e-13);
        assert!(ppf(0.0).is_none() && ppf(1.0).is_none() && ppf(f64::NAN).is_none());
    }

    #[test]
    fn cdf_known_values() {
        assert!((cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-16);
        assert!((sf(8.0) / 6.220_960_574_271_784e-16 - 1.0).abs() < 1e-13);
        assert_eq!(cdf(0.0), 0.5);
    }

    #[test]
    fn round_trip() {
        for i in 1..1000 {
            let p = f64::from(i) / 1000.0;
            let z = ppf(p).unwrap();
            let err = (cdf(z) - p).abs() / p;
            assert!(err <= 5e-15, "p={p} rel err {err:e}");
        }
    }
}
