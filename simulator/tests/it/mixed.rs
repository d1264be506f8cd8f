//! Mixed references (categorical features, missing values): the Palmer penguins data, its
//! example monitor, the row model fit on it and the categorical and missing-value
//! scenarios, without a server.

use drift_core::{CsvSchema, Dataset, FeatureKind, MonitorSpec, Params};
use drift_sim::copula::Copula;
use drift_sim::generator::Generator;
use drift_sim::reference;
use drift_sim::scenario::{DriftKind, Scenario, ScenarioSpec, SwapValues};
use drift_sim::target::{MonitorInfo, MonitorParams};
use drift_sim::Args;
use std::path::{Path, PathBuf};

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(file)
}

/// data/penguins.csv as the example monitor reads it: `year` declared categorical.
fn penguins() -> Dataset {
    let schema = CsvSchema {
        categorical: vec!["year".into()],
        ..CsvSchema::default()
    };
    let file = std::fs::File::open(data("penguins.csv")).unwrap();
    Dataset::from_csv_with(file, &schema).unwrap()
}

fn index(ds: &Dataset, name: &str) -> usize {
    ds.names().iter().position(|n| n == name).unwrap()
}

/// Shares of each code `0..k` among the present values, and the missing share.
fn shares(values: &[f64], k: usize) -> (Vec<f64>, f64) {
    let present: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    let mut counts = vec![0.0; k];
    for v in &present {
        counts[*v as usize] += 1.0;
    }
    let n = present.len() as f64;
    (
        counts.iter().map(|c| c / n).collect(),
        (values.len() - present.len()) as f64 / values.len() as f64,
    )
}

fn missing_share(values: &[f64]) -> f64 {
    values.iter().filter(|v| v.is_nan()).count() as f64 / values.len() as f64
}

/// `n` rows from `g`, as columns.
fn columns(g: &mut Generator, n: usize) -> Vec<Vec<f64>> {
    let rows = g.next_batch(n).rows;
    (0..rows[0].len())
        .map(|j| rows.iter().map(|r| r[j]).collect())
        .collect()
}

/// |observed − expected| within 4.5 binomial standard errors of `n` draws (plus a hair
/// for shares at 0 or 1).
fn close(observed: f64, expected: f64, n: usize, what: &str) {
    let se = (expected * (1.0 - expected) / n as f64).sqrt();
    assert!(
        (observed - expected).abs() <= 4.5 * se + 1e-9,
        "{what}: {observed:.4} vs {expected:.4} (se {se:.4})"
    );
}

fn spec(
    kind: DriftKind,
    features: Vec<usize>,
    magnitude: f64,
    category: Option<&str>,
) -> ScenarioSpec {
    ScenarioSpec {
        kind,
        features,
        magnitude,
        after: 0,
        ramp_rows: 1,
        swap: SwapValues::Standardized,
        category: category.map(str::to_string),
    }
}

#[test]
fn penguins_reads_with_mixed_kinds_and_missing_values() {
    let ds = penguins();
    assert_eq!(ds.n_rows(), 344);
    assert_eq!(
        ds.names(),
        [
            "species",
            "island",
            "bill_length_mm",
            "bill_depth_mm",
            "flipper_length_mm",
            "body_mass_g",
            "sex",
            "year"
        ]
    );
    use FeatureKind::{Categorical as C, Numeric as N};
    assert_eq!(ds.kinds(), [C, C, N, N, N, N, C, C]);
    assert_eq!(ds.categories()[0], ["Adelie", "Chinstrap", "Gentoo"]);
    assert_eq!(ds.categories()[1], ["Biscoe", "Dream", "Torgersen"]);
    assert_eq!(ds.categories()[6], ["female", "male"]);
    assert_eq!(ds.categories()[7], ["2007", "2008", "2009"]);
    let missing: Vec<usize> = ds
        .columns()
        .iter()
        .map(|c| c.iter().filter(|v| v.is_nan()).count())
        .collect();
    assert_eq!(missing, [0, 0, 2, 2, 2, 2, 11, 0]);
    // Without the declaration, year is inferred numeric.
    let file = std::fs::File::open(data("penguins.csv")).unwrap();
    let inferred = Dataset::from_csv(file, &[]).unwrap();
    assert_eq!(inferred.kinds()[7], N);
}

