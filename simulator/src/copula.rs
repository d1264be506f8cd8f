//! A Gaussian copula over the reference's marginals: the model "no drift" rows are drawn
//! from, for numeric and categorical features with missing values.
//!
//! Fitting: each feature's ranks (of its present values) become normal scores
//! Φ⁻¹(rank / (n + 1)); their correlation matrix (a consistent estimate of the copula
//! correlation, insensitive to the skewed marginals; pairwise over the rows where both
//! values are present) is factored by Cholesky. Sampling: correlated normals `L·e`, mapped
//! to uniforms by Φ, then to values by each feature's marginal: a numeric feature's
//! smoothed empirical quantile function ([`Marginal`]), or a categorical feature's
//! category shares inverted ([`Shares`], categories in their sorted order, so the rank
//! dependence with the other features is that order's). Then each value is missing with
//! the feature's reference missing share, drawn independently of everything else. Rows
//! thus keep the marginals exactly (numeric values never copy a reference value) and the
//! rank dependence of the reference approximately (radius, perimeter and area move
//! together).

use crate::marginal::{Marginal, Shares};
use crate::normal;
use anyhow::{bail, Context};
use drift_core::{Dataset, FeatureKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Exp1, StandardNormal};

/// Mixed into the run's seed for the population draw, so that it is a stream independent of
/// the rows' (which use the seed itself).
const POPULATION_STREAM: u64 = 0x9e37_79b9_7f4a_7c15;

/// How one feature's present values are drawn.
#[derive(Clone, Debug)]
pub enum Values {
    Numeric(Marginal),
    /// Category codes (indexes in `categories`).
    Categorical {
        shares: Shares,
        categories: Vec<String>,
    },
}

/// One feature of the model.
#[derive(Clone, Debug)]
pub struct Column {
    pub values: Values,
    /// Probability that a value is missing (the reference's share, or the population's).
    pub missing: f64,
}

impl Column {
    pub fn kind(&self) -> FeatureKind {
        match self.values {
            Values::Numeric(_) => FeatureKind::Numeric,
            Values::Categorical { .. } => FeatureKind::Categorical,
        }
    }

    pub fn marginal(&self) -> Option<&Marginal> {
        match &self.values {
            Values::Numeric(m) => Some(m),
            Values::Categorical { .. } => None,
        }
    }

    pub fn shares(&self) -> Option<&Shares> {
        match &self.values {
            Values::Numeric(_) => None,
            Values::Categorical { shares, .. } => Some(shares),
        }
    }

    /// The categories of a categorical feature (empty for a numeric one).
    pub fn categories(&self) -> &[String] {
        match &self.values {
            Values::Numeric(_) => &[],
            Values::Categorical { categories, .. } => categories,
        }
    }
}

/// What a drift scenario changes in how a row is drawn, per column (see
/// [`crate::scenario`]): category shares, or the missing share.
#[derive(Clone, Debug, Default)]
pub struct DrawOverrides {
    /// Replacement shares of a categorical column (possibly with one more category, the
    /// new one, at the end).
    pub shares: Vec<Option<Shares>>,
    /// Replacement missing share.
    pub missing: Vec<Option<f64>>,
}

impl DrawOverrides {
    pub fn none(d: usize) -> Self {
        DrawOverrides {
            shares: vec![None; d],
            missing: vec![None; d],
        }
    }
}

#[derive(Clone, Debug)]
pub struct Copula {
    names: Vec<String>,
    columns: Vec<Column>,
    /// Correlation of the normal scores (row-major, d × d).
    correlation: Vec<f64>,
    /// Lower-triangular Cholesky factor of the (possibly regularised) correlation, row-major.
    chol: Vec<f64>,
}

impl Copula {
    /// Fits the copula to every column of `ds`: rows are drawn from the reference's own
    /// smoothed distribution.
    pub fn fit(ds: &Dataset) -> anyhow::Result<Self> {
        Self::fit_weighted(ds, None)
    }

