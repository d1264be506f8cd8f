//! `--watch`: follows the monitor's evaluation history and turns it into detection delay
//! and false alarms.
//!
//! Definitions (server rows are the monitor's 1-based row count, `seq`):
//! * the onset is the server position of the first drifted row accepted ([`crate::load::Onset`]);
//! * only evaluations whose whole window was ingested during the run count
//!   (`seq ≥ rows at start + window`), so rows left by an earlier run cannot raise or hide an
//!   alarm;
//! * the detection is the counted evaluation with the lowest `seq ≥ onset` that flags a
//!   drifted feature (after the monitor's multiple-testing correction); the delay is
//!   `seq − onset + 1` rows (drifted rows ingested up to and including that boundary) and
//!   `evaluated_at − onset time` seconds;
//! * a false alarm is a counted flag on a feature that did not drift, or any flag on an
//!   evaluation whose window ends before the onset (`seq < onset`), or any flag when the
//!   stream does not drift.

use crate::progress::{Display, Live};
use crate::target::{HistoryEntry, MonitorInfo, Target, HISTORY_PAGE};
use drift_core::results::SignalKind;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Notes printed live about false alarms before going quiet.
const MAX_FALSE_ALARM_NOTES: u64 = 5;

/// What the watch needs to know about the run and the monitor.
#[derive(Clone, Debug)]
pub struct WatchParams {
    /// The monitor as read when the run started (its features, window, stride and rows).
    pub monitor: MonitorInfo,
    /// Features the scenario drifts (empty without drift).
    pub drift_features: Vec<String>,
    pub drifting: bool,
}

impl WatchParams {
    /// The monitor's row count when the run started.
    pub fn start_rows(&self) -> u64 {
        self.monitor.rows
    }

    /// Whether an evaluation at `seq` saw only rows of this run.
    pub fn counts(&self, seq: u64) -> bool {
        seq >= self.start_rows() + self.monitor.params.window
    }
}

/// Polls the history, remembering where it left off.
pub struct Watcher {
    target: Target,
    params: WatchParams,
    last_id: Option<String>,
    pub entries: Vec<HistoryEntry>,
    pub poll_errors: u64,
    pub last_error: Option<String>,
    noted_detection: bool,
    noted_false_alarms: u64,
}

impl Watcher {
    /// Starts after the newest entry already recorded; fails if the target has no history.
    pub async fn start(target: Target, params: WatchParams) -> anyhow::Result<Self> {
        let last_id = target.last_history_id(&params.monitor.name).await?;
        Ok(Watcher {
            target,
            params,
            last_id,
            entries: Vec::new(),
            poll_errors: 0,
            last_error: None,
            noted_detection: false,
            noted_false_alarms: 0,
        })
    }

    pub fn params(&self) -> &WatchParams {
        &self.params
    }

