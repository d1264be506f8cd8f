//! The worker's side of evaluation, a batch at a time: the sorted references, the windows
//! of a batch of jobs in one round trip (`read_windows.lua`), and every outcome of the
//! batch recorded with its acknowledgement in one more (`record_batch.lua`).

use crate::codec;
use crate::jobs::Job;
use crate::keys::GROUP;
use crate::reply::{int, text};
use crate::{Store, StoreError};
use deadpool_redis::redis::{self, Value};
use drift_core::alarm::{dataset_drift_min_features, decide, episode_lookback};
use drift_core::{Evaluation, MonitorConfig};
use std::time::Duration;

/// What a rule over every feature decides on: every feature's latest p-value at a
/// revision of the monitor's state.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub rev: u64,
    pub p_values: Vec<Option<f64>>,
}

/// Why a job is acknowledged without an evaluation of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipKind {
    /// Its window can no longer be evaluated: the monitor was re-registered or reset, or
    /// the rows are gone.
    Stale,
    /// A window of its feature at or beyond its boundary is evaluated (or being
    /// evaluated) instead: the worker was behind, and the newest data won.
    Superseded,
}

impl SkipKind {
    fn as_str(self) -> &'static str {
        match self {
            SkipKind::Stale => "stale",
            SkipKind::Superseded => "superseded",
        }
    }
}

/// What was read for one job of a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum JobRead {
    /// The window to evaluate, newest value first, and the row count at which it ends:
    /// the job's own boundary, or the newest row when a newer boundary was crossed.
    Window {
        seq: u64,
        values: Vec<f64>,
    },
    Skip(SkipKind, String),
    /// The window holds a value that does not decode: the job can never succeed.
    Corrupt(String),
}

/// The reads of a batch, in the order of its jobs, and the decision snapshot when one was
/// asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowsRead {
    pub reads: Vec<JobRead>,
    pub snapshot: Option<Snapshot>,
}

/// An evaluation of a job's window, ready to record.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluated {
    pub job: Job,
    /// Row count at which the evaluated window ends.
    pub seq: u64,
    pub evaluation: Evaluation,
}

/// The flags the alarm decided for a batch of evaluations.
#[derive(Clone, Debug, PartialEq)]
pub enum Flags {
    /// A local rule: each evaluated feature's own flag, in the order of the evaluations.
    Own(Vec<bool>),
    /// A rule over every feature: all flags, decided on the snapshot at `rev`.
    All { rev: u64, flags: Vec<bool> },
}

impl Flags {
    /// What `drift_core::alarm` decides on a batch's evaluations: under a local rule each
    /// feature's own flag (the statistic against the feature's threshold under `ert`);
    /// under a rule over all features every flag, on `snapshot` with the batch's p-values
    /// in place (without a snapshot it decides as if no other feature had a result).
    pub fn decide(
        cfg: &MonitorConfig,
        evaluated: &[Evaluated],
        snapshot: Option<&Snapshot>,
    ) -> Self {
        let params = &cfg.params;
        let nf = cfg.features.len();
        if params.correction.is_local() {
            return Flags::Own(
                evaluated
                    .iter()
                    .map(|e| e.evaluation.flag(params.correction, params.alpha, nf))
                    .collect(),
            );
        }
        let mut ps = snapshot.map(|s| s.p_values.clone()).unwrap_or_default();
        ps.resize(nf, None);
        for e in evaluated {
            if let Some(p) = ps.get_mut(e.job.feature) {
                *p = Some(e.evaluation.p_feature).filter(|p| !p.is_nan());
            }
        }
        Flags::All {
            rev: snapshot.map_or(0, |s| s.rev),
            flags: decide(&ps, params.alpha, params.correction),
        }
    }
}

/// How a batch's jobs ended up, as counted by the recording step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub evaluated: u64,
    pub stale: u64,
    pub superseded: u64,
    /// Someone else already acknowledged the job (it was delivered twice).
    pub duplicate: u64,
}

