//! Reference data sets read from CSV: named columns of numeric or categorical features,
//! with missing values.

use crate::feature::{
    canonical_category, is_missing_token, FeatureKind, DEFAULT_MAX_CATEGORIES, OTHER,
};
use std::collections::{HashMap, HashSet};
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
    #[error("the CSV has no columns left after excluding {excluded:?}")]
    NoColumns { excluded: Vec<String> },
    #[error("column {index} of the header has an empty name")]
    EmptyName { index: usize },
    #[error("column `{name}` appears more than once in the header")]
    DuplicateName { name: String },
    #[error("column `{column}` has no values: every cell is missing")]
    NoValues { column: String },
    #[error("line {line}, column `{column}`: `{value}` is not a number (the column is declared numeric)")]
    NotNumeric {
        line: u64,
        column: String,
        value: String,
    },
    #[error("line {line}, column `{column}`: `{value}` is not finite (infinities are not valid reference values; NaN is read as missing)")]
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
    #[error("`{column}` is declared {kind} but is not a column of the CSV (or is excluded)")]
    UnknownColumn { column: String, kind: FeatureKind },
    #[error("`{column}` is declared both numeric and categorical")]
    ConflictingKinds { column: String },
    #[error(
        "column `{column}` has {found} distinct categories, more than the {max} allowed: \
         raise max_categories (up to {limit}), or keep the most frequent with top_categories=K \
         (the rest become `{other}`), or exclude the column",
        limit = crate::feature::MAX_CATEGORIES,
        other = OTHER
    )]
    TooManyCategories {
        column: String,
        found: usize,
        max: usize,
    },
    #[error("{name} must be 1 to {max} (got {value})")]
    CategoryLimit {
        name: &'static str,
        value: usize,
        max: usize,
    },
    #[error("CSV: {0}")]
    Csv(String),
}

/// How to read a reference CSV: columns to leave out, kinds that override the inference,
/// and the cap on categories.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvSchema {
    pub exclude: Vec<String>,
    /// Read as categorical even when every value is a number (integer codes).
    pub categorical: Vec<String>,
    /// Must be numeric: a non-numeric value is an error instead of making it categorical.
    pub numeric: Vec<String>,
    /// Most distinct reference categories of one feature.
    pub max_categories: usize,
    /// Keep this many of the most frequent categories and fold the rest (and, later, any
    /// value the reference did not have) into `__other__`, instead of refusing a feature
    /// with more than `max_categories`.
    pub top_categories: Option<usize>,
}

impl Default for CsvSchema {
    fn default() -> Self {
        CsvSchema {
            exclude: Vec::new(),
            categorical: Vec::new(),
            numeric: Vec::new(),
            max_categories: DEFAULT_MAX_CATEGORIES,
            top_categories: None,
        }
    }
}

impl CsvSchema {
    pub fn excluding(exclude: &[&str]) -> Self {
        CsvSchema {
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            ..CsvSchema::default()
        }
    }

    fn validate(&self, header: &csv::StringRecord) -> Result<(), DatasetError> {
        let limit = crate::feature::MAX_CATEGORIES;
        if !(1..=limit).contains(&self.max_categories) {
            return Err(DatasetError::CategoryLimit {
                name: "max_categories",
                value: self.max_categories,
                max: limit,
            });
        }
        if let Some(k) = self.top_categories.filter(|k| !(1..=limit).contains(k)) {
            return Err(DatasetError::CategoryLimit {
                name: "top_categories",
                value: k,
                max: limit,
            });
        }
        for (names, kind) in [
            (&self.categorical, FeatureKind::Categorical),
            (&self.numeric, FeatureKind::Numeric),
        ] {
            for c in names {
                if !header.iter().any(|h| h == c) || self.exclude.contains(c) {
                    return Err(DatasetError::UnknownColumn {
                        column: c.clone(),
                        kind,
                    });
                }
            }
        }
        if let Some(c) = self.categorical.iter().find(|c| self.numeric.contains(c)) {
            return Err(DatasetError::ConflictingKinds { column: c.clone() });
        }
        Ok(())
    }
}

/// Columns by name, in header order, each held as the f64 values windows hold (see
/// `feature`): numeric values, or category codes; NaN where a value is missing.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
    kinds: Vec<FeatureKind>,
    /// Each categorical column's categories, sorted (`__other__` last when folded); empty
    /// for numeric columns.
    categories: Vec<Vec<String>>,
}

fn csv_reader<R: Read>(reader: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(reader)
}

impl Dataset {
    /// Reads a CSV with a header line, every column but the `exclude`d ones, with the
    /// kinds inferred (see [`Dataset::from_csv_with`]).
    pub fn from_csv<R: Read>(reader: R, exclude: &[&str]) -> Result<Self, DatasetError> {
        Self::from_csv_with(reader, &CsvSchema::excluding(exclude))
    }

