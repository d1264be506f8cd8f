//! Monte Carlo of the `ert` alarm under a true null, in process and on the decision code the
//! workers use (`alarm::ert_threshold`, `alarm::flag`, `alarm::starts_episode`).
//!
//! For each of `--references` draws, every feature gets a reference of `--reference-rows`
//! rows and a stream from the same distribution; a window of `--window` rows slides by
//! `--stride` rows per round for `--rounds` rounds. The claim checked: with probability
//! `--confidence` over the references, at most one false-alarm round per `--ert` rounds in
//! expectation. Then thresholds for a few sizes and the detection delay of a shift.
//!
//! cargo run --release -p drift-core --example ert_monte_carlo -- [--ert 1000]
//!   [--features 30] [--reference-rows 569] [--window 500] [--stride 100]
//!   [--references 200] [--other-references 40] [--rounds 5000] [--confidence 0.95] [--seed 1] [--threads N]
//!   [--settings uniform,normal,ties,correlated] [--tie-levels 10] [--common 0.9]
//!   [--delay-references 200] [--delay-ert 10000] [--shift 0.5] [--delay-rows 569,5000]
//!   [--no-delay]

use drift_core::alarm::{
    episode_lookback, ert_threshold, flag, massart_threshold, starts_episode, Correction,
};
use drift_core::ks::Reference;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// xoshiro256** seeded through splitmix64, with Box-Muller normals.
struct Rng {
    s: [u64; 4],
    spare: Option<f64>,
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    fn new(mut seed: u64) -> Self {
        let s = [(); 4].map(|_| splitmix(&mut seed));
        Rng { s, spare: None }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform on (0, 1), 53 bits.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let r = (-2.0 * self.uniform().ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * self.uniform()).sin_cos();
        self.spare = Some(r * s);
        r * c
    }
}

/// The population of every row (reference and stream alike: the null holds).
#[derive(Clone, Copy)]
enum Data {
    Uniform,
    Normal,
    /// Uniform rounded down to `levels` values: heavy ties.
    Ties(u32),
    /// Uniform marginals; each feature equals the row's common value with probability `p`
    /// (correlation p^2 between features).
    Correlated(f64),
}

impl Data {
    fn name(self) -> String {
        match self {
            Data::Uniform => "uniform, independent".into(),
            Data::Normal => "normal, independent".into(),
            Data::Ties(k) => format!("ties: {k} levels"),
            Data::Correlated(p) => format!("correlated {:.2}", p * p),
        }
    }

    /// `rows` rows into the columns `cols`, feature 0 shifted by `shift`.
    fn fill(self, rng: &mut Rng, cols: &mut [Vec<f64>], rows: usize, shift: f64) {
        for col in cols.iter_mut() {
            col.resize(rows, 0.0);
        }
        for k in 0..rows {
            let common = rng.uniform();
            for (f, col) in cols.iter_mut().enumerate() {
                let v = match self {
                    Data::Uniform => rng.uniform(),
                    Data::Normal => rng.normal(),
                    Data::Ties(levels) => (rng.uniform() * f64::from(levels)).floor(),
                    Data::Correlated(p) if rng.uniform() < p => common,
                    Data::Correlated(_) => rng.uniform(),
                };
                col[k] = if f == 0 { v + shift } else { v };
            }
        }
    }
}

/// One feature's window: its rows in arrival order and sorted, updated per batch by removing
/// the rows that leave and merging in the sorted batch.
struct Window {
    arrival: VecDeque<f64>,
    sorted: Vec<f64>,
    kept: Vec<f64>,
    leaving: Vec<f64>,
    rows: usize,
    /// Every batch has `stride` rows and `stride` divides `rows`: rows leave a whole batch at
    /// a time, so batches are kept sorted in `arrival` and leave sorted.
    whole_batches: Option<usize>,
}

impl Window {
    fn new(rows: usize, stride: usize) -> Self {
        Window {
            arrival: VecDeque::with_capacity(rows + stride),
            sorted: Vec::with_capacity(rows + stride),
            kept: Vec::with_capacity(rows + stride),
            leaving: Vec::new(),
            rows,
            whole_batches: (rows % stride == 0).then_some(stride),
        }
    }

