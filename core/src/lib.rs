//! The domain of the drift monitor, pure: statistics, the alarm, monitor configuration
//! and parameters, reference data and the demo model. No I/O runtime, no Redis, no HTTP:
//! everything here is a function of its inputs, so it is tested without servers and
//! shared by every binary (the HTTP-only simulator included).
pub mod alarm;
pub mod dataset;
pub mod evaluate;
pub mod feature;
pub mod ks;
pub mod model;
pub mod monitor;
pub mod results;
pub mod stats;

pub use alarm::Correction;
pub use dataset::{CsvSchema, Dataset, DatasetError};
pub use feature::FeatureKind;
pub use monitor::{ConfigError, MonitorConfig, MonitorSpec, Params};
pub use results::{
    Details, Effects, Evaluation, FeatureResult, HistoryEntry, MonitorState, MonitorStatus, Signal,
    SignalKind,
};

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
