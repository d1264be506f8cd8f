//! Command line of `drift-sim`.
//!
//! Flag values are checked by clap's value parsers, so a bad value fails before any request
//! with clap's usual one-line message; combinations that depend on the monitor (feature
//! names) are checked against the target's monitor before streaming.

use crate::scenario::{DriftKind, SwapValues};
use clap::{ArgAction, Parser, ValueEnum};
use drift_core::dataset::DEFAULT_MONITOR;
use drift_core::Correction;
use reqwest::Url;

/// Rows sent when neither `--rows` nor `--duration` is given.
pub const DEFAULT_ROWS: u64 = 5000;
/// Rows before the drift starts when `--drift true` and no `--drift-after`.
pub const DEFAULT_DRIFT_AFTER: u64 = 1000;

#[derive(Parser, Clone, Debug)]
#[command(
    name = "drift-sim",
    version,
    args_override_self = true,
    about = "Streams live-like rows with or without drift to the drift monitor and measures ingest throughput and detection delay"
)]
pub struct Args {
    /// Base URL of the API or the gateway.
    #[arg(long, env = "DRIFT_SIM_TARGET", default_value = "http://127.0.0.1:8002", value_parser = parse_target)]
    pub target: Url,
    /// Monitor to stream to.
    #[arg(long, default_value = DEFAULT_MONITOR)]
    pub monitor: String,
    /// Reference CSV the rows are modelled on: the monitor's own reference (the API does
    /// not serve it back). Default: the embedded breast_cancer data. Columns that are not
    /// features of the monitor are left out, and each feature is read with the kind the
    /// monitor gives it.
    #[arg(long, value_name = "CSV")]
    pub reference: Option<std::path::PathBuf>,
    /// Reference columns to leave out, comma-separated (on top of those the monitor lacks).
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub exclude: Vec<String>,
    /// Reference columns read as categorical, comma-separated (integer codes, e.g. `year`);
    /// needed only when the monitor does not report its features' kinds.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub categorical: Vec<String>,
    /// Reference columns that must be numeric, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub numeric: Vec<String>,
    /// `ingest` posts to /v1/monitors/{monitor}/rows; `predict` posts to /v1/predict (the
    /// default monitor's model, rows logged to it off the response path); `calibrate`
    /// registers its own monitors (admin token needed) and measures false-alarm rounds and
    /// detection delays of the alarm rules (see README, "Calibration").
    #[arg(long, value_enum, default_value_t = Mode::Ingest)]
    pub mode: Mode,
    /// Whether the stream drifts (true|false; a bare `--drift` means true).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value_t = false, default_missing_value = "true")]
    pub drift: bool,
    /// Kind of drift applied from the onset on.
    #[arg(long, value_enum, default_value_t = DriftKind::Shift)]
    pub drift_kind: DriftKind,
    /// Drifting features, comma-separated (scikit-learn names with spaces are accepted).
    #[arg(long, value_delimiter = ',', default_value = "mean_radius", value_parser = parse_feature)]
    pub drift_features: Vec<String>,
    /// Size of the drift: shift in reference standard deviations, or scale factor minus 1
    /// (ignored by swap); for category-share, new-category and missing, the share the
    /// category, the new category or missing values take (0 to 1).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true, value_parser = parse_finite)]
    pub drift_magnitude: f64,
    /// category-share: the category whose share moves (default: each drift feature's most
    /// frequent); new-category: the new category's name (default `unseen`).
    #[arg(long, value_name = "NAME")]
    pub drift_category: Option<String>,
    /// Rows sent before the drift starts (default 1000 with --drift true).
    #[arg(long)]
    pub drift_after: Option<u64>,
    /// Rows over which a gradual drift ramps up to its full magnitude.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ramp_rows: u64,
    /// What a swap exchanges: standardized values (each feature keeps its mean and sd) or
    /// raw values.
    #[arg(long, value_enum, default_value_t = SwapValues::Standardized)]
    pub swap_values: SwapValues,
    /// What "no drift" rows are drawn from: a population the reference could have been
    /// sampled from (drawn once per seed), or the reference's own smoothed distribution
    /// (windows then match the reference far better than live data would; see README).
    #[arg(long, value_enum, default_value_t = RowModel::Population)]
    pub model: RowModel,
    /// Seed of the row generator; the same seed gives the same rows (random if omitted, and
    /// reported in the summary).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Rows to send (default 5000 unless --duration is given; with both, the first reached
    /// ends the run).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rows: Option<u64>,
    /// Seconds to send for.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_positive)]
    pub duration: Option<f64>,
    /// Target rows per second (0 = as fast as the target answers).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0, value_parser = parse_non_negative)]
    pub rate: f64,
    /// Rows per request (at most 1000 in predict mode).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: u64,
    /// Deadline of one request, in seconds.
    #[arg(long, allow_negative_numbers = true, default_value_t = 10.0, value_parser = parse_positive)]
    pub timeout: f64,
    /// Poll the monitor's evaluation history and report detection delay and false alarms.
    #[arg(long)]
    pub watch: bool,
    /// Seconds to keep watching after sending ends, until the last boundary is evaluated.
    #[arg(long, allow_negative_numbers = true, default_value_t = 10.0, value_parser = parse_non_negative)]
    pub watch_timeout: f64,
    /// Milliseconds between two polls of the history.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub watch_interval_ms: u64,
    /// Print the summary as one JSON object on the last line of stdout (the human summary
    /// goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Progress display: a bar when stderr is a terminal, periodic lines otherwise (auto).
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Seconds between two progress lines (lines mode).
    #[arg(long, allow_negative_numbers = true, default_value_t = 5.0, value_parser = parse_positive)]
    pub progress_interval: f64,

