//! `POST /v1/predict` and `POST /get-prediction`: the demo model's answers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The model's answer for one row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Prediction {
    /// The predicted class: 1 when `probability` is at least 0.5.
    #[schema(minimum = 0, maximum = 1)]
    pub prediction: u8,
    /// The probability of class 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub probability: f64,
}

/// The answer for a batch of more than one row, in request order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Predictions {
    pub predictions: Vec<Prediction>,
}

/// One row is answered bare, as the prototype did; a batch in a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PredictAnswer {
    One(Prediction),
    Batch(Predictions),
}
