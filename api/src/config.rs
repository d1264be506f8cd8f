//! Command-line and environment configuration of `drift-api`.

use crate::coalesce::CoalesceLimits;
use drift_core::{Correction, Params};
use drift_service::LogArgs;
use drift_store::{Caps, RedisArgs};
use std::path::PathBuf;

#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "drift-api",
    version,
    about = "Stateless HTTP API of the drift monitor"
)]
pub struct ApiConfig {
    /// Address to listen on.
    #[arg(long, env = "DRIFT_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: String,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Rows in each feature's rolling window (default monitor).
    #[arg(long, env = "DRIFT_WINDOW", default_value_t = Params::default().window)]
    pub window: usize,
    /// Rows between evaluations once the window is full (default monitor).
    #[arg(long, env = "DRIFT_STRIDE", default_value_t = Params::default().stride)]
    pub stride: usize,
    /// Significance level of the per-evaluation rules (default monitor).
    #[arg(long, env = "DRIFT_ALPHA", default_value_t = Params::default().alpha)]
    pub alpha: f64,
    /// Alarm rule: ert (a guaranteed time between false alarms over the stream), or a
    /// per-evaluation rule: bonferroni, bh or none (default monitor).
    #[arg(long, env = "DRIFT_CORRECTION", default_value_t = Params::default().correction)]
    pub correction: Correction,
    /// Share of drifted features from which the whole data set counts as drifted.
    #[arg(long, env = "DRIFT_DATASET_DRIFT_SHARE", default_value_t = Params::default().dataset_drift_share)]
    pub dataset_drift_share: f64,
    /// Under `ert`: expected rounds between false alarms when nothing drifts (default monitor).
    #[arg(long, env = "DRIFT_ERT", default_value_t = Params::default().ert)]
    pub ert: f64,
    /// Under `ert`: probability over the reference draw that the guarantee holds.
    #[arg(long, env = "DRIFT_REFERENCE_CONFIDENCE", default_value_t = Params::default().reference_confidence)]
    pub reference_confidence: f64,
    /// Probability with which each ingested row is kept, in (0, 1] (default monitor, and
    /// monitors of the file that set none): below 1 for traffic beyond what one Redis shard
    /// should carry. A window then spans 1/rate times as many rows received.
    #[arg(long, env = "DRIFT_SAMPLE_RATE", default_value_t = Params::default().sample_rate)]
    pub sample_rate: f64,
    /// TOML file declaring more monitors (see README).
    #[arg(long, env = "DRIFT_MONITORS_CONFIG")]
    pub monitors_config: Option<PathBuf>,
    /// Do not register the built-in `breast_cancer` monitor.
    #[arg(long, env = "DRIFT_NO_DEFAULT_MONITOR")]
    pub no_default_monitor: bool,
    /// Largest request body accepted, in bytes (413 above it).
    #[arg(long, env = "DRIFT_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most rows accepted in one batch (413 above it).
    #[arg(long, env = "DRIFT_MAX_BATCH_ROWS", default_value_t = 10_000)]
    pub max_batch_rows: usize,
    /// Batches kept on each monitor's events stream.
    #[arg(long, env = "DRIFT_EVENTS_MAXLEN", default_value_t = Caps::DEFAULT.events)]
    pub events_maxlen: u64,
    /// Bytes of row values kept on each monitor's events stream (8 per value); the oldest
    /// batches are dropped beyond it.
    #[arg(long, env = "DRIFT_EVENTS_MAX_BYTES", default_value_t = Caps::DEFAULT.events_bytes)]
    pub events_max_bytes: u64,
    /// Token for admin routes (PUT/DELETE a monitor, reset). Without it they are disabled.
    #[arg(long, env = "DRIFT_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// Comma-separated tokens required for ingest and predictions (none: open ingest).
    #[arg(
        long,
        env = "DRIFT_INGEST_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub ingest_tokens: Vec<Secret>,
    /// Most monitors that can be registered.
    #[arg(long, env = "DRIFT_MAX_MONITORS", default_value_t = 100)]
    pub max_monitors: usize,
    /// Most features (columns) a monitor may have.
    #[arg(long, env = "DRIFT_MAX_FEATURES", default_value_t = 1000)]
    pub max_features: usize,
    /// Largest reference CSV accepted by `PUT /v1/monitors/{monitor}`, in bytes.
    #[arg(long, env = "DRIFT_MAX_REFERENCE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_reference_bytes: usize,
    /// Predicted rows buffered for monitoring before new ones are dropped (and counted).
    #[arg(long, env = "DRIFT_PREDICT_LOG_CAPACITY", default_value_t = 10_000)]
    pub predict_log_capacity: usize,
    /// Entries kept on each monitor's jobs stream; older ones are trimmed (their boundaries
    /// are superseded by newer jobs by then).
    #[arg(long, env = "DRIFT_JOBS_MAXLEN", default_value_t = Caps::DEFAULT.jobs)]
    pub jobs_maxlen: u64,
    /// Ingest script calls in flight at once per monitor on this replica; requests that
    /// arrive meanwhile queue and share the next call (group commit).
    #[arg(long, env = "DRIFT_INGEST_CALLS_IN_FLIGHT", default_value_t = CoalesceLimits::default().in_flight)]
    pub ingest_calls_in_flight: usize,
    /// Most values (rows x features) one ingest script call carries; a larger request goes
    /// alone, never split.
    #[arg(long, env = "DRIFT_INGEST_CALL_MAX_VALUES", default_value_t = CoalesceLimits::default().max_values)]
    pub ingest_call_max_values: usize,
    /// Most requests one ingest script call carries.
    #[arg(long, env = "DRIFT_INGEST_CALL_MAX_REQUESTS", default_value_t = CoalesceLimits::default().max_requests)]
    pub ingest_call_max_requests: usize,
    /// Time a client has to send a request head, in milliseconds; the connection is closed
    /// after it (slow or half-sent headers).
    #[arg(long, env = "DRIFT_HEADER_TIMEOUT_MS", default_value_t = 5_000)]
    pub header_timeout_ms: u64,
    /// Time a client has to send a whole request body, in milliseconds, counted from its
    /// head (a body that trickles or never comes).
    #[arg(long, env = "DRIFT_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_timeout_ms: u64,
    /// Time a keep-alive connection may stay open without a request, in milliseconds.
    #[arg(long, env = "DRIFT_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,
    /// Most client connections served at once (lowered to fit the open-files limit); a few
    /// more are accepted to answer `/healthz` and `/readyz` only, the rest wait.
    #[arg(long, env = "DRIFT_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
}

