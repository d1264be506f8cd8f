//! Everything the API, workers and exporter do with Redis, in one place.
//!
//! Each operation is one round trip (a Lua script or a pipeline) and is bounded by a
//! timeout, so that an unreachable or paused Redis turns into [`StoreError::Unavailable`]
//! (HTTP 503) within the deadline instead of a hang.

use crate::codec;
use crate::keys::{Keys, GROUP};
use crate::monitor::{MonitorConfig, MonitorSpec};
use deadpool_redis::redis::{self, AsyncConnectionConfig, Value};
use deadpool_redis::{Manager, Pool, PoolError, Runtime, Timeouts};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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
    /// An answer that should not happen with our own scripts (a bug or foreign data).
    #[error("unexpected Redis answer: {0}")]
    Protocol(String),
}

impl StoreError {
    /// Whether the same request may succeed later without any change.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        match e.code() {
            Some("NOMONITOR") => return StoreError::UnknownMonitor(String::new()),
            Some("STALECONFIG") => return StoreError::StaleConfig,
            Some(
                "LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN" | "NOAUTH"
                | "WRONGPASS" | "NOPERM",
            ) => return StoreError::Unavailable(e.to_string()),
            _ => {}
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

/// How long to wait for Redis before answering 503.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    pub url: String,
    pub op_timeout: Duration,
    pub pool_size: usize,
}

impl RedisOptions {
    pub fn new(url: &str) -> Self {
        RedisOptions {
            url: url.to_string(),
            op_timeout: Duration::from_millis(1500),
            pool_size: 32,
        }
    }
}

/// `rediss://` needs a process-wide TLS crypto provider; installing it twice is harmless.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A connection pool whose every step (connect, wait for a connection, answer) is bounded.
pub fn pool(opts: &RedisOptions) -> Result<Pool, StoreError> {
    install_tls_provider();
    let conn_cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(opts.op_timeout))
        .set_response_timeout(Some(opts.op_timeout));
    let manager = Manager::new_with_config(opts.url.as_str(), conn_cfg)
        .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL: {e}")))?;
    Pool::builder(manager)
        .max_size(opts.pool_size)
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
pub async fn blocking_connection(
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

struct Scripts {
    register: redis::Script,
    ingest: redis::Script,
    read_window: redis::Script,
    record: redis::Script,
    dead_letter: redis::Script,
}

/// Outcome of [`Store::register`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    Unchanged,
    ParamsUpdated,
    NewVersion,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ingested {
    /// Rows ingested so far, this batch included.
    pub seq: u64,
    /// Evaluation jobs enqueued by this batch.
    pub jobs: u64,
}

/// A feature's latest result, as stored by the workers.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FeatureResult {
    pub seq: u64,
    pub p_value: f64,
    pub statistic: f64,
    pub statistic_location: f64,
    pub statistic_sign: i8,
    pub drifted: bool,
    pub window_rows: u64,
    pub method: String,
    pub evaluated_at: f64,
    pub evaluations: u64,
    pub detections: u64,
}

/// The monitor-level decision and global counters.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct MonitorState {
    pub rows: u64,
    pub features_drifting: u64,
    pub drift_share: f64,
    pub dataset_drifted: bool,
    /// Row sequence of the evaluation that last changed the decision.
    pub decided_seq: Option<u64>,
    pub last_detected_at: Option<f64>,
    pub rounds: u64,
    pub evaluations: u64,
    pub stale: u64,
    pub detections: u64,
    pub dead_letters: u64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MonitorStatus {
    pub state: MonitorState,
    /// One entry per feature, in config order; `None` until first evaluated.
    pub results: Vec<Option<FeatureResult>>,
}

/// What a worker reads for a job.
#[derive(Clone, Debug, PartialEq)]
pub enum WindowRead {
    Window(Vec<f64>),
    Stale(String),
}

/// What became of a job whose outcome was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Evaluated,
    Stale,
    /// Someone else already recorded this job (it was delivered twice).
    Duplicate,
}

