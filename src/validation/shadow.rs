//! SQL001: replay the plan on an in-memory shadow copy of the schema.
//!
//! Every forward statement must run and leave exactly the target table;
//! every rollback statement must run after it and give back exactly the
//! starting table (columns, indexes, triggers, foreign keys). Generator bugs
//! are caught here, before anything touches the real file.

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::plan::{DocTypePlan, MigrationPlan, StepKind};
use crate::schema::compare::check_table;
use crate::schema::{LiveTable, SchemaSnapshot, introspect_table, table_spec};

use crate::outcome::{Finding, Rule, Severity};

/// Runs SQL001 for every DocType with steps.
pub fn check(live_snapshot: &SchemaSnapshot, plan: &MigrationPlan) -> Result<Vec<Finding>> {
    let pending: Vec<&DocTypePlan> = plan.pending().collect();
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let shadow = Connection::open_in_memory().map_err(|e| Error::sql("open shadow database", e))?;
    shadow
        .execute_batch("PRAGMA foreign_keys = OFF")
        .map_err(|e| Error::sql("PRAGMA foreign_keys = OFF", e))?;
    // Tables first, then indexes, views and triggers, in their original order.
    // Objects that cannot be replayed (virtual tables of missing modules) are
    // skipped; if one of them matters, the replay below reports it.
    for kind in ["table", "index", "view", "trigger"] {
        for o in live_snapshot.objects.iter().filter(|o| o.kind == kind) {
            if o.name.starts_with("sqlite_") {
                continue;
            }
            if let Some(sql) = &o.sql {
                let _ = shadow.execute_batch(sql);
            }
        }
    }
    let mut findings = Vec::new();
    for p in pending {
        if let Some(problem) = replay(&shadow, p)? {
            findings.push(Finding {
                rule: Rule::Sql001,
                severity: Severity::Critical,
                blocking: true,
                doctype: p.doctype.clone(),
                table: p.table.clone(),
                column: None,
                rows_affected: None,
                message: problem,
                suggestion: "this is a bug in the plan generator; report it with the plan (doctype-migrate plan --json)"
                    .into(),
            });
        }
    }
    Ok(findings)
}

fn replay(shadow: &Connection, p: &DocTypePlan) -> Result<Option<String>> {
    let creates = p.steps.iter().all(|s| s.kind == StepKind::CreateTable);
    let before = if creates {
        None
    } else {
        table_state(shadow, &p.table)?
    };
    for sql in p.forward_sql() {
        if let Err(e) = shadow.execute_batch(&sql) {
            return Ok(Some(format!(
                "forward statement fails on the shadow schema ({e}): {sql}"
            )));
        }
    }
    let after = table_spec(shadow, &p.table)?;
    // The comparison verification makes after executing (invariant "Verified").
    let problems = check_table(&p.target, &p.orphans, p.drops_table(), after.as_ref());
    if !problems.is_empty() {
        return Ok(Some(format!(
            "the forward SQL does not produce the target schema: {}",
            problems.join("; ")
        )));
    }
    // Creating a table is undone by dropping it; nothing to prove, and
    // replaying it would only cost time on large first runs.
    if p.steps.iter().all(|s| s.kind == StepKind::CreateTable) {
        return Ok(None);
    }
    for sql in p.rollback_sql() {
        if let Err(e) = shadow.execute_batch(&sql) {
            return Ok(Some(format!(
                "rollback statement fails on the shadow schema ({e}): {sql}"
            )));
        }
    }
    let restored = table_state(shadow, &p.table)?;
    if comparable(&restored) != comparable(&before) {
        return Ok(Some(
            "the rollback SQL does not give back the starting schema".into(),
        ));
    }
    // Leave the shadow at the forward state for later DocTypes.
    for sql in p.forward_sql() {
        let _ = shadow.execute_batch(&sql);
    }
    Ok(None)
}

fn table_state(conn: &Connection, table: &str) -> Result<Option<LiveTable>> {
    let snapshot = SchemaSnapshot::read_table(conn, table)?;
    introspect_table(conn, &snapshot, table)
}

/// A table's state without the texts that a rename legitimately requotes
/// and without its AUTOINCREMENT counter.
fn comparable(t: &Option<LiveTable>) -> Option<LiveTable> {
    t.clone().map(|mut t| {
        t.sql.clear();
        t.views.clear();
        // The counter is data: the shadow has no rows, the rollback SQL
        // carries the real table's value.
        t.sequence = None;
        t.indexes.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        t.spec.indexes.sort_by(|a, b| a.name.cmp(&b.name));
        t
    })
}
