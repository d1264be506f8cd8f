//! The worker's side of one evaluation: the sorted reference, the window a job is about,
//! and recording the outcome with its acknowledgement.

use crate::codec;
use crate::jobs::Job;
use crate::keys::GROUP;
use crate::{Store, StoreError};
use deadpool_redis::redis::{self, Value};
use drift_core::alarm::{dataset_drift_min_features, decide, episode_lookback, flag};
use drift_core::{Evaluation, MonitorConfig};

/// What a rule over every feature decides on: every feature's latest p-value at a
/// revision of the monitor's state.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub rev: u64,
    pub p_values: Vec<Option<f64>>,
}

/// What a worker reads for a job.
#[derive(Clone, Debug, PartialEq)]
pub enum WindowRead {
    /// The window, newest value first, and the decision snapshot when one was asked for.
    Window {
        values: Vec<f64>,
        snapshot: Option<Snapshot>,
    },
    Stale(String),
}

/// The flags the alarm decided for an evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// A local rule: only the evaluated feature's flag.
    Own(bool),
    /// A rule over every feature: all flags, decided on the snapshot at `rev`.
    All { rev: u64, flags: Vec<bool> },
}

impl Decision {
    /// What `drift_core::alarm` decides on feature `feature`'s new evaluation: its own flag
    /// under a local rule (the statistic against the feature's threshold under `ert`), every
    /// flag under a rule over all features (on `snapshot`, which such a rule needs; without
    /// one it decides as if no other feature had a result).
    pub fn of(
        cfg: &MonitorConfig,
        feature: usize,
        e: &Evaluation,
        snapshot: Option<&Snapshot>,
    ) -> Self {
        let params = &cfg.params;
        if params.correction.is_local() {
            return Decision::Own(flag(
                params.correction,
                params.alpha,
                cfg.features.len(),
                e.p_value,
                e.statistic,
                cfg.threshold(feature),
            ));
        }
        let mut ps = snapshot.map(|s| s.p_values.clone()).unwrap_or_default();
        ps.resize(cfg.features.len().max(feature + 1), None);
        ps[feature] = Some(e.p_value);
        Decision::All {
            rev: snapshot.map_or(0, |s| s.rev),
            flags: decide(&ps, params.alpha, params.correction),
        }
    }
}

/// What became of a job whose outcome was recorded.
#[derive(Clone, Debug, PartialEq)]
pub enum Recorded {
    Evaluated,
    Stale,
    /// Someone else already recorded this job (it was delivered twice).
    Duplicate,
    /// Another evaluation was recorded since the snapshot: decide again on this one.
    Conflict(Snapshot),
}

impl Recorded {
    pub fn as_str(&self) -> &'static str {
        match self {
            Recorded::Evaluated => "evaluated",
            Recorded::Stale => "stale",
            Recorded::Duplicate => "duplicate",
            Recorded::Conflict(_) => "conflict",
        }
    }
}

fn text(v: &Value) -> Option<String> {
    redis::from_redis_value::<String>(v.clone()).ok()
}

fn parse_snapshot(parts: &[Value]) -> Result<Snapshot, StoreError> {
    let rev = parts
        .first()
        .and_then(text)
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| StoreError::Protocol("snapshot without a revision".into()))?;
    let p_values = parts[1..]
        .iter()
        .map(|v| {
            text(v)
                .and_then(|p| p.parse::<f64>().ok())
                .filter(|p| !p.is_nan())
        })
        .collect();
    Ok(Snapshot { rev, p_values })
}

impl Store {
    /// The sorted reference of a feature, if the monitor is still at `version`.
    pub async fn reference(
        &self,
        monitor: &str,
        feature: &str,
        version: &str,
    ) -> Result<Option<Vec<f64>>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HGET")
            .arg(self.keys.config(monitor))
            .arg("version")
            .cmd("GET")
            .arg(self.keys.reference(monitor, feature));
        let (cur, blob): (Option<String>, Option<Vec<u8>>) = self
            .run(|mut c| async move { Ok(pipe.query_async(&mut c).await?) })
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

