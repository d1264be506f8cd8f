//! Exact (permutation) p-values of the two-sample statistic, as scipy's
//! `_attempt_exact_2kssamp` computes them: lattice paths from (0, 0) to (m, n), one step per
//! pooled observation, and the proportion of them that reach the distance `h / lcm(m, n)`.
//!
//! scipy treats some floating-point outcomes as failures and then switches to the asymptotic
//! p-value; those outcomes are reproduced here (same operations, same order) because a user
//! comparing with scipy must see the same method and numbers.

use super::binom::binom;
use super::Alternative;

/// Reusable buffers (sorting, exact recursions), so that repeated evaluations do not allocate.
#[derive(Clone, Debug, Default)]
pub struct KsScratch {
    pub(crate) sort: super::sort::SortScratch,
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
/// makes the cells of a diagonal independent: no loop-carried dependency but the one from
/// diagonal to diagonal, and three diagonals are computed per sweep, the first two kept in
/// registers (fewer loads, stores and loop overheads per cell). Carrying
/// `k! P` instead of `P` removes the division (see `RESCALE_ABOVE`). The rounding differs
/// from scipy's by a few ulps per cell; as every step is a sum of positive terms, errors do
/// not grow beyond ~(m + n) * 3 ulp relative (< 1e-11 for auto's sizes), far inside the 1e-9
/// parity rule, also for tiny p. Cost is O(cells in the band) ~ 2 D m n, memory two
/// diagonals of length n + 3.
fn outer_prob_inside_band(n1: u64, n2: u64, g: u64, h: u64, scratch: &mut KsScratch) -> f64 {
    let (m, n) = if n1 < n2 { (n2, n1) } else { (n1, n2) };
    let mg = (m / g) as i64;
    let ng = (n / g) as i64;
    let (m, n, h) = (m as i64, n as i64, h as i64);
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
    let js_all: &[f64] = j_as_f64;
    let (mut prev, mut cur) = (diag_a, diag_b);
    // Values are stored as Q = P * scale: with scale = k! (times a power of two) the recursion
    // becomes Q(i, j) = i Q(i-1, j) + j Q(i, j-1), without a division or reciprocal; cells
    // outside the band hold the scale itself (P = 1). The scale is brought back down by an
    // exact power of two whenever it grows large.
    let mut scale = 1.0_f64;
    // Diagonal 0 is the origin, inside the band since h >= 1; everything else reads as 1 = 0!.
    prev[1] = 0.0;
    let mut rows = BandDiagonals::new(m, n, mg, ng, h);
    let total = m + n;
    let mut last = 0_usize;
    let mut k = 1;
    while k <= total {
        let (lo1, hi1) = rows.next_range(k);
        if lo1 > hi1 {
            // No path can stay inside through this diagonal.
            return 1.0;
        }
        let k1 = k as f64;
        let scale1 = scale * k1;
        if k == total {
            // A last, unpaired diagonal.
            let (lo, hi) = (lo1 as usize, hi1 as usize);
            let out = &mut cur[lo + 1..=hi + 1];
            let left = &prev[lo + 1..=hi + 1];
            let below = &prev[lo..=hi];
            let js = &js_all[lo..=hi];
            for (((o, &l), &b), &jf) in out.iter_mut().zip(left).zip(below).zip(js) {
                *o = l * (k1 - jf) + b * jf;
            }
            last = hi + 1;
            scale = scale1;
            std::mem::swap(&mut prev, &mut cur);
            break;
        }
        if k + 2 <= total {
            // Three diagonals per sweep, diagonals k and k+1 living only in `c1` and `c2`.
            let (lo2, hi2) = rows.next_range(k + 1);
            let (lo3, hi3) = rows.next_range(k + 2);
            if lo2 > hi2 || lo3 > hi3 {
                return 1.0;
            }
            let k2 = (k + 1) as f64;
            let k3 = (k + 2) as f64;
            let scale2 = scale1 * k2;
            let scale3 = scale2 * k3;
            let level1 = |p: i64| -> f64 {
                if p >= lo1 && p <= hi1 {
                    let pu = p as usize;
                    let pf = p as f64;
                    prev[pu + 1] * (k1 - pf) + prev[pu] * pf
                } else {
                    scale1
                }
            };
            let level2 = |p: i64| -> f64 {
                if p >= lo2 && p <= hi2 {
                    let pf = p as f64;
                    level1(p) * (k2 - pf) + level1(p - 1) * pf
                } else {
                    scale2
                }
            };
            let mut c1 = level1(lo3 - 1);
            let mut c2 = level2(lo3 - 1);
            let (lo3u, hi3u) = (lo3 as usize, hi3 as usize);
            let top = hi1.min(hi2).min(hi3);
            if top >= lo3 {
                let top = top as usize;
                let out = &mut cur[lo3u + 1..=top + 1];
                let left = &prev[lo3u + 1..=top + 1];
                let below = &prev[lo3u..=top];
                let js = &js_all[lo3u..=top];
                for (((o, &l), &b), &jf) in out.iter_mut().zip(left).zip(below).zip(js) {
                    let d1 = l * (k1 - jf) + b * jf;
                    let d2 = d1 * (k2 - jf) + c1 * jf;
                    *o = d2 * (k3 - jf) + c2 * jf;
                    c1 = d1;
                    c2 = d2;
                }
            }
            for j in (top + 1).max(lo3)..=hi3 {
                let jf = j as f64;
                let d1 = level1(j);
                let d2 = if j >= lo2 && j <= hi2 {
                    d1 * (k2 - jf) + c1 * jf
                } else {
                    scale2
                };
                cur[j as usize + 1] = d2 * (k3 - jf) + c2 * jf;
                c1 = d1;
                c2 = d2;
            }
            scale = close_diagonal(cur, lo3u, hi3u, scale3);
            last = hi3u + 1;
            std::mem::swap(&mut prev, &mut cur);
            k += 3;
            continue;
        }
        let (lo2, hi2) = rows.next_range(k + 1);
        if lo2 > hi2 {
            return 1.0;
        }
        let k2 = (k + 1) as f64;
        let scale2 = scale1 * k2;
        // The last two diagonals: diagonal k lives only in `carry`. Cells of diagonal k
        // outside [lo1, hi1] are outside the band (or off the grid, with zero weight): P = 1.
        let level1 = |p: i64| -> f64 {
            if p >= lo1 && p <= hi1 {
                let pu = p as usize;
                let jf = p as f64;
                prev[pu + 1] * (k1 - jf) + prev[pu] * jf
            } else {
                scale1
            }
        };
        let mut carry = level1(lo2 - 1);
        let (lo2u, hi2u) = (lo2 as usize, hi2 as usize);
        let top = hi2.min(hi1);
        if top >= lo2 {
            let top = top as usize;
            let out = &mut cur[lo2u + 1..=top + 1];
            let left = &prev[lo2u + 1..=top + 1];
            let below = &prev[lo2u..=top];
            let js = &js_all[lo2u..=top];
            for (((o, &l), &b), &jf) in out.iter_mut().zip(left).zip(below).zip(js) {
                let d = l * (k1 - jf) + b * jf;
                *o = d * (k2 - jf) + carry * jf;
                carry = d;
            }
        }
        for j in (top + 1).max(lo2)..=hi2 {
            let jf = j as f64;
            let d = level1(j);
            cur[j as usize + 1] = d * (k2 - jf) + carry * jf;
            carry = d;
        }
        scale = close_diagonal(cur, lo2u, hi2u, scale2);
        last = hi2u + 1;
        std::mem::swap(&mut prev, &mut cur);
        k += 2;
    }
    // Rounding can leave the ratio an ulp or two above 1; the true value is at most 1.
    (prev.get(last).copied().unwrap_or(scale) / scale).min(1.0)
}

/// The scale (k! times powers of two) grows by at most (m+n)^3 < 2^96 per sweep of up to
/// three diagonals (m + n < 2^32 on the exact path); rescaling by 2^-600 above 2^600 keeps
/// it within [1, 2^696].
/// Finishes a diagonal written over band positions `lo..=hi`: the neighbours just outside
/// the band count as "already left" (weight `scale`), and the diagonal is rescaled when its
/// scale grows past [`RESCALE_ABOVE`] (everything the next diagonals read: positions
/// lo - 1 ..= hi + 1, stored one to the right). Returns the scale from now on.
#[inline]
fn close_diagonal(cur: &mut [f64], lo: usize, hi: usize, scale: f64) -> f64 {
    cur[lo] = scale;
    if let Some(c) = cur.get_mut(hi + 2) {
        *c = scale;
    }
    if scale <= RESCALE_ABOVE {
        return scale;
    }
    let end = (hi + 3).min(cur.len());
    for v in &mut cur[lo..end] {
        *v *= RESCALE_BY;
    }
    scale * RESCALE_BY
}

const RESCALE_ABOVE: f64 = 4.149515568880993e180; // 2^600
const RESCALE_BY: f64 = 2.409919865102884e-181; // 2^-600

/// The j-range of the cells of successive diagonals k = i + j that are inside the band
/// |ng i - mg j| < h and on the grid.
///
/// Inside means floor((ng k - h) / s) < j <= floor((ng k + h - 1) / s) with s = mg + ng; both
/// floors are carried from one diagonal to the next (the numerators grow by ng < s) instead of
/// dividing every time. From one diagonal to the next each end moves up by 0 or 1.
struct BandDiagonals {
    m: i64,
    n: i64,
    ng: i64,
    s: i64,
    lo_q: i64,
    lo_r: i64,
    hi_q: i64,
    hi_r: i64,
}

impl BandDiagonals {
    fn new(m: i64, n: i64, mg: i64, ng: i64, h: i64) -> Self {
        let s = mg + ng;
        BandDiagonals {
            m,
            n,
            ng,
            s,
            lo_q: (ng - h).div_euclid(s),
            lo_r: (ng - h).rem_euclid(s),
            hi_q: (ng + h - 1).div_euclid(s),
            hi_r: (ng + h - 1).rem_euclid(s),
        }
    }

    /// The range for diagonal `k`; must be called for k = 1, 2, ... in order.
    fn next_range(&mut self, k: i64) -> (i64, i64) {
        let lo_band = self.lo_q + 1;
        let hi_band = self.hi_q;
        self.lo_r += self.ng;
        if self.lo_r >= self.s {
            self.lo_r -= self.s;
            self.lo_q += 1;
        }
        self.hi_r += self.ng;
        if self.hi_r >= self.s {
            self.hi_r -= self.s;
            self.hi_q += 1;
        }
        (lo_band.max(k - self.m).max(0), hi_band.min(self.n).min(k))
    }
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
        for (m, n) in [
            (5u64, 3u64),
            (7, 4),
            (6, 4),
            (9, 3),
            (8, 6),
            (5, 4),
            (7, 2),
            (10, 1),
            (6, 5),
            (11, 3),
            (13, 2),
        ] {
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
