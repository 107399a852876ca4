//! Rollback SQL derived again from what a history row records as data (its
//! typed changes and the table's schema before and after), never taken
//! from the row's stored SQL: whoever can write the database can edit that
//! text. The stored SQL is kept for people to read and compared with the
//! derived one; a difference refuses the rollback
//! ([`super::Reason::RollbackSqlMismatch`]).
//!
//! The derivation replays the planner: the recorded `schema_before` objects
//! are created in an in-memory database and introspected (the live table
//! the forward plan started from), `schema_after` likewise (the target),
//! and [`crate::plan::plan_table`] is asked for the same changes. The
//! planner is deterministic (invariant "Deterministic"), so an untouched row gives back
//! its stored SQL byte for byte.
//!
//! Whether a table took a fast path or the rebuild depended on more than
//! its schemas (the option, defensive mode, which columns every row
//! stored), so both are derived: the fast paths trusting every column, and
//! the rebuild. The stored text must equal one of them; each undoes the
//! recorded change.

use rusqlite::Connection;

use crate::diff::{Change, ChangeKind, TableDiff};
use crate::history::HistoryRow;
use crate::plan::{FastPaths, StepKind, StoredColumns, plan_drop_table, plan_table};
use crate::schema::{LiveTable, SchemaObject, SchemaSnapshot, introspect_table};

/// The rollback statements the engine generates for this history row, in
/// execution order. `Err` says why they cannot be derived.
pub(crate) fn derive(
    row: &HistoryRow,
    before: &[SchemaObject],
    after: &[SchemaObject],
) -> Result<Vec<String>, String> {
    let changes: Vec<Change> = serde_json::from_value(row.changes.clone())
        .map_err(|e| format!("the recorded changes are unreadable: {e}"))?;
    let table = &row.table_name;
    let live = shadow_table(before, table)?;
    let creates = changes.iter().any(|c| c.kind == ChangeKind::CreateTable);
    let drops = changes.iter().any(|c| c.kind == ChangeKind::DropTable);
    let plan = match (&live, creates, drops) {
        (Some(live), false, true) => plan_drop_table(&row.doctype, live, None),
        (live, _, false) => {
            let target = shadow_table(after, table)?
                .ok_or_else(|| format!("the recorded schema after has no table {table:?}"))?
                .spec;
            let renames = changes
                .iter()
                .filter(|c| c.kind == ChangeKind::RenameColumn)
                .filter_map(|c| Some((c.from.clone()?, c.column.clone()?)))
                .collect();
            let diff = TableDiff {
                doctype: row.doctype.clone(),
                table: table.clone(),
                changes,
                orphans: Vec::new(),
                renames,
            };
            let mut live = live.clone();
            if let Some(l) = live.as_mut() {
                l.sequence = recorded_sequence(&row.rollback_sql, table);
            }
            let live = if creates { None } else { live.as_ref() };
            let plan = |fast: &FastPaths| {
                plan_table(&diff, &target, live, None, &[], fast)
                    .map_err(|e| format!("the planner cannot derive the rollback: {e}"))
            };
            let fast = plan(&FastPaths::on(
                Ok(()),
                live.map(StoredColumns::all).unwrap_or_default(),
            ))?;
            if fast.rollback_sql() == row.rollback_sql
                || fast
                    .steps
                    .iter()
                    .all(|s| s.kind != StepKind::InPlace && s.kind != StepKind::Native)
            {
                fast
            } else {
                let rebuild = plan(&FastPaths::off("derived"))?;
                if rebuild.rollback_sql() == row.rollback_sql {
                    rebuild
                } else {
                    fast
                }
            }
        }
        (_, _, true) => {
            return Err(format!(
                "the recorded changes drop table {table:?}, but not as a drop of a recorded table"
            ));
        }
    };
    Ok(plan.rollback_sql())
}

/// The table as `objects` describe it, introspected from an in-memory
/// database holding just those objects; `None` when they hold no table.
fn shadow_table(objects: &[SchemaObject], table: &str) -> Result<Option<LiveTable>, String> {
    if !objects
        .iter()
        .any(|o| o.kind == "table" && o.name.eq_ignore_ascii_case(table))
    {
        return Ok(None);
    }
    let shadow =
        Connection::open_in_memory().map_err(|e| format!("cannot open a shadow database: {e}"))?;
    for kind in ["table", "index", "trigger"] {
        for o in objects.iter().filter(|o| o.kind == kind) {
            let Some(sql) = &o.sql else { continue };
            // One statement per object, as sqlite_schema holds them.
            crate::db::sqlguard::check_text(sql)
                .map_err(|e| format!("recorded {kind} {:?}: {e}", o.name))?;
            shadow
                .execute(sql, [])
                .map_err(|e| format!("recorded {kind} {:?} does not replay: {e}", o.name))?;
        }
    }
    let snapshot = SchemaSnapshot::read_table(&shadow, table).map_err(|e| e.to_string())?;
    introspect_table(&shadow, &snapshot, table).map_err(|e| e.to_string())
}

/// The AUTOINCREMENT counter a rollback puts back, as the stored SQL
/// carries it (`UPDATE sqlite_sequence SET seq = max(seq, N) WHERE name =
/// 'table'`): it is a value of the database, not of its schema. Only an
/// integer is taken; anything else derives SQL without it, which then
/// differs from the stored text.
fn recorded_sequence(stored: &[String], table: &str) -> Option<i64> {
    let tail = format!(") WHERE name = {}", crate::ident::quote_literal(table));
    stored.iter().find_map(|s| {
        let rest = s.strip_prefix("UPDATE sqlite_sequence SET seq = max(seq, ")?;
        let number = rest.strip_suffix(&tail)?;
        number.parse().ok()
    })
}
