//! SQL001: replay the plan on an in-memory shadow copy of the schema.
//!
//! Every forward statement must run and leave exactly the target table;
//! every rollback statement must run after it and give back exactly the
//! starting table (columns, indexes, triggers, foreign keys). Generator bugs
//! are caught here, before anything touches the real file.

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::ident::quote;
use crate::plan::{DocTypePlan, MigrationPlan};
use crate::schema::compare::check_table;
use crate::schema::{LiveTable, SchemaSnapshot, introspect_table, table_spec};

use crate::outcome::{Finding, Rule, Severity};

/// Runs SQL001 for every DocType with steps.
pub fn check(live_snapshot: &SchemaSnapshot, plan: &MigrationPlan) -> Result<Vec<Finding>> {
    let pending: Vec<&DocTypePlan> = plan.pending().collect();
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    if pending.iter().all(|p| p.only_creates()) && creates_pass_apart(live_snapshot, &pending)? {
        return Ok(Vec::new());
    }
    let shadow = open_shadow(live_snapshot)?;
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

/// An in-memory database holding a copy of the live schema.
fn open_shadow(live_snapshot: &SchemaSnapshot) -> Result<Connection> {
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
    Ok(shadow)
}

/// The replay of a batch that only creates tables, each DocType on the
/// live schema alone: its statements run, its table is compared with the
/// target, then dropped again, so each CREATE costs what it costs on the
/// live schema instead of growing with every table created before it (the
/// first apply of many DocTypes). `true` only when every DocType passes
/// and no two DocTypes create objects of the same name; then the replay
/// of them all in one schema ([`replay`]) passes too, because a CREATE
/// TABLE or CREATE INDEX that succeeds on the live schema with its own
/// objects can only fail beside other new objects by a name they share,
/// and a table's columns and indexes do not depend on other tables.
/// `false` (anything failed, differed, collided or was not a table of the
/// DocType or its index): the caller replays the usual way, which reports
/// exactly what it always did.
fn creates_pass_apart(live_snapshot: &SchemaSnapshot, pending: &[&DocTypePlan]) -> Result<bool> {
    let shadow = open_shadow(live_snapshot)?;
    // Names (lower case: SQLite compares names ignoring ASCII case) of the
    // objects the DocTypes replayed so far created.
    let mut created = std::collections::HashSet::new();
    // Each DocType's objects are dropped before the next one's are
    // created, so the rows after this mark are only ever the current
    // DocType's (and sqlite_sequence, once created).
    let mark = SchemaSnapshot::last_rowid(&shadow)?;
    shadow
        .execute_batch("BEGIN")
        .map_err(|e| Error::sql("BEGIN", e))?;
    for p in pending {
        if p.forward_sql()
            .iter()
            .any(|sql| shadow.execute_batch(sql).is_err())
        {
            return Ok(false);
        }
        let added = SchemaSnapshot::read_added(&shadow, mark)?;
        for o in &added.objects {
            // SQLite creates sqlite_sequence with the first AUTOINCREMENT
            // table and keeps it when that table is dropped.
            if o.kind == "table" && o.name == "sqlite_sequence" {
                continue;
            }
            let its_own = matches!(o.kind.as_str(), "table" | "index")
                && o.tbl_name.eq_ignore_ascii_case(&p.table);
            if !its_own || !created.insert(o.name.to_ascii_lowercase()) {
                return Ok(false);
            }
        }
        let after = table_spec(&shadow, &p.table)?;
        if !check_table(&p.target, &p.orphans, p.drops_table(), after.as_ref()).is_empty() {
            return Ok(false);
        }
        if shadow
            .execute_batch(&format!("DROP TABLE {}", quote(&p.table)))
            .is_err()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

fn replay(shadow: &Connection, p: &DocTypePlan) -> Result<Option<String>> {
    let creates = p.only_creates();
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
    if creates {
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
