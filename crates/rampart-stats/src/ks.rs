//! Two-sample Kolmogorov–Smirnov test, e.g. "did the distribution of response lengths change?"
//!
//! * `D = max_v |F_x(v) − F_y(v)|` over all observed values.
//! * Exact p-value: probability that a uniformly random lattice path from (0, 0) to (n, m)
//!   touches `|i/n − j/m| ≥ D` (Hodges 1958), computed as a forward probability recursion
//!   over the lattice (positive terms only, so tiny p-values keep their relative precision).
//!   Ties are not corrected for.
//! * Asymptotic p-value: the exact **one-sample** two-sided KS survival function at `D` with
//!   `n_eff = round_half_even(n·m/(n + m))` (scipy's `kstwo.sf`), evaluated with the algorithm
//!   selection of Simard & L'Ecuyer (2011): Ruben–Gambino edges, Durbin's matrix
//!   (Marsaglia–Tsang–Wang 2003), Smirnov's one-sided formula (Birnbaum–Tingey 1951) and the
//!   Pelz–Good (1976) expansion.
//! * The Kolmogorov limit `Q_KS(λ) = 2Σ(−1)^{j−1}e^{−2j²λ²}`, `λ = √(nm/(n+m))·D`, for
//!   comparison with textbooks.

use crate::special::lgamma;
use crate::{Result, StatsError};
use std::f64::consts::PI;

/// How the p-value of [`ks_2samp`] is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KsMethod {
    /// Exact lattice-path probability (cost O(n·m)).
    Exact,
    /// Exact one-sample KS distribution with the effective sample size.
    Asymptotic,
}

/// Result of [`ks_2samp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// The statistic D (for `Exact`, snapped to the lattice `h/lcm(n, m)`).
    pub statistic: f64,
    /// Two-sided p-value by the method used.
    pub p_value: f64,
    /// The Kolmogorov limiting-distribution p-value `Q_KS(√(nm/(n+m))·D)`.
    pub p_value_kolmogorov_limit: f64,
    /// The method actually used (`Exact` falls back to `Asymptotic` when n·m > 10⁸).
    pub method: KsMethod,
}

/// Above this many lattice points the exact method falls back to the asymptotic one.
const EXACT_MAX_CELLS: u128 = 100_000_000;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The two-sample statistic D = max |F_x − F_y| over the pooled observed values.
pub fn ks_statistic(x: &[f64], y: &[f64]) -> Result<f64> {
    if x.is_empty() || y.is_empty() {
        return Err(StatsError::InvalidInput("both samples must be non-empty"));
    }
    if x.iter().chain(y).any(|v| v.is_nan()) {
        return Err(StatsError::InvalidInput("samples contain NaN"));
    }
    let mut a = x.to_vec();
    let mut b = y.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut d = 0.0f64;
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(&u), Some(&w)) => u.min(w),
            (Some(&u), None) => u,
            (None, Some(&w)) => w,
            (None, None) => break,
        };
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    Ok(d.min(1.0))
}

/// Two-sided two-sample Kolmogorov–Smirnov test.
///
/// See the module documentation for the formulas. Reference:
/// `scipy.stats.ks_2samp(x, y, alternative='two-sided', method='exact'|'asymp')`.
/// Errors: an empty sample, NaN values, or (asymptotic) `n_eff = 0` (n = m = 1).
pub fn ks_2samp(x: &[f64], y: &[f64], method: KsMethod) -> Result<KsResult> {
    let d = ks_statistic(x, y)?;
    let (n, m) = (x.len() as u64, y.len() as u64);
    let limit = kolmogorov_limit_sf(((n as f64 * m as f64) / (n as f64 + m as f64)).sqrt() * d);
    let exact_ok = u128::from(n + 1) * u128::from(m + 1) <= EXACT_MAX_CELLS;
    if method == KsMethod::Exact && exact_ok {
        let g = gcd(n, m);
        let lcm = (n / g) * m;
        let h = (d * lcm as f64).round_ties_even() as u64;
        let snapped = h as f64 / lcm as f64;
        let p = if h == 0 {
            1.0
        } else {
            lattice_outside_probability(n, m, h)
        };
        return Ok(KsResult {
            statistic: snapped,
            p_value: p.clamp(0.0, 1.0),
            p_value_kolmogorov_limit: limit,
            method: KsMethod::Exact,
        });
    }
    let (big, small) = (n.max(m) as f64, n.min(m) as f64);
    let n_eff = (big * small / (big + small)).round_ties_even();
    if n_eff < 1.0 {
        return Err(StatsError::NotComputable(
            "effective sample size rounds to 0",
        ));
    }
    Ok(KsResult {
        statistic: d,
        p_value: kstwo_sf_valid(n_eff as u64, d),
        p_value_kolmogorov_limit: limit,
        method: KsMethod::Asymptotic,
    })
}

