//! What can go wrong talking to Redis, in the terms callers act on.

use deadpool_redis::redis;

type PoolError = deadpool::managed::PoolError<redis::RedisError>;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StoreError {
    /// Redis cannot be reached, is loading, or did not answer in time. Retrying later helps.
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
    #[error("monitor `{0}` is not registered")]
    UnknownMonitor(String),
    /// The monitor was re-registered since the caller read its config.
    #[error("monitor configuration changed; reload it")]
    StaleConfig,
    /// Registering a new monitor would exceed the limit on monitors.
    #[error("at most {0} monitors can be registered")]
    TooManyMonitors(u64),
    /// An ingest was written but did not reach the replicas it needed before its deadline:
    /// it is not acknowledged, yet it may be stored (and survive); resending it may store
    /// its rows twice.
    #[error("the write reached {reached} of the {needed} replicas it needs in time")]
    NotReplicated { reached: u64, needed: u64 },
    /// An answer that should not happen with our own scripts (a bug or foreign data).
    #[error("unexpected Redis answer: {0}")]
    Protocol(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        match e.code() {
            Some("NOMONITOR") => return StoreError::UnknownMonitor(String::new()),
            Some("STALECONFIG") => return StoreError::StaleConfig,
            Some("TOOMANYMONITORS") => {
                let max = e
                    .detail()
                    .and_then(|d| d.split_whitespace().nth(2)?.parse().ok())
                    .unwrap_or(0);
                return StoreError::TooManyMonitors(max);
            }
            Some(
                "LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN" | "NOAUTH"
                | "WRONGPASS" | "NOPERM" | "NOREPLICAS" | "READONLY" | "MOVED" | "ASK",
            ) => return StoreError::Unavailable(e.to_string()),
            _ => {}
        }
        if e.kind() == redis::ErrorKind::ClusterConnectionNotFound {
            // A cluster's slot moved and its retries ran out mid-failover (a redirection
            // still pending is a MOVED or ASK above): try again shortly.
            return StoreError::Unavailable(e.to_string());
        }
        if e.kind() == redis::ErrorKind::AuthenticationFailed {
            // A misconfigured password is an outage of the store for this replica.
            return StoreError::Unavailable(e.to_string());
        }
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_unrecoverable_error()
        {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Protocol(e.to_string())
        }
    }
}

impl From<redis::ParsingError> for StoreError {
    fn from(e: redis::ParsingError) -> Self {
        StoreError::Protocol(e.to_string())
    }
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => e.into(),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}
