//! The one test harness of the drift monitor: real servers on free loopback ports and the
//! project's own services in process, so every test runs against the real thing.
//!
//! - [`RedisServer`]: a `redis-server` per test, in its own temporary directory;
//! - [`RedisCluster`]: 3 masters and 3 replicas of `redis-server`, joined as a cluster;
//! - [`Stack`]: Redis, API replicas, workers and the exporter, built with
//!   [`Stack::builder`]; single services with [`spawn_api`], [`spawn_worker`],
//!   [`spawn_exporter`];
//! - [`Gateway`] and [`Prometheus`]: NGINX and Prometheus rendered from the checkout's
//!   local templates, added to a stack with the builder's `gateway()` / `prometheus()`;
//! - [`Client`]: HTTP calls that take the expected status and return the typed body;
//! - [`rows`]: live-like rows resampled from the reference, with or without a shift.
//!
//! Redis state is read through `drift_store`'s typed readers ([`Stack::store`]), never
//! with hand-written commands or key names.
mod child;
mod client;
mod cluster;
pub mod fuzz;
mod gateway;
mod process;
mod prometheus;
mod redis;
pub mod rows;
mod server;
mod stack;

pub use child::ChildServer;
pub use client::Client;
pub use cluster::RedisCluster;
pub use gateway::Gateway;
pub use process::{cargo_bin, free_port, require_binary, TempDir};
pub use prometheus::{Prometheus, ScrapeTargets};
pub use redis::{RedisOptions, RedisServer};
pub use server::{spawn_api, spawn_exporter, spawn_exporter_with, spawn_worker, Server};
pub use stack::{Stack, StackBuilder};

use std::time::{Duration, Instant};

/// Polls `f` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
