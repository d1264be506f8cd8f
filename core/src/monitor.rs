//! Monitor definitions: what is monitored, against which reference, with which parameters.

use crate::alarm::Correction;
use crate::dataset::Dataset;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest monitor name accepted; names end up in Redis keys and metric labels.
pub const MAX_MONITOR_NAME: usize = 64;
/// Longest feature name accepted.
pub const MAX_FEATURE_NAME: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("monitor name `{0}` is invalid: use 1-64 characters from [A-Za-z0-9_.-]")]
    MonitorName(String),
    #[error("feature name `{0}` is invalid: use 1-128 printable characters without braces")]
    FeatureName(String),
    #[error("window must be at least 2 rows (got {0})")]
    Window(usize),
    #[error("stride must be at least 1 row (got {0})")]
    Stride(usize),
    #[error("alpha must be in (0, 1) (got {0})")]
    Alpha(f64),
    #[error("dataset drift share must be in (0, 1] (got {0})")]
    Share(f64),
    #[error("the reference needs at least one feature")]
    NoFeatures,
    #[error("the reference has {0} features; at most {1} are allowed")]
    TooManyFeatures(usize, usize),
}

/// Evaluation parameters of a monitor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Params {
    /// Rows in each feature's rolling window.
    pub window: usize,
    /// Rows between evaluations once the window is full.
    pub stride: usize,
    /// Family-wise significance level (before correction).
    pub alpha: f64,
    pub correction: Correction,
    /// Share of drifted features from which the data set as a whole counts as drifted
    /// (Evidently's default of 0.5).
    pub dataset_drift_share: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            window: 500,
            stride: 100,
            alpha: 0.05,
            correction: Correction::Bonferroni,
            dataset_drift_share: 0.5,
        }
    }
}

impl Params {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window < 2 {
            return Err(ConfigError::Window(self.window));
        }
        if self.stride < 1 {
            return Err(ConfigError::Stride(self.stride));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(ConfigError::Alpha(self.alpha));
        }
        if !(self.dataset_drift_share > 0.0 && self.dataset_drift_share <= 1.0) {
            return Err(ConfigError::Share(self.dataset_drift_share));
        }
        Ok(())
    }
}

/// What workers and API replicas share about a monitor (stored in Redis as JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub name: String,
    pub features: Vec<String>,
    #[serde(flatten)]
    pub params: Params,
    /// Hash of the reference data: results of different versions are never mixed.
    pub version: String,
    pub reference_rows: usize,
}

/// A monitor to register: its config plus the reference columns (one per feature).
#[derive(Clone, Debug)]
pub struct MonitorSpec {
    pub config: MonitorConfig,
    pub reference: Vec<Vec<f64>>,
}

pub fn validate_monitor_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_MONITOR_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::MonitorName(name.chars().take(80).collect()))
    }
}

fn validate_feature_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_FEATURE_NAME
        && !name.chars().any(|c| c.is_control() || c == '{' || c == '}');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::FeatureName(name.chars().take(140).collect()))
    }
}

impl MonitorSpec {
    /// Builds a monitor from a reference data set; the version is a hash of the feature
    /// names and reference values, so registering the same data again changes nothing.
    pub fn new(
        name: &str,
        dataset: &Dataset,
        params: Params,
        max_features: usize,
    ) -> Result<Self, ConfigError> {
        validate_monitor_name(name)?;
        params.validate()?;
        if dataset.names().is_empty() {
            return Err(ConfigError::NoFeatures);
        }
        if dataset.names().len() > max_features {
            return Err(ConfigError::TooManyFeatures(
                dataset.names().len(),
                max_features,
            ));
        }
        for f in dataset.names() {
            validate_feature_name(f)?;
        }
        let mut hasher = Sha256::new();
        for (f, col) in dataset.names().iter().zip(dataset.columns()) {
            hasher.update((f.len() as u64).to_le_bytes());
            hasher.update(f.as_bytes());
            hasher.update((col.len() as u64).to_le_bytes());
            for v in col {
                hasher.update(v.to_le_bytes());
            }
        }
        let version = hex::encode(&hasher.finalize()[..8]);
        Ok(MonitorSpec {
            config: MonitorConfig {
                name: name.to_string(),
                features: dataset.names().to_vec(),
                params,
                version,
                reference_rows: dataset.n_rows(),
            },
            reference: dataset.columns().to_vec(),
        })
    }

    /// The default monitor: the embedded breast cancer data set.
    pub fn default_monitor(params: Params) -> Result<Self, crate::Error> {
        let ds = Dataset::breast_cancer()?;
        Ok(Self::new(
            crate::dataset::DEFAULT_MONITOR,
            &ds,
            params,
            1024,
        )?)
    }
}

impl MonitorConfig {
    pub fn feature_index(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_depends_on_data_only() {
        let a = MonitorSpec::default_monitor(Params::default()).unwrap();
        let b = MonitorSpec::default_monitor(Params {
            window: 1000,
            ..Params::default()
        })
        .unwrap();
        assert_eq!(a.config.version, b.config.version);
        let ds = Dataset::from_csv("x\n1\n2\n".as_bytes(), &[]).unwrap();
        let c = MonitorSpec::new("m", &ds, Params::default(), 10).unwrap();
        assert_ne!(a.config.version, c.config.version);
        assert_eq!(a.config.features.len(), 30);
    }

    #[test]
    fn rejects_bad_names_and_params() {
        assert!(validate_monitor_name("ok_name-1.2").is_ok());
        assert!(validate_monitor_name("").is_err());
        assert!(validate_monitor_name("a b").is_err());
        assert!(validate_monitor_name("a}").is_err());
        assert!(validate_monitor_name(&"a".repeat(65)).is_err());
        let p = Params {
            alpha: 1.5,
            ..Params::default()
        };
        assert_eq!(p.validate(), Err(ConfigError::Alpha(1.5)));
        let p = Params {
            window: 1,
            ..Params::default()
        };
        assert!(p.validate().is_err());
        let ds = Dataset::from_csv("x{\n1\n".as_bytes(), &[]).unwrap();
        assert!(MonitorSpec::new("m", &ds, Params::default(), 10).is_err());
    }
}
