//! What evaluations produce and what readers see of them: one feature's latest result,
//! the monitor-level decision and counters, and the evaluation history.

use crate::alarm::Correction;
use crate::feature::FeatureKind;
use serde::{Deserialize, Serialize};

/// What a signal of a feature watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SignalKind {
    /// The distribution of the present values: KS (numeric) or total variation
    /// (categorical).
    Distribution,
    /// The share of missing values.
    Missing,
}

impl SignalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Distribution => "distribution",
            SignalKind::Missing => "missing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "distribution" => Some(SignalKind::Distribution),
            "missing" => Some(SignalKind::Missing),
            _ => None,
        }
    }
}

/// One signal of an evaluation: its test, statistic, threshold and p-value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Signal {
    pub signal: SignalKind,
    /// `ks` (two-sample KS statistic), `tv` (total-variation distance between window and
    /// reference category frequencies; p-value from the chi-square goodness-of-fit test)
    /// or `share` (absolute change of the missing share; p-value from the chi-square test
    /// of the window's missing count against the reference share).
    pub test: String,
    /// `null` when there was nothing to test (no present value in the window).
    pub statistic: Option<f64>,
    /// Under the `ert` rule: the statistic at or above which the signal fires; `null`
    /// under the per-evaluation rules, or when the signal cannot fire at this window size.
    pub threshold: Option<f64>,
    pub p_value: Option<f64>,
    /// Whether this signal is why the feature is flagged: under `ert` its statistic reached
    /// its threshold; under the per-evaluation rules its p-value is the feature's smallest.
    #[serde(default)]
    pub fired: bool,
}

impl Signal {
    /// Under `ert`: whether the statistic reached the threshold.
    pub fn exceeds(&self) -> bool {
        matches!((self.statistic, self.threshold), (Some(s), Some(c)) if s >= c)
    }
}

/// How far a feature moved, reported next to the test and never alarmed on (Evidently's
/// definitions; see the README).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Effects {
    /// Numeric: Wasserstein distance between window and reference over the reference's
    /// standard deviation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasserstein_normed: Option<f64>,
    /// Population stability index over reference-decile bins (numeric) or categories.
    #[serde(default)]
    pub psi: Option<f64>,
    /// Jensen-Shannon distance (natural log) over the same bins.
    #[serde(default)]
    pub jensen_shannon: Option<f64>,
}

/// What an evaluation found besides its distribution test (stored with the result).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Details {
    #[serde(default)]
    pub kind: FeatureKind,
    /// The distribution signal, then the missing-share signal.
    #[serde(default)]
    pub signals: Vec<Signal>,
    /// Share of the window's rows whose value is missing.
    #[serde(default)]
    pub missing_share: f64,
    #[serde(default)]
    pub reference_missing_share: f64,
    /// Categorical: share of the window's present values that are no reference category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen_share: Option<f64>,
    /// Categorical: the category whose share moved most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_category: Option<String>,
    #[serde(default)]
    pub effects: Effects,
}

impl Details {
    /// Marks the signals that made a flagged feature flagged (see [`Signal::fired`]).
    pub fn mark_fired(&mut self, drifted: bool, correction: Correction) {
        let min_p = self
            .signals
            .iter()
            .filter_map(|s| s.p_value)
            .filter(|p| !p.is_nan())
            .fold(f64::INFINITY, f64::min);
        for s in &mut self.signals {
            s.fired = drifted
                && match correction {
                    Correction::Ert => s.exceeds(),
                    _ => s.p_value == Some(min_p),
                };
        }
    }

    /// The names of the signals that fired, for the history.
    pub fn fired(&self) -> Vec<SignalKind> {
        self.signals
            .iter()
            .filter(|s| s.fired)
            .map(|s| s.signal)
            .collect()
    }
}

/// The outcome of one evaluation, before it is recorded. `p_value`, `statistic` and the
/// location are the distribution signal's (KS, or for a categorical feature the
/// chi-square p-value and the total-variation distance).
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub p_value: f64,
    pub statistic: f64,
    pub statistic_location: f64,
    pub statistic_sign: i8,
    /// Rows of the window (present and missing).
    pub window_rows: usize,
    pub method: &'static str,
    /// The feature's p-value for the per-evaluation rules ([`crate::alarm::feature_p_value`]).
    pub p_feature: f64,
    /// Under `ert`, the distribution signal's threshold at this window's present values.
    pub threshold: Option<f64>,
    pub details: Details,
}

