//! DL003: which stored values a type change would lose, as one SQL boolean
//! expression per column that SQLite evaluates row by row.
//!
//! # The conversion being judged
//!
//! When a column's affinity changes, the engine copies every value with
//! `CAST(col AS <INTEGER|REAL|TEXT|NUMERIC>)` (the target affinity's
//! [`Affinity::cast_type`]). When the affinity stays the same, or the target
//! has BLOB affinity (no cast type), values are copied unchanged, so nothing
//! can be lost.
//!
//! # What "lost" means
//!
//! A non-NULL value *survives* when converting it to the new type and back to
//! its original storage class gives back the identical value: same storage
//! class, same bytes for TEXT/BLOB (compared with `COLLATE BINARY`, whatever
//! the column's collation), same number for INTEGER/REAL. Numeric equality
//! across storage classes is never used for TEXT: SQLite compares
//! `CAST(x AS INTEGER) = x` numerically, so `'0012'`, `' 12'` and `'12.0'`
//! would pass although their text changes.
//!
//! Two refinements of the round trip:
//!
//! * INTEGER ↔ REAL: the converted number must equal the original *exactly*
//!   (SQLite compares INTEGER with REAL exactly, without rounding either
//!   side). A pure round trip would miss clamping: REAL 2^63 casts to INTEGER
//!   `i64::MAX`, which casts back to REAL 2^63.
//! * BLOB → TEXT: the bytes always round-trip, but the result is only usable
//!   text when it is valid UTF-8 with no NUL. SQL has no UTF-8 validator, so
//!   the rule is conservative: a BLOB survives only when every byte is in
//!   `0x01..=0x7F` (ASCII without NUL). Valid non-ASCII UTF-8 blobs are
//!   counted as lost (a false positive, never a false negative).
//!
//! Per target (`c` is the quoted column; storage classes that the cast leaves
//! untouched are omitted because they cannot be lost):
//!
//! | target  | integer              | real                     | text                              | blob                              |
//! |---------|----------------------|--------------------------|-----------------------------------|-----------------------------------|
//! | INTEGER | (kept)               | `CAST(c AS INTEGER) IS NOT +c` | `CAST(CAST(c AS INTEGER) AS TEXT) IS NOT +c COLLATE BINARY` | `CAST(CAST(c AS INTEGER) AS BLOB) IS NOT +c` |
//! | REAL    | `CAST(c AS REAL) IS NOT +c` | (kept)            | `CAST(CAST(c AS REAL) AS TEXT) IS NOT +c COLLATE BINARY` | `CAST(CAST(c AS REAL) AS BLOB) IS NOT +c` |
//! | NUMERIC | (no-op cast)         | (no-op cast)             | `CAST(n AS TEXT) IS NOT +c COLLATE BINARY` | `CAST(n AS BLOB) IS NOT +c` |
//! | TEXT    | `CAST(CAST(c AS TEXT) AS INTEGER) IS NOT +c` | `CAST(CAST(c AS TEXT) AS REAL) IS NOT +c` | (kept) | round trip, or a NUL byte, or a byte outside `0x01..=0x7F` |
//!
//! where `n` is what a NUMERIC column stores after `CAST(c AS NUMERIC)`: the
//! cast result, or its INTEGER value when the cast gave an integral REAL
//! strictly inside the i64 range (the column's affinity converts it again;
//! `'10000000000000000.0'` casts to REAL 1e16, whose text is the original,
//! but is stored as INTEGER `10000000000000000`, whose text is not):
//!
//! ```sql
//! CASE WHEN CAST(CAST(c AS NUMERIC) AS INTEGER) = CAST(c AS NUMERIC)
//!       AND CAST(CAST(c AS NUMERIC) AS INTEGER)
//!           BETWEEN -9223372036854775807 AND 9223372036854775806
//!      THEN CAST(CAST(c AS NUMERIC) AS INTEGER) ELSE CAST(c AS NUMERIC) END
//! ```
//!
//! The unary `+` strips the column's affinity so that SQLite applies no
//! conversion to it before comparing; `IS NOT` keeps the result a plain 0/1.
//! Every cell is checked against a real `CAST` conversion in
//! `tests/integration/validation_data.rs`.

use crate::ident::quote;
use crate::schema::Affinity;

/// The SQL boolean expression that is true for the non-NULL values of
/// `column` that a type change from affinity `from` to affinity `to` would
/// lose (see the module documentation for the exact rule), or `None` when
/// the change cannot lose anything (same affinity, or a BLOB-affinity target,
/// which the engine copies without a cast).
///
/// `column` is the raw column name; it is quoted here. NULL values always
/// evaluate to false (0). The expression reads only `column` and can be used
/// in any `WHERE`, `FILTER (WHERE ...)` or select list over the table.
pub fn lost_value_sql(column: &str, from: Affinity, to: Affinity) -> Option<String> {
    if from == to {
        return None;
    }
    let cast = to.cast_type()?;
    let c = quote(column);
    // The value the new column will hold: the cast, then the column's own
    // affinity. Only NUMERIC changes a cast result again: `CAST(x AS NUMERIC)`
    // can give an integral REAL (`'1e16'`, `'10000000000000000.0'`), which a
    // NUMERIC column stores as INTEGER (sqlite3VdbeIntegerAffinity: exact and
    // strictly inside the i64 range).
    let stored = match to {
        Affinity::Numeric => {
            let x = format!("CAST({c} AS NUMERIC)");
            format!(
                "CASE WHEN CAST({x} AS INTEGER) = {x} AND CAST({x} AS INTEGER) \
                 BETWEEN -9223372036854775807 AND 9223372036854775806 \
                 THEN CAST({x} AS INTEGER) ELSE {x} END"
            )
        }
        _ => format!("CAST({c} AS {cast})"),
    };
    let back = |class: &str| format!("CAST({stored} AS {class}) IS NOT +{c}");
    let exact = format!("CAST({c} AS {cast}) IS NOT +{c}");
    let text_back = format!("{} COLLATE BINARY", back("TEXT"));
    let blob_back = back("BLOB");
    let arms: Vec<(&str, String)> = match to {
        Affinity::Integer => vec![("real", exact), ("text", text_back), ("blob", blob_back)],
        Affinity::Real => vec![("integer", exact), ("text", text_back), ("blob", blob_back)],
        Affinity::Numeric => vec![("text", text_back), ("blob", blob_back)],
        Affinity::Text => vec![
            ("integer", back("INTEGER")),
            ("real", back("REAL")),
            (
                "blob",
                format!(
                    "{blob_back} OR instr(+{c}, x'00') > 0 \
                     OR CAST({c} AS TEXT) GLOB ('*[^' || char(1) || '-' || char(127) || ']*')"
                ),
            ),
        ],
        Affinity::Blob => return None,
    };
    let mut sql = format!("CASE typeof({c})");
    for (class, lost) in arms {
        sql.push_str(&format!(" WHEN '{class}' THEN {lost}"));
    }
    sql.push_str(" ELSE 0 END");
    Some(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_affinity_and_blob_targets_lose_nothing() {
        assert_eq!(lost_value_sql("c", Affinity::Text, Affinity::Text), None);
        assert_eq!(lost_value_sql("c", Affinity::Text, Affinity::Blob), None);
    }

    #[test]
    fn column_is_quoted() {
        let sql = lost_value_sql("a\"b", Affinity::Text, Affinity::Integer).unwrap_or_default();
        assert!(sql.contains("\"a\"\"b\""), "{sql}");
        assert!(!sql.contains("a\"b\" "), "{sql}");
    }
}
