//! The demo model: a logistic regression fit on the reference data's label.
//!
//! It exists so that the monitor has a model to watch out of the box (`/v1/predict`,
//! the prototype's `/get-prediction`). The fit is deterministic: standardised features,
//! the objective of scikit-learn's default `LogisticRegression` (L2 penalty with C = 1, the
//! intercept unpenalised), solved by Newton's method to machine precision.

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("the label column must hold only 0 and 1")]
    Label,
    #[error("the label has {labels} rows but the features have {rows}")]
    Rows { labels: usize, rows: usize },
    #[error("no rows to fit on")]
    Empty,
    #[error("the fit did not converge")]
    NoConvergence,
    #[error("expected {expected} features, got {got}")]
    Arity { expected: usize, got: usize },
}

#[derive(Clone, Debug)]
pub struct LogisticModel {
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// Intercept first, then one weight per standardised feature.
    coef: Vec<f64>,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Solves `a x = b` for a symmetric positive definite `a` (Cholesky), in place.
// Index loops read like the textbook algorithm; iterator chains would hide it.
#[allow(clippy::needless_range_loop)]
fn solve_spd(a: &mut [Vec<f64>], b: &mut [f64]) -> Option<()> {
    let n = b.len();
    for j in 0..n {
        let mut d = a[j][j];
        for k in 0..j {
            d -= a[j][k] * a[j][k];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j][j] = d;
        for i in j + 1..n {
            let mut s = a[i][j];
            for k in 0..j {
                s -= a[i][k] * a[j][k];
            }
            a[i][j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i][k] * b[k];
        }
        b[i] = s / a[i][i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k][i] * b[k];
        }
        b[i] = s / a[i][i];
    }
    Some(())
}

impl LogisticModel {
    /// Fits on feature columns (`columns[j][i]` = feature j of row i) and 0/1 labels.
    #[allow(clippy::needless_range_loop)]
    pub fn fit(columns: &[Vec<f64>], labels: &[f64]) -> Result<Self, ModelError> {
        let n = labels.len();
        if n == 0 || columns.is_empty() {
            return Err(ModelError::Empty);
        }
        if let Some(c) = columns.iter().find(|c| c.len() != n) {
            return Err(ModelError::Rows {
                labels: n,
                rows: c.len(),
            });
        }
        if labels.iter().any(|&y| y != 0.0 && y != 1.0) {
            return Err(ModelError::Label);
        }
        let p = columns.len();
        let mut mean = Vec::with_capacity(p);
        let mut scale = Vec::with_capacity(p);
        for c in columns {
            let m = c.iter().sum::<f64>() / n as f64;
            // Population standard deviation, as scikit-learn's StandardScaler.
            let sd = (c.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64).sqrt();
            mean.push(m);
            scale.push(if sd > 0.0 { sd } else { 1.0 });
        }
        let x: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                std::iter::once(1.0)
                    .chain((0..p).map(|j| (columns[j][i] - mean[j]) / scale[j]))
                    .collect()
            })
            .collect();
        let mut w = vec![0.0; p + 1];
        for _ in 0..100 {
            // Gradient and Hessian of sum(logloss) + 0.5 * |w[1..]|^2.
            let mut g = vec![0.0; p + 1];
            let mut h = vec![vec![0.0; p + 1]; p + 1];
            for (xi, &yi) in x.iter().zip(labels) {
                let z: f64 = xi.iter().zip(&w).map(|(a, b)| a * b).sum();
                let mu = sigmoid(z);
                let r = mu * (1.0 - mu);
                for a in 0..=p {
                    g[a] += (mu - yi) * xi[a];
                    for b in 0..=a {
                        h[a][b] += r * xi[a] * xi[b];
                    }
                }
            }
            for a in 1..=p {
                g[a] += w[a];
                h[a][a] += 1.0;
            }
            for a in 0..=p {
                for b in 0..a {
                    h[b][a] = h[a][b];
                }
            }
            let gnorm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
            if gnorm < 1e-10 {
                return Ok(LogisticModel {
                    mean,
                    scale,
                    coef: w,
                });
            }
            solve_spd(&mut h, &mut g).ok_or(ModelError::NoConvergence)?;
            for a in 0..=p {
                w[a] -= g[a];
            }
        }
        Err(ModelError::NoConvergence)
    }

    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Probability of class 1 for one row of raw (unstandardised) features. Any finite row
    /// gets a finite probability: a standardised value is capped at ±1e150 (far beyond any
    /// data, where the answer is 0 or 1 anyway), so that ±1e308 inputs cannot overflow to
    /// infinities of both signs, whose sum would be NaN.
    pub fn probability(&self, row: &[f64]) -> Result<f64, ModelError> {
        if row.len() != self.mean.len() {
            return Err(ModelError::Arity {
                expected: self.mean.len(),
                got: row.len(),
            });
        }
        let z = self.coef[0]
            + row
                .iter()
                .zip(&self.mean)
                .zip(&self.scale)
                .zip(&self.coef[1..])
                .map(|(((v, m), s), w)| ((v - m) / s).clamp(-1e150, 1e150) * w)
                .sum::<f64>();
        Ok(sigmoid(z))
    }

    /// Share of rows whose predicted class (probability >= 0.5) equals the label.
    pub fn accuracy(&self, columns: &[Vec<f64>], labels: &[f64]) -> f64 {
        let correct = (0..labels.len())
            .filter(|&i| {
                let row: Vec<f64> = columns.iter().map(|c| c[i]).collect();
                let class = self
                    .probability(&row)
                    .map_or(-1.0, |p| (p >= 0.5) as u8 as f64);
                class == labels[i]
            })
            .count();
        correct as f64 / labels.len().max(1) as f64
    }

    /// The default model: fit on the embedded breast cancer data set.
    pub fn breast_cancer() -> Result<Self, crate::Error> {
        let (features, labels) = breast_cancer_xy()?;
        Ok(Self::fit(features.columns(), &labels)?)
    }
}