    /// Fits the copula to a population drawn from the reference's posterior (Rubin's Bayesian
    /// bootstrap: Dirichlet(1, …, 1) weights on the reference rows, from `seed`).
    ///
    /// Why: the reference is one sample of the population the model was trained on, and live
    /// "no drift" data is another sample of that population, not of the reference. Windows
    /// drawn from the reference's own distribution sit far closer to it than a second sample
    /// would (on this data fewer than 0.2 % of per-feature KS tests reach p < 0.05), which
    /// hides the false alarms and shortens the detection delays the monitor would really
    /// show. A population drawn this way differs from the reference by sampling noise of the
    /// reference's own size, so window-vs-reference tests behave like two samples of one
    /// population (p-values close to uniform). The weights move the marginals, the category
    /// shares and the missing shares; the dependence (normal-score correlation) stays the
    /// reference's.
    pub fn fit_population(ds: &Dataset, seed: u64) -> anyhow::Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed ^ POPULATION_STREAM);
        let weights: Vec<f64> = (0..ds.n_rows())
            .map(|_| {
                let w: f64 = rng.sample(Exp1);
                // Exp(1) is 0 with probability 0 but may round there.
                w.max(f64::MIN_POSITIVE)
            })
            .collect();
        Self::fit_weighted(ds, Some(&weights))
    }

    fn fit_weighted(ds: &Dataset, weights: Option<&[f64]>) -> anyhow::Result<Self> {
        let d = ds.names().len();
        let n = ds.n_rows();
        if d == 0 || n < 3 {
            bail!("the reference needs at least one feature and three rows (has {d} and {n})");
        }
        let mut columns = Vec::with_capacity(d);
        let mut scores = Vec::with_capacity(d);
        for (i, (name, col)) in ds.names().iter().zip(ds.columns()).enumerate() {
            let column = fit_column(col, ds.kinds()[i], &ds.categories()[i], weights)
                .with_context(|| format!("feature {name}"))?;
            columns.push(column);
            scores.push(normal_scores(col));
        }
        let correlation = correlation(&scores);
        let chol = regularised_cholesky(&correlation, d)
            .context("the reference correlation matrix cannot be factored")?;
        Ok(Copula {
            names: ds.names().to_vec(),
            columns,
            correlation,
            chol,
        })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn dim(&self) -> usize {
        self.names.len()
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Every column's mean and sample sd (of its present values; NaN for a categorical
    /// column): the units of the numeric drift scenarios.
    pub fn means_sds(&self) -> (Vec<f64>, Vec<f64>) {
        self.columns
            .iter()
            .map(|c| {
                c.marginal()
                    .map_or((f64::NAN, f64::NAN), |m| (m.mean(), m.sd()))
            })
            .unzip()
    }

    /// Normal-score correlation between features `i` and `j`.
    pub fn correlation(&self, i: usize, j: usize) -> f64 {
        self.correlation[i * self.dim() + j]
    }

    /// Draws one row (in the reference's column order) into `out` (length [`Copula::dim`]):
    /// numbers, category codes, NaN where missing. `normals` is scratch space of the same
    /// length. The values come from `rng` (one standard normal per column) and their
    /// missingness from `missing_rng` (one uniform per column): two streams, so that a data
    /// set without missing values draws exactly the values it always did, and a scenario
    /// that makes a feature missing changes nothing else.
    pub fn sample_into<R: Rng + ?Sized, M: Rng + ?Sized>(
        &self,
        rng: &mut R,
        missing_rng: &mut M,
        normals: &mut [f64],
        out: &mut [f64],
    ) {
        self.sample_with(rng, missing_rng, normals, out, None);
    }

    /// [`Copula::sample_into`], with a drift scenario's `overrides` in force (a drifted
    /// row). The random numbers drawn are the same with or without them: a drifted row
    /// differs from the row the same seed gives without drift only where they apply.
    pub fn sample_with<R: Rng + ?Sized, M: Rng + ?Sized>(
        &self,
        rng: &mut R,
        missing_rng: &mut M,
        normals: &mut [f64],
        out: &mut [f64],
        overrides: Option<&DrawOverrides>,
    ) {
        let d = self.dim();
        for e in normals.iter_mut() {
            *e = rng.sample(StandardNormal);
        }
        for i in 0..d {
            let row = &self.chol[i * d..i * d + i + 1];
            let z: f64 = row.iter().zip(&normals[..=i]).map(|(l, e)| l * e).sum();
            let u = normal::cdf(z);
            out[i] = match &self.columns[i].values {
                Values::Numeric(m) => m.quantile(u),
                Values::Categorical { shares, .. } => {
                    let shares = overrides
                        .and_then(|o| o.shares.get(i).and_then(Option::as_ref))
                        .unwrap_or(shares);
                    shares.category(u) as f64
                }
            };
        }
        for (i, v) in out.iter_mut().enumerate().take(d) {
            let w: f64 = missing_rng.random();
            let p = overrides
                .and_then(|o| o.missing.get(i).copied().flatten())
                .unwrap_or(self.columns[i].missing);
            if w < p {
                *v = f64::NAN;
            }
        }
    }
}

/// The model of one column: its present values' marginal and its missing share.
fn fit_column(
    col: &[f64],
    kind: FeatureKind,
    categories: &[String],
    weights: Option<&[f64]>,
) -> anyhow::Result<Column> {
    let present: Vec<usize> = (0..col.len()).filter(|&i| !col[i].is_nan()).collect();
    if present.is_empty() {
        bail!("every reference value is missing");
    }
    let values: Vec<f64> = present.iter().map(|&i| col[i]).collect();
    let present_weights: Option<Vec<f64>> =
        weights.map(|w| present.iter().map(|&i| w[i]).collect());
    let missing = match weights {
        None => (col.len() - present.len()) as f64 / col.len() as f64,
        Some(w) => {
            let total: f64 = w.iter().sum();
            let lost: f64 = (0..col.len())
                .filter(|&i| col[i].is_nan())
                .map(|i| w[i])
                .sum();
            lost / total
        }
    };
    let values = match kind {
        FeatureKind::Numeric => {
            Values::Numeric(Marginal::fit_weighted(&values, present_weights.as_deref())?)
        }
        FeatureKind::Categorical => Values::Categorical {
            shares: Shares::fit_weighted(&values, categories.len(), present_weights.as_deref())?,
            categories: categories.to_vec(),
        },
    };
    Ok(Column { values, missing })
}

/// Φ⁻¹(rank / (n + 1)) with average ranks for ties, so tied values (and a category's
/// values) share a score; ranks and `n` count present values only, and a missing value's
/// score is NaN.
fn normal_scores(col: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..col.len()).filter(|&i| !col[i].is_nan()).collect();
    let n = order.len();
    order.sort_by(|&a, &b| col[a].total_cmp(&col[b]));
    let mut scores = vec![f64::NAN; col.len()];
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && col[order[j]] == col[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j share their average.
        let rank = (i + 1 + j) as f64 / 2.0;
        let z = normal::quantile(rank / (n as f64 + 1.0));
        for &k in &order[i..j] {
            scores[k] = z;
        }
        i = j;
    }
    scores
}

