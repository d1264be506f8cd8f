//! `ks` command: runs the two-sample KS test on every case of a vector file (the format of
//! scipy's public test vectors) and prints one JSON object per case, for comparison with
//! scipy by an external checker.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use drift_core::ks::cases::parse_cases;
use drift_core::ks::{ks_2samp, EffectiveMethod};

#[derive(serde::Serialize)]
struct CaseOutput<'a> {
    name: &'a str,
    statistic: f64,
    pvalue: f64,
    statistic_location: f64,
    statistic_sign: i8,
    effective_method: EffectiveMethod,
}

#[derive(serde::Serialize)]
struct CaseError<'a> {
    name: &'a str,
    error: String,
}

/// Reads `cases` (`-` for stdin), prints one result line per case on stdout and, with
/// `timing`, `compute_seconds=<float>` (time inside the test only) as the last stderr line.
pub fn run(cases: &Path, timing: bool) -> anyhow::Result<()> {
    let text = if cases == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading cases from stdin")?;
        s
    } else {
        std::fs::read_to_string(cases)
            .with_context(|| format!("reading cases from {}", cases.display()))?
    };
    let cases = parse_cases(&text).context("parsing the case file")?;

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut compute = Duration::ZERO;
    for case in &cases {
        let start = Instant::now();
        let result = ks_2samp(&case.x, &case.y, case.alternative, case.method);
        compute += start.elapsed();
        let line = match result {
            Ok(r) => serde_json::to_string(&CaseOutput {
                name: &case.name,
                statistic: r.statistic,
                pvalue: r.pvalue,
                statistic_location: r.statistic_location,
                statistic_sign: r.statistic_sign,
                effective_method: r.effective_method,
            })?,
            Err(e) => serde_json::to_string(&CaseError {
                name: &case.name,
                error: e.to_string(),
            })?,
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    if timing {
        eprintln!("compute_seconds={}", compute.as_secs_f64());
    }
    Ok(())
}