/// The embedded data set split into features and the 0/1 label.
pub fn breast_cancer_xy() -> Result<(crate::Dataset, Vec<f64>), crate::DatasetError> {
    let mut ds = crate::Dataset::from_csv(crate::dataset::BREAST_CANCER_CSV.as_bytes(), &[])?;
    let labels = ds
        .take_column(crate::dataset::DEFAULT_TARGET)
        .unwrap_or_default();
    Ok((ds, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_the_default_data_set_well_and_deterministically() {
        let (ds, y) = breast_cancer_xy().unwrap();
        let m = LogisticModel::fit(ds.columns(), &y).unwrap();
        let acc = m.accuracy(ds.columns(), &y);
        // scikit-learn 1.x: StandardScaler + LogisticRegression() scores 0.9877 on the
        // training set (562 of 569).
        assert!(acc > 0.98, "accuracy {acc}");
        let again = LogisticModel::fit(ds.columns(), &y).unwrap();
        assert_eq!(m.coef, again.coef);
        let row: Vec<f64> = ds.columns().iter().map(|c| c[0]).collect();
        let p = m.probability(&row).unwrap();
        assert!(p < 0.5, "row 0 is malignant (target 0), p = {p}");
        assert!(m.probability(&row[1..]).is_err());
    }

    #[test]
    fn rejects_bad_labels() {
        let cols = vec![vec![1.0, 2.0]];
        assert_eq!(
            LogisticModel::fit(&cols, &[0.0, 2.0]).unwrap_err(),
            ModelError::Label
        );
        assert!(LogisticModel::fit(&cols, &[0.0]).is_err());
    }

    #[test]
    fn finite_extreme_rows_get_a_finite_probability() {
        let m = LogisticModel::breast_cancer().unwrap();
        let n = m.n_features();
        for row in [
            vec![1e308; n],
            vec![-1e308; n],
            (0..n)
                .map(|i| if i % 2 == 0 { 1e308 } else { -1e308 })
                .collect::<Vec<_>>(),
            vec![f64::MIN_POSITIVE; n],
        ] {
            let p = m.probability(&row).unwrap();
            assert!((0.0..=1.0).contains(&p), "{p}");
        }
    }
}