#[test]
fn the_example_monitor_is_accepted_under_the_default_ert_rule() {
    let ds = penguins();
    let params = Params {
        window: 300,
        stride: 50,
        ..Params::default()
    };
    let spec = MonitorSpec::new("penguins", &ds, params.clone(), 1024).unwrap();
    let c = &spec.config;
    assert_eq!(c.thresholds.len(), 8);
    for (f, t) in c.features.iter().zip(&c.thresholds) {
        eprintln!("{f}: threshold {t:.3}");
        assert!(*t > 0.0 && *t < 1.0, "{f}: {t}");
    }
    // A much smaller window makes a threshold unreachable, which is refused.
    let small = Params {
        window: 5,
        stride: 5,
        ..Params::default()
    };
    let e = MonitorSpec::new("penguins", &ds, small, 1024).unwrap_err();
    assert!(e.to_string().contains("larger window"), "{e}");
    // The config file says the same (it is what `drift-api --monitors-config` reads).
    let specs = drift_api::monitors_file::load(&data("monitors.toml"), &Params::default()).unwrap();
    let penguins = specs.iter().find(|s| s.config.name == "penguins").unwrap();
    assert_eq!(penguins.config.params, params);
    assert_eq!(penguins.config.version, c.version);
    assert_eq!(penguins.config.kinds, c.kinds);
}

#[test]
fn a_no_drift_stream_keeps_the_reference_shares_and_missing_shares() {
    let ds = penguins();
    let n = 40_000;
    let mut g = Generator::new(Copula::fit(&ds).unwrap(), None, 21);
    let generated = columns(&mut g, n);
    for (j, name) in ds.names().iter().enumerate() {
        let want_missing = missing_share(&ds.columns()[j]);
        close(
            missing_share(&generated[j]),
            want_missing,
            n,
            &format!("{name} missing"),
        );
        if ds.kinds()[j] == FeatureKind::Categorical {
            let k = ds.categories()[j].len();
            let (want, _) = shares(&ds.columns()[j], k);
            let (got, _) = shares(&generated[j], k);
            for c in 0..k {
                close(
                    got[c],
                    want[c],
                    n,
                    &format!("{name}={}", ds.categories()[j][c]),
                );
            }
        } else {
            // Present values are numbers, never codes of anything.
            assert!(generated[j].iter().all(|v| v.is_nan() || v.is_finite()));
        }
    }
    // Labels name every code; numeric columns have none.
    let labels = g.labels();
    assert_eq!(labels[0].as_deref(), Some(&ds.categories()[0][..]));
    assert!(labels[2].is_none());
}

#[test]
fn a_population_draw_moves_the_shares_by_the_reference_noise_only() {
    let ds = penguins();
    let n = 40_000;
    // Across seeds the population's shares scatter around the reference's by about the
    // reference's own sampling error (344 rows), never further than a few of it.
    for seed in 0..5 {
        let mut g = Generator::new(Copula::fit_population(&ds, seed).unwrap(), None, seed);
        let generated = columns(&mut g, n);
        for j in [0, 1, 6, 7] {
            let k = ds.categories()[j].len();
            let (want, want_missing) = shares(&ds.columns()[j], k);
            let (got, got_missing) = shares(&generated[j], k);
            for c in 0..k {
                close(
                    got[c],
                    want[c],
                    344,
                    &format!("seed {seed}, {}", ds.names()[j]),
                );
            }
            close(got_missing, want_missing, 344, "missing");
        }
    }
}

