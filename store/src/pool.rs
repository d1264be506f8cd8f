//! The connection pool: deadpool with our own manager, so that a checkout costs no Redis
//! round trip.
//!
//! deadpool-redis's manager sends `UNWATCH` and `PING` on every checkout: two commands per
//! request that do no work (we never `WATCH`). This manager hands a connection out as it
//! is when it was used recently and nothing suggests that Redis went away, and checks it
//! with one `PING` otherwise:
//!
//! - a connection that saw a connection-level error (IO error, dropped connection, response
//!   timeout, unparseable answer) is never handed out again: its recycling fails and
//!   deadpool drops it;
//! - so is one dropped in the middle of a request (the caller's deadline passed, or its
//!   future was cancelled): its answer may still arrive and the connection's state is
//!   unknown;
//! - either also makes every other pooled connection `PING` once at its next checkout
//!   (Redis may have restarted: their sockets may be dead too), so a restart costs about
//!   one failed request per replica, not one per pooled connection;
//! - a connection idle longer than [`IDLE_PING`] is checked at its next checkout (a
//!   firewall or Redis's `timeout` may have closed it).
//!
//! Without the `PING`, a call can be written to a Redis that just froze and run when it
//! resumes, after its caller answered 503. Ingest calls therefore carry their deadline on
//! Redis's own clock ([`RedisClock`]), and the script refuses to write past it.

use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use deadpool_redis::redis::{self, AsyncConnectionConfig, Cmd, RedisError, RedisFuture, Value};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};

/// A pooled connection unused for this long is checked with a `PING` before it is handed
/// out again.
pub const IDLE_PING: Duration = Duration::from_secs(5);

pub(crate) type Pool = managed::Pool<Manager>;

/// Redis's clock as seen from this process: the offset of Redis's `TIME` from the local
/// clock, learned when a connection opens and refreshed by every ingest answer, so that a
/// local deadline can be stated in Redis's time (whatever the skew between the hosts).
pub(crate) struct RedisClock {
    /// Redis's milliseconds since the epoch minus ours, `i64::MIN` until first learned.
    offset_ms: AtomicI64,
}

impl Default for RedisClock {
    fn default() -> Self {
        RedisClock {
            offset_ms: AtomicI64::new(i64::MIN),
        }
    }
}

