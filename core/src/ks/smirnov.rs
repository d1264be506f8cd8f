//! The exact one-sided one-sample Smirnov survival function `P(D_n^+ >= x)` (xsf `smirnov`).
//!
//! `kstwo` uses `2 * smirnov(n, x)` for the two-sided tail whenever the intersection of the two
//! one-sided events is negligible, i.e. for most p-values a monitor cares about. It is the
//! Birnbaum-Tingey sum; the binomial weights overflow a double and the powers need more than
//! 53 bits, hence double-double terms with a separately carried binary exponent.

use super::cephes;
use super::dd::Dd;

const SMIRNOV_MAX_COMPUTE_N: i64 = 1_000_000;
const SM_UPPER_MAX_TERMS: i64 = 3;
const SM_UPPERSUM_MIN_N: i64 = 10;
/// Keep both halves of a double-double normalised while raising to large powers.
const SM_MAX_EXPONENT: i64 = 960;
/// log(2^-1075): below this exp() underflows to zero (digits as in xsf).
#[allow(clippy::excessive_precision)]
const MINLOG: f64 = -7.451332191019412076235245305675398106812E2;

/// From this n on, the lower sum is evaluated in log space around its peak instead of term by
/// term from v = 0 in double-double (see `lower_sum_by_logs`).
const FAST_SUM_MIN_N: i64 = 300;

/// Exact `floor(n x)` and the fractional part `alpha`, via double-double.
fn mod_nx(n: i64, x: f64) -> (f64, i64, f64) {
    let nx_d = (n as f64) * Dd::new(x);
    let nxfloor_d = nx_d.floor();
    let alpha_d = nx_d - nxfloor_d;
    let mut alpha = alpha_d.hi;
    let mut nxfloor = nxfloor_d.hi as i64;
    if alpha == 1.0 {
        nxfloor += 1;
        alpha = 0.0;
    }
    (alpha, nxfloor, nx_d.hi)
}

/// C(n, j+1) from C(n, j), kept as a mantissa in [0.5, 1) and an integer exponent.
fn update_binomial(cman: &mut Dd, cexpt: &mut i64, n: i64, j: i64) {
    let rat = Dd::new((n - j) as f64) / ((j as f64) + 1.0);
    let (man2, expt) = (*cman * rat).frexp();
    *cexpt += i64::from(expt);
    *cman = man2;
}

/// `a^m` in double-double, trading a little accuracy for speed as xsf does.
fn pow_d(a: Dd, m: i64) -> Dd {
    if m <= 0 {
        if m == 0 {
            return Dd::new(1.0);
        }
        return 1.0 / pow_d(a, -m);
    }
    if a.eq_f64(0.0) {
        return Dd::new(0.0);
    }
    let mf = m as f64;
    let ans = a.hi.powf(mf);
    let r = a.lo / a.hi;
    let mut adj = mf * r;
    if adj.abs() > 1e-8 {
        if adj.abs() < 1e-4 {
            // First two terms of the Taylor series of (1 + r)^m.
            adj += (mf * r) * ((mf - 1.0) / 2.0 * r);
        } else {
            adj = cephes::expm1(mf * r.ln_1p());
        }
    }
    Dd::new(ans) + ans * adj
}

fn pow2(a: f64, b: f64, m: i64) -> f64 {
    pow_d(Dd::new(a) + b, m).hi
}

/// The largest power of two <= x (xsf's `nextPowerOf2`, quirks included).
fn next_power_of_2(x: f64) -> f64 {
    let q = super::dd::ldexp(x, 1 - 53);
    let l = (q + x).abs();
    if l == 0.0 {
        return x.abs();
    }
    let lint = l as i32;
    if f64::from(lint) == l {
        f64::from(lint)
    } else {
        l
    }
}

