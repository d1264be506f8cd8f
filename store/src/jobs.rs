//! The job protocol, both sides: jobs are enqueued by `ingest.lua` as entries
//! `f=<feature index> s=<seq> v=<version>` on each monitor's jobs stream; workers read them
//! in the `workers` consumer group, take over idle ones, and dead-letter those that can
//! never succeed. Acknowledging happens in `record_batch.lua` with the outcomes.

use crate::connect::blocking_connection;
use crate::keys::GROUP;
use crate::reply::{int, text};
use crate::{Store, StoreError};
use deadpool_redis::redis::cluster_routing::Slot;
use deadpool_redis::redis::{self, Value};
use std::collections::HashMap;
use std::time::Duration;

/// One job: evaluate feature `feature` of `monitor` on the window that ended at row `seq`,
/// against reference version `version`.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub monitor: String,
    pub id: String,
    pub feature: usize,
    pub seq: u64,
    pub version: String,
}

/// An entry that is not a valid job (trimmed away, or written by something else).
#[derive(Clone, Debug, PartialEq)]
pub struct Poison {
    pub monitor: String,
    pub id: String,
    pub reason: String,
}

/// A job pending longer than the idle time, and how often it was delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StuckJob {
    pub id: String,
    pub deliveries: u64,
}

fn pairs(v: &Value) -> Vec<(Value, Value)> {
    match v {
        Value::Array(items) => items
            .chunks_exact(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect(),
        Value::Map(m) => m.clone(),
        _ => Vec::new(),
    }
}

/// Parses one stream entry `[id, [field, value, ...]]`.
fn parse_entry(monitor: &str, entry: &Value) -> Option<Result<Job, Poison>> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let id = text(parts.first()?)?;
    let poison = |reason: &str| Poison {
        monitor: monitor.to_string(),
        id: id.clone(),
        reason: reason.to_string(),
    };
    let fields: HashMap<String, String> = match parts.get(1) {
        Some(Value::Nil) | None => return Some(Err(poison("entry was trimmed from the stream"))),
        Some(v) => pairs(v)
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
            .collect(),
    };
    let job = (|| {
        Some(Job {
            monitor: monitor.to_string(),
            id: id.clone(),
            feature: fields.get("f")?.parse().ok()?,
            seq: fields.get("s")?.parse().ok()?,
            version: fields.get("v")?.clone(),
        })
    })();
    Some(job.ok_or_else(|| poison("not a job: fields f, s and v are required")))
}

/// The (stream, entries) pairs of an XREADGROUP reply: `[[stream, [entry, ...]], ...]`
/// (or a map in RESP3).
fn streams_of(reply: &Value) -> Vec<(Value, Value)> {
    match reply {
        Value::Array(items) => items
            .iter()
            .filter_map(|s| match s {
                Value::Array(kv) if kv.len() == 2 => Some((kv[0].clone(), kv[1].clone())),
                _ => None,
            })
            .collect(),
        Value::Map(m) => m.clone(),
        _ => Vec::new(),
    }
}

/// Parses the jobs of an XREADGROUP reply.
fn parse_read_reply(
    reply: &Value,
    monitor_of_stream: &HashMap<String, String>,
) -> Vec<Result<Job, Poison>> {
    let mut out = Vec::new();
    for (key, entries) in streams_of(reply) {
        let Some(monitor) = text(&key).and_then(|k| monitor_of_stream.get(&k).cloned()) else {
            continue;
        };
        if let Value::Array(entries) = entries {
            out.extend(entries.iter().filter_map(|e| parse_entry(&monitor, e)));
        }
    }
    out
}

/// Parses an XAUTOCLAIM reply: `[next-id, [entry, ...], [deleted-id, ...]]`.
fn parse_autoclaim(monitor: &str, reply: &Value) -> (String, Vec<Result<Job, Poison>>) {
    let Value::Array(parts) = reply else {
        return ("0-0".into(), Vec::new());
    };
    let next = parts.first().and_then(text).unwrap_or_else(|| "0-0".into());
    let jobs = match parts.get(1) {
        Some(Value::Array(entries)) => entries
            .iter()
            .filter_map(|e| parse_entry(monitor, e))
            .collect(),
        _ => Vec::new(),
    };
    (next, jobs)
}

/// Parses an extended XPENDING reply into (id, deliveries).
fn parse_pending(reply: &Value) -> Vec<StuckJob> {
    let Value::Array(items) = reply else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|it| {
            let Value::Array(p) = it else { return None };
            let id = text(p.first()?)?;
            let deliveries = int(p.get(3)?)?;
            Some(StuckJob { id, deliveries })
        })
        .collect()
}

/// Ids of the registry entries in an XREADGROUP reply.
fn registry_ids(reply: &Value, registry: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for (key, entries) in streams_of(reply) {
        if text(&key).as_deref() != Some(registry) {
            continue;
        }
        if let Value::Array(entries) = entries {
            for e in entries {
                if let Value::Array(parts) = e {
                    ids.extend(parts.first().and_then(text));
                }
            }
        }
    }
    ids
}

