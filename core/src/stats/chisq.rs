//! Pearson's chi-square goodness-of-fit test with the numbers of `scipy.stats.chisquare`
//! (scipy 1.17), for comparing a window's category counts with the counts the reference's
//! frequencies predict.
//!
//! The survival function is written here rather than taken from a crate so that its
//! accuracy is known and tested against scipy's `chdtrc` down to 1e-300: a drifted
//! categorical feature easily reaches p-values of 1e-50 and below, and users compare those
//! digits too.

/// The chi-square survival function `scipy.stats.chi2.sf(x, df)`: the probability that a
/// chi-square variable with `df` degrees of freedom is at least `x`.
///
/// Relative error below 1e-9 wherever the result is at least 1e-300 (below 4e-13 against
/// mpmath on the test vectors, df up to 10000, where scipy's own is up to 6e-12); further out it underflows towards 0 as scipy's does. `x <= 0` gives 1 (as
/// scipy's `chdtrc`), `df <= 0` or a NaN argument gives NaN.
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if x.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(0.5 * df, 0.5 * x)
}

/// scipy's `Power_divergenceResult` for Pearson's statistic, plus the degrees of freedom
/// actually used (after the degenerate bins are dropped).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ChiSquare {
    /// sum over the kept bins of (observed - expected)^2 / expected; +inf when a kept bin
    /// has an observation but no expectation.
    pub statistic: f64,
    pub p_value: f64,
    /// Kept bins - 1 (ddof 0); 0 when fewer than two bins are kept.
    pub df: usize,
}

/// `scipy.stats.chisquare(observed, expected)` (ddof 0): the caller passes `expected`
/// scaled to the observed total, as scipy requires (this function does not check the sums).
///
/// scipy gives NaN as soon as one bin is degenerate, which would make a monitor blind on
/// any feature with a category absent from both samples. The degenerate bins follow these
/// rules instead, in this order:
/// 1. a bin with neither observations nor expectation carries no information and is
///    dropped (the degrees of freedom do not count it);
/// 2. a kept bin with an observation but zero expectation (a category the reference never
///    had) is impossible under the reference: statistic +inf, p-value 0, whatever the
///    other bins;
/// 3. with fewer than two bins left there is nothing to test: statistic 0, p-value 1,
///    df 0.
///
/// Without degenerate bins the result is scipy's. Slices of different lengths are compared
/// over the shorter one.
pub fn chisquare(observed: &[f64], expected: &[f64]) -> ChiSquare {
    let mut bins = 0usize;
    let mut impossible = false;
    let mut statistic = 0.0;
    for (&o, &e) in observed.iter().zip(expected) {
        if o == 0.0 && e == 0.0 {
            continue;
        }
        bins += 1;
        if e == 0.0 {
            impossible = true;
        } else {
            let d = o - e;
            statistic += d * d / e;
        }
    }
    if impossible {
        return ChiSquare {
            statistic: f64::INFINITY,
            p_value: 0.0,
            df: bins.saturating_sub(1),
        };
    }
    if bins < 2 {
        return ChiSquare {
            statistic: 0.0,
            p_value: 1.0,
            df: 0,
        };
    }
    let df = bins - 1;
    ChiSquare {
        statistic,
        p_value: chi2_sf(statistic, df as f64),
        df,
    }
}

/// Iterations after which the series and the continued fraction give up. Both need
/// O(sqrt(a)) terms where x is near a, so this covers shapes up to about 1e9.
const MAX_ITERATIONS: usize = 1_000_000;

/// The regularized upper incomplete gamma function Q(a, x) for a > 0, x > 0: the power
/// series of P = 1 - Q below x = a + 1, where it converges fast and Q is not small, and
/// Legendre's continued fraction for Q above, where Q may be tiny but the fraction keeps
/// its relative accuracy (Numerical Recipes, 3rd ed., 6.2).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x.is_infinite() {
        return 0.0;
    }
    if a.is_infinite() {
        return 1.0;
    }
    if x < a + 1.0 {
        1.0 - lower_series(a, x)
    } else {
        upper_fraction(a, x)
    }
}

/// x^a e^-x / Gamma(a), the factor in front of both expansions, without forming the
/// three large terms of `a ln x - x - ln Gamma(a)`: with Stirling's
/// `Gamma(a) = sqrt(2 pi / a) a^a e^-a e^mu(a)` it is
/// `sqrt(a / 2 pi) exp(a (ln(x/a) - (x-a)/a) - mu(a))`, and the bracket is computed with
/// `ln_1p` where x is near a. The error is then a few ulps even for shapes in the
/// thousands, where the naive exponent would lose about ten bits.
fn prefactor(a: f64, x: f64) -> f64 {
    let d = (x - a) / a;
    let exponent = if d.abs() < 0.5 {
        a * (d.ln_1p() - d)
    } else {
        a * (x / a).ln() - (x - a)
    };
    (exponent - stirling_correction(a)).exp() * (a / std::f64::consts::TAU).sqrt()
}