/// Pearson correlation matrix of the columns (row-major d × d); NaN marks a missing value,
/// and a pair with missing values is correlated over the rows where both are present.
fn correlation(cols: &[Vec<f64>]) -> Vec<f64> {
    if cols.iter().any(|c| c.iter().any(|v| v.is_nan())) {
        return pairwise_correlation(cols);
    }
    let d = cols.len();
    let centred: Vec<Vec<f64>> = cols
        .iter()
        .map(|c| {
            let mean = c.iter().sum::<f64>() / c.len() as f64;
            c.iter().map(|v| v - mean).collect()
        })
        .collect();
    let norms: Vec<f64> = centred
        .iter()
        .map(|c| c.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    let mut r = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let v = if i == j {
                1.0
            } else if norms[i] == 0.0 || norms[j] == 0.0 {
                // A constant feature is independent of everything.
                0.0
            } else {
                let dot: f64 = centred[i].iter().zip(&centred[j]).map(|(a, b)| a * b).sum();
                (dot / (norms[i] * norms[j])).clamp(-1.0, 1.0)
            };
            r[i * d + j] = v;
            r[j * d + i] = v;
        }
    }
    r
}

/// Pairwise-complete Pearson correlations (the matrix need not be positive definite: the
/// Cholesky step shrinks it when it is not).
fn pairwise_correlation(cols: &[Vec<f64>]) -> Vec<f64> {
    let d = cols.len();
    let mut r = vec![0.0; d * d];
    for i in 0..d {
        r[i * d + i] = 1.0;
        for j in 0..i {
            let pairs: Vec<(f64, f64)> = cols[i]
                .iter()
                .zip(&cols[j])
                .filter(|(a, b)| !a.is_nan() && !b.is_nan())
                .map(|(a, b)| (*a, *b))
                .collect();
            let v = pearson(&pairs);
            r[i * d + j] = v;
            r[j * d + i] = v;
        }
    }
    r
}

