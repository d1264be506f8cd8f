//! Feature kinds and how their values are held: every window and reference value is one
//! f64, so numeric and categorical features share the same capped lists, scripts and
//! codec. A numeric value is itself; a categorical value is the index of its category in
//! the monitor's sorted category list, with one code past the end for a value the
//! reference never had; a missing value of either kind is NaN.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

/// The category that holds every reference category beyond the kept top K (when the user
/// asks for folding instead of a refusal), and, for such a feature, every value the
/// reference did not have.
pub const OTHER: &str = "__other__";

/// Default cap on distinct reference categories of one feature.
pub const DEFAULT_MAX_CATEGORIES: usize = 50;

/// Highest cap accepted: the threshold's bound grows with the number of categories and
/// every API replica holds the category lists in memory.
pub const MAX_CATEGORIES: usize = 1000;

/// Cells read as missing in a reference CSV: pandas' default `na_values`, which is what
/// users' CSVs were written with.
pub const MISSING_TOKENS: &[&str] = &[
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

pub fn is_missing_token(cell: &str) -> bool {
    MISSING_TOKENS.contains(&cell)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// Real values, tested with the two-sample KS test.
    #[default]
    Numeric,
    /// Strings or integer codes, tested on category frequencies (total variation).
    Categorical,
}

impl FeatureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureKind::Numeric => "numeric",
            FeatureKind::Categorical => "categorical",
        }
    }
}

impl fmt::Display for FeatureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FeatureKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "numeric" => Ok(FeatureKind::Numeric),
            "categorical" => Ok(FeatureKind::Categorical),
            other => Err(format!(
                "unknown feature kind `{other}` (expected numeric or categorical)"
            )),
        }
    }
}

/// The one spelling of a category: an integer and its decimal string (`3`, `"3"`, `"3.0"`,
/// as pandas writes an integer column with gaps) are the same category; any other string
/// is itself, trimmed.
pub fn canonical_category(raw: &str) -> String {
    let s = raw.trim();
    if let Ok(i) = s.parse::<i64>() {
        return i.to_string();
    }
    match s.parse::<f64>() {
        Ok(v) if is_integral(v) => format!("{}", v as i64),
        _ => s.to_string(),
    }
}

/// Whether a JSON number can name an integer category: integral and exactly representable
/// (|v| <= 2^53), so that `3` and `3.0` are one category and `3.5` is refused.
pub fn is_integral(v: f64) -> bool {
    v.is_finite() && v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_992.0
}

/// The category of an integral JSON number.
pub fn integer_category(v: f64) -> String {
    format!("{}", v as i64)
}

/// The value-to-code map of one categorical feature, as every API replica holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Categories {
    codes: HashMap<String, u32>,
    /// The code of a value the reference did not have: one past the last category, or the
    /// code of [`OTHER`] when the feature was folded.
    unknown: u32,
}

impl Categories {
    pub fn new(names: &[String]) -> Self {
        let codes: HashMap<String, u32> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        let unknown = codes.get(OTHER).copied().unwrap_or(names.len() as u32);
        Categories { codes, unknown }
    }

    /// The code of a canonical category.
    pub fn code(&self, canonical: &str) -> f64 {
        f64::from(self.codes.get(canonical).copied().unwrap_or(self.unknown))
    }
}

/// Each feature's value-to-code map (`None` for numeric features), built on first use
/// from a config and kept with it: API replicas cache configs, so a map is built once per
/// config read rather than once per request. Never compared or serialized.
#[derive(Clone, Debug, Default)]
pub struct CodeCache(OnceLock<Arc<Vec<Option<Categories>>>>);

impl CodeCache {
    pub fn get_or_build(
        &self,
        build: impl FnOnce() -> Vec<Option<Categories>>,
    ) -> &[Option<Categories>] {
        self.0.get_or_init(|| Arc::new(build()))
    }
}

impl PartialEq for CodeCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Bins of a categorical feature's frequencies: its categories, plus one for unseen
/// values unless the feature was folded (then `__other__` takes them).
pub fn category_bins(categories: &[String]) -> usize {
    if categories.iter().any(|c| c == OTHER) {
        categories.len()
    } else {
        categories.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_their_strings_are_one_category() {
        for raw in ["3", " 3", "3.0", "+3", "3e0"] {
            assert_eq!(canonical_category(raw), "3", "{raw}");
        }
        assert_eq!(canonical_category("-0"), "0");
        assert_eq!(canonical_category("3.5"), "3.5");
        assert_eq!(canonical_category("Adelie "), "Adelie");
        assert_eq!(integer_category(7.0), "7");
        assert!(is_integral(-2.0) && !is_integral(2.5) && !is_integral(f64::NAN));
        assert!(!is_integral(1e300));
    }

    #[test]
    fn unknown_values_get_the_unseen_code_or_other() {
        let c = Categories::new(&["a".into(), "b".into()]);
        assert_eq!((c.code("a"), c.code("b"), c.code("zzz")), (0.0, 1.0, 2.0));
        assert_eq!(category_bins(&["a".into(), "b".into()]), 3);
        let folded = Categories::new(&["a".into(), OTHER.into()]);
        assert_eq!(folded.code("zzz"), 1.0);
        assert_eq!(category_bins(&["a".into(), OTHER.into()]), 2);
    }

    #[test]
    fn pandas_missing_tokens() {
        for t in ["", "NA", "null", "NaN", "N/A", "<NA>"] {
            assert!(is_missing_token(t), "{t}");
        }
        assert!(!is_missing_token("0") && !is_missing_token("none"));
    }
}
