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
    n + blocks
        .remainder()
        .iter()
        .take_while(|&&w| w < v)
        .count()
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

/// Extremes of `i/n1 - j/n2` over the pooled values of two sorted, NaN-free, non-empty samples.
///
/// Between two consecutive distinct values of `x`, `i` is constant and `j` grows, so there the
/// difference only decreases: the maximum is always reached at a value of `x`, and the minimum
/// either at a value of `x` or at the last `y` value before the next `x` value (or the last `y`
/// value overall). Only those points are evaluated. Locations: scipy reports the first index
/// of `concat(x, y)`, so any `x` value reaching the extreme beats every `y` value; the tie
/// group of a `y` candidate is only resolved at the end.
pub(crate) fn extremes(x: &[f64], y: &[f64]) -> Extremes {
    let n1 = x.len() as f64;
    let n2 = y.len() as f64;
    let diff = |i: usize, j: usize| (i as f64) / n1 - (j as f64) / n2;
    let mut max = f64::NEG_INFINITY;
    let mut max_location = f64::NAN;
    let mut min = f64::INFINITY;
    let mut min_x: Option<f64> = None;
    let mut min_y: Option<usize> = None;
    let (mut i, mut j) = (0usize, 0usize);
    while let Some(&v) = x.get(i) {
        // y values strictly below v: the last one is a candidate minimum (y only).
        let run = count_below(&y[j..], v);
        if run > 0 {
            j += run;
            let d = diff(i, j);
            if d < min {
                min = d;
                min_x = None;
                min_y = Some(j - 1);
            } else if d == min && min_y.is_none() {
                min_y = Some(j - 1);
            }
        }
        // The tie group of v in both samples (-0.0 <= 0.0, so the zeros group together).
        let x_start = i;
        i += 1;
        while i < x.len() && x[i] <= v {
            i += 1;
        }
        while j < y.len() && y[j] <= v {
            j += 1;
        }
        let d = diff(i, j);
        if d > max {
            max = d;
            max_location = x[x_start];
        }
        if d < min {
            min = d;
            min_x = Some(x[x_start]);
            min_y = None;
        } else if d == min && min_x.is_none() {
            min_x = Some(x[x_start]);
        }
    }
    if j < y.len() {
        // y values above every x value: the last one ends with difference 0.
        let d = diff(i, y.len());
        if d < min {
            min = d;
            min_x = None;
            min_y = Some(y.len() - 1);
        } else if d == min && min_y.is_none() {
            min_y = Some(y.len() - 1);
        }
    }
    let min_location = match (min_x, min_y) {
        (Some(loc), _) => loc,
        // The first element of the tie group of y[k].
        (None, Some(k)) => y[y[..k].partition_point(|&w| w < y[k])],
        (None, None) => f64::NAN,
    };
    Extremes {
        max,
        max_location,
        min,
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
        for (x, y) in cases {
            let got = extremes(&x, &y);
            let want = reference(&x, &y);
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