    /// Reads a CSV with a header line. A column is numeric when every value parses as a
    /// number, categorical otherwise, unless `schema` declares it; cells spelled as pandas
    /// spells missing values (empty, `NA`, `null`, `NaN`, ...) are missing.
    pub fn from_csv_with<R: Read>(mut reader: R, schema: &CsvSchema) -> Result<Self, DatasetError> {
        // Two passes (the kinds first, then the values): the body is read once into memory,
        // as the API already holds it.
        let mut body = Vec::new();
        reader
            .read_to_end(&mut body)
            .map_err(|e| DatasetError::Csv(e.to_string()))?;
        let mut rdr = csv_reader(body.as_slice());
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
        schema.validate(&header)?;
        let kept: Vec<usize> = (0..header.len())
            .filter(|&i| !schema.exclude.iter().any(|e| e == &header[i]))
            .collect();
        if kept.is_empty() {
            return Err(DatasetError::NoColumns {
                excluded: schema.exclude.clone(),
            });
        }
        let names: Vec<String> = kept.iter().map(|&i| header[i].to_string()).collect();
        let declared = |name: &str| {
            if schema.categorical.iter().any(|c| c == name) {
                Some(FeatureKind::Categorical)
            } else if schema.numeric.iter().any(|c| c == name) {
                Some(FeatureKind::Numeric)
            } else {
                None
            }
        };
        // Pass 1: the kinds.
        let mut kinds: Vec<FeatureKind> = names
            .iter()
            .map(|n| declared(n).unwrap_or(FeatureKind::Numeric))
            .collect();
        let mut record = csv::StringRecord::new();
        let mut rows = 0usize;
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
            rows += 1;
            for (slot, &i) in kept.iter().enumerate() {
                let cell = &record[i];
                if kinds[slot] == FeatureKind::Categorical || is_missing_token(cell) {
                    continue;
                }
                if cell.parse::<f64>().is_err() {
                    if declared(&names[slot]) == Some(FeatureKind::Numeric) {
                        return Err(DatasetError::NotNumeric {
                            line,
                            column: names[slot].clone(),
                            value: cell.chars().take(80).collect(),
                        });
                    }
                    kinds[slot] = FeatureKind::Categorical;
                }
            }
        }
        if rows == 0 {
            return Err(DatasetError::NoRows);
        }
        // Pass 2: the values; categories get provisional indexes in order of appearance.
        let mut columns = vec![Vec::with_capacity(rows); kept.len()];
        let mut provisional: Vec<HashMap<String, u32>> = vec![HashMap::new(); kept.len()];
        let mut counts: Vec<Vec<u64>> = vec![Vec::new(); kept.len()];
        let mut rdr = csv_reader(body.as_slice());
        while rdr.read_record(&mut record).map_err(csv_error)? {
            let line = record.position().map_or(0, |p| p.line());
            for (slot, &i) in kept.iter().enumerate() {
                let cell = &record[i];
                if is_missing_token(cell) {
                    columns[slot].push(f64::NAN);
                    continue;
                }
                match kinds[slot] {
                    FeatureKind::Numeric => {
                        columns[slot].push(parse_number(cell, line, &names[slot])?)
                    }
                    FeatureKind::Categorical => {
                        let map = &mut provisional[slot];
                        let next = map.len() as u32;
                        let id = *map.entry(canonical_category(cell)).or_insert(next);
                        if id as usize == counts[slot].len() {
                            counts[slot].push(0);
                        }
                        counts[slot][id as usize] += 1;
                        columns[slot].push(f64::from(id));
                    }
                }
            }
        }
        let mut categories = vec![Vec::new(); kept.len()];
        for slot in 0..kept.len() {
            if columns[slot].iter().all(|v| v.is_nan()) {
                return Err(DatasetError::NoValues {
                    column: names[slot].clone(),
                });
            }
            if kinds[slot] == FeatureKind::Categorical {
                let (cats, remap) = final_categories(
                    std::mem::take(&mut provisional[slot]),
                    &counts[slot],
                    schema,
                    &names[slot],
                )?;
                for v in columns[slot].iter_mut().filter(|v| !v.is_nan()) {
                    *v = f64::from(remap[*v as usize]);
                }
                categories[slot] = cats;
            }
        }
        Ok(Dataset {
            names,
            columns,
            kinds,
            categories,
        })
    }

    /// The embedded default data set with `target` excluded.
    pub fn breast_cancer() -> Result<Self, DatasetError> {
        Self::from_csv(BREAST_CANCER_CSV.as_bytes(), &[DEFAULT_TARGET])
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Every column as windows hold it: numbers or category codes, NaN where missing.
    pub fn columns(&self) -> &[Vec<f64>] {
        &self.columns
    }

    pub fn kinds(&self) -> &[FeatureKind] {
        &self.kinds
    }

    /// Each column's categories (empty for a numeric column).
    pub fn categories(&self) -> &[Vec<String>] {
        &self.categories
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
        self.kinds.remove(i);
        self.categories.remove(i);
        Some(self.columns.remove(i))
    }
}

