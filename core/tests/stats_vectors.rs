//! Every case of `data/stats-vectors.json` (numpy/scipy values, see
//! `data/README-stats-vectors.md`) must match: chi-square statistics and p-values within
//! 1e-9 relative (or both p <= 1e-300), effect sizes within 1e-9 relative or 1e-12
//! absolute, bin edges and shares exactly.

use drift_core::stats::{
    chi2_sf, chisquare, jensen_shannon, psi, std_pop, wasserstein, wasserstein_normed, QuantileBins,
};
use serde::Deserialize;

/// The counts the generator asserts: a truncated or regenerated-smaller file fails here.
const CHI2_SF_CASES: usize = 208;
const CHISQUARE_CASES: usize = 170;
const NUMERIC_CASES: usize = 66;
const CATEGORICAL_CASES: usize = 40;

#[derive(Deserialize)]
struct Vectors {
    bins: usize,
    chi2_sf: Vec<Chi2SfCase>,
    chisquare: Vec<ChiSquareCase>,
    numeric: Vec<NumericCase>,
    categorical: Vec<CategoricalCase>,
}

#[derive(Deserialize)]
struct Chi2SfCase {
    x: f64,
    df: f64,
    sf: f64,
}

#[derive(Deserialize)]
struct ChiSquareCase {
    name: String,
    observed: Vec<f64>,
    expected: Vec<f64>,
    /// `None` stands for +inf.
    statistic: Option<f64>,
    p_value: f64,
    df: usize,
}

#[derive(Deserialize)]
struct NumericCase {
    name: String,
    reference: Vec<f64>,
    current: Vec<f64>,
    wasserstein: f64,
    std_reference: f64,
    wasserstein_normed: f64,
    edges: Vec<f64>,
    reference_shares: Vec<f64>,
    current_shares: Vec<f64>,
    psi: f64,
    jensenshannon: f64,
}

#[derive(Deserialize)]
struct CategoricalCase {
    name: String,
    reference_shares: Vec<f64>,
    current_shares: Vec<f64>,
    psi: f64,
    jensenshannon: f64,
}

fn vectors() -> Vectors {
    match serde_json::from_str(include_str!("data/stats-vectors.json")) {
        Ok(v) => v,
        Err(e) => panic!("cannot read the vectors: {e}"),
    }
}

/// Relative error of `got` against `want` (0 when both are the same infinity).
fn relative(got: f64, want: f64) -> f64 {
    if got == want {
        0.0
    } else {
        (got - want).abs() / want.abs()
    }
}

fn p_matches(got: f64, want: f64) -> bool {
    (got <= 1e-300 && want <= 1e-300) || relative(got, want) <= 1e-9
}

fn effect_matches(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-12 || relative(got, want) <= 1e-9
}

