//! The row model and the drift scenarios, without a server.

use drift_core::ks::{ks_2samp, Alternative, Method};
use drift_core::Dataset;
use drift_sim::copula::Copula;
use drift_sim::generator::Generator;
use drift_sim::scenario::{DriftKind, Scenario, SwapValues};
use std::collections::HashSet;

fn reference() -> Dataset {
    Dataset::breast_cancer().unwrap()
}

fn copula() -> Copula {
    Copula::fit(&reference()).unwrap()
}

fn index(name: &str) -> usize {
    reference().names().iter().position(|n| n == name).unwrap()
}

fn scenario(kind: DriftKind, features: &[&str], magnitude: f64, after: u64) -> Scenario {
    let c = copula();
    let (means, sds) = c.means_sds();
    Scenario::new(
        kind,
        features.iter().map(|f| index(f)).collect(),
        magnitude,
        after,
        1000,
        SwapValues::Standardized,
        means,
        sds,
    )
    .unwrap()
}

/// `n` rows as columns (reference order).
fn columns(generator: &mut Generator, n: usize) -> Vec<Vec<f64>> {
    let batch = generator.next_batch(n);
    let d = batch.rows[0].len();
    (0..d)
        .map(|j| batch.rows.iter().map(|r| r[j]).collect())
        .collect()
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn sd(x: &[f64]) -> f64 {
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let (mx, my) = (mean(x), mean(y));
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && x[order[j]] == x[order[i]] {
            j += 1;
        }
        for &k in &order[i..j] {
            r[k] = (i + j + 1) as f64 / 2.0;
        }
        i = j;
    }
    r
}

fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

#[test]
fn the_same_seed_gives_the_same_rows() {
    let mut a = Generator::new(copula(), None, 7);
    let mut b = Generator::new(copula(), None, 7);
    let mut c = Generator::new(copula(), None, 8);
    let (x, y, z) = (a.next_batch(300), b.next_batch(300), c.next_batch(300));
    assert_eq!(x, y);
    assert_ne!(x.rows, z.rows);
    // Batch boundaries do not change the stream.
    let mut d = Generator::new(copula(), None, 7);
    let mut rows = d.next_batch(120).rows;
    rows.extend(d.next_batch(180).rows);
    assert_eq!(rows, x.rows);
}

#[test]
fn no_drift_marginals_match_the_reference() {
    let ds = reference();
    let mut g = Generator::new(copula(), None, 2024);
    let generated = columns(&mut g, 2000);
    let level = 0.05 / ds.names().len() as f64;
    let mut worst = (String::new(), 1.0);
    for ((name, reference), sample) in ds.names().iter().zip(ds.columns()).zip(&generated) {
        let r = ks_2samp(sample, reference, Alternative::TwoSided, Method::Auto).unwrap();
        assert!(
            r.pvalue > level,
            "{name}: KS rejects the generated marginal (D = {}, p = {})",
            r.statistic,
            r.pvalue
        );
        if r.pvalue < worst.1 {
            worst = (name.clone(), r.pvalue);
        }
        // Same location and spread.
        let (m, s) = (mean(reference), sd(reference));
        assert!((mean(sample) - m).abs() < 0.1 * s, "{name}: mean moved");
        assert!((sd(sample) / s - 1.0).abs() < 0.15, "{name}: sd changed");
    }
    eprintln!("lowest p-value: {worst:?}");
}

#[test]
fn a_population_draw_matches_the_reference_within_sampling_noise() {
    // Seed 4's population: no feature's 2000-row sample is rejected at the Bonferroni level
    // (a population draw is a plausible population, so some seeds' would be, at the level's
    // rate: that is the point of the model).
    let ds = reference();
    let mut g = Generator::new(Copula::fit_population(&ds, 4).unwrap(), None, 4);
    let generated = columns(&mut g, 2000);
    let level = 0.05 / ds.names().len() as f64;
    for ((name, reference), sample) in ds.names().iter().zip(ds.columns()).zip(&generated) {
        let r = ks_2samp(sample, reference, Alternative::TwoSided, Method::Auto).unwrap();
        assert!(r.pvalue > level, "{name}: p = {}", r.pvalue);
    }
}

