//! The reference the rows are modelled on: the monitor's own reference CSV (`--reference`,
//! since the API does not serve a monitor's reference back), or the embedded breast_cancer
//! data, read the way the monitor read it.
//!
//! The monitor's view (`GET /v1/monitors/{m}`) says which columns are features and of what
//! kind, so the simulator leaves out every other column and declares every feature's kind
//! (an integer-coded categorical feature such as `year` would otherwise be inferred
//! numeric). `--exclude`, `--categorical` and `--numeric` are only needed for a server that
//! predates kinds, and may not contradict the monitor.

use crate::target::MonitorInfo;
use crate::Args;
use anyhow::{bail, Context};
use drift_core::dataset::{BREAST_CANCER_CSV, DEFAULT_MONITOR};
use drift_core::feature::{MAX_CATEGORIES, OTHER};
use drift_core::{CsvSchema, Dataset, FeatureKind};
use std::collections::BTreeSet;

/// The reference data set and where it came from (for messages).
pub struct Reference {
    pub dataset: Dataset,
    pub source: String,
}

/// Reads the reference for `info`'s monitor and checks that it has every feature, with the
/// monitor's kind.
pub fn load(args: &Args, info: &MonitorInfo) -> anyhow::Result<Reference> {
    let (bytes, source, builtin) = match &args.reference {
        Some(path) => (
            std::fs::read(path)
                .with_context(|| format!("reading the reference {}", path.display()))?,
            path.display().to_string(),
            false,
        ),
        None => (
            BREAST_CANCER_CSV.as_bytes().to_vec(),
            format!("the built-in {DEFAULT_MONITOR} reference"),
            true,
        ),
    };
    let header = header(&bytes).with_context(|| format!("reading the header of {source}"))?;
    if let Some(f) = info
        .features
        .iter()
        .find(|f| !header.contains(f) || args.exclude.contains(f))
    {
        if builtin {
            bail!(
                "monitor {:?} has feature {f:?}, which is not in {source} the simulator draws rows from: pass the monitor's reference CSV with --reference",
                info.name
            );
        }
        bail!(
            "monitor {:?} has feature {f:?}, which is not a column of {source} (or is excluded)",
            info.name
        );
    }
    let schema = schema(args, info, &header)?;
    let dataset = Dataset::from_csv_with(bytes.as_slice(), &schema)
        .with_context(|| format!("reading {source}"))?;
    for (i, f) in dataset.names().iter().enumerate() {
        let ours = dataset.kinds()[i];
        if let Some(&theirs) = info.kinds.get(f) {
            if ours != theirs {
                bail!(
                    "feature {f:?} is {theirs} in monitor {:?} but {ours} in {source}",
                    info.name
                );
            }
        }
        if let Some(theirs) = info.categories.get(f) {
            check_categories(f, &dataset.categories()[i], theirs, &info.name);
        }
    }
    Ok(Reference { dataset, source })
}

/// The header's column names.
fn header(bytes: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    Ok(rdr.headers()?.iter().map(str::to_string).collect())
}

/// How to read the CSV: every column that is no feature of the monitor left out, every
/// feature declared with the monitor's kind, and no cap on categories beyond the API's
/// largest (the simulator draws every reference category, even those a monitor folded
/// into `__other__`, as live data would have them).
fn schema(args: &Args, info: &MonitorInfo, header: &[String]) -> anyhow::Result<CsvSchema> {
    let is_feature = |c: &String| info.features.contains(c);
    let mut exclude: BTreeSet<String> = header.iter().filter(|c| !is_feature(c)).cloned().collect();
    exclude.extend(args.exclude.iter().cloned());
    let mut categorical: BTreeSet<String> = args.categorical.iter().cloned().collect();
    let mut numeric: BTreeSet<String> = args.numeric.iter().cloned().collect();
    for (flag, declared, kind) in [
        ("--categorical", &categorical, FeatureKind::Categorical),
        ("--numeric", &numeric, FeatureKind::Numeric),
    ] {
        for c in declared {
            if let Some(&theirs) = info.kinds.get(c) {
                if theirs != kind {
                    bail!(
                        "{flag} declares {c:?} {kind}, but monitor {:?} has it {theirs}",
                        info.name
                    );
                }
            }
        }
    }
    for (f, kind) in &info.kinds {
        if exclude.contains(f) || !header.contains(f) {
            continue;
        }
        match kind {
            FeatureKind::Categorical => categorical.insert(f.clone()),
            FeatureKind::Numeric => numeric.insert(f.clone()),
        };
    }
    Ok(CsvSchema {
        exclude: exclude.into_iter().collect(),
        categorical: categorical.into_iter().collect(),
        numeric: numeric.into_iter().collect(),
        max_categories: MAX_CATEGORIES,
        top_categories: None,
    })
}

/// Warns when the reference's categories are not the monitor's (another version of the
/// reference?): rows are then still sent, and categories the monitor lacks count as
/// unseen there.
fn check_categories(feature: &str, ours: &[String], theirs: &[String], monitor: &str) {
    let folded = theirs.iter().any(|c| c == OTHER);
    let theirs: BTreeSet<&String> = theirs.iter().filter(|c| *c != OTHER).collect();
    let ours: BTreeSet<&String> = ours.iter().collect();
    let lacking: Vec<&&String> = theirs.difference(&ours).collect();
    let extra: Vec<&&String> = ours.difference(&theirs).collect();
    if !lacking.is_empty() || (!folded && !extra.is_empty()) {
        tracing::warn!(
            feature,
            monitor,
            ?lacking,
            ?extra,
            "the reference's categories are not the monitor's: is it the monitor's reference?"
        );
    }
}
