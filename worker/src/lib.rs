//! `drift-worker`: evaluation workers (`run`), the metrics exporter (`export`) and the
//! KS command line (`ks`).
//!
//! A job's path: [`consumer`] reads it (or [`janitor`] takes it over from a dead
//! consumer), [`evaluate`] tests the window against the reference and records the
//! alarm's decision; [`export`] serves what was recorded as Prometheus gauges.
pub mod config;
pub mod consumer;
pub mod evaluate;
pub mod export;
pub mod janitor;
pub mod ks_cli;
pub mod metrics;
pub mod server;

pub use config::{Cli, Command, ExporterConfig, WorkerConfig};
pub use server::{run_exporter, run_worker};
