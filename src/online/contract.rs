//! The end of an online migration: complete's first part (the renamed
//! columns' twins checked and dropped with their triggers; the plain
//! apply that follows is the applier's) and abort (everything the expand
//! step added dropped again). Both run under the write lock, in the
//! caller's transaction; every statement is derived from the recorded
//! state's typed data and quoted, never taken from stored SQL text.

use rusqlite::Connection;

use crate::db::sqlguard;
use crate::diff::ChangeKind;
use crate::error::{Error, Result};
use crate::history::{MigrationId, store};
use crate::ident::{quote, quote_literal};
use crate::schema::{SchemaObject, SchemaSnapshot};

use super::expand::{fill_triggers, twin_triggers};
use super::state::{FILLED_TABLE, OnlineStatus, OnlineTable, clear};

/// Complete, first part: each renamed column's twin must equal it in
/// every row ([`Error::OnlineMismatch`] otherwise); then the triggers and
/// the twins are dropped, and each DocType's expand row is marked
/// `completed`, recording what stays (see [`store::Expansion`]). The
/// state table is dropped. What remains for a plain apply of the same
/// DocTypes to do is what the online migration deferred.
pub fn prepare_complete(conn: &Connection, status: &OnlineStatus) -> Result<()> {
    for table in &status.tables {
        if !table.backfill_done() {
            return Err(Error::BackfillIncomplete {
                table: table.table.clone(),
                backfilled_to: table.backfilled_to,
                max_rowid: table.max_rowid,
            });
        }
        for (old, new) in &table.renames {
            check_twins(conn, &table.table, old, new)?;
        }
    }
    for table in &status.tables {
        drop_twins(conn, table)?;
        let after = SchemaSnapshot::read_table(conn, &table.table)?;
        store::complete_expanded(
            conn,
            table.migration,
            &store::Expansion {
                sql: table.added_sql.0.clone(),
                rollback_sql: table.added_sql.1.clone(),
                changes: serde_json::to_value(&table.added).unwrap_or_default(),
                fingerprint_after: after.table_fingerprint(&table.table),
                schema_after: serde_json::to_value(&after.objects).unwrap_or_default(),
            },
        )?;
    }
    clear(conn)
}

/// Abort: drops the triggers, the twins and what the expand step added,
/// newest first; checks that each table is again exactly what its expand
/// row recorded before (whitespace aside); marks the expand rows
/// `rolled_back`; drops the state table. Returns the migrations rolled back.
pub fn abort(conn: &Connection, status: &OnlineStatus) -> Result<Vec<MigrationId>> {
    let mut done = Vec::new();
    for table in status.tables.iter().rev() {
        let mut ran = drop_twins(conn, table)?;
        // The NULLs the fills replaced come back, where the value is still
        // the one filled in.
        for (column, value) in &table.fills {
            let sql = format!(
                "UPDATE {t} SET {c} = NULL WHERE rowid IN (SELECT row_id FROM {f} \
                 WHERE table_name = {tl} AND column_name = {cl}) AND {c} IS ({value})",
                t = quote(&table.table),
                c = quote(column),
                f = quote(FILLED_TABLE),
                tl = quote_literal(&table.table),
                cl = quote_literal(column),
            );
            sqlguard::run(conn, &sql)?;
            ran.push(sql);
        }
        for change in table.added.iter().rev() {
            let sql = match change.kind {
                ChangeKind::AddIndex | ChangeKind::AddUnique => {
                    let Some(index) = &change.index else { continue };
                    format!("DROP INDEX IF EXISTS {}", quote(index))
                }
                ChangeKind::AddColumn => {
                    let Some(column) = &change.column else {
                        continue;
                    };
                    format!(
                        "ALTER TABLE {} DROP COLUMN {}",
                        quote(&table.table),
                        quote(column)
                    )
                }
                ChangeKind::CreateTable => format!("DROP TABLE {}", quote(&table.table)),
                _ => continue,
            };
            sqlguard::run(conn, &sql)?;
            ran.push(sql);
        }
        let row = store::get(conn, table.migration)?;
        let before: Vec<SchemaObject> =
            serde_json::from_value(row.schema_before.clone()).unwrap_or_default();
        let now = SchemaSnapshot::read_table(conn, &table.table)?.objects;
        if normalized(&before) != normalized(&now) {
            return Err(Error::Verification {
                doctype: table.doctype.clone(),
                table: table.table.clone(),
                message: "after abort, the table's schema is not the one recorded before the \
                          online migration started"
                    .into(),
            });
        }
        let info = serde_json::json!({ "online_abort": true, "statements": ran });
        store::record_rollback(conn, table.migration, &info.to_string())?;
        done.push(table.migration);
    }
    clear(conn)?;
    Ok(done)
}

/// Drops a table's twin and fill triggers and its twin columns; returns
/// the statements.
fn drop_twins(conn: &Connection, table: &OnlineTable) -> Result<Vec<String>> {
    let mut ran = Vec::new();
    for (column, _) in &table.fills {
        for trigger in fill_triggers(&table.table, column) {
            ran.push(format!("DROP TRIGGER IF EXISTS {}", quote(&trigger)));
        }
    }
    for (old, new) in &table.renames {
        for trigger in twin_triggers(&table.table, old, new) {
            ran.push(format!("DROP TRIGGER IF EXISTS {}", quote(&trigger)));
        }
    }
    for (_, new) in &table.renames {
        ran.push(format!(
            "ALTER TABLE {} DROP COLUMN {}",
            quote(&table.table),
            quote(new)
        ));
    }
    for sql in &ran {
        sqlguard::run(conn, sql)?;
    }
    Ok(ran)
}

/// Every row's `old` and `new` must hold the same value (`IS`: NULLs
/// equal, and a value equals only a value of the same storage class the
/// column's affinity gives it).
fn check_twins(conn: &Connection, table: &str, old: &str, new: &str) -> Result<()> {
    let sql = format!(
        "SELECT count(*), coalesce(sum({n} IS NOT {o}), 0) FROM {t}",
        n = quote(new),
        o = quote(old),
        t = quote(table)
    );
    let (rows, differing): (i64, i64) = conn
        .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| Error::sql(&sql, e))?;
    if differing > 0 {
        return Err(Error::OnlineMismatch {
            table: table.to_string(),
            old: old.to_string(),
            new: new.to_string(),
            rows,
            differing,
        });
    }
    Ok(())
}

/// Objects as `(type, name, SQL with whitespace collapsed)`, sorted.
fn normalized(objects: &[SchemaObject]) -> Vec<(String, String, String)> {
    let mut list: Vec<(String, String, String)> = objects
        .iter()
        .map(|o| {
            (
                o.kind.clone(),
                o.name.to_ascii_lowercase(),
                o.sql
                    .as_deref()
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        })
        .collect();
    list.sort();
    list
}