    /// Appends `batch` (sorting it) and drops the oldest rows beyond the window's size. Both
    /// passes are branch-free, with an infinite sentinel at the end of each input.
    fn push(&mut self, batch: &mut Vec<f64>) {
        let n = batch.len();
        if let Some(stride) = self.whole_batches {
            assert_eq!(n, stride, "batches of `stride` rows");
            batch.sort_unstable_by(f64::total_cmp);
            self.arrival.extend(batch.iter().copied());
        } else {
            self.arrival.extend(batch.iter().copied());
            batch.sort_unstable_by(f64::total_cmp);
        }
        let out = self.arrival.len().saturating_sub(self.rows);
        self.leaving.clear();
        self.leaving.extend(self.arrival.drain(..out));
        if self.whole_batches.is_none() {
            self.leaving.sort_unstable_by(f64::total_cmp);
        }
        self.leaving.push(f64::INFINITY);
        batch.push(f64::INFINITY);
        // kept = sorted minus leaving (a sub-multiset of it; both ascending).
        self.kept.resize(self.sorted.len() + 1, 0.0);
        let (mut w, mut k) = (0, 0);
        for &v in &self.sorted {
            let gone = v.to_bits() == self.leaving[k].to_bits();
            self.kept[w] = v;
            w += usize::from(!gone);
            k += usize::from(gone);
        }
        self.kept.truncate(w);
        self.kept.push(f64::INFINITY);
        // sorted = kept merged with batch.
        self.sorted.resize(w + n, 0.0);
        let (mut i, mut j) = (0, 0);
        for slot in &mut self.sorted {
            let left = self.kept[i].total_cmp(&batch[j]).is_le();
            *slot = if left { self.kept[i] } else { batch[j] };
            i += usize::from(left);
            j += usize::from(!left);
        }
        batch.truncate(n);
    }
}

/// The windows of every feature of one stream.
struct Stream {
    data: Data,
    rng: Rng,
    windows: Vec<Window>,
    batch: Vec<Vec<f64>>,
    stride: usize,
}

impl Stream {
    /// A stream whose window of `rows` rows is full, drawn without shift.
    fn new(data: Data, rng: Rng, features: usize, rows: usize, stride: usize) -> Self {
        let mut stream = Stream {
            data,
            rng,
            windows: (0..features).map(|_| Window::new(rows, stride)).collect(),
            batch: vec![Vec::new(); features],
            stride,
        };
        for start in (0..rows).step_by(stride) {
            stream.advance(stride.min(rows - start), 0.0);
        }
        stream
    }

    /// `rows` new rows (one batch), feature 0 shifted by `shift`.
    fn advance(&mut self, rows: usize, shift: f64) {
        self.data.fill(&mut self.rng, &mut self.batch, rows, shift);
        for (w, b) in self.windows.iter_mut().zip(&mut self.batch) {
            w.push(b);
        }
    }

    /// One round: `stride` new rows.
    fn round(&mut self, shift: f64) {
        self.advance(self.stride, shift);
    }
}

#[derive(Clone, Copy)]
struct Config {
    ert: f64,
    features: usize,
    reference_rows: usize,
    window: usize,
    stride: usize,
    references: usize,
    /// References of the settings after the first (each costs as much as the first).
    other_references: usize,
    rounds: usize,
    confidence: f64,
    seed: u64,
    threads: usize,
}

impl Config {
    fn threshold(&self, reference_rows: usize, ert: f64) -> f64 {
        ert_threshold(
            reference_rows,
            self.window,
            self.features,
            ert,
            self.confidence,
        )
    }
}

/// Counts of one reference's stream.
#[derive(Clone, Copy, Default)]
struct Counts {
    rounds: u64,
    alarm_rounds: u64,
    exceedances: u64,
    episodes: u64,
}