/// Sorts a column's categories (folding all but the top K into `__other__` when asked)
/// and maps provisional indexes to final codes.
fn final_categories(
    provisional: HashMap<String, u32>,
    counts: &[u64],
    schema: &CsvSchema,
    column: &str,
) -> Result<(Vec<String>, Vec<u32>), DatasetError> {
    let mut by_id: Vec<(String, u32)> = provisional.into_iter().collect();
    by_id.sort_by_key(|(_, id)| *id);
    let found = by_id.len();
    let keep: Vec<bool> = match schema.top_categories {
        Some(k) if found > k => {
            // The K most frequent, ties broken by name, so the choice is deterministic.
            let mut order: Vec<usize> = (0..found).collect();
            order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(by_id[a].0.cmp(&by_id[b].0)));
            let mut keep = vec![false; found];
            for &i in order.iter().take(k) {
                keep[i] = true;
            }
            keep
        }
        _ if found > schema.max_categories => {
            return Err(DatasetError::TooManyCategories {
                column: column.to_string(),
                found,
                max: schema.max_categories,
            })
        }
        _ => vec![true; found],
    };
    let folded = keep.iter().any(|k| !k);
    let mut names: Vec<String> = by_id
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|((n, _), _)| n.clone())
        .filter(|n| n != OTHER)
        .collect();
    names.sort();
    if folded || by_id.iter().any(|(n, _)| n == OTHER) {
        names.push(OTHER.to_string());
    }
    let code_of: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    let other = code_of.get(OTHER).copied().unwrap_or(0);
    let remap = by_id
        .iter()
        .zip(&keep)
        .map(|((n, _), k)| {
            if *k {
                code_of.get(n.as_str()).copied().unwrap_or(other)
            } else {
                other
            }
        })
        .collect();
    Ok((names, remap))
}

fn parse_number(raw: &str, line: u64, column: &str) -> Result<f64, DatasetError> {
    let value: f64 = raw.parse().map_err(|_| DatasetError::NotNumeric {
        line,
        column: column.to_string(),
        value: raw.chars().take(80).collect(),
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
    fn kinds_are_inferred_and_missing_cells_are_nan() {
        let d = load("x,c,k,target\n1.5,a,3,0\nNA,b,,1\n2,a,3.0,1\n,,4,0\n").unwrap();
        assert_eq!(d.names(), ["x", "c", "k"]);
        assert_eq!(
            d.kinds(),
            [
                FeatureKind::Numeric,
                FeatureKind::Categorical,
                FeatureKind::Numeric
            ]
        );
        let x = d.column("x").unwrap();
        assert_eq!((x[0], x[2]), (1.5, 2.0));
        assert!(x[1].is_nan() && x[3].is_nan());
        assert_eq!(d.categories()[1], ["a", "b"]);
        let c = d.column("c").unwrap();
        assert_eq!(&c[..3], [0.0, 1.0, 0.0]);
        assert!(c[3].is_nan());
        // Declared categorical: an integer and its decimal string are one category.
        let schema = CsvSchema {
            exclude: vec!["target".into()],
            categorical: vec!["k".into()],
            ..CsvSchema::default()
        };
        let d = Dataset::from_csv_with("k,x\n3,1\n3.0,2\n10,3\n,4\n".as_bytes(), &schema).unwrap();
        assert_eq!(d.kinds()[0], FeatureKind::Categorical);
        assert_eq!(d.categories()[0], ["10", "3"]);
        assert_eq!(&d.columns()[0][..3], [1.0, 1.0, 0.0]);
    }

    #[test]
    fn too_many_categories_is_refused_or_folded() {
        let csv: String = std::iter::once("c\n".to_string())
            .chain((0..60).map(|i| format!("v{}\n", i % 55)))
            .collect();
        let err = Dataset::from_csv(csv.as_bytes(), &[]).unwrap_err();
        assert_eq!(
            err,
            DatasetError::TooManyCategories {
                column: "c".into(),
                found: 55,
                max: 50
            }
        );
        assert!(err.to_string().contains("top_categories"), "{err}");
        let top = CsvSchema {
            top_categories: Some(3),
            ..CsvSchema::default()
        };
        let d = Dataset::from_csv_with(csv.as_bytes(), &top).unwrap();
        // v0..v4 appear twice; the three first by name among them are kept.
        assert_eq!(d.categories()[0], ["v0", "v1", "v2", OTHER]);
        assert_eq!(d.columns()[0][0], 0.0);
        assert_eq!(d.columns()[0][10], 3.0);
        let bad = CsvSchema {
            categorical: vec!["nope".into()],
            ..CsvSchema::default()
        };
        assert!(matches!(
            Dataset::from_csv_with(csv.as_bytes(), &bad),
            Err(DatasetError::UnknownColumn { .. })
        ));
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
            Err(DatasetError::NoValues { column: "b".into() })
        );
        let strict = CsvSchema {
            numeric: vec!["b".into()],
            ..CsvSchema::default()
        };
        assert_eq!(
            Dataset::from_csv_with("a,b\n1,2\n1,x\n".as_bytes(), &strict),
            Err(DatasetError::NotNumeric {
                line: 3,
                column: "b".into(),
                value: "x".into()
            })
        );
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