impl Recorded {
    pub fn as_str(self) -> &'static str {
        match self {
            Recorded::Evaluated => "evaluated",
            Recorded::Stale => "stale",
            Recorded::Duplicate => "duplicate",
        }
    }
}

/// The result of one evaluation, to be recorded.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub p_value: f64,
    pub statistic: f64,
    pub statistic_location: f64,
    pub statistic_sign: i8,
    pub window_rows: usize,
    pub method: &'static str,
}

/// One recorded evaluation, from the history stream (also the wire format of
/// `GET /v1/monitors/{monitor}/history`, which clients deserialize).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    /// Stream entry id; pass it back as `after` to page forward.
    pub id: String,
    pub feature: String,
    pub seq: u64,
    pub p_value: f64,
    pub statistic: f64,
    pub drifted: bool,
    /// Features flagged right after this evaluation.
    #[serde(default)]
    pub features_drifting: u64,
    #[serde(default)]
    pub evaluated_at: f64,
}

/// Pipeline health of one monitor's job stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobsInfo {
    /// Delivered but not acknowledged, plus not yet delivered.
    pub pending: u64,
    pub dead_letters_stored: u64,
}

#[derive(Clone)]
pub struct Store {
    pool: Pool,
    keys: Keys,
    scripts: Arc<Scripts>,
    op_timeout: Duration,
    /// Capacity of the events stream (entries, one per batch).
    pub events_maxlen: u64,
    /// Capacity of each jobs stream.
    pub jobs_maxlen: u64,
    pub dead_maxlen: u64,
    /// Capacity of the evaluation history stream (one entry per evaluation).
    pub history_maxlen: u64,
}

