//! How often the monitor's test rejects "no drift" windows under each row model: the
//! numbers behind the README's choice of the default model.
//!
//! `cargo run --release -p drift-sim --example null_calibration [seeds] [windows per seed]`

use drift_core::ks::{ks_2samp, Alternative, Method};
use drift_core::Dataset;
use drift_sim::copula::Copula;
use drift_sim::generator::Generator;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().map_or(Ok(60), |s| s.parse())?;
    let per_seed: usize = args.next().map_or(Ok(5), |s| s.parse())?;
    let ds = Dataset::breast_cancer()?;
    let d = ds.names().len();
    let bonferroni = 0.05 / d as f64;
    for model in ["reference", "population"] {
        let (mut tests, mut p05, mut p01, mut pb, mut windows_flagged, mut seeds_flagged) =
            (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        for seed in 0..seeds {
            let copula = match model {
                "reference" => Copula::fit(&ds)?,
                _ => Copula::fit_population(&ds, seed)?,
            };
            let mut generator = Generator::new(copula, None, seed);
            let mut seed_flagged = false;
            // Disjoint windows of 500 rows (the default window).
            for _ in 0..per_seed {
                let batch = generator.next_batch(500);
                let mut flagged = false;
                for (j, reference) in ds.columns().iter().enumerate() {
                    let x: Vec<f64> = batch.rows.iter().map(|r| r[j]).collect();
                    let p = ks_2samp(&x, reference, Alternative::TwoSided, Method::Auto)?.pvalue;
                    tests += 1;
                    p05 += u64::from(p < 0.05);
                    p01 += u64::from(p < 0.01);
                    if p <= bonferroni {
                        pb += 1;
                        flagged = true;
                    }
                }
                windows_flagged += u64::from(flagged);
                seed_flagged |= flagged;
            }
            seeds_flagged += u64::from(seed_flagged);
        }
        let share = |k: u64| 100.0 * k as f64 / tests as f64;
        println!(
            "{model:>10}: {tests} feature tests: p<0.05 {:.2} %, p<0.01 {:.2} %, p<=0.05/{d} {:.3} %; \
             windows with a flag {windows_flagged}/{}; seeds with a flag {seeds_flagged}/{seeds}",
            share(p05),
            share(p01),
            share(pb),
            seeds * per_seed as u64,
        );
    }
    Ok(())
}
