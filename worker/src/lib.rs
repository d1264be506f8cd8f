//! `drift-worker`: evaluation workers (`run`), the metrics exporter (`export`) and the
//! KS command line (`ks`).
pub mod config;
pub mod export;
pub mod jobs;
pub mod ks_cli;
pub mod metrics;
pub mod runner;
pub mod server;

pub use config::{Cli, Command, ExporterConfig, WorkerConfig};
pub use server::{run_exporter, run_worker};