impl Store {
    pub fn new(opts: &RedisOptions, keys: Keys) -> Result<Self, StoreError> {
        Ok(Store {
            pool: pool(opts)?,
            keys,
            scripts: Arc::new(Scripts {
                register: redis::Script::new(include_str!("scripts/register.lua")),
                ingest: redis::Script::new(include_str!("scripts/ingest.lua")),
                read_window: redis::Script::new(include_str!("scripts/read_window.lua")),
                record: redis::Script::new(include_str!("scripts/record_result.lua")),
                dead_letter: redis::Script::new(include_str!("scripts/dead_letter.lua")),
            }),
            op_timeout: opts.op_timeout,
            events_maxlen: 1000,
            jobs_maxlen: 100_000,
            dead_maxlen: 10_000,
            history_maxlen: 100_000,
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Runs one Redis operation with a pooled connection under the operation deadline.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(deadpool_redis::Connection) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let work = async {
            let conn = self.pool.get().await?;
            f(conn).await
        };
        match tokio::time::timeout(self.op_timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {} ms",
                self.op_timeout.as_millis()
            ))),
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|mut c| async move {
            let _: String = redis::cmd("PING").query_async(&mut c).await?;
            Ok(())
        })
        .await
    }

    /// Registers a monitor (idempotent; see `scripts/register.lua`) and makes sure its
    /// consumer group exists before any job can be enqueued.
    pub async fn register(&self, spec: &MonitorSpec) -> Result<Registered, StoreError> {
        let cfg = &spec.config;
        let m = &cfg.name;
        let json = serde_json::to_string(cfg).map_err(|e| StoreError::Protocol(e.to_string()))?;
        let mut inv = self.scripts.register.prepare_invoke();
        inv.key(self.keys.config(m))
            .key(self.keys.monitors())
            .key(self.keys.jobs(m))
            .key(self.keys.state(m))
            .key(self.keys.seq(m));
        for f in &cfg.features {
            inv.key(self.keys.window(m, f))
                .key(self.keys.result(m, f))
                .key(self.keys.reference(m, f));
        }
        inv.arg(&cfg.version)
            .arg(json)
            .arg(cfg.params.window)
            .arg(cfg.params.stride)
            .arg(cfg.features.len())
            .arg(m)
            .arg(GROUP)
            .arg(cfg.features.join("\n"))
            .arg(self.keys.base(m));
        for col in &spec.reference {
            let mut sorted = col.clone();
            sorted.sort_by(f64::total_cmp);
            inv.arg(codec::encode_all(&sorted));
        }
        let code: i64 = self
            .run(|mut c| async move { Ok(inv.invoke_async(&mut c).await?) })
            .await?;
        Ok(match code {
            0 => Registered::Unchanged,
            1 => Registered::ParamsUpdated,
            _ => Registered::NewVersion,
        })
    }

    pub async fn config(&self, monitor: &str) -> Result<Option<MonitorConfig>, StoreError> {
        let key = self.keys.config(monitor);
        let json: Option<String> = self
            .run(|mut c| async move {
                Ok(redis::cmd("HGET")
                    .arg(key)
                    .arg("json")
                    .query_async(&mut c)
                    .await?)
            })
            .await?;
        json.map(|j| {
            serde_json::from_str(&j)
                .map_err(|e| StoreError::Protocol(format!("config of `{monitor}`: {e}")))
        })
        .transpose()
    }

    pub async fn monitors(&self) -> Result<Vec<String>, StoreError> {
        let key = self.keys.monitors();
        let mut names: Vec<String> =
            self.run(|mut c| async move {
                Ok(redis::cmd("SMEMBERS").arg(key).query_async(&mut c).await?)
            })
            .await?;
        names.sort();
        Ok(names)
    }

    /// Appends a batch (`columns[i]` holds feature i's values, in config order) in one
    /// atomic step; see `scripts/ingest.lua`.
    pub async fn ingest(
        &self,
        cfg: &MonitorConfig,
        columns: &[Vec<f64>],
    ) -> Result<Ingested, StoreError> {
        let m = &cfg.name;
        let n = columns.first().map_or(0, Vec::len);
        if columns.len() != cfg.features.len() || n == 0 || columns.iter().any(|c| c.len() != n) {
            return Err(StoreError::Protocol("batch shape does not match".into()));
        }
        let mut inv = self.scripts.ingest.prepare_invoke();
        inv.key(self.keys.config(m))
            .key(self.keys.seq(m))
            .key(self.keys.events(m))
            .key(self.keys.jobs(m))
            .key(self.keys.stats(m));
        for f in &cfg.features {
            inv.key(self.keys.window(m, f));
        }
        inv.arg(&cfg.version)
            .arg(n)
            .arg(self.events_maxlen)
            .arg(self.jobs_maxlen);
        for col in columns {
            for v in col {
                inv.arg(&codec::encode(*v)[..]);
            }
        }
        let (seq, jobs): (u64, u64) = self
            .run(|mut c| async move { Ok(inv.invoke_async(&mut c).await?) })
            .await
            .map_err(|e| match e {
                StoreError::UnknownMonitor(_) => StoreError::UnknownMonitor(m.clone()),
                e => e,
            })?;
        Ok(Ingested { seq, jobs })
    }

    /// Latest results and decision of a monitor, in one round trip.
    pub async fn status(&self, cfg: &MonitorConfig) -> Result<MonitorStatus, StoreError> {
        let m = &cfg.name;
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(self.keys.seq(m));
        pipe.cmd("HGETALL").arg(self.keys.state(m));
        pipe.cmd("HGETALL").arg(self.keys.stats(m));
        for f in &cfg.features {
            pipe.cmd("HGETALL").arg(self.keys.result(m, f));
        }
        type Hash = HashMap<String, String>;
        let (seq, state, stats, results): (Option<u64>, Hash, Hash, Vec<Hash>) = self
            .run(|mut c| async move {
                let vals: Vec<Value> = pipe.query_async(&mut c).await?;
                let mut it = vals.into_iter();
                let seq = redis::from_redis_value(it.next().unwrap_or(Value::Nil))?;
                let state = redis::from_redis_value(it.next().unwrap_or(Value::Nil))?;
                let stats = redis::from_redis_value(it.next().unwrap_or(Value::Nil))?;
                let results = it
                    .map(redis::from_redis_value)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((seq, state, stats, results))
            })
            .await?;
        let num = |h: &HashMap<String, String>, k: &str| -> Option<f64> {
            h.get(k).and_then(|v| v.parse().ok())
        };
        let int = |h: &HashMap<String, String>, k: &str| -> u64 {
            h.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        let state = MonitorState {
            rows: seq.unwrap_or(0),
            features_drifting: int(&state, "drifting"),
            drift_share: num(&state, "share").unwrap_or(0.0),
            dataset_drifted: state.get("dataset_drifted").is_some_and(|v| v == "1"),
            decided_seq: state.get("seq").and_then(|v| v.parse().ok()),
            last_detected_at: num(&state, "last_detected"),
            rounds: int(&stats, "rounds"),
            evaluations: int(&stats, "evaluations"),
            stale: int(&stats, "stale"),
            detections: int(&stats, "detections"),
            dead_letters: int(&stats, "dead_letters"),
        };
        let results = results
            .iter()
            .map(|h| {
                Some(FeatureResult {
                    seq: h.get("seq")?.parse().ok()?,
                    p_value: num(h, "p")?,
                    statistic: num(h, "statistic")?,
                    statistic_location: num(h, "location").unwrap_or(f64::NAN),
                    statistic_sign: h.get("sign").and_then(|s| s.parse().ok()).unwrap_or(1),
                    drifted: h.get("drifted").is_some_and(|v| v == "1"),
                    window_rows: int(h, "n"),
                    method: h.get("method").cloned().unwrap_or_default(),
                    evaluated_at: num(h, "evaluated_at").unwrap_or(0.0),
                    evaluations: int(h, "evaluations"),
                    detections: int(h, "detections"),
                })
            })
            .collect();
        Ok(MonitorStatus { state, results })
    }

    /// Evaluations recorded after stream id `after` (exclusive), oldest first, at most `limit`.
    pub async fn history(
        &self,
        cfg: &MonitorConfig,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let key = self.keys.history(&cfg.name);
        let start = match after {
            Some(id) => format!("({id}"),
            None => "-".to_string(),
        };
        let raw: Vec<(String, HashMap<String, String>)> = self
            .run(|mut c| async move {
                Ok(redis::cmd("XRANGE")
                    .arg(key)
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit)
                    .query_async(&mut c)
                    .await?)
            })
            .await?;
        Ok(raw
            .into_iter()
            .filter(|(_, h)| h.get("v") == Some(&cfg.version))
            .filter_map(|(id, h)| {
                let num = |k: &str| h.get(k).and_then(|v| v.parse::<f64>().ok());
                let feature = cfg
                    .features
                    .get(h.get("f")?.parse::<usize>().ok()?)?
                    .clone();
                Some(HistoryEntry {
                    id,
                    feature,
                    seq: h.get("s")?.parse().ok()?,
                    p_value: num("p")?,
                    statistic: num("d")?,
                    drifted: h.get("drifted").is_some_and(|v| v == "1"),
                    features_drifting: h.get("drifting").and_then(|v| v.parse().ok()).unwrap_or(0),
                    evaluated_at: num("t").unwrap_or(0.0),
                })
            })
            .collect())
    }

    /// Jobs waiting (undelivered or unacknowledged) and dead letters kept.
    pub async fn jobs_info(&self, monitor: &str) -> Result<JobsInfo, StoreError> {
        let jobs = self.keys.jobs(monitor);
        let dead = self.keys.dead(monitor);
        self.run(|mut c| async move {
            let mut pipe = redis::pipe();
            pipe.cmd("XINFO").arg("GROUPS").arg(&jobs);
            pipe.cmd("XLEN").arg(&dead);
            let res: Result<(Value, u64), _> = pipe.query_async(&mut c).await;
            let (groups, dead_len) = match res {
                Ok(r) => r,
                // No stream yet (XINFO errors on a missing key).
                Err(e) if e.code() == Some("ERR") => (Value::Nil, 0),
                Err(e) => return Err(e.into()),
            };
            let mut pending = 0;
            if let Value::Array(groups) = groups {
                for g in groups {
                    let fields: HashMap<String, Value> =
                        redis::from_redis_value(g).unwrap_or_default();
                    if fields
                        .get("name")
                        .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
                        .as_deref()
                        != Some(GROUP)
                    {
                        continue;
                    }
                    for k in ["pending", "lag"] {
                        if let Some(v) = fields.get(k) {
                            pending += redis::from_redis_value::<u64>(v.clone()).unwrap_or(0);
                        }
                    }
                }
            }
            Ok(JobsInfo {
                pending,
                dead_letters_stored: dead_len,
            })
        })
        .await
    }

    /// Creates the consumer group of a monitor's jobs stream if missing.
    pub async fn ensure_group(&self, monitor: &str) -> Result<(), StoreError> {
        let jobs = self.keys.jobs(monitor);
        self.run(|mut c| async move {
            let r: Result<(), redis::RedisError> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(jobs)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut c)
                .await;
            match r {
                Ok(()) => Ok(()),
                Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// The sorted reference of a feature, if the monitor is still at `version`.
    pub async fn reference(
        &self,
        monitor: &str,
        feature: &str,
        version: &str,
    ) -> Result<Option<Vec<f64>>, StoreError> {
        let cfg = self.keys.config(monitor);
        let rk = self.keys.reference(monitor, feature);
        let (cur, blob): (Option<String>, Option<Vec<u8>>) = self
            .run(|mut c| async move {
                Ok(redis::pipe()
                    .atomic()
                    .cmd("HGET")
                    .arg(cfg)
                    .arg("version")
                    .cmd("GET")
                    .arg(rk)
                    .query_async(&mut c)
                    .await?)
            })
            .await?;
        if cur.as_deref() != Some(version) {
            return Ok(None);
        }
        let blob =
            blob.ok_or_else(|| StoreError::Protocol(format!("no reference for {feature}")))?;
        codec::decode_all(&blob)
            .map(Some)
            .ok_or_else(|| StoreError::Protocol(format!("corrupt reference for {feature}")))
    }

    /// The window that ended at row `seq`, or why the job is stale.
    pub async fn read_window(
        &self,
        monitor: &str,
        feature: &str,
        seq: u64,
        version: &str,
    ) -> Result<WindowRead, StoreError> {
        let mut inv = self.scripts.read_window.prepare_invoke();
        inv.key(self.keys.seq(monitor))
            .key(self.keys.config(monitor))
            .key(self.keys.window(monitor, feature))
            .arg(seq)
            .arg(version);
        let v: Value = self
            .run(|mut c| async move { Ok(inv.invoke_async(&mut c).await?) })
            .await?;
        let Value::Array(mut parts) = v else {
            return Err(StoreError::Protocol("read_window: not an array".into()));
        };
        let tag: String = redis::from_redis_value(parts.first().cloned().unwrap_or(Value::Nil))
            .map_err(StoreError::from)?;
        if tag == "stale" {
            let reason: String =
                redis::from_redis_value(parts.get(1).cloned().unwrap_or(Value::Nil))
                    .unwrap_or_default();
            return Ok(WindowRead::Stale(reason));
        }
        let raw: Vec<Vec<u8>> = redis::from_redis_value(parts.pop().unwrap_or(Value::Nil))?;
        let values = raw
            .iter()
            .map(|b| codec::decode(b))
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| StoreError::Protocol(format!("corrupt window value in {feature}")))?;
        Ok(WindowRead::Window(values))
    }

    /// Records an evaluation (`Some`) or a stale skip (`None`) of job `job_id` and acks it.
    #[allow(clippy::too_many_arguments)]
    pub async fn record(
        &self,
        cfg: &MonitorConfig,
        job_id: &str,
        feature_index: usize,
        seq: u64,
        version: &str,
        now: f64,
        evaluation: Option<&Evaluation>,
    ) -> Result<Recorded, StoreError> {
        let m = &cfg.name;
        let mut inv = self.scripts.record.prepare_invoke();
        inv.key(self.keys.jobs(m))
            .key(self.keys.stats(m))
            .key(self.keys.state(m))
            .key(self.keys.config(m))
            .key(self.keys.history(m));
        for f in &cfg.features {
            inv.key(self.keys.result(m, f));
        }
        inv.arg(GROUP)
            .arg(job_id)
            .arg(if evaluation.is_some() {
                "eval"
            } else {
                "stale"
            })
            .arg(feature_index)
            .arg(seq)
            .arg(version)
            .arg(format!("{now:.3}"));
        if let Some(e) = evaluation {
            // `{:?}` prints the shortest representation that parses back to the same f64.
            inv.arg(format!("{:?}", e.p_value))
                .arg(format!("{:?}", e.statistic))
                .arg(format!("{:?}", e.statistic_location))
                .arg(e.statistic_sign)
                .arg(e.window_rows)
                .arg(e.method)
                .arg(self.history_maxlen);
        }
        let tag: String = self
            .run(|mut c| async move { Ok(inv.invoke_async(&mut c).await?) })
            .await?;
        match tag.as_str() {
            "evaluated" => Ok(Recorded::Evaluated),
            "stale" => Ok(Recorded::Stale),
            "duplicate" => Ok(Recorded::Duplicate),
            other => Err(StoreError::Protocol(format!("record: {other}"))),
        }
    }

    /// Moves a pending job to the dead-letter stream; false if it was no longer pending.
    pub async fn dead_letter(
        &self,
        monitor: &str,
        job_id: &str,
        reason: &str,
        deliveries: u64,
    ) -> Result<bool, StoreError> {
        let mut inv = self.scripts.dead_letter.prepare_invoke();
        inv.key(self.keys.jobs(monitor))
            .key(self.keys.dead(monitor))
            .key(self.keys.stats(monitor))
            .arg(GROUP)
            .arg(job_id)
            .arg(reason)
            .arg(deliveries)
            .arg(self.dead_maxlen);
        let moved: i64 = self
            .run(|mut c| async move { Ok(inv.invoke_async(&mut c).await?) })
            .await?;
        Ok(moved == 1)
    }

    /// Clears a monitor's data (windows, counters, results, history, jobs) but keeps its
    /// config and reference; `delete` also removes those and unregisters it. Atomic.
    pub async fn clear(&self, cfg: &MonitorConfig, delete: bool) -> Result<(), StoreError> {
        let m = &cfg.name;
        let k = &self.keys;
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut keys = vec![
            k.seq(m),
            k.events(m),
            k.jobs(m),
            k.stats(m),
            k.state(m),
            k.history(m),
        ];
        for f in &cfg.features {
            keys.push(k.window(m, f));
            keys.push(k.result(m, f));
        }
        if delete {
            keys.push(k.config(m));
            keys.push(k.dead(m));
            for f in &cfg.features {
                keys.push(k.reference(m, f));
            }
        }
        pipe.cmd("DEL").arg(&keys).ignore();
        if delete {
            pipe.cmd("SREM").arg(k.monitors()).arg(m).ignore();
        } else {
            // Jobs enqueued from now on must find the group.
            pipe.cmd("XGROUP")
                .arg("CREATE")
                .arg(k.jobs(m))
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .ignore();
        }
        self.run(|mut c| async move {
            let _: () = pipe.query_async(&mut c).await?;
            Ok(())
        })
        .await
    }

    /// Runs an arbitrary command on a pooled connection under the deadline (for workers'
    /// stream bookkeeping that has no script of its own).
    pub async fn query<T: redis::FromRedisValue + Send + 'static>(
        &self,
        cmd: redis::Cmd,
    ) -> Result<T, StoreError> {
        self.run(|mut c| async move { Ok(cmd.query_async(&mut c).await?) })
            .await
    }
}
