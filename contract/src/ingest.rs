//! `POST /v1/monitors/{monitor}/rows`: the batch forms it takes and its answer. The same
//! forms are the body of `POST /v1/predict`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Rows as named columns: `data` holds one array per row, in the order of `columns`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Frame {
    pub columns: Vec<String>,
    pub data: Vec<Vec<f64>>,
}

/// Rows as objects, feature name to value; every row has the same keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowObjects {
    pub rows: Vec<BTreeMap<String, f64>>,
}

/// The Python prototype's pandas "split" frame, kept for drop-in clients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitFrame {
    pub features: Frame,
}

/// A batch of rows in one of the accepted forms. It is accepted whole or rejected whole:
/// every column must be a feature of the monitor, every feature present, every value a
/// finite number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RowsBatch {
    Columns(Frame),
    Rows(RowObjects),
    Split(SplitFrame),
}

/// The 202 answer of an ingest, sent once Redis has stored the whole batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IngestAccepted {
    /// Rows of this batch.
    pub accepted: usize,
    /// Rows the monitor has ingested, this batch included.
    pub seq: u64,
    /// Evaluation jobs enqueued for this batch: one per feature when its rows crossed an
    /// evaluation boundary (one round however many), or 0 when a batch stored right after
    /// it in the same script call crossed a later one, whose jobs for the newer rows
    /// supersede them.
    pub jobs_enqueued: u64,
}
