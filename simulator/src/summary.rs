//! The end-of-run summary: what was sent, what the API answered, how fast, and (with
//! `--watch`) how soon the drift was seen. One struct, printed as text or as one JSON line.

use crate::cli::{Args, Mode, RowModel};
use crate::load::{percentile, Counts, LoadReport, Pacing};
use crate::scenario::{DriftKind, SwapValues};
pub use crate::target::MonitorParams;
use crate::watch::WatchReport;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub target: String,
    pub monitor: String,
    pub mode: Mode,
    pub seed: u64,
    pub model: RowModel,
    pub drift: DriftSummary,
    pub monitor_params: MonitorParams,
    /// The monitor's row count when the run started.
    pub start_rows: u64,
    /// As planned: `rows_planned`, `duration_planned_seconds`, `rate_target` (rows/s, 0 =
    /// unpaced), `batch`, `concurrency`.
    #[serde(flatten)]
    pub pacing: Pacing,
    #[serde(flatten)]
    pub counts: Counts,
    #[serde(flatten)]
    pub throughput: Throughput,
    pub latency_ms: Latency,
    /// Server row count of the first and last row acknowledged (ingest mode).
    pub seq_first: Option<u64>,
    pub seq_last: Option<u64>,
    pub interrupted: bool,
    pub watch: Option<WatchReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DriftSummary {
    pub enabled: bool,
    pub kind: Option<DriftKind>,
    pub features: Vec<String>,
    #[serde(flatten)]
    pub settings: DriftSettings,
}

/// The drift's settings, each `None` without drift or where its kind has no use for it.
#[derive(Clone, Debug, Serialize)]
pub struct DriftSettings {
    /// Every kind but swap.
    pub magnitude: Option<f64>,
    /// Rows generated before the onset.
    pub after: Option<u64>,
    /// Gradual only.
    pub ramp_rows: Option<u64>,
    /// Swap only.
    pub swap_values: Option<SwapValues>,
    /// category-share and new-category: per drift feature, the category whose share moved
    /// or that appeared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
}

impl DriftSummary {
    /// The drift asked for by `args`, on `features` (the checked drift features), with
    /// the scenario's `categories` (empty for the kinds that name none).
    pub fn of(args: &Args, features: Vec<String>, categories: Vec<String>) -> Self {
        let kind = args.drift.then_some(args.drift_kind);
        let uses = |k: DriftKind| kind == Some(k);
        DriftSummary {
            enabled: args.drift,
            kind,
            features: if args.drift { features } else { Vec::new() },
            settings: DriftSettings {
                magnitude: kind
                    .is_some_and(|k| k != DriftKind::Swap)
                    .then_some(args.drift_magnitude),
                after: args.onset_row(),
                ramp_rows: uses(DriftKind::Gradual).then_some(args.ramp_rows),
                swap_values: uses(DriftKind::Swap).then_some(args.swap_values),
                categories: (!categories.is_empty()).then_some(categories),
            },
        }
    }
}

/// Request latency over every request that got an answer (any status), in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

impl Latency {
    pub fn of(mut ms: Vec<f64>) -> Self {
        if ms.is_empty() {
            return Latency::default();
        }
        ms.sort_by(f64::total_cmp);
        Latency {
            p50: percentile(&ms, 50.0),
            p95: percentile(&ms, 95.0),
            p99: percentile(&ms, 99.0),
            max: ms.last().copied(),
            mean: Some(ms.iter().sum::<f64>() / ms.len() as f64),
        }
    }
}

/// How long the sending took, and the rates over that time.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    pub elapsed_seconds: f64,
    /// Accepted rows per second of sending.
    pub rows_per_second: f64,
    pub requests_per_second: f64,
}