    /// The window that ended at row `job.seq`, or why the job is stale; with `snapshot`,
    /// also the decision snapshot (for rules over every feature).
    pub async fn read_window(
        &self,
        cfg: &MonitorConfig,
        job: &Job,
        snapshot: bool,
    ) -> Result<WindowRead, StoreError> {
        let m = &job.monitor;
        let Some(feature) = cfg.features.get(job.feature) else {
            return Ok(WindowRead::Stale("feature".into()));
        };
        let k = &self.keys;
        let mut inv = self.scripts.read_window.prepare_invoke();
        Store::keys_of(&mut inv, [k.seq(m), k.config(m), k.window(m, feature)]);
        if snapshot {
            let results = cfg.features.iter().map(|f| k.result(m, f));
            Store::keys_of(&mut inv, std::iter::once(k.state(m)).chain(results));
        }
        inv.arg(job.seq).arg(&job.version);
        let v: Value = self.invoke(inv).await?;
        let Value::Array(mut parts) = v else {
            return Err(StoreError::Protocol("read_window: not an array".into()));
        };
        let tag = parts.first().and_then(text).unwrap_or_default();
        if tag == "stale" {
            let reason = parts.get(1).and_then(text).unwrap_or_default();
            return Ok(WindowRead::Stale(reason));
        }
        let snapshot = match parts.len() {
            4 => match parts.pop() {
                Some(Value::Array(snap)) => Some(parse_snapshot(&snap)?),
                _ => return Err(StoreError::Protocol("read_window: bad snapshot".into())),
            },
            _ => None,
        };
        let raw: Vec<Vec<u8>> = redis::from_redis_value(parts.pop().unwrap_or(Value::Nil))?;
        let values = raw
            .iter()
            .map(|b| codec::decode(b))
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| StoreError::Protocol(format!("corrupt window value in {feature}")))?;
        Ok(WindowRead::Window { values, snapshot })
    }

    /// Records an evaluation with its decision (`Some`) or a stale skip (`None`) of `job`,
    /// and acknowledges it, in one step (see `scripts/record_result.lua`).
    pub async fn record(
        &self,
        cfg: &MonitorConfig,
        job: &Job,
        now: f64,
        outcome: Option<(&Evaluation, &Decision)>,
    ) -> Result<Recorded, StoreError> {
        let m = &cfg.name;
        let k = &self.keys;
        let mut inv = self.scripts.record.prepare_invoke();
        let monitor = [k.jobs(m), k.stats(m), k.state(m), k.config(m), k.history(m)];
        let results = cfg.features.iter().map(|f| k.result(m, f));
        Store::keys_of(&mut inv, monitor.into_iter().chain(results));
        let mode = match outcome {
            None => "stale",
            Some((_, Decision::Own(_))) => "own",
            Some((_, Decision::All { .. })) => "all",
        };
        inv.arg(GROUP)
            .arg(&job.id)
            .arg(mode)
            .arg(job.feature)
            .arg(job.seq)
            .arg(&job.version)
            .arg(format!("{now:.3}"));
        if let Some((e, decision)) = outcome {
            let params = &cfg.params;
            let min_drifting =
                dataset_drift_min_features(params.dataset_drift_share, cfg.features.len());
            let round = job.seq.saturating_sub(params.window as u64) / params.stride.max(1) as u64;
            // `{:?}` prints the shortest representation that parses back to the same f64.
            inv.arg(format!("{:?}", e.p_value))
                .arg(format!("{:?}", e.statistic))
                .arg(format!("{:?}", e.statistic_location))
                .arg(e.statistic_sign)
                .arg(e.window_rows)
                .arg(e.method)
                .arg(self.caps.history)
                .arg(min_drifting)
                .arg(
                    cfg.threshold(job.feature)
                        .map_or(String::new(), |c| format!("{c:?}")),
                )
                .arg(round)
                .arg(episode_lookback(params.window, params.stride));
            match decision {
                Decision::Own(flag) => {
                    inv.arg(if *flag { "1" } else { "0" });
                }
                Decision::All { rev, flags } => {
                    let flags: String = flags.iter().map(|f| if *f { '1' } else { '0' }).collect();
                    inv.arg(flags).arg(*rev);
                }
            }
        }
        let reply: Vec<Value> = self.invoke(inv).await?;
        match reply.first().and_then(text).as_deref() {
            Some("evaluated") => Ok(Recorded::Evaluated),
            Some("stale") => Ok(Recorded::Stale),
            Some("duplicate") => Ok(Recorded::Duplicate),
            Some("conflict") => Ok(Recorded::Conflict(parse_snapshot(&reply[1..])?)),
            other => Err(StoreError::Protocol(format!("record: {other:?}"))),
        }
    }
}