#[test]
fn category_share_moves_one_category_and_rescales_the_others() {
    let ds = penguins();
    let model = Copula::fit(&ds).unwrap();
    let species = index(&ds, "species");
    let (p, _) = shares(&ds.columns()[species], 3);
    // Chinstrap: 68 / 344 = 0.198 -> 0.45.
    let s = Scenario::for_model(
        spec(
            DriftKind::CategoryShare,
            vec![species],
            0.45,
            Some("Chinstrap"),
        ),
        &model,
    )
    .unwrap();
    assert_eq!(s.categories(), ["Chinstrap"]);
    let n = 30_000;
    let mut g = Generator::new(model.clone(), Some(s), 5);
    let got = shares(&columns(&mut g, n)[species], 3).0;
    close(got[1], 0.45, n, "Chinstrap");
    let rest = 1.0 - p[1];
    close(got[0], p[0] / rest * 0.55, n, "Adelie");
    close(got[2], p[2] / rest * 0.55, n, "Gentoo");

    // Default category: the most frequent (Adelie), here down to 0.2.
    let s = Scenario::for_model(
        spec(DriftKind::CategoryShare, vec![species], 0.2, None),
        &model,
    )
    .unwrap();
    assert_eq!(s.categories(), ["Adelie"]);
    let mut g = Generator::new(model.clone(), Some(s), 6);
    close(
        shares(&columns(&mut g, n)[species], 3).0[0],
        0.2,
        n,
        "Adelie",
    );

    // Errors: a category the feature lacks, a share out of [0, 1], a numeric feature.
    let bad = |sp| {
        Scenario::for_model(sp, &model)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let e = bad(spec(
        DriftKind::CategoryShare,
        vec![species],
        0.5,
        Some("Emperor"),
    ));
    assert!(e.contains("Emperor") && e.contains("Gentoo"), "{e}");
    let e = bad(spec(DriftKind::CategoryShare, vec![species], 1.5, None));
    assert!(e.contains("[0, 1]"), "{e}");
    let e = bad(spec(
        DriftKind::CategoryShare,
        vec![index(&ds, "body_mass_g")],
        0.5,
        None,
    ));
    assert!(e.contains("categorical"), "{e}");
    let e = bad(spec(DriftKind::Shift, vec![species], 1.0, None));
    assert!(e.contains("numeric") && e.contains("species"), "{e}");
}

#[test]
fn new_category_appears_with_its_share() {
    let ds = penguins();
    let model = Copula::fit(&ds).unwrap();
    let island = index(&ds, "island");
    let year = index(&ds, "year");
    let (p, _) = shares(&ds.columns()[island], 3);
    let s = Scenario::for_model(
        spec(
            DriftKind::NewCategory,
            vec![island, year],
            0.25,
            Some("Anvers"),
        ),
        &model,
    )
    .unwrap();
    let n = 30_000;
    let mut g = Generator::new(model.clone(), Some(s), 8);
    let labels = g.labels();
    assert_eq!(
        labels[island].as_deref().unwrap(),
        ["Biscoe", "Dream", "Torgersen", "Anvers"]
    );
    assert_eq!(labels[year].as_deref().unwrap().last().unwrap(), "Anvers");
    let cols = columns(&mut g, n);
    let got = shares(&cols[island], 4).0;
    close(got[3], 0.25, n, "Anvers");
    for c in 0..3 {
        close(got[c], p[c] * 0.75, n, &ds.categories()[island][c]);
    }
    close(shares(&cols[year], 4).0[3], 0.25, n, "year Anvers");
    // The default name; a name the reference has is refused.
    let s = Scenario::for_model(
        spec(DriftKind::NewCategory, vec![island], 0.1, None),
        &model,
    )
    .unwrap();
    assert_eq!(s.categories(), ["unseen"]);
    let e = Scenario::for_model(
        spec(DriftKind::NewCategory, vec![year], 0.1, Some("2008.0")),
        &model,
    )
    .map(|_| ())
    .unwrap_err();
    assert!(e.to_string().contains("already a category"), "{e}");
}

#[test]
fn missing_raises_the_missing_share_and_changes_nothing_else() {
    let ds = penguins();
    let model = Copula::fit(&ds).unwrap();
    let bill = index(&ds, "bill_length_mm");
    let sex = index(&ds, "sex");
    let species = index(&ds, "species");
    let after = 500;
    let s = Scenario::for_model(
        ScenarioSpec {
            after,
            ..spec(DriftKind::Missing, vec![bill, sex, species], 0.3, None)
        },
        &model,
    )
    .unwrap();
    let n = 20_000;
    let mut plain = Generator::new(model.clone(), None, 13);
    let mut drifted = Generator::new(model, Some(s), 13);
    let a = plain.next_batch(after as usize + n).rows;
    let b = drifted.next_batch(after as usize + n).rows;
    // Before the onset the rows are those of the same seed without drift; after it, only
    // the drift features differ, and only where a value became missing.
    let same = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
    for (k, (x, y)) in a.iter().zip(&b).enumerate() {
        for j in 0..x.len() {
            let drifts = k >= after as usize && [bill, sex, species].contains(&j);
            assert!(
                same(x[j], y[j]) || (drifts && y[j].is_nan()),
                "row {k}, column {j}: {} vs {}",
                x[j],
                y[j]
            );
        }
    }
    for j in [bill, sex, species] {
        let col: Vec<f64> = b[after as usize..].iter().map(|r| r[j]).collect();
        close(missing_share(&col), 0.3, n, &ds.names()[j]);
    }
    assert!(Scenario::for_model(
        spec(DriftKind::Missing, vec![bill], -0.1, None),
        &Copula::fit(&ds).unwrap()
    )
    .is_err());
}

#[test]
fn numeric_kinds_still_work_on_features_with_missing_values() {
    let ds = penguins();
    let model = Copula::fit(&ds).unwrap();
    let mass = index(&ds, "body_mass_g");
    let (means, sds) = model.means_sds();
    let s = Scenario::for_model(spec(DriftKind::Shift, vec![mass], 1.0, None), &model).unwrap();
    let n = 20_000;
    let mut g = Generator::new(model, Some(s), 3);
    let col = &columns(&mut g, n)[mass];
    let present: Vec<f64> = col.iter().copied().filter(|v| !v.is_nan()).collect();
    let mean = present.iter().sum::<f64>() / present.len() as f64;
    assert!(
        (mean - (means[mass] + sds[mass])).abs() < 0.05 * sds[mass],
        "{mean}"
    );
    close(missing_share(col), 2.0 / 344.0, n, "missing");
}

/// The monitor as `GET /v1/monitors/penguins` describes it.
fn penguins_info() -> MonitorInfo {
    let ds = penguins();
    let spec = MonitorSpec::new(
        "penguins",
        &ds,
        Params {
            window: 300,
            stride: 50,
            ..Params::default()
        },
        1024,
    )
    .unwrap();
    let c = &spec.config;
    MonitorInfo {
        name: "penguins".into(),
        version: c.version.clone(),
        features: c.features.clone(),
        params: MonitorParams {
            window: 300,
            stride: 50,
            alpha: 0.05,
            correction: "ert".into(),
        },
        rows: 0,
        stale_jobs: 0,
        kinds: c
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| (f.clone(), c.kind(i)))
            .collect(),
        categories: c
            .features
            .iter()
            .enumerate()
            .filter(|(i, _)| c.kind(*i) == FeatureKind::Categorical)
            .map(|(i, f)| (f.clone(), c.categories(i).to_vec()))
            .collect(),
    }
}

