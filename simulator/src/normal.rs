//! The standard normal CDF and its inverse, for the Gaussian copula.
//!
//! Written out here rather than pulling a statistics crate in: the copula needs exactly these
//! two functions, and their accuracy (about 1e-15 absolute for the CDF, 1e-9 relative for
//! the quantile) is far below what an interpolated empirical marginal can resolve.

/// Complementary error function (Numerical Recipes' `erfcc`, Chebyshev fit): relative error
/// below 1.2e-7 everywhere, so far tails keep their relative precision instead of rounding to 0.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Φ(x), the standard normal CDF: Marsaglia's series (absolute error about 1e-15) in the
/// body, `erfc` in the tails where relative precision matters more.
pub fn cdf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x.abs() > 5.0 {
        return 0.5 * erfc(-x / std::f64::consts::SQRT_2);
    }
    // Φ(x) = 1/2 + φ(x) · (x + x³/3 + x⁵/(3·5) + …)
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    let mut k = 1.0;
    loop {
        k += 2.0;
        term *= x2 / k;
        let next = sum + term;
        if next == sum {
            break;
        }
        sum = next;
    }
    0.5 + sum * (-0.5 * x2).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Φ⁻¹(p) by Acklam's rational approximation (relative error about 1.15e-9); `p` outside
/// (0, 1) gives ∓∞, which callers avoid by using ranks / (n + 1).
pub fn quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert!((cdf(0.0) - 0.5).abs() < 1e-9);
        assert!((cdf(1.0) - 0.841_344_746_068_543).abs() < 1e-14);
        assert!((cdf(-3.0) - 0.001_349_898_031_630_094_6).abs() < 1e-15);
        assert!((cdf(-1.959_963_984_540_054) - 0.025).abs() < 1e-8);
        assert!((cdf(-6.0) / 9.865_876_450_376_98e-10 - 1.0).abs() < 1e-6);
        assert!((quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((quantile(0.5)).abs() < 1e-12);
        assert!((quantile(1e-6) + 4.753_424_308_822_899).abs() < 1e-7);
    }

    #[test]
    fn quantile_inverts_cdf() {
        for i in 1..1000 {
            let p = i as f64 / 1000.0;
            assert!((cdf(quantile(p)) - p).abs() < 1e-8, "p = {p}");
        }
    }
}
