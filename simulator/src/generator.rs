//! The row stream: copula draws, the drift scenario applied by row number, and the columns
//! the monitor expects. Rows hold numbers, category codes and NaN for missing values;
//! [`Generator::labels`] names the codes, as rows go out (strings, and `null` for NaN).
//!
//! Rows are produced by one generator in one order, whatever the concurrency of the sender,
//! so the same seed always gives the same rows (row `i` of the run is always the same).

use crate::copula::Copula;
use crate::scenario::Scenario;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Mixed into the run's seed for the missingness draws.
const MISSING_STREAM: u64 = 0x6a09_e667_f3bc_c908;

/// Consecutive generated rows, ready to be sent as one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Run-wide index (0-based) of the first row.
    pub first_row: u64,
    /// Rows in the order of [`Generator::columns`].
    pub rows: Vec<Vec<f64>>,
    /// Index in `rows` of the first row past the drift onset, if any.
    pub first_drifted: Option<usize>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

pub struct Generator {
    copula: Copula,
    scenario: Option<Scenario>,
    /// Reference column indices emitted, in output order.
    columns: Vec<usize>,
    rng: StdRng,
    /// Missingness draws, a stream of their own (see [`Copula::sample_into`]).
    missing_rng: StdRng,
    next_row: u64,
    normals: Vec<f64>,
    full: Vec<f64>,
}

impl Generator {
    /// A generator of every reference column, in reference order.
    pub fn new(copula: Copula, scenario: Option<Scenario>, seed: u64) -> Self {
        let d = copula.dim();
        Generator {
            columns: (0..d).collect(),
            copula,
            scenario,
            rng: StdRng::seed_from_u64(seed),
            missing_rng: StdRng::seed_from_u64(seed ^ MISSING_STREAM),
            next_row: 0,
            normals: vec![0.0; d],
            full: vec![0.0; d],
        }
    }

    /// Emits only `columns` (reference indices), in that order: a monitor may list its
    /// features in another order or watch a subset.
    pub fn with_columns(mut self, columns: Vec<usize>) -> Self {
        self.columns = columns;
        self
    }

    pub fn copula(&self) -> &Copula {
        &self.copula
    }

    pub fn scenario(&self) -> Option<&Scenario> {
        self.scenario.as_ref()
    }

    /// Names of the emitted columns.
    pub fn column_names(&self) -> Vec<String> {
        let names = self.copula.names();
        self.columns.iter().map(|&i| names[i].clone()).collect()
    }

    /// Rows generated so far.
    pub fn rows_generated(&self) -> u64 {
        self.next_row
    }

    /// Each emitted column's category names by code (`None` for a numeric column),
    /// with the category a `new-category` scenario adds last.
    pub fn labels(&self) -> Vec<Option<Vec<String>>> {
        self.columns
            .iter()
            .map(|&i| {
                let column = &self.copula.columns()[i];
                column.shares()?;
                let mut names = column.categories().to_vec();
                if let Some(new) = self.scenario.as_ref().and_then(|s| s.new_category(i)) {
                    names.push(new.to_string());
                }
                Some(names)
            })
            .collect()
    }

    /// The next row (emitted columns only) and whether it is past the onset.
    pub fn next_row(&mut self) -> (Vec<f64>, bool) {
        let row = self.next_row;
        self.next_row += 1;
        let drifted = self.scenario.as_ref().is_some_and(|s| s.is_drifted(row));
        self.copula.sample_with(
            &mut self.rng,
            &mut self.missing_rng,
            &mut self.normals,
            &mut self.full,
            self.scenario
                .as_ref()
                .filter(|_| drifted)
                .and_then(Scenario::overrides),
        );
        if let Some(s) = &self.scenario {
            s.apply(row, &mut self.full);
        }
        (
            self.columns.iter().map(|&i| self.full[i]).collect(),
            drifted,
        )
    }

    /// The next `n` rows.
    pub fn next_batch(&mut self, n: usize) -> Batch {
        let first_row = self.next_row;
        let mut rows = Vec::with_capacity(n);
        let mut first_drifted = None;
        for k in 0..n {
            let (row, drifted) = self.next_row();
            if drifted && first_drifted.is_none() {
                first_drifted = Some(k);
            }
            rows.push(row);
        }
        Batch {
            first_row,
            rows,
            first_drifted,
        }
    }
}
