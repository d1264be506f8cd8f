//! Prints the demo model's accuracy on the reference data (quoted in the README).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (ds, y) = drift_core::model::breast_cancer_xy()?;
    let m = drift_core::model::LogisticModel::fit(ds.columns(), &y)?;
    let acc = m.accuracy(ds.columns(), &y);
    println!(
        "training accuracy: {:.4} ({} of {})",
        acc,
        (acc * y.len() as f64).round(),
        y.len()
    );
    Ok(())
}
