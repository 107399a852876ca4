//! Giving data back from backups, after the rollback SQL has put the
//! original schema back. Runs inside the rollback's transaction.
//!
//! * A dropped table ([`RestoreMode::ReplaceTable`]) gets every row of its
//!   full backup, rowids included ([`BackupManager::restore`] into the
//!   original table, which the rollback SQL recreated empty).
//! * A column backup ([`RestoreMode::RestoreColumns`]) updates its columns
//!   in the rows it matches ([`BackupManager::restore`] into the original).
//! * A full backup of a rebuilt table ([`RestoreMode::MergeColumns`]) is
//!   restored into a scratch table beside it; then only the columns the
//!   forward step destroyed or converted are copied back, into the rows that
//!   still exist, matched by primary key (rowid when there is none). Rows
//!   added since the migration are kept; rows deleted since stay deleted;
//!   columns the migration left alone keep what was written since. The
//!   table's triggers are suspended while its rows are updated, so restoring
//!   data runs no application logic.

use std::path::PathBuf;

use rusqlite::Connection;
use serde::Serialize;

use crate::backup::{BackupManager, RestoreTarget};
use crate::error::{BackupErrorKind, Error, Result};
use crate::ident::quote;

use super::feasibility::{PlannedRestore, RestoreMode, RollbackStep};

/// A backup that was restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RestoreDone {
    /// The backup file.
    pub path: PathBuf,
    /// How it was restored.
    pub mode: RestoreMode,
    /// The columns restored (empty for a whole table).
    pub columns: Vec<String>,
    /// Rows inserted (whole table) or updated (columns).
    pub rows: u64,
}

/// Prefix of the scratch table a merge restores a full backup into.
pub const SCRATCH_PREFIX: &str = "_dm_rollback_";

/// Restores what `step` planned.
pub fn restore_step(
    conn: &Connection,
    backups: &BackupManager,
    step: &RollbackStep,
) -> Result<Vec<RestoreDone>> {
    let mut done = Vec::new();
    for r in &step.restores {
        let rows = match r.mode {
            RestoreMode::ReplaceTable | RestoreMode::RestoreColumns => {
                backups.restore_exact(conn, &r.path, RestoreTarget::Original, &r.sha256)?
            }
            RestoreMode::MergeColumns => merge(conn, backups, &step.table, r)?,
        };
        done.push(RestoreDone {
            path: r.path.clone(),
            mode: r.mode,
            columns: r.columns.clone(),
            rows,
        });
    }
    Ok(done)
}

fn exec(conn: &Connection, sql: &str) -> Result<()> {
    crate::db::sqlguard::run(conn, sql)
}

fn strings(conn: &Connection, sql: &str, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(sql).map_err(|e| Error::sql(sql, e))?;
    stmt.query_map([table], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sql(sql, e))
}

fn merge(
    conn: &Connection,
    backups: &BackupManager,
    table: &str,
    r: &PlannedRestore,
) -> Result<u64> {
    let fail = |message: String| Error::backup(&r.path, BackupErrorKind::Restore, message);
    let live_cols = strings(
        conn,
        "SELECT name FROM pragma_table_info(?1) ORDER BY cid",
        table,
    )?;
    let mut columns = Vec::new();
    for c in &r.columns {
        let live = live_cols
            .iter()
            .find(|l| l.eq_ignore_ascii_case(c))
            .ok_or_else(|| fail(format!("table {table:?} has no column {c:?} to restore")))?;
        columns.push(live.clone());
    }
    let key = strings(
        conn,
        "SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk",
        table,
    )?;
    let scratch = format!("{SCRATCH_PREFIX}{table}");
    let exists: i64 = conn
        .query_row(
            "SELECT count(*) FROM main.sqlite_schema WHERE name = ?1 COLLATE NOCASE",
            [&scratch],
            |row| row.get(0),
        )
        .map_err(|e| Error::sql("SELECT count(*) FROM main.sqlite_schema", e))?;
    if exists > 0 {
        return Err(fail(format!(
            "a table named {scratch:?} exists; it is needed as scratch space for the restore"
        )));
    }
    backups.restore_exact(
        conn,
        &r.path,
        RestoreTarget::NewTable(scratch.clone()),
        &r.sha256,
    )?;

    let triggers: Vec<(String, String)> = {
        const SQL: &str = "SELECT name, sql FROM main.sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 COLLATE NOCASE ORDER BY rowid";
        let mut stmt = conn.prepare(SQL).map_err(|e| Error::sql(SQL, e))?;
        stmt.query_map([table], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| Error::sql(SQL, e))?
    };
    for (name, _) in &triggers {
        exec(conn, &format!("DROP TRIGGER main.{}", quote(name)))?;
    }
    let join = if key.is_empty() {
        "x.rowid = t.rowid".to_string()
    } else {
        key.iter()
            .map(|k| format!("x.{q} = t.{q}", q = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let set: Vec<String> = columns
        .iter()
        .map(|c| format!("{q} = t.{q}", q = quote(c)))
        .collect();
    let rows = if set.is_empty() {
        0
    } else {
        let sql = format!(
            "UPDATE main.{} AS x SET {} FROM main.{} AS t WHERE {join}",
            quote(table),
            set.join(", "),
            quote(&scratch)
        );
        exec(conn, &sql)?;
        conn.changes()
    };
    exec(conn, &format!("DROP TABLE main.{}", quote(&scratch)))?;
    for (_, sql) in &triggers {
        exec(conn, sql)?;
    }
    Ok(rows)
}
