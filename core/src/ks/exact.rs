//! Exact (permutation) p-values of the two-sample statistic, as scipy's
//! `_attempt_exact_2kssamp` computes them: lattice paths from (0, 0) to (m, n), one step per
//! pooled observation, and the proportion of them that reach the distance `h / lcm(m, n)`.
//!
//! scipy treats some floating-point outcomes as failures and then switches to the asymptotic
//! p-value; those outcomes are reproduced here (same operations, same order) because a user
//! comparing with scipy must see the same method and numbers.

use super::binom::binom;
use super::Alternative;

/// Reusable buffers for the exact recursions, so that repeated evaluations do not allocate.
#[derive(Clone, Debug, Default)]
pub struct KsScratch {
    diag_a: Vec<f64>,
    diag_b: Vec<f64>,
    j_as_f64: Vec<f64>,
    paths_b: Vec<f64>,
    paths_xj: Vec<i64>,
}

/// Result of an exact attempt: `None` when scipy would fall back to the asymptotic p-value.
pub(crate) type Exact = Option<f64>;

pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// The exact p-value for `h = round(D * lcm)` (h >= 1), or `None` on scipy's failure conditions.
pub(crate) fn exact_pvalue(
    n1: u64,
    n2: u64,
    g: u64,
    h: u64,
    alternative: Alternative,
    scratch: &mut KsScratch,
) -> Exact {
    let prob = match alternative {
        Alternative::TwoSided => {
            if n1 == n2 {
                prob_outside_square(n1, h)
            } else {
                outer_prob_inside_band(n1, n2, g, h, scratch)
            }
        }
        Alternative::Less | Alternative::Greater => {
            if n1 == n2 {
                let n = n1 as f64;
                let mut p = 1.0;
                for j in 0..h {
                    let j = j as f64;
                    p *= (n - j) / (n + j + 1.0);
                }
                p
            } else {
                let num_paths = count_paths_outside(n1, n2, g, h, scratch)?;
                let total = binom((n1 + n2) as f64, n1 as f64);
                if num_paths > total || total.is_infinite() {
                    return None;
                }
                num_paths / total
            }
        }
    };
    if (0.0..=1.0).contains(&prob) {
        Some(prob)
    } else {
        None
    }
}

/// Pr(D_{n,n} >= h/n) = 2 sum_k (-1)^(k+1) C(2n, n - k h) / C(2n, n), evaluated as a Horner
/// scheme of ratios to avoid the cancellation of the alternating sum.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let nf = n as f64;
    let hf = h as f64;
    let mut p = 0.0;
    let kmax = (nf / hf).floor() as u64;
    for k in (0..=kmax).rev() {
        let mut p1 = 1.0;
        let kh = k * h;
        for j in 0..h {
            // n - k h - j may go negative: Python ints, converted to float.
            let num = nf - (kh + j) as f64;
            p1 = num * p1 / ((n + kh + j + 1) as f64);
        }
        p = p1 * (1.0 - p);
    }
    2.0 * p
}

/// Two-sided exact p-value for unequal sizes: the probability that a uniformly random lattice
/// path leaves the band |ng i - mg j| < h, by Viehmann's (2021) recursion, which carries the
/// probability of having left (not the count of paths inside) and so keeps small p-values
/// accurate.
///
/// Each cell is the weighted average `(i P(i-1, j) + j P(i, j-1)) / (i + j)`, with cells outside
/// the band equal to 1. scipy sweeps column by column, which chains every cell on the
/// previous one (a division latency per cell). Sweeping anti-diagonals `i + j = k` instead
/// makes the cells of a diagonal independent with the common divisor `k`: the loop vectorises
/// and the division becomes a multiplication by 1/k. That costs at most a few ulps per cell;
/// as every step is a positive weighted average, errors do not grow beyond
/// ~(m + n) * 3 ulp relative (< 1e-11 for auto's sizes), far inside the 1e-9 parity rule, also
/// for tiny p. Cost is O(cells in the band) ~ 2 D m n, memory two diagonals of length n + 3.
fn outer_prob_inside_band(n1: u64, n2: u64, g: u64, h: u64, scratch: &mut KsScratch) -> f64 {
    let (m, n) = if n1 < n2 { (n2, n1) } else { (n1, n2) };
    let mg = (m / g) as i64;
    let ng = (n / g) as i64;
    let (m, n, h) = (m as i64, n as i64, h as i64);
    let s = mg + ng;
    let nu = n as usize;

    // Buffers are indexed by j + 1 so that j = -1 (below the grid) has a slot.
    let len = nu + 3;
    let KsScratch {
        diag_a,
        diag_b,
        j_as_f64,
        ..
    } = scratch;
    diag_a.clear();
    diag_a.resize(len, 1.0);
    diag_b.clear();
    diag_b.resize(len, 1.0);
    if j_as_f64.len() < nu + 1 {
        j_as_f64.clear();
        j_as_f64.extend((0..=nu).map(|j| j as f64));
    }
    let (mut prev, mut cur) = (diag_a, diag_b);
    // Diagonal 0 is the origin, inside the band since h >= 1.
    prev[1] = 0.0;
    let mut last = 0_usize;
    for k in 1..=(m + n) {
        // Inside: (ng k - h) / s < j < (ng k + h) / s, and the cell must lie on the grid.
        let lo_band = (ng * k - h).div_euclid(s) + 1;
        let hi_band = -((-(ng * k + h)).div_euclid(s)) - 1;
        let lo = lo_band.max(k - m).max(0);
        let hi = hi_band.min(n).min(k);
        if lo > hi {
            // No path can stay inside through this diagonal.
            return 1.0;
        }
        let (lo, hi) = (lo as usize, hi as usize);
        let kf = k as f64;
        let inv_k = 1.0 / kf;
        {
            let out = &mut cur[lo + 1..=hi + 1];
            let left = &prev[lo + 1..=hi + 1];
            let below = &prev[lo..=hi];
            let js = &j_as_f64[lo..=hi];
            for (((o, &l), &b), &jf) in out.iter_mut().zip(left).zip(below).zip(js) {
                *o = (l * (kf - jf) + b * jf) * inv_k;
            }
        }
        // The neighbours just outside the band count as "already left".
        cur[lo] = 1.0;
        if let Some(c) = cur.get_mut(hi + 2) {
            *c = 1.0;
        }
        last = hi + 1;
        std::mem::swap(&mut prev, &mut cur);
    }
    // k * fl(1/k) can exceed 1 by an ulp, so a cell whose neighbours are both 1 may read
    // 1 + 2^-52; the true value is at most 1.
    prev.get(last).copied().unwrap_or(1.0).min(1.0)
}

