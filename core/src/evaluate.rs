//! One evaluation of a feature's window against its reference, for either kind: the
//! distribution signal (KS, or total variation with the chi-square p-value), the
//! missing-share signal, and the effect sizes. Pure and CPU-bound: workers run it on
//! their thread pool, benches and calibration runs call it directly.

use crate::alarm::feature_p_value;
use crate::feature::{category_bins, FeatureKind, OTHER};
use crate::ks::{Alternative, EffectiveMethod, Method, Reference};
use crate::monitor::{MonitorConfig, Params};
use crate::results::{Details, Effects, Evaluation, Signal, SignalKind};
use crate::stats::chisq::chisquare;
use crate::stats::effects::{jensen_shannon, psi, wasserstein_normed, QuantileBins};
use std::collections::HashMap;
use std::sync::Mutex;

/// Bins of the numeric PSI and Jensen-Shannon distance: reference deciles.
pub const EFFECT_BINS: usize = 10;

/// How the unseen bin is named where a category is named (`top_category`).
pub const UNSEEN: &str = "__unseen__";

/// A feature's reference, prepared once per version and shared by every evaluation.
#[derive(Debug)]
pub enum FeatureReference {
    Numeric {
        ks: Reference,
        bins: QuantileBins,
    },
    Categorical {
        /// Reference count of each category code.
        counts: Vec<u64>,
        names: Vec<String>,
        /// Whether values the reference did not have fall into `__other__` (no unseen bin).
        folded: bool,
    },
}

impl FeatureReference {
    /// From the stored reference: the present values, sorted (numbers, or category codes).
    pub fn new(
        kind: FeatureKind,
        sorted_values: Vec<f64>,
        categories: &[String],
    ) -> Result<Self, String> {
        match kind {
            FeatureKind::Numeric => {
                let ks = Reference::from_sorted(sorted_values).map_err(|e| e.to_string())?;
                let bins = QuantileBins::new(ks.sorted(), EFFECT_BINS);
                Ok(FeatureReference::Numeric { ks, bins })
            }
            FeatureKind::Categorical => {
                if sorted_values.is_empty() {
                    return Err("the reference has no values".into());
                }
                let mut counts = vec![0u64; categories.len()];
                for v in sorted_values {
                    let slot = code(v, categories.len())
                        .filter(|&c| c < categories.len())
                        .ok_or_else(|| format!("reference value {v} is not a category code"))?;
                    counts[slot] += 1;
                }
                Ok(FeatureReference::Categorical {
                    counts,
                    names: categories.to_vec(),
                    folded: categories.iter().any(|c| c == OTHER),
                })
            }
        }
    }

    pub fn kind(&self) -> FeatureKind {
        match self {
            FeatureReference::Numeric { .. } => FeatureKind::Numeric,
            FeatureReference::Categorical { .. } => FeatureKind::Categorical,
        }
    }

    /// Present reference values.
    pub fn present(&self) -> usize {
        match self {
            FeatureReference::Numeric { ks, .. } => ks.len(),
            FeatureReference::Categorical { counts, .. } => counts.iter().sum::<u64>() as usize,
        }
    }
}

/// A category code held as f64: `Some(index)` for an integral value in `0..=max`.
fn code(v: f64, max: usize) -> Option<usize> {
    (v >= 0.0 && v.fract() == 0.0 && v <= max as f64).then_some(v as usize)
}

/// KS thresholds by (reference values, window values): each inverts two Kolmogorov
/// distributions, and a monitor's windows take few distinct sizes, so they are computed
/// once per size and shared by every thread.
#[derive(Debug, Default)]
pub struct KsThresholds {
    cache: Mutex<HashMap<ThresholdKey, f64>>,
}

/// Reference values, window values, features, and the bits of `ert` and the confidence.
type ThresholdKey = (usize, usize, usize, u64, u64);