/// Share of 500-row windows' per-feature KS tests with p < 0.05, over seeds 0..seeds.
fn rejection_share(population: bool, seeds: u64) -> f64 {
    let ds = reference();
    let (mut rejected, mut tests) = (0, 0);
    for seed in 0..seeds {
        let copula = if population {
            Copula::fit_population(&ds, seed).unwrap()
        } else {
            copula()
        };
        let mut g = Generator::new(copula, None, seed);
        let window = columns(&mut g, 500);
        for (x, reference) in window.iter().zip(ds.columns()) {
            let p = ks_2samp(x, reference, Alternative::TwoSided, Method::Auto)
                .unwrap()
                .pvalue;
            rejected += usize::from(p < 0.05);
            tests += 1;
        }
    }
    rejected as f64 / tests as f64
}

#[test]
fn population_windows_reject_at_about_the_nominal_rate_and_reference_ones_almost_never() {
    // Windows of live data and the reference are two samples of one population: the test
    // should reject about 5 % of them at p < 0.05 (a little less: KS is conservative on
    // discrete data). Windows drawn from the reference's own distribution sit much closer.
    let population = rejection_share(true, 20);
    let smoothed_reference = rejection_share(false, 20);
    assert!(
        (0.015..0.10).contains(&population),
        "population model rejects {population}"
    );
    assert!(
        smoothed_reference < 0.01,
        "reference model rejects {smoothed_reference}"
    );
}

#[test]
fn values_are_not_copies_of_reference_values_and_stay_positive() {
    let ds = reference();
    let mut g = Generator::new(copula(), None, 11);
    let generated = columns(&mut g, 2000);
    for ((name, reference), sample) in ds.names().iter().zip(ds.columns()).zip(&generated) {
        let known: HashSet<u64> = reference.iter().map(|v| v.to_bits()).collect();
        let zeros_ref =
            reference.iter().filter(|v| **v == 0.0).count() as f64 / reference.len() as f64;
        let zeros_gen = sample.iter().filter(|v| **v == 0.0).count() as f64 / sample.len() as f64;
        // Exact zeros are the data's own point mass (no concavity at all), kept at its share.
        assert!(
            (zeros_gen - zeros_ref).abs() < 0.015,
            "{name}: {zeros_gen} zeros vs {zeros_ref}"
        );
        let copies = sample
            .iter()
            .filter(|v| **v != 0.0 && known.contains(&v.to_bits()))
            .count();
        assert_eq!(copies, 0, "{name}: generated values copy reference values");
        let distinct: HashSet<u64> = sample.iter().map(|v| v.to_bits()).collect();
        assert!(
            distinct.len() as f64 > 0.95 * sample.len() as f64 * (1.0 - zeros_ref),
            "{name}: ties"
        );
        let min_ref = reference.iter().copied().fold(f64::INFINITY, f64::min);
        for v in sample {
            assert!(v.is_finite());
            if min_ref > 0.0 {
                assert!(*v > 0.0, "{name}: positive feature produced {v}");
            } else {
                assert!(*v >= 0.0, "{name}: non-negative feature produced {v}");
            }
        }
    }
}

