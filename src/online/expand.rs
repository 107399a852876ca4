//! The expand step of one DocType: what an online migration adds at
//! start, and the triggers that keep a renamed column's two names equal.

use crate::diff::{Change, ChangeKind, TableDiff};
use crate::error::{Error, Result};
use crate::ident::{quote, quote_literal};
use crate::plan::{DocTypePlan, FastPaths, plan_table};
use crate::schema::LiveTable;

/// What the expand step does to one table.
#[derive(Debug, Clone, Default)]
pub struct Expansion {
    /// Statements, in order: new tables, columns and indexes, then the
    /// renamed columns' twins, then their triggers.
    pub statements: Vec<String>,
    /// The changes that stay after complete (new tables, columns, indexes).
    pub added: Vec<Change>,
    /// The statements of `added` alone, as a plain apply runs them.
    pub added_sql: Vec<String>,
    /// Their rollback, as a plain apply records it.
    pub added_rollback: Vec<String>,
    /// `(old, new)` renames, dual-written.
    pub renames: Vec<(String, String)>,
    /// `(column, SQL value)`: columns becoming NOT NULL whose NULLs the
    /// backfill and triggers fill meanwhile (the constraint is set at
    /// complete).
    pub fills: Vec<(String, String)>,
}

/// Plans the expand step of one DocType's plan. Changes that cannot wait
/// for complete and cannot be made online are refused with
/// [`Error::OnlineRefused`].
pub fn expand(plan: &DocTypePlan, live: Option<&LiveTable>) -> Result<Expansion> {
    let refuse = |reason: String| Error::OnlineRefused {
        doctype: plan.doctype.clone(),
        table: plan.table.clone(),
        reason,
    };
    let Some(live) = live else {
        // A new table: created at start, as a plain apply creates it.
        return Ok(Expansion {
            statements: plan.forward_sql(),
            added: plan.changes.clone(),
            added_sql: plan.forward_sql(),
            added_rollback: plan.rollback_sql(),
            renames: Vec::new(),
            fills: Vec::new(),
        });
    };
    let renames: Vec<(String, String)> = plan
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::RenameColumn)
        .filter_map(|c| Some((c.from.clone()?, c.column.clone()?)))
        .collect();
    let is_renamed = |col: &str| renames.iter().any(|(_, n)| n.eq_ignore_ascii_case(col));
    let mut added = Vec::new();
    for change in &plan.changes {
        match change.kind {
            ChangeKind::AddColumn => {
                let column = change.column.as_deref().unwrap_or_default();
                let addable = plan
                    .target
                    .column(column)
                    .is_some_and(|c| c.addable_natively());
                if !addable {
                    return Err(refuse(format!(
                        "new column {column:?} is NOT NULL without a default, which ALTER TABLE \
                         cannot add to a table in use; give it a default, or use a plain apply"
                    )));
                }
                added.push(change.clone());
            }
            // An index on a renamed column waits for complete, where the
            // column has its new name for good.
            ChangeKind::AddIndex | ChangeKind::AddUnique
                if !change.columns.iter().any(|c| is_renamed(c)) =>
            {
                added.push(change.clone())
            }
            _ => {}
        }
    }
    // A column becoming NOT NULL (not one being renamed: complete fills
    // that one) gets its NULLs filled with what a plain apply would fill
    // them with: the value given for it, else its default.
    let fills: Vec<(String, String)> = plan
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::ChangeNullability)
        .filter_map(|c| c.column.as_deref())
        .filter(|col| !is_renamed(col))
        .filter_map(|col| {
            let target = plan.target.column(col).filter(|t| t.not_null)?;
            let value = plan
                .null_fills
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(col))
                .map(|(_, v)| v.clone())
                .or_else(|| target.default.clone())?;
            Some((target.name.clone(), value))
        })
        .collect();
    if (!renames.is_empty() || !fills.is_empty()) && without_rowid(&live.sql) {
        return Err(refuse(
            "renamed columns and NULL fills are written by rowid, and the table is WITHOUT \
             ROWID; use a plain apply"
                .into(),
        ));
    }
    let diff = TableDiff {
        doctype: plan.doctype.clone(),
        table: plan.table.clone(),
        changes: added.clone(),
        orphans: Vec::new(),
        renames: Vec::new(),
    };
    let native = plan_table(
        &diff,
        &plan.target,
        Some(live),
        None,
        &[],
        &FastPaths::off("online start adds only"),
    )?;
    let mut statements = native.forward_sql();
    let table = quote(&plan.table);
    for (old, new) in &renames {
        let Some(column) = live.spec.column(old) else {
            return Err(refuse(format!(
                "renamed column {old:?} is not in the table"
            )));
        };
        if column.primary_key {
            return Err(refuse(format!(
                "column {old:?} is the primary key, which cannot have a twin; use a plain apply"
            )));
        }
        if column.not_null && column.default.is_none() {
            return Err(refuse(format!(
                "column {old:?} is NOT NULL without a default: an insert through the new name \
                 {new:?} would fail before any trigger could copy it; use a plain apply (which \
                 renames it at once), or give the column a default first"
            )));
        }
        let mut twin = column.clone();
        twin.name = new.clone();
        statements.push(format!(
            "ALTER TABLE {table} ADD COLUMN {}",
            twin.definition_sql(false)
        ));
    }
    for (old, new) in &renames {
        let default = live
            .spec
            .column(old)
            .and_then(|c| c.default.clone())
            .unwrap_or_else(|| "NULL".into());
        statements.extend(
            twin_triggers(&plan.table, old, new)
                .into_iter()
                .zip(trigger_bodies(&plan.table, old, new, &default))
                .map(|(name, body)| format!("CREATE TRIGGER {} {body}", quote(&name))),
        );
    }
    for (column, value) in &fills {
        statements.extend(
            fill_triggers(&plan.table, column)
                .into_iter()
                .zip(fill_bodies(&plan.table, column, value))
                .map(|(name, body)| format!("CREATE TRIGGER {} {body}", quote(&name))),
        );
    }
    Ok(Expansion {
        statements,
        added_sql: native.forward_sql(),
        added_rollback: native.rollback_sql(),
        added,
        renames,
        fills,
    })
}