fn references(data: Data, rng: &mut Rng, features: usize, rows: usize) -> Vec<Reference> {
    let mut cols = vec![vec![0.0; rows]; features];
    data.fill(rng, &mut cols, rows, 0.0);
    cols.into_iter()
        .map(|c| Reference::new(c).unwrap_or_else(|e| panic!("reference: {e}")))
        .collect()
}

/// One reference and its no-drift stream.
fn null_stream(cfg: &Config, data: Data, seed: u64) -> Counts {
    let mut rng = Rng::new(seed);
    let d = cfg.features;
    let refs = references(data, &mut rng, d, cfg.reference_rows);
    let c = cfg.threshold(cfg.reference_rows, cfg.ert);
    let lookback = episode_lookback(cfg.window, cfg.stride);
    let mut stream = Stream::new(data, rng, d, cfg.window, cfg.stride);
    let mut last: Vec<Option<u64>> = vec![None; d];
    let mut counts = Counts::default();
    for round in 0..cfg.rounds as u64 {
        if round > 0 {
            stream.round(0.0);
        }
        let mut any = false;
        for (f, (reference, window)) in refs.iter().zip(&stream.windows).enumerate() {
            let stat = reference
                .statistic(&window.sorted)
                .unwrap_or_else(|e| panic!("statistic: {e}"));
            if flag(Correction::Ert, 0.05, d, f64::NAN, stat, Some(c)) {
                any = true;
                counts.exceedances += 1;
                counts.episodes += u64::from(starts_episode(last[f], round, lookback));
                last[f] = Some(round);
            }
        }
        counts.rounds += 1;
        counts.alarm_rounds += u64::from(any);
    }
    counts
}

/// Rows past the onset of a `shift` in feature 0 until it is flagged, or `None` after 100
/// windows. Only the shifted feature is simulated: flags are per feature, and the other
/// features enter through the threshold's `features` only. The onset is at a round boundary
/// with the window full; shifted rows enter the window from the onset.
fn delay(cfg: &Config, reference_rows: usize, ert: f64, shift: f64, seed: u64) -> Option<usize> {
    let mut rng = Rng::new(seed);
    let reference = references(Data::Normal, &mut rng, 1, reference_rows).remove(0);
    let c = cfg.threshold(reference_rows, ert);
    let mut stream = Stream::new(Data::Normal, rng, 1, cfg.window, cfg.stride);
    let mut rows = 0;
    while rows < 100 * cfg.window {
        stream.round(shift);
        rows += cfg.stride;
        let stat = reference.statistic(&stream.windows[0].sorted).ok()?;
        if flag(Correction::Ert, 0.05, cfg.features, f64::NAN, stat, Some(c)) {
            return Some(rows);
        }
    }
    None
}

/// Runs `job(index)` for `0..jobs` on `threads` threads; results in index order.
fn parallel<T: Send>(jobs: usize, threads: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::with_capacity(jobs));
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs {
                    break;
                }
                let r = job(i);
                out.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
            });
        }
    });
    let mut out = out.into_inner().unwrap_or_else(|e| e.into_inner());
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// P(Binomial(n, p) <= k), summed in log space.
fn binom_cdf(k: u64, n: u64, p: f64) -> f64 {
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return if k >= n { 1.0 } else { 0.0 };
    }
    let (lp, lq) = (p.ln(), (-p).ln_1p());
    let mut log_term = n as f64 * lq;
    let mut logs = vec![log_term];
    for i in 0..k.min(n) {
        log_term += ((n - i) as f64 / (i + 1) as f64).ln() + lp - lq;
        logs.push(log_term);
    }
    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (top + logs.iter().map(|l| (l - top).exp()).sum::<f64>().ln()).exp()
}

