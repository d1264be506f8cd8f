//! `drift-contract`: the HTTP contract of the drift monitor, as types. The API serializes
//! them, the simulator and tests deserialize them, and the OpenAPI document is generated
//! from them, so the three cannot drift apart. Only serde and utoipa: clients that depend
//! on the contract get no server, runtime or Redis crate with it.
pub mod admin;
pub mod datadrift;
pub mod error;
pub mod health;
pub mod ingest;
pub mod monitors;
pub mod predict;
#[cfg(test)]
mod readme;

/// The monitor the unit tests describe: features `a` and `b`, 50 reference rows, default
/// parameters.
#[cfg(test)]
fn test_config() -> drift_core::MonitorConfig {
    let csv: String = std::iter::once("a,b\n".to_string())
        .chain((0..50).map(|i| format!("{i},{}\n", 100 - i)))
        .collect();
    let ds = drift_core::Dataset::from_csv(csv.as_bytes(), &[]).unwrap();
    drift_core::MonitorSpec::new("m", &ds, Params::default(), 10)
        .unwrap()
        .config
}

/// A monitor with every kind of field set: a numeric feature with missing reference
/// values and a categorical one.
#[cfg(test)]
fn mixed_test_config() -> drift_core::MonitorConfig {
    let mut csv = String::from("x,c\n");
    for i in 0..200 {
        let x = if i % 7 == 0 {
            "NA".to_string()
        } else {
            i.to_string()
        };
        csv.push_str(&format!("{x},{}\n", ["u", "v", "w"][i % 3]));
    }
    let ds = drift_core::Dataset::from_csv(csv.as_bytes(), &[]).unwrap();
    drift_core::MonitorSpec::new("m", &ds, Params::default(), 10)
        .unwrap()
        .config
}

pub use admin::{Deleted, MonitorDefinition, PutMonitorAnswer, PutMonitorQuery, PutOutcome, Reset};
pub use datadrift::{DataDriftAnswer, DataDriftFrame, DataDriftRequest, DataDriftStatus};
pub use drift_core::{Correction, FeatureResult, HistoryEntry, Params};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use health::{Health, HealthStatus};
pub use ingest::{FeatureValue, Frame, IngestAccepted, RowObjects, RowsBatch, SplitFrame};
pub use monitors::{
    parse_entry_id, Counters, HistoryPage, HistoryQuery, MonitorList, MonitorParam, MonitorPhase,
    MonitorSummary, MonitorView, NewMonitorParam, HISTORY_PAGE_MAX,
};
pub use predict::{PredictAnswer, Prediction, Predictions};
