//! Admin routes: create or replace a monitor from a reference CSV, delete it, reset it.

use drift_core::{Correction, CsvSchema, MonitorConfig, Params};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Ref, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// The query of `PUT /v1/monitors/{monitor}` (the body is the reference CSV). Parameters
/// left out take the defaults, not the previous values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PutMonitorQuery {
    /// Rows in each feature's window (at least 2; default 500).
    #[param(minimum = 2)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    /// Rows between evaluations once the window is full (at least 1; default 100).
    #[param(minimum = 1)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
    /// Significance level of the per-evaluation rules, in (0, 1) (default 0.05).
    #[param(exclusive_minimum = 0.0, exclusive_maximum = 1.0)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(inline)]
    pub correction: Option<Correction>,
    /// Share of drifted features from which the data set counts as drifted, in (0, 1]
    /// (default 0.5).
    #[param(exclusive_minimum = 0.0, maximum = 1.0)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_drift_share: Option<f64>,
    /// Under the `ert` rule: expected rounds between false alarms when nothing drifts, in
    /// [1, 1e12] (default 10000).
    #[param(minimum = 1.0, maximum = 1e12)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ert: Option<f64>,
    /// Under the `ert` rule: probability over the reference draw that the guarantee holds,
    /// in (0, 1) (default 0.95).
    #[param(exclusive_minimum = 0.0, exclusive_maximum = 1.0)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_confidence: Option<f64>,
    /// The probability with which the API keeps each ingested row (independently, before
    /// Redis), in (0, 1] (default 1: every row). For traffic beyond what one Redis shard
    /// should carry: a window of `window` stored rows then spans 1/`sample_rate` times as
    /// many rows received, and delays in rows stretch alike in time. A change of it alone
    /// is a parameter update (`params_updated`): results are kept.
    #[param(exclusive_minimum = 0.0, maximum = 1.0)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    /// Comma-separated columns of the CSV to leave out (e.g. the label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<String>,
    /// Comma-separated columns to read as categorical although every value is a number
    /// (integer codes). Otherwise a column is categorical when any value is not a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorical: Option<String>,
    /// Comma-separated columns that must be numeric: a value that is not a number is then
    /// an error instead of making the column categorical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<String>,
    /// Most distinct reference categories of one feature, 1 to 1000 (default 50); a
    /// feature with more is refused, unless `top_categories` is set.
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_categories: Option<usize>,
    /// Keep the K most frequent categories of each categorical feature that has more than
    /// K, and fold the rest, and any value the reference did not have, into `__other__`.
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_categories: Option<usize>,
}

fn list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl PutMonitorQuery {
    /// The parameters asked for, defaults filling the rest.
    pub fn params(&self) -> Params {
        let d = Params::default();
        Params {
            window: self.window.unwrap_or(d.window),
            stride: self.stride.unwrap_or(d.stride),
            alpha: self.alpha.unwrap_or(d.alpha),
            correction: self.correction.unwrap_or(d.correction),
            dataset_drift_share: self.dataset_drift_share.unwrap_or(d.dataset_drift_share),
            ert: self.ert.unwrap_or(d.ert),
            reference_confidence: self.reference_confidence.unwrap_or(d.reference_confidence),
            sample_rate: self.sample_rate.unwrap_or(d.sample_rate),
        }
    }

    /// The columns named in `exclude`.
    pub fn excluded(&self) -> Vec<String> {
        list(&self.exclude)
    }

    /// How to read the reference CSV.
    pub fn csv_schema(&self) -> CsvSchema {
        let d = CsvSchema::default();
        CsvSchema {
            exclude: self.excluded(),
            categorical: list(&self.categorical),
            numeric: list(&self.numeric),
            max_categories: self.max_categories.unwrap_or(d.max_categories),
            top_categories: self.top_categories,
        }
    }
}

/// A monitor's definition as registered: the config the workers read, as it is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MonitorDefinition(pub MonitorConfig);

