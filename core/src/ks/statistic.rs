//! The extremes of `cdf1 - cdf2` over the pooled sample, with scipy's tie rules.
//!
//! scipy evaluates both empirical CDFs at every pooled value with `searchsorted(side='right')`,
//! so a run of tied values (-0.0 and 0.0 included) is counted all at once, and it reports the
//! pooled value at the *first* arg-extremum of `concat(sorted x, sorted y)`: values of `x`
//! win ties against values of `y`. Both are reproduced by a single merge walk over the two
//! sorted samples that only evaluates the points that can be extremes.

/// Max and min of `cdf1 - cdf2` and the pooled values where scipy locates them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Extremes {
    pub max: f64,
    pub max_location: f64,
    pub min: f64,
    pub min_location: f64,
}

/// Number of leading elements of `s` below `v` (`s` sorted), for the runs of one sample that
/// fall between two values of the other: counted eight at a time without data-dependent
/// branches (the usual run is a handful of values), galloping for very long runs.
#[inline]
fn count_below(s: &[f64], v: f64) -> usize {
    let mut n = 0;
    let mut blocks = s.chunks_exact(8);
    for (b, block) in blocks.by_ref().enumerate() {
        let c = block.iter().map(|&w| usize::from(w < v)).sum::<usize>();
        n += c;
        if c < 8 {
            return n;
        }
        if b == 8 {
            let rest = &s[n..];
            return n + gallop(rest, |w| w < v);
        }
    }
    n + blocks.remainder().iter().take_while(|&&w| w < v).count()
}

/// Number of leading elements of `s` for which `pred` holds (`pred` monotone: true then false),
/// by galloping so that a long run costs O(log run).
fn gallop(s: &[f64], pred: impl Fn(f64) -> bool) -> usize {
    let mut bound = 1;
    while bound < s.len() && pred(s[bound - 1]) {
        bound *= 2;
    }
    let lo = bound / 2;
    let hi = bound.min(s.len());
    lo + s[lo..hi].partition_point(|&w| pred(w))
}

/// Running maximum of the CDF difference, with scipy's first-occurrence location.
///
/// Comparing floats would need two divisions per point; instead the exact difference
/// `(i n2 - j n1) / (n1 n2)` is compared through its integer numerator, and the float (what
/// numpy compares) is only computed for points that reach the best numerator. While
/// n1 n2 <= 2^48 two different exact values are further apart than the rounding error of
/// the float difference, so the integer order is the float order, except that equal exact
/// values may round to different floats: those are compared as floats. Larger sizes give
/// every point numerator 0, i.e. plain float comparisons.
///
/// Locations are kept as an index into the tie group of `x` (resolved at the end).
struct MaxTracker {
    num: i64,
    value: f64,
    x_index: Option<usize>,
}

/// Running minimum; locations are split by sample because any `x` value beats every `y`
/// value reaching the same minimum (it comes first in `concat(x, y)`).
struct MinTracker {
    num: i64,
    value: f64,
    x_index: Option<usize>,
    y_index: Option<usize>,
}

/// Where a candidate point was found: in a tie group containing `x` values (which wins
/// location ties), or in one with only `y` values. The index is any element of the group.
#[derive(Clone, Copy)]
enum At {
    X(usize),
    Y(usize),
}

struct Cdfs {
    n1: f64,
    n2: f64,
    n1i: i64,
    n2i: i64,
    exact_order: bool,
}

impl Cdfs {
    fn numerator(&self, i: usize, j: usize) -> i64 {
        if self.exact_order {
            i as i64 * self.n2i - j as i64 * self.n1i
        } else {
            0
        }
    }

    /// cdf1 - cdf2 exactly as numpy computes it: two correctly rounded divisions.
    fn diff(&self, i: usize, j: usize) -> f64 {
        (i as f64) / self.n1 - (j as f64) / self.n2
    }
}

