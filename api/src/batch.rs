//! Parsing and validating a batch of rows against a monitor's features.
//!
//! Validation is complete before anything is written: a batch is accepted whole or
//! rejected whole. Values are encoded as windows hold them (see `drift_core::feature`):
//! numbers, category codes, NaN for missing.

use crate::error::{ApiError, ErrorCode};
use drift_core::feature::{canonical_category, integer_category, is_integral, Categories};
use drift_core::MonitorConfig;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// One JSON value of a row, before it is matched to its feature's kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Number(f64),
    Text(String),
    /// `null`, or a key left out of a `rows` object.
    Missing,
    /// A boolean, an array or an object: never a feature value; named in the error.
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CellVisitor;
        impl<'de> Visitor<'de> for CellVisitor {
            type Value = Cell;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, a string or null")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Cell, E> {
                Ok(Cell::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Cell, E> {
                Ok(Cell::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Cell, E> {
                Ok(Cell::Number(v as f64))
            }
            fn visit_str<E>(self, v: &str) -> Result<Cell, E> {
                Ok(Cell::Text(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Cell, E> {
                Ok(Cell::Text(v))
            }
            fn visit_unit<E>(self) -> Result<Cell, E> {
                Ok(Cell::Missing)
            }
            fn visit_none<E>(self) -> Result<Cell, E> {
                Ok(Cell::Missing)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Cell, E> {
                Ok(Cell::Other("a boolean"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cell, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Cell::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Cell, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Cell::Other("an object"))
            }
        }
        d.deserialize_any(CellVisitor)
    }
}

/// Both body forms of the rows endpoint.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch {
    columns: Option<Vec<String>>,
    data: Option<Vec<Vec<Cell>>>,
    rows: Option<Vec<RowFields>>,
    /// The prototype's pandas "split" frame: `{"features": {"columns": [...], "data": [...]}}`.
    features: Option<Frame>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Frame {
    columns: Vec<String>,
    data: Vec<Vec<Cell>>,
}

/// One object of the `rows` form, its fields in body order with duplicates kept: a JSON
/// object with a repeated key is refused (a map would silently keep the last value).
struct RowFields(Vec<(String, Cell)>);

impl<'de> Deserialize<'de> for RowFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = RowFields;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of feature values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowFields, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
                while let Some(entry) = map.next_entry::<String, Cell>()? {
                    out.push(entry);
                }
                Ok(RowFields(out))
            }
        }
        d.deserialize_map(Fields)
    }
}

/// A batch, before it is matched against a monitor: the columns form, or row objects
/// (whose left-out keys are missing values).
pub enum ParsedBatch {
    Columns {
        columns: Vec<String>,
        data: Vec<Vec<Cell>>,
    },
    Rows(Vec<Vec<(String, Cell)>>),
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

/// Parses either body form.
pub fn parse_rows_body(body: &[u8]) -> Result<ParsedBatch, ApiError> {
    let raw: RawBatch = serde_json::from_slice(body).map_err(json_error)?;
    match raw {
        RawBatch {
            columns: Some(columns),
            data: Some(data),
            rows: None,
            features: None,
        }
        | RawBatch {
            columns: None,
            data: None,
            rows: None,
            features: Some(Frame { columns, data }),
        } => Ok(ParsedBatch::Columns { columns, data }),
        RawBatch {
            columns: None,
            data: None,
            rows: Some(rows),
            features: None,
        } => Ok(ParsedBatch::Rows(rows.into_iter().map(|r| r.0).collect())),
        _ => Err(ApiError::new(
            ErrorCode::InvalidBatch,
            "send either {\"columns\": [...], \"data\": [[...]]} or {\"rows\": [{...}]}",
        )),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Encodes one value for feature `slot` (see `drift_core::feature`).
fn encode(
    cell: &Cell,
    codes: Option<&Categories>,
    row: usize,
    feature: &str,
) -> Result<f64, ApiError> {
    let bad = |what: &str, kind: &str| {
        ApiError::new(
            ErrorCode::InvalidValue,
            format!(
                "row {row}, column `{}`: {what} is not a value of a {kind} feature",
                truncate(feature)
            ),
        )
    };
    match (cell, codes) {
        (Cell::Missing, _) => Ok(f64::NAN),
        (Cell::Number(v), None) if v.is_finite() => Ok(*v),
        (Cell::Number(_), None) => Err(ApiError::new(
            ErrorCode::NonFiniteValue,
            format!(
                "row {row}, column `{}`: the value is not finite",
                truncate(feature)
            ),
        )),
        (Cell::Text(_), None) => Err(bad("a string", "numeric")),
        (Cell::Other(what), None) => Err(bad(what, "numeric")),
        (Cell::Number(v), Some(c)) if is_integral(*v) => Ok(c.code(&integer_category(*v))),
        (Cell::Number(_), Some(_)) => Err(bad(
            "a fractional number (categories are strings or integers)",
            "categorical",
        )),
        (Cell::Text(s), Some(c)) => Ok(c.code(&canonical_category(s))),
        (Cell::Other(what), Some(_)) => Err(bad(what, "categorical")),
    }
}

impl ParsedBatch {
    /// Matches the batch against the monitor's features and returns one column per feature
    /// in config order, encoded. `rename` maps incoming names (e.g. scikit-learn's "mean
    /// radius").
    pub fn into_feature_columns(
        self,
        cfg: &MonitorConfig,
        max_rows: usize,
        rename: impl Fn(&str) -> String,
    ) -> Result<Vec<Vec<f64>>, ApiError> {
        let n = match &self {
            ParsedBatch::Columns { data, .. } => data.len(),
            ParsedBatch::Rows(rows) => rows.len(),
        };
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
        let codes = cfg.codes();
        let slot_of = |c: &str| {
            cfg.feature_index(&rename(c)).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownFeature,
                    format!(
                        "`{}` is not a feature of monitor `{}`",
                        truncate(c),
                        cfg.name
                    ),
                )
            })
        };
        let nf = cfg.features.len();
        let mut out = vec![Vec::with_capacity(n); nf];
        match self {
            ParsedBatch::Columns { columns, data } => {
                let mut slot_of_column = Vec::with_capacity(columns.len());
                let mut seen = vec![false; nf];
                for c in &columns {
                    let slot = slot_of(c)?;
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
                        .map(|f| truncate(f))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(ApiError::new(
                        ErrorCode::MissingFeatures,
                        format!(
                            "{} feature(s) missing, e.g. {shown} (send null for a missing value)",
                            missing.len()
                        ),
                    ));
                }
                for (i, row) in data.iter().enumerate() {
                    if row.len() != slot_of_column.len() {
                        return Err(ApiError::wrong_arity(format!(
                            "row {i} has {} values for {} columns",
                            row.len(),
                            slot_of_column.len()
                        )));
                    }
                    for (cell, &slot) in row.iter().zip(&slot_of_column) {
                        let f = &cfg.features[slot];
                        out[slot].push(encode(cell, codes[slot].as_ref(), i, f)?);
                    }
                }
            }
            ParsedBatch::Rows(rows) => {
                let mut filled = vec![usize::MAX; nf];
                for (i, fields) in rows.iter().enumerate() {
                    if fields.is_empty() {
                        return Err(ApiError::new(
                            ErrorCode::MissingFeatures,
                            format!("row {i} has no features (send null for a missing value)"),
                        ));
                    }
                    for (k, cell) in fields {
                        let slot = slot_of(k)?;
                        if filled[slot] == i {
                            return Err(ApiError::new(
                                ErrorCode::DuplicateFeature,
                                format!("row {i} has feature `{}` more than once", truncate(k)),
                            ));
                        }
                        filled[slot] = i;
                        let f = &cfg.features[slot];
                        out[slot].push(encode(cell, codes[slot].as_ref(), i, f)?);
                    }
                    // A key left out is a missing value.
                    for (slot, col) in out.iter_mut().enumerate() {
                        if filled[slot] != i {
                            col.push(f64::NAN);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Rows from a row-major numeric frame (the prototype's `/datadrift`), for callers that
/// already hold numbers.
pub fn numeric_frame(columns: Vec<String>, data: Vec<Vec<f64>>) -> ParsedBatch {
    ParsedBatch::Columns {
        columns,
        data: data
            .into_iter()
            .map(|r| r.into_iter().map(Cell::Number).collect())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drift_core::{CsvSchema, Dataset, MonitorSpec, Params};

    fn cfg() -> MonitorConfig {
        let ds = Dataset::from_csv("a,b\n1,2\n3,4\n".as_bytes(), &[]).unwrap();
        let params = Params {
            correction: drift_core::Correction::Bonferroni,
            ..Params::default()
        };
        MonitorSpec::new("m", &ds, params, 10).unwrap().config
    }

    /// x numeric, c categorical (strings), k categorical (integer codes).
    fn mixed() -> MonitorConfig {
        let schema = CsvSchema {
            categorical: vec!["k".into()],
            ..CsvSchema::default()
        };
        let ds = Dataset::from_csv_with("x,c,k\n1,red,1\n2,blue,2\n,red,\n".as_bytes(), &schema)
            .unwrap();
        let params = Params {
            correction: drift_core::Correction::Bonferroni,
            ..Params::default()
        };
        MonitorSpec::new("m", &ds, params, 10).unwrap().config
    }

    fn cols(body: &str) -> Result<Vec<Vec<f64>>, ApiError> {
        parse_rows_body(body.as_bytes())?.into_feature_columns(&cfg(), 100, str::to_string)
    }

    fn mixed_cols(body: &str) -> Result<Vec<Vec<f64>>, ApiError> {
        parse_rows_body(body.as_bytes())?.into_feature_columns(&mixed(), 100, str::to_string)
    }

    /// NaN-aware equality, as missing values are NaN.
    fn same(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|(u, v)| u == v || (u.is_nan() && v.is_nan()))
            })
    }

    #[test]
    fn both_forms_give_feature_major_columns() {
        let a = cols(r#"{"columns":["b","a"],"data":[[2,1],[4,3]]}"#).unwrap();
        assert_eq!(a, vec![vec![1.0, 3.0], vec![2.0, 4.0]]);
        let b = cols(r#"{"rows":[{"a":1,"b":2},{"b":4,"a":3}]}"#).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn mixed_rows_are_encoded_as_windows_hold_them() {
        let m = mixed();
        assert_eq!(m.categories(1), ["blue", "red"]);
        assert_eq!(m.categories(2), ["1", "2"]);
        let nan = f64::NAN;
        // Integers and their strings are one category; unseen values get code 2 (past the
        // last category); null and left-out keys are missing.
        let a = mixed_cols(
            r#"{"columns":["x","c","k"],"data":[[1.5,"red",2],[null,"green","1"],[3,null,7]]}"#,
        )
        .unwrap();
        assert!(same(
            &a,
            &[
                vec![1.5, nan, 3.0],
                vec![1.0, 2.0, nan],
                vec![1.0, 0.0, 2.0]
            ]
        ));
        let b = mixed_cols(
            r#"{"rows":[{"x":1.5,"c":"red","k":2},{"c":"green","k":"1.0"},{"x":3,"k":7}]}"#,
        )
        .unwrap();
        assert!(same(&a, &b), "{a:?} {b:?}");
    }

    #[test]
    fn values_of_the_wrong_kind_name_the_row_and_column() {
        for (body, code, needle) in [
            (
                r#"{"columns":["x","c","k"],"data":[[1,"a",1],["1","a",1]]}"#,
                "invalid_value",
                "row 1, column `x`",
            ),
            (
                r#"{"columns":["x","c","k"],"data":[[true,"a",1]]}"#,
                "invalid_value",
                "a boolean",
            ),
            (
                r#"{"columns":["x","c","k"],"data":[[1,[1],1]]}"#,
                "invalid_value",
                "column `c`: an array",
            ),
            (
                r#"{"columns":["x","c","k"],"data":[[1,{"a":1},1]]}"#,
                "invalid_value",
                "an object",
            ),
            (
                r#"{"columns":["x","c","k"],"data":[[1,"a",1.5]]}"#,
                "invalid_value",
                "column `k`: a fractional number",
            ),
            (
                r#"{"rows":[{"x":1},{"k":false}]}"#,
                "invalid_value",
                "row 1, column `k`",
            ),
            (
                r#"{"rows":[{"x":1},{}]}"#,
                "missing_features",
                "row 1 has no features",
            ),
            (
                r#"{"columns":["x","c","k"],"data":[[1e999,"a",1]]}"#,
                "non_finite_value",
                "",
            ),
        ] {
            let err = mixed_cols(body).unwrap_err();
            assert_eq!(err.code.as_str(), code, "{body}: {}", err.message);
            assert!(err.message.contains(needle), "{body}: {}", err.message);
        }
    }

    /// The parser is hand-written for precise error messages; it must accept every form
    /// the contract type documents.
    #[test]
    fn every_contract_form_parses() {
        use drift_contract::{FeatureValue, Frame, RowObjects, RowsBatch, SplitFrame};
        let frame = Frame {
            columns: vec!["c".into(), "x".into(), "k".into()],
            data: vec![
                vec![Some("red".into()), Some(1.0.into()), Some(1.0.into())],
                vec![None, Some(2.0.into()), Some("2".into())],
            ],
        };
        let row = |pairs: &[(&str, Option<FeatureValue>)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        let rows = RowObjects {
            rows: vec![
                row(&[
                    ("x", Some(1.0.into())),
                    ("c", Some("red".into())),
                    ("k", Some(1.0.into())),
                ]),
                row(&[
                    ("x", Some(2.0.into())),
                    ("c", None),
                    ("k", Some("2".into())),
                ]),
            ],
        };
        let want = vec![vec![1.0, 2.0], vec![1.0, f64::NAN], vec![0.0, 1.0]];
        for batch in [
            RowsBatch::Columns(frame.clone()),
            RowsBatch::Rows(rows),
            RowsBatch::Split(SplitFrame { features: frame }),
        ] {
            let body = serde_json::to_vec(&batch).unwrap();
            let got = mixed_cols(std::str::from_utf8(&body).unwrap()).unwrap();
            assert!(same(&got, &want), "{batch:?}: {got:?}");
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
            (r#"{"columns":["a","b"],"data":[[1,"x"]]}"#, "invalid_value"),
            (r#"{"columns":["a","b"],"data":[1]}"#, "invalid_batch"),
            (
                r#"{"columns":["a","b"],"data":[[1,1e999]]}"#,
                "non_finite_value",
            ),
            (r#"{"rows":[{"a":1,"c":2}]}"#, "unknown_feature"),
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
        // Missing values are accepted: null, or a key left out of a row object.
        let nan = cols(r#"{"columns":["a","b"],"data":[[1,null]]}"#).unwrap();
        assert!(nan[1][0].is_nan());
        let left_out = cols(r#"{"rows":[{"a":1,"b":2},{"a":1}]}"#).unwrap();
        assert!(left_out[1][1].is_nan() && left_out[1][0] == 2.0);
    }
}
