//! The monitors config file: more monitors with their own reference CSVs.
//!
//! ```toml
//! [[monitor]]
//! name = "fraud"
//! reference = "data/fraud_reference.csv"   # relative to this file
//! exclude = ["label"]
//! categorical = ["plan_code"]             # integer codes read as categories
//! numeric = ["amount"]                    # must be numbers
//! max_categories = 50
//! # top_categories = 20                   # keep the 20 most frequent, fold the rest
//! window = 1000
//! stride = 200
//! alpha = 0.01
//! correction = "bh"
//! sample_rate = 0.1                       # keep each ingested row with probability 0.1
//! ```

use drift_core::{Correction, CsvSchema, Dataset, MonitorSpec, Params};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    monitor: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    reference: String,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    categorical: Vec<String>,
    #[serde(default)]
    numeric: Vec<String>,
    max_categories: Option<usize>,
    top_categories: Option<usize>,
    window: Option<usize>,
    stride: Option<usize>,
    alpha: Option<f64>,
    correction: Option<Correction>,
    dataset_drift_share: Option<f64>,
    ert: Option<f64>,
    reference_confidence: Option<f64>,
    sample_rate: Option<f64>,
}

/// Reads every monitor of the file; `defaults` fills parameters an entry leaves out.
pub fn load(path: &Path, defaults: &Params) -> anyhow::Result<Vec<MonitorSpec>> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading monitors config {}", path.display()))?;
    let file: File =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut specs = Vec::new();
    for e in file.monitor {
        let csv_path = dir.join(&e.reference);
        let reader = std::fs::File::open(&csv_path)
            .with_context(|| format!("monitor `{}`: opening {}", e.name, csv_path.display()))?;
        let schema = CsvSchema {
            exclude: e.exclude.clone(),
            categorical: e.categorical.clone(),
            numeric: e.numeric.clone(),
            max_categories: e
                .max_categories
                .unwrap_or(CsvSchema::default().max_categories),
            top_categories: e.top_categories,
        };
        let ds = Dataset::from_csv_with(reader, &schema)
            .with_context(|| format!("monitor `{}`: {}", e.name, csv_path.display()))?;
        let params = Params {
            window: e.window.unwrap_or(defaults.window),
            stride: e.stride.unwrap_or(defaults.stride),
            alpha: e.alpha.unwrap_or(defaults.alpha),
            correction: e.correction.unwrap_or(defaults.correction),
            dataset_drift_share: e
                .dataset_drift_share
                .unwrap_or(defaults.dataset_drift_share),
            ert: e.ert.unwrap_or(defaults.ert),
            reference_confidence: e
                .reference_confidence
                .unwrap_or(defaults.reference_confidence),
            sample_rate: e.sample_rate.unwrap_or(defaults.sample_rate),
        };
        specs.push(
            MonitorSpec::new(&e.name, &ds, params, 1024)
                .with_context(|| format!("monitor `{}`", e.name))?,
        );
    }
    Ok(specs)
}
