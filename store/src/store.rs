//! The store handle: a bounded connection pool, the key schema, the loaded scripts and
//! the caps of every stream.

use crate::connect::{cluster_client, pool, RedisOptions};
use crate::keys::Keys;
use crate::pool::{Conn, Pool, RedisClock};
use crate::StoreError;
use deadpool_redis::redis;
use deadpool_redis::redis::cluster::ClusterClient;
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo,
};
use deadpool_redis::redis::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// How long each stream may grow: memory is bounded by configuration, never by traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Entries of the events stream (one per ingested batch).
    pub events: u64,
    /// Bytes of row values kept on each events stream: a few large batches cannot take
    /// more than this, whatever `events` allows.
    pub events_bytes: u64,
    /// Entries of each jobs stream; older ones are trimmed (superseded by then).
    pub jobs: u64,
    /// Entries of each dead-letter stream.
    pub dead: u64,
    /// Entries of the evaluation history (one per evaluation).
    pub history: u64,
}

impl Caps {
    pub const DEFAULT: Caps = Caps {
        events: 1000,
        events_bytes: 16 * 1024 * 1024,
        jobs: 100_000,
        dead: 10_000,
        history: 100_000,
    };
}

impl Default for Caps {
    fn default() -> Self {
        Caps::DEFAULT
    }
}

/// One script per atomic operation; each is called by exactly one typed method.
pub(crate) struct Scripts {
    pub enlist: redis::Script,
    pub register: redis::Script,
    pub announce: redis::Script,
    pub clear: redis::Script,
    pub ingest: redis::Script,
    pub read_windows: redis::Script,
    pub record_batch: redis::Script,
    pub dead_letter: redis::Script,
}

/// Where connections come from: a pool of single-node connections, or one cluster
/// connection shared by every operation (made on first use, so that a binary starts
/// while the cluster is still forming, as with a single node).
#[derive(Clone)]
pub(crate) enum Backend {
    Single(Pool),
    Cluster {
        client: Box<ClusterClient>,
        conn: Arc<OnceCell<ClusterConnection>>,
    },
}

#[derive(Clone)]
pub struct Store {
    pub(crate) backend: Backend,
    pub(crate) keys: Keys,
    pub(crate) scripts: Arc<Scripts>,
    pub(crate) op_timeout: Duration,
    /// Redis's clock as seen from here, for deadlines the ingest script enforces.
    pub(crate) clock: Arc<RedisClock>,
    pub(crate) url: String,
    /// Replicas an ingest must reach before it is acknowledged (`WAIT`), 0 for none.
    pub(crate) ack_replicas: u32,
    pub caps: Caps,
}

