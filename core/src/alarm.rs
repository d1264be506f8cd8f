//! The alarm: which features of a monitor are flagged, when a flag starts an alarm
//! episode, and when the data set as a whole counts as drifted. This module is the only
//! place that decides; workers call it before recording, and the store only stores what it
//! decided (the record script applies [`starts_episode`] to the stored last exceedance,
//! and a store test checks that it agrees).
//!
//! A monitor re-tests every feature every `stride` rows, forever, so a rule that bounds the
//! error of one evaluation (Bonferroni, Benjamini-Hochberg) still raises a false alarm every
//! few dozen rounds of a stream. The default rule, [`Correction::Ert`], bounds false alarms
//! over the stream instead: a feature is flagged when its KS statistic reaches a threshold
//! ([`ert_threshold`]) chosen so that, with probability `reference_confidence` over the draw
//! of the reference, a stream with no drift has at most one false-alarm round per `ert`
//! rounds in expectation (the derivation is in the README). The per-evaluation rules follow
//! statsmodels' `multipletests` (`<=` comparisons), which is what users compare with.

use crate::ks::kolmogorov_isf;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Correction {
    /// Expected rounds between false alarms: flag D >= the feature's threshold.
    #[default]
    Ert,
    /// Family-wise error control of one evaluation: flag p <= alpha / m.
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
            Correction::Ert => "ert",
            Correction::Bonferroni => "bonferroni",
            Correction::Bh => "bh",
            Correction::None => "none",
        }
    }
}

impl Correction {
    /// Whether a feature's flag depends on its own result only. `ert`, Bonferroni and `none`
    /// are local; Benjamini-Hochberg ranks every feature's latest p-value, so recording one
    /// feature may flip the flags of others.
    pub fn is_local(self) -> bool {
        !matches!(self, Correction::Bh)
    }

    /// The p-value at or below which one feature is flagged, for the per-evaluation local
    /// rules; `None` for BH, whose cut-off depends on the other features, and for `ert`,
    /// which decides on the statistic.
    pub fn p_value_threshold(self, alpha: f64, features: usize) -> Option<f64> {
        match self {
            Correction::Bonferroni => Some(alpha / features.max(1) as f64),
            Correction::None => Some(alpha),
            Correction::Bh | Correction::Ert => None,
        }
    }
}

/// Signals tested for every feature each round: its distribution (KS or total variation)
/// and its missing share.
pub const SIGNALS: usize = 2;

/// Tests per round of a monitor of `features` features, over which the `ert` rule splits
/// its false-alarm budget (a union bound: each test gets `1 / (ert * tests)`).
pub fn tests_per_round(features: usize) -> usize {
    SIGNALS * features.max(1)
}

/// A feature's p-value for the per-evaluation rules: the Bonferroni combination of its
/// signals' p-values, `min(1, SIGNALS * min p)`, so that Bonferroni over features is
/// Bonferroni over every signal, and a feature is the unit BH discovers. Signals without
/// a p-value (nothing to test) count in `SIGNALS` but never lower the minimum; NaN when no
/// signal has one.
pub fn feature_p_value(signal_p_values: impl IntoIterator<Item = Option<f64>>) -> f64 {
    let min = signal_p_values
        .into_iter()
        .flatten()
        .filter(|p| !p.is_nan())
        .fold(f64::INFINITY, f64::min);
    if min.is_finite() {
        (min * SIGNALS as f64).min(1.0)
    } else {
        f64::NAN
    }
}

/// The KS-statistic threshold of the `ert` rule for one feature:
/// `c = K_n^-1(1 - delta / d) + K_m^-1(1 - 1 / (ert d))`, with `K_k` the exact distribution of
/// the one-sample two-sided statistic of `k` rows ([`kolmogorov_isf`]), `n` the feature's
/// reference rows, `m` the window, `d` the monitor's features and `delta = 1 - confidence`.
///
/// Why it holds (README, "The alarm over a stream"): with probability at least `1 - delta`
/// every feature's reference ECDF is within the first term of its population's CDF; then a
/// statistic of at least `c` puts the window's ECDF at least the second term away from the
/// population, which happens with probability at most `1 / (ert d)` per feature and round.
/// Summed over features and rounds, `H` no-drift rounds hold at most `H / ert` false-alarm
/// rounds in expectation, whatever the dependence between features or overlapping windows.
///
/// The exact quantiles are at most the DKW-Massart closed form ([`massart_threshold`]) and
/// make the same statement; at the defaults (569 reference rows, window 500, 30 features)
/// they give 0.1935 instead of 0.1943.
pub fn ert_threshold(
    reference_rows: usize,
    window: usize,
    tests: usize,
    ert: f64,
    confidence: f64,
) -> f64 {
    let d = tests.max(1) as f64;
    kolmogorov_isf((1.0 - confidence) / d, reference_rows) + kolmogorov_isf(1.0 / (ert * d), window)
}

/// The Dvoretzky-Kiefer-Wolfowitz bound with Massart's constant for the same two terms:
/// `sqrt(ln(2d/delta) / 2n) + sqrt(ln(2 ert d) / 2m)`. A closed form to check
/// [`ert_threshold`] by hand; it is never smaller.
pub fn massart_threshold(
    reference_rows: usize,
    window: usize,
    features: usize,
    ert: f64,
    confidence: f64,
) -> f64 {
    let d = features.max(1) as f64;
    let delta = 1.0 - confidence;
    ((2.0 * d / delta).ln() / (2.0 * reference_rows as f64)).sqrt()
        + ((2.0 * ert * d).ln() / (2.0 * window as f64)).sqrt()
}