/// The names of the two triggers that fill NULLs written to `column` of
/// `table` meanwhile: after insert, after an update of the column.
pub fn fill_triggers(table: &str, column: &str) -> [String; 2] {
    let base = format!("dm_online__{table}__{column}__fill");
    [format!("{base}_insert"), format!("{base}_update")]
}

/// The bodies of [`fill_triggers`]: the row's rowid is recorded in the
/// online state's list of filled rows (so that abort can give the NULL
/// back), then the value written.
fn fill_bodies(table: &str, column: &str, value: &str) -> [String; 2] {
    let (t, c) = (quote(table), quote(column));
    let record = format!(
        "INSERT OR IGNORE INTO {} (table_name, column_name, row_id) VALUES ({}, {}, NEW.rowid);",
        quote(super::state::FILLED_TABLE),
        quote_literal(table),
        quote_literal(column)
    );
    let set = format!("UPDATE {t} SET {c} = ({value}) WHERE rowid = NEW.rowid;");
    [
        format!("AFTER INSERT ON {t} WHEN NEW.{c} IS NULL BEGIN {record} {set} END"),
        format!("AFTER UPDATE OF {c} ON {t} WHEN NEW.{c} IS NULL BEGIN {record} {set} END"),
    ]
}

/// The names of the three triggers that keep `old` and `new` equal in
/// `table`: after insert, after an update of the old name, after an
/// update of the new name.
pub fn twin_triggers(table: &str, old: &str, new: &str) -> [String; 3] {
    let base = format!("dm_online__{table}__{old}__{new}");
    [
        format!("{base}__insert"),
        format!("{base}__old"),
        format!("{base}__new"),
    ]
}

/// The bodies (everything after the name) of [`twin_triggers`].
///
/// Each copies the side that was written to the other, in the row just
/// written (by rowid), and only when the two differ: so a copy's own
/// update finds them equal and stops after one hop, whatever the
/// connection's `recursive_triggers`. On insert a side holding the
/// column's default counts as not written; when one statement writes both
/// sides with different values, the new name wins.
fn trigger_bodies(table: &str, old: &str, new: &str, default: &str) -> [String; 3] {
    let (t, o, n) = (quote(table), quote(old), quote(new));
    [
        format!(
            "AFTER INSERT ON {t} WHEN NEW.{n} IS NOT NEW.{o} BEGIN \
             UPDATE {t} SET {o} = NEW.{n} WHERE rowid = NEW.rowid AND NEW.{n} IS NOT ({default}); \
             UPDATE {t} SET {n} = NEW.{o} WHERE rowid = NEW.rowid AND NEW.{n} IS ({default}); END"
        ),
        format!(
            "AFTER UPDATE OF {o} ON {t} WHEN NEW.{o} IS NOT NEW.{n} AND NEW.{n} IS OLD.{n} BEGIN \
             UPDATE {t} SET {n} = NEW.{o} WHERE rowid = NEW.rowid; END"
        ),
        format!(
            "AFTER UPDATE OF {n} ON {t} WHEN NEW.{n} IS NOT NEW.{o} BEGIN \
             UPDATE {t} SET {o} = NEW.{n} WHERE rowid = NEW.rowid; END"
        ),
    ]
}

/// Whether a CREATE TABLE statement's table options (after its last `)`)
/// say `WITHOUT ROWID`.
fn without_rowid(sql: &str) -> bool {
    let options = sql.rsplit(')').next().unwrap_or_default();
    options
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .any(|w| w.eq_ignore_ascii_case("ROWID"))
}