impl KsThresholds {
    fn get(&self, params: &Params, features: usize, n: usize, m: usize) -> Option<f64> {
        let key = (
            n,
            m,
            features,
            params.ert.to_bits(),
            params.reference_confidence.to_bits(),
        );
        if let Some(c) = self.cache.lock().ok().and_then(|c| c.get(&key).copied()) {
            return Some(c);
        }
        let c = params.ks_threshold(n, m, features)?;
        if let Ok(mut cache) = self.cache.lock() {
            // Bounded: sizes are at most window x reference pairs, in practice a handful;
            // cleared rather than grown without end if a monitor keeps changing.
            if cache.len() > 4096 {
                cache.clear();
            }
            cache.insert(key, c);
        }
        Some(c)
    }
}

/// What an evaluation needs of the monitor for feature `feature`.
pub struct Context<'a> {
    pub config: &'a MonitorConfig,
    pub feature: usize,
    pub thresholds: &'a KsThresholds,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Evaluates one window (numbers or category codes, NaN where missing; consumed: its
/// present values are sorted in place).
pub fn evaluate(
    reference: &FeatureReference,
    ctx: &Context,
    window: Vec<f64>,
) -> Result<Evaluation, String> {
    let cfg = ctx.config;
    let params = &cfg.params;
    let features = cfg.features.len();
    let rows = window.len();
    if rows == 0 {
        return Err("the window is empty".into());
    }
    let mut present: Vec<f64> = window;
    present.retain(|v| !v.is_nan());
    let missing = rows - present.len();
    let n_present = reference.present();
    let mut details = Details {
        kind: reference.kind(),
        ..Details::default()
    };
    let mut eval = Evaluation {
        p_value: 1.0,
        statistic: 0.0,
        statistic_location: 0.0,
        statistic_sign: 0,
        window_rows: rows,
        method: "none",
        p_feature: f64::NAN,
        threshold: None,
        details: Details::default(),
    };
    let distribution = match reference {
        FeatureReference::Numeric { ks, bins } => {
            let test = "ks".to_string();
            if present.is_empty() {
                Signal {
                    signal: SignalKind::Distribution,
                    test,
                    statistic: None,
                    threshold: None,
                    p_value: None,
                    fired: false,
                }
            } else {
                let m = present.len();
                let res = ks
                    .evaluate(&mut present, Alternative::TwoSided, Method::Auto)
                    .map_err(|e| format!("evaluation failed: {e}"))?;
                let threshold = ctx.thresholds.get(params, features, n_present, m);
                eval.p_value = res.pvalue;
                eval.statistic = res.statistic;
                eval.statistic_location = res.statistic_location;
                eval.statistic_sign = res.statistic_sign;
                eval.method = match res.effective_method {
                    EffectiveMethod::Exact => "exact",
                    EffectiveMethod::Asymptotic => "asymptotic",
                };
                eval.threshold = threshold;
                // `present` is sorted now; PSI and Jensen-Shannon share one binning.
                let shares = bins.shares(&present);
                details.effects = Effects {
                    wasserstein_normed: finite(wasserstein_normed(ks.sorted(), &present)),
                    psi: finite(psi(bins.reference_shares(), &shares)),
                    jensen_shannon: finite(jensen_shannon(bins.reference_shares(), &shares)),
                };
                Signal {
                    signal: SignalKind::Distribution,
                    test,
                    statistic: Some(res.statistic),
                    threshold,
                    p_value: Some(res.pvalue),
                    fired: false,
                }
            }
        }
        FeatureReference::Categorical {
            counts,
            names,
            folded,
        } => {
            let k = names.len();
            let bins = category_bins(names);
            // Window counts per bin: the categories, then unseen values (none when folded).
            let mut observed = vec![0f64; bins];
            for &v in &present {
                let slot = code(v, bins - 1)
                    .ok_or_else(|| format!("window value {v} is not a category code"))?;
                observed[slot] += 1.0;
            }
            let m = present.len();
            let n = n_present as f64;
            let reference_shares: Vec<f64> = (0..bins)
                .map(|i| counts.get(i).map_or(0.0, |&c| c as f64 / n))
                .collect();
            if !*folded {
                details.unseen_share = (m > 0).then(|| observed[k] / m as f64);
            }
            if m == 0 {
                Signal {
                    signal: SignalKind::Distribution,
                    test: "tv".into(),
                    statistic: None,
                    threshold: None,
                    p_value: None,
                    fired: false,
                }
            } else {
                let mf = m as f64;
                let window_shares: Vec<f64> = observed.iter().map(|o| o / mf).collect();
                let mut tv = 0.0;
                let (mut top, mut top_diff) = (0usize, -1.0f64);
                for (i, (w, r)) in window_shares.iter().zip(&reference_shares).enumerate() {
                    let d = (w - r).abs();
                    tv += d;
                    if d > top_diff {
                        (top, top_diff) = (i, d);
                    }
                }
                let tv = tv / 2.0;
                let expected: Vec<f64> = reference_shares.iter().map(|r| r * mf).collect();
                let chi = chisquare(&observed, &expected);
                let threshold = params
                    .tv_threshold(bins, n_present, m, features)
                    .and_then(finite);
                eval.p_value = chi.p_value;
                eval.statistic = tv;
                eval.statistic_location = top as f64;
                eval.statistic_sign = if window_shares[top] >= reference_shares[top] {
                    1
                } else {
                    -1
                };
                eval.method = "chisquare";
                eval.threshold = threshold;
                details.top_category = Some(names.get(top).cloned().unwrap_or(UNSEEN.into()));
                // Evidently's bins are the values seen in either sample.
                let (r, w): (Vec<f64>, Vec<f64>) = reference_shares
                    .iter()
                    .zip(&window_shares)
                    .filter(|(r, w)| **r > 0.0 || **w > 0.0)
                    .map(|(r, w)| (*r, *w))
                    .unzip();
                details.effects = Effects {
                    wasserstein_normed: None,
                    psi: finite(psi(&r, &w)),
                    jensen_shannon: finite(jensen_shannon(&r, &w)),
                };
                Signal {
                    signal: SignalKind::Distribution,
                    test: "tv".into(),
                    statistic: Some(tv),
                    threshold,
                    p_value: Some(chi.p_value),
                    fired: false,
                }
            }
        }
    };
    let reference_rows = cfg.reference_rows.max(1);
    let r = cfg.reference_missing(ctx.feature) as f64 / reference_rows as f64;
    let w = missing as f64 / rows as f64;
    let chi = chisquare(
        &[missing as f64, (rows - missing) as f64],
        &[r * rows as f64, (1.0 - r) * rows as f64],
    );
    let missing_signal = Signal {
        signal: SignalKind::Missing,
        test: "share".into(),
        statistic: Some((w - r).abs()),
        threshold: params
            .missing_threshold(reference_rows, rows, features)
            .and_then(finite),
        p_value: Some(chi.p_value),
        fired: false,
    };
    details.missing_share = w;
    details.reference_missing_share = r;
    details.signals = vec![distribution, missing_signal];
    eval.p_feature = feature_p_value(details.signals.iter().map(|s| s.p_value));
    eval.details = details;
    Ok(eval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{CsvSchema, Dataset};
    use crate::monitor::MonitorSpec;

    fn monitor(csv: &str, schema: &CsvSchema, window: usize) -> MonitorSpec {
        let ds = Dataset::from_csv_with(csv.as_bytes(), schema).unwrap();
        let params = Params {
            window,
            stride: window,
            ..Params::default()
        };
        MonitorSpec::new("m", &ds, params, 10).unwrap()
    }

    fn prepared(spec: &MonitorSpec, i: usize) -> FeatureReference {
        let mut v = spec.reference[i].clone();
        v.sort_by(f64::total_cmp);
        FeatureReference::new(spec.config.kind(i), v, spec.config.categories(i)).unwrap()
    }

    fn reference_csv() -> String {
        // x: 0..199 with every 10th missing; c: a 50%, b 30%, c 20%.
        let mut s = String::from("x,c\n");
        for i in 0..200 {
            let x = if i % 10 == 0 {
                String::new()
            } else {
                i.to_string()
            };
            let c = match i % 10 {
                0..=4 => "a",
                5..=7 => "b",
                _ => "c",
            };
            s.push_str(&format!("{x},{c}\n"));
        }
        s
    }

    #[test]
    fn categorical_counts_unseen_values_and_moves() {
        let spec = monitor(&reference_csv(), &CsvSchema::default(), 100);
        let r = prepared(&spec, 1);
        let t = KsThresholds::default();
        let ctx = Context {
            config: &spec.config,
            feature: 1,
            thresholds: &t,
        };
        // 40 a, 30 b, 10 c, 20 unseen (code 3).
        let mut w = vec![0.0; 40];
        w.extend([1.0; 30]);
        w.extend([2.0; 10]);
        w.extend([3.0; 20]);
        let e = evaluate(&r, &ctx, w).unwrap();
        // |0.4-0.5| + 0 + |0.1-0.2| + 0.2 = 0.4 -> TV 0.2
        assert!((e.statistic - 0.2).abs() < 1e-12, "{}", e.statistic);
        assert_eq!(e.details.unseen_share, Some(0.2));
        assert_eq!(e.details.top_category.as_deref(), Some(UNSEEN));
        assert_eq!(e.p_value, 0.0, "an unseen value has expected count 0");
        assert_eq!(e.details.signals[0].test, "tv");
        assert!(e.details.signals[0].threshold.is_some());
        assert_eq!(e.details.missing_share, 0.0);
        assert!(e.details.effects.wasserstein_normed.is_none());
        assert!(e.details.effects.psi.unwrap() > 0.0);
        // Unchanged frequencies: TV 0, chi-square p 1.
        let mut w = vec![0.0; 50];
        w.extend([1.0; 30]);
        w.extend([2.0; 20]);
        let e = evaluate(&r, &ctx, w).unwrap();
        assert_eq!(e.statistic, 0.0);
        assert!((e.p_value - 1.0).abs() < 1e-12);
        assert!(!e.flag(crate::Correction::Ert, 0.05, 2));
        assert!(evaluate(&r, &ctx, vec![7.0; 10]).is_err());
    }

    #[test]
    fn numeric_tests_present_values_and_the_missing_share() {
        let spec = monitor(&reference_csv(), &CsvSchema::default(), 100);
        let r = prepared(&spec, 0);
        let t = KsThresholds::default();
        let ctx = Context {
            config: &spec.config,
            feature: 0,
            thresholds: &t,
        };
        assert_eq!(spec.config.reference_missing(0), 20);
        // The same values, 60% missing instead of 10%.
        let mut w: Vec<f64> = (0..40).map(|i| (i * 5) as f64 + 1.0).collect();
        w.extend([f64::NAN; 60]);
        let e = evaluate(&r, &ctx, w).unwrap();
        assert_eq!(e.window_rows, 100);
        assert_eq!(e.details.missing_share, 0.6);
        assert!((e.details.reference_missing_share - 0.1).abs() < 1e-12);
        let miss = &e.details.signals[1];
        assert!((miss.statistic.unwrap() - 0.5).abs() < 1e-12);
        assert!(miss.exceeds(), "{miss:?}");
        assert!(e.flag(crate::Correction::Ert, 0.05, 2));
        assert!(!e.details.signals[0].exceeds());
        // The KS threshold is the one of 180 reference and 40 window values.
        let want = spec.config.params.ks_threshold(180, 40, 2);
        assert_eq!(e.details.signals[0].threshold, want);
        assert!(e.details.effects.wasserstein_normed.unwrap() < 0.2);
        // All missing: no distribution test, the missing signal still fires.
        let e = evaluate(&r, &ctx, vec![f64::NAN; 100]).unwrap();
        assert_eq!(e.details.signals[0].statistic, None);
        assert_eq!(e.method, "none");
        assert!(e.flag(crate::Correction::Ert, 0.05, 2));
        let mut d = e.details.clone();
        d.mark_fired(true, crate::Correction::Ert);
        assert_eq!(d.fired(), [SignalKind::Missing]);
    }
}