    /// Fetches every entry recorded since the last poll; errors are counted, not fatal (the
    /// API may be restarting under the test).
    pub async fn poll(&mut self, live: &Live, display: &Display) {
        loop {
            let page = match self
                .target
                .history(
                    &self.params.monitor.name,
                    self.last_id.as_deref(),
                    HISTORY_PAGE,
                )
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    self.poll_errors += 1;
                    self.last_error = Some(format!("{e:#}"));
                    return;
                }
            };
            let full = page.len() == HISTORY_PAGE;
            if let Some(e) = page.last() {
                self.last_id = Some(e.id.clone());
            }
            for e in page {
                if e.seq > self.params.start_rows() {
                    self.note(&e, live.onset_seq(), display);
                    self.entries.push(e);
                }
            }
            if !full {
                return;
            }
        }
    }

    fn note(&mut self, e: &HistoryEntry, onset: Option<u64>, display: &Display) {
        if !e.drifted || !self.params.counts(e.seq) {
            return;
        }
        let on_drift_feature = self.params.drift_features.contains(&e.feature);
        match onset {
            Some(o) if self.params.drifting && on_drift_feature && e.seq >= o => {
                if !self.noted_detection {
                    self.noted_detection = true;
                    display.note(&format!(
                        "drift detected: {} flagged at seq {} (p = {:.3e}), {} rows after the onset",
                        e.feature,
                        e.seq,
                        e.p_value,
                        e.seq - o + 1
                    ));
                }
            }
            // A drift feature flagged at or past the onset before the onset is known
            // (answers still in flight) is not a false alarm either.
            None if self.params.drifting && on_drift_feature => {}
            _ => {
                self.noted_false_alarms += 1;
                if self.noted_false_alarms <= MAX_FALSE_ALARM_NOTES {
                    display.note(&format!(
                        "false alarm: {} flagged at seq {} (p = {:.3e})",
                        e.feature, e.seq, e.p_value
                    ));
                }
            }
        }
    }

    /// Whether every feature has been evaluated at or past `boundary`.
    pub fn evaluated_through(&self, boundary: u64) -> bool {
        let done: HashSet<&str> = self
            .entries
            .iter()
            .filter(|e| e.seq >= boundary)
            .map(|e| e.feature.as_str())
            .collect();
        self.params
            .monitor
            .features
            .iter()
            .all(|f| done.contains(f.as_str()))
    }
}

/// The last evaluation boundary at or below row count `seq` (`None` before the window fills).
pub fn last_boundary(seq: u64, window: u64, stride: u64) -> Option<u64> {
    (seq >= window && stride > 0).then(|| window + (seq - window) / stride * stride)
}

/// Polls every `interval` while rows are sent; once `final_seq` arrives (the highest row count
/// of the run, `None` if nothing was accepted), keeps polling until the last boundary of the
/// run is evaluated for every feature, `grace` has passed, or `cancel` fires.
pub async fn follow(
    mut watcher: Watcher,
    live: Arc<Live>,
    display: Arc<Display>,
    interval: Duration,
    grace: Duration,
    final_seq: oneshot::Receiver<Option<u64>>,
    mut cancel: watch::Receiver<bool>,
) -> (Watcher, Option<u64>) {
    let mut final_seq = final_seq;
    let end = loop {
        watcher.poll(&live, &display).await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            end = &mut final_seq => break end.ok().flatten(),
            _ = cancel.wait_for(|c| *c) => return (watcher, None),
        }
    };
    let p = watcher.params();
    let boundary = end
        .and_then(|s| last_boundary(s, p.monitor.params.window, p.monitor.params.stride))
        .filter(|&b| b > p.start_rows());
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        watcher.poll(&live, &display).await;
        let done = boundary.is_none_or(|b| watcher.evaluated_through(b));
        if done || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cancel.wait_for(|c| *c) => break,
        }
    }
    (watcher, boundary)
}

/// Detection delay and false alarms of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WatchReport {
    /// Server position of the first drifted row (see the module doc).
    pub onset_seq: Option<u64>,
    /// True when the onset was estimated rather than read from `seq` (predict mode).
    pub onset_estimated: bool,
    #[serde(flatten)]
    pub detection: Detection,
    pub false_alarms: u64,
    pub false_alarm_features: BTreeMap<String, u64>,
    pub first_false_alarm_seq: Option<u64>,
    /// Evaluations counted (whole window from this run).
    pub evaluations: u64,
    /// Evaluations of this run's rows left out because their window reached back before it.
    pub evaluations_ignored: u64,
    /// Distinct boundaries (`seq`) with at least one counted evaluation.
    pub boundaries_evaluated: u64,
    /// The run's last boundary, and whether every feature was evaluated there in time.
    pub final_boundary: Option<u64>,
    pub final_boundary_evaluated: bool,
    /// Evaluation jobs the workers skipped as stale during the run (monitor counter delta):
    /// a boundary superseded before a worker reached it was never evaluated, so a non-zero
    /// value makes `delay_rows` an upper bound (send slower, or add workers).
    pub stale_jobs: Option<u64>,
    /// Boundaries seen between the onset and the detection (or the end, if undetected) at
    /// which a drift feature was not evaluated (its job went stale): 0 means the delay is
    /// exact to the boundary; more means the drift might have shown earlier.
    pub drift_evaluations_missed: Option<u64>,
    pub poll_errors: u64,
    pub last_poll_error: Option<String>,
}

