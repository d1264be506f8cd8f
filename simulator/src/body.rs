//! The JSON body of a batch, `{"columns": [...], "data": [[...], ...]}`, written straight
//! from the generator's rows: numbers as numbers, category codes as their category's name
//! (a string, as the API takes categories, integer codes such as `2007` included), NaN as
//! `null` (missing).

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

/// One batch, serialised without copying a row.
pub struct RowsBody<'a> {
    pub columns: &'a [String],
    /// Per column, the category names by code (`None`: numeric).
    pub labels: &'a [Option<Vec<String>>],
    pub rows: &'a [Vec<f64>],
}

impl Serialize for RowsBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut body = s.serialize_struct("RowsBody", 2)?;
        body.serialize_field("columns", self.columns)?;
        body.serialize_field(
            "data",
            &Rows {
                labels: self.labels,
                rows: self.rows,
            },
        )?;
        body.end()
    }
}

struct Rows<'a> {
    labels: &'a [Option<Vec<String>>],
    rows: &'a [Vec<f64>],
}

impl Serialize for Rows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for row in self.rows {
            seq.serialize_element(&Row {
                labels: self.labels,
                row,
            })?;
        }
        seq.end()
    }
}

struct Row<'a> {
    labels: &'a [Option<Vec<String>>],
    row: &'a [f64],
}

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.row.len()))?;
        for (j, &v) in self.row.iter().enumerate() {
            if v.is_nan() {
                seq.serialize_element(&None::<f64>)?;
                continue;
            }
            match self.labels.get(j).and_then(Option::as_ref) {
                None => seq.serialize_element(&v)?,
                // A code past the names cannot come from the generator; sent as missing
                // rather than as a number the API would refuse for a categorical feature.
                Some(names) => seq.serialize_element(&names.get(v as usize))?,
            }
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_names_and_nulls() {
        let columns = vec!["x".to_string(), "species".to_string(), "year".to_string()];
        let labels = vec![
            None,
            Some(vec!["Adelie".to_string(), "Gentoo".to_string()]),
            Some(vec!["2007".to_string()]),
        ];
        let rows = vec![vec![1.5, 1.0, 0.0], vec![f64::NAN, f64::NAN, 0.0]];
        let body = RowsBody {
            columns: &columns,
            labels: &labels,
            rows: &rows,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"columns": ["x", "species", "year"],
                   "data": [[1.5, "Gentoo", "2007"], [null, null, "2007"]]})
        );
        // All numeric: the body the simulator always sent.
        let rows = vec![vec![1.0, 2.0]];
        let body = RowsBody {
            columns: &columns[..2],
            labels: &[None, None],
            rows: &rows,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"columns":["x","species"],"data":[[1.0,2.0]]}"#
        );
    }
}