fn local_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl RedisClock {
    /// Redis said it was `redis_ms` (milliseconds since the epoch) just now. The answer's
    /// flight time makes the estimate of Redis's clock a little early: deadlines err short.
    pub(crate) fn observe(&self, redis_ms: i64) {
        self.offset_ms
            .store(redis_ms.saturating_sub(local_ms()), Ordering::Relaxed);
    }

    /// `deadline` in Redis's milliseconds since the epoch; 0 (no deadline) while Redis's
    /// clock is unknown.
    pub(crate) fn redis_ms(&self, deadline: Instant) -> i64 {
        let offset = self.offset_ms.load(Ordering::Relaxed);
        if offset == i64::MIN {
            return 0;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let left = i64::try_from(left.as_millis()).unwrap_or(i64::MAX);
        local_ms()
            .saturating_add(left)
            .saturating_add(offset)
            .max(1)
    }
}

/// Milliseconds since the epoch in an answer to `TIME` (seconds, microseconds).
fn time_ms((secs, micros): (i64, i64)) -> i64 {
    secs.saturating_mul(1000).saturating_add(micros / 1000)
}

/// Creates multiplexed connections and decides, at each checkout, whether one needs a
/// `PING` first.
pub(crate) struct Manager {
    client: redis::Client,
    config: AsyncConnectionConfig,
    idle_ping: Duration,
    /// Bumped on every connection-level failure: connections checked before the latest
    /// failure are checked again.
    failures: Arc<AtomicU64>,
    /// Set from a `TIME` sent on every new connection.
    clock: Arc<RedisClock>,
}

impl Manager {
    pub(crate) fn new(
        client: redis::Client,
        config: AsyncConnectionConfig,
        idle_ping: Duration,
        clock: Arc<RedisClock>,
    ) -> Self {
        Manager {
            client,
            config,
            idle_ping,
            failures: Arc::new(AtomicU64::new(0)),
            clock,
        }
    }
}

/// One pooled connection and what its last use says about it.
pub(crate) struct Pooled {
    conn: MultiplexedConnection,
    /// A connection-level error was seen: never hand it out again.
    broken: bool,
    /// A request was sent and its answer not awaited to the end (the caller gave up).
    in_flight: bool,
    /// The manager's failure count when this connection was created or last answered a
    /// check.
    checked_at: u64,
    failures: Arc<AtomicU64>,
}

/// Whether an error leaves the connection in an unknown state (as opposed to an error
/// answer from Redis, after which the connection is as good as before).
pub(crate) fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

impl Pooled {
    fn note<T>(&mut self, r: &Result<T, RedisError>) {
        self.in_flight = false;
        if let Err(e) = r {
            if breaks_connection(e) {
                self.broken = true;
                self.failures.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

impl managed::Manager for Manager {
    type Type = Pooled;
    type Error = RedisError;

    async fn create(&self) -> Result<Pooled, RedisError> {
        let checked_at = self.failures.load(Ordering::Acquire);
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        let now = redis::cmd("TIME").query_async(&mut conn).await?;
        self.clock.observe(time_ms(now));
        Ok(Pooled {
            conn,
            broken: false,
            in_flight: false,
            checked_at,
            failures: self.failures.clone(),
        })
    }

    async fn recycle(&self, c: &mut Pooled, metrics: &Metrics) -> RecycleResult<RedisError> {
        if c.broken || c.in_flight {
            if c.in_flight {
                // Dropped mid-request: Redis may be frozen or gone; check the others.
                self.failures.fetch_add(1, Ordering::AcqRel);
            }
            return Err(RecycleError::message(
                "the connection failed or was abandoned mid-request",
            ));
        }
        let failures = self.failures.load(Ordering::Acquire);
        if c.checked_at == failures && metrics.last_used() < self.idle_ping {
            return Ok(());
        }
        let r = redis::cmd("PING").query_async::<String>(&mut c.conn).await;
        c.note(&r);
        r?;
        c.checked_at = failures;
        Ok(())
    }
}

/// A connection checked out for one operation: a pooled single-node connection, or a
/// handle on the shared cluster connection (multiplexed and routed by key; it follows
/// MOVED/ASK redirections and failovers itself, so it needs no pool). Commands go through
/// [`ConnectionLike`], which for a pooled connection records connection-level errors and
/// unfinished requests for the next checkout.
pub enum Conn {
    Pooled(managed::Object<Manager>),
    Cluster(ClusterConnection),
}

impl Conn {
    /// `WAIT replicas timeout` for the writes this connection sent so far, on the node that
    /// holds `key` (a cluster would otherwise ask every master and keep the least).
    pub(crate) async fn wait_replicas(
        &mut self,
        key: &str,
        replicas: u32,
        timeout_ms: u64,
    ) -> Result<i64, RedisError> {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(replicas).arg(timeout_ms);
        match self {
            Conn::Pooled(_) => cmd.query_async(self).await,
            Conn::Cluster(c) => {
                let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
                let v = c
                    .route_command(
                        cmd,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                redis::from_redis_value(v).map_err(RedisError::from)
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Pooled(o) => Box::pin(async move {
                let c = &mut **o;
                c.in_flight = true;
                let r = c.conn.send_packed_command(cmd).await;
                c.note(&r);
                r
            }),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Pooled(o) => Box::pin(async move {
                let c = &mut **o;
                c.in_flight = true;
                let r = c.conn.send_packed_commands(cmd, offset, count).await;
                c.note(&r);
                r
            }),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Pooled(o) => o.conn.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
