//! The cost of one evaluation per feature kind, as workers run it (`evaluate::evaluate`:
//! the distribution and missing-share signals and the effect sizes), against the KS test
//! alone (what an evaluation cost before kinds), on a window of 500 rows against a
//! reference of 569: numeric without and with 10% missing values, and categorical with 4
//! and 50 categories.

use criterion::{criterion_group, criterion_main, Criterion};
use drift_core::evaluate::{evaluate, Context, FeatureReference, KsThresholds};
use drift_core::ks::{Alternative, Method, Reference};
use drift_core::{CsvSchema, Dataset, MonitorSpec, Params};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;

fn normal(rng: &mut StdRng) -> f64 {
    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// A monitor of one feature built from `reference` (CSV cells), the prepared reference,
/// and a window of 500 values encoded as windows hold them.
fn setup(
    cells: impl Fn(&mut StdRng) -> String,
    categorical: bool,
) -> (MonitorSpec, FeatureReference, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut csv = String::from("f\n");
    for _ in 0..569 {
        csv.push_str(&(cells(&mut rng) + "\n"));
    }
    let schema = CsvSchema {
        categorical: if categorical {
            vec!["f".into()]
        } else {
            Vec::new()
        },
        ..CsvSchema::default()
    };
    let ds = Dataset::from_csv_with(csv.as_bytes(), &schema).unwrap();
    let spec = MonitorSpec::new("bench", &ds, Params::default(), 1).unwrap();
    let mut sorted = spec.reference[0].clone();
    sorted.sort_by(f64::total_cmp);
    let r = FeatureReference::new(spec.config.kind(0), sorted, spec.config.categories(0)).unwrap();
    let codes = spec.config.codes();
    let window = (0..500)
        .map(|_| {
            let c = cells(&mut rng);
            match (&codes[0], c.is_empty()) {
                (_, true) => f64::NAN,
                (Some(map), false) => map.code(&c),
                (None, false) => c.parse().unwrap(),
            }
        })
        .collect();
    (spec, r, window)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("evaluation_500_vs_569");
    let numeric = |rng: &mut StdRng| format!("{}", normal(rng));
    let (spec, r, window) = setup(numeric, false);
    let FeatureReference::Numeric { ks, .. } = &r else {
        unreachable!()
    };
    let ks = Reference::from_sorted(ks.sorted().to_vec()).unwrap();
    g.bench_function("ks_test_alone", |b| {
        b.iter(|| {
            let mut w = window.clone();
            black_box(
                ks.evaluate(&mut w, Alternative::TwoSided, Method::Auto)
                    .unwrap(),
            )
        })
    });
    let t = KsThresholds::default();
    let ctx = Context {
        config: &spec.config,
        feature: 0,
        thresholds: &t,
    };
    g.bench_function("numeric", |b| {
        b.iter(|| black_box(evaluate(&r, &ctx, window.clone()).unwrap()))
    });
    let with_missing = |rng: &mut StdRng| {
        if rng.random::<f64>() < 0.1 {
            String::new()
        } else {
            format!("{}", normal(rng))
        }
    };
    for (name, spec_r_w) in [
        ("numeric_10pct_missing", setup(with_missing, false)),
        (
            "categorical_4",
            setup(
                |rng| ["a", "b", "c", "d"][rng.random_range(0..4)].into(),
                true,
            ),
        ),
        (
            "categorical_50",
            setup(|rng| format!("c{}", rng.random_range(0..50)), true),
        ),
    ] {
        let (spec, r, window) = spec_r_w;
        let t = KsThresholds::default();
        let ctx = Context {
            config: &spec.config,
            feature: 0,
            thresholds: &t,
        };
        g.bench_function(name, |b| {
            b.iter(|| black_box(evaluate(&r, &ctx, window.clone()).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
