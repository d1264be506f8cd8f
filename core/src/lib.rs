//! Core of the drift monitor: statistics, monitor configuration, reference data and the
//! Redis schema and scripts shared by the API, workers and exporter.
pub mod codec;
pub mod correction;
pub mod dataset;
pub mod keys;
pub mod ks;
pub mod model;
pub mod monitor;
pub mod store;
pub mod telemetry;

pub use correction::Correction;
pub use dataset::{Dataset, DatasetError};
pub use monitor::{ConfigError, MonitorConfig, MonitorSpec, Params};

/// Errors of building a monitor from a data set.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Model(#[from] model::ModelError),
}
