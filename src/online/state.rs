//! `tabMigrationOnline`: the online migration in progress, one row per
//! DocType. Written in the transactions of the changes it records (the
//! expand step, each backfill range, complete, abort); read by `online
//! status`, `resume`, `complete` and `abort`, which are given only the
//! database.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::diff::Change;
use crate::doctype::DocType;
use crate::error::{Error, Result};
use crate::history::MigrationId;
use crate::ident::quote;

/// Name of the online state table.
pub const ONLINE_TABLE: &str = "tabMigrationOnline";

/// The rows whose NULLs an online migration filled (by the backfill or a
/// trigger), so that abort can give each its NULL back.
pub const FILLED_TABLE: &str = "tabMigrationOnlineFilled";

const CREATE_FILLED: &str = "CREATE TABLE \"tabMigrationOnlineFilled\" (
  \"table_name\" TEXT NOT NULL,
  \"column_name\" TEXT NOT NULL,
  \"row_id\" INTEGER NOT NULL,
  PRIMARY KEY (\"table_name\", \"column_name\", \"row_id\")
) WITHOUT ROWID";

const CREATE: &str = "CREATE TABLE \"tabMigrationOnline\" (
  \"id\" INTEGER PRIMARY KEY,
  \"batch_id\" TEXT NOT NULL,
  \"migration_id\" INTEGER NOT NULL,
  \"doctype\" TEXT NOT NULL,
  \"table_name\" TEXT NOT NULL,
  \"definition\" TEXT NOT NULL,
  \"changes\" TEXT NOT NULL DEFAULT '[]',
  \"added_sql\" TEXT NOT NULL DEFAULT '[]',
  \"added_rollback\" TEXT NOT NULL DEFAULT '[]',
  \"renames\" TEXT NOT NULL DEFAULT '[]',
  \"fills\" TEXT NOT NULL DEFAULT '[]',
  \"max_rowid\" INTEGER NOT NULL DEFAULT 0,
  \"backfilled_to\" INTEGER NOT NULL DEFAULT 0,
  \"allow_data_loss\" INTEGER NOT NULL DEFAULT 0,
  \"drop_orphan_columns\" INTEGER NOT NULL DEFAULT 0,
  \"started_at\" TEXT NOT NULL
)";

/// The online migration in progress on a database.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct OnlineStatus {
    /// The batch id of its expand step (its history rows share it).
    pub batch_id: String,
    /// When it was started (RFC 3339, UTC).
    pub started_at: String,
    /// Whether data loss was allowed at start (lossy type changes, dropped
    /// fields); complete applies with the same consent.
    pub allow_data_loss: bool,
    /// Whether complete drops the columns the DocTypes no longer declare.
    pub drop_orphan_columns: bool,
    /// One entry per DocType, in the order they were expanded.
    pub tables: Vec<OnlineTable>,
}

impl OnlineStatus {
    /// Whether every table's backfill has finished: `complete` may run.
    pub fn backfill_done(&self) -> bool {
        self.tables.iter().all(OnlineTable::backfill_done)
    }

    /// The DocTypes of the online migration.
    pub fn doctypes(&self) -> Vec<String> {
        self.tables.iter().map(|t| t.doctype.clone()).collect()
    }
}

/// One DocType of an online migration.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct OnlineTable {
    /// The DocType.
    pub doctype: String,
    /// Its table.
    pub table: String,
    /// The history row of its expand step (status `expanded`).
    pub migration: MigrationId,
    /// The changes the expand step made and complete keeps (new tables,
    /// columns and indexes).
    pub added: Vec<Change>,
    /// `(old, new)` column renames, dual-written until complete.
    pub renames: Vec<(String, String)>,
    /// `(column, SQL value)`: columns becoming NOT NULL whose NULLs are
    /// filled meanwhile (the constraint is set at complete).
    pub fills: Vec<(String, String)>,
    /// The largest rowid when it started: the backfill's bound.
    pub max_rowid: i64,
    /// The backfill has copied every rowid up to this one.
    pub backfilled_to: i64,
    /// The DocType as given at start (complete applies it).
    #[serde(skip)]
    pub(crate) definition: Option<DocType>,
    /// The statements of `added` as a plain apply runs them, and their
    /// rollback: what its history row records once complete.
    #[serde(skip)]
    pub(crate) added_sql: (Vec<String>, Vec<String>),
}

