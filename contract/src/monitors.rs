//! What readers get of monitors: the list, one monitor with its latest results, and the
//! history of evaluations.

use drift_core::{FeatureKind, FeatureResult, HistoryEntry, MonitorConfig, MonitorStatus, Params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Ref, Schema, Type};
use utoipa::{IntoParams, ToSchema};

/// Whether the window is full yet: results before that compare a partial window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MonitorPhase {
    Accumulating,
    Monitoring,
}

/// Monitor-wide counters, kept in Redis and therefore global across replicas.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Counters {
    pub rounds: u64,
    pub evaluations: u64,
    /// Jobs acknowledged without an evaluation of their own (every job is either
    /// evaluated or stale).
    pub stale: u64,
    /// Of the stale jobs, those whose feature was evaluated on a newer window instead:
    /// the workers were behind ingest and skipped to the newest data.
    #[serde(default)]
    pub superseded: u64,
    pub detections: u64,
    /// Alarm episodes started over every feature (what `DriftDetected` fires on).
    #[serde(default)]
    pub episodes: u64,
    pub dead_letters: u64,
}

/// `GET /v1/monitors/{monitor}`: config, decision, counters and every feature's latest
/// result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MonitorView {
    pub name: String,
    /// Hash of the reference data; results of different versions are never mixed.
    pub version: String,
    pub features: Vec<String>,
    #[serde(serialize_with = "every_param")]
    pub params: Params,
    pub reference_rows: usize,
    /// Rows ingested since the monitor was created or reset.
    pub rows: u64,
    pub window_rows: u64,
    pub status: MonitorPhase,
    pub features_drifting: u64,
    pub drift_share: f64,
    pub dataset_drifted: bool,
    /// Unix time in seconds; `null` until a first detection.
    pub last_detected_at: Option<f64>,
    pub counters: Counters,
    /// Under the `ert` rule: each feature's KS-statistic threshold, fixed at registration
    /// (empty under the per-evaluation rules).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds: BTreeMap<String, f64>,
    /// Every feature's kind.
    #[serde(default)]
    pub kinds: BTreeMap<String, FeatureKind>,
    /// Each categorical feature's reference categories (sorted; `__other__` last when the
    /// feature was folded to its most frequent categories).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<String, Vec<String>>,
    /// Every feature, `null` until it is first evaluated.
    #[schema(schema_with = results_schema)]
    pub results: BTreeMap<String, Option<FeatureResult>>,
}

/// The views show every parameter, `sample_rate` too when it is 1, which the stored config
/// (and so a monitor's definition) leaves out so that it stays as it was before sampling
/// existed.
fn every_param<S: serde::Serializer>(p: &Params, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error;
    let mut v = serde_json::to_value(p).map_err(S::Error::custom)?;
    if let Some(o) = v.as_object_mut() {
        o.entry("sample_rate")
            .or_insert_with(|| serde_json::Value::from(p.sample_rate));
    }
    v.serialize(s)
}

/// The schema of `results`, written out because utoipa cannot derive a map of nullable
/// references.
fn results_schema() -> Object {
    let nullable = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .item(Ref::from_schema_name("FeatureResult"))
        .build();
    ObjectBuilder::new()
        .additional_properties(Some(Schema::OneOf(nullable)))
        .description(Some("Every feature, `null` until it is first evaluated."))
        .build()
}

impl MonitorView {
    pub fn new(cfg: &MonitorConfig, status: &MonitorStatus) -> Self {
        let s = &status.state;
        let window = cfg.params.window as u64;
        MonitorView {
            name: cfg.name.clone(),
            version: cfg.version.clone(),
            features: cfg.features.clone(),
            params: cfg.params.clone(),
            reference_rows: cfg.reference_rows,
            rows: s.rows,
            window_rows: s.rows.min(window),
            status: if s.rows < window {
                MonitorPhase::Accumulating
            } else {
                MonitorPhase::Monitoring
            },
            features_drifting: s.features_drifting,
            drift_share: s.drift_share,
            dataset_drifted: s.dataset_drifted,
            last_detected_at: s.last_detected_at,
            counters: Counters {
                rounds: s.rounds,
                evaluations: s.evaluations,
                stale: s.stale,
                superseded: s.superseded,
                detections: s.detections,
                episodes: s.episodes,
                dead_letters: s.dead_letters,
            },
            thresholds: cfg
                .features
                .iter()
                .cloned()
                .zip(cfg.thresholds.iter().copied())
                .collect(),
            kinds: cfg
                .features
                .iter()
                .enumerate()
                .map(|(i, f)| (f.clone(), cfg.kind(i)))
                .collect(),
            categories: cfg
                .features
                .iter()
                .enumerate()
                .filter(|(i, _)| cfg.kind(*i) == FeatureKind::Categorical)
                .map(|(i, f)| (f.clone(), cfg.categories(i).to_vec()))
                .collect(),
            results: cfg
                .features
                .iter()
                .cloned()
                .zip(status.results.iter().cloned())
                .collect(),
        }
    }
}

