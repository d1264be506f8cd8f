//! Double-double arithmetic (an unevaluated sum `hi + lo` of two `f64`s).
//!
//! The one-sided Smirnov sum adds hundreds of terms whose binomial weights overflow an `f64`
//! and whose powers lose bits quickly; scipy evaluates it in this ~106-bit format (the `qd`
//! package as used by xsf), and the same operation order is kept here so that the tail
//! probabilities agree with scipy well below the parity tolerance.

use std::ops::{Add, Div, Mul, Neg, Sub};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Dd {
    pub hi: f64,
    pub lo: f64,
}

/// `fl(a + b)` and its rounding error, assuming `|a| >= |b|`.
#[inline]
fn quick_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    (s, b - c)
}

/// `fl(a + b)` and its rounding error, for any ordering of magnitudes.
#[inline]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    let d = b - c;
    let e = s - c;
    (s, (a - e) + d)
}

/// `fl(a * b)` and its rounding error (exact thanks to the fused multiply-add).
#[inline]
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

impl Dd {
    pub const fn new(hi: f64) -> Self {
        Dd { hi, lo: 0.0 }
    }

    pub fn is_finite(self) -> bool {
        self.hi.is_finite()
    }

    /// `self == x` with `x` widened to a double-double (so `lo` must be zero).
    pub fn eq_f64(self, x: f64) -> bool {
        self.hi == x && self.lo == 0.0
    }

    pub fn floor(self) -> Self {
        let hi = self.hi.floor();
        if hi == self.hi {
            let (h, l) = quick_two_sum(hi, self.lo.floor());
            Dd { hi: h, lo: l }
        } else {
            Dd { hi, lo: 0.0 }
        }
    }

    /// Mantissa in [0.5, 1) (with the qd convention for a mantissa of exactly 0.5) and exponent.
    pub fn frexp(self) -> (Self, i32) {
        let (mut man, mut e) = frexp(self.hi);
        let mut b1 = ldexp(self.lo, -e);
        if man.abs() == 0.5 && man * b1 < 0.0 {
            man *= 2.0;
            b1 *= 2.0;
            e -= 1;
        }
        (Dd { hi: man, lo: b1 }, e)
    }

    pub fn ldexp(self, e: i32) -> Self {
        Dd {
            hi: ldexp(self.hi, e),
            lo: ldexp(self.lo, e),
        }
    }
}

impl Neg for Dd {
    type Output = Dd;
    fn neg(self) -> Dd {
        Dd {
            hi: -self.hi,
            lo: -self.lo,
        }
    }
}

impl Add for Dd {
    type Output = Dd;
    fn add(self, rhs: Dd) -> Dd {
        let (s1, s2) = two_sum(self.hi, rhs.hi);
        let (t1, t2) = two_sum(self.lo, rhs.lo);
        let (s1, s2) = quick_two_sum(s1, s2 + t1);
        let (hi, lo) = quick_two_sum(s1, s2 + t2);
        Dd { hi, lo }
    }
}

impl Add<f64> for Dd {
    type Output = Dd;
    fn add(self, rhs: f64) -> Dd {
        let (s1, s2) = two_sum(self.hi, rhs);
        let (hi, lo) = quick_two_sum(s1, s2 + self.lo);
        Dd { hi, lo }
    }
}

impl Add<Dd> for f64 {
    type Output = Dd;
    fn add(self, rhs: Dd) -> Dd {
        let (s1, s2) = two_sum(self, rhs.hi);
        let (hi, lo) = quick_two_sum(s1, s2 + rhs.lo);
        Dd { hi, lo }
    }
}

impl Sub for Dd {
    type Output = Dd;
    fn sub(self, rhs: Dd) -> Dd {
        self + (-rhs)
    }
}

impl Sub<f64> for Dd {
    type Output = Dd;
    fn sub(self, rhs: f64) -> Dd {
        let (s1, s2) = two_sum(self.hi, -rhs);
        let (hi, lo) = quick_two_sum(s1, s2 + self.lo);
        Dd { hi, lo }
    }
}

