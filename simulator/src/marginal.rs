//! One feature's marginal distribution: a smoothed empirical CDF and its inverse.
//!
//! Resampling reference values would make every generated value tie with a reference value,
//! which shrinks the KS statistic and hides false alarms. Instead the empirical CDF is made
//! continuous by linear interpolation between the reference's distinct values, so generated
//! values fall between reference values (never on them) while the distribution stays within
//! about 1/(2n) of the empirical one. Zeros at the lower bound of a non-negative feature
//! (e.g. concavity: 13 of 569 tumours have none) are a real point mass, not rounding, and are
//! kept as one.

use anyhow::{bail, Context};

/// A fitted marginal; [`Marginal::quantile`] maps a uniform to a value of the feature.
#[derive(Clone, Debug)]
pub struct Marginal {
    /// Probability of an exact 0: the share of reference zeros, when 0 is the minimum.
    zero_mass: f64,
    /// Knots of the continuous part's quantile function, strictly increasing in `u`, from
    /// (0, lower end) to (1, upper end).
    knots_u: Vec<f64>,
    knots_x: Vec<f64>,
    /// Reference mean and sample standard deviation (drift scenarios are in these units).
    mean: f64,
    sd: f64,
}

impl Marginal {
    /// Fits the marginal of `values` (finite, at least one), every value weighing the same.
    pub fn fit(values: &[f64]) -> anyhow::Result<Self> {
        Self::fit_weighted(values, None)
    }

    /// Fits the marginal of `values` with a weight per value (the Bayesian-bootstrap draw of
    /// a population, see [`crate::copula::Copula::fit_population`]). The mean and sd stay the
    /// unweighted reference ones: drift magnitudes are in reference units.
    pub fn fit_weighted(values: &[f64], weights: Option<&[f64]>) -> anyhow::Result<Self> {
        if values.is_empty() {
            bail!("no reference values");
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            bail!("reference value {v} is not finite");
        }
        if let Some(w) = weights {
            if w.len() != values.len() || w.iter().any(|w| !w.is_finite() || *w <= 0.0) {
                bail!("need one positive finite weight per value");
            }
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        let mut sorted: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (v, weights.map_or(1.0, |w| w[i])))
            .collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = sorted.iter().map(|p| p.1).sum();
        let non_negative = sorted[0].0 >= 0.0;
        let zeros = sorted.iter().take_while(|p| p.0 == 0.0).count();
        // A zero minimum of a non-negative feature is a point mass (see the module doc); the
        // continuous part is fitted on the positive values.
        let (zero_mass, rest) = if non_negative && zeros > 0 && zeros < sorted.len() {
            let w: f64 = sorted[..zeros].iter().map(|p| p.1).sum();
            (w / total, &sorted[zeros..])
        } else {
            (0.0, &sorted[..])
        };
        let (knots_u, knots_x) = knots(rest, non_negative).context("fitting the marginal")?;
        Ok(Marginal {
            zero_mass,
            knots_u,
            knots_x,
            mean,
            sd,
        })
    }

    /// The value at uniform `u` (clamped into [0, 1]).
    pub fn quantile(&self, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0);
        if u < self.zero_mass {
            return 0.0;
        }
        let u = if self.zero_mass > 0.0 {
            (u - self.zero_mass) / (1.0 - self.zero_mass)
        } else {
            u
        };
        interpolate(&self.knots_u, &self.knots_x, u)
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    pub fn sd(&self) -> f64 {
        self.sd
    }

    /// Probability of an exact zero (0 unless the reference has zeros at its minimum).
    pub fn zero_mass(&self) -> f64 {
        self.zero_mass
    }

    /// Lowest and highest value the continuous part can produce.
    pub fn support(&self) -> (f64, f64) {
        let lo = self.knots_x.first().copied().unwrap_or(0.0);
        let hi = self.knots_x.last().copied().unwrap_or(0.0);
        if self.zero_mass > 0.0 {
            (0.0, hi)
        } else {
            (lo, hi)
        }
    }
}

