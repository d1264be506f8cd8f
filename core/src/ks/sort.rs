//! Sorting samples of f64 for the test.
//!
//! Sorting the window is a large share of an evaluation once the statistic and p-value are
//! fast. numpy sorts with SIMD; to stay ahead, large samples are sorted by an LSD radix sort on
//! the order-preserving integer image of the floats (about 2x faster than the standard
//! comparison sort for 10^4 values), small ones by the standard unstable sort.

/// From this length on the radix sort wins over the comparison sort.
const RADIX_MIN_LEN: usize = 4096;
const DIGIT_BITS: u32 = 11;
const BUCKETS: usize = 1 << DIGIT_BITS;
/// Digits are the top 33 significant bits of `key - min_key`: three passes order the keys by
/// them (exactly, if the keys span no more bits); keys that agree on those (a handful for
/// data from a continuous distribution) are then put in order by an insertion pass, which
/// falls back to a comparison sort if that turns out to be a lot of work. (Two passes leave
/// enough near-ties that the branchy insertion pass costs more than the third pass.)
const PASSES: usize = 3;
const SORTED_BITS: u32 = PASSES as u32 * DIGIT_BITS;

/// Reusable buffers of the radix sort.
#[derive(Clone, Debug, Default)]
pub(crate) struct SortScratch {
    keys: Vec<u64>,
    tmp: Vec<u64>,
    counts: Vec<u32>,
}

/// Order-preserving map of a non-NaN float onto u64 (IEEE total order: -0.0 before 0.0).
#[inline]
fn key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

#[inline]
fn from_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// Sorts values ascending in the IEEE total order (so the result equals
/// `sort_unstable_by(f64::total_cmp)`); returns false, leaving `values` untouched, if one is
/// NaN (checked in the same pass that computes the keys).
pub(crate) fn sort_floats(values: &mut [f64], scratch: &mut SortScratch) -> bool {
    let n = values.len();
    // Counts are u32.
    if n < RADIX_MIN_LEN || n > u32::MAX as usize {
        if values.iter().any(|v| v.is_nan()) {
            return false;
        }
        values.sort_unstable_by(f64::total_cmp);
        return true;
    }
    let SortScratch { keys, tmp, counts } = scratch;
    keys.clear();
    let mut nan = false;
    let (mut lo, mut hi) = (u64::MAX, 0);
    keys.extend(values.iter().map(|&v| {
        nan |= v.is_nan();
        let k = key(v);
        lo = lo.min(k);
        hi = hi.max(k);
        k
    }));
    if nan {
        return false;
    }
    let span_bits = 64 - (hi - lo).leading_zeros();
    let shift = span_bits.saturating_sub(SORTED_BITS);
    let digit = |k: u64, pass: usize| -> usize {
        (((k - lo) >> (shift + DIGIT_BITS * pass as u32)) as usize) & (BUCKETS - 1)
    };
    tmp.clear();
    tmp.resize(n, 0);
    counts.clear();
    counts.resize(BUCKETS * PASSES, 0);
    for &k in keys.iter() {
        for (p, c) in counts.chunks_exact_mut(BUCKETS).enumerate() {
            c[digit(k, p)] += 1;
        }
    }
    for (p, c) in counts.chunks_exact_mut(BUCKETS).enumerate() {
        if c[digit(lo, p)] as usize == n {
            // Every key has the same digit here.
            continue;
        }
        let mut sum = 0u32;
        for x in c.iter_mut() {
            let t = *x;
            *x = sum;
            sum += t;
        }
        for &k in keys.iter() {
            let slot = &mut c[digit(k, p)];
            if let Some(t) = tmp.get_mut(*slot as usize) {
                *t = k;
            }
            *slot += 1;
        }
        std::mem::swap(keys, tmp);
    }
    if shift > 0 && !insertion_fixup(keys, 4 * n) {
        keys.sort_unstable();
    }
    for (v, &k) in values.iter_mut().zip(keys.iter()) {
        *v = from_key(k);
    }
    true
}

/// Insertion sort of an almost sorted slice; gives up (returning false) after `budget` moves.
fn insertion_fixup(keys: &mut [u64], budget: usize) -> bool {
    let mut moves = 0;
    for i in 1..keys.len() {
        let k = keys[i];
        let mut p = i;
        while p > 0 && keys[p - 1] > k {
            keys[p] = keys[p - 1];
            p -= 1;
            moves += 1;
        }
        keys[p] = k;
        if moves > budget {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_nan_without_touching_the_values() {
        let mut scratch = SortScratch::default();
        for len in [10usize, 5000] {
            let mut v: Vec<f64> = (0..len).rev().map(|i| i as f64).collect();
            v[len / 2] = f64::NAN;
            let before: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
            assert!(!sort_floats(&mut v, &mut scratch));
            assert!(v.iter().map(|x| x.to_bits()).eq(before));
        }
    }

    #[test]
    fn matches_comparison_sort() {
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let specials = [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            5e-324,
            -5e-324,
            f64::MAX,
            1.0,
        ];
        let mut scratch = SortScratch::default();
        // Values that agree on their high bits: a narrow range, then the insertion pass and
        // its fallback.
        for spread in [3u64, 1 << 18, 1 << 40] {
            let mut v: Vec<f64> = (0..6000u64)
                .map(|i| f64::from_bits(1.0f64.to_bits() + (i * 7919) % spread))
                .collect();
            let mut want = v.clone();
            want.sort_unstable_by(f64::total_cmp);
            assert!(sort_floats(&mut v, &mut scratch));
            assert_eq!(v, want);
        }
        for len in [0usize, 1, 100, 5000, 9000] {
            let mut v: Vec<f64> = (0..len)
                .map(|i| {
                    let r = next();
                    if i % 7 == 0 {
                        specials[(r % 8) as usize]
                    } else {
                        f64::from_bits(r >> 2) * if r & 1 == 0 { 1.0 } else { -1.0 }
                    }
                })
                .filter(|x| !x.is_nan())
                .collect();
            let mut want = v.clone();
            want.sort_unstable_by(f64::total_cmp);
            assert!(sort_floats(&mut v, &mut scratch));
            let same = v.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same && v.len() == want.len(), "len {len}");
        }
    }
}