impl Sub<Dd> for f64 {
    type Output = Dd;
    fn sub(self, rhs: Dd) -> Dd {
        let (s1, s2) = two_sum(self, -rhs.hi);
        let (hi, lo) = quick_two_sum(s1, s2 - rhs.lo);
        Dd { hi, lo }
    }
}

impl Mul for Dd {
    type Output = Dd;
    fn mul(self, rhs: Dd) -> Dd {
        let (p1, p2) = two_prod(self.hi, rhs.hi);
        let p2 = p2 + (self.hi * rhs.lo + self.lo * rhs.hi);
        let (hi, lo) = quick_two_sum(p1, p2);
        Dd { hi, lo }
    }
}

impl Mul<f64> for Dd {
    type Output = Dd;
    fn mul(self, rhs: f64) -> Dd {
        let (p1, e1) = two_prod(self.hi, rhs);
        let (p2, e2) = two_prod(self.lo, rhs);
        let (hi, lo) = quick_two_sum(p1, e2 + p2 + e1);
        Dd { hi, lo }
    }
}

impl Mul<Dd> for f64 {
    type Output = Dd;
    fn mul(self, rhs: Dd) -> Dd {
        rhs * self
    }
}

impl Div for Dd {
    type Output = Dd;
    fn div(self, rhs: Dd) -> Dd {
        let q1 = self.hi / rhs.hi;
        let r = self - rhs * q1;
        let q2 = r.hi / rhs.hi;
        let r = r - rhs * q2;
        let q3 = r.hi / rhs.hi;
        let (q1, q2) = quick_two_sum(q1, q2);
        Dd { hi: q1, lo: q2 } + q3
    }
}

impl Div<f64> for Dd {
    type Output = Dd;
    fn div(self, rhs: f64) -> Dd {
        self / Dd::new(rhs)
    }
}

impl Div<Dd> for f64 {
    type Output = Dd;
    fn div(self, rhs: Dd) -> Dd {
        Dd::new(self) / rhs
    }
}

/// C's `frexp`: `x = m * 2^e` with `0.5 <= |m| < 1`; zero, infinities and NaN come back as is.
pub(crate) fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first (2^64 is exact).
        let (m, e) = frexp(x * f64::from_bits(0x43f0_0000_0000_0000));
        return (m, e - 64);
    }
    let mantissa = f64::from_bits((bits & !(0x7ff_u64 << 52)) | (1022_u64 << 52));
    (mantissa, biased - 1022)
}

/// C's `ldexp`/`scalbn`: `x * 2^n` with a single rounding, also into the subnormal range.
pub(crate) fn ldexp(x: f64, n: i32) -> f64 {
    let two_1023 = f64::from_bits(0x7fe0_0000_0000_0000);
    // 2^-1022 * 2^53: scaling by this keeps intermediate results normal (musl's scalbn).
    let tiny = f64::from_bits(0x0360_0000_0000_0000);
    let mut y = x;
    let mut n = n;
    if n > 1023 {
        y *= two_1023;
        n -= 1023;
        if n > 1023 {
            y *= two_1023;
            n -= 1023;
            n = n.min(1023);
        }
    } else if n < -1022 {
        y *= tiny;
        n += 1022 - 53;
        if n < -1022 {
            y *= tiny;
            n += 1022 - 53;
            n = n.max(-1022);
        }
    }
    y * f64::from_bits(((0x3ff + n) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frexp_ldexp_round_trip() {
        for &x in &[1.0, 0.75, -3.5, 1e-310, 5e-324, 1.7e308, 123456.789] {
            let (m, e) = frexp(x);
            assert!((0.5..1.0).contains(&m.abs()), "{x}: {m}");
            assert_eq!(ldexp(m, e), x);
        }
        assert_eq!(ldexp(1.0, -1074), 5e-324);
        assert_eq!(ldexp(1.0, 1024), f64::INFINITY);
        assert_eq!(ldexp(1.0, -1080), 0.0);
    }

    #[test]
    fn division_is_accurate_beyond_f64() {
        let third = Dd::new(1.0) / 3.0;
        let back = third * 3.0;
        assert_eq!(back.hi, 1.0);
        assert!(back.lo.abs() < 1e-31);
        assert!(third.lo != 0.0);
    }
}
