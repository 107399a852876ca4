//! Frappe's number casts, `cint` and `flt` (`frappe/utils/data.py`), which
//! Frappe's schema code applies to the defaults of numeric columns and
//! which Property Setters apply to Check/Int/Float values. Reproduced here
//! so the engine writes the column default Frappe would write.

/// Python's `float(text)` for the inputs Frappe meets: surrounding white
/// space ignored, an optional sign, digits with `_` between them, a decimal
/// point, an exponent, `inf`/`infinity`/`nan` in any case. `None` where
/// Python raises `ValueError`.
pub(crate) fn python_float(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    // Underscores are allowed only between two digits (PEP 515).
    let bytes = t.as_bytes();
    let mut cleaned = String::with_capacity(t.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let between_digits = i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !between_digits {
                return None;
            }
            continue;
        }
        cleaned.push(b as char);
    }
    // Rust accepts a few spellings Python does not (none that matter here)
    // and Python accepts none that Rust refuses, once underscores are gone.
    if !cleaned.is_ascii() {
        return None;
    }
    cleaned.parse::<f64>().ok()
}

/// Frappe's `cint(text)`: `int(float(text))`, or 0 when that fails
/// (not a number, infinite, NaN). A value outside the 64-bit range, which
/// Python would keep and the database refuse, is also 0.
pub(crate) fn cint(text: &str) -> i64 {
    match python_float(text) {
        Some(f) if f.is_finite() && f.trunc().abs() < 9.223_372_036_854_775e18 => f.trunc() as i64,
        _ => 0,
    }
}

/// Frappe's `flt(text)`: thousands separators (`,`) removed, then
/// `float(text)`, or 0.0 when that fails. Infinite and NaN values, which
/// SQLite cannot store as a default, are 0.0 as well.
pub(crate) fn flt(text: &str) -> f64 {
    match python_float(&text.replace(',', "")) {
        Some(f) if f.is_finite() => f,
        _ => 0.0,
    }
}

/// The SQL literal of a numeric column's static default, as Frappe's schema
/// code writes it, and whether the text was a plain number (`exact`). A
/// text that is not (`"False"`, `"1.5"` for an integer, `"1,000"`) gets
/// Frappe's value and `exact: false`, which the loader reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NumericDefault {
    /// The literal written into the column definition.
    pub literal: String,
    /// Whether the text already was that number.
    pub exact: bool,
}

/// [`NumericDefault`] for an integer column (`cint`).
pub(crate) fn integer_default(text: &str) -> NumericDefault {
    let t = text.trim();
    if let Ok(i) = t.parse::<i64>() {
        return NumericDefault {
            literal: i.to_string(),
            exact: true,
        };
    }
    let value = cint(t);
    // "1.0" is the integer 1 written as a float: exact, as before.
    let exact = t
        .parse::<f64>()
        .is_ok_and(|f| f.is_finite() && f == value as f64);
    NumericDefault {
        literal: value.to_string(),
        exact,
    }
}

/// [`NumericDefault`] for a real column (`flt`).
pub(crate) fn real_default(text: &str) -> NumericDefault {
    let t = text.trim();
    let value = flt(t);
    let exact = t.parse::<f64>().is_ok_and(|f| f == value);
    NumericDefault {
        literal: real_literal(value),
        exact,
    }
}

/// A finite REAL as a short SQL literal (`2.5`, `3`, `1e-7`).
fn real_literal(value: f64) -> String {
    let text = format!("{value:?}");
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cint_follows_frappe() {
        for (text, want) in [
            ("1", 1),
            (" 7 ", 7),
            ("1.0", 1),
            ("1.9", 1),
            ("-1.9", -1),
            ("1e3", 1000),
            ("1_000", 1000),
            ("False", 0),
            ("True", 0),
            ("", 0),
            ("inf", 0),
            ("nan", 0),
            ("1,000", 0),
            ("_1", 0),
            ("1e30", 0),
        ] {
            assert_eq!(cint(text), want, "{text:?}");
        }
    }

    #[test]
    fn defaults_say_whether_the_text_was_the_number() {
        let d = integer_default("1.0");
        assert_eq!((d.literal.as_str(), d.exact), ("1", true));
        let d = integer_default("False");
        assert_eq!((d.literal.as_str(), d.exact), ("0", false));
        let d = integer_default("1.5");
        assert_eq!((d.literal.as_str(), d.exact), ("1", false));
        let d = real_default("2.50");
        assert_eq!((d.literal.as_str(), d.exact), ("2.5", true));
        let d = real_default("1,000");
        assert_eq!((d.literal.as_str(), d.exact), ("1000", false));
        let d = real_default("-0.0");
        assert_eq!(d.literal, "-0");
    }

    #[test]
    fn flt_follows_frappe() {
        for (text, want) in [
            ("2.5", 2.5),
            ("1,000.25", 1000.25),
            ("-3", -3.0),
            ("abc", 0.0),
            ("Infinity", 0.0),
            ("", 0.0),
        ] {
            assert_eq!(flt(text), want, "{text:?}");
        }
    }
}
