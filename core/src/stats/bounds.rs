//! Thresholds of the `ert` stream-alarm rule ([`crate::alarm::ert_threshold`]) for the
//! signals that are not KS statistics: the total-variation distance between category
//! frequencies and the difference of missing-value shares.
//!
//! The argument is the KS one with another concentration bound. A test's threshold is
//! `e1 + e2`: with probability `1 - (1 - confidence) / tests` the reference's statistic is
//! within `e1` of its population's, and a window from the same population strays more than
//! `e2` with probability at most `1 / (ert tests)`. By the triangle inequality a value of at
//! least `e1 + e2` then needs the window to stray, so a stream without drift raises at most
//! one false-alarm round per `ert` rounds in expectation, with probability `confidence`
//! over the reference, whatever the dependence between tests or overlapping windows.
//!
//! A threshold of +inf means the test can never flag: the caller keeps reporting the
//! statistic but the alarm ignores it.

use std::f64::consts::LN_2;

/// The threshold on TV = (1/2) sum |window share - reference share| over `bins` categories.
///
/// From the L1 deviation bound of Weissman, Ordentlich, Seroussi, Verdu & Weinberger
/// (2003), `P(||p_hat - p||_1 >= eps) <= (2^bins - 2) exp(-n eps^2 / 2)`:
/// `eps(n, budget) = sqrt(2 (ln(2^bins - 2) + ln(1 / budget)) / n)`, and the threshold is
/// `(eps(reference_n, (1 - confidence) / tests) + eps(window_n, 1 / (ert tests))) / 2`, the
/// halving turning the L1 bound into one on TV. `ln(2^bins - 2)` is computed as
/// `bins ln 2 + ln(1 - 2^(1 - bins))`, which does not overflow for any number of bins.
///
/// The bound grows like sqrt(bins / n): with hundreds of categories and a few hundred rows
/// it exceeds 1, the largest possible TV, and the test never flags. That is the honest
/// answer, not a defect: so few rows cannot tell that many frequencies apart.
///
/// +inf (never flags) when `bins < 2`, where TV is always 0 and the bound says nothing,
/// and when either sample is empty. `tests` of 0 counts as 1.
pub fn tv_threshold(
    bins: usize,
    reference_n: usize,
    window_n: usize,
    tests: usize,
    ert: f64,
    confidence: f64,
) -> f64 {
    if bins < 2 || reference_n == 0 || window_n == 0 {
        return f64::INFINITY;
    }
    let tests = tests.max(1) as f64;
    let bins = bins as f64;
    let ln_events = bins * LN_2 + (-(0.5f64.powf(bins - 1.0))).ln_1p();
    let eps = |n: usize, budget: f64| {
        // A budget above the number of events needs no deviation at all.
        ((2.0 * (ln_events - budget.ln())).max(0.0) / n as f64).sqrt()
    };
    0.5 * (eps(reference_n, (1.0 - confidence) / tests) + eps(window_n, 1.0 / (ert * tests)))
}