/// What became of a batch's recording.
#[derive(Clone, Debug, PartialEq)]
pub enum Recorded {
    Done(Tally),
    /// Another evaluation was recorded since the snapshot: decide again on this one.
    Conflict(Snapshot),
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

/// The `need` rows after the `skip` newest of a window list (blocks of rows, newest block
/// first, each block's rows oldest first; see `ingest.lua`), newest first; `None` when the
/// list does not hold them or a block is not whole 8-byte values.
fn window_rows(blocks: &[Vec<u8>], skip: usize, need: usize) -> Option<Vec<f64>> {
    let mut out = Vec::with_capacity(need);
    let mut passed = 0;
    for b in blocks {
        if b.len() % 8 != 0 {
            return None;
        }
        for v in b.chunks_exact(8).rev() {
            if passed >= skip {
                out.push(codec::decode(v)?);
                if out.len() == need {
                    return Some(out);
                }
            }
            passed += 1;
        }
    }
    (out.len() == need).then_some(out)
}

/// One job's entry of the read script, with its feature's list as the same transaction
/// read it.
fn parse_read(entry: Value, list: Value, monitor: &str) -> Result<JobRead, StoreError> {
    let bad = || StoreError::Protocol(format!("read_windows of {monitor}: bad entry"));
    let Value::Array(parts) = entry else {
        return Err(bad());
    };
    match parts.first().and_then(text).as_deref() {
        Some("s") => {
            let kind = match parts.get(1).and_then(text).as_deref() {
                Some("superseded") => SkipKind::Superseded,
                _ => SkipKind::Stale,
            };
            Ok(JobRead::Skip(
                kind,
                parts.get(2).and_then(text).unwrap_or_default(),
            ))
        }
        Some("w") if parts.len() == 4 => {
            let n = |i: usize| parts.get(i).and_then(int).ok_or_else(bad);
            let (seq, skip, need) = (n(1)?, n(2)? as usize, n(3)? as usize);
            let blocks: Vec<Vec<u8>> = redis::from_redis_value(list)?;
            Ok(match window_rows(&blocks, skip, need) {
                Some(values) => JobRead::Window { seq, values },
                None => JobRead::Corrupt(format!(
                    "window list of {monitor} does not hold the {need} rows its layout says"
                )),
            })
        }
        _ => Err(bad()),
    }
}

impl Store {
    /// The sorted references of `features` (indexes into the config), if the monitor is
    /// still at `version`, in one round trip; a feature whose reference is missing or
    /// corrupt gets the reason instead (its jobs can never succeed; the others can).
    pub async fn references(
        &self,
        cfg: &MonitorConfig,
        features: &[usize],
        version: &str,
    ) -> Result<Option<Vec<Result<Vec<f64>, String>>>, StoreError> {
        let m = &cfg.name;
        let names: Vec<&String> = features
            .iter()
            .map(|&i| {
                cfg.features
                    .get(i)
                    .ok_or_else(|| StoreError::Protocol(format!("feature index {i} out of range")))
            })
            .collect::<Result<_, _>>()?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HGET")
            .arg(self.keys.config(m))
            .arg("version");
        for f in &names {
            pipe.cmd("GET").arg(self.keys.reference(m, f));
        }
        let reply: Vec<Value> = self
            .run(|mut c| async move { Ok(pipe.query_async(&mut c).await?) })
            .await?;
        let mut it = reply.into_iter();
        if it.next().as_ref().and_then(text).as_deref() != Some(version) {
            return Ok(None);
        }
        let refs = names
            .iter()
            .zip(it)
            .map(|(f, v)| {
                let blob: Option<Vec<u8>> = redis::from_redis_value(v)?;
                Ok(match blob {
                    None => Err(format!("no reference for {f}")),
                    Some(b) => codec::decode_all(&b).ok_or(format!("corrupt reference for {f}")),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(refs))
    }

    /// The windows of `jobs` (at most one per feature, all of `cfg`'s monitor and version)
    /// in one step, each leased to its job for `lease`; with `snapshot`, also the decision
    /// snapshot (for rules over every feature). `None`: the monitor is at another version
    /// than `cfg`. See `scripts/read_windows.lua`.
    pub async fn read_windows(
        &self,
        cfg: &MonitorConfig,
        jobs: &[Job],
        lease: Duration,
        snapshot: bool,
    ) -> Result<Option<WindowsRead>, StoreError> {
        let m = &cfg.name;
        let k = &self.keys;
        let mut inv = self.scripts.read_windows.prepare_invoke();
        let results = cfg.features.iter().map(|f| k.result(m, f));
        Store::keys_of(
            &mut inv,
            [k.seq(m), k.config(m), k.state(m)]
                .into_iter()
                .chain(results)
                .chain([k.blocks(m)]),
        );
        inv.arg(&cfg.version)
            .arg(lease.as_millis() as u64)
            .arg(if snapshot { "1" } else { "0" })
            .arg(jobs.len());
        for j in jobs {
            inv.arg(j.feature).arg(j.seq).arg(&j.id);
        }
        // The decisions and the lists in one transaction, so the row offsets hold for the
        // lists (whole lists: a few blocks each; which rows depends on the decisions).
        let mut pipe = redis::pipe();
        pipe.atomic().invoke_script(&inv);
        for j in jobs {
            let f = cfg.features.get(j.feature).ok_or_else(|| {
                StoreError::Protocol(format!("feature index {} out of range", j.feature))
            })?;
            pipe.cmd("LRANGE").arg(k.window(m, f)).arg(0).arg(-1);
        }
        let script = &self.scripts.read_windows;
        let replies: Vec<Value> = self
            .run(|mut c| async move {
                match pipe.query_async(&mut c).await {
                    Err(e)
                        if e.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                    {
                        // SCRIPT LOAD as a command, not in a pipeline: a cluster sends it
                        // to every master, a keyless pipeline would go to a random node.
                        script.load_async(&mut c).await?;
                        Ok(pipe.query_async(&mut c).await?)
                    }
                    r => Ok(r?),
                }
            })
            .await?;
        let mut replies = replies.into_iter();
        let Some(Value::Array(parts)) = replies.next() else {
            return Err(StoreError::Protocol("read_windows: not an array".into()));
        };
        let mut parts = parts.into_iter();
        match parts.next().as_ref().and_then(text).as_deref() {
            Some("version") => return Ok(None),
            Some("ok") => {}
            other => return Err(StoreError::Protocol(format!("read_windows: {other:?}"))),
        }
        let Some(Value::Array(entries)) = parts.next() else {
            return Err(StoreError::Protocol("read_windows: no entries".into()));
        };
        if entries.len() != jobs.len() || replies.len() != jobs.len() {
            return Err(StoreError::Protocol(
                "read_windows: one entry per job expected".into(),
            ));
        }
        let reads = entries
            .into_iter()
            .zip(replies)
            .map(|(e, list)| parse_read(e, list, m))
            .collect::<Result<Vec<_>, _>>()?;
        let snapshot = match parts.next() {
            Some(Value::Array(snap)) => Some(parse_snapshot(&snap)?),
            Some(_) => return Err(StoreError::Protocol("read_windows: bad snapshot".into())),
            None => None,
        };
        Ok(Some(WindowsRead { reads, snapshot }))
    }

    /// Records a batch of one monitor: acknowledges the skipped jobs and stores the
    /// evaluations with their flags, acknowledging each, in one step (see
    /// `scripts/record_batch.lua`).
    pub async fn record_batch(
        &self,
        cfg: &MonitorConfig,
        now: f64,
        skipped: &[(String, SkipKind)],
        evaluated: &[Evaluated],
        flags: &Flags,
    ) -> Result<Recorded, StoreError> {
        let m = &cfg.name;
        let k = &self.keys;
        let params = &cfg.params;
        let mut inv = self.scripts.record_batch.prepare_invoke();
        let monitor = [k.jobs(m), k.stats(m), k.state(m), k.config(m), k.history(m)];
        let results = cfg.features.iter().map(|f| k.result(m, f));
        Store::keys_of(&mut inv, monitor.into_iter().chain(results));
        let min_drifting =
            dataset_drift_min_features(params.dataset_drift_share, cfg.features.len());
        let (mode, rev, all) = match flags {
            Flags::Own(_) => ("own", 0, String::new()),
            Flags::All { rev, flags } => (
                "all",
                *rev,
                flags.iter().map(|f| if *f { '1' } else { '0' }).collect(),
            ),
        };
        inv.arg(GROUP)
            .arg(&cfg.version)
            .arg(format!("{now:.3}"))
            .arg(self.caps.history)
            .arg(min_drifting)
            .arg(episode_lookback(params.window, params.stride))
            .arg(mode)
            .arg(rev)
            .arg(all)
            .arg(skipped.len())
            .arg(evaluated.len());
        for (id, kind) in skipped {
            inv.arg(id).arg(kind.as_str());
        }
        for (i, ev) in evaluated.iter().enumerate() {
            let e = &ev.evaluation;
            let round = ev.seq.saturating_sub(params.window as u64) / params.stride.max(1) as u64;
            let own = match flags {
                Flags::Own(f) => f.get(i).copied().unwrap_or(false),
                Flags::All { .. } => false,
            };
            let mut details = e.details.clone();
            details.mark_fired(true, params.correction);
            let fired: Vec<&str> = details.fired().iter().map(|s| s.as_str()).collect();
            for s in &mut details.signals {
                s.fired = false;
            }
            let details = serde_json::to_string(&details)
                .map_err(|e| StoreError::Protocol(format!("details do not serialize: {e}")))?;
            // `{:?}` prints the shortest representation that parses back to the same f64.
            inv.arg(&ev.job.id)
                .arg(ev.job.feature)
                .arg(ev.seq)
                .arg(format!("{:?}", e.p_value))
                .arg(format!("{:?}", e.statistic))
                .arg(format!("{:?}", e.statistic_location))
                .arg(e.statistic_sign)
                .arg(e.window_rows)
                .arg(e.method)
                .arg(e.threshold.map_or(String::new(), |c| format!("{c:?}")))
                .arg(round)
                .arg(if own { "1" } else { "0" })
                .arg(if e.p_feature.is_nan() {
                    String::new()
                } else {
                    format!("{:?}", e.p_feature)
                })
                .arg(details)
                .arg(fired.join(","));
        }
        let reply: Vec<Value> = self.invoke(inv).await?;
        match reply.first().and_then(text).as_deref() {
            Some("ok") => {
                let n = |i: usize| reply.get(i).and_then(int).unwrap_or(0);
                Ok(Recorded::Done(Tally {
                    evaluated: n(1),
                    stale: n(2),
                    superseded: n(3),
                    duplicate: n(4),
                }))
            }
            Some("conflict") => Ok(Recorded::Conflict(parse_snapshot(&reply[1..])?)),
            other => Err(StoreError::Protocol(format!("record_batch: {other:?}"))),
        }
    }
}
