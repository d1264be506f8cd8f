//! The alarm: which features of a monitor are flagged, and when the data set as a whole
//! counts as drifted. This module is the only place that decides; workers call it before
//! recording, and the store only stores what it decided.
//!
//! A monitor with 30 features tested at alpha = 0.05 each flags at least one feature in
//! about 79% of evaluations when nothing drifted; the corrections bring the family-wise
//! error (Bonferroni) or the false discovery rate (Benjamini-Hochberg) back to alpha.
//! The rules follow statsmodels' `multipletests` (`<=` comparisons), which is what users
//! compare with.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Correction {
    /// Family-wise error control: flag p <= alpha / m.
    #[default]
    Bonferroni,
    /// False discovery rate control (step-up).
    #[serde(alias = "benjamini-hochberg", alias = "fdr_bh")]
    Bh,
    /// Each feature tested at alpha on its own (the Python prototype's behaviour).
    None,
}

impl Correction {
    pub fn as_str(self) -> &'static str {
        match self {
            Correction::Bonferroni => "bonferroni",
            Correction::Bh => "bh",
            Correction::None => "none",
        }
    }
}

impl Correction {
    /// Whether a feature's flag depends on its own p-value only. Bonferroni and `none` are
    /// local; Benjamini-Hochberg ranks every feature's latest p-value, so recording one
    /// feature may flip the flags of others.
    pub fn is_local(self) -> bool {
        !matches!(self, Correction::Bh)
    }

    /// The p-value at or below which one feature is flagged, for the local rules; `None`
    /// for BH, whose cut-off depends on the other features.
    pub fn p_value_threshold(self, alpha: f64, features: usize) -> Option<f64> {
        match self {
            Correction::Bonferroni => Some(alpha / features.max(1) as f64),
            Correction::None => Some(alpha),
            Correction::Bh => None,
        }
    }
}

/// The fewest flagged features (at least one) from which a monitor of `features` features
/// counts as drifted as a whole: the smallest k with k / features >= `share`.
pub fn dataset_drift_min_features(share: f64, features: usize) -> usize {
    let n = features.max(1);
    (1..=n)
        .find(|&k| k as f64 / n as f64 >= share)
        .unwrap_or(n + 1)
}

impl fmt::Display for Correction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Correction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "bonferroni" => Ok(Correction::Bonferroni),
            "bh" | "benjamini-hochberg" | "fdr_bh" => Ok(Correction::Bh),
            "none" => Ok(Correction::None),
            other => Err(format!(
                "unknown correction `{other}` (expected bonferroni, bh or none)"
            )),
        }
    }
}

/// Which of `pvalues` are flagged at level `alpha`.
///
/// `None` entries (features not evaluated yet) and NaN p-values are never flagged but
/// still count in `m`, so a partly evaluated monitor is judged conservatively.
pub fn decide(pvalues: &[Option<f64>], alpha: f64, correction: Correction) -> Vec<bool> {
    let m = pvalues.len();
    let valid = |p: &Option<f64>| p.filter(|p| !p.is_nan());
    match correction {
        Correction::None => pvalues
            .iter()
            .map(|p| valid(p).is_some_and(|p| p <= alpha))
            .collect(),
        Correction::Bonferroni => pvalues
            .iter()
            .map(|p| valid(p).is_some_and(|p| p * m as f64 <= alpha))
            .collect(),
        Correction::Bh => {
            let mut order: Vec<(f64, usize)> = pvalues
                .iter()
                .enumerate()
                .filter_map(|(i, p)| valid(p).map(|p| (p, i)))
                .collect();
            order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            // Step-up: the largest rank k with p_(k) <= k/m * alpha; ranks 1..=k are flagged.
            let cutoff = order
                .iter()
                .enumerate()
                .filter(|(rank, (p, _))| *p <= (*rank as f64 + 1.0) / m as f64 * alpha)
                .map(|(rank, _)| rank + 1)
                .next_back()
                .unwrap_or(0);
            let mut flags = vec![false; m];
            for &(_, i) in order.iter().take(cutoff) {
                flags[i] = true;
            }
            flags
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bonferroni_divides_alpha_by_the_number_of_features() {
        let p = [Some(0.001), Some(0.02), Some(0.5), None];
        assert_eq!(
            decide(&p, 0.05, Correction::Bonferroni),
            [true, false, false, false]
        );
        assert_eq!(
            decide(&p, 0.05, Correction::None),
            [true, true, false, false]
        );
    }

    #[test]
    fn bh_matches_statsmodels_example() {
        // statsmodels.stats.multitest.multipletests(p, 0.05, 'fdr_bh')[0]
        let p = [0.01, 0.04, 0.03, 0.005, 0.2].map(Some);
        assert_eq!(
            decide(&p, 0.05, Correction::Bh),
            [true, true, true, true, false]
        );
        let p = [0.01, 0.041, 0.045, 0.2, 0.5].map(Some);
        assert_eq!(
            decide(&p, 0.05, Correction::Bh),
            [true, false, false, false, false]
        );
    }

    #[test]
    fn bh_step_up_flags_below_a_later_passing_rank() {
        // p_(2) = 0.03 > 2/4*0.05 = 0.025 fails on its own, but p_(3) = 0.035 <= 0.0375 passes,
        // so ranks 1..=3 are flagged.
        let p = [0.001, 0.03, 0.035, 0.9].map(Some);
        assert_eq!(decide(&p, 0.05, Correction::Bh), [true, true, true, false]);
    }

    #[test]
    fn nan_is_never_flagged() {
        let p = [Some(f64::NAN), Some(0.0)];
        assert_eq!(decide(&p, 0.05, Correction::Bh), [false, true]);
    }

    #[test]
    fn local_rules_match_decide_one_feature_at_a_time() {
        for corr in [Correction::Bonferroni, Correction::None] {
            let t = corr.p_value_threshold(0.05, 4).unwrap();
            for p in [0.0, 0.0125, 0.0126, 0.05, 0.051, 1.0] {
                let mut ps = vec![None; 4];
                ps[2] = Some(p);
                assert_eq!(decide(&ps, 0.05, corr)[2], p <= t, "{corr} p={p}");
            }
        }
        assert!(!Correction::Bh.is_local());
    }

    #[test]
    fn dataset_drift_needs_the_share_and_at_least_one_feature() {
        // (share, features, fewest flagged features)
        for (share, n, k) in [(0.5, 30, 15), (0.5, 5, 3), (0.01, 5, 1), (1.0, 5, 5)] {
            assert_eq!(dataset_drift_min_features(share, n), k, "{share} of {n}");
        }
    }

    #[test]
    fn parses_names() {
        assert_eq!("BH".parse::<Correction>(), Ok(Correction::Bh));
        assert!("holm".parse::<Correction>().is_err());
    }
}
