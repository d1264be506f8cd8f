//! `drift-api`: the stateless HTTP front of the drift monitor. Any number of replicas run
//! behind the gateway; all state lives in Redis.
pub mod app;
pub mod auth;
pub mod batch;
pub mod coalesce;
pub mod config;
pub mod error;
pub mod extract;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod monitors_file;
pub mod openapi;
pub mod routes;
pub mod rowlog;
pub mod sample;
pub mod state;
pub mod status_cache;

pub use app::{router, run};
pub use config::ApiConfig;