/// `a^m = significand * 2^exponent`, splitting the exponentiation so nothing underflows.
fn pow2_scaled_d(a: Dd, m: i64) -> (Dd, i64) {
    if m <= 0 {
        if m == 0 {
            return (Dd::new(1.0), 0);
        }
        let (ans, ae1) = pow2_scaled_d(a, -m);
        let (ans, ae2) = (1.0 / ans).frexp();
        return (ans, -ae1 + i64::from(ae2));
    }
    let (y, ye) = a.frexp();
    let ye = i64::from(ye);
    if m == 1 {
        return (y, ye);
    }
    let mut max_expt = SM_MAX_EXPONENT;
    if (m as f64) * (y.hi - 1.0) / y.hi < -(SM_MAX_EXPONENT as f64) * std::f64::consts::LN_2 {
        let lg2y = y.hi.ln() / std::f64::consts::LN_2;
        let lg_ans = (m as f64) * lg2y;
        if lg_ans <= -(SM_MAX_EXPONENT as f64) {
            max_expt = (next_power_of_2(-(SM_MAX_EXPONENT as f64) / lg2y + 1.0) / 2.0) as i64;
        }
    }
    if m <= max_expt || max_expt <= 0 {
        let (ans, ans_e) = pow_d(y, m).frexp();
        return (ans, i64::from(ans_e) + m * ye);
    }
    let q = m / max_expt;
    let r = m % max_expt;
    let (y2r, y2r_e) = pow2_scaled_d(y, r);
    let (y2m, y2m_e) = pow2_scaled_d(y, max_expt);
    let (y2mq, y2mq_e) = pow2_scaled_d(y2m, q);
    let (ans, ans_e) = (y2r * y2mq).frexp();
    let y2mq_e = y2mq_e + y2m_e * q;
    (ans, i64::from(ans_e) + y2mq_e + y2r_e + m * ye)
}

