//! Drift scenarios: what happens to generated rows from the onset on.
//!
//! Every scenario is expressed in the reference's own units (its mean and sample standard
//! deviation per feature), so one magnitude means the same on `mean_area` (hundreds) and on
//! `mean_smoothness` (tenths).

use anyhow::bail;

/// How the drift features change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftKind {
    /// Mean shift: `x + magnitude · sd`.
    Shift,
    /// Variance change around the reference mean: `mean + (1 + magnitude) · (x − mean)`.
    Scale,
    /// The two drift features exchange their values (see [`SwapValues`]).
    Swap,
    /// A shift that ramps linearly from 0 to `magnitude · sd` over `ramp_rows` rows.
    Gradual,
}

/// What a swap exchanges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SwapValues {
    /// Standardised values: each feature keeps its own mean and sd but takes the other's
    /// shape and correlations (a subtle drift that only the shape of the distribution shows).
    Standardized,
    /// Raw values, as a pipeline that mixed up two columns would send (on features of
    /// different scales, as blatant as a huge shift).
    Raw,
}

/// A drift scenario over the generator's columns.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub kind: DriftKind,
    /// Column indices of the drifted features.
    pub features: Vec<usize>,
    pub magnitude: f64,
    /// Rows generated before the drift starts: row `after` (0-based) is the first drifted.
    pub after: u64,
    pub ramp_rows: u64,
    pub swap: SwapValues,
    /// Reference mean and sd of every column.
    means: Vec<f64>,
    sds: Vec<f64>,
}

impl Scenario {
    /// Checks the combination of kind, features and magnitude against the columns' stats.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: DriftKind,
        features: Vec<usize>,
        magnitude: f64,
        after: u64,
        ramp_rows: u64,
        swap: SwapValues,
        means: Vec<f64>,
        sds: Vec<f64>,
    ) -> anyhow::Result<Self> {
        if features.is_empty() {
            bail!("no drift feature given");
        }
        if let Some(&bad) = features.iter().find(|&&f| f >= means.len()) {
            bail!("drift feature index {bad} out of range");
        }
        if !magnitude.is_finite() {
            bail!("--drift-magnitude must be finite");
        }
        match kind {
            DriftKind::Swap if features.len() != 2 => {
                bail!(
                    "--drift-kind swap needs exactly 2 drift features, got {}",
                    features.len()
                )
            }
            DriftKind::Scale if magnitude <= -1.0 => {
                bail!("--drift-kind scale needs --drift-magnitude > -1 (the sd is multiplied by 1 + magnitude), got {magnitude}")
            }
            DriftKind::Gradual if ramp_rows == 0 => bail!("--ramp-rows must be at least 1"),
            _ => {}
        }
        Ok(Scenario {
            kind,
            features,
            magnitude,
            after,
            ramp_rows,
            swap,
            means,
            sds,
        })
    }

    /// Whether generated row `row` (0-based) is past the onset.
    pub fn is_drifted(&self, row: u64) -> bool {
        row >= self.after
    }

    /// Applies the drift to generated row `row` (all columns, reference order).
    pub fn apply(&self, row: u64, values: &mut [f64]) {
        if !self.is_drifted(row) {
            return;
        }
        match self.kind {
            DriftKind::Shift => self.shift(values, 1.0),
            DriftKind::Gradual => {
                let done = (row - self.after + 1) as f64 / self.ramp_rows as f64;
                self.shift(values, done.min(1.0));
            }
            DriftKind::Scale => {
                for &f in &self.features {
                    values[f] =
                        self.means[f] + (1.0 + self.magnitude) * (values[f] - self.means[f]);
                }
            }
            DriftKind::Swap => {
                let (a, b) = (self.features[0], self.features[1]);
                match self.swap {
                    SwapValues::Raw => values.swap(a, b),
                    SwapValues::Standardized => {
                        let za = standardise(values[a], self.means[a], self.sds[a]);
                        let zb = standardise(values[b], self.means[b], self.sds[b]);
                        values[a] = self.means[a] + zb * self.sds[a];
                        values[b] = self.means[b] + za * self.sds[b];
                    }
                }
            }
        }
    }

    fn shift(&self, values: &mut [f64], share: f64) {
        for &f in &self.features {
            values[f] += share * self.magnitude * self.sds[f];
        }
    }
}

fn standardise(x: f64, mean: f64, sd: f64) -> f64 {
    if sd > 0.0 {
        (x - mean) / sd
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(kind: DriftKind, features: Vec<usize>, magnitude: f64) -> anyhow::Result<Scenario> {
        Scenario::new(
            kind,
            features,
            magnitude,
            10,
            4,
            SwapValues::Standardized,
            vec![0.0, 10.0],
            vec![1.0, 2.0],
        )
    }

    #[test]
    fn shift_scale_swap_gradual() {
        let s = scenario(DriftKind::Shift, vec![1], 0.5).unwrap();
        let mut v = [1.0, 10.0];
        s.apply(9, &mut v);
        assert_eq!(v, [1.0, 10.0], "before onset");
        s.apply(10, &mut v);
        assert_eq!(v, [1.0, 11.0]);

        let s = scenario(DriftKind::Scale, vec![1], 1.0).unwrap();
        let mut v = [1.0, 12.0];
        s.apply(10, &mut v);
        assert_eq!(v, [1.0, 14.0]);

        let s = scenario(DriftKind::Swap, vec![0, 1], 1.0).unwrap();
        let mut v = [1.0, 14.0];
        s.apply(10, &mut v);
        assert_eq!(v, [2.0, 12.0]);

        let s = scenario(DriftKind::Gradual, vec![0], 4.0).unwrap();
        let mut v = [0.0, 0.0];
        s.apply(10, &mut v);
        assert_eq!(v[0], 1.0);
        let mut v = [0.0, 0.0];
        s.apply(100, &mut v);
        assert_eq!(v[0], 4.0);
    }

    #[test]
    fn bad_combinations() {
        assert!(scenario(DriftKind::Swap, vec![0], 1.0).is_err());
        assert!(scenario(DriftKind::Scale, vec![0], -1.0).is_err());
        assert!(scenario(DriftKind::Shift, vec![], 1.0).is_err());
        assert!(scenario(DriftKind::Shift, vec![5], 1.0).is_err());
    }
}
