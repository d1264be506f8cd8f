//! Monitor definitions: what is monitored, against which reference, with which parameters.

use crate::alarm::{tests_per_round, Correction};
use crate::dataset::Dataset;
use crate::feature::{category_bins, Categories, CodeCache, FeatureKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest monitor name accepted; names end up in Redis keys and metric labels.
pub const MAX_MONITOR_NAME: usize = 64;
/// Longest feature name accepted.
pub const MAX_FEATURE_NAME: usize = 128;
/// Largest window and stride: a window is held in Redis per feature (8 bytes a row, plus
/// one stride), and the ingest script's arithmetic must stay exact.
pub const MAX_WINDOW: usize = 1_000_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error(
        "monitor name `{0}` is invalid: use 1-64 characters from [A-Za-z0-9_.-], not only dots"
    )]
    MonitorName(String),
    #[error("feature name `{0}` is invalid: use 1-128 printable characters without braces")]
    FeatureName(String),
    #[error("window must be 2 to 1000000 rows (got {0})")]
    Window(usize),
    #[error("stride must be 1 to 1000000 rows (got {0})")]
    Stride(usize),
    #[error("alpha must be in (0, 1) (got {0})")]
    Alpha(f64),
    #[error("dataset drift share must be in (0, 1] (got {0})")]
    Share(f64),
    #[error("ert (expected rounds between false alarms) must be in [1, 1e12] (got {0})")]
    Ert(f64),
    #[error("reference_confidence must be in (0, 1) (got {0})")]
    Confidence(f64),
    #[error(
        "sample_rate (the share of rows kept at ingest) must be a number in (0, 1], 1 keeping \
         every row (got {0})"
    )]
    SampleRate(f64),
    #[error(
        "under the ert rule feature `{feature}` would need a {statistic} of {threshold:.3} to be flagged, \
         more than the largest possible (1): use a larger window or reference, or a smaller ert"
    )]
    Unreachable {
        feature: String,
        statistic: &'static str,
        threshold: f64,
    },
    #[error("the reference needs at least one feature")]
    NoFeatures,
    #[error("the reference has {0} features; at most {1} are allowed")]
    TooManyFeatures(usize, usize),
}

/// Evaluation parameters of a monitor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Params {
    /// Rows in each feature's rolling window.
    pub window: usize,
    /// Rows between evaluations once the window is full.
    pub stride: usize,
    /// Family-wise significance level (before correction).
    /// Significance level of the per-evaluation rules (bonferroni, bh, none).
    pub alpha: f64,
    /// The alarm rule: `ert` (default) bounds false alarms over the stream; `bonferroni`,
    /// `bh` and `none` bound the error of one evaluation.
    pub correction: Correction,
    /// Share of drifted features from which the data set as a whole counts as drifted
    /// (Evidently's default of 0.5).
    pub dataset_drift_share: f64,
    /// Under `ert`: the expected number of rounds between false-alarm rounds when nothing
    /// drifts (a round is one evaluation of every feature, every `stride` rows).
    #[serde(default = "default_ert")]
    pub ert: f64,
    /// Under `ert`: the probability over the draw of the reference that the guarantee holds.
    #[serde(default = "default_confidence")]
    pub reference_confidence: f64,
    /// The probability with which the API keeps each ingested row, independently of the
    /// others (Bernoulli thinning), before it reaches Redis; 1 keeps every row. For traffic
    /// beyond what one Redis shard should carry: thinning an i.i.d. stream leaves it i.i.d.
    /// with the same distribution, so the alarm's guarantee holds as stated in rows, and a
    /// window of `window` stored rows spans 1/`sample_rate` times as much traffic. Left out
    /// of the JSON when it is 1, so configs of monitors that do not sample are unchanged.
    #[serde(
        default = "default_sample_rate",
        skip_serializing_if = "keeps_every_row"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(default = 1.0, exclusive_minimum = 0.0, maximum = 1.0)
    )]
    pub sample_rate: f64,
}

fn default_sample_rate() -> f64 {
    1.0
}

/// Whether a sample rate keeps every row (then it is left out of the config's JSON).
fn keeps_every_row(p: &f64) -> bool {
    *p == 1.0
}

