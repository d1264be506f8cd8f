//! Request examples of the document: complete, valid requests for the default monitor, so
//! that a reader can paste them and a schema-driven tester reaches the success paths, not
//! only the rejections.

use drift_contract::{DataDriftFrame, DataDriftRequest, Frame, RowsBatch};
use drift_core::Dataset;

/// The feature names and first row of the embedded reference data set.
fn first_row() -> (Vec<String>, Vec<f64>) {
    match Dataset::breast_cancer() {
        Ok(ds) => (
            ds.names().to_vec(),
            ds.columns()
                .iter()
                .filter_map(|c| c.first().copied())
                .collect(),
        ),
        Err(_) => (Vec::new(), Vec::new()),
    }
}

/// One row for `breast_cancer`, in the columns form.
pub fn rows_batch() -> RowsBatch {
    let (columns, row) = first_row();
    RowsBatch::Columns(Frame::numeric(columns, vec![row]))
}

/// The prototype's body, with scikit-learn's feature names.
pub fn datadrift_request() -> DataDriftRequest {
    let (columns, row) = first_row();
    DataDriftRequest {
        features: DataDriftFrame {
            columns: columns.iter().map(|c| c.replace('_', " ")).collect(),
            data: vec![row],
        },
    }
}

/// A small reference CSV with a label column to exclude.
pub fn reference_csv() -> String {
    let mut csv = String::from("amount,latency_ms,label\n");
    for i in 0..20u32 {
        let x = f64::from(i);
        csv.push_str(&format!("{},{},{}\n", 10.0 + x * 1.5, 120.0 - x, i % 2));
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::parse_rows_body;
    use crate::routes::datadrift::snake;
    use drift_core::{MonitorSpec, Params};

    #[test]
    fn examples_are_accepted() {
        let cfg = MonitorSpec::default_monitor(Params::default())
            .unwrap()
            .config;
        let body = serde_json::to_vec(&rows_batch()).unwrap();
        let cols = parse_rows_body(&body)
            .unwrap()
            .into_feature_columns(&cfg, 10, str::to_string)
            .unwrap();
        assert_eq!(cols.len(), 30);
        let dd = datadrift_request();
        assert_eq!(dd.features.columns[0], "mean radius");
        assert_eq!(snake(&dd.features.columns[0]), cfg.features[0]);
        let ds = Dataset::from_csv(reference_csv().as_bytes(), &["label"]).unwrap();
        assert_eq!(ds.names(), ["amount", "latency_ms"]);
    }
}
