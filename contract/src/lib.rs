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

/// The monitor the unit tests describe: features `a` and `b`, two reference rows, default
/// parameters.
#[cfg(test)]
fn test_config() -> drift_core::MonitorConfig {
    let ds = drift_core::Dataset::from_csv("a,b\n1,2\n3,4\n".as_bytes(), &[]).unwrap();
    drift_core::MonitorSpec::new("m", &ds, Params::default(), 10)
        .unwrap()
        .config
}

pub use admin::{Deleted, MonitorDefinition, PutMonitorAnswer, PutMonitorQuery, PutOutcome, Reset};
pub use datadrift::{DataDriftAnswer, DataDriftFrame, DataDriftRequest, DataDriftStatus};
pub use drift_core::{Correction, FeatureResult, HistoryEntry, Params};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use health::{Health, HealthStatus};
pub use ingest::{Frame, IngestAccepted, RowObjects, RowsBatch, SplitFrame};
pub use monitors::{
    parse_entry_id, Counters, HistoryPage, HistoryQuery, MonitorList, MonitorParam, MonitorPhase,
    MonitorSummary, MonitorView, NewMonitorParam, HISTORY_PAGE_MAX,
};
pub use predict::{PredictAnswer, Prediction, Predictions};