/// The evaluation that flagged the drift, and how long after the onset (all `None` and
/// `detected` false when it was not detected).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Detection {
    pub detected: bool,
    #[serde(rename = "detection_seq")]
    pub seq: Option<u64>,
    #[serde(rename = "detection_feature")]
    pub feature: Option<String>,
    /// The distribution signal's p-value (KS, or chi-square for a categorical feature).
    #[serde(rename = "detection_p_value")]
    pub p_value: Option<f64>,
    /// The signals that flagged it: `distribution`, `missing` (empty from a server that
    /// predates signals).
    #[serde(rename = "detection_signals")]
    pub signals: Vec<SignalKind>,
    /// Rows from the onset through the boundary that flagged it (`seq − onset + 1`).
    pub delay_rows: Option<u64>,
    /// Server evaluation time minus the time the onset batch was acknowledged.
    pub delay_seconds: Option<f64>,
}

impl Detection {
    /// The detection by evaluation `d` of the drift that started at `onset`.
    fn of(d: &HistoryEntry, onset: OnsetPoint) -> Self {
        Detection {
            detected: true,
            seq: Some(d.seq),
            feature: Some(d.feature.clone()),
            p_value: Some(d.p_value),
            signals: d.signals.clone(),
            delay_rows: Some(d.seq - onset.seq + 1),
            delay_seconds: (d.evaluated_at > 0.0 && onset.at > 0.0)
                .then_some(d.evaluated_at - onset.at),
        }
    }
}

/// Where the drift started, for [`analyze`].
#[derive(Clone, Copy, Debug)]
pub struct OnsetPoint {
    pub seq: u64,
    /// Unix seconds.
    pub at: f64,
    pub estimated: bool,
}