fn default_ert() -> f64 {
    Params::default().ert
}

fn default_confidence() -> f64 {
    Params::default().reference_confidence
}

impl Default for Params {
    fn default() -> Self {
        Params {
            window: 500,
            stride: 100,
            alpha: 0.05,
            correction: Correction::Ert,
            dataset_drift_share: 0.5,
            ert: 10_000.0,
            reference_confidence: 0.95,
            sample_rate: 1.0,
        }
    }
}

impl Params {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(2..=MAX_WINDOW).contains(&self.window) {
            return Err(ConfigError::Window(self.window));
        }
        if !(1..=MAX_WINDOW).contains(&self.stride) {
            return Err(ConfigError::Stride(self.stride));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(ConfigError::Alpha(self.alpha));
        }
        if !(self.dataset_drift_share > 0.0 && self.dataset_drift_share <= 1.0) {
            return Err(ConfigError::Share(self.dataset_drift_share));
        }
        if !(self.ert >= 1.0 && self.ert <= 1e12) {
            return Err(ConfigError::Ert(self.ert));
        }
        if !(self.reference_confidence > 0.0 && self.reference_confidence < 1.0) {
            return Err(ConfigError::Confidence(self.reference_confidence));
        }
        // NaN fails both comparisons; +inf fails the upper bound.
        if !(self.sample_rate > 0.0 && self.sample_rate <= 1.0) {
            return Err(ConfigError::SampleRate(self.sample_rate));
        }
        Ok(())
    }

    /// The `ert` rule's KS-statistic threshold for a numeric feature with `reference_rows`
    /// present reference values and `window_rows` present window values, in a monitor of
    /// `features` features; `None` under the per-evaluation rules.
    pub fn ks_threshold(
        &self,
        reference_rows: usize,
        window_rows: usize,
        features: usize,
    ) -> Option<f64> {
        (self.correction == Correction::Ert).then(|| {
            crate::alarm::ert_threshold(
                reference_rows,
                window_rows,
                tests_per_round(features),
                self.ert,
                self.reference_confidence,
            )
        })
    }

    /// The `ert` rule's total-variation threshold for a categorical feature of `bins` bins.
    pub fn tv_threshold(
        &self,
        bins: usize,
        reference_rows: usize,
        window_rows: usize,
        features: usize,
    ) -> Option<f64> {
        (self.correction == Correction::Ert).then(|| {
            crate::stats::bounds::tv_threshold(
                bins,
                reference_rows,
                window_rows,
                tests_per_round(features),
                self.ert,
                self.reference_confidence,
            )
        })
    }

    /// The `ert` rule's threshold on the change of a feature's missing share.
    pub fn missing_threshold(
        &self,
        reference_rows: usize,
        window_rows: usize,
        features: usize,
    ) -> Option<f64> {
        (self.correction == Correction::Ert).then(|| {
            crate::stats::bounds::missing_threshold(
                reference_rows,
                window_rows,
                tests_per_round(features),
                self.ert,
                self.reference_confidence,
            )
        })
    }
}

/// What workers and API replicas share about a monitor (stored in Redis as JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub name: String,
    pub features: Vec<String>,
    #[serde(flatten)]
    pub params: Params,
    /// Hash of the reference data: results of different versions are never mixed.
    pub version: String,
    pub reference_rows: usize,
    /// Under `ert`: each feature's distribution threshold (KS statistic for numeric
    /// features, total variation for categorical ones) for a window without missing
    /// values, in feature order, computed when the monitor is built; empty under the other
    /// rules. Workers compute the threshold of each evaluation from the window's present
    /// values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<f64>,
    /// Each feature's kind, in feature order; empty in configs stored before features had
    /// kinds (all numeric then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<FeatureKind>,
    /// Each feature's reference categories, sorted (`__other__` last when folded); empty
    /// lists for numeric features, or no lists at all when every feature is numeric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Vec<String>>,
    /// Each feature's missing reference values; empty when none is missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_missing: Vec<u64>,
    #[serde(skip)]
    pub codes: CodeCache,
}

