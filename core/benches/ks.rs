//! One `Reference::evaluate` (two-sided, method auto) per (window, reference) size, with the
//! window from the reference's distribution and shifted by 0.3 sd. The window copy and sort
//! are inside the timed part, as they are in production. `scripts/bench_scipy.py` times
//! scipy on bit-identical inputs (same generator; compare the printed checksums).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use drift_core::ks::{Alternative, Method, Reference};

/// splitmix64 (Steele, Lea & Flood 2014): tiny, seedable, and easy to reproduce in Python.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on (0, 1]: 53 random bits, shifted by one so that ln() is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }
}

/// `n` standard normals by Box-Muller (both variates of each pair), plus `shift`.
fn normals(seed: u64, n: usize, shift: f64) -> Vec<f64> {
    let mut rng = SplitMix64(seed);
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1 = rng.uniform();
        let u2 = rng.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        out.push(r * theta.cos() + shift);
        out.push(r * theta.sin() + shift);
    }
    out.truncate(n);
    out
}

/// Order-dependent checksum of the bits, to check that Python generated the same samples.
fn checksum(values: &[f64]) -> u64 {
    values.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, v| {
        (h ^ v.to_bits()).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const SIZES: [(usize, usize); 6] = [
    (100, 569),
    (500, 569),
    (1000, 569),
    (10000, 569),
    (1000, 10000),
    (20000, 100000),
];
const SHIFTS: [f64; 2] = [0.0, 0.3];

fn bench_evaluate(c: &mut Criterion) {
    let mut group = c.benchmark_group("ks_evaluate");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    for (n_window, n_reference) in SIZES {
        let reference_values = normals(1_000_003 + n_reference as u64, n_reference, 0.0);
        let reference_sum = checksum(&reference_values);
        let Ok(reference) = Reference::new(reference_values) else {
            continue;
        };
        for shift in SHIFTS {
            let window = normals(2_000_003 + n_window as u64, n_window, shift);
            let mut buffer = window.clone();
            if let Ok(r) = reference.evaluate(&mut buffer, Alternative::TwoSided, Method::Auto) {
                eprintln!(
                    "config window={n_window} reference={n_reference} shift={shift}: \
                     checksums {:016x} {:016x}, D={} p={:e} {:?}",
                    checksum(&window),
                    reference_sum,
                    r.statistic,
                    r.pvalue,
                    r.effective_method
                );
            }
            let id =
                BenchmarkId::from_parameter(format!("{n_window}x{n_reference}_shift{shift:.1}"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    buffer.copy_from_slice(&window);
                    black_box(reference.evaluate(
                        black_box(&mut buffer),
                        Alternative::TwoSided,
                        Method::Auto,
                    ))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_evaluate);
criterion_main!(benches);