impl Throughput {
    pub fn of(load: &LoadReport) -> Self {
        let secs = load.elapsed.as_secs_f64();
        let per_second = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        Throughput {
            elapsed_seconds: secs,
            rows_per_second: per_second(load.counts.rows_accepted),
            requests_per_second: per_second(load.counts.requests),
        }
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"))
}

impl Summary {
    /// The human-readable summary (several lines).
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let mode = match self.mode {
            Mode::Ingest => "ingest",
            Mode::Calibrate => "calibrate",
            Mode::Predict => "predict",
        };
        let _ = writeln!(
            s,
            "drift-sim: {} rows to {} ({mode}, monitor {}, window {}, stride {}, {} model, seed {})",
            self.counts.rows_sent,
            self.target,
            self.monitor,
            self.monitor_params.window,
            self.monitor_params.stride,
            match self.model {
                RowModel::Population => "population",
                RowModel::Reference => "reference",
            },
            self.seed
        );
        if self.drift.enabled {
            let kind = self.drift.kind.map_or("-", |k| k.as_str());
            let category = self
                .drift
                .settings
                .categories
                .as_ref()
                .map_or(String::new(), |c| format!(" (category {})", c.join(",")));
            let _ = writeln!(
                s,
                "  drift:      {kind} of {}{category} by {} after {} rows",
                self.drift.features.join(","),
                opt(self.drift.settings.magnitude),
                opt(self.drift.settings.after)
            );
        } else {
            let _ = writeln!(s, "  drift:      none");
        }
        let _ = writeln!(
            s,
            "  rows:       {} sent, {} accepted, {} failed, in {} requests ({} ok){}",
            self.counts.rows_sent,
            self.counts.rows_accepted,
            self.counts.rows_failed,
            self.counts.requests,
            self.counts.requests_ok,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        if self.counts.errors.is_empty() {
            let _ = writeln!(s, "  errors:     none");
        } else {
            let list: Vec<String> = self
                .counts
                .errors
                .iter()
                .map(|(k, v)| format!("{k} x{v}"))
                .collect();
            let _ = writeln!(s, "  errors:     {}", list.join(", "));
        }
        let _ = writeln!(
            s,
            "  throughput: {:.0} rows/s, {:.1} requests/s over {:.2} s",
            self.throughput.rows_per_second,
            self.throughput.requests_per_second,
            self.throughput.elapsed_seconds
        );
        let _ = writeln!(
            s,
            "  latency:    p50 {} ms, p95 {} ms, p99 {} ms, max {} ms",
            ms(self.latency_ms.p50),
            ms(self.latency_ms.p95),
            ms(self.latency_ms.p99),
            ms(self.latency_ms.max)
        );
        if let (Some(a), Some(b)) = (self.seq_first, self.seq_last) {
            let _ = writeln!(s, "  server seq: {a}..{b}");
        }
        if let Some(w) = &self.watch {
            let onset = match (w.onset_seq, w.onset_estimated) {
                (Some(o), true) => format!("seq ~{o} (estimated)"),
                (Some(o), false) => format!("seq {o}"),
                (None, _) => "-".into(),
            };
            let _ = writeln!(s, "  onset:      {onset}");
            let d = &w.detection;
            if d.detected {
                let signals: Vec<&str> = d.signals.iter().map(|k| k.as_str()).collect();
                let by = match signals.as_slice() {
                    [] => String::new(),
                    ["distribution"] => "distribution signal, ".to_string(),
                    _ => format!("{} signal; distribution ", signals.join("+")),
                };
                let _ = writeln!(
                    s,
                    "  detection:  {} at seq {} ({by}p = {:.3e}): {} rows, {} s after the onset",
                    opt(d.feature.as_deref()),
                    opt(d.seq),
                    d.p_value.unwrap_or(f64::NAN),
                    opt(d.delay_rows),
                    d.delay_seconds.map_or("-".into(), |d| format!("{d:.2}"))
                );
            } else if self.drift.enabled {
                let _ = writeln!(s, "  detection:  not detected");
            }
            let fa = if w.false_alarm_features.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = w
                    .false_alarm_features
                    .iter()
                    .map(|(k, v)| format!("{k} x{v}"))
                    .collect();
                format!(" ({})", list.join(", "))
            };
            let _ = writeln!(s, "  false alarms: {}{fa}", w.false_alarms);
            let _ = writeln!(
                s,
                "  evaluations: {} counted at {} boundaries ({} ignored: window older than the run); last boundary {} {}",
                w.evaluations,
                w.boundaries_evaluated,
                w.evaluations_ignored,
                opt(w.final_boundary),
                if w.final_boundary_evaluated { "evaluated" } else { "NOT evaluated in time" }
            );
            if let Some(missed) = w.drift_evaluations_missed.filter(|&n| n > 0) {
                let _ = writeln!(
                    s,
                    "  warning:    a drift feature was not evaluated at {missed} boundaries after the onset (stale jobs): the drift may have been detectable earlier"
                );
            }
            if let Some(stale) = w.stale_jobs.filter(|&n| n > 0) {
                let _ = writeln!(
                    s,
                    "  warning:    {stale} evaluation jobs were skipped as stale (boundaries superseded before a worker reached them): the delay in rows is an upper bound; send slower or add workers"
                );
            }
            if w.poll_errors > 0 {
                let _ = writeln!(
                    s,
                    "  watch:      {} failed polls (last: {})",
                    w.poll_errors,
                    opt(w.last_poll_error.as_deref())
                );
            }
        }
        s
    }
}