#[test]
fn correlations_are_roughly_kept() {
    let ds = reference();
    let mut g = Generator::new(copula(), None, 5);
    let generated = columns(&mut g, 2000);
    let (r, p, t) = (
        index("mean_radius"),
        index("mean_perimeter"),
        index("mean_texture"),
    );
    assert!(pearson(&generated[r], &generated[p]) > 0.9);
    // Every pair's rank correlation is close to the reference's.
    let d = ds.names().len();
    let mut worst: f64 = 0.0;
    for i in 0..d {
        for j in 0..i {
            let a = spearman(&ds.columns()[i], &ds.columns()[j]);
            let b = spearman(&generated[i], &generated[j]);
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst < 0.12, "a rank correlation moved by {worst}");
    let weak = pearson(&generated[r], &generated[t]);
    let weak_ref = pearson(&ds.columns()[r], &ds.columns()[t]);
    assert!((weak - weak_ref).abs() < 0.1, "{weak} vs {weak_ref}");
}

#[test]
fn a_shift_moves_the_mean_by_magnitude_times_sd() {
    let ds = reference();
    let r = index("mean_radius");
    let s = sd(&ds.columns()[r]);
    let mut plain = Generator::new(copula(), None, 3);
    let mut shifted = Generator::new(
        copula(),
        Some(scenario(DriftKind::Shift, &["mean_radius"], 1.0, 0)),
        3,
    );
    let a = columns(&mut plain, 3000);
    let b = columns(&mut shifted, 3000);
    // Same draws, so the shift is exact row by row and leaves the other features alone.
    for (x, y) in a[r].iter().zip(&b[r]) {
        assert!((y - x - s).abs() < 1e-9);
    }
    assert_eq!(a[index("mean_perimeter")], b[index("mean_perimeter")]);
    let moved = mean(&b[r]) - mean(&ds.columns()[r]);
    assert!(
        (moved / s - 1.0).abs() < 0.1,
        "mean moved by {} sd",
        moved / s
    );
    // And the monitor's test sees it.
    let window = &b[r][..500];
    let ks = ks_2samp(
        window,
        &ds.columns()[r],
        Alternative::TwoSided,
        Method::Auto,
    )
    .unwrap();
    assert!(ks.pvalue < 1e-10);
}

#[test]
fn the_onset_is_row_after_and_batches_say_where() {
    let mut g = Generator::new(
        copula(),
        Some(scenario(DriftKind::Shift, &["mean_radius"], 1.0, 120)),
        1,
    );
    let a = g.next_batch(100);
    assert_eq!(a.first_drifted, None);
    let b = g.next_batch(50);
    assert_eq!((b.first_row, b.first_drifted), (100, Some(20)));
    let c = g.next_batch(50);
    assert_eq!(c.first_drifted, Some(0));
}

#[test]
fn scale_swap_and_gradual() {
    let ds = reference();
    let r = index("mean_radius");
    let t = index("mean_texture");
    let (sr, st) = (sd(&ds.columns()[r]), sd(&ds.columns()[t]));
    let (mr, mt) = (mean(&ds.columns()[r]), mean(&ds.columns()[t]));

    let mut g = Generator::new(
        copula(),
        Some(scenario(DriftKind::Scale, &["mean_radius"], 1.0, 0)),
        9,
    );
    let x = columns(&mut g, 3000);
    assert!(
        (sd(&x[r]) / sr - 2.0).abs() < 0.2,
        "sd ratio {}",
        sd(&x[r]) / sr
    );
    assert!((mean(&x[r]) - mr).abs() < 0.2 * sr);

    let mut plain = Generator::new(copula(), None, 9);
    let mut g = Generator::new(
        copula(),
        Some(scenario(
            DriftKind::Swap,
            &["mean_radius", "mean_texture"],
            1.0,
            0,
        )),
        9,
    );
    let (a, b) = (columns(&mut plain, 500), columns(&mut g, 500));
    for i in 0..500 {
        assert!((b[r][i] - (mr + (a[t][i] - mt) / st * sr)).abs() < 1e-9);
        assert!((b[t][i] - (mt + (a[r][i] - mr) / sr * st)).abs() < 1e-9);
    }

    let mut plain = Generator::new(copula(), None, 4);
    let mut g = Generator::new(
        copula(),
        Some(scenario(DriftKind::Gradual, &["mean_radius"], 2.0, 100)),
        4,
    );
    let (a, b) = (columns(&mut plain, 1600), columns(&mut g, 1600));
    let added = |i: usize| (b[r][i] - a[r][i]) / sr;
    assert!(added(99).abs() < 1e-9, "before onset");
    assert!((added(100) - 2.0 / 1000.0).abs() < 1e-9);
    assert!((added(599) - 1.0).abs() < 1e-9, "half way");
    assert!((added(1099) - 2.0).abs() < 1e-9, "full");
    assert!((added(1599) - 2.0).abs() < 1e-9, "stays");
}