#[test]
fn the_reference_is_read_with_the_monitors_kinds_and_features() {
    let path = data("penguins.csv");
    let path = path.to_str().unwrap();
    let mut info = penguins_info();
    // year is categorical because the monitor says so, without --categorical.
    let r = reference::load(
        &Args::parse_from_iter(["--reference", path]).unwrap(),
        &info,
    )
    .unwrap();
    assert_eq!(r.dataset.kinds(), penguins().kinds());
    assert_eq!(r.dataset.categories()[7], ["2007", "2008", "2009"]);

    // A monitor of a subset: the other columns are left out.
    info.features.retain(|f| f != "island" && f != "sex");
    let r = reference::load(
        &Args::parse_from_iter(["--reference", path]).unwrap(),
        &info,
    )
    .unwrap();
    assert_eq!(r.dataset.names().len(), 6);

    // A server without kinds: --categorical declares year.
    info.kinds.clear();
    info.categories.clear();
    let args = Args::parse_from_iter(["--reference", path, "--categorical", "year"]).unwrap();
    let r = reference::load(&args, &info).unwrap();
    assert_eq!(r.dataset.kinds()[5], FeatureKind::Categorical);

    // Contradicting the monitor, or missing a feature, is an error before any row.
    let info = penguins_info();
    let args = Args::parse_from_iter(["--reference", path, "--numeric", "year"]).unwrap();
    let e = reference::load(&args, &info).map(|_| ()).unwrap_err();
    assert!(
        format!("{e:#}").contains("monitor \"penguins\" has it categorical"),
        "{e:#}"
    );
    let args = Args::parse_from_iter(["--reference", path, "--exclude", "sex"]).unwrap();
    let e = reference::load(&args, &info).map(|_| ()).unwrap_err();
    assert!(format!("{e:#}").contains("feature \"sex\""), "{e:#}");
    let e = reference::load(&Args::parse_from_iter::<_, &str>([]).unwrap(), &info)
        .map(|_| ())
        .unwrap_err();
    assert!(format!("{e:#}").contains("--reference"), "{e:#}");
}
