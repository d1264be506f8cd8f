//! Reference data sets: named numeric columns read from CSV.

use std::collections::HashSet;
use std::io::Read;

/// The default reference data set (Breast Cancer Wisconsin (Diagnostic), CC BY 4.0; see
/// `data/README.md`). Embedded so that every binary runs from any directory.
pub const BREAST_CANCER_CSV: &str = include_str!("../../data/breast_cancer.csv");
/// Name of the default monitor built from [`BREAST_CANCER_CSV`].
pub const DEFAULT_MONITOR: &str = "breast_cancer";
/// The label column of the default data set, kept out of the monitored features.
pub const DEFAULT_TARGET: &str = "target";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DatasetError {
    #[error("the CSV is empty: it needs a header line and at least one data row")]
    Empty,
    #[error("the CSV has a header but no data rows")]
    NoRows,
    #[error("the CSV has no numeric columns left after excluding {excluded:?}")]
    NoColumns { excluded: Vec<String> },
    #[error("column {index} of the header has an empty name")]
    EmptyName { index: usize },
    #[error("column `{name}` appears more than once in the header")]
    DuplicateName { name: String },
    #[error("line {line}, column `{column}`: missing value")]
    Missing { line: u64, column: String },
    #[error("line {line}, column `{column}`: `{value}` is not a number")]
    NotNumeric {
        line: u64,
        column: String,
        value: String,
    },
    #[error("line {line}, column `{column}`: `{value}` is not finite (NaN and infinities are not valid reference values)")]
    NonFinite {
        line: u64,
        column: String,
        value: String,
    },
    #[error("line {line}: expected {expected} fields, found {found}")]
    Arity {
        line: u64,
        expected: usize,
        found: usize,
    },
    #[error("CSV: {0}")]
    Csv(String),
}

/// Numeric columns by name, in header order.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
}

impl Dataset {
    /// Reads a CSV with a header line; every column must be numeric and finite, except the
    /// `exclude`d ones, which are skipped without being parsed.
    pub fn from_csv<R: Read>(reader: R, exclude: &[&str]) -> Result<Self, DatasetError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let header = rdr.headers().map_err(csv_error)?.clone();
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Err(DatasetError::Empty);
        }
        let mut seen = HashSet::new();
        for (index, name) in header.iter().enumerate() {
            if name.is_empty() {
                return Err(DatasetError::EmptyName { index });
            }
            if !seen.insert(name) {
                return Err(DatasetError::DuplicateName {
                    name: name.to_string(),
                });
            }
        }
        let kept: Vec<usize> = (0..header.len())
            .filter(|&i| !exclude.contains(&&header[i]))
            .collect();
        if kept.is_empty() {
            return Err(DatasetError::NoColumns {
                excluded: exclude.iter().map(|s| s.to_string()).collect(),
            });
        }
        let names: Vec<String> = kept.iter().map(|&i| header[i].to_string()).collect();
        let mut columns = vec![Vec::new(); kept.len()];
        let mut record = csv::StringRecord::new();
        loop {
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(csv_error(e)),
            }
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != header.len() {
                return Err(DatasetError::Arity {
                    line,
                    expected: header.len(),
                    found: record.len(),
                });
            }
            for (slot, &i) in kept.iter().enumerate() {
                columns[slot].push(parse_cell(&record[i], line, &header[i])?);
            }
        }
        if columns[0].is_empty() {
            return Err(DatasetError::NoRows);
        }
        Ok(Dataset { names, columns })
    }

    /// The embedded default data set with `target` excluded.
    pub fn breast_cancer() -> Result<Self, DatasetError> {
        Self::from_csv(BREAST_CANCER_CSV.as_bytes(), &[DEFAULT_TARGET])
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn columns(&self) -> &[Vec<f64>] {
        &self.columns
    }

    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| self.columns[i].as_slice())
    }

    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    /// Removes a column and returns it; used for the label a model is fit on.
    pub fn take_column(&mut self, name: &str) -> Option<Vec<f64>> {
        let i = self.names.iter().position(|n| n == name)?;
        self.names.remove(i);
        Some(self.columns.remove(i))
    }
}

fn parse_cell(raw: &str, line: u64, column: &str) -> Result<f64, DatasetError> {
    if raw.is_empty() {
        return Err(DatasetError::Missing {
            line,
            column: column.to_string(),
        });
    }
    let value: f64 = raw.parse().map_err(|_| DatasetError::NotNumeric {
        line,
        column: column.to_string(),
        value: raw.to_string(),
    })?;
    if !value.is_finite() {
        return Err(DatasetError::NonFinite {
            line,
            column: column.to_string(),
            value: raw.to_string(),
        });
    }
    Ok(value)
}

fn csv_error(e: csv::Error) -> DatasetError {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => DatasetError::Arity {
            line: pos.as_ref().map_or(0, |p| p.line()),
            expected: *expected_len as usize,
            found: *len as usize,
        },
        csv::ErrorKind::Utf8 { pos, .. } => DatasetError::Csv(format!(
            "line {}: invalid UTF-8",
            pos.as_ref().map_or(0, |p| p.line())
        )),
        _ => DatasetError::Csv(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(s: &str) -> Result<Dataset, DatasetError> {
        Dataset::from_csv(s.as_bytes(), &["target"])
    }

    #[test]
    fn default_data_set_has_30_features_and_569_rows() {
        let d = Dataset::breast_cancer().unwrap();
        assert_eq!(d.names().len(), 30);
        assert_eq!(d.n_rows(), 569);
        assert_eq!(d.names()[0], "mean_radius");
        assert_eq!(d.column("mean_radius").unwrap()[0], 17.99);
        assert!(d.column("target").is_none());
    }

    #[test]
    fn excluded_column_is_not_parsed() {
        let d = load("a,target,b\n1,yes,2\n3,no,4\n").unwrap();
        assert_eq!(d.names(), ["a", "b"]);
        assert_eq!(d.columns(), [vec![1.0, 3.0], vec![2.0, 4.0]]);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        assert_eq!(load(""), Err(DatasetError::Empty));
        assert_eq!(load("a,b\n"), Err(DatasetError::NoRows));
        assert_eq!(
            load("a,a\n1,2\n"),
            Err(DatasetError::DuplicateName { name: "a".into() })
        );
        assert_eq!(
            load("a,b\n1,\n"),
            Err(DatasetError::Missing {
                line: 2,
                column: "b".into()
            })
        );
        assert_eq!(
            load("a,b\n1,2\n1,x\n"),
            Err(DatasetError::NotNumeric {
                line: 3,
                column: "b".into(),
                value: "x".into()
            })
        );
        assert!(matches!(
            load("a,b\n1,NaN\n"),
            Err(DatasetError::NonFinite { line: 2, .. })
        ));
        assert!(matches!(
            load("a,b\n1,inf\n"),
            Err(DatasetError::NonFinite { .. })
        ));
        assert!(matches!(
            load("a,b\n1,2,3\n"),
            Err(DatasetError::Arity { line: 2, .. })
        ));
        assert!(matches!(
            load("target\n1\n"),
            Err(DatasetError::NoColumns { .. })
        ));
        assert!(matches!(
            load("a,,b\n1,2,3\n"),
            Err(DatasetError::EmptyName { index: 1 })
        ));
    }
}
