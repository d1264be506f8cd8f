//! Per-monitor sampling of ingested rows (`sample_rate`, see `drift_core::Params`).
//!
//! Each row of a validated batch is kept independently with probability p (Bernoulli
//! thinning) before it goes to Redis. Thinning an i.i.d. stream gives an i.i.d. stream
//! with the same distribution, so windows of kept rows are what the alarm's guarantee is
//! stated for; what changes is how much traffic, and time, a window spans (1/p times as
//! many rows received). The draw is per row, not per batch, so that a batch's rows are not
//! kept or dropped together (which would correlate the rows of a window).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cell::RefCell;

thread_local! {
    /// One generator per thread, seeded from the thread's OS-seeded generator: no lock on
    /// the ingest path, and no two replicas or threads draw the same sequence.
    static RNG: RefCell<SmallRng> = RefCell::new(SmallRng::from_rng(&mut rand::rng()));
}

/// Keeps each row of feature-major `columns` (`columns[f][i]` is row i's value of feature
/// f) with probability `p`; returns the columns of the kept rows, in their order, and how
/// many were kept. A `p` of 1 (or any value outside (0, 1), which validation never lets
/// through) keeps the batch as it is without drawing anything.
pub fn thin(mut columns: Vec<Vec<f64>>, p: f64) -> (Vec<Vec<f64>>, usize) {
    let n = columns.first().map_or(0, Vec::len);
    if !(p > 0.0 && p < 1.0) {
        return (columns, n);
    }
    let keep: Vec<bool> = RNG.with_borrow_mut(|rng| (0..n).map(|_| rng.random_bool(p)).collect());
    let kept = keep.iter().filter(|k| **k).count();
    if kept < n {
        for col in &mut columns {
            let mut mask = keep.iter();
            col.retain(|_| mask.next().copied().unwrap_or(false));
        }
    }
    (columns, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> Vec<Vec<f64>> {
        vec![
            (0..n).map(|i| i as f64).collect(),
            (0..n).map(|i| -(i as f64)).collect(),
        ]
    }

    #[test]
    fn rate_one_keeps_every_row_untouched() {
        let (cols, kept) = thin(batch(100), 1.0);
        assert_eq!(kept, 100);
        assert_eq!(cols, batch(100));
        let (cols, kept) = thin(Vec::new(), 0.5);
        assert_eq!((cols.len(), kept), (0, 0));
    }

    #[test]
    fn rows_are_kept_whole_in_order_at_about_the_rate() {
        let n = 40_000;
        let p = 0.25;
        let (cols, kept) = thin(batch(n), p);
        assert_eq!(cols[0].len(), kept);
        assert_eq!(cols[1].len(), kept);
        // Each kept row keeps its values together, and rows keep their order.
        for (a, b) in cols[0].iter().zip(&cols[1]) {
            assert_eq!(*a, -*b);
        }
        assert!(cols[0].windows(2).all(|w| w[0] < w[1]));
        // Binomial(40000, 0.25): sd 86.6; 6 sd either side.
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        let dev = (kept as f64 - n as f64 * p).abs();
        assert!(dev <= 6.0 * sd, "kept {kept} of {n} at p = {p}");
    }

    #[test]
    fn invalid_rates_do_not_sample() {
        for p in [0.0, -1.0, 1.5, f64::NAN] {
            assert_eq!(thin(batch(10), p).1, 10, "{p}");
        }
    }
}
