//! Typed readers of a monitor's raw state, and fault injection, for tests, drills and
//! operators: what the scripts stored, read without going through the code paths under
//! test, so that "nothing was written" and "every job was acknowledged" can be checked.

use crate::keys::GROUP;
use crate::{Store, StoreError};
use deadpool_redis::redis::{self, Value};
use drift_core::MonitorConfig;
use std::collections::HashMap;

/// Everything ingest may have written for a monitor: if two footprints are equal, no row,
/// event or job was added in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Footprint {
    pub seq: u64,
    /// Length of every feature's window list, in config order.
    pub windows: Vec<u64>,
    pub events: u64,
    pub jobs: u64,
}

/// The events stream's byte accounting: the running total the ingest script keeps, the
/// size recorded in each entry, and the list of sizes it trims by (oldest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventsAccounting {
    pub total: u64,
    pub entries: Vec<u64>,
    pub sizes: Vec<u64>,
}

/// One entry of the events stream: the rows `seq - rows + 1 ..= seq` of one ingest call,
/// their values feature-major.
#[derive(Clone, Debug, PartialEq)]
pub struct EventEntry {
    pub seq: u64,
    pub rows: u64,
    pub values: Vec<f64>,
}

/// One entry of a dead-letter stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub job: String,
    pub reason: String,
    pub deliveries: u64,
}

