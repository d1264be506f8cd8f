//! Survival function of `kstwo`, the exact finite-n distribution of the two-sided one-sample
//! statistic D_n, which scipy's `ks_2samp` uses (with n = round(m n / (m + n))) for its
//! asymptotic two-sided p-value.
//!
//! No single method is both fast and accurate over the whole (n, d) plane, so the method is
//! chosen as in Simard & L'Ecuyer (2011) / scipy's `_kolmogn`: closed forms at both ends of the
//! support, the Durbin matrix (Marsaglia-Tsang-Wang) or Pomeranz recursion for small n d^2,
//! twice the one-sided Smirnov tail when the two one-sided events cannot both happen, and the
//! Pelz-Good expansion for large n.

use super::smirnov::smirnov_sf;

/// 2^128 and 2^-128: rescaling steps that keep the recursions inside the f64 range.
const EP128: f64 = 3.402_823_669_209_385e38;
const EM128: f64 = 2.938_735_877_055_719e-39;
const E128: i64 = 128;
const MIN_LOG: f64 = -708.0;
const PI_SQUARED: f64 = std::f64::consts::PI * std::f64::consts::PI;
/// B_{2j} / (2j (2j - 1)) for j = 8..1, as scipy lists them.
#[allow(clippy::excessive_precision)]
const STIRLING_COEFFS: [f64; 8] = [
    -2.955065359477124183e-2,
    6.4102564102564102564e-3,
    -1.9175269175269175269e-3,
    8.4175084175084175084e-4,
    -5.952380952380952381e-4,
    7.9365079365079365079e-4,
    -2.7777777777777777778e-3,
    8.3333333333333333333e-2,
];

/// `kstwo.sf(d, n)` with scipy's handling of the support: n must be a positive integer
/// (NaN otherwise), d <= 1/(2n) gives 1 and d >= 1 gives 0.
pub(crate) fn kstwo_sf(d: f64, n: f64) -> f64 {
    if d.is_nan() || !(n >= 1.0 && n == n.round_ties_even()) {
        return f64::NAN;
    }
    if d <= 0.5 / n {
        return 1.0;
    }
    if d >= 1.0 {
        return 0.0;
    }
    // n is an integral float >= 1; absurd sizes saturate, which only selects an approximation.
    kolmogn_sf(n as i64, d)
}

fn clip01(p: f64) -> f64 {
    p.clamp(0.0, 1.0)
}

/// `_kolmogn(n, x, cdf=False)`.
fn kolmogn_sf(n: i64, x: f64) -> f64 {
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben-Gambino: cdf = n!/n^n (2t - 1)^n for 1/(2n) <= x <= 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140 {
            let inv_n = 1.0 / nf;
            let c = 2.0 * t - 1.0;
            let mut p = 1.0;
            for i in 1..=n {
                p *= (i as f64) * inv_n * c;
            }
            p
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip01(1.0 - prob);
    }
    if t >= nf - 1.0 {
        // Ruben-Gambino: sf = 2 (1 - x)^n for x >= 1 - 1/n.
        return clip01(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        // The two one-sided events are disjoint here.
        return clip01(2.0 * smirnov_sf(n, x));
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            return clip01(1.0 - durbin_mtw_cdf(n, x));
        }
        if nxsquared <= 4.0 {
            return clip01(1.0 - pomeranz_cdf(n, x));
        }
        return clip01(2.0 * smirnov_sf(n, x));
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip01(2.0 * smirnov_sf(n, x));
    }
    let cdf = if nxsquared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        durbin_mtw_cdf(n, x)
    } else {
        pelz_good_cdf(nf, x)
    };
    clip01(1.0 - cdf)
}

/// log(n!/n^n) by Stirling's series with the n log n term removed up front.
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    let rn = 1.0 / n;
    let z = rn / n;
    let mut poly = 0.0;
    for c in STIRLING_COEFFS {
        poly = poly * z + c;
    }
    let log_2pi = (2.0 * std::f64::consts::PI).ln();
    n.ln() / 2.0 - n + log_2pi / 2.0 + rn * poly
}

/// Square matrices stored row-major; sizes stay below ~120 for the (n, d) this is used for.
fn matmul(a: &[f64], b: &[f64], m: usize, out: &mut Vec<f64>) {
    out.clear();
    out.resize(m * m, 0.0);
    for (row_out, row_a) in out.chunks_exact_mut(m).zip(a.chunks_exact(m)) {
        for (&aik, row_b) in row_a.iter().zip(b.chunks_exact(m)) {
            for (o, &bkj) in row_out.iter_mut().zip(row_b) {
                *o += aik * bkj;
            }
        }
    }
}