    // Calibrate mode only.
    /// Admin token of the API (calibrate mode creates and deletes its monitors).
    #[arg(
        long,
        env = "DRIFT_ADMIN_TOKEN",
        hide_env_values = true,
        help_heading = "Calibrate mode"
    )]
    pub admin_token: Option<String>,
    /// References drawn from the population model (one monitor per reference and rule).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000), help_heading = "Calibrate mode")]
    pub references: u64,
    /// No-drift rounds (boundaries after the warm-up window) streamed per reference.
    #[arg(long, default_value_t = 130, value_parser = clap::value_parser!(u64).range(1..=1_000_000), help_heading = "Calibrate mode")]
    pub rounds: u64,
    /// Alarm rules compared, comma-separated (ert, bonferroni, bh, none).
    #[arg(long, value_delimiter = ',', default_value = "ert,bonferroni", value_parser = parse_rule, help_heading = "Calibrate mode")]
    pub rules: Vec<Correction>,
    /// Expected rounds between false alarms of the `ert` rule (the API's default if omitted).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_positive, help_heading = "Calibrate mode")]
    pub ert: Option<f64>,
    /// Reference confidence of the `ert` rule (the API's default if omitted).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_positive, help_heading = "Calibrate mode")]
    pub reference_confidence: Option<f64>,
    /// Significance level of the per-evaluation rules (the API's default if omitted).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_positive, help_heading = "Calibrate mode")]
    pub alpha: Option<f64>,
    /// Mean shifts measured by the detection part, in reference standard deviations.
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,1", allow_negative_numbers = true, value_parser = parse_finite, help_heading = "Calibrate mode")]
    pub shifts: Vec<f64>,
    /// Scale change measured by the detection part: the sd is multiplied by this around the
    /// reference mean (1 leaves the scale kind out).
    #[arg(long, default_value_t = 1.5, allow_negative_numbers = true, value_parser = parse_positive, help_heading = "Calibrate mode")]
    pub scale: f64,
    /// References used by the detection part (default: all; 0 skips it).
    #[arg(long, help_heading = "Calibrate mode")]
    pub detect_runs: Option<u64>,
    /// Drifted rows after which a detection run gives up.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Calibrate mode")]
    pub max_delay_rows: u64,
    /// Window of the calibration monitors (also the warm-up rows).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(2..=1_000_000), help_heading = "Calibrate mode")]
    pub window: u64,
    /// Stride of the calibration monitors (rows per round).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000), help_heading = "Calibrate mode")]
    pub stride: u64,
    /// Seconds to wait for one round to be evaluated on every feature before counting it
    /// as not evaluated.
    #[arg(long, allow_negative_numbers = true, default_value_t = 30.0, value_parser = parse_positive, help_heading = "Calibrate mode")]
    pub round_timeout: f64,
}