impl MaxTracker {
    /// Only points in groups containing `x` can be maxima.
    fn offer(&mut self, c: &Cdfs, i: usize, j: usize, x_index: usize) {
        let num = c.numerator(i, j);
        if num < self.num {
            return;
        }
        let d = c.diff(i, j);
        if num > self.num || d > self.value {
            self.num = num;
            self.value = d;
            self.x_index = Some(x_index);
        }
    }
}

impl MinTracker {
    fn offer(&mut self, c: &Cdfs, i: usize, j: usize, at: At) {
        let num = c.numerator(i, j);
        if num > self.num {
            return;
        }
        let d = c.diff(i, j);
        if num < self.num || d < self.value {
            self.num = num;
            self.value = d;
            self.x_index = None;
            self.y_index = None;
        } else if d != self.value {
            return;
        }
        match at {
            At::X(k) => {
                self.x_index.get_or_insert(k);
            }
            At::Y(k) => {
                self.y_index.get_or_insert(k);
            }
        }
    }
}

/// First element of the tie group (as floats compare) of `s[k]`.
fn group_start(s: &[f64], k: usize) -> f64 {
    match s.get(k) {
        Some(&v) => s[s[..k].partition_point(|&w| w < v)],
        None => f64::NAN,
    }
}

/// Extremes of `i/n1 - j/n2` over the pooled values of two sorted, NaN-free, non-empty samples.
///
/// Between two consecutive distinct values of one sample, only the other sample's count
/// grows, so the difference is monotone there: the maximum is always reached at the last
/// `x` value of a run of `x` values (or in a group where both samples tie), the minimum at the
/// last `y` value of a run of `y` values (or in a tie group). Only those points are evaluated,
/// walking the smaller sample group by group and counting the runs of the other in blocks.
/// Locations: scipy reports the first index of `concat(x, y)`, so any `x` value reaching the
/// extreme beats every `y` value.
pub(crate) fn extremes(x: &[f64], y: &[f64]) -> Extremes {
    let product = (x.len() as u128) * (y.len() as u128);
    extremes_with(x, y, product <= 1 << 48, x.len() > y.len())
}