fn report(failures: &[String], cases: usize, what: &str) {
    assert!(
        failures.is_empty(),
        "{} of {cases} {what} cases differ from numpy/scipy:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn chi2_sf_matches_scipy_chdtrc() {
    let v = vectors();
    assert_eq!(v.chi2_sf.len(), CHI2_SF_CASES);
    let mut worst: f64 = 0.0;
    let mut failures = Vec::new();
    for c in &v.chi2_sf {
        let got = chi2_sf(c.x, c.df);
        if !p_matches(got, c.sf) {
            failures.push(format!(
                "chi2_sf({}, {}) = {got:e}, scipy {:e}",
                c.x, c.df, c.sf
            ));
        } else if c.sf > 1e-300 {
            worst = worst.max(relative(got, c.sf));
        }
    }
    report(&failures, v.chi2_sf.len(), "chi2.sf");
    eprintln!("chi2_sf: worst relative error {worst:e}");
}

#[test]
fn chisquare_matches_scipy() {
    let v = vectors();
    assert_eq!(v.chisquare.len(), CHISQUARE_CASES);
    let (mut worst_statistic, mut worst_p): (f64, f64) = (0.0, 0.0);
    let mut failures = Vec::new();
    for c in &v.chisquare {
        let got = chisquare(&c.observed, &c.expected);
        let want_statistic = c.statistic.unwrap_or(f64::INFINITY);
        let mut problems = Vec::new();
        let e = relative(got.statistic, want_statistic);
        // Written so that a NaN statistic counts as a mismatch.
        if !(e <= 1e-9 || (got.statistic == 0.0 && want_statistic == 0.0)) {
            problems.push(format!("statistic {} != {}", got.statistic, want_statistic));
        } else if want_statistic.is_finite() && want_statistic != 0.0 {
            worst_statistic = worst_statistic.max(e);
        }
        if !p_matches(got.p_value, c.p_value) {
            problems.push(format!("p {:e} != {:e}", got.p_value, c.p_value));
        } else if c.p_value > 1e-300 {
            worst_p = worst_p.max(relative(got.p_value, c.p_value));
        }
        if got.df != c.df {
            problems.push(format!("df {} != {}", got.df, c.df));
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", c.name, problems.join("; ")));
        }
    }
    report(&failures, v.chisquare.len(), "chisquare");
    eprintln!("chisquare: worst relative error statistic {worst_statistic:e}, p {worst_p:e}");
}

#[test]
fn numeric_effects_match_numpy_and_scipy() {
    let v = vectors();
    assert_eq!(v.numeric.len(), NUMERIC_CASES);
    let mut failures = Vec::new();
    let mut worst: f64 = 0.0;
    for c in &v.numeric {
        let mut problems = Vec::new();
        let mut check = |what: &str, got: f64, want: f64| {
            if !effect_matches(got, want) {
                problems.push(format!("{what} {got:e} != {want:e}"));
            } else if want != 0.0 {
                worst = worst.max(relative(got, want));
            }
        };
        check(
            "wasserstein",
            wasserstein(&c.reference, &c.current),
            c.wasserstein,
        );
        check("std", std_pop(&c.reference), c.std_reference);
        check(
            "wasserstein_normed",
            wasserstein_normed(&c.reference, &c.current),
            c.wasserstein_normed,
        );
        let bins = QuantileBins::new(&c.reference, v.bins);
        let current_shares = bins.shares(&c.current);
        check("psi", psi(bins.reference_shares(), &current_shares), c.psi);
        check(
            "jensenshannon",
            jensen_shannon(bins.reference_shares(), &current_shares),
            c.jensenshannon,
        );
        if bins.edges() != c.edges.as_slice() {
            problems.push(format!("edges {:?} != {:?}", bins.edges(), c.edges));
        }
        if bins.reference_shares() != c.reference_shares.as_slice() {
            problems.push(format!(
                "reference shares {:?} != {:?}",
                bins.reference_shares(),
                c.reference_shares
            ));
        }
        if current_shares != c.current_shares {
            problems.push(format!(
                "current shares {current_shares:?} != {:?}",
                c.current_shares
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", c.name, problems.join("; ")));
        }
    }
    report(&failures, v.numeric.len(), "numeric");
    eprintln!("numeric effects: worst relative error {worst:e}");
}

#[test]
fn categorical_effects_match_the_python_reference() {
    let v = vectors();
    assert_eq!(v.categorical.len(), CATEGORICAL_CASES);
    let mut failures = Vec::new();
    let mut worst: f64 = 0.0;
    for c in &v.categorical {
        let got_psi = psi(&c.reference_shares, &c.current_shares);
        let got_js = jensen_shannon(&c.reference_shares, &c.current_shares);
        for (got, want) in [(got_psi, c.psi), (got_js, c.jensenshannon)] {
            if want != 0.0 && effect_matches(got, want) {
                worst = worst.max(relative(got, want));
            }
        }
        if !effect_matches(got_psi, c.psi) {
            failures.push(format!("{}: psi {got_psi:e} != {:e}", c.name, c.psi));
        }
        if !effect_matches(got_js, c.jensenshannon) {
            failures.push(format!(
                "{}: jensenshannon {got_js:e} != {:e}",
                c.name, c.jensenshannon
            ));
        }
    }
    report(&failures, v.categorical.len(), "categorical");
    eprintln!("categorical effects: worst relative error {worst:e}");
}