/// A categorical feature's marginal: its categories' shares (of the present values) and
/// their running sums, so that a uniform maps to a category by inversion, as a numeric
/// value does through [`Marginal::quantile`]. Category `c` is the index in the reference's
/// sorted category list, the code the monitor gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Shares {
    shares: Vec<f64>,
    cumulative: Vec<f64>,
}

impl Shares {
    /// The shares of codes `0..k` among `codes` (present values only), each weighing the
    /// same or `weights[i]` (the population draw).
    pub fn fit_weighted(codes: &[f64], k: usize, weights: Option<&[f64]>) -> anyhow::Result<Self> {
        if k == 0 {
            bail!("no categories");
        }
        if let Some(w) = weights {
            if w.len() != codes.len() || w.iter().any(|w| !w.is_finite() || *w <= 0.0) {
                bail!("need one positive finite weight per value");
            }
        }
        let mut mass = vec![0.0; k];
        for (i, &c) in codes.iter().enumerate() {
            if !(c >= 0.0 && c.fract() == 0.0 && (c as usize) < k) {
                bail!("category code {c} is not one of 0..{k}");
            }
            mass[c as usize] += weights.map_or(1.0, |w| w[i]);
        }
        Self::new(mass)
    }

    /// Shares proportional to `mass` (non-negative, not all zero).
    pub fn new(mass: Vec<f64>) -> anyhow::Result<Self> {
        if mass.iter().any(|m| !m.is_finite() || *m < 0.0) {
            bail!("category masses must be finite and non-negative");
        }
        let total: f64 = mass.iter().sum();
        if total <= 0.0 {
            bail!("no category has any mass");
        }
        let shares: Vec<f64> = mass.iter().map(|m| m / total).collect();
        let mut cumulative = Vec::with_capacity(shares.len());
        let mut run = 0.0;
        for s in &shares {
            run += s;
            cumulative.push(run);
        }
        Ok(Shares { shares, cumulative })
    }

    /// Each category's share, by code.
    pub fn shares(&self) -> &[f64] {
        &self.shares
    }

    pub fn len(&self) -> usize {
        self.shares.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shares.is_empty()
    }

    /// The category (code) at uniform `u`: the first whose running share exceeds `u`,
    /// skipping categories of share 0.
    pub fn category(&self, u: f64) -> usize {
        let i = self.cumulative.partition_point(|&c| c <= u);
        let last = self.shares.iter().rposition(|s| *s > 0.0).unwrap_or(0);
        i.min(last)
    }
}

/// Knots of the interpolated quantile function of sorted (value, weight) pairs.
///
/// Each distinct value `v_j` (weight `c_j`, weight `C_j` below it, `m` in all; with equal
/// weights, copies) sits at the midpoint of its ECDF step, `(C_j + c_j / 2) / m`, so ties
/// from rounding are spread over the step instead of becoming a point mass. The ends are
/// extended by the slope of the outermost segment (half a gap for single values), and a
/// non-negative feature's lower end never goes below half its smallest positive value, so
/// positive data stays positive.
fn knots(sorted: &[(f64, f64)], non_negative: bool) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let m: f64 = sorted.iter().map(|p| p.1).sum();
    let mut distinct: Vec<(f64, f64)> = Vec::new();
    for &(v, w) in sorted {
        match distinct.last_mut() {
            Some((last, weight)) if *last == v => *weight += w,
            _ => distinct.push((v, w)),
        }
    }
    let Some(&(first, _)) = distinct.first() else {
        bail!("no values");
    };
    if distinct.len() == 1 {
        // A constant feature: nothing to smooth.
        return Ok((vec![0.0, 1.0], vec![first, first]));
    }
    let mut us = Vec::with_capacity(distinct.len() + 2);
    let mut xs = Vec::with_capacity(distinct.len() + 2);
    let mut below = 0.0;
    for &(v, c) in &distinct {
        us.push((below + c / 2.0) / m);
        xs.push(v);
        below += c;
    }
    let k = xs.len();
    let low_slope = (xs[1] - xs[0]) / (us[1] - us[0]);
    let mut lo = xs[0] - us[0] * low_slope;
    if non_negative && xs[0] > 0.0 {
        lo = lo.max(xs[0] / 2.0);
    }
    let high_slope = (xs[k - 1] - xs[k - 2]) / (us[k - 1] - us[k - 2]);
    let hi = xs[k - 1] + (1.0 - us[k - 1]) * high_slope;
    us.insert(0, 0.0);
    xs.insert(0, lo);
    us.push(1.0);
    xs.push(hi);
    Ok((us, xs))
}

