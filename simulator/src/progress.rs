//! Progress display while sending: a bar on a terminal, periodic plain lines otherwise (logs
//! of CI jobs and `| tee` do not want carriage returns), or nothing.

use crate::cli::ProgressMode;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counters the sender updates and the display reads, lock-free.
#[derive(Default, Debug)]
pub struct Live {
    /// Rows whose request has completed (accepted or not).
    pub rows_done: AtomicU64,
    pub rows_accepted: AtomicU64,
    pub failed_requests: AtomicU64,
    /// Highest `seq` acknowledged (ingest mode).
    pub max_seq: AtomicU64,
    /// Server position of the first drifted row, 0 while unknown.
    pub onset_seq: AtomicU64,
}

impl Live {
    pub fn onset_seq(&self) -> Option<u64> {
        match self.onset_seq.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        }
    }
}

/// Where progress and notes go.
pub enum Display {
    Bar(ProgressBar),
    Lines { every: Duration },
    Silent,
}

impl Display {
    /// Picks the display for `mode` (auto: a bar iff stderr is a terminal). `rows` is the
    /// run's row limit, if it has one; otherwise the bar measures time against `duration`.
    pub fn new(
        mode: ProgressMode,
        every: Duration,
        rows: Option<u64>,
        duration: Option<Duration>,
    ) -> Self {
        let bar = match mode {
            ProgressMode::None => return Display::Silent,
            ProgressMode::Lines => false,
            ProgressMode::Bar => true,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        };
        if !bar {
            return Display::Lines { every };
        }
        let (len, template) = match (rows, duration) {
            (Some(r), _) => (
                r,
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows ({per_sec}) {msg}",
            ),
            (None, d) => (
                d.map_or(0, |d| d.as_millis() as u64),
                "{spinner} [{elapsed_precise}/{duration_precise}] {wide_bar} {msg}",
            ),
        };
        let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            pb.set_style(style);
        }
        Display::Bar(pb)
    }

    /// A line that must not be garbled by the bar (a detection, a warning).
    pub fn note(&self, text: &str) {
        match self {
            Display::Bar(pb) => pb.println(text),
            Display::Lines { .. } => eprintln!("drift-sim: {text}"),
            Display::Silent => {}
        }
    }

    /// Redraws from the counters until `done` resolves, then clears the bar.
    pub async fn run(
        self: Arc<Self>,
        live: Arc<Live>,
        started: Instant,
        rows: Option<u64>,
        done: tokio::sync::oneshot::Receiver<()>,
    ) {
        let tick = match &*self {
            Display::Silent => {
                let _ = done.await;
                return;
            }
            Display::Bar(_) => Duration::from_millis(100),
            Display::Lines { every } => *every,
        };
        let mut done = done;
        let mut interval = tokio::time::interval(tick);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = interval.tick() => self.draw(&live, started, rows),
                _ = &mut done => break,
            }
        }
        if let Display::Bar(pb) = &*self {
            pb.finish_and_clear();
        }
    }

    fn draw(&self, live: &Live, started: Instant, rows: Option<u64>) {
        let done = live.rows_done.load(Ordering::Relaxed);
        let accepted = live.rows_accepted.load(Ordering::Relaxed);
        let failed = live.failed_requests.load(Ordering::Relaxed);
        let seq = live.max_seq.load(Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        match self {
            Display::Bar(pb) => {
                if rows.is_some() {
                    pb.set_position(done);
                } else {
                    pb.set_position((elapsed * 1000.0) as u64);
                }
                let seq = if seq > 0 {
                    format!(", seq {seq}")
                } else {
                    String::new()
                };
                pb.set_message(format!(
                    "{accepted} accepted, {failed} failed requests{seq}"
                ));
            }
            Display::Lines { .. } => {
                let of = rows.map_or(String::new(), |r| format!("/{r}"));
                let rate = if elapsed > 0.0 {
                    accepted as f64 / elapsed
                } else {
                    0.0
                };
                let seq = if seq > 0 {
                    format!(", seq {seq}")
                } else {
                    String::new()
                };
                eprintln!(
                    "drift-sim: {elapsed:.1} s: {done}{of} rows sent, {accepted} accepted ({rate:.0} rows/s), {failed} failed requests{seq}"
                );
            }
            Display::Silent => {}
        }
    }
}
