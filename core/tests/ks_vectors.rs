//! Every case of scipy's public test vectors must match (see the vector README for the rule).

use drift_core::ks::cases::{parse_cases, Expected, KsCase};
use drift_core::ks::{ks_2samp, KsResult};

/// The parity rule: D within 1e-15, p within 1e-9 relative (or both below 1e-300), and the
/// same location, sign and effective method.
fn mismatch(case: &KsCase, want: &Expected, got: &KsResult) -> Option<String> {
    let mut problems = Vec::new();
    // Written so that a NaN statistic counts as a mismatch.
    let statistic_ok = (got.statistic - want.statistic).abs() <= 1e-15;
    if !statistic_ok {
        problems.push(format!("statistic {} != {}", got.statistic, want.statistic));
    }
    let p_ok = (got.pvalue.is_nan() && want.pvalue.is_nan())
        || (got.pvalue <= 1e-300 && want.pvalue <= 1e-300)
        || (got.pvalue - want.pvalue).abs() <= 1e-9 * want.pvalue.abs();
    if !p_ok {
        problems.push(format!("pvalue {:e} != {:e}", got.pvalue, want.pvalue));
    }
    let loc_ok = got.statistic_location == want.statistic_location
        || (got.statistic_location.is_nan() && want.statistic_location.is_nan());
    if !loc_ok {
        problems.push(format!(
            "location {} != {}",
            got.statistic_location, want.statistic_location
        ));
    }
    if got.statistic_sign != want.statistic_sign {
        problems.push(format!(
            "sign {} != {}",
            got.statistic_sign, want.statistic_sign
        ));
    }
    if got.effective_method != want.effective_method {
        problems.push(format!(
            "method {:?} != {:?}",
            got.effective_method, want.effective_method
        ));
    }
    if problems.is_empty() {
        None
    } else {
        Some(format!("{}: {}", case.name, problems.join("; ")))
    }
}

#[test]
fn public_vectors_match_scipy() {
    let text = include_str!("data/ks_public.json");
    let cases = match parse_cases(text) {
        Ok(c) => c,
        Err(e) => panic!("cannot read the vectors: {e}"),
    };
    assert_eq!(cases.len(), 172);
    let mut failures = Vec::new();
    for case in &cases {
        let Some(want) = &case.expected else {
            failures.push(format!("{}: no expected result in the file", case.name));
            continue;
        };
        match ks_2samp(&case.x, &case.y, case.alternative, case.method) {
            Ok(got) => failures.extend(mismatch(case, want, &got)),
            Err(e) => failures.push(format!("{}: error {e}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from scipy:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
