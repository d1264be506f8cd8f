//! Parsing and validating a batch of rows against a monitor's features.
//!
//! Validation is complete before anything is written: a batch is accepted whole or
//! rejected whole.

use crate::error::{ApiError, ErrorCode};
use drift_core::MonitorConfig;
use serde::Deserialize;
use std::collections::HashMap;

/// Both body forms of the rows endpoint.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch {
    columns: Option<Vec<String>>,
    data: Option<Vec<Vec<f64>>>,
    rows: Option<Vec<RowFields>>,
    /// The prototype's pandas "split" frame: `{"features": {"columns": [...], "data": [...]}}`.
    features: Option<Frame>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Frame {
    columns: Vec<String>,
    data: Vec<Vec<f64>>,
}

/// One object of the `rows` form, its fields in body order with duplicates kept: a JSON
/// object with a repeated key is refused (a map would silently keep the last value).
struct RowFields(Vec<(String, f64)>);

impl<'de> Deserialize<'de> for RowFields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = RowFields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of feature values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RowFields, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
                while let Some(entry) = map.next_entry::<String, f64>()? {
                    out.push(entry);
                }
                Ok(RowFields(out))
            }
        }
        d.deserialize_map(Fields)
    }
}

/// A batch in the columns form, before it is matched against a monitor.
pub struct ColumnsBatch {
    pub columns: Vec<String>,
    pub data: Vec<Vec<f64>>,
}

/// Maps a serde_json error to the contract: syntax errors are 400, well-formed JSON of the
/// wrong shape or type is 422.
pub fn json_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => ApiError::new(ErrorCode::InvalidBatch, e.to_string()),
        Category::Syntax | Category::Eof | Category::Io => {
            let msg = e.to_string();
            if msg.contains("number out of range") {
                ApiError::new(
                    ErrorCode::NonFiniteValue,
                    format!("{msg}: values must be finite"),
                )
            } else {
                ApiError::malformed(format!("request body is not valid JSON: {msg}"))
            }
        }
    }
}

