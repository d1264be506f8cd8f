//! Prints an ingest body (`{"columns": [...], "data": [[...], ...]}`) of N rows of the
//! embedded reference, for load generators that replay one fixed body (the wrk runs of
//! `scripts/bench_ingest.sh` and `scripts/bench_gateway.sh`). Reference rows, not drawn
//! ones, so that the body is the same in every run and the API accepts it as it is.
//!
//! `cargo run -q -p drift-sim --example ingest_body -- N` (N rows, default 1; rows past the
//! reference's end wrap around to its start)

use anyhow::{bail, Context};
use drift_core::Dataset;
use std::io::Write;

fn main() -> anyhow::Result<()> {
    let rows: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .with_context(|| format!("N must be a row count, not {n:?}"))?,
        None => 1,
    };
    if rows == 0 {
        bail!("N must be at least 1: the API refuses an empty batch");
    }
    let reference = Dataset::breast_cancer()?;
    let n = reference.n_rows();
    let data: Vec<Vec<f64>> = (0..rows)
        .map(|i| reference.columns().iter().map(|c| c[i % n]).collect())
        .collect();
    let body = serde_json::json!({ "columns": reference.names(), "data": data });
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &body)?;
    out.flush()?;
    Ok(())
}