/// The schema of [`MonitorConfig`]'s JSON, written out because the domain type derives no
/// schema; a test checks that it names every field the config serializes.
impl PartialSchema for MonitorDefinition {
    fn schema() -> RefOr<Schema> {
        let own_fields = ObjectBuilder::new()
            .property("name", String::schema())
            .required("name")
            .property("features", Vec::<String>::schema())
            .required("features")
            .property(
                "version",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "Hash of the reference data; a new reference is a new version.",
                    )),
            )
            .required("version")
            .property("reference_rows", usize::schema())
            .required("reference_rows")
            .property(
                "thresholds",
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(f64::schema())
                    .description(Some(
                        "Under the `ert` rule: each feature's distribution threshold (KS \
                         statistic, or total variation for a categorical feature) for a \
                         window without missing values, in feature order (absent under the \
                         per-evaluation rules).",
                    )),
            )
            .property(
                "kinds",
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["numeric", "categorical"])),
                    )
                    .description(Some(
                        "Each feature's kind, in feature order (absent when all are numeric).",
                    )),
            )
            .property(
                "categories",
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(Vec::<String>::schema())
                    .description(Some(
                        "Each feature's reference categories, sorted, `__other__` last when \
                         folded; empty for numeric features (absent when all are numeric).",
                    )),
            )
            .property(
                "reference_missing",
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(u64::schema())
                    .description(Some(
                        "Each feature's missing reference values (absent when none is missing).",
                    )),
            );
        AllOfBuilder::new()
            // `params` is flattened into the config.
            .item(Ref::from_schema_name(Params::name()))
            .item(own_fields)
            .description(Some(
                "A monitor's definition as registered: the same fields as the config the \
                 workers read.",
            ))
            .into()
    }
}

impl ToSchema for MonitorDefinition {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Params::name().into(), Params::schema()));
        Params::schemas(schemas);
    }
}

/// What a `PUT` changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PutOutcome {
    /// Same reference and parameters: nothing changed.
    Unchanged,
    /// Same reference, new parameters: results are kept.
    ParamsUpdated,
    /// A new reference: the old version's results are cleared.
    NewVersion,
}

/// The answer of `PUT /v1/monitors/{monitor}` (201 when created, 200 when replaced).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PutMonitorAnswer {
    pub monitor: MonitorDefinition,
    pub outcome: PutOutcome,
}

/// The answer of `DELETE /v1/monitors/{monitor}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    /// The monitor's name.
    pub deleted: String,
}

/// The answer of `POST /v1/monitors/{monitor}/reset`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reset {
    /// The monitor's name.
    pub reset: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of a JSON object's keys, sorted.
    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn the_definition_is_the_config_on_the_wire() {
        let mut cfg = crate::mixed_test_config();
        // A sample rate of 1 is left out of the wire; another one is a field like the rest.
        cfg.params.sample_rate = 0.5;
        let wire = serde_json::to_value(MonitorDefinition(cfg.clone())).unwrap();
        assert_eq!(wire, serde_json::to_value(&cfg).unwrap());
        // The hand-written schema documents exactly the fields the config serializes.
        let schema = serde_json::to_value(MonitorDefinition::schema()).unwrap();
        let params = serde_json::to_value(Params::schema()).unwrap();
        let mut documented = keys(&schema["allOf"][1]["properties"]);
        documented.extend(keys(&params["properties"]));
        documented.sort();
        assert_eq!(documented, keys(&wire));
    }

    #[test]
    fn query_defaults_and_exclusions() {
        let q = PutMonitorQuery {
            window: Some(20),
            exclude: Some(" label, ,id".into()),
            ..PutMonitorQuery::default()
        };
        assert_eq!(q.params().window, 20);
        assert_eq!(q.params().stride, Params::default().stride);
        assert_eq!(q.params().sample_rate, 1.0);
        assert_eq!(q.excluded(), ["label", "id"]);
        let q = PutMonitorQuery {
            sample_rate: Some(0.25),
            ..PutMonitorQuery::default()
        };
        assert_eq!(q.params().sample_rate, 0.25);
        let q = PutMonitorQuery {
            categorical: Some("plan,zip".into()),
            top_categories: Some(5),
            ..PutMonitorQuery::default()
        };
        let s = q.csv_schema();
        assert_eq!(s.categorical, ["plan", "zip"]);
        assert_eq!((s.max_categories, s.top_categories), (50, Some(5)));
    }
}