/// `((a + b) / (c + d))^m` in double-double.
fn pow4_d(a: f64, b: f64, c: f64, d: f64, m: i64) -> Dd {
    if m <= 0 {
        if m == 0 {
            return Dd::new(1.0);
        }
        return pow4_d(c, d, a, b, -m);
    }
    let big_a = Dd::new(a) + b;
    let big_c = Dd::new(c) + d;
    if big_a.eq_f64(0.0) {
        return if big_c.eq_f64(0.0) {
            Dd {
                hi: f64::NAN,
                lo: f64::NAN,
            }
        } else {
            Dd::new(0.0)
        };
    }
    if big_c.eq_f64(0.0) {
        let inf = if big_a.hi < 0.0 || (big_a.hi == 0.0 && big_a.lo < 0.0) {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        return Dd { hi: inf, lo: inf };
    }
    pow_d(big_a / big_c, m)
}

/// One term `C(n, v) (1 - x - v/n)^(n-v) (x + v/n)^(v-1)` of the Birnbaum-Tingey sum.
fn compute_av(n: i64, x: f64, v: i64, cman: Dd, cexpt: i64) -> Dd {
    let nf = n as f64;
    let t2x = Dd::new((n - v) as f64) / nf - x;
    let (t2, t2e) = pow2_scaled_d(t2x, n - v);
    let t1x = Dd::new(v as f64) / nf + x;
    let (t1, t1e) = pow2_scaled_d(t1x, v - 1);
    let ans = (t1 * t2) * cman;
    let e = cexpt + t1e + t2e;
    ans.ldexp(e.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
}

/// `smirnov(n, x)`: P(D_n^+ >= x) for the one-sided one-sample statistic.
pub(crate) fn smirnov_sf(n: i64, x: f64) -> f64 {
    if !(n > 0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let (alpha, nxfl, _nx) = mod_nx(n, x);
    let mut n1mxfl = n - nxfl - if alpha == 0.0 { 0 } else { 1 };
    let mut n1mxceil = n - nxfl;
    if alpha == 0.0 {
        n1mxfl -= 1;
        n1mxceil += 1;
    }
    // x <= 1/n: a single closed-form term.
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        let t = pow2(1.0, x, n - 1);
        let cdf = x * t;
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    // So far in the tail that the survival function underflows.
    if -2.0 * (n as f64) * x * x < MINLOG {
        return 0.0;
    }
    // x >= 1 - 1/n: a single closed-form term.
    if nxfl >= n - 1 {
        return pow2(1.0, -x, n);
    }
    if n > SMIRNOV_MAX_COMPUTE_N {
        let logp = -(6.0 * (n as f64) * x + 1.0).powi(2) / 18.0 / (n as f64);
        let sf = if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            1.0 - (-cephes::expm1(logp))
        };
        return sf.clamp(0.0, 1.0);
    }
    // The upper sum has fewer terms near x = 1/sqrt(n) but alternates in sign, so it is only
    // used when it has very few terms.
    let n_upper_terms = n - n1mxceil + 1;
    let use_upper = (n_upper_terms <= 1 && x < 0.5)
        || (n >= SM_UPPERSUM_MIN_N
            && n_upper_terms <= SM_UPPER_MAX_TERMS
            && x <= 0.5 / (n as f64).sqrt());

    if !use_upper && n >= FAST_SUM_MIN_N {
        return lower_sum_by_logs(n, x, n1mxfl).clamp(0.0, 1.0);
    }

    let (start, step, n_terms) = if use_upper {
        (n, -1_i64, n - n1mxceil + 1)
    } else {
        (0, 1_i64, n1mxfl + 1)
    };
    let vmid = n / 2;
    let mut cman = Dd::new(1.0);
    let mut cexpt: i64 = 0;
    let first = if use_upper {
        pow4_d(1.0, x, 1.0, 0.0, n - 1)
    } else {
        pow4_d(1.0, -x, 1.0, 0.0, n) / x
    };
    let mut aj_sum = Dd::new(0.0) + first;
    update_binomial(&mut cman, &mut cexpt, n, 0);
    let mut j = 1;
    while j < n_terms {
        let v = start + j * step;
        let aj = compute_av(n, x, v, cman, cexpt);
        if aj.is_finite() && !aj.eq_f64(0.0) {
            aj_sum = aj_sum + aj;
        }
        if !aj.eq_f64(0.0) {
            // Stop once the remaining terms cannot change the sum.
            if ((4 * (n_terms - j)) as f64 * aj.hi.abs()) < (f64::EPSILON * aj_sum.hi)
                && j != n_terms - 1
            {
                break;
            }
        } else if j > vmid {
            break;
        }
        update_binomial(&mut cman, &mut cexpt, n, j);
        j += 1;
    }
    let prob = (x * aj_sum).hi;
    let sf = if step < 0 { 1.0 - prob } else { prob };
    sf.clamp(0.0, 1.0)
}

/// ln(k!) minus its Stirling main part `k ln k - k + ln(2 pi k)/2`, for an integer k >= 1.
fn stirling_remainder(k: f64) -> f64 {
    if k < 10.0 {
        let mut ln_fact = 0.0;
        let mut i = 2.0;
        while i <= k {
            ln_fact += f64::ln(i);
            i += 1.0;
        }
        return ln_fact - (k * k.ln() - k + 0.5 * (2.0 * std::f64::consts::PI * k).ln());
    }
    let r = 1.0 / k;
    let r2 = r * r;
    r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 * (1.0 / 1680.0 - r2 / 1188.0))))
}

/// ln A_v, the log of the v-th term of the lower Birnbaum-Tingey sum.
///
/// With a = v and b = n - v, Stirling's formula lets the huge parts of ln C(n, v) cancel
/// analytically against the powers:
/// `ln A_v = b ln(1 - nx/b) + a ln(1 + nx/a) - ln(x + a/n) + ln(n / (2 pi a b)) / 2 + R`,
/// where R collects the Stirling remainders. Every piece is then at most a few times
/// n x in size, so the term keeps a relative accuracy of ~1e-13 even when it is 1e-300.
fn ln_term(nf: f64, x: f64, nx: f64, delta_n: f64, v: i64) -> f64 {
    if v == 0 {
        return nf * (-x).ln_1p() - x.ln();
    }
    let a = v as f64;
    let b = nf - a;
    b * (-nx / b).ln_1p() + a * (nx / a).ln_1p() - (x + a / nf).ln()
        + 0.5 * (nf / (2.0 * std::f64::consts::PI * a * b)).ln()
        + delta_n
        - stirling_remainder(a)
        - stirling_remainder(b)
}