/// `P(D_{n,m} ≥ h/lcm(n, m))` under H0 for continuous data: the probability that a uniformly
/// random monotone lattice path from (0, 0) to (n, m) visits a point with
/// `|i·(lcm/n) − j·(lcm/m)| ≥ h` (Hodges 1958). Forward recursion on path probabilities:
/// from (i, j) the next step is in x with probability `(n − i)/(n − i + m − j)`.
fn lattice_outside_probability(n: u64, m: u64, h: u64) -> f64 {
    let lcm = (n / gcd(n, m)) * m;
    let (sx, sy) = ((lcm / n) as i128, (lcm / m) as i128);
    let h = h as i128;
    let outside = |i: usize, j: usize| ((i as i128) * sx - (j as i128) * sy).abs() >= h;
    let (n, m) = (n as usize, m as usize);
    // row[j] = probability of standing at (i, j) without having touched the boundary.
    let mut row = vec![0.0f64; m + 1];
    let mut hit = 0.0f64;
    for i in 0..=n {
        for j in 0..=m {
            let here = if i == 0 && j == 0 {
                1.0
            } else {
                // arrive from (i − 1, j) by an x-step, or from (i, j − 1) by a y-step
                let from_left = if i > 0 {
                    let rem = (n - (i - 1) + m - j) as f64;
                    row[j] * (n - (i - 1)) as f64 / rem
                } else {
                    0.0
                };
                let from_below = if j > 0 {
                    let rem = (n - i + m - (j - 1)) as f64;
                    row[j - 1] * (m - (j - 1)) as f64 / rem
                } else {
                    0.0
                };
                from_left + from_below
            };
            if outside(i, j) {
                hit += here;
                row[j] = 0.0;
            } else {
                row[j] = here;
            }
        }
    }
    hit
}

/// Survival function of the Kolmogorov limiting distribution, `Q_KS(λ) = P(K > λ)`.
///
/// Formula: `2Σ_{j≥1}(−1)^{j−1} e^{−2j²λ²}` for λ ≥ 1; for λ < 1 the Jacobi-theta form of
/// the CDF `√(2π)/λ · Σ_{j≥1} e^{−(2j−1)²π²/(8λ²)}` is used and `Q = 1 − CDF`
/// (Kolmogorov 1933; scipy's `kstwobign.sf`). A NaN `lambda` gives NaN.
pub fn kolmogorov_limit_sf(lambda: f64) -> f64 {
    if lambda.is_nan() {
        return f64::NAN;
    }
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 1.0 {
        let mut s = 0.0;
        for j in 1..=20 {
            let k = f64::from(2 * j - 1);
            s += (-k * k * PI * PI / (8.0 * lambda * lambda)).exp();
        }
        return (1.0 - (2.0 * PI).sqrt() / lambda * s).clamp(0.0, 1.0);
    }
    let mut s = 0.0;
    for j in 1..=100 {
        let jf = f64::from(j);
        let term = (-2.0 * jf * jf * lambda * lambda).exp();
        s += if j % 2 == 1 { term } else { -term };
        if term < 1e-300 {
            break;
        }
    }
    (2.0 * s).clamp(0.0, 1.0)
}

/// Survival function `P(D_n ≥ x)` of the exact one-sample two-sided KS statistic
/// (scipy's `kstwo.sf`), with Simard & L'Ecuyer's (2011) choice of method per region.
/// `None` for `n = 0` or a NaN `x`.
pub fn kstwo_sf(n: u64, x: f64) -> Option<f64> {
    if n == 0 || x.is_nan() {
        return None;
    }
    Some(kstwo_sf_valid(n, x))
}

fn kstwo_sf_valid(n: u64, x: f64) -> f64 {
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben–Gambino: CDF = n!/nⁿ (2t − 1)ⁿ for 1/(2n) ≤ x ≤ 1/n
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            (1..=n).fold(1.0, |acc, i| acc * (i as f64 / nf) * (2.0 * t - 1.0))
        } else {
            (ln_factorial_over_n_pow_n(n) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    if t >= nf - 1.0 {
        return (2.0 * (1.0 - x).powf(nf)).clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov_sf_valid(n, x)).clamp(0.0, 1.0);
    }
    let nx2 = t * x;
    if n <= 140 {
        if nx2 <= 4.0 {
            // Durbin matrix (exact; scipy uses Pomeranz above 0.754693, equally exact)
            return (1.0 - durbin_cdf(n, x)).clamp(0.0, 1.0);
        }
        return (2.0 * smirnov_sf_valid(n, x)).clamp(0.0, 1.0);
    }
    if nx2 >= 370.0 {
        return 0.0;
    }
    if nx2 >= 2.2 {
        return (2.0 * smirnov_sf_valid(n, x)).clamp(0.0, 1.0);
    }
    let cdf = if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        durbin_cdf(n, x)
    } else {
        pelz_good_cdf(n, x)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}