/// Pr(D_n <= d) by Durbin's matrix method as organised by Marsaglia, Tsang & Wang (2003):
/// the k-th diagonal entry of H^n, with H of size 2k-1 and k = ceil(n d).
fn durbin_mtw_cdf(n: i64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let nd = nf * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let kf = nd.ceil();
    let h = kf - nd;
    let k = kf as usize;
    let m = 2 * k - 1;
    let mut v = vec![0.0; m];
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        v[j - 1] = 1.0 - h.powf(j as f64);
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let mf = m as f64;
    let tt = (2.0 * h - 1.0).max(0.0).powf(mf) - 2.0 * h.powf(mf);
    v[m - 1] = (1.0 + tt) * fac;
    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let mut hpwr = vec![0.0; m * m];
    for i in 0..m {
        hpwr[i * m + i] = 1.0;
    }
    let mut tmp = Vec::with_capacity(m * m);
    let mut nn = n;
    let mut expnt: i64 = 0;
    let mut h_expnt: i64 = 0;
    let kk = (k - 1) * m + (k - 1);
    while nn > 0 {
        if nn % 2 == 1 {
            matmul(&hpwr, &hm, m, &mut tmp);
            std::mem::swap(&mut hpwr, &mut tmp);
            expnt += h_expnt;
        }
        matmul(&hm, &hm, m, &mut tmp);
        std::mem::swap(&mut hm, &mut tmp);
        h_expnt *= 2;
        if hm[kk].abs() > EP128 {
            for e in hm.iter_mut() {
                *e /= EP128;
            }
            h_expnt += E128;
        }
        nn /= 2;
    }
    let mut p = hpwr[kk];
    for i in 1..=n {
        p = (i as f64) * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= E128;
        }
    }
    if expnt != 0 {
        p = super::dd::ldexp(p, expnt.clamp(-100_000, 100_000) as i32);
    }
    clip01(p)
}

/// Row interval [j1, j2] of the Pomeranz recursion (as in scipy's `_pomeranz_compute_j1j2`).
fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let ip1div2 = (i + 1) / 2;
        let ip1mod2 = (i + 1) % 2;
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// Pr(D_n <= x) by the Pomeranz (1974) recursion: rows are convolutions of the previous row
/// with (unnormalised) Poisson probabilities; only a short window of each row is non-zero.
fn pomeranz_cdf(n: i64, x: f64) -> f64 {
    let nf = n as f64;
    let t = nf * x;
    let ll_f = t.floor();
    let ll = ll_f as i64;
    let f = t - ll_f;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;
    let mut gpower = vec![0.0; npwrs];
    let mut twogpower = vec![0.0; npwrs];
    let mut onem2gpower = vec![0.0; npwrs];
    gpower[0] = 1.0;
    twogpower[0] = 1.0;
    onem2gpower[0] = 1.0;
    let g_over_n = g / nf;
    let two_g_over_n = 2.0 * g / nf;
    let one_minus_two_g_over_n = (1.0 - 2.0 * g) / nf;
    for m in 1..npwrs {
        let mf = m as f64;
        gpower[m] = gpower[m - 1] * g_over_n / mf;
        twogpower[m] = twogpower[m - 1] * two_g_over_n / mf;
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / mf;
    }
    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s) = (0_i64, 0_i64);
    let mut expnt: i64 = 0;
    let (mut j1, _) = pomeranz_j1j2(0, n, ll, ceilf, roundf);
    let at = |v: &[f64], idx: i64| -> f64 {
        usize::try_from(idx)
            .ok()
            .and_then(|i| v.get(i))
            .copied()
            .unwrap_or(0.0)
    };
    for i in 1..(2 * n + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.iter_mut().for_each(|e| *e = 0.0);
        let (nj1, j2) = pomeranz_j1j2(i, n, ll, ceilf, roundf);
        j1 = nj1;
        let pwrs = if i == 1 || i == 2 * n + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            // conv = np.convolve(V0[k1 - V0s: k1 - V0s + ln2], pwrs[:ln2]); keep the entries
            // [j1 - k1, j2 - k1].
            let base = k1 - v0s;
            let conv_start = j1 - k1;
            let conv_len = j2 - j1 + 1;
            for out in 0..conv_len.max(0) {
                let c = conv_start + out;
                let mut s = 0.0;
                for a in 0..=c {
                    let b = c - a;
                    if a >= ln2 || b >= ln2 {
                        continue;
                    }
                    s += at(&v0, base + a) * at(pwrs, b);
                }
                if let Some(slot) = usize::try_from(out).ok().and_then(|o| v1.get_mut(o)) {
                    *slot = s;
                }
            }
            let vmax = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < vmax && vmax < EM128 {
                v1.iter_mut().for_each(|e| *e *= EP128);
                expnt -= E128;
            }
            v1s = v0s + j1 - k1;
        }
    }
    let mut ans = at(&v1, n - v1s);
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += E128;
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans = super::dd::ldexp(ans, expnt.clamp(-100_000, 100_000) as i32);
    }
    clip01(ans)
}

