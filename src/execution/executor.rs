//! Executes a plan inside the transaction the applier holds: one SAVEPOINT
//! per DocType, the history row inside it (invariant 5), foreign-key check
//! and verification before it is released.

use std::path::PathBuf;
use std::time::Instant;

use rusqlite::Connection;
use serde::Serialize;

use crate::backup::BackupManager;
use crate::diff::Change;
use crate::error::{Error, Result};
use crate::history::{MigrationId, MigrationStatus, store};
use crate::ident::quote;
use crate::plan::{DocTypePlan, REBUILD_TEMP_PREFIX};
use crate::schema::{SchemaSnapshot, introspect_table, referencing_tables};

use super::verify::check_result;

/// What happened to one DocType.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationRecord {
    /// History id (None only when even the failure could not be recorded).
    pub id: Option<MigrationId>,
    /// The DocType.
    pub doctype: String,
    /// Its table.
    pub table: String,
    /// `completed` or `failed`.
    pub status: MigrationStatus,
    /// What changed.
    pub changes: Vec<Change>,
    /// Rows copied by rebuilds.
    pub affected_rows: i64,
    /// Milliseconds spent.
    pub execution_time_ms: f64,
    /// The error, for a failed DocType.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Backup files taken before the steps ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<PathBuf>,
}

/// Settings the executor needs from the applier.
#[derive(Debug, Clone)]
pub struct ExecContext {
    /// Who applies.
    pub applied_by: String,
    /// Batch id of this `sync_all` call.
    pub batch_id: String,
    /// Foreign keys were on before the applier switched them off: check
    /// rebuilt tables for new violations before releasing.
    pub check_foreign_keys: bool,
    /// Read every backup back before the step it protects runs.
    pub verify_backups: bool,
}

/// Runs one DocType's plan in its own savepoint. On error the savepoint is
/// rolled back (nothing of this DocType remains) and the error returned.
///
/// Backups the plan lists are taken first with `backups` and their paths
/// pushed to `taken`, so the caller can delete them if the DocType or the
/// whole batch is rolled back.
pub fn execute_doctype(
    conn: &Connection,
    plan: &DocTypePlan,
    n: usize,
    ctx: &ExecContext,
    backups: Option<&BackupManager>,
    taken: &mut Vec<PathBuf>,
) -> Result<MigrationRecord> {
    let savepoint = quote(&format!("dm_sp_{n}"));
    exec(conn, &format!("SAVEPOINT {savepoint}"))?;
    let start = Instant::now();
    match run(conn, plan, ctx, start, backups, taken) {
        Ok(record) => {
            exec(conn, &format!("RELEASE {savepoint}"))?;
            Ok(record)
        }
        Err(e) => {
            exec(conn, &format!("ROLLBACK TO {savepoint}"))?;
            exec(conn, &format!("RELEASE {savepoint}"))?;
            Err(e)
        }
    }
}

/// Records a DocType that failed (continue-on-error mode), after its
/// savepoint was rolled back.
pub fn record_failure(
    conn: &Connection,
    plan: &DocTypePlan,
    ctx: &ExecContext,
    error: &Error,
    ms: f64,
) -> Result<MigrationRecord> {
    let id = store::start(conn, &new_migration(conn, plan, ctx)?)?;
    let text = error_chain(error);
    store::fail(conn, id, &text, ms)?;
    Ok(MigrationRecord {
        id: Some(id),
        doctype: plan.doctype.clone(),
        table: plan.table.clone(),
        status: MigrationStatus::Failed,
        changes: plan.changes.clone(),
        affected_rows: 0,
        execution_time_ms: ms,
        error: Some(text),
        backups: Vec::new(),
    })
}

