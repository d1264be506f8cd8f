//! Statistics for the signals the KS test does not cover: categorical features (Pearson's
//! chi-square, total variation), the share of missing values, and the effect sizes users of
//! Evidently expect next to a drift verdict (normed Wasserstein distance, PSI,
//! Jensen-Shannon distance).
//!
//! As in [`crate::ks`], the numbers are those of the Python tools users compare with
//! (scipy, numpy, Evidently), checked case by case in `tests/stats_vectors.rs`. Effect
//! sizes are reported, never alarmed on: their scale depends on the binning and the sample
//! sizes, so a fixed cut-off on them has no false-alarm guarantee over a stream. The alarm
//! thresholds for the new signals are in [`bounds`].

pub mod bounds;
pub mod chisq;
pub mod effects;

pub use bounds::{missing_threshold, tv_threshold};
pub use chisq::{chi2_sf, chisquare, ChiSquare};
pub use effects::{jensen_shannon, psi, std_pop, wasserstein, wasserstein_normed, QuantileBins};