/// `ln(n!/nⁿ)` by Stirling's series without forming `n ln n`.
fn ln_factorial_over_n_pow_n(n: u64) -> f64 {
    let nf = n as f64;
    0.5 * nf.ln() - nf + 0.5 * (2.0 * PI).ln() + crate::special::stirlerr(nf)
}

/// One-sided Smirnov survival function `P(D_n⁺ ≥ x)`, exact (Birnbaum & Tingey 1951):
/// `x Σ_{j=0}^{⌊n(1−x)⌋} C(n, j) (1 − x − j/n)^{n−j} (x + j/n)^{j−1}`, all terms positive,
/// each evaluated in log space. `None` for `n = 0` or a NaN `x`.
pub fn smirnov_sf(n: u64, x: f64) -> Option<f64> {
    if n == 0 || x.is_nan() {
        return None;
    }
    Some(smirnov_sf_valid(n, x))
}

fn smirnov_sf_valid(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let jmax = (nf * (1.0 - x)).floor() as u64;
    let lnf_n = lgamma(nf + 1.0);
    let mut sum = 0.0;
    for j in 0..=jmax.min(n) {
        let jf = j as f64;
        let a = 1.0 - x - jf / nf;
        if a <= 0.0 {
            continue;
        }
        let b = x + jf / nf;
        let ln_c = lnf_n - lgamma(jf + 1.0) - lgamma(nf - jf + 1.0);
        sum += (ln_c + (nf - jf) * a.ln() + (jf - 1.0) * b.ln()).exp();
    }
    (x * sum).clamp(0.0, 1.0)
}

const SCALE_EXP: i32 = 128;

fn pow2(e: i32) -> f64 {
    // 2^e without overflow for |e| beyond the f64 exponent range.
    if e > 1000 {
        f64::INFINITY
    } else if e < -1100 {
        0.0
    } else if e < -1000 {
        2f64.powi(e + 100) * 2f64.powi(-100)
    } else {
        2f64.powi(e)
    }
}

fn mat_mul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * m];
    for i in 0..m {
        for k in 0..m {
            let aik = a[i * m + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..m {
                c[i * m + j] += aik * b[k * m + j];
            }
        }
    }
    c
}