impl Evaluation {
    /// The feature's own flag under a local rule: under `ert` any signal at or above its
    /// threshold; under Bonferroni and `none` the feature p-value against the cut-off.
    /// BH is decided over every feature (`alarm::decide` on the feature p-values).
    pub fn flag(&self, correction: Correction, alpha: f64, features: usize) -> bool {
        match correction {
            Correction::Ert => self.details.signals.iter().any(Signal::exceeds),
            Correction::Bh => false,
            local => local
                .p_value_threshold(alpha, features)
                .is_some_and(|t| !self.p_feature.is_nan() && self.p_feature <= t),
        }
    }
}

/// A feature's latest result, as stored by the workers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureResult {
    /// Row sequence number at which the evaluated window ended.
    pub seq: u64,
    pub p_value: f64,
    pub statistic: f64,
    pub statistic_location: f64,
    pub statistic_sign: i8,
    /// The alarm's decision for this feature at this evaluation (see `alarm`).
    pub drifted: bool,
    /// Under the `ert` rule: the statistic at or above which the feature is flagged.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// True from the evaluation that started an alarm episode until the feature's first
    /// evaluation back under its threshold; later exceedances within the same episode do
    /// not set it again, so it rises once per episode (what `DriftDetected` fires on).
    #[serde(default)]
    pub alarm: bool,
    /// Alarm episodes started: exceedances after none in the previous
    /// ceil(window / stride) rounds of the feature.
    #[serde(default)]
    pub episodes: u64,
    pub window_rows: u64,
    pub method: String,
    pub evaluated_at: f64,
    pub evaluations: u64,
    pub detections: u64,
    /// Kind, signals, missing and unseen shares and effect sizes of this evaluation.
    #[serde(flatten)]
    pub details: Details,
}

/// The monitor-level decision and global counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorState {
    pub rows: u64,
    pub features_drifting: u64,
    pub drift_share: f64,
    pub dataset_drifted: bool,
    /// Row sequence of the evaluation that last changed the decision.
    pub decided_seq: Option<u64>,
    pub last_detected_at: Option<f64>,
    pub rounds: u64,
    pub evaluations: u64,
    pub stale: u64,
    /// Of the stale jobs, those whose feature was evaluated on a newer window instead
    /// (workers behind ingest).
    #[serde(default)]
    pub superseded: u64,
    pub detections: u64,
    /// Alarm episodes started, over every feature.
    #[serde(default)]
    pub episodes: u64,
    pub dead_letters: u64,
}

/// Everything readers show of a monitor's current state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonitorStatus {
    pub state: MonitorState,
    /// One entry per feature, in config order; `None` until first evaluated.
    pub results: Vec<Option<FeatureResult>>,
}

impl MonitorStatus {
    /// The latest feature p-value of every feature, in config order, as the alarm takes
    /// them (the Bonferroni combination of its signals).
    pub fn p_values(&self) -> Vec<Option<f64>> {
        self.results
            .iter()
            .map(|r| {
                r.as_ref().map(|r| {
                    if r.details.signals.is_empty() {
                        r.p_value
                    } else {
                        crate::alarm::feature_p_value(r.details.signals.iter().map(|s| s.p_value))
                    }
                })
            })
            .collect()
    }

    /// The stored flag of every feature (false until evaluated).
    pub fn flags(&self) -> Vec<bool> {
        self.results
            .iter()
            .map(|r| r.as_ref().is_some_and(|r| r.drifted))
            .collect()
    }
}

/// One recorded evaluation, from the history (also the wire format of
/// `GET /v1/monitors/{monitor}/history`, which clients deserialize).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    /// Stream entry id; pass it back as `after` to page forward.
    pub id: String,
    pub feature: String,
    pub seq: u64,
    pub p_value: f64,
    pub statistic: f64,
    pub drifted: bool,
    /// Under the `ert` rule: the threshold the statistic was compared with.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Whether this evaluation started an alarm episode.
    #[serde(default)]
    pub episode: bool,
    /// The signals that made the feature flagged at this evaluation.
    #[serde(default)]
    pub signals: Vec<SignalKind>,
    /// Features flagged right after this evaluation.
    #[serde(default)]
    pub features_drifting: u64,
    #[serde(default)]
    pub evaluated_at: f64,
}
