//! Logging set-up shared by the binaries: `RUST_LOG` filters, `--log-format json` for
//! containers whose logs are shipped and parsed.

use clap::ValueEnum;

/// The logging flags every binary takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct LogArgs {
    #[arg(long, env = "DRIFT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber with `default_filter` unless `RUST_LOG` says otherwise;
/// a second call (e.g. from tests) is a no-op.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