impl Args {
    /// Arguments as if given on the command line (after the program name), for tests.
    pub fn parse_from_iter<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let all = std::iter::once(std::ffi::OsString::from("drift-sim"))
            .chain(args.into_iter().map(Into::into));
        Args::try_parse_from(all)
    }

    /// Row limit of the run: `--rows`, or the default when no `--duration` either.
    pub fn row_limit(&self) -> Option<u64> {
        match (self.rows, self.duration) {
            (Some(r), _) => Some(r),
            (None, None) => Some(DEFAULT_ROWS),
            (None, Some(_)) => None,
        }
    }

    /// Rows before the onset, when the stream drifts.
    pub fn onset_row(&self) -> Option<u64> {
        self.drift
            .then(|| self.drift_after.unwrap_or(DEFAULT_DRIFT_AFTER))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Ingest,
    Predict,
    /// False-alarm rounds and detection delays of the alarm rules, through the real
    /// pipeline, on references drawn from a known population model.
    Calibrate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowModel {
    /// Gaussian copula over a Bayesian-bootstrap draw of the population (per seed).
    Population,
    /// Gaussian copula over the reference's own smoothed marginals.
    Reference,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Bar,
    Lines,
    None,
}

fn parse_target(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "only http:// targets are supported (got {}://)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(url)
}

/// Feature names as the API takes them: scikit-learn's "mean radius" is "mean_radius".
fn parse_feature(s: &str) -> Result<String, String> {
    let name = s.trim().replace(' ', "_");
    if name.is_empty() {
        return Err("empty feature name".into());
    }
    Ok(name)
}

fn parse_rule(s: &str) -> Result<Correction, String> {
    s.trim().parse()
}

fn parse_finite(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|e| format!("not a number ({e})"))?;
    if !v.is_finite() {
        return Err("must be finite".into());
    }
    Ok(v)
}

fn parse_non_negative(s: &str) -> Result<f64, String> {
    let v = parse_finite(s)?;
    if v < 0.0 {
        return Err("must be >= 0".into());
    }
    Ok(v)
}

fn parse_positive(s: &str) -> Result<f64, String> {
    let v = parse_finite(s)?;
    if v <= 0.0 {
        return Err("must be > 0".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_flag_takes_true_false_or_nothing() {
        assert!(!Args::parse_from_iter::<_, &str>([]).unwrap().drift);
        assert!(Args::parse_from_iter(["--drift", "true"]).unwrap().drift);
        assert!(!Args::parse_from_iter(["--drift", "false"]).unwrap().drift);
        assert!(Args::parse_from_iter(["--drift"]).unwrap().drift);
        assert!(
            Args::parse_from_iter(["--drift", "--rows", "5"])
                .unwrap()
                .drift
        );
        assert!(Args::parse_from_iter(["--drift", "maybe"]).is_err());
    }

    #[test]
    fn bad_values_are_rejected() {
        for bad in [
            &["--rate", "-1"][..],
            &["--rate", "nan"],
            &["--batch", "0"],
            &["--concurrency", "0"],
            &["--rows", "0"],
            &["--duration", "0"],
            &["--drift-magnitude", "inf"],
            &["--drift-kind", "tilt"],
            &["--target", "ftp://x"],
            &["--target", "not a url"],
            &["--mode", "bulk"],
            &["--drift-kind", "category_share"],
        ] {
            assert!(Args::parse_from_iter(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mixed_reference_flags() {
        let a = Args::parse_from_iter([
            "--reference",
            "data/penguins.csv",
            "--categorical",
            "year",
            "--exclude",
            "sex,island",
            "--drift-kind",
            "category-share",
            "--drift-category",
            "Gentoo",
        ])
        .unwrap();
        assert_eq!(
            a.reference.as_deref(),
            Some(std::path::Path::new("data/penguins.csv"))
        );
        assert_eq!(
            (a.categorical, a.exclude),
            (
                vec!["year".to_string()],
                vec!["sex".to_string(), "island".to_string()]
            )
        );
        assert_eq!(a.drift_kind, DriftKind::CategoryShare);
        assert_eq!(a.drift_category.as_deref(), Some("Gentoo"));
        for kind in ["new-category", "missing", "shift", "gradual"] {
            assert!(
                Args::parse_from_iter(["--drift-kind", kind]).is_ok(),
                "{kind}"
            );
        }
    }

    #[test]
    fn a_later_flag_overrides_an_earlier_one() {
        let a = Args::parse_from_iter(["--batch", "5", "--batch", "7"]).unwrap();
        assert_eq!(a.batch, 7);
    }

    #[test]
    fn features_and_defaults() {
        let a = Args::parse_from_iter([
            "--drift-features",
            "mean radius,worst_area",
            "--drift-magnitude",
            "-0.5",
        ])
        .unwrap();
        assert_eq!(a.drift_features, ["mean_radius", "worst_area"]);
        assert_eq!(a.drift_magnitude, -0.5);
        assert_eq!(a.row_limit(), Some(DEFAULT_ROWS));
        assert_eq!(a.onset_row(), None);
        let a = Args::parse_from_iter(["--drift", "true", "--duration", "3"]).unwrap();
        assert_eq!(a.row_limit(), None);
        assert_eq!(a.onset_row(), Some(DEFAULT_DRIFT_AFTER));
    }
}