/// One entry of `GET /v1/monitors`: a summary, without per-feature results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MonitorSummary {
    pub name: String,
    pub version: String,
    /// The number of features (the names are in the monitor's own view).
    pub features: usize,
    #[serde(serialize_with = "every_param")]
    pub params: Params,
    pub rows: u64,
    pub features_drifting: u64,
    pub dataset_drifted: bool,
}

impl MonitorSummary {
    pub fn new(cfg: &MonitorConfig, status: &MonitorStatus) -> Self {
        MonitorSummary {
            name: cfg.name.clone(),
            version: cfg.version.clone(),
            features: cfg.features.len(),
            params: cfg.params.clone(),
            rows: status.state.rows,
            features_drifting: status.state.features_drifting,
            dataset_drifted: status.state.dataset_drifted,
        }
    }
}

/// `GET /v1/monitors`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MonitorList {
    pub monitors: Vec<MonitorSummary>,
}

/// `GET /v1/monitors/{monitor}/history`: evaluations of the current version, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryPage {
    pub monitor: String,
    pub version: String,
    pub entries: Vec<HistoryEntry>,
}

/// The `{monitor}` path parameter of every per-monitor route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MonitorParam {
    /// The monitor's name: 1 to 64 of `A-Z a-z 0-9 _ . -`.
    #[param(pattern = r"^[A-Za-z0-9_.-]{1,64}$", example = "breast_cancer")]
    pub monitor: String,
}

/// The `{monitor}` path parameter of `PUT`, the monitor to create or replace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NewMonitorParam {
    /// The monitor's name: 1 to 64 of `A-Z a-z 0-9 _ . -` (it ends up in Redis keys and
    /// metric labels).
    #[param(pattern = r"^[A-Za-z0-9_.-]{1,64}$", example = "fraud")]
    pub monitor: String,
}

/// Most entries one history page holds; a larger `limit` is capped to it.
pub const HISTORY_PAGE_MAX: usize = 10_000;

/// The query of `GET /v1/monitors/{monitor}/history`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only entries after this one (exclusive): the `id` of the last entry of the previous
    /// page.
    #[param(pattern = r"^[0-9]+-[0-9]+$", example = "1700000000000-0")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Entries per page, 1 to 10000 (default 1000; 0 is refused, larger values are capped).
    /// Larger than the server's `usize` is refused, so the schema states the 64-bit bound.
    #[param(minimum = 1, maximum = 18446744073709551615_u64)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// A history entry id, `ms-seq` with each part a u64, as Redis accepts it back; `None`
/// for anything else, which Redis would refuse.
pub fn parse_entry_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(ms) || !digits(seq) {
        return None;
    }
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use drift_core::MonitorState;
    use serde_json::json;

    #[test]
    fn monitor_view_keeps_the_wire_shape() {
        let cfg = crate::test_config();
        let status = MonitorStatus {
            state: MonitorState {
                rows: 7,
                ..MonitorState::default()
            },
            results: vec![None, None],
        };
        let v = serde_json::to_value(MonitorView::new(&cfg, &status)).unwrap();
        let c = cfg.thresholds[0];
        assert_eq!(
            v,
            json!({
                "name": "m", "version": cfg.version, "features": ["a", "b"],
                "params": {"window": 500, "stride": 100, "alpha": 0.05,
                           "correction": "ert", "dataset_drift_share": 0.5,
                           "ert": 10000.0, "reference_confidence": 0.95,
                           "sample_rate": 1.0},
                "reference_rows": 50, "rows": 7, "window_rows": 7, "status": "accumulating",
                "features_drifting": 0, "drift_share": 0.0, "dataset_drifted": false,
                "last_detected_at": null,
                "counters": {"rounds": 0, "evaluations": 0, "stale": 0, "superseded": 0, "detections": 0,
                             "episodes": 0, "dead_letters": 0},
                "thresholds": {"a": c, "b": c},
                "kinds": {"a": "numeric", "b": "numeric"},
                "results": {"a": null, "b": null},
            })
        );
        let back: MonitorView = serde_json::from_value(v).unwrap();
        assert_eq!(back.status, MonitorPhase::Accumulating);
    }

    #[test]
    fn after_must_be_a_stream_id() {
        assert_eq!(parse_entry_id("1-2"), Some((1, 2)));
        assert_eq!(parse_entry_id("abc"), None);
        assert_eq!(parse_entry_id("1-"), None);
        assert_eq!(parse_entry_id("+1-2"), None);
        assert_eq!(parse_entry_id("99999999999999999999-0"), None);
    }
}