impl OnlineTable {
    /// Whether its backfill has finished.
    pub fn backfill_done(&self) -> bool {
        (self.renames.is_empty() && self.fills.is_empty()) || self.backfilled_to >= self.max_rowid
    }

    /// The DocType as given at start.
    pub(crate) fn definition(&self) -> Result<&DocType> {
        self.definition
            .as_ref()
            .ok_or_else(|| Error::UnsupportedChange {
                doctype: self.doctype.clone(),
                table: self.table.clone(),
                message: format!("{ONLINE_TABLE} holds no readable DocType definition for it"),
            })
    }
}

/// Whether the online state table exists.
fn exists(conn: &Connection) -> Result<bool> {
    const SQL: &str = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1";
    conn.query_row(SQL, [ONLINE_TABLE], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(|e| Error::sql(SQL, e))
}

/// The online migration in progress, if any.
pub fn read(conn: &Connection) -> Result<Option<OnlineStatus>> {
    if !exists(conn)? {
        return Ok(None);
    }
    const SQL: &str = "SELECT batch_id, migration_id, doctype, table_name, definition, changes, \
         renames, max_rowid, backfilled_to, allow_data_loss, drop_orphan_columns, started_at, \
         added_sql, added_rollback, fills FROM \"tabMigrationOnline\" ORDER BY id";
    let mut stmt = conn.prepare(SQL).map_err(|e| Error::sql(SQL, e))?;
    let rows = stmt
        .query_map([], |r| {
            let definition: String = r.get(4)?;
            let changes: String = r.get(5)?;
            let renames: String = r.get(6)?;
            let statements = |i: usize| -> rusqlite::Result<Vec<String>> {
                let text: String = r.get(i)?;
                Ok(serde_json::from_str(&text).unwrap_or_default())
            };
            Ok((
                r.get::<_, String>(0)?,
                OnlineTable {
                    migration: MigrationId(r.get(1)?),
                    doctype: r.get(2)?,
                    table: r.get(3)?,
                    definition: serde_json::from_str(&definition).ok(),
                    added: serde_json::from_str(&changes).unwrap_or_default(),
                    renames: serde_json::from_str(&renames).unwrap_or_default(),
                    max_rowid: r.get(7)?,
                    backfilled_to: r.get(8)?,
                    added_sql: (statements(12)?, statements(13)?),
                    fills: {
                        let text: String = r.get(14)?;
                        serde_json::from_str(&text).unwrap_or_default()
                    },
                },
                r.get::<_, bool>(9)?,
                r.get::<_, bool>(10)?,
                r.get::<_, String>(11)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| Error::sql(SQL, e))?;
    let Some((batch_id, _, allow_data_loss, drop_orphan_columns, started_at)) =
        rows.first().cloned()
    else {
        return Ok(None);
    };
    // The fill values are SQL the backfill and abort run: stored SQL, which
    // the engine never runs as found. Start recorded literals (quoted
    // text, numbers, CURRENT_TIMESTAMP and the like); anything else was
    // edited in, and is refused.
    for (_, table, ..) in &rows {
        if let Some((column, value)) = table.fills.iter().find(|(_, v)| !is_literal(v)) {
            return Err(Error::UnsupportedChange {
                doctype: table.doctype.clone(),
                table: table.table.clone(),
                message: format!(
                    "{ONLINE_TABLE} gives column {column:?} the fill value {value:?}, which is \
                     not a literal; the online state was edited outside the engine"
                ),
            });
        }
    }
    Ok(Some(OnlineStatus {
        batch_id,
        started_at,
        allow_data_loss,
        drop_orphan_columns,
        tables: rows.into_iter().map(|r| r.1).collect(),
    }))
}

/// Whether `sql` is a literal as the engine renders defaults and fill
/// values: a single-quoted string (quotes inside doubled), a number, or
/// one of `NULL`, `TRUE`, `FALSE`, `CURRENT_TIMESTAMP`, `CURRENT_DATE`,
/// `CURRENT_TIME`; optionally in one pair of parentheses.
pub(crate) fn is_literal(sql: &str) -> bool {
    let s = sql.trim();
    let s = s
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .map_or(s, str::trim);
    if let Some(inner) = s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
        return !inner.replace("''", "").contains('\'');
    }
    const WORDS: [&str; 6] = [
        "NULL",
        "TRUE",
        "FALSE",
        "CURRENT_TIMESTAMP",
        "CURRENT_DATE",
        "CURRENT_TIME",
    ];
    if WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        return true;
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty()
        && digits
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && digits.parse::<f64>().is_ok()
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
}

/// Refuses with [`Error::OnlineInProgress`] when an online migration is in
/// progress.
pub fn in_progress(conn: &Connection) -> Result<()> {
    match read(conn)? {
        None => Ok(()),
        Some(status) => Err(Error::OnlineInProgress {
            doctypes: status.doctypes(),
            batch_id: status.batch_id,
        }),
    }
}

/// What start records for one DocType.
pub struct NewOnlineTable<'a> {
    /// Batch id of the expand step.
    pub batch_id: &'a str,
    /// Its history row.
    pub migration: MigrationId,
    /// The DocType as given.
    pub doctype: &'a DocType,
    /// Its table.
    pub table: &'a str,
    /// What expand added for good.
    pub added: &'a [Change],
    /// Its statements, as a plain apply runs them.
    pub added_sql: &'a [String],
    /// Their rollback.
    pub added_rollback: &'a [String],
    /// Renames dual-written.
    pub renames: &'a [(String, String)],
    /// NULL fills.
    pub fills: &'a [(String, String)],
    /// Largest rowid at start.
    pub max_rowid: i64,
    /// Consent to data loss at start.
    pub allow_data_loss: bool,
    /// Drop orphan columns at complete.
    pub drop_orphan_columns: bool,
}

/// Creates the state tables (in the expand step's transaction, before
/// the fill triggers that write to one of them).
pub fn ensure_tables(conn: &Connection) -> Result<()> {
    if !exists(conn)? {
        for sql in [CREATE, CREATE_FILLED] {
            conn.execute_batch(sql).map_err(|e| Error::sql(sql, e))?;
        }
    }
    Ok(())
}

/// Records one DocType of an online migration being started. In the
/// expand step's transaction, after [`ensure_tables`].
pub fn record(conn: &Connection, t: &NewOnlineTable<'_>) -> Result<()> {
    const SQL: &str = "INSERT INTO \"tabMigrationOnline\" (batch_id, migration_id, doctype, \
         table_name, definition, changes, renames, max_rowid, backfilled_to, allow_data_loss, \
         drop_orphan_columns, started_at, added_sql, added_rollback, fills) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, ?11, ?12, ?13, ?14)";
    let json = |v: serde_json::Result<String>| v.unwrap_or_else(|_| "null".into());
    conn.execute(
        SQL,
        params![
            t.batch_id,
            t.migration.0,
            t.doctype.name,
            t.table,
            json(serde_json::to_string(t.doctype)),
            json(serde_json::to_string(t.added)),
            json(serde_json::to_string(t.renames)),
            t.max_rowid,
            t.allow_data_loss,
            t.drop_orphan_columns,
            crate::history::store::now(),
            json(serde_json::to_string(t.added_sql)),
            json(serde_json::to_string(t.added_rollback)),
            json(serde_json::to_string(t.fills)),
        ],
    )
    .map(drop)
    .map_err(|e| Error::sql(SQL, e))
}

/// Records that the backfill of `table` has copied every rowid up to `to`.
/// In the backfill range's own transaction.
pub fn advance(conn: &Connection, table: &str, to: i64) -> Result<()> {
    const SQL: &str = "UPDATE \"tabMigrationOnline\" SET backfilled_to = ?2 WHERE table_name = ?1";
    conn.prepare_cached(SQL)
        .and_then(|mut s| s.execute(params![table, to]))
        .map(drop)
        .map_err(|e| Error::sql(SQL, e))
}

/// Ends the online migration's record (complete or abort): the state table
/// is dropped. In the transaction of the complete or abort.
pub fn clear(conn: &Connection) -> Result<()> {
    for table in [ONLINE_TABLE, FILLED_TABLE] {
        let sql = format!("DROP TABLE IF EXISTS {}", quote(table));
        conn.execute_batch(&sql).map_err(|e| Error::sql(&sql, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_literal;

    #[test]
    fn only_literals_pass() {
        for ok in [
            "'web'",
            "'it''s'",
            "0",
            "-1.5",
            "1e3",
            "(0)",
            "CURRENT_TIMESTAMP",
            "NULL",
            "''",
        ] {
            assert!(is_literal(ok), "{ok}");
        }
        for bad in [
            "'a' OR 1",
            "1) OR (1",
            "(SELECT 1)",
            "'it's'",
            "abs(1)",
            "1; DROP TABLE x",
            "",
            "x",
            "inf",
            "NaN",
        ] {
            assert!(!is_literal(bad), "{bad}");
        }
    }
}
