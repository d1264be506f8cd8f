//! How to reach Redis: the flags every binary shares, pooled connections whose every step
//! is bounded, and dedicated connections for blocking reads.

use crate::keys::Keys;
use crate::pool::{Manager, Pool, RedisClock, IDLE_PING};
use crate::store::{Caps, Store};
use crate::StoreError;
use deadpool::managed::QueueMode;
use deadpool_redis::redis::cluster::{ClusterClient, ClusterClientBuilder};
use deadpool_redis::redis::{self, AsyncConnectionConfig};
use deadpool_redis::{Runtime, Timeouts};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Deadline of one Redis operation unless configured: past it a request gets a 503.
pub const DEFAULT_TIMEOUT_MS: u64 = 1500;

/// Flags every binary that talks to Redis shares.
#[derive(clap::Args, Clone, Debug)]
pub struct RedisArgs {
    /// Redis URL: a password goes in the URL (redis://:PASSWORD@host:6379, or
    /// redis://USER:PASSWORD@host for an ACL user); rediss:// for TLS. With
    /// --redis-cluster, one or more seed nodes of the cluster, comma-separated.
    #[arg(long, env = "DRIFT_REDIS_URL", default_value = DEFAULT_REDIS_URL)]
    pub redis_url: String,
    /// Talk to a Redis Cluster: the URLs are seed nodes, each monitor lives in the slot of
    /// its hash tag, and redirections and failovers are followed.
    #[arg(long, env = "DRIFT_REDIS_CLUSTER", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub redis_cluster: bool,
    /// Acknowledge an ingest only once its write reached this many replicas (`WAIT`);
    /// fewer within the deadline is a 503. 0: acknowledge when the primary has it.
    #[arg(long, env = "DRIFT_REDIS_ACK_REPLICAS", default_value_t = 0)]
    pub redis_ack_replicas: u32,
    /// Prefix of every Redis key, to share one Redis between deployments.
    #[arg(long, env = "DRIFT_KEY_PREFIX", default_value = "drift")]
    pub key_prefix: String,
    /// Deadline of one Redis operation; past it a request gets a 503.
    #[arg(long, env = "DRIFT_REDIS_TIMEOUT_MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub redis_timeout_ms: u64,
}

impl RedisArgs {
    /// The arguments with no flag given, for this Redis and key prefix (tests and tools:
    /// nothing is read from the environment).
    pub fn new(url: &str, prefix: &str) -> Self {
        RedisArgs {
            redis_url: url.to_string(),
            redis_cluster: false,
            redis_ack_replicas: 0,
            key_prefix: prefix.to_string(),
            redis_timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// [`RedisArgs::new`] for a Redis Cluster reached through `seeds` (comma-separated).
    pub fn cluster(seeds: &str, prefix: &str) -> Self {
        RedisArgs {
            redis_cluster: true,
            ..RedisArgs::new(seeds, prefix)
        }
    }

    pub fn options(&self, pool_size: usize) -> RedisOptions {
        RedisOptions {
            url: self.redis_url.clone(),
            op_timeout: Duration::from_millis(self.redis_timeout_ms),
            pool_size,
            idle_ping: IDLE_PING,
            cluster: self.redis_cluster,
            ack_replicas: self.redis_ack_replicas,
        }
    }

    pub fn keys(&self) -> Keys {
        Keys::new(&self.key_prefix)
    }

    /// The store these arguments name, with a pool of `pool_size` connections. Connecting
    /// is lazy: this fails only on an invalid URL.
    pub fn connect(&self, pool_size: usize, caps: Caps) -> Result<Store, StoreError> {
        Store::new(&self.options(pool_size), self.keys(), caps)
    }
}

/// How to reach Redis and how long to wait for it before answering 503.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    pub url: String,
    pub op_timeout: Duration,
    pub pool_size: usize,
    /// A pooled connection unused for this long is checked with a `PING` before it is
    /// handed out again ([`IDLE_PING`] unless set; see `pool.rs`).
    pub idle_ping: Duration,
    /// `url` lists seed nodes of a Redis Cluster.
    pub cluster: bool,
    /// Replicas an ingest must reach before it is acknowledged (`WAIT`).
    pub ack_replicas: u32,
}

impl RedisOptions {
    /// The seed URLs of a cluster (or the one URL of a single node).
    pub fn urls(&self) -> Vec<&str> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect()
    }
}

/// `rediss://` needs a process-wide TLS crypto provider; installing it twice is harmless.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A connection pool whose every step (connect, wait for a connection, answer) is bounded.
/// The most recently returned connection is handed out first, so that a lightly loaded
/// replica keeps reusing a few warm connections instead of cycling through idle ones.
pub(crate) fn pool(opts: &RedisOptions, clock: Arc<RedisClock>) -> Result<Pool, StoreError> {
    install_tls_provider();
    let conn_cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(opts.op_timeout))
        .set_response_timeout(Some(opts.op_timeout));
    let client = redis::Client::open(opts.url.as_str())
        .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL: {e}")))?;
    Pool::builder(Manager::new(client, conn_cfg, opts.idle_ping, clock))
        .max_size(opts.pool_size)
        .queue_mode(QueueMode::Lifo)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(opts.op_timeout),
            create: Some(opts.op_timeout),
            recycle: Some(opts.op_timeout),
        })
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// A dedicated connection for blocking reads (`XREADGROUP ... BLOCK`): its response timeout
/// must exceed the block time, and it must not hold a pooled connection hostage.
pub(crate) async fn blocking_connection(
    url: &str,
    response_timeout: Duration,
) -> Result<redis::aio::MultiplexedConnection, StoreError> {
    install_tls_provider();
    let client = redis::Client::open(url)
        .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL: {e}")))?;
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout));
    Ok(client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?)
}

/// A client for the Redis Cluster that `opts.url` seeds. Each attempt is bounded by the
/// operation deadline, and a failed attempt is retried after tens of milliseconds, not the
/// client's default of seconds: a failover takes a second or two, and the caller's own
/// deadline bounds the whole operation anyway.
pub(crate) fn cluster_client(opts: &RedisOptions) -> Result<ClusterClient, StoreError> {
    install_tls_provider();
    let urls = opts.urls();
    if urls.is_empty() {
        return Err(StoreError::Unavailable("no Redis Cluster seed URL".into()));
    }
    ClusterClientBuilder::new(urls)
        .connection_timeout(opts.op_timeout)
        .response_timeout(opts.op_timeout)
        .overall_response_timeout(None)
        .retries(RETRIES)
        .min_retry_wait(20)
        .max_retry_wait(250)
        .build()
        .map_err(|e| StoreError::Unavailable(format!("invalid Redis Cluster URL: {e}")))
}

/// Attempts of one cluster command (redirections and reconnections included) within its
/// deadline: a failover burns through attempts fast (refused connections to the dead
/// node, then redirections while the nodes agree on its successor), and the deadline
/// bounds them anyway.
const RETRIES: u32 = 64;
