//! What a backup needs to know about a live table: real name, rowid,
//! columns with declared types, primary key, and its schema SQL.

use rusqlite::{Connection, OptionalExtension};

use super::BackupStrategy;
use super::format::ColumnMeta;
use crate::error::{BackupErrorKind, Error, Result};
use crate::ident::{ROWID_ALIASES, quote};

/// A live table as seen by the backup code.
#[derive(Debug, Clone)]
pub(crate) struct TableInfo {
    /// Name as stored in `sqlite_schema`.
    pub name: String,
    /// A rowid alias not shadowed by a column, when the table has a rowid.
    pub rowid_alias: Option<&'static str>,
    /// Non-generated columns in table order.
    pub columns: Vec<ColumnMeta>,
    /// Declared primary key columns in key order.
    pub key_columns: Vec<String>,
    /// `CREATE TABLE` first, then index and trigger SQL.
    pub schema_sql: Vec<String>,
}

fn backup_err(table: &str, message: impl Into<String>) -> Error {
    Error::backup(table, BackupErrorKind::Table, message)
}

/// Looks a table up in the `main` schema (case-insensitively, as SQLite does).
/// Returns `None` when it does not exist.
pub(crate) fn find_table(conn: &Connection, table: &str) -> Result<Option<String>> {
    let sql =
        "SELECT name FROM main.sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE";
    conn.query_row(sql, [table], |r| r.get::<_, String>(0))
        .optional()
        .map_err(|e| Error::sql(sql, e))
}

/// Introspects `table` in the `main` schema.
pub(crate) fn inspect(conn: &Connection, table: &str) -> Result<TableInfo> {
    let name = find_table(conn, table)?
        .ok_or_else(|| backup_err(table, format!("table {table:?} does not exist")))?;
    if name.to_ascii_lowercase().starts_with("sqlite_") {
        return Err(backup_err(
            table,
            "SQLite internal tables cannot be backed up",
        ));
    }

    let sql = "SELECT sql FROM main.sqlite_schema WHERE type = 'table' AND name = ?1";
    let create: String = conn
        .query_row(sql, [&name], |r| r.get::<_, Option<String>>(0))
        .map_err(|e| Error::sql(sql, e))?
        .unwrap_or_default();
    if create.to_ascii_uppercase().starts_with("CREATE VIRTUAL") {
        return Err(backup_err(&name, "virtual tables cannot be backed up"));
    }

    let sql = "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1";
    let without_rowid: bool = conn
        .query_row(sql, [&name], |r| r.get::<_, i64>(0))
        .map_err(|e| Error::sql(sql, e))?
        != 0;

    let sql = "SELECT name, type, pk, hidden FROM pragma_table_xinfo(?1, 'main') ORDER BY cid";
    let mut stmt = conn.prepare(sql).map_err(|e| Error::sql(sql, e))?;
    let mut all = Vec::new();
    let rows = stmt
        .query_map([&name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(|e| Error::sql(sql, e))?;
    for row in rows {
        all.push(row.map_err(|e| Error::sql(sql, e))?);
    }
    let mut key: Vec<(i64, String)> = all
        .iter()
        .filter(|c| c.2 > 0)
        .map(|c| (c.2, c.0.clone()))
        .collect();
    key.sort();
    // hidden: 0 normal, 2/3 generated (recomputed by SQLite, cannot be inserted).
    let columns: Vec<ColumnMeta> = all
        .iter()
        .filter(|c| c.3 == 0)
        .map(|c| ColumnMeta {
            name: c.0.clone(),
            decl_type: c.1.clone(),
            pk: c.2.max(0) as u32,
        })
        .collect();

    let rowid_alias = if without_rowid {
        None
    } else {
        let alias = ROWID_ALIASES
            .iter()
            .find(|a| !all.iter().any(|c| c.0.eq_ignore_ascii_case(a)))
            .copied();
        if alias.is_none() {
            return Err(backup_err(
                &name,
                "columns named rowid, oid and _rowid_ hide the rowid; cannot back up",
            ));
        }
        alias
    };

    let sql = "SELECT sql FROM main.sqlite_schema WHERE tbl_name = ?1 AND sql IS NOT NULL \
               ORDER BY type <> 'table', type = 'trigger', rowid";
    let mut stmt = conn.prepare(sql).map_err(|e| Error::sql(sql, e))?;
    let schema_sql = stmt
        .query_map([&name], |r| r.get::<_, String>(0))
        .map_err(|e| Error::sql(sql, e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| Error::sql(sql, e))?;

    Ok(TableInfo {
        name,
        rowid_alias,
        columns,
        key_columns: key.into_iter().map(|k| k.1).collect(),
        schema_sql,
    })
}

impl TableInfo {
    /// The columns stored by `strategy`: every column, or the key columns
    /// followed by the named ones.
    pub(crate) fn stored_columns(&self, strategy: &BackupStrategy) -> Result<Vec<ColumnMeta>> {
        match strategy {
            BackupStrategy::FullTable => Ok(self.columns.clone()),
            BackupStrategy::Columns(names) => {
                if names.is_empty() {
                    return Err(backup_err(
                        &self.name,
                        "column backup with no columns named",
                    ));
                }
                let mut out: Vec<ColumnMeta> = Vec::new();
                for k in &self.key_columns {
                    if let Some(c) = self.columns.iter().find(|c| &c.name == k) {
                        out.push(c.clone());
                    }
                }
                for n in names {
                    let c = self
                        .columns
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(n))
                        .ok_or_else(|| {
                            backup_err(
                                &self.name,
                                format!(
                                    "column {n:?} does not exist in table {:?} (or is generated)",
                                    self.name
                                ),
                            )
                        })?;
                    if !out.iter().any(|o| o.name == c.name) {
                        out.push(c.clone());
                    }
                }
                Ok(out)
            }
        }
    }

    /// `SELECT rowid, "c1", ... FROM main."t"` for the stored columns.
    pub(crate) fn select_sql(&self, columns: &[ColumnMeta]) -> String {
        let mut cols: Vec<String> = Vec::with_capacity(columns.len() + 1);
        if let Some(a) = self.rowid_alias {
            cols.push(a.to_string());
        }
        cols.extend(columns.iter().map(|c| quote(&c.name)));
        format!("SELECT {} FROM main.{}", cols.join(", "), quote(&self.name))
    }

    /// Strategy with column names normalised to their real spelling.
    pub(crate) fn normalise(&self, strategy: &BackupStrategy) -> BackupStrategy {
        match strategy {
            BackupStrategy::FullTable => BackupStrategy::FullTable,
            BackupStrategy::Columns(names) => BackupStrategy::Columns(
                names
                    .iter()
                    .map(|n| {
                        self.columns
                            .iter()
                            .find(|c| c.name.eq_ignore_ascii_case(n))
                            .map_or_else(|| n.clone(), |c| c.name.clone())
                    })
                    .collect(),
            ),
        }
    }
}