/// `P(D_n ≤ d)` by Durbin's matrix method as streamlined by Marsaglia, Tsang & Wang (2003):
/// with `k = ⌈nd⌉`, `h = k − nd`, `m = 2k − 1`, the CDF is `n!/nⁿ · (Hⁿ)_{k,k}` for the m×m
/// matrix `H_{ij} = 1/(i − j + 1)!` (0 when `i − j + 1 < 0`), with the first column and last
/// row corrected by powers of `h`. Intermediate powers are rescaled by 2¹²⁸.
fn durbin_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut fact_inv = vec![1.0f64; m + 1]; // 1/i!
    for i in 1..=m {
        fact_inv[i] = fact_inv[i - 1] / i as f64;
    }
    let mut hm = vec![0.0f64; m * m];
    for i in 0..m {
        for j in 0..m {
            if i + 1 >= j {
                hm[i * m + j] = fact_inv[i + 1 - j];
            }
        }
    }
    for i in 0..m {
        hm[i * m] = (1.0 - h.powi(i as i32 + 1)) * fact_inv[i + 1];
        hm[(m - 1) * m + i] = (1.0 - h.powi((m - i) as i32)) * fact_inv[m - i];
    }
    let tail = if 2.0 * h - 1.0 > 0.0 {
        (2.0 * h - 1.0).powi(m as i32)
    } else {
        0.0
    };
    hm[(m - 1) * m] = (1.0 - 2.0 * h.powi(m as i32) + tail) * fact_inv[m];

    // Binary exponentiation with exponent tracking.
    let mut result: Vec<f64> = (0..m * m)
        .map(|i| if i % (m + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let mut result_exp: i32 = 0;
    let mut base = hm;
    let mut base_exp: i32 = 0;
    let mut e = n;
    let big = pow2(SCALE_EXP);
    let small = pow2(-SCALE_EXP);
    while e > 0 {
        if e & 1 == 1 {
            result = mat_mul(&result, &base, m);
            result_exp += base_exp;
            if result[(k - 1) * m + (k - 1)].abs() > big {
                result.iter_mut().for_each(|v| *v *= small);
                result_exp += SCALE_EXP;
            }
        }
        e >>= 1;
        if e > 0 {
            base = mat_mul(&base, &base, m);
            base_exp *= 2;
            if base[(k - 1) * m + (k - 1)].abs() > big {
                base.iter_mut().for_each(|v| *v *= small);
                base_exp += SCALE_EXP;
            }
        }
    }
    let mut p = result[(k - 1) * m + (k - 1)];
    let nf = n as f64;
    for i in 1..=n {
        p = p * i as f64 / nf;
        if p.abs() < small {
            p *= big;
            result_exp -= SCALE_EXP;
        }
    }
    (p * pow2(result_exp)).clamp(0.0, 1.0)
}

/// Pelz & Good (1976) asymptotic expansion of `P(D_n ≤ x)`:
/// `K₀(z) + K₁(z)/√n + K₂(z)/n + K₃(z)/n^{3/2}`, `z = x√n`, each `Kᵢ` written as a Jacobi
/// theta series suitable for small z (as used by Simard & L'Ecuyer 2011 for n > 140).
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z * z * z, z.powi(4), z.powi(6));
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let qlog = -pi2 / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut k = [0.0f64; 4];
    let maxk = (16.0 * z / PI).ceil().max(1.0) as i32;
    // Horner scheme over odd m = 2k − 1 of Σ c(m) q^{m²}.
    for kk in (1..=maxk).rev() {
        let mf = f64::from(2 * kk - 1);
        let (m2, m4, m6) = (mf * mf, mf.powi(4), mf.powi(6));
        let qpower = q.powi(8 * kk);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (acc, c) in k.iter_mut().zip(coeffs) {
            *acc = *acc * qpower + c;
        }
    }
    let s2pi = (2.0 * PI).sqrt();
    let denoms = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (acc, den) in k.iter_mut().zip(denoms) {
        *acc = *acc * q * s2pi / den;
    }
    // Extra terms over all integers k of K₂ and K₃.
    let q2 = (-pi2 / 2.0 / z2).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let mut k2extra = 0.0;
    let mut k3extra = 0.0;
    for kk in (1..=maxk).rev() {
        let kf = f64::from(kk);
        let ksq = kf * kf;
        let qp = q2.powf(ksq);
        k2extra += ksq * qp;
        let kspi = PI * kf;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp;
    }
    k[2] += k2extra * pi2 * s2pi / (-36.0 * z3);
    k[3] += k3extra * pi2 * s2pi / (216.0 * z6);
    let sum = k[0] + k[1] / nf.sqrt() + k[2] / nf + k[3] / (nf * nf.sqrt());
    sum.clamp(0.0, 1.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn separated_exact() {
        let x: Vec<f64> = (10..20).map(f64::from).collect();
        let y: Vec<f64> = (20..30).map(f64::from).collect();
        let r = ks_2samp(&x, &y, KsMethod::Exact).unwrap();
        assert_eq!(r.statistic, 1.0);
        assert!((r.p_value / 1.082_508_822_446_902_6e-5 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn lattice_matches_closed_form_for_equal_sizes() {
        // For n = m, P(D ≥ h/n) has the reflection-principle closed form
        // 2 Σ_k (−1)^{k−1} C(2n, n − kh)/C(2n, n), evaluated here by nested products.
        for n in 1u64..40 {
            for h in 1..=n {
                let mut p = 0.0;
                let mut k = n / h;
                loop {
                    let mut p1 = 1.0;
                    for j in 0..h {
                        p1 = (n as i64 - (k * h + j) as i64) as f64 * p1
                            / (n + k * h + j + 1) as f64;
                    }
                    p = p1 * (1.0 - p);
                    if k == 0 {
                        break;
                    }
                    k -= 1;
                }
                let closed = 2.0 * p;
                let dp = lattice_outside_probability(n, n, h);
                assert!(
                    (dp - closed).abs() <= 1e-13 * closed.max(1e-300) + 1e-15,
                    "n={n} h={h}: {dp} vs {closed}"
                );
            }
        }
    }

    #[test]
    fn durbin_matches_smirnov_above_half() {
        // For x ≥ 1/2 the two-sided tail is exactly twice the one-sided one.
        for n in [5u64, 20, 60] {
            let x = 0.55;
            let a = 1.0 - durbin_cdf(n, x);
            let b = 2.0 * smirnov_sf_valid(n, x);
            assert!(
                (a - b).abs() < 1e-12 * b.max(1e-300) + 1e-15,
                "n={n} {a} {b}"
            );
        }
    }

    #[test]
    fn pelz_good_close_to_durbin() {
        let (n, x) = (500u64, 0.04);
        let a = durbin_cdf(n, x);
        let b = pelz_good_cdf(n, x);
        assert!((a - b).abs() < 1e-5, "{a} {b}");
    }
}