/// One-sided 95% Clopper-Pearson upper bound of a rate with `k` events in `n` trials; the
/// rule of three, 3 / n, when `k` is 0.
fn upper_95(k: u64, n: u64) -> f64 {
    if k == 0 {
        return 3.0 / n as f64;
    }
    let (mut lo, mut hi) = (k as f64 / n as f64, 1.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if binom_cdf(k, n, mid) > 0.05 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

fn quantile(sorted: &[Option<usize>], q: f64) -> String {
    let k = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    match sorted[k] {
        Some(rows) => rows.to_string(),
        None => "never".into(),
    }
}

fn parse() -> Result<(Config, Vec<Data>, DelayArgs), String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cfg = Config {
        ert: 1000.0,
        features: 30,
        reference_rows: 569,
        window: 500,
        stride: 100,
        references: 200,
        other_references: 40,
        rounds: 5000,
        confidence: 0.95,
        seed: 1,
        threads,
    };
    let mut delay = DelayArgs {
        references: 200,
        ert: 10_000.0,
        shift: 0.5,
        rows: vec![569, 5000],
        run: true,
    };
    let (mut settings, mut levels, mut common) =
        ("uniform,normal,ties,correlated".to_string(), 10u32, 0.9f64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--no-delay" {
            delay.run = false;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--ert" => cfg.ert = value.parse().map_err(|e| bad(&e))?,
            "--features" => cfg.features = value.parse().map_err(|e| bad(&e))?,
            "--reference-rows" => cfg.reference_rows = value.parse().map_err(|e| bad(&e))?,
            "--window" => cfg.window = value.parse().map_err(|e| bad(&e))?,
            "--stride" => cfg.stride = value.parse().map_err(|e| bad(&e))?,
            "--references" => cfg.references = value.parse().map_err(|e| bad(&e))?,
            "--other-references" => cfg.other_references = value.parse().map_err(|e| bad(&e))?,
            "--rounds" => cfg.rounds = value.parse().map_err(|e| bad(&e))?,
            "--confidence" => cfg.confidence = value.parse().map_err(|e| bad(&e))?,
            "--seed" => cfg.seed = value.parse().map_err(|e| bad(&e))?,
            "--threads" => cfg.threads = value.parse().map_err(|e| bad(&e))?,
            "--settings" => settings = value,
            "--tie-levels" => levels = value.parse().map_err(|e| bad(&e))?,
            "--common" => common = value.parse().map_err(|e| bad(&e))?,
            "--delay-references" => delay.references = value.parse().map_err(|e| bad(&e))?,
            "--delay-ert" => delay.ert = value.parse().map_err(|e| bad(&e))?,
            "--delay-rows" => {
                delay.rows = value
                    .split(',')
                    .map(|n| n.parse().map_err(|e| bad(&e)))
                    .collect::<Result<_, _>>()?
            }
            "--shift" => delay.shift = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if cfg.features == 0 || cfg.window < 2 || cfg.stride == 0 || cfg.reference_rows == 0 {
        return Err("features, window, stride and reference rows must be positive".into());
    }
    let data = settings
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "uniform" => Ok(Data::Uniform),
            "normal" => Ok(Data::Normal),
            "ties" => Ok(Data::Ties(levels.max(1))),
            "correlated" => Ok(Data::Correlated(common)),
            other => Err(format!("unknown setting {other}")),
        })
        .collect::<Result<_, _>>()?;
    Ok((cfg, data, delay))
}

struct DelayArgs {
    references: usize,
    ert: f64,
    shift: f64,
    /// Reference sizes of the delay experiment.
    rows: Vec<usize>,
    run: bool,
}

