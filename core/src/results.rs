//! What evaluations produce and what readers see of them: one feature's latest result,
//! the monitor-level decision and counters, and the evaluation history.

use serde::{Deserialize, Serialize};

/// The outcome of one KS evaluation, before it is recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub p_value: f64,
    pub statistic: f64,
    pub statistic_location: f64,
    pub statistic_sign: i8,
    pub window_rows: usize,
    pub method: &'static str,
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
    /// The latest p-value of every feature, in config order, as the alarm takes them.
    pub fn p_values(&self) -> Vec<Option<f64>> {
        self.results
            .iter()
            .map(|r| r.as_ref().map(|r| r.p_value))
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
    /// Features flagged right after this evaluation.
    #[serde(default)]
    pub features_drifting: u64,
    #[serde(default)]
    pub evaluated_at: f64,
}
