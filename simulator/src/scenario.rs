//! Drift scenarios: what happens to generated rows from the onset on.
//!
//! The numeric scenarios are expressed in the reference's own units (its mean and sample
//! standard deviation per feature), so one magnitude means the same on `mean_area`
//! (hundreds) and on `mean_smoothness` (tenths). The categorical and missing-value
//! scenarios set a share (of a category among present values, or of missing values among
//! all), so their magnitude is a probability.

use crate::copula::{Copula, DrawOverrides};
use crate::marginal::Shares;
use anyhow::bail;
use drift_core::feature::canonical_category;
use drift_core::FeatureKind;

/// Name of the category `new-category` adds when `--drift-category` names none.
pub const DEFAULT_NEW_CATEGORY: &str = "unseen";

/// How the drift features change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftKind {
    /// Mean shift: `x + magnitude · sd`.
    Shift,
    /// Variance change around the reference mean: `mean + (1 + magnitude) · (x − mean)`.
    Scale,
    /// The two drift features exchange their values (see [`SwapValues`]).
    Swap,
    /// A shift that ramps linearly from 0 to `magnitude · sd` over `ramp_rows` rows.
    Gradual,
    /// A category's share (of the present values) becomes `magnitude`; the other
    /// categories keep their proportions among the rest.
    CategoryShare,
    /// A category the reference never had appears with share `magnitude`; the reference's
    /// categories keep their proportions among the rest.
    NewCategory,
    /// The share of missing values becomes `magnitude` (any kind of feature).
    Missing,
}

impl DriftKind {
    /// The name the command line takes.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Shift => "shift",
            DriftKind::Scale => "scale",
            DriftKind::Swap => "swap",
            DriftKind::Gradual => "gradual",
            DriftKind::CategoryShare => "category-share",
            DriftKind::NewCategory => "new-category",
            DriftKind::Missing => "missing",
        }
    }

    /// The kind of feature it changes (`None`: any).
    pub fn feature_kind(self) -> Option<FeatureKind> {
        match self {
            DriftKind::Shift | DriftKind::Scale | DriftKind::Swap | DriftKind::Gradual => {
                Some(FeatureKind::Numeric)
            }
            DriftKind::CategoryShare | DriftKind::NewCategory => Some(FeatureKind::Categorical),
            DriftKind::Missing => None,
        }
    }

    /// Whether its magnitude is a share (a probability in [0, 1]).
    pub fn is_share(self) -> bool {
        matches!(
            self,
            DriftKind::CategoryShare | DriftKind::NewCategory | DriftKind::Missing
        )
    }
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

/// A drift scenario as asked for, before it is checked against a model.
#[derive(Clone, Debug)]
pub struct ScenarioSpec {
    pub kind: DriftKind,
    /// Column indices of the drifted features.
    pub features: Vec<usize>,
    pub magnitude: f64,
    pub after: u64,
    pub ramp_rows: u64,
    pub swap: SwapValues,
    /// `category-share`: the category whose share moves (default: each feature's most
    /// frequent); `new-category`: the new category's name (default [`DEFAULT_NEW_CATEGORY`]).
    pub category: Option<String>,
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
    /// How drifted rows are drawn (the share kinds).
    overrides: Option<DrawOverrides>,
    /// Per drift feature, the category whose share moves or that appears.
    categories: Vec<String>,
}

