//! Reading KS test-vector files (`{"meta": {...}, "cases": [{"name", "x", "y", ...}]}`).
//!
//! Parity is checked to the last bit of the inputs (samples with values one ulp apart, D
//! compared within 1e-15), but serde_json without its `float_roundtrip` feature parses
//! long decimals with a double rounding that can be one ulp off. Numbers are therefore
//! turned into strings before serde_json sees them and parsed with Rust's correctly rounded
//! `str::parse::<f64>`. This also accepts the `NaN`/`Infinity` tokens Python writes.

use super::{Alternative, EffectiveMethod, Method};

/// One case: inputs, and scipy's outputs when the file carries them.
#[derive(Clone, Debug, PartialEq)]
pub struct KsCase {
    pub name: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub alternative: Alternative,
    pub method: Method,
    pub expected: Option<Expected>,
}

/// scipy's result for a case.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expected {
    pub statistic: f64,
    pub pvalue: f64,
    pub statistic_location: f64,
    pub statistic_sign: i8,
    pub effective_method: EffectiveMethod,
}

#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    #[error("malformed case file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("case {case:?}: field {field} is not a number: {text:?}")]
    Number {
        case: String,
        field: &'static str,
        text: String,
    },
}

#[derive(serde::Deserialize)]
struct RawFile {
    cases: Vec<RawCase>,
}

#[derive(serde::Deserialize)]
struct RawCase {
    name: String,
    x: Vec<String>,
    y: Vec<String>,
    alternative: Alternative,
    method: Method,
    statistic: Option<String>,
    pvalue: Option<String>,
    statistic_location: Option<String>,
    statistic_sign: Option<String>,
    effective_method: Option<EffectiveMethod>,
}

/// Parses a whole case file.
pub fn parse_cases(text: &str) -> Result<Vec<KsCase>, CasesError> {
    let quoted = quote_numbers(text);
    let raw: RawFile = serde_json::from_str(&quoted)?;
    raw.cases.into_iter().map(convert).collect()
}

fn convert(raw: RawCase) -> Result<KsCase, CasesError> {
    let name = raw.name;
    let num = |field: &'static str, text: &str| -> Result<f64, CasesError> {
        parse_number(text).ok_or_else(|| CasesError::Number {
            case: name.clone(),
            field,
            text: text.to_owned(),
        })
    };
    let x = raw
        .x
        .iter()
        .map(|t| num("x", t))
        .collect::<Result<Vec<_>, _>>()?;
    let y = raw
        .y
        .iter()
        .map(|t| num("y", t))
        .collect::<Result<Vec<_>, _>>()?;
    let expected = match (
        &raw.statistic,
        &raw.pvalue,
        &raw.statistic_location,
        &raw.statistic_sign,
        raw.effective_method,
    ) {
        (Some(s), Some(p), Some(l), Some(g), Some(effective_method)) => {
            let sign = num("statistic_sign", g)?;
            Some(Expected {
                statistic: num("statistic", s)?,
                pvalue: num("pvalue", p)?,
                statistic_location: num("statistic_location", l)?,
                statistic_sign: if sign < 0.0 { -1 } else { 1 },
                effective_method,
            })
        }
        _ => None,
    };
    Ok(KsCase {
        name,
        x,
        y,
        alternative: raw.alternative,
        method: raw.method,
        expected,
    })
}

fn parse_number(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse::<f64>().ok(),
    }
}

/// Wraps every bare number (and NaN/Infinity token) outside string literals in quotes.
fn quote_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut chars = text.char_indices().peekable();
    let mut in_string = false;
    let mut escaped = false;
    while let Some((_, c)) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        let starts_number = c == '-' || c.is_ascii_digit() || c == 'N' || c == 'I';
        if c == '"' {
            in_string = true;
            out.push(c);
        } else if starts_number {
            out.push('"');
            out.push(c);
            while let Some(&(_, n)) = chars.peek() {
                if n.is_ascii_alphanumeric() || n == '.' || n == '+' || n == '-' {
                    out.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push('"');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        let text = r#"{"meta": {"seed": 1, "s": "a \"-1\" b"}, "cases": [
            {"name": "c1", "x": [0.41175546126041174, -0.0, 5e-324, Infinity, -Infinity],
             "y": [1, 2.5e-3], "alternative": "two-sided", "method": "asymptotic",
             "statistic": 0.5, "pvalue": NaN, "statistic_location": 1.0,
             "statistic_sign": -1, "effective_method": "exact", "warnings": []},
            {"name": "c2", "x": [1.0], "y": [2.0], "alternative": "less", "method": "auto"}]}"#;
        let cases = parse_cases(text).unwrap_or_default();
        assert_eq!(cases.len(), 2);
        let c = &cases[0];
        assert_eq!(c.x[0].to_bits(), 0.41175546126041174_f64.to_bits());
        assert!(c.x[1] == 0.0 && c.x[1].is_sign_negative());
        assert_eq!(c.x[2], 5e-324);
        assert_eq!(c.x[3], f64::INFINITY);
        assert_eq!(c.y, vec![1.0, 2.5e-3]);
        assert_eq!(c.method, Method::Asymptotic);
        let e = c.expected.unwrap_or(Expected {
            statistic: 0.0,
            pvalue: 0.0,
            statistic_location: 0.0,
            statistic_sign: 1,
            effective_method: EffectiveMethod::Asymptotic,
        });
        assert!(e.pvalue.is_nan());
        assert_eq!(e.statistic_sign, -1);
        assert_eq!(e.effective_method, EffectiveMethod::Exact);
        assert!(cases[1].expected.is_none());
    }
}
