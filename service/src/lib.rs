//! Plumbing every binary of the drift monitor shares, so that it exists once: logging
//! set-up, the shutdown signal and the retry backoff.
pub mod backoff;
pub mod defaults;
pub mod logging;
pub mod metrics;
pub mod shutdown;

pub use backoff::Backoff;
pub use defaults::parse_without_env;
pub use logging::{init_logging, LogArgs, LogFormat};
pub use shutdown::shutdown_signal;