/// A value that must never reach a log: its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl ApiConfig {
    /// Parameters of the default monitor.
    pub fn params(&self) -> Params {
        Params {
            window: self.window,
            stride: self.stride,
            alpha: self.alpha,
            correction: self.correction,
            dataset_drift_share: self.dataset_drift_share,
            ert: self.ert,
            reference_confidence: self.reference_confidence,
            sample_rate: self.sample_rate,
        }
    }

    /// The configuration with no flag given, for this Redis and key prefix (tests and
    /// tools: the environment is not read).
    pub fn for_redis(url: &str, prefix: &str) -> Self {
        match drift_service::parse_without_env::<ApiConfig>(&["drift-api"]) {
            Ok(mut c) => {
                c.redis = RedisArgs::new(url, prefix);
                c
            }
            Err(e) => unreachable!("drift-api parses without arguments: {e}"),
        }
    }

    /// How ingest requests are grouped into script calls.
    pub fn coalesce(&self) -> CoalesceLimits {
        CoalesceLimits {
            in_flight: self.ingest_calls_in_flight,
            max_values: self.ingest_call_max_values,
            max_requests: self.ingest_call_max_requests,
        }
    }

    /// The caps this replica applies to the streams it writes.
    pub fn caps(&self) -> Caps {
        Caps {
            events: self.events_maxlen,
            events_bytes: self.events_max_bytes,
            jobs: self.jobs_maxlen,
            ..Caps::DEFAULT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_configs_ignore_the_environment() {
        // An exported variable must not change what a test runs against.
        std::env::set_var("DRIFT_WINDOW", "7");
        std::env::set_var("DRIFT_KEY_PREFIX", "from-env");
        let c = ApiConfig::for_redis("redis://127.0.0.1:1", "t");
        assert_eq!(c.window, Params::default().window);
        assert_eq!(c.redis.key_prefix, "t");
        assert_eq!(c.caps(), Caps::DEFAULT);
    }
}