impl Scenario {
    /// A numeric or `missing` scenario over columns with these reference means and sds (the
    /// categorical kinds need the model's shares: [`Scenario::for_model`]).
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
        if matches!(kind, DriftKind::CategoryShare | DriftKind::NewCategory) {
            bail!(
                "--drift-kind {} needs the model's category shares (Scenario::for_model)",
                kind.as_str()
            );
        }
        check(kind, &features, magnitude, ramp_rows, means.len())?;
        let overrides = (kind == DriftKind::Missing).then(|| {
            let mut o = DrawOverrides::none(means.len());
            for &f in &features {
                o.missing[f] = Some(magnitude);
            }
            o
        });
        Ok(Scenario {
            kind,
            features,
            magnitude,
            after,
            ramp_rows,
            swap,
            means,
            sds,
            overrides,
            categories: Vec::new(),
        })
    }

    /// Any scenario, checked against the model's features: their kinds, and for the
    /// categorical kinds their categories and shares.
    pub fn for_model(spec: ScenarioSpec, model: &Copula) -> anyhow::Result<Self> {
        let ScenarioSpec {
            kind,
            features,
            magnitude,
            after,
            ramp_rows,
            swap,
            category,
        } = spec;
        let d = model.dim();
        check(kind, &features, magnitude, ramp_rows, d)?;
        if let Some(want) = kind.feature_kind() {
            for &f in &features {
                let have = model.columns()[f].kind();
                if have != want {
                    bail!(
                        "--drift-kind {} changes {want} features, and {:?} is {have} ({})",
                        kind.as_str(),
                        model.names()[f],
                        match want {
                            FeatureKind::Numeric => "use category-share, new-category or missing",
                            FeatureKind::Categorical =>
                                "use shift, scale, swap, gradual or missing",
                        }
                    );
                }
            }
        }
        let (means, sds) = model.means_sds();
        let mut categories = Vec::new();
        let overrides = match kind {
            DriftKind::Missing => {
                let mut o = DrawOverrides::none(d);
                for &f in &features {
                    o.missing[f] = Some(magnitude);
                }
                Some(o)
            }
            DriftKind::CategoryShare | DriftKind::NewCategory => {
                let mut o = DrawOverrides::none(d);
                for &f in &features {
                    let column = &model.columns()[f];
                    let name = &model.names()[f];
                    let Some(shares) = column.shares() else {
                        bail!("{name:?} has no categories");
                    };
                    let (drifted, label) = if kind == DriftKind::CategoryShare {
                        moved_share(
                            name,
                            column.categories(),
                            shares,
                            category.as_deref(),
                            magnitude,
                        )?
                    } else {
                        new_category(
                            name,
                            column.categories(),
                            shares,
                            category.as_deref(),
                            magnitude,
                        )?
                    };
                    o.shares[f] = Some(drifted);
                    categories.push(label);
                }
                Some(o)
            }
            _ => None,
        };
        Ok(Scenario {
            kind,
            features,
            magnitude,
            after,
            ramp_rows,
            swap,
            means,
            sds,
            overrides,
            categories,
        })
    }

    /// Whether generated row `row` (0-based) is past the onset.
    pub fn is_drifted(&self, row: u64) -> bool {
        row >= self.after
    }

    /// How drifted rows are drawn, for the share kinds (the numeric kinds change values
    /// after the draw instead, in [`Scenario::apply`]).
    pub fn overrides(&self) -> Option<&DrawOverrides> {
        self.overrides.as_ref()
    }

    /// Per drift feature, the category whose share moves (`category-share`) or that
    /// appears (`new-category`); empty for the other kinds.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// The category `new-category` adds to column `f`, if it is one of its features.
    pub fn new_category(&self, f: usize) -> Option<&str> {
        if self.kind != DriftKind::NewCategory {
            return None;
        }
        let k = self.features.iter().position(|&g| g == f)?;
        self.categories.get(k).map(String::as_str)
    }

    /// Applies a numeric drift to generated row `row` (all columns, reference order); the
    /// share kinds act through [`Scenario::overrides`] and leave values alone here.
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
            DriftKind::CategoryShare | DriftKind::NewCategory | DriftKind::Missing => {}
        }
    }

    fn shift(&self, values: &mut [f64], share: f64) {
        for &f in &self.features {
            values[f] += share * self.magnitude * self.sds[f];
        }
    }
}

/// The checks that need no model: features, magnitude and ramp.
fn check(
    kind: DriftKind,
    features: &[usize],
    magnitude: f64,
    ramp_rows: u64,
    d: usize,
) -> anyhow::Result<()> {
    if features.is_empty() {
        bail!("no drift feature given");
    }
    if let Some(&bad) = features.iter().find(|&&f| f >= d) {
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
        k if k.is_share() && !(0.0..=1.0).contains(&magnitude) => {
            bail!(
                "--drift-kind {} takes a share: --drift-magnitude must be in [0, 1], got {magnitude}",
                k.as_str()
            )
        }
        _ => {}
    }
    Ok(())
}

/// `category-share`: `category` (or the most frequent) gets share `target`, the others
/// keep their proportions among the rest.
fn moved_share(
    feature: &str,
    categories: &[String],
    shares: &Shares,
    category: Option<&str>,
    target: f64,
) -> anyhow::Result<(Shares, String)> {
    let p = shares.shares();
    let c = match category {
        Some(want) => {
            let want = canonical_category(want);
            categories.iter().position(|c| *c == want).ok_or_else(|| {
                anyhow::anyhow!(
                    "--drift-category {want:?} is not a category of {feature:?} (its categories: {})",
                    categories.join(", ")
                )
            })?
        }
        // The most frequent; the first by name on a tie.
        None => (0..p.len()).fold(0, |best, i| if p[i] > p[best] { i } else { best }),
    };
    let rest: f64 = (0..p.len()).filter(|&i| i != c).map(|i| p[i]).sum();
    let others = p.len() - 1;
    if others == 0 && target < 1.0 {
        bail!(
            "{feature:?} has one category only: its share cannot move (use --drift-kind new-category)"
        );
    }
    let mass: Vec<f64> = (0..p.len())
        .map(|i| {
            if i == c {
                target
            } else if rest > 0.0 {
                p[i] / rest * (1.0 - target)
            } else {
                // Every reference value was `c`: the rest is spread evenly.
                (1.0 - target) / others as f64
            }
        })
        .collect();
    Ok((Shares::new(mass)?, categories[c].clone()))
}

/// `new-category`: one more category, with share `target`; the reference's keep their
/// proportions among the rest.
fn new_category(
    feature: &str,
    categories: &[String],
    shares: &Shares,
    name: Option<&str>,
    target: f64,
) -> anyhow::Result<(Shares, String)> {
    let name = canonical_category(name.unwrap_or(DEFAULT_NEW_CATEGORY));
    if name.is_empty() {
        bail!("--drift-category must not be empty");
    }
    if categories.contains(&name) {
        bail!("--drift-category {name:?} is already a category of {feature:?}: name one the reference never had");
    }
    if target == 0.0 {
        bail!("--drift-kind new-category needs --drift-magnitude > 0 (the new category's share)");
    }
    let mut mass: Vec<f64> = shares.shares().iter().map(|s| s * (1.0 - target)).collect();
    mass.push(target);
    Ok((Shares::new(mass)?, name))
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