/// Pearson correlation of pairs, 0 when either side is constant or there are fewer than 3.
fn pearson(pairs: &[(f64, f64)]) -> f64 {
    if pairs.len() < 3 {
        return 0.0;
    }
    let n = pairs.len() as f64;
    let (ma, mb) = pairs
        .iter()
        .fold((0.0, 0.0), |(sa, sb), (a, b)| (sa + a / n, sb + b / n));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (a, b) in pairs {
        ab += (a - ma) * (b - mb);
        aa += (a - ma).powi(2);
        bb += (b - mb).powi(2);
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    (ab / (aa * bb).sqrt()).clamp(-1.0, 1.0)
}

/// Cholesky factor of `r`, shrinking it towards the identity ((1 - λ)·R + λ·I) by the
/// smallest λ that makes it positive definite: near-collinear features (radius, perimeter,
/// area) can make the sample matrix numerically singular, and pairwise correlations over
/// different rows need not be a correlation matrix at all.
fn regularised_cholesky(r: &[f64], d: usize) -> anyhow::Result<Vec<f64>> {
    // Up to the identity (λ = 1), which always factors: a pairwise-complete matrix (missing
    // values) can be further from positive definite than a complete one.
    for lambda in [
        0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 0.25, 0.5, 1.0,
    ] {
        let shrunk: Vec<f64> = (0..d * d)
            .map(|k| {
                let diag = if k / d == k % d { 1.0 } else { 0.0 };
                (1.0 - lambda) * r[k] + lambda * diag
            })
            .collect();
        if let Some(l) = cholesky(&shrunk, d) {
            if lambda > 0.0 {
                tracing::debug!(lambda, "correlation matrix shrunk towards the identity");
            }
            return Ok(l);
        }
    }
    bail!("not positive definite even shrunk to the identity (a non-finite correlation?)")
}

fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            if i == j {
                let v = a[i * d + i] - s;
                if v <= 1e-12 || !v.is_finite() {
                    return None;
                }
                l[i * d + j] = v.sqrt();
            } else {
                l[i * d + j] = (a[i * d + j] - s) / l[j * d + j];
            }
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_reconstructs() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let l = cholesky(&a, 2).unwrap();
        assert!((l[0] - 2.0).abs() < 1e-12);
        assert!((l[2] - 1.0).abs() < 1e-12);
        assert!((l[3] - 2f64.sqrt()).abs() < 1e-12);
        assert!(cholesky(&[1.0, 1.0, 1.0, 1.0], 2).is_none());
        assert!(regularised_cholesky(&[1.0, 1.0, 1.0, 1.0], 2).is_ok());
    }

    #[test]
    fn ties_share_a_score() {
        let s = normal_scores(&[3.0, 1.0, 3.0, 2.0]);
        assert_eq!(s[0], s[2]);
        assert!(s[1] < s[3] && s[3] < s[0]);
    }
}