/// A monitor to register: its config plus the reference columns (one per feature: the
/// present values only, numbers or category codes).
#[derive(Clone, Debug)]
pub struct MonitorSpec {
    pub config: MonitorConfig,
    pub reference: Vec<Vec<f64>>,
}

pub fn validate_monitor_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_MONITOR_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        // `.` and `..` are path segments to every proxy and client library.
        && !name.bytes().all(|b| b == b'.');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::MonitorName(name.chars().take(80).collect()))
    }
}

fn validate_feature_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_FEATURE_NAME
        && !name.chars().any(|c| c.is_control() || c == '{' || c == '}');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::FeatureName(name.chars().take(140).collect()))
    }
}

impl MonitorSpec {
    /// Builds a monitor from a reference data set; the version is a hash of the feature
    /// names and reference values, so registering the same data again changes nothing.
    pub fn new(
        name: &str,
        dataset: &Dataset,
        params: Params,
        max_features: usize,
    ) -> Result<Self, ConfigError> {
        validate_monitor_name(name)?;
        params.validate()?;
        if dataset.names().is_empty() {
            return Err(ConfigError::NoFeatures);
        }
        if dataset.names().len() > max_features {
            return Err(ConfigError::TooManyFeatures(
                dataset.names().len(),
                max_features,
            ));
        }
        for f in dataset.names() {
            validate_feature_name(f)?;
        }
        let features = dataset.names();
        let kinds = dataset.kinds();
        let mut hasher = Sha256::new();
        for (i, (f, col)) in features.iter().zip(dataset.columns()).enumerate() {
            hasher.update((f.len() as u64).to_le_bytes());
            hasher.update(f.as_bytes());
            hasher.update((col.len() as u64).to_le_bytes());
            // Numeric data without missing values hashes as before kinds existed, so those
            // monitors keep their version.
            for v in col {
                hasher.update(v.to_le_bytes());
            }
            if kinds[i] == FeatureKind::Categorical {
                hasher.update(b"categorical");
                for c in &dataset.categories()[i] {
                    hasher.update((c.len() as u64).to_le_bytes());
                    hasher.update(c.as_bytes());
                }
            }
        }
        let version = hex::encode(&hasher.finalize()[..8]);
        let missing: Vec<u64> = dataset
            .columns()
            .iter()
            .map(|c| c.iter().filter(|v| v.is_nan()).count() as u64)
            .collect();
        let reference: Vec<Vec<f64>> = dataset
            .columns()
            .iter()
            .map(|c| c.iter().copied().filter(|v| !v.is_nan()).collect())
            .collect();
        let mut thresholds = Vec::new();
        // A KS threshold depends on the feature only through its reference size, and each
        // one inverts two Kolmogorov distributions: computed once per distinct size.
        let mut by_size: Vec<(usize, Option<f64>)> = Vec::new();
        for (i, (f, col)) in features.iter().zip(&reference).enumerate() {
            let n = col.len();
            let (c, statistic) = match kinds[i] {
                FeatureKind::Numeric => {
                    let known = by_size.iter().find(|(m, _)| *m == n).map(|(_, c)| *c);
                    let c = known.unwrap_or_else(|| {
                        let c = params.ks_threshold(n, params.window, features.len());
                        by_size.push((n, c));
                        c
                    });
                    (c, "KS statistic")
                }
                FeatureKind::Categorical => (
                    params.tv_threshold(
                        category_bins(&dataset.categories()[i]),
                        n,
                        params.window,
                        features.len(),
                    ),
                    "total-variation distance",
                ),
            };
            let Some(c) = c else {
                break;
            };
            if c > 1.0 {
                return Err(ConfigError::Unreachable {
                    feature: f.clone(),
                    statistic,
                    threshold: c,
                });
            }
            thresholds.push(c);
        }
        let all_numeric = kinds.iter().all(|k| *k == FeatureKind::Numeric);
        Ok(MonitorSpec {
            config: MonitorConfig {
                name: name.to_string(),
                features: features.to_vec(),
                params,
                version,
                reference_rows: dataset.n_rows(),
                thresholds,
                kinds: if all_numeric {
                    Vec::new()
                } else {
                    kinds.to_vec()
                },
                categories: if all_numeric {
                    Vec::new()
                } else {
                    dataset.categories().to_vec()
                },
                reference_missing: if missing.iter().all(|m| *m == 0) {
                    Vec::new()
                } else {
                    missing
                },
                codes: CodeCache::default(),
            },
            reference,
        })
    }

