//! The store handle: a bounded connection pool, the key schema, the loaded scripts and
//! the caps of every stream.

use crate::connect::{pool, RedisOptions};
use crate::keys::Keys;
use crate::pool::{Conn, Pool, RedisClock};
use crate::StoreError;
use deadpool_redis::redis;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    pub register: redis::Script,
    pub clear: redis::Script,
    pub ingest: redis::Script,
    pub read_windows: redis::Script,
    pub record_batch: redis::Script,
    pub dead_letter: redis::Script,
}

#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    pub(crate) keys: Keys,
    pub(crate) scripts: Arc<Scripts>,
    pub(crate) op_timeout: Duration,
    /// Redis's clock as seen from here, for deadlines the ingest script enforces.
    pub(crate) clock: Arc<RedisClock>,
    pub(crate) url: String,
    pub caps: Caps,
}

impl Store {
    pub fn new(opts: &RedisOptions, keys: Keys, caps: Caps) -> Result<Self, StoreError> {
        let clock = Arc::new(RedisClock::default());
        Ok(Store {
            pool: pool(opts, clock.clone())?,
            clock,
            keys,
            scripts: Arc::new(Scripts {
                register: redis::Script::new(include_str!("scripts/register.lua")),
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
            let conn = Conn(self.pool.get().await?);
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

    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.query(redis::cmd("PING")).await?;
        Ok(())
    }
}