/// `x * sum_{v=0}^{vmax} A_v` (the lower sum, all terms positive) for large n.
///
/// xsf walks every term from v = 0 in double-double until the terms past the peak are
/// negligible, thousands of `pow` calls for n in the tens of thousands. The terms are
/// unimodal in v, so here the peak is found by bisection on the sign of ln A_{v+1} - ln A_v
/// and the sum grows outwards from it until the terms are below 1e-18 of the sum.
fn lower_sum_by_logs(n: i64, x: f64, vmax: i64) -> f64 {
    let nf = n as f64;
    let nx = nf * x;
    let delta_n = stirling_remainder(nf);
    let term = |v: i64| ln_term(nf, x, nx, delta_n, v);
    // Smallest v in [0, vmax] with ln A_{v+1} <= ln A_v: the peak of a unimodal sequence.
    let (mut lo, mut hi) = (0_i64, vmax);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if term(mid + 1) > term(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let peak = lo;
    let l_peak = term(peak);
    if !l_peak.is_finite() {
        return 0.0;
    }
    let mut sum = 1.0;
    for v in (peak + 1)..=vmax {
        let t = (term(v) - l_peak).exp();
        sum += t;
        if t < 1e-18 * sum {
            break;
        }
    }
    for v in (0..peak).rev() {
        let t = (term(v) - l_peak).exp();
        sum += t;
        if t < 1e-18 * sum {
            break;
        }
    }
    (l_peak + sum.ln() + x.ln()).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_n_closed_forms() {
        // n = 1: P(D+ >= x) = 1 - x.
        assert_eq!(smirnov_sf(1, 0.25), 0.75);
        // x >= 1 - 1/n: (1 - x)^n, with 1 - 0.9 taken exactly (scipy: 9.999999999999989e-06).
        assert_eq!(smirnov_sf(5, 0.9), 9.999999999999989e-06);
        assert_eq!(smirnov_sf(5, 0.0), 1.0);
        assert_eq!(smirnov_sf(5, 1.0), 0.0);
    }

    /// The log-space sum must agree with the double-double term-by-term sum to well within
    /// the 1e-9 parity tolerance, over the region where kstwo uses smirnov.
    #[test]
    fn log_space_sum_matches_double_double() {
        for n in [141_i64, 300, 577, 1000, 1500, 2345, 4000] {
            for k in 0..40 {
                let x = (1.0 / (n as f64)).sqrt() + f64::from(k) * 0.0123;
                if x >= 0.5 {
                    break;
                }
                let (alpha, nxfl, _) = mod_nx(n, x);
                let vmax = n - nxfl - if alpha == 0.0 { 2 } else { 1 };
                let fast = lower_sum_by_logs(n, x, vmax);
                let slow = smirnov_sf_dd_only(n, x);
                if slow < 1e-300 {
                    // Subnormal territory; the parity rule treats both as equal there.
                    assert!(fast < 1e-300, "n={n} x={x}: {fast}");
                    continue;
                }
                assert!(
                    (fast / slow - 1.0).abs() < 1e-11,
                    "n={n} x={x}: {fast} vs {slow}"
                );
            }
        }
    }

    /// `smirnov_sf` with the log-space shortcut disabled.
    fn smirnov_sf_dd_only(n: i64, x: f64) -> f64 {
        let (alpha, nxfl, _) = mod_nx(n, x);
        let n1mxfl = n - nxfl - if alpha == 0.0 { 2 } else { 1 };
        let mut cman = Dd::new(1.0);
        let mut cexpt = 0;
        let mut sum = pow4_d(1.0, -x, 1.0, 0.0, n) / x;
        update_binomial(&mut cman, &mut cexpt, n, 0);
        for v in 1..=n1mxfl {
            let aj = compute_av(n, x, v, cman, cexpt);
            if aj.is_finite() {
                sum = sum + aj;
            }
            update_binomial(&mut cman, &mut cexpt, n, v);
        }
        (x * sum).hi
    }

    #[test]
    fn known_value() {
        // scipy.special.smirnov(10, 0.3) = 0.1354635556 (a polynomial with a short decimal).
        let p = smirnov_sf(10, 0.3);
        assert!((p / 0.1354635556 - 1.0).abs() < 1e-14, "{p}");
    }
}