/// The `XACK` of registry notices `ids` (read in the same call as the jobs).
fn ack_notices(registry: &str, ids: &[String]) -> redis::Cmd {
    let mut ack = redis::cmd("XACK");
    ack.arg(registry).arg(GROUP).arg(ids);
    ack
}

/// A consumer's reader of new jobs over every monitor's jobs stream. It owns a dedicated
/// connection (a blocking read must not hold a pooled one, and its response timeout must
/// exceed the block time), reconnecting after a connection error.
///
/// The same read also takes notices of new monitors from the registry stream, so that a
/// blocked reader wakes up when a monitor is registered and reads its jobs from the first
/// boundary on instead of after its next periodic refresh ([`JobReader::take_notice`]).
/// One worker of the group gets each notice; the others find the monitor on their refresh.
pub struct JobReader {
    /// On a cluster, the store whose shared connection polls each slot instead.
    cluster: Option<Store>,
    url: String,
    keys: crate::Keys,
    consumer: String,
    block: Duration,
    response_timeout: Duration,
    conn: Option<redis::aio::MultiplexedConnection>,
    noticed: bool,
}

impl JobReader {
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Whether a read since the last call brought a notice of a new monitor or version
    /// (then list the monitors again).
    pub fn take_notice(&mut self) -> bool {
        std::mem::take(&mut self.noticed)
    }

    /// Reads up to `count` jobs over `monitors`: with `own_pending`, those delivered to this
    /// consumer before and never acknowledged (a previous life of the same name), at once;
    /// else new ones, waiting up to the block time.
    pub async fn read(
        &mut self,
        monitors: &[String],
        own_pending: bool,
        count: usize,
    ) -> Result<Vec<Result<Job, Poison>>, StoreError> {
        if let Some(store) = self.cluster.clone() {
            return self.poll_slots(&store, monitors, own_pending, count).await;
        }
        if self.conn.is_none() {
            self.conn = Some(blocking_connection(&self.url, self.response_timeout).await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(Vec::new());
        };
        let registry = self.keys.registry();
        let mut keys: Vec<String> = monitors.iter().map(|m| self.keys.jobs(m)).collect();
        keys.push(registry.clone());
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count);
        if !own_pending {
            cmd.arg("BLOCK").arg(self.block.as_millis() as u64);
        }
        cmd.arg("STREAMS").arg(&keys);
        for _ in &keys {
            cmd.arg(if own_pending { "0" } else { ">" });
        }
        match cmd.query_async::<Value>(conn).await {
            Ok(reply) => {
                let notices = registry_ids(&reply, &registry);
                if !notices.is_empty() {
                    self.noticed = true;
                    // A notice lost to a crash before this XACK only delays discovery
                    // until the next refresh.
                    ack_notices(&registry, &notices)
                        .query_async::<()>(conn)
                        .await?;
                }
                let streams: HashMap<String, String> =
                    keys.into_iter().zip(monitors.iter().cloned()).collect();
                Ok(parse_read_reply(&reply, &streams))
            }
            Err(e) => {
                // A missing group is the monitor's business; anything else may have broken
                // the connection.
                if e.code() != Some("NOGROUP") {
                    self.conn = None;
                }
                Err(e.into())
            }
        }
    }
}

/// The longest pause between two polls of an idle cluster: the most a new job waits.
const POLL_MAX: Duration = Duration::from_millis(50);