/// The threshold on |window missing share - reference missing share|.
///
/// From Hoeffding's two-sided bound for a share of `n` rows,
/// `P(|p_hat - p| >= eps) <= 2 exp(-2 n eps^2)`: `eps(n, budget) = sqrt(ln(2 / budget) / 2n)`,
/// and the threshold is `eps(reference_n, (1 - confidence) / tests) + eps(window_n,
/// 1 / (ert tests))`. It equals [`tv_threshold`] with two bins, as it should: missing or not
/// is a two-category feature whose TV is the difference of the missing shares.
///
/// +inf (never flags) when either sample is empty. `tests` of 0 counts as 1.
pub fn missing_threshold(
    reference_n: usize,
    window_n: usize,
    tests: usize,
    ert: f64,
    confidence: f64,
) -> f64 {
    if reference_n == 0 || window_n == 0 {
        return f64::INFINITY;
    }
    let tests = tests.max(1) as f64;
    let eps = |n: usize, budget: f64| ((2.0 / budget).ln().max(0.0) / (2.0 * n as f64)).sqrt();
    eps(reference_n, (1.0 - confidence) / tests) + eps(window_n, 1.0 / (ert * tests))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= 1e-14 * want.abs()
    }

    #[test]
    fn hand_computed_values() {
        // 2 bins, 100 and 100 rows, 1 test, ert 10, confidence 0.9: both budgets are 0.1,
        // eps = sqrt(2 (ln 2 + ln 10) / 100) = sqrt(0.02 ln 20) = 0.244774683068...,
        // threshold = (eps + eps) / 2 = eps.
        let c = tv_threshold(2, 100, 100, 1, 10.0, 0.9);
        assert!(close(c, 0.244_774_683_068_081_67), "{c}");
        // 4 bins, 569 and 500 rows, 30 tests, ert 1000, confidence 0.99: ln(2^4 - 2) = ln 14,
        // e1 = sqrt(2 (ln 14 + ln(30 / 0.01)) / 569) = 0.193437363760594,
        // e2 = sqrt(2 (ln 14 + ln(1000 * 30)) / 500) = 0.227578645661315,
        // threshold = (e1 + e2) / 2 = 0.210508004710955.
        let c = tv_threshold(4, 569, 500, 30, 1000.0, 0.99);
        assert!(close(c, 0.210_508_004_710_954_52), "{c}");
        // Missing share, 569 and 500 rows, 30 tests, ert 1e4, confidence 0.95:
        // e1 = sqrt(ln(2 * 30 / 0.05) / (2 * 569)) = 0.078932224023262,
        // e2 = sqrt(ln(2 * 1e4 * 30) / (2 * 500)) = 0.115345935924064, sum 0.194278159947326.
        let c = missing_threshold(569, 500, 30, 1e4, 0.95);
        assert!(close(c, 0.194_278_159_947_326_07), "{c}");
        // 1000 bins: 2^1000 - 2 is far beyond f64 range; ln(2^1000 - 2) = 1000 ln 2 and
        // (sqrt(2 (1000 ln 2 + ln(30 / 0.05)) / 569) + sqrt(2 (1000 ln 2 + ln 3e5) / 500)) / 2
        // = 1.62413122243329: above 1, so this test can never flag.
        let c = tv_threshold(1000, 569, 500, 30, 1e4, 0.95);
        assert!(close(c, 1.624_131_222_433_290_7), "{c}");
    }

    #[test]
    fn two_bins_is_the_missing_share() {
        for (n, m, d, ert, conf) in [
            (569, 500, 30, 1e4, 0.95),
            (50, 20, 3, 10.0, 0.99),
            (100_000, 1000, 1, 200.0, 0.5),
        ] {
            let tv = tv_threshold(2, n, m, d, ert, conf);
            let missing = missing_threshold(n, m, d, ert, conf);
            assert!((tv - missing).abs() <= 1e-15 * missing, "{tv} {missing}");
        }
    }

    #[test]
    fn monotone_in_rows_bins_and_budget() {
        let base = tv_threshold(10, 569, 500, 30, 1e4, 0.95);
        assert!(tv_threshold(10, 5690, 500, 30, 1e4, 0.95) < base);
        assert!(tv_threshold(10, 569, 5000, 30, 1e4, 0.95) < base);
        assert!(tv_threshold(10, 569, 500, 30, 1e3, 0.95) < base);
        assert!(tv_threshold(10, 569, 500, 30, 1e4, 0.9) < base);
        assert!(tv_threshold(10, 569, 500, 60, 1e4, 0.95) > base);
        let mut previous = 0.0;
        for bins in 2..=1000 {
            let c = tv_threshold(bins, 569, 500, 30, 1e4, 0.95);
            assert!(c.is_finite() && c > previous, "{bins}: {c}");
            previous = c;
        }
        let base = missing_threshold(569, 500, 30, 1e4, 0.95);
        assert!(missing_threshold(5690, 500, 30, 1e4, 0.95) < base);
        assert!(missing_threshold(569, 5000, 30, 1e4, 0.95) < base);
        assert!(missing_threshold(569, 500, 30, 1e3, 0.95) < base);
        assert!(missing_threshold(569, 500, 60, 1e4, 0.95) > base);
    }

    #[test]
    fn never_flags_without_rows_or_categories() {
        assert_eq!(tv_threshold(1, 569, 500, 30, 1e4, 0.95), f64::INFINITY);
        assert_eq!(tv_threshold(0, 569, 500, 30, 1e4, 0.95), f64::INFINITY);
        assert_eq!(tv_threshold(5, 0, 500, 30, 1e4, 0.95), f64::INFINITY);
        assert_eq!(tv_threshold(5, 569, 0, 30, 1e4, 0.95), f64::INFINITY);
        assert_eq!(missing_threshold(0, 500, 30, 1e4, 0.95), f64::INFINITY);
        assert_eq!(missing_threshold(569, 0, 30, 1e4, 0.95), f64::INFINITY);
        // tests = 0 is read as one test.
        assert_eq!(
            tv_threshold(5, 569, 500, 0, 1e4, 0.95),
            tv_threshold(5, 569, 500, 1, 1e4, 0.95)
        );
    }
}
