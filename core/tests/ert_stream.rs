//! The `ert` alarm over simulated streams, on the decision code the workers use
//! (`alarm::ert_threshold`, `alarm::flag`, `alarm::starts_episode`): under no drift the
//! false-alarm rounds stay within what the guarantee allows, ties included, and a clear
//! shift is caught quickly. A small version of `examples/ert_monte_carlo.rs` (fixed seeds,
//! small sizes, so that it runs in a debug build).

use drift_core::alarm::{episode_lookback, ert_threshold, flag, starts_episode, Correction};
use drift_core::ks::{kolmogorov_isf, Reference};
use std::collections::VecDeque;

const ERT: f64 = 200.0;
const FEATURES: usize = 5;
const REFERENCE_ROWS: usize = 300;
const WINDOW: usize = 100;
const STRIDE: usize = 20;
const CONFIDENCE: f64 = 0.95;

/// xoshiro256** seeded through splitmix64, with Box-Muller normals.
struct Rng([u64; 4]);

impl Rng {
    fn new(mut seed: u64) -> Self {
        Rng([(); 4].map(|_| {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let z = (seed ^ (seed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }))
    }

    fn uniform(&mut self) -> f64 {
        let s = &mut self.0;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        ((out >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

#[derive(Clone, Copy)]
enum Data {
    Uniform,
    /// Uniform rounded down to this many values: heavy ties.
    Ties(u32),
    Normal,
}

impl Data {
    fn draw(self, rng: &mut Rng) -> f64 {
        match self {
            Data::Uniform => rng.uniform(),
            Data::Ties(levels) => (rng.uniform() * f64::from(levels)).floor(),
            Data::Normal => rng.normal(),
        }
    }
}

/// Independent features, each with its reference and its window of the latest rows (in
/// arrival order and sorted).
struct Stream {
    data: Data,
    rng: Rng,
    references: Vec<Reference>,
    windows: Vec<(VecDeque<f64>, Vec<f64>)>,
}

impl Stream {
    /// References and a full window drawn from `data`.
    fn new(data: Data, seed: u64, features: usize) -> Self {
        let mut rng = Rng::new(seed);
        let references = (0..features)
            .map(|_| {
                let values = (0..REFERENCE_ROWS).map(|_| data.draw(&mut rng)).collect();
                Reference::new(values).unwrap_or_else(|e| panic!("reference: {e}"))
            })
            .collect();
        let mut stream = Stream {
            data,
            rng,
            references,
            windows: vec![(VecDeque::new(), Vec::new()); features],
        };
        stream.advance(WINDOW, 0.0);
        stream
    }

    /// `rows` new rows, feature 0 shifted by `shift`.
    fn advance(&mut self, rows: usize, shift: f64) {
        for _ in 0..rows {
            for (f, (arrival, sorted)) in self.windows.iter_mut().enumerate() {
                let v = self.data.draw(&mut self.rng) + if f == 0 { shift } else { 0.0 };
                arrival.push_back(v);
                sorted.insert(sorted.partition_point(|&w| w < v), v);
                let old = if arrival.len() > WINDOW {
                    arrival.pop_front()
                } else {
                    None
                };
                if let Some(old) = old {
                    sorted.remove(sorted.partition_point(|&w| w < old));
                }
            }
        }
    }

    /// Each feature's statistic D against its reference.
    fn statistics(&self) -> Vec<f64> {
        self.references
            .iter()
            .zip(&self.windows)
            .map(|(reference, (_, sorted))| {
                reference
                    .statistic(sorted)
                    .unwrap_or_else(|e| panic!("statistic: {e}"))
            })
            .collect()
    }
}

#[derive(Debug, Default)]
struct Counts {
    rounds: u64,
    alarm_rounds: u64,
    exceedances: u64,
    episodes: u64,
}

/// `rounds` no-drift rounds of each of `references` streams, flagged at threshold `c`.
fn null_streams(data: Data, seed: u64, references: u64, rounds: u64, c: f64) -> Counts {
    let lookback = episode_lookback(WINDOW, STRIDE);
    let mut counts = Counts::default();
    for r in 0..references {
        let mut stream = Stream::new(data, seed + r, FEATURES);
        let mut last = [None; FEATURES];
        for round in 0..rounds {
            if round > 0 {
                stream.advance(STRIDE, 0.0);
            }
            let mut any = false;
            for (f, d) in stream.statistics().into_iter().enumerate() {
                if flag(Correction::Ert, 0.05, FEATURES, f64::NAN, d, Some(c)) {
                    any = true;
                    counts.exceedances += 1;
                    counts.episodes += u64::from(starts_episode(last[f], round, lookback));
                    last[f] = Some(round);
                }
            }
            counts.rounds += 1;
            counts.alarm_rounds += u64::from(any);
        }
    }
    counts
}

/// The smallest k with P(Poisson(lambda) <= k) >= q.
fn poisson_quantile(lambda: f64, q: f64) -> u64 {
    let (mut k, mut term) = (0u64, (-lambda).exp());
    let mut cdf = term;
    while cdf < q {
        k += 1;
        term *= lambda / k as f64;
        cdf += term;
    }
    k
}

fn threshold() -> f64 {
    ert_threshold(REFERENCE_ROWS, WINDOW, FEATURES, ERT, CONFIDENCE)
}

/// The guarantee: at most rounds / ert false-alarm rounds in expectation (for a reference
/// that is within its confidence band). Allowed: the 99.9% quantile of a Poisson count with
/// that mean.
fn assert_within_guarantee(counts: &Counts) {
    let bound = poisson_quantile(counts.rounds as f64 / ERT, 0.999);
    assert!(counts.alarm_rounds <= bound, "{counts:?}, bound {bound}");
    assert!(counts.alarm_rounds <= counts.exceedances, "{counts:?}");
    assert!(counts.episodes <= counts.exceedances, "{counts:?}");
}

#[test]
fn no_drift_stream_stays_within_the_guarantee() {
    let counts = null_streams(Data::Uniform, 1, 3, 4_000, threshold());
    assert_eq!(counts.rounds, 12_000);
    assert_within_guarantee(&counts);
}

#[test]
fn ties_stay_within_the_guarantee() {
    let counts = null_streams(Data::Ties(5), 101, 2, 3_000, threshold());
    assert_eq!(counts.rounds, 6_000);
    assert_within_guarantee(&counts);
}

#[test]
fn the_harness_counts_exceedances_and_episodes() {
    // Threshold 0: every feature is flagged every round, one episode per feature.
    let all = null_streams(Data::Uniform, 201, 1, 50, 0.0);
    assert_eq!(
        (all.alarm_rounds, all.exceedances),
        (50, 50 * FEATURES as u64)
    );
    assert_eq!(all.episodes, FEATURES as u64);
    // A per-evaluation 5% threshold (scipy's asymptotic two-sample quantile) flags about
    // one feature-round in 20: the stream is a null stream the alarm can see.
    let en = (REFERENCE_ROWS * WINDOW) as f64 / (REFERENCE_ROWS + WINDOW) as f64;
    let c = kolmogorov_isf(0.05, en.round() as usize);
    let some = null_streams(Data::Uniform, 301, 2, 500, c);
    let rate = some.exceedances as f64 / (some.rounds * FEATURES as u64) as f64;
    assert!((0.01..0.15).contains(&rate), "{some:?}: {rate}");
    assert!(some.episodes < some.exceedances, "{some:?}");
}

#[test]
fn a_one_sd_shift_is_flagged_within_two_windows() {
    let c = threshold();
    for seed in 0..20 {
        let mut stream = Stream::new(Data::Normal, 1_000 + seed, 1);
        let mut rows = 0;
        let flagged = loop {
            stream.advance(STRIDE, 1.0);
            rows += STRIDE;
            let d = stream.statistics()[0];
            if flag(Correction::Ert, 0.05, FEATURES, f64::NAN, d, Some(c)) {
                break true;
            }
            if rows >= 2 * WINDOW {
                break false;
            }
        };
        assert!(flagged, "seed {seed}: not flagged within {rows} rows");
    }
}
