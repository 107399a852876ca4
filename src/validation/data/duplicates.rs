//! MF001: duplicate keys that would make a UNIQUE index fail to build.

use std::fmt;

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use crate::error::{Error, Result};
use crate::ident::quote;

use super::table::Columns;

/// Longest rendering of one key value in an example, in characters.
const MAX_VALUE_CHARS: usize = 40;

/// Duplicate keys over a set of columns, as a UNIQUE index on them would see
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DuplicateReport {
    /// Every row whose key is shared with at least one other row: all the
    /// rows of every duplicate group, including the one that could stay.
    /// (A value held by 3 rows contributes 3.) This is the MF001
    /// `rows_affected`.
    pub rows_in_duplicate_groups: u64,
    /// Distinct keys held by more than one row.
    pub groups: u64,
    /// Up to the requested number of duplicate groups, largest first, then
    /// by key, with the key rendered for a message.
    pub examples: Vec<DuplicateExample>,
}

impl DuplicateReport {
    /// Rows that would have to change or go for the index to build: every
    /// row in a duplicate group except one per group.
    #[cfg(test)]
    pub fn excess_rows(&self) -> u64 {
        self.rows_in_duplicate_groups.saturating_sub(self.groups)
    }
}

/// One duplicated key, for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateExample {
    /// The key, rendered safely: text in single quotes with quotes doubled
    /// and control characters escaped, BLOBs as `x'..'`, values longer than
    /// 40 characters cut with `…`; several columns as `(a, b)`.
    pub value: String,
    /// Rows holding this key.
    pub rows: u64,
}

impl fmt::Display for DuplicateExample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} rows)", self.value, self.rows)
    }
}

/// Counts the rows of `table` whose key over `columns` is duplicated, as a
/// UNIQUE index on those columns would: a row with a NULL in any key column
/// is never a duplicate, and values compare with each column's declared
/// collation (as an index without explicit `COLLATE` does; `1` and `1.0` are
/// the same key, `1` and `'1'` are not).
///
/// One `GROUP BY` statement; only the totals and at most `examples` groups
/// (largest first, ties by key, so the output is deterministic) come back to
/// Rust, with long values cut inside SQLite.
///
/// # Errors
///
/// [`Error::Config`] if `columns` is empty; [`Error::Sql`] if the table or a
/// column does not exist (source [`rusqlite::Error::InvalidColumnName`]) or
/// SQLite fails.
pub fn duplicates(
    conn: &Connection,
    table: &str,
    columns: &[String],
    examples: usize,
) -> Result<DuplicateReport> {
    if columns.is_empty() {
        return Err(Error::config(
            "columns",
            format!("duplicate check on table {table:?} needs at least one key column"),
        ));
    }
    let live = Columns::read(conn, table)?;
    let mut keys = Vec::with_capacity(columns.len());
    for column in columns {
        keys.push(quote(&live.get(column)?.name));
    }
    let select_keys: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} AS k{i}"))
        .collect();
    let not_null: Vec<String> = keys.iter().map(|k| format!("{k} IS NOT NULL")).collect();
    // Cut long text/blob keys in SQLite; one character more than shown tells
    // the renderer that the value was cut.
    let shown: Vec<String> = (0..keys.len())
        .map(|i| {
            format!(
                "CASE WHEN typeof(k{i}) IN ('text', 'blob') THEN substr(k{i}, 1, {}) ELSE k{i} END",
                MAX_VALUE_CHARS + 1
            )
        })
        .collect();
    let order: Vec<String> = (0..keys.len()).map(|i| format!("k{i}")).collect();
    let sql = format!(
        "WITH g AS (SELECT {}, count(*) AS n FROM {} WHERE {} GROUP BY {} HAVING count(*) > 1) \
         SELECT count(*) OVER (), sum(n) OVER (), n, {} FROM g ORDER BY n DESC, {} LIMIT ?1",
        select_keys.join(", "),
        quote(table),
        not_null.join(" AND "),
        keys.join(", "),
        shown.join(", "),
        order.join(", "),
    );
    let limit = i64::try_from(examples.max(1)).unwrap_or(i64::MAX);

    let mut stmt = conn.prepare(&sql).map_err(|e| Error::sql(&sql, e))?;
    let mut rows = stmt.query([limit]).map_err(|e| Error::sql(&sql, e))?;
    let mut report = DuplicateReport::default();
    while let Some(row) = rows.next().map_err(|e| Error::sql(&sql, e))? {
        let count = |i: usize| -> Result<u64> {
            let n: i64 = row.get(i).map_err(|e| Error::sql(&sql, e))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        report.groups = count(0)?;
        report.rows_in_duplicate_groups = count(1)?;
        if report.examples.len() < examples {
            let rows_with_key = count(2)?;
            let mut parts = Vec::with_capacity(keys.len());
            for i in 0..keys.len() {
                let v = row.get_ref(3 + i).map_err(|e| Error::sql(&sql, e))?;
                parts.push(render(v));
            }
            let value = if parts.len() == 1 {
                parts.swap_remove(0)
            } else {
                format!("({})", parts.join(", "))
            };
            report.examples.push(DuplicateExample {
                value,
                rows: rows_with_key,
            });
        }
    }
    Ok(report)
}

/// Renders one value for a message (see [`DuplicateExample::value`]).
fn render(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".to_string(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => format!("{r:?}"),
        ValueRef::Text(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            let mut out = String::from("'");
            for (n, ch) in text.chars().enumerate() {
                if n == MAX_VALUE_CHARS {
                    out.push('…');
                    break;
                }
                match ch {
                    '\'' => out.push_str("''"),
                    c if c.is_control() => out.extend(c.escape_default()),
                    c => out.push(c),
                }
            }
            out.push('\'');
            out
        }
        ValueRef::Blob(bytes) => {
            // Two hex digits per byte: show at most 20 bytes.
            let shown = MAX_VALUE_CHARS / 2;
            let mut out = String::from("x'");
            for b in bytes.iter().take(shown) {
                out.push_str(&format!("{b:02x}"));
            }
            if bytes.len() > shown {
                out.push('…');
            }
            out.push('\'');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_is_safe_and_short() {
        assert_eq!(render(ValueRef::Text(b"O'Brien")), "'O''Brien'");
        assert_eq!(render(ValueRef::Text(b"a\nb")), "'a\\nb'");
        assert_eq!(render(ValueRef::Text(b"\xff")), "'\u{fffd}'");
        let long = "x".repeat(41);
        assert_eq!(
            render(ValueRef::Text(long.as_bytes())),
            format!("'{}…'", "x".repeat(40))
        );
        assert_eq!(render(ValueRef::Blob(&[0, 255])), "x'00ff'");
        assert_eq!(render(ValueRef::Real(3.0)), "3.0");
    }
}
