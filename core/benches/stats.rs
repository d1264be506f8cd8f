//! The stats a monitor would run per feature and round: Pearson's chi-square over 5 and 50
//! categories, and the effect sizes of a 500-value window against 569 reference values
//! (the demo data set's size), each on its own and as one pipeline. Inputs are sorted
//! outside the timed part: production sorts the window once for the KS test, and the
//! reference once for good.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use drift_core::stats::{chisquare, jensen_shannon, psi, wasserstein_normed, QuantileBins};

/// splitmix64 (Steele, Lea & Flood 2014), as in benches/ks.rs.
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

/// `n` sorted standard normals by Box-Muller, plus `shift`.
fn sorted_normals(seed: u64, n: usize, shift: f64) -> Vec<f64> {
    let mut rng = SplitMix64(seed);
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let r = (-2.0 * rng.uniform().ln()).sqrt();
        let theta = std::f64::consts::TAU * rng.uniform();
        out.push(r * theta.cos() + shift);
        out.push(r * theta.sin() + shift);
    }
    out.truncate(n);
    out.sort_by(f64::total_cmp);
    out
}

/// Counts of 500 rows over `bins` categories with slightly unequal frequencies, and the
/// counts uniform frequencies predict.
fn categories(seed: u64, bins: usize) -> (Vec<f64>, Vec<f64>) {
    let mut rng = SplitMix64(seed);
    let rows = 500;
    let mut observed = vec![0.0; bins];
    for _ in 0..rows {
        let u = rng.uniform().powf(1.1);
        let bin = ((u * bins as f64) as usize).min(bins - 1);
        observed[bin] += 1.0;
    }
    (observed, vec![rows as f64 / bins as f64; bins])
}

fn bench_stats(c: &mut Criterion) {
    let mut group = c.benchmark_group("stats");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    for bins in [5, 50] {
        let (observed, expected) = categories(3_000_003 + bins as u64, bins);
        let r = chisquare(&observed, &expected);
        eprintln!(
            "chisquare {bins} bins: statistic {} p {:e}",
            r.statistic, r.p_value
        );
        group.bench_function(BenchmarkId::new("chisquare", bins), |b| {
            b.iter(|| black_box(chisquare(black_box(&observed), black_box(&expected))))
        });
    }

    let reference = sorted_normals(1_000_572, 569, 0.0);
    let window = sorted_normals(2_000_503, 500, 0.3);
    let bins = QuantileBins::new(&reference, 10);
    let shares = bins.shares(&window);
    eprintln!(
        "effects 500x569 shift 0.3: wasserstein_normed {} psi {} jensen_shannon {}",
        wasserstein_normed(&reference, &window),
        psi(bins.reference_shares(), &shares),
        jensen_shannon(bins.reference_shares(), &shares)
    );
    group.bench_function("wasserstein_normed/500x569", |b| {
        b.iter(|| {
            black_box(wasserstein_normed(
                black_box(&reference),
                black_box(&window),
            ))
        })
    });
    group.bench_function("quantile_bins_new/569", |b| {
        b.iter(|| black_box(QuantileBins::new(black_box(&reference), 10)))
    });
    group.bench_function("shares/500", |b| {
        b.iter(|| black_box(bins.shares(black_box(&window))))
    });
    group.bench_function("psi/10", |b| {
        b.iter(|| black_box(psi(black_box(bins.reference_shares()), black_box(&shares))))
    });
    group.bench_function("jensen_shannon/10", |b| {
        b.iter(|| {
            black_box(jensen_shannon(
                black_box(bins.reference_shares()),
                black_box(&shares),
            ))
        })
    });
    group.bench_function("effects_pipeline/500x569", |b| {
        b.iter(|| {
            let reference = black_box(&reference);
            let window = black_box(&window);
            let w = wasserstein_normed(reference, window);
            let bins = QuantileBins::new(reference, 10);
            let shares = bins.shares(window);
            let p = psi(bins.reference_shares(), &shares);
            let js = jensen_shannon(bins.reference_shares(), &shares);
            black_box((w, p, js))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_stats);
criterion_main!(benches);