/// mu(a) = ln Gamma(a) - ((a - 1/2) ln a - a + ln(2 pi) / 2): the asymptotic series from
/// a = 10 (its next term is below 2e-18 there), and below that the recurrence
/// `mu(a) = mu(a + 1) + (a + 1/2) ln(1 + 1/a) - 1`, which follows from
/// `Gamma(a + 1) = a Gamma(a)`.
fn stirling_correction(a: f64) -> f64 {
    let mut a = a;
    let mut shift = 0.0;
    while a < 10.0 {
        shift += (a + 0.5) * a.recip().ln_1p() - 1.0;
        a += 1.0;
    }
    // B_2k / (2k (2k - 1)) for k = 1..=8.
    const COEFFICIENTS: [f64; 8] = [
        1.0 / 12.0,
        -1.0 / 360.0,
        1.0 / 1260.0,
        -1.0 / 1680.0,
        1.0 / 1188.0,
        -691.0 / 360_360.0,
        1.0 / 156.0,
        -3617.0 / 122_400.0,
    ];
    let inv = a.recip();
    let inv2 = inv * inv;
    let series = COEFFICIENTS
        .iter()
        .rev()
        .fold(0.0, |acc, &c| acc * inv2 + c);
    shift + series * inv
}

/// P(a, x) = x^a e^-x / Gamma(a + 1) * sum_n x^n / ((a + 1) ... (a + n)).
fn lower_series(a: f64, x: f64) -> f64 {
    let mut term = 1.0 / a;
    let mut sum = term;
    let mut ap = a;
    for _ in 0..MAX_ITERATIONS {
        ap += 1.0;
        term *= x / ap;
        sum += term;
        if term.abs() < sum.abs() * f64::EPSILON {
            break;
        }
    }
    sum * prefactor(a, x)
}

/// Q(a, x) = x^a e^-x / Gamma(a) * 1 / (x + 1 - a - 1 (1 - a) / (x + 3 - a - 2 (2 - a) / ...)),
/// evaluated by the modified Lentz method.
fn upper_fraction(a: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..MAX_ITERATIONS {
        let i = i as f64;
        let an = -i * (i - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() <= f64::EPSILON {
            break;
        }
    }
    prefactor(a, x) * h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, rel: f64) -> bool {
        (got - want).abs() <= rel * want.abs()
    }

    #[test]
    fn closed_forms() {
        // df = 2: sf = exp(-x / 2).
        for x in [0.01, 0.5, 1.0, 3.0, 10.0, 100.0, 1000.0] {
            let got = chi2_sf(x, 2.0);
            assert!(close(got, (-0.5 * x).exp(), 1e-14), "{x}: {got}");
        }
        // df = 4: sf = exp(-x / 2) (1 + x / 2).
        for x in [0.01, 0.5, 1.0, 3.0, 10.0, 100.0, 1000.0] {
            let got = chi2_sf(x, 4.0);
            assert!(
                close(got, (-0.5 * x).exp() * (1.0 + 0.5 * x), 1e-14),
                "{x}: {got}"
            );
        }
        // ln Gamma(a) = (a - 1/2) ln a - a + ln(2 pi) / 2 + mu(a): Gamma(10) = 9! from the
        // series, Gamma(3) = 2 and Gamma(1/2) = sqrt(pi) through the recurrence.
        let lgamma = |a: f64| {
            (a - 0.5) * a.ln() - a + 0.5 * std::f64::consts::TAU.ln() + stirling_correction(a)
        };
        assert!(close(lgamma(10.0), 362_880f64.ln(), 1e-15));
        assert!(close(lgamma(3.0), 2f64.ln(), 1e-14));
        assert!(close(lgamma(0.5), 0.5 * std::f64::consts::PI.ln(), 1e-14));
    }

    #[test]
    fn edges_of_the_domain() {
        assert_eq!(chi2_sf(0.0, 3.0), 1.0);
        assert_eq!(chi2_sf(-1.0, 3.0), 1.0);
        assert_eq!(chi2_sf(f64::INFINITY, 3.0), 0.0);
        assert!(chi2_sf(1.0, 0.0).is_nan());
        assert!(chi2_sf(f64::NAN, 1.0).is_nan());
        // Far in the tail the result underflows instead of turning into NaN.
        assert_eq!(chi2_sf(1e6, 3.0), 0.0);
    }

    #[test]
    fn degenerate_bins() {
        // scipy.stats.chisquare([10, 20, 30], [20, 20, 20]): (100 + 0 + 100) / 20 = 10, df 2,
        // p = exp(-5).
        let r = chisquare(&[10.0, 20.0, 30.0], &[20.0, 20.0, 20.0]);
        assert_eq!(r.statistic, 10.0);
        assert_eq!(r.df, 2);
        assert!(close(r.p_value, (-5.0f64).exp(), 1e-14));
        // The empty bin is dropped: same numbers.
        let dropped = chisquare(&[10.0, 0.0, 20.0, 30.0], &[20.0, 0.0, 20.0, 20.0]);
        assert_eq!(dropped, r);
        let impossible = chisquare(&[10.0, 1.0, 20.0], &[11.0, 0.0, 20.0]);
        assert_eq!(impossible.statistic, f64::INFINITY);
        assert_eq!(impossible.p_value, 0.0);
        assert_eq!(impossible.df, 2);
        // The impossible bin wins over the too-few-bins rule.
        let alone = chisquare(&[0.0, 3.0], &[0.0, 0.0]);
        assert_eq!(
            (alone.statistic, alone.p_value, alone.df),
            (f64::INFINITY, 0.0, 0)
        );
        for (o, e) in [
            (&[5.0, 0.0][..], &[5.0, 0.0][..]),
            (&[3.0][..], &[3.0][..]),
            (&[][..], &[][..]),
            (&[0.0, 0.0][..], &[0.0, 0.0][..]),
        ] {
            let r = chisquare(o, e);
            assert_eq!((r.statistic, r.p_value, r.df), (0.0, 1.0, 0), "{o:?}");
        }
    }
}
