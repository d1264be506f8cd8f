//! Effect sizes as Evidently defines them, so that the numbers on a dashboard match what
//! users get from Evidently on the same samples. They say how large a drift is, not whether
//! there is one: the alarm never looks at them (see [`crate::stats`]).
//!
//! The definitions were checked against Evidently's source (evidentlyai/evidently,
//! `src/evidently/legacy/calculations/stattests/`: `wasserstein_distance_norm.py`,
//! `psi.py`, `jensenshannon.py` and `get_binned_data` in `utils.py`). One thing differs on
//! purpose: Evidently bins a numeric feature with more than 20 distinct reference values
//! into `np.histogram_bin_edges(concat(reference, current), bins="sturges")`, edges that
//! move with every window. Here the bins are the reference's deciles ([`QuantileBins`]),
//! fixed once per reference, so that the reference shares are computed once and successive
//! windows are measured on the same scale. For categorical features the shares are the
//! category frequencies, as in Evidently.

/// `scipy.stats.wasserstein_distance(a, b)`: the integral of |F_a - F_b| over the line, by
/// one merge walk over both samples. Both must be sorted ascending and free of NaN; NaN
/// when either is empty (scipy raises).
pub fn wasserstein(sorted_a: &[f64], sorted_b: &[f64]) -> f64 {
    if sorted_a.is_empty() || sorted_b.is_empty() {
        return f64::NAN;
    }
    let (n, m) = (sorted_a.len() as f64, sorted_b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut total = 0.0;
    loop {
        let x = match (sorted_a.get(i), sorted_b.get(j)) {
            (Some(&a), Some(&b)) if a <= b => {
                i += 1;
                a
            }
            (_, Some(&b)) => {
                j += 1;
                b
            }
            (Some(&a), None) => {
                i += 1;
                a
            }
            (None, None) => break,
        };
        let next = match (sorted_a.get(i), sorted_b.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        // Where the next value is larger, every value up to x has been consumed, so i and j
        // are the counts scipy's searchsorted(..., "right") gives; ties have zero width.
        total += (i as f64 / n - j as f64 / m).abs() * (next - x);
    }
    total
}

/// `numpy.std(values)` (ddof 0), in two passes so that a large mean does not eat the
/// digits of a small spread. NaN when empty.
pub fn std_pop(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (squares / n).sqrt()
}

/// Evidently's `wasserstein` stat test value (`wasserstein_distance_norm.py`):
/// `wasserstein_distance(reference, current) / max(np.std(reference), 0.001)`. The norm makes
/// it unitless (in reference standard deviations); the floor keeps a constant reference
/// from dividing by zero.
pub fn wasserstein_normed(sorted_reference: &[f64], sorted_current: &[f64]) -> f64 {
    wasserstein(sorted_reference, sorted_current) / std_pop(sorted_reference).max(0.001)
}

/// Bins fixed by a reference sample: the interior edges are its quantiles at
/// `i / bins` for `i` in `1..bins` (numpy's default linear interpolation,
/// `np.quantile(reference, np.arange(1, bins) / bins)`), duplicates removed as `np.unique`
/// does, so a reference with ties gets fewer bins (some may still hold no reference value).
///
/// A value `x` falls in bin `np.searchsorted(edges, x, side="left")`: a value equal to an
/// edge goes to the lower bin, and the outer bins are open to -inf and +inf, so a window
/// outside the reference's range still lands somewhere.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantileBins {
    edges: Vec<f64>,
    reference_shares: Vec<f64>,
}

impl QuantileBins {
    /// `sorted_reference` sorted ascending and free of NaN. An empty reference or `bins`
    /// below 2 gives no interior edge: one bin holding everything.
    pub fn new(sorted_reference: &[f64], bins: usize) -> QuantileBins {
        let mut edges = Vec::with_capacity(bins.saturating_sub(1));
        if !sorted_reference.is_empty() {
            for i in 1..bins {
                edges.push(linear_quantile(sorted_reference, i as f64 / bins as f64));
            }
        }
        // Sorted first as np.unique does: rounding could in principle swap neighbours.
        edges.sort_by(f64::total_cmp);
        edges.dedup();
        let mut bins = QuantileBins {
            edges,
            reference_shares: Vec::new(),
        };
        bins.reference_shares = bins.shares(sorted_reference);
        bins
    }

    /// The interior edges, ascending and distinct.
    pub fn edges(&self) -> &[f64] {
        &self.edges
    }

    /// The fraction of `sorted_values` in each bin (`edges().len() + 1` entries, summing to 1
    /// up to rounding); all zeros when there are no values.
    pub fn shares(&self, sorted_values: &[f64]) -> Vec<f64> {
        let n = sorted_values.len();
        if n == 0 {
            return vec![0.0; self.edges.len() + 1];
        }
        let mut shares = Vec::with_capacity(self.edges.len() + 1);
        let mut below = 0usize;
        for edge in &self.edges {
            // Values up to and including the edge belong to this bin or an earlier one.
            let upto = sorted_values.partition_point(|v| v <= edge);
            shares.push((upto - below) as f64 / n as f64);
            below = upto;
        }
        shares.push((n - below) as f64 / n as f64);
        shares
    }

    /// The reference's own shares, computed once.
    pub fn reference_shares(&self) -> &[f64] {
        &self.reference_shares
    }
}

/// `np.quantile(sorted, q)` with method "linear", to the bit: the virtual index `(n - 1) q`
/// and numpy's `_lerp`, which interpolates from the upper neighbour when the weight is at
/// least 1/2.
fn linear_quantile(sorted: &[f64], q: f64) -> f64 {
    let last = sorted.len() - 1;
    let virtual_index = last as f64 * q;
    if virtual_index >= last as f64 {
        return sorted[last];
    }
    if virtual_index < 0.0 {
        return sorted[0];
    }
    let below = virtual_index.floor();
    let gamma = virtual_index - below;
    let below = below as usize;
    let (a, b) = (sorted[below], sorted[below + 1]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// Evidently's zero filling (`get_binned_data(..., feel_zeroes=True)` in `utils.py`), which
/// keeps the logarithms of PSI finite: every 0 becomes `min(nonzero) / 10**6` if that
/// minimum is at most 0.0001, else 0.0001. Each vector is filled on its own and not
/// renormalised. `None` when every entry is 0 (Evidently fails on `min` of nothing).
fn fill_zeroes(shares: &[f64]) -> Option<Vec<f64>> {
    let smallest = shares
        .iter()
        .copied()
        .filter(|s| *s != 0.0)
        .reduce(f64::min)?;
    let fill = if smallest <= 0.0001 {
        smallest / 1e6
    } else {
        0.0001
    };
    Some(
        shares
            .iter()
            .map(|&s| if s == 0.0 { fill } else { s })
            .collect(),
    )
}

/// Evidently's population stability index (`psi.py`): after [`fill_zeroes`] of each
/// vector, `sum((r - c) * ln(r / c))`. NaN when the lengths differ, a vector is empty or
/// all zeros.
pub fn psi(reference_shares: &[f64], current_shares: &[f64]) -> f64 {
    if reference_shares.len() != current_shares.len() {
        return f64::NAN;
    }
    let (Some(r), Some(c)) = (fill_zeroes(reference_shares), fill_zeroes(current_shares)) else {
        return f64::NAN;
    };
    r.iter()
        .zip(&c)
        .map(|(&r, &c)| (r - c) * (r / c).ln())
        .sum()
}

/// `scipy.spatial.distance.jensenshannon(reference, current)`, the value of Evidently's
/// `jensenshannon` stat test (`jensenshannon.py`, which bins with `feel_zeroes=False`: no
/// zero filling): both vectors normalised to sum 1, natural logarithm, and the distance,
/// the square root of the divergence. NaN when the lengths differ, a vector is empty or
/// sums to 0.
///
/// One deliberate difference: a divergence rounded below zero (identical-but-for-the-last-
/// bit vectors) gives 0 where scipy gives NaN.
pub fn jensen_shannon(reference_shares: &[f64], current_shares: &[f64]) -> f64 {
    if reference_shares.len() != current_shares.len() || reference_shares.is_empty() {
        return f64::NAN;
    }
    let p_total: f64 = reference_shares.iter().sum();
    let q_total: f64 = current_shares.iter().sum();
    let (mut left, mut right) = (0.0, 0.0);
    for (&p, &q) in reference_shares.iter().zip(current_shares) {
        let (p, q) = (p / p_total, q / q_total);
        let m = (p + q) / 2.0;
        left += rel_entr(p, m);
        right += rel_entr(q, m);
    }
    let divergence = left + right;
    if divergence < 0.0 {
        return 0.0;
    }
    (divergence / 2.0).sqrt()
}

/// `scipy.special.rel_entr`: x ln(x / y), with 0 ln 0 = 0.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasserstein_by_hand() {
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) = 5: a shift by 5.
        assert_eq!(wasserstein(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]), 5.0);
        // [0, 1] against [0, 0, 1, 1]: the same distribution.
        assert_eq!(wasserstein(&[0.0, 1.0], &[0.0, 0.0, 1.0, 1.0]), 0.0);
        // [0] against [1, 2]: |1 - 0| on [0, 1) and |1 - 1/2| on [1, 2): 1.5.
        assert_eq!(wasserstein(&[0.0], &[1.0, 2.0]), 1.5);
        assert_eq!(wasserstein(&[1.0, 2.0], &[0.0]), 1.5);
        assert!(wasserstein(&[], &[1.0]).is_nan());
        // A constant reference is normed by 0.001.
        assert_eq!(wasserstein_normed(&[2.0, 2.0], &[2.5]), 0.5 / 0.001);
    }

    #[test]
    fn std_keeps_the_digits_of_a_small_spread() {
        let values = [1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0, 1e9 + 4.0];
        assert_eq!(std_pop(&values), 1.25f64.sqrt());
        assert!(std_pop(&[]).is_nan());
    }

    #[test]
    fn bins_put_values_on_an_edge_in_the_lower_bin() {
        // np.quantile([1, 2, 3, 4, 5], [0.25, 0.5, 0.75]) = [2, 3, 4].
        let bins = QuantileBins::new(&[1.0, 2.0, 3.0, 4.0, 5.0], 4);
        assert_eq!(bins.edges(), &[2.0, 3.0, 4.0]);
        assert_eq!(bins.reference_shares(), &[0.4, 0.2, 0.2, 0.2]);
        assert_eq!(
            bins.shares(&[-10.0, 2.0, 2.5, 3.0, 100.0]),
            vec![0.4, 0.4, 0.0, 0.2]
        );
        assert_eq!(bins.shares(&[]), vec![0.0; 4]);
        // Ties: the deciles of [0, 0, 0, 0, 1] sit at virtual indices 0.4, 0.8, ..., 3.6; the
        // first seven are 0, then 0.8 -> 4 * 0.8 - 3 = 0.20000000000000018 and 0.9 -> from the
        // upper neighbour, 1 - (1 - 0.6) = 0.6000000000000001 (numpy's digits).
        let ties = QuantileBins::new(&[0.0, 0.0, 0.0, 0.0, 1.0], 10);
        assert_eq!(
            ties.edges(),
            &[0.0, 0.200_000_000_000_000_18, 0.600_000_000_000_000_1]
        );
        assert_eq!(QuantileBins::new(&[], 10).edges(), &[] as &[f64]);
        assert_eq!(QuantileBins::new(&[], 10).reference_shares(), &[0.0]);
        assert_eq!(QuantileBins::new(&[3.0], 10).edges(), &[3.0]);
    }

    #[test]
    fn psi_fills_zeroes_as_evidently() {
        // The reference's zero becomes 0.0001 (its smallest nonzero share, 0.5, is above
        // 1e-4); the current has none.
        let got = psi(&[0.5, 0.5, 0.0], &[0.25, 0.25, 0.5]);
        let want = 2.0 * (0.25 * 2f64.ln()) + (0.0001 - 0.5) * (0.0001f64 / 0.5).ln();
        assert!((got - want).abs() <= 1e-15 * want, "{got} {want}");
        // With a tiny share the fill is that share / 1e6.
        assert_eq!(
            fill_zeroes(&[0.0, 0.00005, 0.99995]),
            Some(vec![0.00005 / 1e6, 0.00005, 0.99995])
        );
        assert_eq!(psi(&[0.3, 0.7], &[0.3, 0.7]), 0.0);
        assert!(psi(&[0.0, 0.0], &[0.5, 0.5]).is_nan());
        assert!(psi(&[1.0], &[0.5, 0.5]).is_nan());
    }

    #[test]
    fn jensen_shannon_by_hand() {
        // Disjoint supports: divergence ln 2, distance sqrt(ln 2).
        let got = jensen_shannon(&[1.0, 0.0], &[0.0, 1.0]);
        assert!((got - 2f64.ln().sqrt()).abs() <= 1e-15, "{got}");
        // Normalised first: counts work as well as shares.
        assert_eq!(jensen_shannon(&[2.0, 2.0], &[0.5, 0.5]), 0.0);
        assert!(jensen_shannon(&[0.0, 0.0], &[0.5, 0.5]).is_nan());
        assert!(jensen_shannon(&[], &[]).is_nan());
    }
}