fn main() {
    let (cfg, settings, delay_args) = parse().unwrap_or_else(|e| {
        eprintln!("ert_monte_carlo: {e}");
        std::process::exit(2);
    });
    println!(
        "ert {}, features {}, reference rows {}, window {}, stride {}, confidence {}, \
         {} references x {} rounds ({} references after the first setting), seed {}, {} threads",
        cfg.ert,
        cfg.features,
        cfg.reference_rows,
        cfg.window,
        cfg.stride,
        cfg.confidence,
        cfg.references,
        cfg.rounds,
        cfg.other_references,
        cfg.seed,
        cfg.threads
    );
    println!(
        "\n{:<22} {:>5} {:>9} {:>7} {:>7} {:>8} {:>12} {:>6} {:>10} {:>9} {:>7} {:>6}",
        "setting",
        "refs",
        "rounds",
        "alarms",
        "exceed",
        "episodes",
        "measured ERT",
        "ERT",
        "95% UB",
        "refs>1/ert",
        "c",
        "secs"
    );
    let c = cfg.threshold(cfg.reference_rows, cfg.ert);
    for (i, &data) in settings.iter().enumerate() {
        let started = Instant::now();
        let refs = if i == 0 {
            cfg.references
        } else {
            cfg.other_references
        };
        let per_ref = parallel(refs, cfg.threads, |r| {
            let seed = splitmix(&mut (cfg.seed ^ ((i as u64) << 40) ^ r as u64));
            null_stream(&cfg, data, seed)
        });
        let total = per_ref.iter().fold(Counts::default(), |a, b| Counts {
            rounds: a.rounds + b.rounds,
            alarm_rounds: a.alarm_rounds + b.alarm_rounds,
            exceedances: a.exceedances + b.exceedances,
            episodes: a.episodes + b.episodes,
        });
        let above = per_ref
            .iter()
            .filter(|r| r.alarm_rounds as f64 / r.rounds as f64 > 1.0 / cfg.ert)
            .count();
        let measured = if total.alarm_rounds == 0 {
            format!(">{}", total.rounds)
        } else {
            format!("{:.0}", total.rounds as f64 / total.alarm_rounds as f64)
        };
        println!(
            "{:<22} {:>5} {:>9} {:>7} {:>7} {:>8} {:>12} {:>6} {:>10.3e} {:>9.3} {:>7.4} {:>6.1}",
            data.name(),
            refs,
            total.rounds,
            total.alarm_rounds,
            total.exceedances,
            total.episodes,
            measured,
            cfg.ert,
            upper_95(total.alarm_rounds, total.rounds),
            above as f64 / refs as f64,
            c,
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "\nalarms: rounds with any feature flagged; exceed: flagged feature-rounds; episodes: \
         exceedances with none in the previous {} rounds of the feature.\n95% UB: one-sided \
         Clopper-Pearson bound of the alarm-round rate as if rounds were independent (they \
         are not: windows overlap, so alarms cluster); rule of three at zero.",
        episode_lookback(cfg.window, cfg.stride)
    );

    println!(
        "\nthresholds at ert {}, {} features, confidence {} (exact / Massart):",
        cfg.ert, cfg.features, cfg.confidence
    );
    for n in [569, 5000] {
        let row: Vec<String> = [100, 250, 500, 1000]
            .iter()
            .map(|&m| {
                let exact = ert_threshold(n, m, cfg.features, cfg.ert, cfg.confidence);
                let massart = massart_threshold(n, m, cfg.features, cfg.ert, cfg.confidence);
                format!("m={m}: {exact:.4} / {massart:.4}")
            })
            .collect();
        println!("  n={n:<5} {}", row.join("   "));
    }

    if !delay_args.run {
        return;
    }
    println!(
        "\ndetection delay of a +{} sd shift of one feature (normal data), ert {}, {} features, \
         window {}, stride {}, {} references; rows past onset until flagged:",
        delay_args.shift,
        delay_args.ert,
        cfg.features,
        cfg.window,
        cfg.stride,
        delay_args.references
    );
    for &n in &delay_args.rows {
        let started = Instant::now();
        let mut delays = parallel(delay_args.references, cfg.threads, |r| {
            let seed = splitmix(&mut (cfg.seed ^ (0xde1a << 40) ^ ((n as u64) << 20) ^ r as u64));
            delay(&cfg, n, delay_args.ert, delay_args.shift, seed)
        });
        delays.sort_by_key(|d| d.unwrap_or(usize::MAX));
        let never = delays.iter().filter(|d| d.is_none()).count();
        println!(
            "  n={n:<5} c={:.4}  median {}  p90 {}  max {}  not flagged within {} rows: {}  \
             ({:.1} s)",
            cfg.threshold(n, delay_args.ert),
            quantile(&delays, 0.5),
            quantile(&delays, 0.9),
            quantile(&delays, 1.0),
            100 * cfg.window,
            never,
            started.elapsed().as_secs_f64()
        );
    }
}