    /// The default monitor: the embedded breast cancer data set.
    pub fn default_monitor(params: Params) -> Result<Self, crate::Error> {
        let ds = Dataset::breast_cancer()?;
        Ok(Self::new(
            crate::dataset::DEFAULT_MONITOR,
            &ds,
            params,
            1024,
        )?)
    }
}

impl MonitorConfig {
    pub fn feature_index(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f == name)
    }

    /// Feature `i`'s distribution threshold under `ert` for a window without missing
    /// values, as computed at registration.
    pub fn threshold(&self, i: usize) -> Option<f64> {
        self.thresholds.get(i).copied()
    }

    pub fn kind(&self, i: usize) -> FeatureKind {
        self.kinds.get(i).copied().unwrap_or_default()
    }

    /// Feature `i`'s categories (empty for a numeric feature).
    pub fn categories(&self, i: usize) -> &[String] {
        self.categories.get(i).map_or(&[], Vec::as_slice)
    }

    /// Feature `i`'s missing reference values.
    pub fn reference_missing(&self, i: usize) -> u64 {
        self.reference_missing.get(i).copied().unwrap_or(0)
    }

    /// Feature `i`'s present reference values.
    pub fn reference_present(&self, i: usize) -> usize {
        self.reference_rows
            .saturating_sub(self.reference_missing(i) as usize)
    }

    /// Each feature's value-to-code map (`None` for numeric features).
    pub fn codes(&self) -> &[Option<Categories>] {
        self.codes.get_or_build(|| {
            (0..self.features.len())
                .map(|i| {
                    (self.kind(i) == FeatureKind::Categorical)
                        .then(|| Categories::new(self.categories(i)))
                })
                .collect()
        })
    }

    /// Whether any feature is categorical (ingest then needs the category maps).
    pub fn has_categorical(&self) -> bool {
        self.kinds.contains(&FeatureKind::Categorical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_depends_on_data_only() {
        let a = MonitorSpec::default_monitor(Params::default()).unwrap();
        let b = MonitorSpec::default_monitor(Params {
            window: 1000,
            ..Params::default()
        })
        .unwrap();
        assert_eq!(a.config.version, b.config.version);
        let ds = Dataset::from_csv("x\n1\n2\n".as_bytes(), &[]).unwrap();
        let c = MonitorSpec::new("m", &ds, Params::default(), 10).unwrap();
        assert_ne!(a.config.version, c.config.version);
        assert_eq!(a.config.features.len(), 30);
    }

    #[test]
    fn rejects_bad_names_and_params() {
        assert!(validate_monitor_name("ok_name-1.2").is_ok());
        assert!(validate_monitor_name("").is_err());
        assert!(validate_monitor_name("a b").is_err());
        assert!(validate_monitor_name("a}").is_err());
        assert!(validate_monitor_name(&"a".repeat(65)).is_err());
        for dots in [".", "..", "..."] {
            assert!(validate_monitor_name(dots).is_err(), "{dots}");
        }
        assert!(validate_monitor_name("v1.2").is_ok());
        for (window, stride) in [
            (100_000_000_000_000_000, 1),
            (500, 100_000_000_000_000_000),
            (usize::MAX, 1),
        ] {
            let p = Params {
                window,
                stride,
                ..Params::default()
            };
            assert!(p.validate().is_err(), "{window} {stride}");
        }
        let p = Params {
            alpha: 1.5,
            ..Params::default()
        };
        assert_eq!(p.validate(), Err(ConfigError::Alpha(1.5)));
        let p = Params {
            window: 1,
            ..Params::default()
        };
        assert!(p.validate().is_err());
        let ds = Dataset::from_csv("x{\n1\n".as_bytes(), &[]).unwrap();
        assert!(MonitorSpec::new("m", &ds, Params::default(), 10).is_err());
        for bad in [0.5, f64::NAN, f64::INFINITY] {
            let p = Params {
                ert: bad,
                ..Params::default()
            };
            assert!(matches!(p.validate(), Err(ConfigError::Ert(_))), "{bad}");
        }
        let p = Params {
            reference_confidence: 1.0,
            ..Params::default()
        };
        assert_eq!(p.validate(), Err(ConfigError::Confidence(1.0)));
    }

    #[test]
    fn sample_rate_is_validated() {
        for ok in [1.0, 0.5, 0.05, f64::MIN_POSITIVE] {
            let p = Params {
                sample_rate: ok,
                ..Params::default()
            };
            assert_eq!(p.validate(), Ok(()), "{ok}");
        }
        for bad in [
            0.0,
            -0.0,
            -1.0,
            1.5,
            1.0 + f64::EPSILON,
            f64::NAN,
            f64::INFINITY,
        ] {
            let p = Params {
                sample_rate: bad,
                ..Params::default()
            };
            let err = p.validate().unwrap_err();
            assert!(matches!(err, ConfigError::SampleRate(_)), "{bad}: {err}");
            assert!(err.to_string().contains("sample_rate"), "{err}");
        }
        let ds = Dataset::from_csv("x\n1\n2\n".as_bytes(), &[]).unwrap();
        let p = Params {
            sample_rate: 0.0,
            correction: Correction::Bonferroni,
            ..Params::default()
        };
        assert_eq!(
            MonitorSpec::new("m", &ds, p, 10).unwrap_err(),
            ConfigError::SampleRate(0.0)
        );
    }

    #[test]
    fn sample_rate_defaults_to_one_and_is_left_out_of_the_json_then() {
        let a = MonitorSpec::default_monitor(Params::default())
            .unwrap()
            .config;
        let json = serde_json::to_value(&a).unwrap();
        // A monitor that keeps every row stores the config it stored before sampling
        // existed: same keys (so register.lua sees the same JSON, "unchanged").
        assert!(json.get("sample_rate").is_none(), "{json}");
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("sample_rate");
        let back: MonitorConfig = serde_json::from_value(old).unwrap();
        assert_eq!(back.params.sample_rate, 1.0);
        assert_eq!(back, a);
        // Sampling is a parameter: the version (a hash of the reference) does not move,
        // so changing it is a parameter update that keeps the results.
        let b = MonitorSpec::default_monitor(Params {
            sample_rate: 0.25,
            ..Params::default()
        })
        .unwrap()
        .config;
        assert_eq!(a.version, b.version);
        // The embedded reference's version as it was before sampling existed: registering
        // it again after an upgrade finds the same version and the same stored JSON.
        assert_eq!(a.version, "692d74d265244942");
        let json = serde_json::to_value(&b).unwrap();
        assert_eq!(json["sample_rate"], 0.25);
        let back: MonitorConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back.params.sample_rate, 0.25);
        // Params on their own (the `params` of the monitor views) behave alike.
        let p = serde_json::to_value(Params::default()).unwrap();
        assert!(p.get("sample_rate").is_none(), "{p}");
    }

    #[test]
    fn ert_thresholds_are_computed_per_feature_and_must_be_reachable() {
        let m = MonitorSpec::default_monitor(Params::default())
            .unwrap()
            .config;
        assert_eq!(m.thresholds.len(), 30);
        // Two signals per feature (distribution and missing share): 60 tests a round.
        let want = crate::alarm::ert_threshold(569, 500, 60, 1e4, 0.95);
        assert!(m.thresholds.iter().all(|&c| c == want));
        assert_eq!(m.threshold(29), Some(want));
        let bonf = Params {
            correction: Correction::Bonferroni,
            ..Params::default()
        };
        let m = MonitorSpec::default_monitor(bonf).unwrap().config;
        assert!(m.thresholds.is_empty() && m.threshold(0).is_none());
        // Three reference rows and a window of 2 can never reach the threshold.
        let ds = Dataset::from_csv("x\n1\n2\n3\n".as_bytes(), &[]).unwrap();
        let tiny = Params {
            window: 2,
            stride: 1,
            ..Params::default()
        };
        let err = MonitorSpec::new("m", &ds, tiny, 10).unwrap_err();
        assert!(matches!(err, ConfigError::Unreachable { .. }), "{err}");
    }
}
