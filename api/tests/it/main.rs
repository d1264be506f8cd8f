//! The API's integration tests, one binary: admin routes, the error contract, the batch
//! parser fuzzed, the monitors file, predictions, Redis authentication, sampling and SIGTERM, all on
//! real servers started by drift-testkit.
mod admin;
mod coalesce;
mod errors;
mod fuzz_batch;
mod http_layer;
mod monitors_file;
mod predict;
mod redis_auth;
mod sampling;
mod sigterm;