/// Parses either body form into (columns, rows).
pub fn parse_rows_body(body: &[u8]) -> Result<ColumnsBatch, ApiError> {
    let raw: RawBatch = serde_json::from_slice(body).map_err(json_error)?;
    match raw {
        RawBatch {
            columns: Some(columns),
            data: Some(data),
            rows: None,
            features: None,
        } => Ok(ColumnsBatch { columns, data }),
        RawBatch {
            columns: None,
            data: None,
            rows: None,
            features: Some(Frame { columns, data }),
        } => Ok(ColumnsBatch { columns, data }),
        RawBatch {
            columns: None,
            data: None,
            rows: Some(rows),
            features: None,
        } => {
            let mut maps = Vec::with_capacity(rows.len());
            for (i, RowFields(fields)) in rows.into_iter().enumerate() {
                let n = fields.len();
                let mut map = HashMap::with_capacity(n);
                for (k, v) in fields {
                    if map.contains_key(&k) {
                        return Err(ApiError::new(
                            ErrorCode::DuplicateFeature,
                            format!("row {i} has feature `{}` more than once", truncate(&k)),
                        ));
                    }
                    map.insert(k, v);
                }
                maps.push(map);
            }
            let rows = maps;
            // Column order is taken from the first row; every row must have the same keys.
            let mut columns: Vec<String> = rows
                .first()
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default();
            columns.sort();
            let mut data = Vec::with_capacity(rows.len());
            for (i, row) in rows.iter().enumerate() {
                if row.len() != columns.len() {
                    return Err(ApiError::wrong_arity(format!(
                        "row {i} has {} fields, row 0 has {}",
                        row.len(),
                        columns.len()
                    )));
                }
                let mut values = Vec::with_capacity(columns.len());
                for c in &columns {
                    match row.get(c) {
                        Some(v) => values.push(*v),
                        None => {
                            return Err(ApiError::new(
                                ErrorCode::MissingFeatures,
                                format!("row {i} lacks feature `{}`", truncate(c)),
                            ))
                        }
                    }
                }
                data.push(values);
            }
            Ok(ColumnsBatch { columns, data })
        }
        _ => Err(ApiError::new(
            ErrorCode::InvalidBatch,
            "send either {\"columns\": [...], \"data\": [[...]]} or {\"rows\": [{...}]}",
        )),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

impl ColumnsBatch {
    /// Matches the batch against the monitor's features and returns one column per feature
    /// in config order. `rename` maps incoming names (e.g. scikit-learn's "mean radius").
    pub fn into_feature_columns(
        self,
        cfg: &MonitorConfig,
        max_rows: usize,
        rename: impl Fn(&str) -> String,
    ) -> Result<Vec<Vec<f64>>, ApiError> {
        let n = self.data.len();
        if n == 0 {
            return Err(ApiError::new(
                ErrorCode::EmptyBatch,
                "the batch has no rows",
            ));
        }
        if n > max_rows {
            return Err(ApiError::too_large(format!(
                "the batch has {n} rows; at most {max_rows} are accepted per request"
            )));
        }
        let mut slot_of_column = Vec::with_capacity(self.columns.len());
        let mut seen = vec![false; cfg.features.len()];
        for c in &self.columns {
            let name = rename(c);
            let Some(slot) = cfg.feature_index(&name) else {
                return Err(ApiError::new(
                    ErrorCode::UnknownFeature,
                    format!(
                        "`{}` is not a feature of monitor `{}`",
                        truncate(c),
                        cfg.name
                    ),
                ));
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(ApiError::new(
                    ErrorCode::DuplicateFeature,
                    format!("`{}` appears more than once", truncate(c)),
                ));
            }
            slot_of_column.push(slot);
        }
        let missing: Vec<&str> = cfg
            .features
            .iter()
            .zip(&seen)
            .filter(|(_, s)| !**s)
            .map(|(f, _)| f.as_str())
            .collect();
        if !missing.is_empty() {
            let shown = missing
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApiError::new(
                ErrorCode::MissingFeatures,
                format!("{} feature(s) missing, e.g. {shown}", missing.len()),
            ));
        }
        let mut out = vec![Vec::with_capacity(n); cfg.features.len()];
        for (i, row) in self.data.iter().enumerate() {
            if row.len() != slot_of_column.len() {
                return Err(ApiError::wrong_arity(format!(
                    "row {i} has {} values for {} columns",
                    row.len(),
                    slot_of_column.len()
                )));
            }
            for (v, &slot) in row.iter().zip(&slot_of_column) {
                if !v.is_finite() {
                    return Err(ApiError::new(
                        ErrorCode::NonFiniteValue,
                        format!("row {i} has a non-finite value"),
                    ));
                }
                out[slot].push(*v);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drift_core::{Dataset, MonitorSpec, Params};

    fn cfg() -> MonitorConfig {
        let ds = Dataset::from_csv("a,b\n1,2\n3,4\n".as_bytes(), &[]).unwrap();
        MonitorSpec::new("m", &ds, Params::default(), 10)
            .unwrap()
            .config
    }

    fn cols(body: &str) -> Result<Vec<Vec<f64>>, ApiError> {
        parse_rows_body(body.as_bytes())?.into_feature_columns(&cfg(), 100, str::to_string)
    }

    #[test]
    fn both_forms_give_feature_major_columns() {
        let a = cols(r#"{"columns":["b","a"],"data":[[2,1],[4,3]]}"#).unwrap();
        assert_eq!(a, vec![vec![1.0, 3.0], vec![2.0, 4.0]]);
        let b = cols(r#"{"rows":[{"a":1,"b":2},{"b":4,"a":3}]}"#).unwrap();
        assert_eq!(a, b);
    }

    /// The parser is hand-written for precise error messages; it must accept every form
    /// the contract type documents.
    #[test]
    fn every_contract_form_parses() {
        use drift_contract::{Frame, RowObjects, RowsBatch, SplitFrame};
        let frame = Frame {
            columns: vec!["b".into(), "a".into()],
            data: vec![vec![2.0, 1.0], vec![4.0, 3.0]],
        };
        let rows = RowObjects {
            rows: vec![
                [("a".to_string(), 1.0), ("b".to_string(), 2.0)].into(),
                [("a".to_string(), 3.0), ("b".to_string(), 4.0)].into(),
            ],
        };
        for batch in [
            RowsBatch::Columns(frame.clone()),
            RowsBatch::Rows(rows),
            RowsBatch::Split(SplitFrame { features: frame }),
        ] {
            let body = serde_json::to_vec(&batch).unwrap();
            assert_eq!(
                cols(std::str::from_utf8(&body).unwrap()).unwrap(),
                vec![vec![1.0, 3.0], vec![2.0, 4.0]],
                "{batch:?}"
            );
        }
    }

    #[test]
    fn errors_have_the_contract_codes() {
        let many = format!(
            r#"{{"columns":["a","b"],"data":[{}]}}"#,
            vec!["[1,2]"; 101].join(",")
        );
        for (body, want) in [
            ("{", "malformed_json"),
            ("[]", "invalid_batch"),
            (r#"{"columns":["a","b"],"data":[]}"#, "empty_batch"),
            (r#"{"columns":["a"],"data":[[1]]}"#, "missing_features"),
            (
                r#"{"columns":["a","b","c"],"data":[[1,2,3]]}"#,
                "unknown_feature",
            ),
            (
                r#"{"columns":["a","a"],"data":[[1,2]]}"#,
                "duplicate_feature",
            ),
            (r#"{"columns":["a","b"],"data":[[1]]}"#, "wrong_arity"),
            (r#"{"columns":["a","b"],"data":[[1,"x"]]}"#, "invalid_batch"),
            (
                r#"{"columns":["a","b"],"data":[[1,null]]}"#,
                "invalid_batch",
            ),
            (
                r#"{"columns":["a","b"],"data":[[1,1e999]]}"#,
                "non_finite_value",
            ),
            (r#"{"rows":[{"a":1}]}"#, "missing_features"),
            (r#"{"rows":[{"a":1,"b":2},{"a":1}]}"#, "wrong_arity"),
            // A repeated key is refused, not resolved to its last value.
            (r#"{"rows":[{"a":1,"b":2,"a":999}]}"#, "duplicate_feature"),
            (
                r#"{"rows":[{"a":1,"b":2},{"b":1,"b":2}]}"#,
                "duplicate_feature",
            ),
            (r#"{"rows":[],"columns":["a"]}"#, "invalid_batch"),
            (
                r#"{"columns":["a","b"],"data":[[1,2]],"x":1}"#,
                "invalid_batch",
            ),
            (&many, "payload_too_large"),
        ] {
            assert_eq!(cols(body).unwrap_err().code.as_str(), want, "{body}");
        }
    }
}