impl Store {
    /// Rows ingested so far (the seq counter), 0 before any.
    pub async fn rows(&self, monitor: &str) -> Result<u64, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.keys.seq(monitor));
        let seq: Option<u64> = self.query(cmd).await?;
        Ok(seq.unwrap_or(0))
    }

    /// Values held in a feature's window list (the window plus one stride at most).
    pub async fn window_len(&self, monitor: &str, feature: &str) -> Result<u64, StoreError> {
        Ok(self.window_values(monitor, feature).await?.len() as u64)
    }

    /// Entries of the monitor's events, jobs and dead-letter streams.
    pub async fn stream_lens(&self, monitor: &str) -> Result<(u64, u64, u64), StoreError> {
        let mut pipe = redis::pipe();
        for key in [
            self.keys.events(monitor),
            self.keys.jobs(monitor),
            self.keys.dead(monitor),
        ] {
            pipe.cmd("XLEN").arg(key);
        }
        self.run(|mut c| async move { Ok(pipe.query_async(&mut c).await?) })
            .await
    }

    /// The monitor's footprint, read in one round trip.
    pub async fn footprint(&self, cfg: &MonitorConfig) -> Result<Footprint, StoreError> {
        let m = &cfg.name;
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(self.keys.seq(m));
        pipe.cmd("XLEN").arg(self.keys.events(m));
        pipe.cmd("XLEN").arg(self.keys.jobs(m));
        for f in &cfg.features {
            pipe.cmd("LLEN").arg(self.keys.window(m, f));
        }
        // Every answer is a count (GET of the counter: nil before any row).
        let counts: Vec<Option<u64>> = self
            .run(|mut c| async move { Ok(pipe.query_async(&mut c).await?) })
            .await?;
        let mut it = counts.into_iter().map(|v| v.unwrap_or(0));
        let (seq, events, jobs) = (it.next(), it.next(), it.next());
        Ok(Footprint {
            seq: seq.unwrap_or(0),
            events: events.unwrap_or(0),
            jobs: jobs.unwrap_or(0),
            windows: it.collect(),
        })
    }

    /// The events stream's byte accounting (reads every entry: for tests).
    pub async fn events_accounting(&self, monitor: &str) -> Result<EventsAccounting, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("HGET")
            .arg(self.keys.stats(monitor))
            .arg("events_bytes");
        pipe.cmd("XRANGE")
            .arg(self.keys.events(monitor))
            .arg("-")
            .arg("+");
        pipe.cmd("LRANGE")
            .arg(self.keys.event_sizes(monitor))
            .arg(0)
            .arg(-1);
        type Entries = Vec<(String, HashMap<String, Value>)>;
        let (total, entries, sizes): (Option<u64>, Entries, Vec<u64>) = self
            .run(|mut c| async move { Ok(pipe.query_async(&mut c).await?) })
            .await?;
        let entries = entries
            .into_iter()
            .map(|(_, fields)| {
                fields
                    .get("b")
                    .and_then(|b| redis::from_redis_value::<u64>(b.clone()).ok())
                    .unwrap_or(0)
            })
            .collect();
        Ok(EventsAccounting {
            total: total.unwrap_or(0),
            entries,
            sizes,
        })
    }

    /// The events stream, oldest entry first.
    pub async fn events(&self, monitor: &str) -> Result<Vec<EventEntry>, StoreError> {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(self.keys.events(monitor)).arg("-").arg("+");
        let raw: Vec<(String, HashMap<String, Value>)> = self.query(cmd).await?;
        raw.into_iter()
            .map(|(id, fields)| {
                let field = |name: &str| fields.get(name).cloned().unwrap_or(Value::Nil);
                let data: Vec<u8> = redis::from_redis_value(field("data"))?;
                Ok(EventEntry {
                    seq: redis::from_redis_value(field("seq"))?,
                    rows: redis::from_redis_value(field("rows"))?,
                    values: crate::codec::decode_all(&data).ok_or_else(|| {
                        StoreError::Protocol(format!("events entry {id}: corrupt data"))
                    })?,
                })
            })
            .collect()
    }

    /// Fault injection: deletes the list of events entry sizes, as a stream written before
    /// that list existed would be found (the ingest script rebuilds it).
    pub async fn forget_event_sizes(&self, monitor: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.keys.event_sizes(monitor));
        let _: i64 = self.query(cmd).await?;
        Ok(())
    }

    /// Calls of each command Redis served since start-up or [`Store::reset_command_stats`]
    /// (`INFO commandstats`), lower-case names.
    pub async fn command_calls(&self) -> Result<HashMap<String, u64>, StoreError> {
        let mut calls = HashMap::new();
        for info in self.info("commandstats").await? {
            for (name, n) in info.lines().filter_map(|l| {
                let (name, fields) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let n: u64 = fields
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("calls="))?
                    .parse()
                    .ok()?;
                Some((name.to_string(), n))
            }) {
                *calls.entry(name).or_insert(0) += n;
            }
        }
        Ok(calls)
    }

    /// `CONFIG RESETSTAT`: command counts and connection counters start from zero.
    pub async fn reset_command_stats(&self) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("RESETSTAT");
        self.query(cmd).await
    }

    /// Connections Redis accepted since start-up or [`Store::reset_command_stats`].
    pub async fn connections_received(&self) -> Result<u64, StoreError> {
        self.info("stats")
            .await?
            .iter()
            .map(|info| {
                info.lines()
                    .find_map(|l| {
                        l.strip_prefix("total_connections_received:")?
                            .trim()
                            .parse::<u64>()
                            .ok()
                    })
                    .ok_or_else(|| StoreError::Protocol("INFO stats without connections".into()))
            })
            .sum()
    }

    /// Fault injection: closes every client connection but the one asking (`CLIENT KILL
    /// TYPE normal SKIPME yes`), as a network failure or a proxy restart would; returns how
    /// many were closed.
    pub async fn kill_clients(&self) -> Result<u64, StoreError> {
        let mut cmd = redis::cmd("CLIENT");
        cmd.arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes");
        self.query(cmd).await
    }

    /// Jobs delivered to some consumer and not acknowledged yet.
    pub async fn unacknowledged(&self, monitor: &str) -> Result<u64, StoreError> {
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(self.keys.jobs(monitor)).arg(GROUP);
        let reply: Value = self.query(cmd).await?;
        match reply {
            Value::Array(items) => Ok(items
                .first()
                .and_then(|v| redis::from_redis_value::<u64>(v.clone()).ok())
                .unwrap_or(0)),
            other => Err(StoreError::Protocol(format!("XPENDING: {other:?}"))),
        }
    }

    /// The dead-letter stream, oldest first.
    pub async fn dead_letters(&self, monitor: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(self.keys.dead(monitor)).arg("-").arg("+");
        let raw: Vec<(String, HashMap<String, String>)> = self.query(cmd).await?;
        Ok(raw
            .into_iter()
            .map(|(_, h)| DeadLetter {
                job: h.get("job").cloned().unwrap_or_default(),
                reason: h.get("reason").cloned().unwrap_or_default(),
                deliveries: h
                    .get("deliveries")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0),
            })
            .collect())
    }

    /// Fault injection: lists `monitor` in the set of monitors without registering it, as
    /// a registration interrupted after its first step leaves it.
    pub async fn list_without_config(&self, monitor: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SADD");
        cmd.arg(self.keys.monitors()).arg(monitor);
        let _: i64 = self.query(cmd).await?;
        Ok(())
    }

    /// Bytes of memory Redis reports in use (`used_memory`).
    pub async fn memory_used(&self) -> Result<u64, StoreError> {
        self.info("memory")
            .await?
            .iter()
            .map(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("used_memory:")?.trim().parse::<u64>().ok())
                    .ok_or_else(|| StoreError::Protocol("INFO memory without used_memory".into()))
            })
            .sum()
    }

    /// Fault injection: overwrites a feature's stored reference with `bytes` (e.g. a blob
    /// that is not a whole number of values), so that its jobs fail.
    pub async fn corrupt_reference(
        &self,
        monitor: &str,
        feature: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.reference(monitor, feature)).arg(bytes);
        self.query(cmd).await
    }

    /// Fault injection: appends an entry with these fields to the jobs stream, as a foreign
    /// writer would (a poison job when the fields are not f, s and v).
    pub async fn append_foreign_job(
        &self,
        monitor: &str,
        fields: &[(&str, &str)],
    ) -> Result<String, StoreError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.keys.jobs(monitor)).arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(*v);
        }
        self.query(cmd).await
    }

    /// Fault injection: the next undelivered job of `monitor` is delivered to a consumer
    /// that never acknowledges it, as if it had been delivered `deliveries` times and had
    /// failed each time. Returns its id (`None`: no undelivered job).
    pub async fn strand_next_job(
        &self,
        monitor: &str,
        deliveries: u64,
    ) -> Result<Option<String>, StoreError> {
        self.ensure_group(monitor).await?;
        let jobs = self.keys.jobs(monitor);
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(GROUP)
            .arg("ghost")
            .arg("COUNT")
            .arg(1);
        read.arg("STREAMS").arg(&jobs).arg(">");
        type Entries = Vec<(String, HashMap<String, String>)>;
        let reply: Option<Vec<(String, Entries)>> = self.query(read).await?;
        let Some(id) = reply
            .and_then(|streams| streams.into_iter().next())
            .and_then(|(_, entries)| entries.into_iter().next())
            .map(|(id, _)| id)
        else {
            return Ok(None);
        };
        let mut claim = redis::cmd("XCLAIM");
        claim.arg(&jobs).arg(GROUP).arg("ghost").arg(0).arg(&id);
        claim.arg("RETRYCOUNT").arg(deliveries).arg("JUSTID");
        let _: Vec<String> = self.query(claim).await?;
        Ok(Some(id))
    }

    /// Fault injection: empties Redis's script cache (as a restart or a failover does).
    pub async fn flush_scripts(&self) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("FLUSH");
        self.query(cmd).await
    }

    /// Fault injection: overwrites one field of the monitor's stored config hash (as an
    /// older version or a hand edit could leave it), bypassing validation.
    pub async fn tamper_config(
        &self,
        monitor: &str,
        field: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.keys.config(monitor)).arg(field).arg(value);
        let _: i64 = self.query(cmd).await?;
        Ok(())
    }

    /// A feature's stored window, newest value first (the retained extra stride included).
    pub async fn window_values(
        &self,
        monitor: &str,
        feature: &str,
    ) -> Result<Vec<f64>, StoreError> {
        let mut cmd = redis::cmd("LRANGE");
        cmd.arg(self.keys.window(monitor, feature)).arg(0).arg(-1);
        // Blocks newest first, each block's rows oldest first (see ingest.lua); the list
        // holds the window plus a stride and less than one more block.
        let blocks: Vec<Vec<u8>> = self.query(cmd).await?;
        let mut values = Vec::new();
        for b in &blocks {
            let block = crate::codec::decode_all(b).ok_or_else(|| {
                StoreError::Protocol(format!("corrupt window block in {feature}"))
            })?;
            values.extend(block.iter().rev());
        }
        Ok(values)
    }

    /// Redis's `maxmemory` in bytes, `None` when unlimited (0). On a cluster, the smallest
    /// master's: every monitor may hash to it, so the budget check errs on the safe side.
    pub async fn maxmemory(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .info("memory")
            .await?
            .iter()
            .filter_map(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("maxmemory:")?.trim().parse::<u64>().ok())
                    .filter(|&max| max > 0)
            })
            .min())
    }

    /// An upper estimate of what one monitor can take in Redis at this store's caps:
    /// windows (`window + stride` values per feature), the events byte budget (and the
    /// list of entry sizes), the history, jobs and dead-letter streams, references and
    /// results. The per-entry sizes
    /// are measured on Redis 7 (MEMORY USAGE) and rounded up.
    pub fn memory_bound(&self, cfg: &MonitorConfig) -> u64 {
        let nf = cfg.features.len() as u64;
        let window = (cfg.params.window + cfg.params.stride) as u64;
        let values = nf * window * 24 + nf * cfg.reference_rows as u64 * 8;
        // Per entry: the stream's overhead and its size on the sizes list.
        let events = self.caps.events_bytes + self.caps.events * (64 + 16);
        let streams = self.caps.history * 160 + self.caps.jobs * 64 + self.caps.dead * 200;
        values + events + streams + nf * 512
    }

    /// What the monitor's keys take in Redis now (MEMORY USAGE of each, all samples).
    pub async fn memory_of(&self, monitor: &str) -> Result<u64, StoreError> {
        let pattern = format!(
            "{}*",
            self.keys
                .base(monitor)
                .replace('{', "\\{")
                .replace('}', "\\}")
        );
        let keys: Vec<String> = {
            let mut cmd = redis::cmd("KEYS");
            cmd.arg(pattern);
            self.query(cmd).await?
        };
        let mut total = 0;
        for k in keys {
            let mut cmd = redis::cmd("MEMORY");
            cmd.arg("USAGE").arg(k).arg("SAMPLES").arg(0);
            let used: Option<u64> = self.query(cmd).await?;
            total += used.unwrap_or(0);
        }
        Ok(total)
    }
}
