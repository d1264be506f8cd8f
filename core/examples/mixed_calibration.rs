//! Calibration of the alarm on a mixed monitor, in process and on the code the workers run
//! (`Dataset::from_csv_with`, `MonitorSpec::new`, `evaluate::evaluate`, `Evaluation::flag`).
//!
//! The null truly holds: each reference is drawn from a known model (two numeric features
//! with 5% missing values, three categorical ones: strings with 3 categories, 3
//! categories, integer codes 1-4, and optionally a long-tailed one with `--tail`
//! categories) and the stream from the same model. It counts flagged rounds over
//! `--references` x `--rounds` rounds, then measures the detection delay of four drifts
//! (a category's share 0.2 -> 0.45, a new category at 20%, a missing share 5% -> 35%, a
//! shift between integer codes) and whether any other feature is flagged meanwhile.
//!
//! cargo run --release -p drift-core --example mixed_calibration -- [--references 20]
//!   [--rounds 5000] [--reference-rows 2000] [--window 500] [--stride 100] [--ert 10000]
//!   [--tail 0] [--delay-runs 50] [--seed 1]

use drift_core::evaluate::{evaluate, Context, FeatureReference, KsThresholds};
use drift_core::feature::canonical_category;
use drift_core::{Correction, CsvSchema, Dataset, MonitorConfig, MonitorSpec, Params};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Drift {
    None,
    PlanShare,
    NewDevice,
    LatencyMissing,
    RegionShift,
}