/// Number of lattice paths that go below the diagonal by at least `h` (one-sided), following
/// Hodges' treatment of Drion/Gnedenko/Korolyuk. `None` when a float overflows or an invalid
/// operation happens, which numpy (errstate raise) reports as a failure.
fn count_paths_outside(n1: u64, n2: u64, g: u64, h: u64, scratch: &mut KsScratch) -> Option<f64> {
    let (m, n) = if n1 < n2 { (n2, n1) } else { (n1, n2) };
    let mg = (m / g) as i64;
    let ng = (n / g) as i64;
    let (m, n, h) = (m as i64, n as i64, h as i64);
    // Every path count below is <= this total; if it overflows, so does the count (scipy then
    // fails either inside the count or on the total), so skip the O(n^2) work.
    if binom((m + n) as f64, n as f64).is_infinite() {
        return None;
    }
    let lxj = n + (mg - h).div_euclid(mg);
    if lxj <= 0 {
        return Some(binom((m + n) as f64, n as f64));
    }
    let lxj = lxj as usize;
    let xj = &mut scratch.paths_xj;
    xj.clear();
    xj.extend((0..lxj as i64).map(|j| (h + mg * j + ng - 1).div_euclid(ng)));
    let b = &mut scratch.paths_b;
    b.clear();
    b.resize(lxj, 0.0);
    b[0] = 1.0;
    let finite = |v: f64| if v.is_finite() { Some(v) } else { None };
    for j in 1..lxj {
        let jf = j as i64;
        let mut bj = finite(binom((xj[j] + jf) as f64, jf as f64))?;
        for i in 0..j {
            let d = (j - i) as i64;
            let bin = finite(binom((xj[j] - xj[i] + d) as f64, d as f64))?;
            bj = finite(bj - finite(bin * b[i])?)?;
        }
        b[j] = bj;
    }
    let mut num_paths = 0.0;
    for j in 0..lxj {
        let jf = j as i64;
        let bin = finite(binom(((m - xj[j]) + (n - jf)) as f64, (n - jf) as f64))?;
        num_paths = finite(num_paths + finite(b[j] * bin)?)?;
    }
    Some(num_paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: enumerate all C(m+n, n) orderings (small sizes only).
    fn brute(m: u64, n: u64, h: u64, two_sided: bool) -> f64 {
        let total = m + n;
        let g = gcd(m, n);
        let (mg, ng) = ((m / g) as i64, (n / g) as i64);
        let mut hit = 0u64;
        let mut all = 0u64;
        for mask in 0u64..(1 << total) {
            if mask.count_ones() as u64 != n {
                continue;
            }
            all += 1;
            let (mut i, mut j) = (0i64, 0i64);
            let mut out = false;
            for bit in 0..total {
                if mask >> bit & 1 == 1 {
                    j += 1;
                } else {
                    i += 1;
                }
                let dist = ng * i - mg * j;
                if dist >= h as i64 || (two_sided && -dist >= h as i64) {
                    out = true;
                }
            }
            if out {
                hit += 1;
            }
        }
        hit as f64 / all as f64
    }

    #[test]
    fn inside_band_matches_enumeration() {
        let mut s = KsScratch::default();
        for (m, n) in [(5u64, 3u64), (7, 4), (6, 4), (9, 3), (8, 6)] {
            let g = gcd(m, n);
            let lcm = m / g * n;
            for h in 1..=lcm {
                let p = outer_prob_inside_band(m, n, g, h, &mut s);
                let b = brute(m, n, h, true);
                assert!((p - b).abs() < 1e-12, "m={m} n={n} h={h}: {p} vs {b}");
            }
        }
    }

    #[test]
    fn one_sided_matches_enumeration() {
        let mut s = KsScratch::default();
        for (m, n) in [(5u64, 3u64), (7, 4), (6, 4), (4, 9)] {
            let g = gcd(m, n);
            let lcm = m / g * n;
            for h in 1..=lcm {
                let p = exact_pvalue(m, n, g, h, Alternative::Greater, &mut s);
                let b = brute(m.max(n), m.min(n), h, false);
                let p = p.unwrap_or(f64::NAN);
                assert!((p - b).abs() < 1e-12, "m={m} n={n} h={h}: {p} vs {b}");
            }
        }
    }

    #[test]
    fn square_matches_enumeration() {
        for n in 1u64..=7 {
            for h in 1..=n {
                let p = prob_outside_square(n, h);
                let b = brute(n, n, h, true);
                assert!((p - b).abs() < 1e-12, "n={n} h={h}: {p} vs {b}");
            }
        }
    }
}