fn extremes_with(x: &[f64], y: &[f64], exact_order: bool, walk_y: bool) -> Extremes {
    let c = Cdfs {
        n1: x.len() as f64,
        n2: y.len() as f64,
        n1i: x.len() as i64,
        n2i: y.len() as i64,
        exact_order,
    };
    let mut max = MaxTracker {
        num: i64::MIN,
        value: f64::NEG_INFINITY,
        x_index: None,
    };
    let mut min = MinTracker {
        num: i64::MAX,
        value: f64::INFINITY,
        x_index: None,
        y_index: None,
    };
    let (mut i, mut j) = (0usize, 0usize);
    if walk_y {
        while let Some(&w) = y.get(j) {
            // x values strictly below w: the last one is a candidate maximum.
            let run = count_below(&x[i..], w);
            if run > 0 {
                i += run;
                max.offer(&c, i, j, i - 1);
            }
            // The tie group of w in both samples (-0.0 <= 0.0, so the zeros group together).
            let y_start = j;
            let x_start = i;
            j += 1;
            while j < y.len() && y[j] <= w {
                j += 1;
            }
            while i < x.len() && x[i] <= w {
                i += 1;
            }
            if i > x_start {
                max.offer(&c, i, j, x_start);
                min.offer(&c, i, j, At::X(x_start));
            } else {
                min.offer(&c, i, j, At::Y(y_start));
            }
        }
        if i < x.len() {
            // x values above every y value: the last one ends with difference 0.
            max.offer(&c, x.len(), j, x.len() - 1);
        }
    } else {
        while let Some(&v) = x.get(i) {
            // y values strictly below v: the last one is a candidate minimum.
            let run = count_below(&y[j..], v);
            if run > 0 {
                j += run;
                min.offer(&c, i, j, At::Y(j - 1));
            }
            let x_start = i;
            i += 1;
            while i < x.len() && x[i] <= v {
                i += 1;
            }
            while j < y.len() && y[j] <= v {
                j += 1;
            }
            max.offer(&c, i, j, x_start);
            min.offer(&c, i, j, At::X(x_start));
        }
        if j < y.len() {
            // y values above every x value: the last one ends with difference 0.
            min.offer(&c, i, y.len(), At::Y(y.len() - 1));
        }
    }
    let min_location = match (min.x_index, min.y_index) {
        (Some(k), _) => group_start(x, k),
        (None, Some(k)) => group_start(y, k),
        (None, None) => f64::NAN,
    };
    Extremes {
        max: max.value,
        max_location: max.x_index.map_or(f64::NAN, |k| group_start(x, k)),
        min: min.value,
        min_location,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scipy's definition, literally: searchsorted over concat(x, y), first argmax/argmin.
    fn reference(x: &[f64], y: &[f64]) -> Extremes {
        let pooled: Vec<f64> = x.iter().chain(y).copied().collect();
        let cdf = |s: &[f64], v: f64| s.iter().filter(|&&w| w <= v).count() as f64 / s.len() as f64;
        let diffs: Vec<f64> = pooled.iter().map(|&v| cdf(x, v) - cdf(y, v)).collect();
        let mut amax = 0;
        let mut amin = 0;
        for (k, &d) in diffs.iter().enumerate() {
            if d > diffs[amax] {
                amax = k;
            }
            if d < diffs[amin] {
                amin = k;
            }
        }
        Extremes {
            max: diffs[amax],
            max_location: pooled[amax],
            min: diffs[amin],
            min_location: pooled[amin],
        }
    }

    #[test]
    fn matches_definition_on_ties() {
        let cases: Vec<(Vec<f64>, Vec<f64>)> = vec![
            (vec![1.0, 2.0, 3.0], vec![1.0, 2.0, 3.0]),
            (vec![0.0, 0.0, 1.0], vec![-0.0, 1.0, 1.0, 2.0]),
            (vec![5.0], vec![1.0, 2.0, 3.0]),
            (vec![1.0, 2.0, 3.0], vec![5.0]),
            (vec![1.0; 7], vec![1.0; 11]),
            (vec![1.0; 7], vec![2.0; 11]),
            (vec![2.0; 7], vec![1.0; 11]),
            (
                vec![f64::NEG_INFINITY, 0.0, f64::INFINITY],
                vec![f64::INFINITY, f64::INFINITY],
            ),
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut draw = |n: usize, k: u64| -> Vec<f64> {
            let mut v: Vec<f64> = (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % k) as f64 - (k / 2) as f64
                })
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let mut cases = cases;
        for (n1, n2, k) in [(7, 11, 5), (30, 40, 9), (100, 35, 60), (3, 200, 400)] {
            for _ in 0..20 {
                cases.push((draw(n1, k), draw(n2, k)));
            }
        }
        for (x, y) in cases {
            let got = extremes(&x, &y);
            let want = reference(&x, &y);
            for (exact, walk_y) in [(false, false), (false, true), (true, false), (true, true)] {
                let other = extremes_with(&x, &y, exact, walk_y);
                assert_eq!(got, other, "{x:?} {y:?} {exact} {walk_y}");
            }
            assert_eq!(got.max, want.max, "{x:?} {y:?}");
            assert_eq!(got.min, want.min, "{x:?} {y:?}");
            assert_eq!(got.max_location, want.max_location, "{x:?} {y:?}");
            assert_eq!(got.min_location, want.min_location, "{x:?} {y:?}");
        }
    }

    #[test]
    fn counts_prefix() {
        for len in [0usize, 1, 7, 8, 9, 64, 100, 1000] {
            let s: Vec<f64> = (0..len).map(|k| k as f64).collect();
            for t in 0..=(len + 1) {
                let t = t as f64;
                let want = s.iter().filter(|&&v| v < t).count();
                assert_eq!(count_below(&s, t), want);
                assert_eq!(gallop(&s, |v| v < t), want);
            }
        }
    }
}