/// Rounds of one feature that must pass without an exceedance before the next one starts a
/// new alarm episode: `ceil(window / stride)`, the rounds over which one unusual stretch of
/// rows stays in the window.
pub fn episode_lookback(window: usize, stride: usize) -> u64 {
    window.div_ceil(stride.max(1)) as u64
}

/// Whether an exceedance at round `round` of a feature starts an alarm episode: none in the
/// previous `lookback` rounds of that feature. There are never more episodes than
/// exceedances, so the stream guarantee on exceedances holds for episodes and alerts.
pub fn starts_episode(last_exceedance: Option<u64>, round: u64, lookback: u64) -> bool {
    last_exceedance.is_none_or(|last| round.saturating_sub(last) > lookback)
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
            "ert" => Ok(Correction::Ert),
            "bonferroni" => Ok(Correction::Bonferroni),
            "bh" | "benjamini-hochberg" | "fdr_bh" => Ok(Correction::Bh),
            "none" => Ok(Correction::None),
            other => Err(format!(
                "unknown correction `{other}` (expected ert, bonferroni, bh or none)"
            )),
        }
    }
}

/// Which of `pvalues` are flagged at level `alpha` under a per-evaluation rule (`ert`
/// decides on statistics: see [`flag`]; here it flags nothing).
///
/// `None` entries (features not evaluated yet) and NaN p-values are never flagged but
/// still count in `m`, so a partly evaluated monitor is judged conservatively.
pub fn decide(pvalues: &[Option<f64>], alpha: f64, correction: Correction) -> Vec<bool> {
    let m = pvalues.len();
    let valid = |p: &Option<f64>| p.filter(|p| !p.is_nan());
    match correction {
        Correction::Ert => vec![false; m],
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

/// One feature's flag under a local rule: the statistic against the feature's threshold
/// for `ert` (never flagged without one), the p-value against its cut-off otherwise. BH is
/// not local and is decided by [`decide`] over every feature.
pub fn flag(
    correction: Correction,
    alpha: f64,
    features: usize,
    p_value: f64,
    statistic: f64,
    threshold: Option<f64>,
) -> bool {
    match correction {
        Correction::Ert => threshold.is_some_and(|c| statistic >= c),
        Correction::Bh => false,
        local => local
            .p_value_threshold(alpha, features)
            .is_some_and(|t| !p_value.is_nan() && p_value <= t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ert_threshold_is_the_sum_of_two_exact_quantiles_below_massart() {
        // scipy.stats.kstwo.isf(0.05 / 30, 569) + kstwo.isf(1 / (10000 * 30), 500)
        let c = ert_threshold(569, 500, 30, 10_000.0, 0.95);
        assert!((c - 0.1935).abs() < 5e-4, "{c}");
        let bound = massart_threshold(569, 500, 30, 10_000.0, 0.95);
        assert!((bound - 0.1943).abs() < 5e-4, "{bound}");
        for (n, m, d, ert) in [
            (569, 500, 30, 1e4),
            (5000, 100, 1, 200.0),
            (50, 20, 3, 10.0),
        ] {
            let exact = ert_threshold(n, m, d, ert, 0.95);
            assert!(exact <= massart_threshold(n, m, d, ert, 0.95) + 1e-12);
            // Each term is a quantile: its survival probability is at most the budget.
            let b = kolmogorov_isf(1.0 / (ert * d as f64), m);
            assert!(crate::ks::kstwo_sf_for_tests(b, m) <= 1.0 / (ert * d as f64));
            assert!(crate::ks::kstwo_sf_for_tests(b * (1.0 - 1e-9), m) > 1.0 / (ert * d as f64));
        }
        // More reference rows, a longer window or a smaller budget: a tighter threshold.
        assert!(ert_threshold(5000, 500, 30, 1e4, 0.95) < c);
        assert!(ert_threshold(569, 1000, 30, 1e4, 0.95) < c);
        assert!(ert_threshold(569, 500, 30, 1e3, 0.95) < c);
    }

    #[test]
    fn ert_flags_on_the_statistic_and_episodes_need_a_quiet_lookback() {
        assert!(flag(Correction::Ert, 0.05, 30, 0.9, 0.2, Some(0.2)));
        assert!(!flag(Correction::Ert, 0.05, 30, 0.0, 0.19, Some(0.2)));
        assert!(!flag(Correction::Ert, 0.05, 30, 0.0, 1.0, None));
        assert!(flag(Correction::Bonferroni, 0.05, 5, 0.01, 0.0, None));
        assert!(!flag(Correction::Bonferroni, 0.05, 5, 0.011, 1.0, None));
        assert_eq!(episode_lookback(500, 100), 5);
        assert_eq!(episode_lookback(500, 300), 2);
        assert!(starts_episode(None, 0, 5));
        assert!(!starts_episode(Some(10), 15, 5));
        assert!(starts_episode(Some(10), 16, 5));
    }

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
    fn a_feature_p_value_is_bonferroni_over_its_signals() {
        assert_eq!(feature_p_value([Some(0.01), Some(0.3)]), 0.02);
        assert_eq!(feature_p_value([Some(0.9), None]), 1.0);
        assert_eq!(feature_p_value([None, Some(0.2)]), 0.4);
        assert!(feature_p_value([None, Some(f64::NAN)]).is_nan());
        assert_eq!(tests_per_round(30), 60);
    }

    #[test]
    fn parses_names() {
        assert_eq!("BH".parse::<Correction>(), Ok(Correction::Bh));
        assert!("holm".parse::<Correction>().is_err());
    }
}
