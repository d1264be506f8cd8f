//! `POST /datadrift`: the Python prototype's metric-server route, kept for drop-in
//! migration.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The prototype's body: a pandas "split" frame, with scikit-learn's feature names
/// (`mean radius`) or ours (`mean_radius`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DataDriftRequest {
    pub features: DataDriftFrame,
}

/// Rows as named columns, like the ingest form, but other fields (pandas' `index`) are
/// ignored, as the prototype ignored them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DataDriftFrame {
    pub columns: Vec<String>,
    pub data: Vec<Vec<f64>>,
}

/// Whether the window was full when the batch was ingested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataDriftStatus {
    Accumulating,
    DriftChecked,
}

/// The prototype's answer, filled from the shared results of the default monitor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DataDriftAnswer {
    pub status: DataDriftStatus,
    pub samples_in_window: u64,
    pub window_size: u64,
    pub drift_share: f64,
    pub dataset_drift: bool,
    pub number_of_drifted_columns: u64,
    /// The client's names of the drifted features.
    pub drifted_features: Vec<String>,
    /// Latest p-value of every evaluated feature, under the client's names.
    pub feature_pvalues: BTreeMap<String, f64>,
    /// Rows the default monitor has ingested, this batch included.
    pub seq: u64,
}
