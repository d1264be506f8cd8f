//! `POST /v1/monitors/{monitor}/rows`: the batch forms it takes and its answer. The same
//! forms are the body of `POST /v1/predict`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// One value of a row: a finite number for a numeric feature; a string or an integer for
/// a categorical one (`3` and `"3"` are the same category); `null` when missing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FeatureValue {
    Number(f64),
    Text(String),
}

impl From<f64> for FeatureValue {
    fn from(v: f64) -> Self {
        FeatureValue::Number(v)
    }
}

impl From<&str> for FeatureValue {
    fn from(v: &str) -> Self {
        FeatureValue::Text(v.to_string())
    }
}

/// Rows as named columns: `data` holds one array per row, in the order of `columns`;
/// every feature of the monitor is a column (`null` where a value is missing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Frame {
    pub columns: Vec<String>,
    pub data: Vec<Vec<Option<FeatureValue>>>,
}

impl Frame {
    /// A frame of numbers only.
    pub fn numeric(columns: Vec<String>, data: Vec<Vec<f64>>) -> Self {
        Frame {
            columns,
            data: data
                .into_iter()
                .map(|r| r.into_iter().map(|v| Some(v.into())).collect())
                .collect(),
        }
    }
}

/// Rows as objects, feature name to value; a feature left out of a row (or `null`) is a
/// missing value of that row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowObjects {
    #[schema(schema_with = rows_schema)]
    pub rows: Vec<BTreeMap<String, Option<FeatureValue>>>,
}

/// The schema of `rows`, written out because utoipa cannot derive a map of nullable
/// references.
fn rows_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Ref, Schema, Type};
    let nullable = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .item(Ref::from_schema_name("FeatureValue"))
        .build();
    let row = ObjectBuilder::new()
        .additional_properties(Some(Schema::OneOf(nullable)))
        .description(Some(
            "Feature name to value; a feature left out, or null, is missing.",
        ))
        .build();
    ArrayBuilder::new().items(row).build()
}

/// The Python prototype's pandas "split" frame, kept for drop-in clients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitFrame {
    pub features: Frame,
}

/// A batch of rows in one of the accepted forms. It is accepted whole or rejected whole:
/// every column must be a feature of the monitor, and every value fit its feature's kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RowsBatch {
    Columns(Frame),
    Rows(RowObjects),
    Split(SplitFrame),
}

/// The 202 answer of an ingest, sent once Redis has stored the rows of the batch that the
/// monitor's sampling kept (every row unless its `sample_rate` is below 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IngestAccepted {
    /// Rows of this batch: every row the client sent (the batch is valid as a whole),
    /// including those that sampling left out.
    pub accepted: usize,
    /// Of those, the rows kept by the monitor's `sample_rate` and stored in its windows
    /// (equal to `accepted` when it is 1). Each row is kept independently with that
    /// probability.
    pub sampled: usize,
    /// Rows the monitor has stored, this batch included; `null` when sampling kept no row
    /// of the batch: nothing was written, and the replica did not ask Redis for the count
    /// (`rows` of `GET /v1/monitors/{monitor}` has it).
    #[schema(required = true)]
    pub seq: Option<u64>,
    /// Evaluation jobs enqueued for this batch: one per feature when its rows crossed an
    /// evaluation boundary (one round however many), or 0 when a batch stored right after
    /// it in the same script call crossed a later one, whose jobs for the newer rows
    /// supersede them (and 0 when no row was stored).
    pub jobs_enqueued: u64,
}