/// Pelz-Good (1976) approximation of Pr(D_n <= x): the Li-Chien/Korolyuk expansion in
/// 1/sqrt(n), with each term rewritten through Jacobi theta identities to converge for small z.
fn pelz_good_cdf(n: f64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let z = n.sqrt() * x;
    let zsquared = z.powf(2.0);
    let zthree = z.powf(3.0);
    let zfour = z.powf(4.0);
    let zsix = z.powf(6.0);
    let qlog = -PI_SQUARED / 8.0 / zsquared;
    if qlog < MIN_LOG {
        return 0.0;
    }
    let q = qlog.exp();
    let pi_four = PI.powf(4.0);
    let pi_six = PI.powf(6.0);
    let k1a = -zsquared;
    let k1b = PI_SQUARED / 4.0;
    let k2a = 6.0 * zsix + 2.0 * zfour;
    let k2b = (2.0 * zfour - 5.0 * zsquared) * PI_SQUARED / 4.0;
    let k2c = pi_four * (1.0 - 2.0 * zsquared) / 16.0;
    let k3d = pi_six * (5.0 - 30.0 * zsquared) / 64.0;
    let k3c = pi_four * (-60.0 * zsquared + 212.0 * zfour) / 16.0;
    let k3b = PI_SQUARED * (135.0 * zfour - 96.0 * zsix) / 4.0;
    let k3a = -30.0 * zsix - 90.0 * z.powf(8.0);
    let mut kk = [0.0_f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let m = (2 * k - 1) as f64;
        let msquared = m.powf(2.0);
        let mfour = m.powf(4.0);
        let msix = m.powf(6.0);
        let qpower = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * msquared,
            k2a + k2b * msquared + k2c * mfour,
            k3a + k3b * msquared + k3c * mfour + k3d * msix,
        ];
        for (acc, c) in kk.iter_mut().zip(coeffs) {
            *acc = *acc * qpower + c;
        }
    }
    let sqrt2pi = (2.0 * PI).sqrt();
    let denom = [z, 6.0 * zfour, 72.0 * z.powf(7.0), 6480.0 * z.powf(10.0)];
    for (acc, d) in kk.iter_mut().zip(denom) {
        *acc = *acc * q * sqrt2pi / d;
    }
    // The sums over all integers k for K2 and K3.
    let q2 = (-PI_SQUARED / 2.0 / zsquared).exp();
    let sqrt3z = 3.0_f64.sqrt() * z;
    let mut k2extra = 0.0;
    let mut k3extra = 0.0;
    for k in (1..=maxk).rev() {
        let kf = k as f64;
        let ksq = kf * kf;
        let qp = q2.powf(ksq);
        let kspi = PI * kf;
        k2extra += ksq * qp;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp;
    }
    kk[2] += k2extra * (PI_SQUARED * sqrt2pi / (-36.0 * zthree));
    kk[3] += k3extra * (PI_SQUARED * sqrt2pi / (216.0 * zsix));
    let powers = [1.0, n.powf(0.5), n, n.powf(1.5)];
    kk.iter().zip(powers).fold(0.0, |s, (k, p)| s + k / p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_edges() {
        assert_eq!(kstwo_sf(0.05, 10.0), 1.0);
        assert_eq!(kstwo_sf(1.0, 10.0), 0.0);
        assert!(kstwo_sf(0.5, 0.0).is_nan());
    }

    #[test]
    fn ruben_gambino_ends() {
        // sf = 2 (1-x)^n for x >= 1 - 1/n
        let p = kstwo_sf(0.95, 10.0);
        assert!((p - 2.0 * 0.05f64.powi(10)).abs() < 1e-25);
    }
}
