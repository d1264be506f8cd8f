//! What readers see: a monitor's latest results and decision (the API and the exporter
//! read the same), the evaluation history and the health of its job stream.

use crate::keys::GROUP;
use crate::{Store, StoreError};
use deadpool_redis::redis::{self, Value};
use drift_core::{
    Details, FeatureResult, HistoryEntry, MonitorConfig, MonitorState, MonitorStatus, SignalKind,
};
use std::collections::HashMap;

/// A result's details as stored, with the signals that made it flagged marked from its
/// stored flag (which a rule over every feature may have changed since); results stored
/// before details existed get the kind alone.
fn details(h: &HashMap<String, String>, cfg: &MonitorConfig) -> Details {
    let mut d: Details = h
        .get("x")
        .and_then(|x| serde_json::from_str(x).ok())
        .unwrap_or_default();
    d.mark_fired(
        h.get("drifted").is_some_and(|v| v == "1"),
        cfg.params.correction,
    );
    d
}

/// Pipeline health of one monitor's job stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobsInfo {
    /// Delivered but not acknowledged, plus not yet delivered.
    pub pending: u64,
    pub dead_letters_stored: u64,
}

impl Store {
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
            superseded: int(&stats, "superseded"),
            detections: int(&stats, "detections"),
            episodes: int(&stats, "episodes"),
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
                    threshold: num(h, "threshold"),
                    alarm: h.get("alarm").is_some_and(|v| v == "1"),
                    episodes: int(h, "episodes"),
                    window_rows: int(h, "n"),
                    method: h.get("method").cloned().unwrap_or_default(),
                    evaluated_at: num(h, "evaluated_at").unwrap_or(0.0),
                    evaluations: int(h, "evaluations"),
                    detections: int(h, "detections"),
                    details: details(h, cfg),
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
                    threshold: num("c"),
                    episode: h.get("e").is_some_and(|v| v == "1"),
                    features_drifting: h.get("drifting").and_then(|v| v.parse().ok()).unwrap_or(0),
                    evaluated_at: num("t").unwrap_or(0.0),
                    signals: h
                        .get("sig")
                        .map(|s| s.split(',').filter_map(SignalKind::parse).collect())
                        .unwrap_or_default(),
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
}