/// Turns the recorded evaluations into the report (pure, so it is tested on its own).
pub fn analyze(
    entries: &[HistoryEntry],
    params: &WatchParams,
    onset: Option<OnsetPoint>,
    final_boundary: Option<u64>,
) -> WatchReport {
    let mut r = WatchReport {
        onset_seq: onset.map(|o| o.seq),
        onset_estimated: onset.is_some_and(|o| o.estimated),
        final_boundary,
        ..WatchReport::default()
    };
    let drift_set: BTreeSet<&str> = params.drift_features.iter().map(String::as_str).collect();
    let mut boundaries = BTreeSet::new();
    let mut detection: Option<&HistoryEntry> = None;
    for e in entries {
        if e.seq <= params.start_rows() {
            continue;
        }
        if !params.counts(e.seq) {
            r.evaluations_ignored += 1;
            continue;
        }
        r.evaluations += 1;
        boundaries.insert(e.seq);
        if !e.drifted {
            continue;
        }
        let genuine = params.drifting
            && drift_set.contains(e.feature.as_str())
            && onset.is_some_and(|o| e.seq >= o.seq);
        if genuine {
            let earlier = detection.is_none_or(|d| (e.seq, e.p_value) < (d.seq, d.p_value));
            if earlier {
                detection = Some(e);
            }
        } else {
            r.false_alarms += 1;
            *r.false_alarm_features.entry(e.feature.clone()).or_insert(0) += 1;
            r.first_false_alarm_seq = Some(r.first_false_alarm_seq.map_or(e.seq, |s| s.min(e.seq)));
        }
    }
    r.boundaries_evaluated = boundaries.len() as u64;
    if let Some(o) = onset.filter(|_| params.drifting) {
        let until = detection.map_or(u64::MAX, |d| d.seq);
        let missed = boundaries
            .range(o.seq..until)
            .filter(|&&seq| {
                !drift_set.iter().all(|f| {
                    entries
                        .iter()
                        .any(|e| e.seq == seq && e.feature.as_str() == *f)
                })
            })
            .count();
        r.drift_evaluations_missed = Some(missed as u64);
    }
    if let (Some(d), Some(o)) = (detection, onset) {
        r.detection = Detection::of(d, o);
    }
    r.final_boundary_evaluated = final_boundary.is_some_and(|b| {
        params
            .monitor
            .features
            .iter()
            .all(|f| entries.iter().any(|e| e.seq >= b && &e.feature == f))
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::MonitorParams;

    fn entry(feature: &str, seq: u64, drifted: bool) -> HistoryEntry {
        HistoryEntry {
            id: format!("{seq}-0"),
            feature: feature.into(),
            seq,
            p_value: if drifted { 1e-6 } else { 0.5 },
            statistic: 0.1,
            drifted,
            threshold: None,
            episode: drifted,
            features_drifting: 0,
            evaluated_at: 100.0 + seq as f64 / 100.0,
            signals: Vec::new(),
        }
    }

    fn params(start_rows: u64) -> WatchParams {
        let monitor = MonitorInfo {
            name: "m".into(),
            version: "1".into(),
            features: vec!["a".into(), "b".into()],
            params: MonitorParams {
                window: 500,
                stride: 100,
                alpha: 0.05,
                correction: "bonferroni".into(),
            },
            rows: start_rows,
            stale_jobs: 0,
            kinds: Default::default(),
            categories: Default::default(),
        };
        WatchParams {
            monitor,
            drift_features: vec!["a".into()],
            drifting: true,
        }
    }

    #[test]
    fn boundaries() {
        assert_eq!(last_boundary(499, 500, 100), None);
        assert_eq!(last_boundary(500, 500, 100), Some(500));
        assert_eq!(last_boundary(2549, 500, 100), Some(2500));
    }

    #[test]
    fn detection_and_false_alarms() {
        let entries = vec![
            entry("a", 500, false),
            entry("b", 500, false),
            entry("a", 1000, true), // before the onset: false alarm
            entry("b", 1100, true), // not a drift feature: false alarm
            entry("a", 1300, true), // arrives first...
            entry("a", 1200, true), // ...but this boundary is earlier
            entry("a", 1400, false),
            entry("b", 1400, false),
        ];
        let onset = OnsetPoint {
            seq: 1001,
            at: 105.0,
            estimated: false,
        };
        let r = analyze(&entries, &params(0), Some(onset), Some(1400));
        assert!(r.detection.detected);
        assert_eq!(r.detection.seq, Some(1200));
        assert_eq!(r.detection.delay_rows, Some(200));
        assert!((r.detection.delay_seconds.unwrap() - 7.0).abs() < 1e-9);
        assert_eq!(r.false_alarms, 2);
        assert_eq!(r.false_alarm_features.get("a"), Some(&1));
        assert_eq!(r.first_false_alarm_seq, Some(1000));
        assert_eq!(r.evaluations, 8);
        assert!(r.final_boundary_evaluated);
        // Boundary 1100 was seen (b flagged) but a's job there went stale.
        assert_eq!(r.drift_evaluations_missed, Some(1));
    }

    #[test]
    fn windows_reaching_before_the_run_are_ignored() {
        let entries = vec![
            entry("b", 3000, true),
            entry("b", 3400, true),
            entry("b", 3500, true),
        ];
        let r = analyze(&entries, &params(3000), None, Some(3500));
        assert_eq!(r.evaluations_ignored, 1);
        assert_eq!(r.evaluations, 1);
        assert_eq!(r.false_alarms, 1);
        assert!(!r.detection.detected);
        assert!(!r.final_boundary_evaluated, "feature a was never evaluated");
    }
}
