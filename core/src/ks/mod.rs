//! Two-sample Kolmogorov-Smirnov test with the numbers of `scipy.stats.ks_2samp` (scipy 1.17).
//!
//! Users of a drift monitor compare its p-values with scipy's, so scipy's choices are kept
//! even where they are debatable: the `auto` rule (exact iff both sizes <= 10000), the snapping
//! of D to a multiple of 1/lcm on the exact path, the fallbacks from exact to asymptotic on
//! floating-point trouble, the finite-n `kstwo` distribution for the asymptotic two-sided
//! p-value and Hodges' formula for the one-sided one. What differs is the speed: the
//! reference sample is sorted once ([`Reference`]), the statistic is one merge walk, and the
//! exact two-sided recursion runs over anti-diagonals so that it vectorises.

mod binom;
pub mod cases;
mod cephes;
mod dd;
mod exact;
mod kolmogorov;
mod smirnov;
mod sort;
mod statistic;

use std::cell::RefCell;

pub use exact::KsScratch;

#[cfg(test)]
pub(crate) fn kstwo_sf_for_tests(d: f64, n: usize) -> f64 {
    kolmogorov::kstwo_sf(d, n as f64)
}

/// The smallest D (to a relative 2^-50, rounded up) with `kstwo.sf(D, n) <= p`: the upper
/// `p`-quantile of the exact one-sample two-sided statistic for `n` rows, which bounds how
/// far an `n`-row ECDF strays from its population's, for any population (ties only make
/// the statistic smaller). The alarm's thresholds are built from it.
///
/// Bisection on the survival function keeps the invariant `sf(hi) <= p` at every step, so
/// the result never understates the quantile even where the method switches inside
/// `kstwo` leave the survival function non-monotone in its last bits.
pub fn kolmogorov_isf(p: f64, n: usize) -> f64 {
    if n == 0 || p.is_nan() || p >= 1.0 {
        return 0.0;
    }
    if p <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let (mut lo, mut hi) = (0.5 / nf, 1.0);
    while hi - lo > f64::EPSILON * 4.0 * hi {
        let mid = 0.5 * (lo + hi);
        if kolmogorov::kstwo_sf(mid, nf) <= p {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Which difference of the two CDFs the test is about (scipy's `alternative`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alternative {
    /// max |cdf1 - cdf2|.
    TwoSided,
    /// max (cdf2 - cdf1): the first sample tends to be larger.
    Less,
    /// max (cdf1 - cdf2): the first sample tends to be smaller.
    Greater,
}

/// How the p-value is computed (scipy's `method`; `asymp` is accepted as in scipy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Exact when both sizes are <= 10000, asymptotic otherwise.
    Auto,
    /// Exact, unless lcm(n1, n2) does not fit in an i32 or the computation fails numerically.
    Exact,
    /// Asymptotic distribution.
    #[serde(alias = "asymp")]
    Asymptotic,
}

/// The method that produced the p-value, after the `auto` choice and any fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EffectiveMethod {
    Exact,
    Asymptotic,
}

/// scipy's `KstestResult`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct KsResult {
    /// D; on the exact path snapped to h / lcm(n1, n2) as scipy does.
    pub statistic: f64,
    /// In [0, 1]; NaN only where scipy gives NaN (two-sided asymptotic with n1 = n2 = 1).
    pub pvalue: f64,
    /// The pooled observation at which D is attained (first in `concat(x, y)` order).
    pub statistic_location: f64,
    /// +1 when D is max(cdf1 - cdf2), -1 when it is max(cdf2 - cdf1).
    pub statistic_sign: i8,
    pub effective_method: EffectiveMethod,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KsError {
    #[error("a sample passed to the KS test is empty")]
    EmptySample,
    #[error("a sample passed to the KS test contains NaN")]
    NonFinite,
    #[error("the reference values are not sorted in ascending order")]
    NotSorted,
}

/// `auto` switches to the asymptotic p-value above this size (scipy's MAX_AUTO_N).
const MAX_AUTO_N: usize = 10_000;

/// scipy.stats.ks_2samp(x, y, alternative, method): copies and sorts both samples.
pub fn ks_2samp(
    x: &[f64],
    y: &[f64],
    alternative: Alternative,
    method: Method,
) -> Result<KsResult, KsError> {
    let mut xs = x.to_vec();
    let mut ys = y.to_vec();
    let mut scratch = KsScratch::default();
    sort_sample(&mut xs, &mut scratch)?;
    sort_sample(&mut ys, &mut scratch)?;
    Ok(ks_sorted(&xs, &ys, alternative, method, &mut scratch))
}

/// A reference sample sorted once and reused for every evaluation (the monitor's y).
#[derive(Clone, Debug)]
pub struct Reference {
    sorted: Vec<f64>,
}

thread_local! {
    static SCRATCH: RefCell<KsScratch> = RefCell::new(KsScratch::default());
}

impl Reference {
    /// Sorts the values (numpy's order: -0.0 and 0.0 compare equal); rejects NaN and empty.
    pub fn new(mut values: Vec<f64>) -> Result<Self, KsError> {
        sort_sample(&mut values, &mut KsScratch::default())?;
        Ok(Reference { sorted: values })
    }

    /// Takes values that are already sorted, checking instead of sorting.
    pub fn from_sorted(values: Vec<f64>) -> Result<Self, KsError> {
        if values.is_empty() {
            return Err(KsError::EmptySample);
        }
        if values.iter().any(|v| v.is_nan()) {
            return Err(KsError::NonFinite);
        }
        if values.windows(2).any(|w| w[0] > w[1]) {
            return Err(KsError::NotSorted);
        }
        Ok(Reference { sorted: values })
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    pub fn sorted(&self) -> &[f64] {
        &self.sorted
    }

    /// The two-sided statistic D of `ks_2samp(window, reference)` alone, for a window that
    /// is already sorted: the same number as
    /// `evaluate(window, TwoSided, Auto).statistic` (snapped to h / lcm where `auto` takes
    /// the exact path), from the one merge walk and without a p-value. For callers that
    /// decide on the statistic only, as the `ert` rule does (simulations, benchmarks).
    ///
    /// Rejects an empty window, NaN and a window out of ascending order.
    pub fn statistic(&self, window_sorted: &[f64]) -> Result<f64, KsError> {
        let x = window_sorted;
        if x.is_empty() || self.sorted.is_empty() {
            return Err(KsError::EmptySample);
        }
        if x.iter().any(|v| v.is_nan()) {
            return Err(KsError::NonFinite);
        }
        if x.windows(2).any(|w| w[0] > w[1]) {
            return Err(KsError::NotSorted);
        }
        let ext = statistic::extremes(x, &self.sorted);
        // As in `ks_sorted` for `TwoSided`.
        let min_s = (-ext.min).clamp(0.0, 1.0);
        let d = if min_s > ext.max { min_s } else { ext.max };
        let (n1, n2) = (x.len() as u64, self.sorted.len() as u64);
        if n1.max(n2) > MAX_AUTO_N as u64 {
            return Ok(d);
        }
        let lcm = n1 / exact::gcd(n1, n2) * n2;
        let h = (d * lcm as f64).round_ties_even() as u64;
        Ok(h as f64 / lcm as f64)
    }

    /// `ks_2samp(window, reference)`; sorts `window` in place.
    ///
    /// Buffers for sorting large windows (O(window) integers) and for the exact two-sided
    /// recursion (O(min(n1, n2)) floats) come from a per-thread scratch that is reused across
    /// calls and keeps the size of the largest evaluation, so steady-state evaluations do not
    /// allocate; use [`Reference::evaluate_with`] to manage the scratch explicitly. Only the
    /// Durbin and Pomeranz methods of the asymptotic two-sided p-value (small n D^2) allocate,
    /// a few vectors of at most ~120^2 floats.
    pub fn evaluate(
        &self,
        window: &mut [f64],
        alternative: Alternative,
        method: Method,
    ) -> Result<KsResult, KsError> {
        let cached = SCRATCH.try_with(|cell| {
            cell.try_borrow_mut()
                .ok()
                .map(|mut scratch| self.evaluate_with(window, alternative, method, &mut scratch))
        });
        match cached {
            Ok(Some(result)) => result,
            _ => self.evaluate_with(window, alternative, method, &mut KsScratch::default()),
        }
    }

    /// As [`Reference::evaluate`], with caller-owned buffers.
    pub fn evaluate_with(
        &self,
        window: &mut [f64],
        alternative: Alternative,
        method: Method,
        scratch: &mut KsScratch,
    ) -> Result<KsResult, KsError> {
        if self.sorted.is_empty() {
            return Err(KsError::EmptySample);
        }
        sort_sample(window, scratch)?;
        Ok(ks_sorted(
            window,
            &self.sorted,
            alternative,
            method,
            scratch,
        ))
    }
}

/// Sorts in ascending order after rejecting empty samples and NaN.
///
/// The order is the IEEE total order, which puts -0.0 before 0.0; since the statistic
/// compares with `<=`, the zeros still form one tie group as in numpy.
fn sort_sample(values: &mut [f64], scratch: &mut KsScratch) -> Result<(), KsError> {
    if values.is_empty() {
        return Err(KsError::EmptySample);
    }
    if sort::sort_floats(values, &mut scratch.sort) {
        Ok(())
    } else {
        Err(KsError::NonFinite)
    }
}

/// The test on two sorted, non-empty, NaN-free samples.
fn ks_sorted(
    x: &[f64],
    y: &[f64],
    alternative: Alternative,
    method: Method,
    scratch: &mut KsScratch,
) -> KsResult {
    let n1 = x.len();
    let n2 = y.len();
    let ext = statistic::extremes(x, y);
    let max_s = ext.max;
    // -min can be -0.0 (scipy returns that sign too); clamp keeps it.
    let min_s = (-ext.min).clamp(0.0, 1.0);
    let use_min = match alternative {
        Alternative::Less => true,
        Alternative::Greater => false,
        Alternative::TwoSided => min_s > max_s,
    };
    let (mut d, location, sign) = if use_min {
        (min_s, ext.min_location, -1)
    } else {
        (max_s, ext.max_location, 1)
    };

    let (n1u, n2u) = (n1 as u64, n2 as u64);
    let g = exact::gcd(n1u, n2u);
    let (n1g, n2g) = (n1u / g, n2u / g);
    let try_exact = match method {
        Method::Auto => n1.max(n2) <= MAX_AUTO_N,
        // lcm must fit in an int32 (scipy's check, in floating point).
        Method::Exact => (n1g as f64) < f64::from(i32::MAX) / (n2g as f64),
        Method::Asymptotic => false,
    };

    if try_exact {
        let lcm = n1g * n2u;
        // An integer, so -0.0 (from 'less' with D = 0) becomes +0.0 as in scipy.
        let h = (d * lcm as f64).round_ties_even() as u64;
        // The snapped D is reported even when the exact computation then fails.
        d = h as f64 / lcm as f64;
        let exact = if h == 0 {
            Some(1.0)
        } else {
            exact::exact_pvalue(n1u, n2u, g, h, alternative, scratch)
        };
        if let Some(p) = exact {
            return KsResult {
                statistic: d,
                pvalue: p.clamp(0.0, 1.0),
                statistic_location: location,
                statistic_sign: sign,
                effective_method: EffectiveMethod::Exact,
            };
        }
    }

    KsResult {
        statistic: d,
        pvalue: asymptotic_pvalue(n1, n2, d, alternative).clamp(0.0, 1.0),
        statistic_location: location,
        statistic_sign: sign,
        effective_method: EffectiveMethod::Asymptotic,
    }
}

/// Two-sided: `kstwo.sf(D, round(m n / (m + n)))`; one-sided: Hodges' (1958) eq. 5.3,
/// which needs m to be the larger size.
fn asymptotic_pvalue(n1: usize, n2: usize, d: f64, alternative: Alternative) -> f64 {
    let (a, b) = (n1 as f64, n2 as f64);
    let (m, n) = if a >= b { (a, b) } else { (b, a) };
    let en = m * n / (m + n);
    match alternative {
        Alternative::TwoSided => kolmogorov::kstwo_sf(d, en.round_ties_even()),
        Alternative::Less | Alternative::Greater => {
            let z = en.sqrt() * d;
            let expt =
                -2.0 * z.powf(2.0) - 2.0 * z * (m + 2.0 * n) / (m * n * (m + n)).sqrt() / 3.0;
            expt.exp()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_input() {
        let a = Alternative::TwoSided;
        let m = Method::Auto;
        assert_eq!(ks_2samp(&[], &[1.0], a, m), Err(KsError::EmptySample));
        assert_eq!(ks_2samp(&[1.0], &[f64::NAN], a, m), Err(KsError::NonFinite));
        assert_eq!(
            Reference::from_sorted(vec![2.0, 1.0]).err(),
            Some(KsError::NotSorted)
        );
        assert!(ks_2samp(&[f64::INFINITY], &[f64::NEG_INFINITY, 0.0], a, m).is_ok());
    }

    #[test]
    fn statistic_is_the_statistic_of_ks_2samp() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut draw = |n: usize, levels: u64| -> Vec<f64> {
            (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % levels) as f64 * 0.1
                })
                .collect()
        };
        // Small and large sizes (above 10000 `auto` does not snap), with and without ties.
        for (n1, n2, levels) in [
            (1, 1, 3),
            (7, 11, 5),
            (100, 300, 1 << 40),
            (500, 569, 20),
            (500, 569, 1 << 40),
            (250, 5000, 1 << 40),
            (12_000, 300, 1 << 40),
            (300, 10_001, 50),
        ] {
            for _ in 0..5 {
                let mut window = draw(n1, levels);
                let reference = Reference::new(draw(n2, levels)).unwrap_or_else(|e| panic!("{e}"));
                let want = ks_2samp(
                    &window,
                    reference.sorted(),
                    Alternative::TwoSided,
                    Method::Auto,
                )
                .map(|r| r.statistic);
                window.sort_by(f64::total_cmp);
                assert_eq!(reference.statistic(&window), want, "{n1} {n2} {levels}");
            }
        }
        let reference = Reference::new(vec![1.0, 2.0]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reference.statistic(&[]), Err(KsError::EmptySample));
        assert_eq!(reference.statistic(&[f64::NAN]), Err(KsError::NonFinite));
        assert_eq!(reference.statistic(&[2.0, 1.0]), Err(KsError::NotSorted));
    }

    #[test]
    fn serde_names() {
        let m: Method = serde_json::from_str("\"asymp\"").unwrap_or(Method::Auto);
        assert_eq!(m, Method::Asymptotic);
        let a: Alternative = serde_json::from_str("\"two-sided\"").unwrap_or(Alternative::Less);
        assert_eq!(a, Alternative::TwoSided);
        assert_eq!(
            serde_json::to_string(&EffectiveMethod::Asymptotic).unwrap_or_default(),
            "\"asymptotic\""
        );
    }
}