/// Piecewise-linear interpolation through (us, xs), `us` increasing from 0 to 1.
fn interpolate(us: &[f64], xs: &[f64], u: f64) -> f64 {
    let i = us.partition_point(|&k| k <= u);
    if i == 0 {
        return xs[0];
    }
    if i >= us.len() {
        return xs[xs.len() - 1];
    }
    let (u0, u1, x0, x1) = (us[i - 1], us[i], xs[i - 1], xs[i]);
    if u1 <= u0 {
        return x1;
    }
    x0 + (u - u0) / (u1 - u0) * (x1 - x0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_is_monotone_and_passes_between_values() {
        let m = Marginal::fit(&[1.0, 2.0, 2.0, 4.0]).unwrap();
        let mut last = f64::NEG_INFINITY;
        for i in 0..=1000 {
            let x = m.quantile(i as f64 / 1000.0);
            assert!(x >= last);
            last = x;
        }
        // Knots: 1 at 1/8, 2 at 1/2 (the tie spread over its step), 4 at 7/8.
        assert!((m.quantile(0.125) - 1.0).abs() < 1e-12);
        assert!((m.quantile(0.5) - 2.0).abs() < 1e-12);
        assert!((m.quantile(0.875) - 4.0).abs() < 1e-12);
        assert!(m.quantile(0.0) > 0.0, "positive data stays positive");
    }

    #[test]
    fn zeros_are_a_point_mass() {
        let m = Marginal::fit(&[0.0, 0.0, 0.5, 1.0]).unwrap();
        assert_eq!(m.zero_mass(), 0.5);
        assert_eq!(m.quantile(0.3), 0.0);
        assert!(m.quantile(0.6) > 0.0);
    }

    #[test]
    fn negative_data_extends_freely() {
        let m = Marginal::fit(&[-1.0, 0.0, 1.0]).unwrap();
        assert!(m.quantile(0.0) < -1.0);
        assert!(m.quantile(1.0) > 1.0);
    }

    #[test]
    fn shares_invert_a_uniform() {
        let s = Shares::fit_weighted(&[0.0, 1.0, 1.0, 2.0], 3, None).unwrap();
        assert_eq!(s.shares(), [0.25, 0.5, 0.25]);
        assert_eq!((s.category(0.0), s.category(0.24)), (0, 0));
        assert_eq!((s.category(0.25), s.category(0.74)), (1, 1));
        assert_eq!((s.category(0.75), s.category(1.0)), (2, 2));
        let gap = Shares::new(vec![1.0, 0.0, 0.0]).unwrap();
        assert_eq!(gap.category(0.999_999), 0);
        assert_eq!(gap.category(1.0), 0, "never a category of share 0");
        assert!(Shares::fit_weighted(&[3.0], 3, None).is_err());
        assert!(Shares::new(vec![0.0, 0.0]).is_err());
    }

    #[test]
    fn constant_and_bad_input() {
        let m = Marginal::fit(&[3.0, 3.0]).unwrap();
        assert_eq!(m.quantile(0.7), 3.0);
        assert!(Marginal::fit(&[]).is_err());
        assert!(Marginal::fit(&[1.0, f64::NAN]).is_err());
    }
}