impl Store {
    pub fn new(opts: &RedisOptions, keys: Keys, caps: Caps) -> Result<Self, StoreError> {
        let clock = Arc::new(RedisClock::default());
        Ok(Store {
            backend: if opts.cluster {
                Backend::Cluster {
                    client: Box::new(cluster_client(opts)?),
                    conn: Arc::new(OnceCell::new()),
                }
            } else {
                Backend::Single(pool(opts, clock.clone())?)
            },
            ack_replicas: opts.ack_replicas,
            clock,
            keys,
            scripts: Arc::new(Scripts {
                enlist: redis::Script::new(include_str!("scripts/enlist.lua")),
                register: redis::Script::new(include_str!("scripts/register.lua")),
                announce: redis::Script::new(include_str!("scripts/announce.lua")),
                clear: redis::Script::new(include_str!("scripts/clear.lua")),
                ingest: redis::Script::new(include_str!("scripts/ingest.lua")),
                read_windows: redis::Script::new(include_str!("scripts/read_windows.lua")),
                record_batch: redis::Script::new(include_str!("scripts/record_batch.lua")),
                dead_letter: redis::Script::new(include_str!("scripts/dead_letter.lua")),
            }),
            op_timeout: opts.op_timeout,
            url: opts.url.clone(),
            caps,
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The deadline of one Redis operation (past it, callers answer 503).
    pub fn op_timeout(&self) -> Duration {
        self.op_timeout
    }

    /// Runs one Redis operation with a pooled connection under the operation deadline. A
    /// connection that fails at the connection level, or is dropped mid-request when the
    /// deadline passes, is not handed out again (see `pool.rs`).
    pub(crate) async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.run_until(Instant::now() + self.op_timeout, f).await
    }

    /// [`Store::run`] with the deadline `deadline` instead of the operation deadline.
    pub(crate) async fn run_until<T, F, Fut>(
        &self,
        deadline: Instant,
        f: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let budget = deadline.saturating_duration_since(Instant::now());
        let work = async {
            let conn = self.conn().await?;
            f(conn).await
        };
        match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), work).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {} ms",
                budget.as_millis()
            ))),
        }
    }

    /// A connection for one operation (without deadline: callers bound it).
    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
        match &self.backend {
            Backend::Single(pool) => Ok(Conn::Pooled(pool.get().await?)),
            Backend::Cluster { client, conn } => Ok(Conn::Cluster(
                conn.get_or_try_init(|| client.get_async_connection())
                    .await?
                    .clone(),
            )),
        }
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster { .. })
    }

    /// Runs one command on a pooled connection under the deadline.
    pub(crate) async fn query<T: redis::FromRedisValue + Send + 'static>(
        &self,
        cmd: redis::Cmd,
    ) -> Result<T, StoreError> {
        self.run(|mut c| async move { Ok(cmd.query_async(&mut c).await?) })
            .await
    }

    /// Invokes a script on a pooled connection under the deadline.
    pub(crate) async fn invoke<T: redis::FromRedisValue + Send + 'static>(
        &self,
        inv: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.run(|mut c| async move { Ok(inv.invoke_async(&mut c).await?) })
            .await
    }

    /// Adds `keys`, in order, as the KEYS of a script invocation.
    pub(crate) fn keys_of(
        inv: &mut redis::ScriptInvocation<'_>,
        keys: impl IntoIterator<Item = String>,
    ) {
        for key in keys {
            inv.key(key);
        }
    }

    /// Whether Redis answers: on a cluster, whether any master does. A master being down
    /// stops only its own monitors (their requests get 503s until its replica takes
    /// over), so a replica of the API that can reach the others is still of use.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let policy = Some(ResponsePolicy::OneSucceeded);
        self.on_masters(redis::cmd("PING"), policy).await?;
        Ok(())
    }

    /// Runs `cmd` on the one Redis, or on every master of a cluster, their answers combined
    /// by `policy` (`None`: each master's answer in a map by address, or one aggregated
    /// answer, as redis-rs's policy for the command says).
    pub(crate) async fn on_masters(
        &self,
        cmd: redis::Cmd,
        policy: Option<ResponsePolicy>,
    ) -> Result<Value, StoreError> {
        self.run(|c| async move {
            match c {
                Conn::Cluster(mut c) => Ok(c
                    .route_command(
                        cmd,
                        RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, policy)),
                    )
                    .await?),
                mut c => Ok(cmd.query_async(&mut c).await?),
            }
        })
        .await
    }

    /// `INFO section` of the one Redis, or of every master of a cluster.
    pub(crate) async fn info(&self, section: &str) -> Result<Vec<String>, StoreError> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg(section);
        let reply = self.on_masters(cmd, None).await?;
        let text = |v: Value| -> Result<String, StoreError> { Ok(redis::from_redis_value(v)?) };
        match reply {
            Value::Map(nodes) => nodes.into_iter().map(|(_, v)| text(v)).collect(),
            Value::Array(nodes) => nodes
                .into_iter()
                .map(|v| match v {
                    Value::Array(mut pair) if pair.len() == 2 => text(pair.remove(1)),
                    v => text(v),
                })
                .collect(),
            v => Ok(vec![text(v)?]),
        }
    }
}