impl JobReader {
    /// [`JobReader::read`] on a Redis Cluster, which refuses one XREADGROUP over streams
    /// in different slots, and where a blocking read would stall the connection that
    /// every other command to that node shares. So each slot's streams get their own
    /// non-blocking read, all at once; while they bring nothing, they are repeated after
    /// a pause that grows from 1 ms to [`POLL_MAX`], until the block time is up. A slot
    /// whose read fails (its master is failing over) does not hold up the others' jobs.
    async fn poll_slots(
        &mut self,
        store: &Store,
        monitors: &[String],
        own_pending: bool,
        count: usize,
    ) -> Result<Vec<Result<Job, Poison>>, StoreError> {
        let registry = self.keys.registry();
        let mut slots: HashMap<Slot, Vec<String>> = HashMap::new();
        let mut monitor_of_stream = HashMap::new();
        for m in monitors {
            let key = self.keys.jobs(m);
            monitor_of_stream.insert(key.clone(), m.clone());
            slots.entry(Slot::for_key(&key)).or_default().push(key);
        }
        slots
            .entry(Slot::for_key(&registry))
            .or_default()
            .push(registry.clone());
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let reads = slots.values().map(|keys| {
                let mut cmd = redis::cmd("XREADGROUP");
                cmd.arg("GROUP")
                    .arg(GROUP)
                    .arg(&self.consumer)
                    .arg("COUNT")
                    .arg(count)
                    .arg("STREAMS")
                    .arg(keys);
                for _ in keys {
                    cmd.arg(if own_pending { "0" } else { ">" });
                }
                store.query::<Value>(cmd)
            });
            let mut jobs = Vec::new();
            let mut notices = Vec::new();
            let mut failed = None;
            for reply in futures::future::join_all(reads).await {
                match reply {
                    Ok(reply) => {
                        notices.extend(registry_ids(&reply, &registry));
                        jobs.extend(parse_read_reply(&reply, &monitor_of_stream));
                    }
                    Err(e) => failed = Some(e),
                }
            }
            if !notices.is_empty() {
                self.noticed = true;
                store.query::<()>(ack_notices(&registry, &notices)).await?;
            }
            if !jobs.is_empty() || self.noticed {
                if let Some(e) = failed {
                    tracing::warn!(error = %e, "reading the jobs of some slots failed");
                }
                return Ok(jobs);
            }
            if let Some(e) = failed {
                return Err(e);
            }
            if own_pending || started.elapsed() + pause > self.block {
                return Ok(jobs);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }
}

impl Store {
    /// A reader of jobs for consumer `consumer` that waits up to `block` for new ones.
    pub fn job_reader(&self, consumer: &str, block: Duration) -> JobReader {
        JobReader {
            cluster: self.is_cluster().then(|| self.clone()),
            url: self.url.clone(),
            keys: self.keys.clone(),
            consumer: consumer.to_string(),
            block,
            response_timeout: block + self.op_timeout,
            conn: None,
            noticed: false,
        }
    }

    /// Creates the consumer group of the registry stream if missing (the registration
    /// script creates it too; this covers a reader that starts before any registration).
    pub async fn ensure_registry_group(&self) -> Result<(), StoreError> {
        self.create_group(self.keys.registry()).await
    }

    /// Creates the consumer group of a monitor's jobs stream if missing.
    pub async fn ensure_group(&self, monitor: &str) -> Result<(), StoreError> {
        self.create_group(self.keys.jobs(monitor)).await
    }

    async fn create_group(&self, stream: String) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM");
        self.run(|mut c| async move {
            match cmd.query_async::<()>(&mut c).await {
                Ok(()) => Ok(()),
                Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Up to `count` jobs of `monitor` pending longer than `idle` on any consumer.
    pub async fn stuck_jobs(
        &self,
        monitor: &str,
        idle: Duration,
        count: usize,
    ) -> Result<Vec<StuckJob>, StoreError> {
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(self.keys.jobs(monitor))
            .arg(GROUP)
            .arg("IDLE")
            .arg(idle.as_millis() as u64)
            .arg("-")
            .arg("+")
            .arg(count);
        let reply: Value = self.query(cmd).await?;
        Ok(parse_pending(&reply))
    }

    /// Takes over up to `count` jobs of `monitor` idle longer than `idle`, scanning from
    /// `cursor`; returns the next cursor (`0-0` when the scan is complete) and the jobs.
    pub async fn claim_idle(
        &self,
        monitor: &str,
        consumer: &str,
        idle: Duration,
        cursor: &str,
        count: usize,
    ) -> Result<(String, Vec<Result<Job, Poison>>), StoreError> {
        let mut cmd = redis::cmd("XAUTOCLAIM");
        cmd.arg(self.keys.jobs(monitor))
            .arg(GROUP)
            .arg(consumer)
            .arg(idle.as_millis() as u64)
            .arg(cursor)
            .arg("COUNT")
            .arg(count);
        let reply: Value = self.query(cmd).await?;
        Ok(parse_autoclaim(monitor, &reply))
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
            .arg(self.caps.dead);
        let moved: i64 = self.invoke(inv).await?;
        Ok(moved == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_entries_and_poison() {
        let e = Value::Array(vec![
            b("1-0"),
            Value::Array(vec![b("f"), b("3"), b("s"), b("600"), b("v"), b("abc")]),
        ]);
        assert_eq!(
            parse_entry("m", &e),
            Some(Ok(Job {
                monitor: "m".into(),
                id: "1-0".into(),
                feature: 3,
                seq: 600,
                version: "abc".into()
            }))
        );
        let trimmed = Value::Array(vec![b("2-0"), Value::Nil]);
        assert!(matches!(parse_entry("m", &trimmed), Some(Err(_))));
        let junk = Value::Array(vec![b("3-0"), Value::Array(vec![b("x"), b("y")])]);
        assert!(matches!(parse_entry("m", &junk), Some(Err(_))));
    }

    #[test]
    fn parses_pending() {
        let r = Value::Array(vec![Value::Array(vec![
            b("1-0"),
            b("c1"),
            Value::Int(100),
            Value::Int(4),
        ])]);
        assert_eq!(
            parse_pending(&r),
            vec![StuckJob {
                id: "1-0".to_string(),
                deliveries: 4
            }]
        );
    }
}