struct Args {
    references: usize,
    rounds: usize,
    reference_rows: usize,
    window: usize,
    stride: usize,
    ert: f64,
    tail: usize,
    delay_runs: usize,
    seed: u64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        references: 20,
        rounds: 5000,
        reference_rows: 2000,
        window: 500,
        stride: 100,
        ert: 10_000.0,
        tail: 0,
        delay_runs: 50,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {v}: {e}");
        match flag.as_str() {
            "--references" => a.references = v.parse().map_err(|e| bad(&e))?,
            "--rounds" => a.rounds = v.parse().map_err(|e| bad(&e))?,
            "--reference-rows" => a.reference_rows = v.parse().map_err(|e| bad(&e))?,
            "--window" => a.window = v.parse().map_err(|e| bad(&e))?,
            "--stride" => a.stride = v.parse().map_err(|e| bad(&e))?,
            "--ert" => a.ert = v.parse().map_err(|e| bad(&e))?,
            "--tail" => a.tail = v.parse().map_err(|e| bad(&e))?,
            "--delay-runs" => a.delay_runs = v.parse().map_err(|e| bad(&e))?,
            "--seed" => a.seed = v.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn normal(rng: &mut StdRng) -> f64 {
    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn pick(rng: &mut StdRng, p: &[f64]) -> usize {
    let mut u: f64 = rng.random();
    for (i, q) in p.iter().enumerate() {
        if u < *q {
            return i;
        }
        u -= q;
    }
    p.len() - 1
}

/// The model's features, as CSV cells (empty when missing).
fn row(rng: &mut StdRng, drift: Drift, tail: &[f64]) -> Vec<String> {
    let mut out = Vec::with_capacity(6);
    out.push(if rng.random::<f64>() < 0.05 {
        String::new()
    } else {
        format!("{}", (3.0 + 0.8 * normal(rng)).exp())
    });
    let miss = if drift == Drift::LatencyMissing {
        0.35
    } else {
        0.05
    };
    out.push(if rng.random::<f64>() < miss {
        String::new()
    } else {
        format!("{}", 120.0 + 15.0 * normal(rng))
    });
    let plan = if drift == Drift::PlanShare {
        pick(rng, &[0.34375, 0.20625, 0.45])
    } else {
        pick(rng, &[0.5, 0.3, 0.2])
    };
    out.push(["basic", "pro", "team"][plan].into());
    let device = if drift == Drift::NewDevice {
        pick(rng, &[0.32, 0.32, 0.16, 0.2])
    } else {
        pick(rng, &[0.4, 0.4, 0.2])
    };
    out.push(["ios", "android", "web", "tv"][device].into());
    let region = if drift == Drift::RegionShift {
        [2, 3, 4, 4][rng.random_range(0..4)]
    } else {
        rng.random_range(1..=4)
    };
    out.push(region.to_string());
    if !tail.is_empty() {
        out.push(format!("t{}", pick(rng, tail)));
    }
    out
}

const NAMES: [&str; 6] = ["amount", "latency", "plan", "device", "region", "tail"];

struct Monitor {
    cfg: MonitorConfig,
    refs: Vec<FeatureReference>,
    thresholds: KsThresholds,
}

fn monitor(a: &Args, rng: &mut StdRng, tail: &[f64]) -> Monitor {
    let nf = if tail.is_empty() { 5 } else { 6 };
    let mut csv = NAMES[..nf].join(",") + "\n";
    for _ in 0..a.reference_rows {
        csv.push_str(&(row(rng, Drift::None, tail).join(",") + "\n"));
    }
    let schema = CsvSchema {
        categorical: vec!["region".into()],
        ..CsvSchema::default()
    };
    let ds = Dataset::from_csv_with(csv.as_bytes(), &schema).expect("model CSV");
    let params = Params {
        window: a.window,
        stride: a.stride,
        ert: a.ert,
        correction: Correction::Ert,
        ..Params::default()
    };
    let spec = MonitorSpec::new("calibration", &ds, params, 16).expect("monitor");
    let refs = (0..nf)
        .map(|i| {
            let mut v = spec.reference[i].clone();
            v.sort_by(f64::total_cmp);
            FeatureReference::new(spec.config.kind(i), v, spec.config.categories(i))
                .expect("reference")
        })
        .collect();
    Monitor {
        cfg: spec.config,
        refs,
        thresholds: KsThresholds::default(),
    }
}

impl Monitor {
    /// A row encoded as windows hold it.
    fn encode(&self, cells: &[String]) -> Vec<f64> {
        let codes = self.cfg.codes();
        cells
            .iter()
            .zip(codes)
            .map(|(c, code)| match (c.is_empty(), code) {
                (true, _) => f64::NAN,
                (false, Some(map)) => map.code(&canonical_category(c)),
                (false, None) => c.parse().unwrap_or(f64::NAN),
            })
            .collect()
    }

    /// The features flagged on the window (one column per feature).
    fn flags(&self, window: &VecDeque<Vec<f64>>) -> Vec<bool> {
        (0..self.refs.len())
            .map(|i| {
                let values: Vec<f64> = window.iter().map(|r| r[i]).collect();
                let ctx = Context {
                    config: &self.cfg,
                    feature: i,
                    thresholds: &self.thresholds,
                };
                evaluate(&self.refs[i], &ctx, values)
                    .map(|e| e.flag(Correction::Ert, 0.05, self.refs.len()))
                    .unwrap_or(false)
            })
            .collect()
    }
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // A Zipf(1.1) tail of `--tail` categories: the rarest may be missing from a reference.
    let tail: Vec<f64> = if a.tail > 0 {
        let w: Vec<f64> = (1..=a.tail).map(|k| (k as f64).powf(-1.1)).collect();
        let s: f64 = w.iter().sum();
        w.iter().map(|x| x / s).collect()
    } else {
        Vec::new()
    };
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(a.seed);
    let (mut rounds, mut flagged_rounds) = (0u64, 0u64);
    let mut per_feature = vec![0u64; NAMES.len()];
    // Categories of the tail feature found per reference (fewer than --tail: some missing).
    let mut tail_seen = Vec::new();
    for r in 0..a.references {
        let m = monitor(&a, &mut rng, &tail);
        if !tail.is_empty() {
            tail_seen.push(m.cfg.categories(5).len());
        }
        if r == 0 {
            eprintln!(
                "thresholds at a full window: {:?}",
                m.cfg
                    .thresholds
                    .iter()
                    .map(|c| format!("{c:.4}"))
                    .collect::<Vec<_>>()
            );
        }
        let mut window: VecDeque<Vec<f64>> = VecDeque::with_capacity(a.window + 1);
        for _ in 0..a.window {
            window.push_back(m.encode(&row(&mut rng, Drift::None, &tail)));
        }
        for _ in 0..a.rounds {
            for _ in 0..a.stride {
                window.pop_front();
                window.push_back(m.encode(&row(&mut rng, Drift::None, &tail)));
            }
            let flags = m.flags(&window);
            rounds += 1;
            if flags.iter().any(|f| *f) {
                flagged_rounds += 1;
            }
            for (c, f) in per_feature.iter_mut().zip(&flags) {
                *c += u64::from(*f);
            }
        }
    }
    println!(
        "no drift: {flagged_rounds} flagged rounds in {rounds} ({} references x {} rounds; ert {}, reference rows {}, window {}, stride {}, tail {}), {:.0} s",
        a.references,
        a.rounds,
        a.ert,
        a.reference_rows,
        a.window,
        a.stride,
        a.tail,
        started.elapsed().as_secs_f64()
    );
    println!("flags per feature: {per_feature:?}");
    if !tail.is_empty() {
        println!(
            "tail categories per reference (of {}): {tail_seen:?}",
            a.tail
        );
    }
    println!();
    println!("| drift | feature | detected within 1,500 rows | median / max delay (rows) | runs with another feature flagged |");
    println!("|---|---|---|---|---|");
    for (drift, feature) in [
        (Drift::PlanShare, 2),
        (Drift::NewDevice, 3),
        (Drift::LatencyMissing, 1),
        (Drift::RegionShift, 4),
    ] {
        let mut delays = Vec::new();
        let mut others = 0;
        for _ in 0..a.delay_runs {
            let m = monitor(&a, &mut rng, &tail);
            let mut window: VecDeque<Vec<f64>> = (0..a.window)
                .map(|_| m.encode(&row(&mut rng, Drift::None, &tail)))
                .collect();
            let mut found = None;
            let mut other = false;
            let mut sent = 0;
            while sent < 1500 {
                for _ in 0..a.stride {
                    window.pop_front();
                    window.push_back(m.encode(&row(&mut rng, drift, &tail)));
                }
                sent += a.stride;
                let flags = m.flags(&window);
                other |= flags.iter().enumerate().any(|(i, f)| *f && i != feature);
                if flags[feature] && found.is_none() {
                    found = Some(sent);
                }
            }
            others += usize::from(other);
            delays.extend(found);
        }
        delays.sort_unstable();
        let median = delays.get(delays.len() / 2).copied();
        println!(
            "| {drift:?} | {} | {}/{} | {} / {} | {others} |",
            NAMES[feature],
            delays.len(),
            a.delay_runs,
            median.map_or("-".into(), |d| d.to_string()),
            delays.last().map_or("-".into(), |d| d.to_string()),
        );
    }
}
