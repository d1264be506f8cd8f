//! Logging set-up shared by the binaries: `RUST_LOG` filters, `--log-format json` for
//! containers whose logs are shipped and parsed.

use clap::ValueEnum;

/// Flags every binary that talks to Redis shares.
#[derive(clap::Args, Clone, Debug)]
pub struct RedisArgs {
    /// Redis URL: a password goes in the URL (redis://:PASSWORD@host:6379, or
    /// redis://USER:PASSWORD@host for an ACL user); rediss:// for TLS.
    #[arg(
        long,
        env = "DRIFT_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// Prefix of every Redis key, to share one Redis between deployments.
    #[arg(long, env = "DRIFT_KEY_PREFIX", default_value = "drift")]
    pub key_prefix: String,
    /// Deadline of one Redis operation; past it a request gets a 503.
    #[arg(long, env = "DRIFT_REDIS_TIMEOUT_MS", default_value_t = 1500)]
    pub redis_timeout_ms: u64,
    #[arg(long, env = "DRIFT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber; a second call (e.g. from tests) is a no-op.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