/// An error with its sources, as one line.
pub fn error_chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn run(
    conn: &Connection,
    plan: &DocTypePlan,
    ctx: &ExecContext,
    start: Instant,
    backups: Option<&BackupManager>,
    taken: &mut Vec<PathBuf>,
) -> Result<MigrationRecord> {
    let id = store::start(conn, &new_migration(conn, plan, ctx)?)?;
    let mut mine = Vec::new();
    for planned in &plan.backups {
        let manager = backups.ok_or_else(|| {
            Error::Config(format!(
                "DocType {:?} needs a backup but no backup manager was given",
                plan.doctype
            ))
        })?;
        let info =
            manager.backup_table(conn, &planned.table, planned.strategy.clone(), Some(id))?;
        taken.push(info.path.clone());
        if ctx.verify_backups {
            manager.verify(&info.path)?;
        }
        mine.push(info.path);
    }
    let fk_tables = if ctx.check_foreign_keys && plan.rebuilds() {
        let mut t = referencing_tables(conn, &plan.table)?;
        t.push(plan.table.clone());
        t
    } else {
        Vec::new()
    };
    let violations_before = fk_violations(conn, &fk_tables)?;
    let copy_prefix = format!(
        "INSERT INTO {}",
        quote(&format!("{REBUILD_TEMP_PREFIX}{}", plan.table))
    );
    let mut affected = 0i64;
    for sql in plan.forward_sql() {
        conn.execute_batch(&sql)
            .map_err(|e| Error::sql(&sql, e).in_context(&plan.doctype, &plan.table))?;
        if sql.starts_with(&copy_prefix) {
            affected += conn.changes() as i64;
        }
    }
    let violations_after = fk_violations(conn, &fk_tables)?;
    if violations_after > violations_before {
        return Err(Error::Verification {
            doctype: plan.doctype.clone(),
            table: plan.table.clone(),
            message: format!(
                "foreign_key_check found {} new violation(s) after the rebuild",
                violations_after - violations_before
            ),
        });
    }
    let snapshot = SchemaSnapshot::read_table(conn, &plan.table)?;
    let live = introspect_table(conn, &snapshot, &plan.table)?;
    let problems = check_result(plan, live.as_ref());
    if !problems.is_empty() {
        return Err(Error::Verification {
            doctype: plan.doctype.clone(),
            table: plan.table.clone(),
            message: problems.join("; "),
        });
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    store::complete(
        conn,
        id,
        &store::Completion {
            execution_time: ms,
            affected_rows: affected,
            fingerprint_after: snapshot.table_fingerprint(&plan.table),
            schema_after: serde_json::to_value(&snapshot.objects).unwrap_or_default(),
            backup_path: (!mine.is_empty())
                .then(|| serde_json::to_string(&mine).unwrap_or_default()),
        },
    )?;
    Ok(MigrationRecord {
        id: Some(id),
        doctype: plan.doctype.clone(),
        table: plan.table.clone(),
        status: MigrationStatus::Completed,
        changes: plan.changes.clone(),
        affected_rows: affected,
        execution_time_ms: ms,
        error: None,
        backups: mine,
    })
}

fn new_migration(
    conn: &Connection,
    plan: &DocTypePlan,
    ctx: &ExecContext,
) -> Result<store::NewMigration> {
    let before = SchemaSnapshot::read_table(conn, &plan.table)?;
    Ok(store::NewMigration {
        batch_id: Some(ctx.batch_id.clone()),
        doctype: plan.doctype.clone(),
        table_name: plan.table.clone(),
        sql: plan.forward_sql(),
        rollback_sql: plan.rollback_sql(),
        changes: serde_json::to_value(&plan.changes).unwrap_or_default(),
        applied_by: ctx.applied_by.clone(),
        target_fingerprint: Some(plan.target.fingerprint()),
        fingerprint_before: before.table_fingerprint(&plan.table),
        schema_before: serde_json::to_value(&before.objects).unwrap_or_default(),
    })
}

fn fk_violations(conn: &Connection, tables: &[String]) -> Result<u64> {
    const SQL: &str = "SELECT count(*) FROM pragma_foreign_key_check(?1)";
    let mut total = 0u64;
    for t in tables {
        let n: i64 = conn
            .query_row(SQL, [t], |r| r.get(0))
            .map_err(|e| Error::sql(SQL, e))?;
        total += n as u64;
    }
    Ok(total)
}

fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.execute_batch(sql).map_err(|e| Error::sql(sql, e))
}
