//! Executes a plan inside the transaction the applier holds: one SAVEPOINT
//! per DocType, the history row inside it (invariant "History in the same transaction"), foreign-key check
//! and verification before it is released.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rusqlite::Connection;
use serde::Serialize;

use crate::backup::BackupManager;
use crate::diff::Change;
use crate::error::{Error, Result};
use crate::events::{Observers, Phase, RunEvent};
use crate::history::{MigrationId, MigrationStatus, store};
use crate::ident::quote;
use crate::plan::{DocTypePlan, REBUILD_TEMP_PREFIX};
use crate::schema::{SchemaSnapshot, referencing_tables, table_spec};

use super::metrics::Metrics;
use super::table_check::TableChecks;
use super::verify::check_result;

/// What happened to one DocType.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
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
    /// Where the time went.
    pub metrics: Metrics,
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
    /// Write a full-table backup as an increment against the table's
    /// newest full backup chain when there is one (the `incremental`
    /// backup policy).
    pub incremental_backups: bool,
    /// Who hears the run's events (the audit log among them).
    pub events: Observers,
    /// Time spent validating the batch, in milliseconds (recorded in metrics).
    pub validate_ms: f64,
    /// The integrity checks of the tables the run rebuilds.
    pub table_checks: Arc<TableChecks>,
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
            ctx.events.emit(RunEvent::DocTypeFailed {
                doctype: &plan.doctype,
                table: &plan.table,
                error: &error_chain(&e),
            });
            // Some errors (a full disk, an I/O error) make SQLite roll back
            // the whole transaction itself: then there is no savepoint left
            // to roll back to, and the caller must learn that the run's
            // transaction is gone (`conn.is_autocommit()`), not get a
            // "no transaction is active" in place of the real error.
            if !conn.is_autocommit() {
                exec(conn, &format!("ROLLBACK TO {savepoint}"))?;
                exec(conn, &format!("RELEASE {savepoint}"))?;
                ctx.events.emit(RunEvent::SavepointRolledBack {
                    doctype: &plan.doctype,
                    table: &plan.table,
                });
            }
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
        metrics: Metrics::default(),
    })
}

pub use crate::error::error_chain;

fn run(
    conn: &Connection,
    plan: &DocTypePlan,
    ctx: &ExecContext,
    start: Instant,
    backups: Option<&BackupManager>,
    taken: &mut Vec<PathBuf>,
) -> Result<MigrationRecord> {
    let id = store::start(conn, &new_migration(conn, plan, ctx)?)?;
    let mut metrics = Metrics {
        validate_ms: ctx.validate_ms,
        ..Metrics::default()
    };
    let mut mine = Vec::new();
    let mut mine_sha256 = Vec::new();
    let phase = |phase| {
        ctx.events.emit(RunEvent::Phase {
            doctype: Some(&plan.doctype),
            phase,
        })
    };
    let clock = Instant::now();
    if !plan.backups.is_empty() {
        phase(Phase::Backup);
    }
    for planned in &plan.backups {
        let manager = backups.ok_or_else(|| {
            Error::config(
                "backups",
                format!(
                    "DocType {:?} needs a backup but no backup manager was given",
                    plan.doctype
                ),
            )
        })?;
        let info = back_up(conn, manager, planned, id, ctx.incremental_backups)
            // A backup that cannot read a damaged table: say it is damaged.
            .map_err(|e| match damaged(conn, plan, ctx) {
                Err(damage) => damage,
                Ok(()) => e,
            })?;
        taken.push(info.path.clone());
        if ctx.verify_backups {
            manager.verify(&info.path)?;
        }
        metrics.bytes_backed_up += info.bytes;
        ctx.events.emit(RunEvent::BackupWritten {
            migration: id,
            doctype: &plan.doctype,
            table: &info.table,
            path: &info.path,
            rows: info.table_row_count,
            bytes: info.bytes,
            sha256: &info.sha256,
            verified: ctx.verify_backups,
        });
        mine_sha256.push(info.header_sha256);
        mine.push(info.path);
    }
    metrics.backup_ms = ms_since(clock);
    damaged(conn, plan, ctx)?;
    phase(Phase::Execute);
    let clock = Instant::now();
    let fk_tables = if ctx.check_foreign_keys && plan.rebuilds() {
        let mut t = referencing_tables(conn, &plan.table)?;
        t.push(plan.table.clone());
        t
    } else {
        Vec::new()
    };
    let violations_before = fk_violations(conn, &fk_tables)?;
    // A new table's objects are the rows its statements add to
    // sqlite_schema: read them from this mark instead of scanning.
    let schema_mark = if plan.only_creates() {
        Some(SchemaSnapshot::last_rowid(conn)?)
    } else {
        None
    };
    let copy_prefix = format!(
        "INSERT INTO {}",
        quote(&format!("{REBUILD_TEMP_PREFIX}{}", plan.table))
    );
    let fill_prefix = format!("UPDATE {} SET ", quote(&plan.table));
    let mut affected = 0i64;
    for sql in plan.forward_sql() {
        let step_clock = Instant::now();
        let mut rows = None;
        // A step that fails while its table's check is still out (WAL):
        // a damaged table is the better answer.
        let step_error = |e: Error| match damaged_after_steps(plan, ctx) {
            Err(damage) => damage,
            Ok(()) => e.in_context(&plan.doctype, &plan.table),
        };
        if sql.starts_with(&copy_prefix) {
            let copied = copy_rows(conn, &sql, plan, &ctx.events).map_err(step_error)?;
            affected += copied as i64;
            rows = Some(copied);
        } else {
            let changed = crate::db::sqlguard::run_planned(conn, &sql).map_err(step_error)?;
            // A NULL fill before a native SET NOT NULL changes rows of the
            // table: counted, so a rollback knows values changed.
            if sql.starts_with(&fill_prefix) {
                affected += changed as i64;
                rows = Some(changed as u64);
            }
        }
        ctx.events.emit(RunEvent::StepExecuted {
            migration: id,
            doctype: &plan.doctype,
            sql: &sql,
            rows,
            ms: ms_since(step_clock),
        });
    }
    damaged_after_steps(plan, ctx)?;
    metrics.execute_ms = ms_since(clock);
    metrics.rows_copied = affected as u64;
    phase(Phase::Verify);
    let clock = Instant::now();
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
    let live = table_spec(conn, &plan.table)?;
    let problems = check_result(plan, live.as_ref());
    if !problems.is_empty() {
        return Err(Error::Verification {
            doctype: plan.doctype.clone(),
            table: plan.table.clone(),
            message: problems.join("; "),
        });
    }
    let snapshot = match schema_mark {
        Some(mark) => SchemaSnapshot::read_added(conn, mark)?.of_table(&plan.table),
        None => SchemaSnapshot::read_table(conn, &plan.table)?,
    };
    metrics.verify_ms = ms_since(clock);
    ctx.events.emit(RunEvent::Verified {
        migration: id,
        doctype: &plan.doctype,
        table: &plan.table,
        ms: metrics.verify_ms,
    });
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    store::complete(
        conn,
        id,
        &store::Completion {
            execution_time: ms,
            affected_rows: affected,
            fingerprint_after: snapshot.table_fingerprint(&plan.table),
            schema_after: serde_json::to_value(&snapshot.objects).unwrap_or_default(),
            metrics: serde_json::to_value(&metrics).unwrap_or_default(),
            backup_path: (!mine.is_empty())
                .then(|| serde_json::to_string(&mine).unwrap_or_default()),
            backup_sha256: (!mine_sha256.is_empty())
                .then(|| serde_json::to_string(&mine_sha256).unwrap_or_default()),
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
        metrics,
    })
}

/// Writes one planned backup: full or columns as planned, or, for a full
/// backup under the `incremental` policy, an increment against the newest
/// full chain of the same table from this database when one exists and
/// still fits (same table shape; a chain that does not verify, or a table
/// that changed shape since, gives a full backup instead).
fn back_up(
    conn: &Connection,
    manager: &BackupManager,
    planned: &crate::plan::PlannedBackup,
    id: MigrationId,
    incremental: bool,
) -> Result<crate::backup::BackupInfo> {
    if incremental && planned.strategy == crate::plan::BackupStrategy::FullTable {
        if let Some(base) = newest_full_chain(conn, manager, &planned.table)? {
            if let Ok(info) =
                manager.backup_table_incremental(conn, &planned.table, &base, Some(id))
            {
                return Ok(info);
            }
        }
    }
    manager.backup_table(conn, &planned.table, planned.strategy.clone(), Some(id))
}

/// The newest full-table backup (or increment of one) of `table` taken
/// from this database, if any.
fn newest_full_chain(
    conn: &Connection,
    manager: &BackupManager,
    table: &str,
) -> Result<Option<PathBuf>> {
    let Some(db_id) = store::database_id(conn)? else {
        return Ok(None);
    };
    Ok(manager
        .list()?
        .into_iter()
        .filter(|i| {
            i.table.eq_ignore_ascii_case(table)
                && i.strategy == crate::plan::BackupStrategy::FullTable
                && i.database_id.as_deref() == Some(db_id.as_str())
        })
        .max_by_key(|i| i.created_at)
        .map(|i| i.path))
}

fn new_migration(
    conn: &Connection,
    plan: &DocTypePlan,
    ctx: &ExecContext,
) -> Result<store::NewMigration> {
    // A table being created has no objects yet: skip the sqlite_schema scan.
    let before = if plan.only_creates() {
        SchemaSnapshot::default()
    } else {
        SchemaSnapshot::read_table(conn, &plan.table)?
    };
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

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Rows per range when a rebuild copies in rowid ranges.
const COPY_CHUNK: i64 = 65_536;

/// Runs a rebuild's copy statement. When it copies rowids (see the
/// rebuild), it runs in rowid ranges so progress can be reported between
/// ranges; the result is the same as the single statement, which is what
/// the plan and history record. Returns the rows copied.
fn copy_rows(conn: &Connection, sql: &str, plan: &DocTypePlan, events: &Observers) -> Result<u64> {
    let by_rowid = sql.contains(") (rowid, ") || sql.contains(" (rowid, ");
    if !events.want_rows_copied() || !by_rowid {
        crate::db::sqlguard::run(conn, sql)?;
        let n = conn.changes();
        events.emit(RunEvent::RowsCopied {
            doctype: &plan.doctype,
            table: &plan.table,
            copied: n,
            total: n,
        });
        return Ok(n);
    }
    let bounds = format!("SELECT min(rowid), max(rowid) FROM {}", quote(&plan.table));
    let (lo, hi): (Option<i64>, Option<i64>) = conn
        .query_row(&bounds, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| Error::sql(&bounds, e))?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        events.emit(RunEvent::RowsCopied {
            doctype: &plan.doctype,
            table: &plan.table,
            copied: 0,
            total: 0,
        });
        return Ok(0);
    };
    let estimate = (hi - lo).saturating_add(1).max(0) as u64;
    let ranged = format!("{sql} WHERE rowid BETWEEN ?1 AND ?2");
    let mut stmt = crate::db::sqlguard::prepare(conn, &ranged)?;
    let mut copied = 0u64;
    let mut start = lo;
    loop {
        let end = start.saturating_add(COPY_CHUNK - 1).min(hi);
        copied += stmt
            .execute(rusqlite::params![start, end])
            .map_err(|e| Error::sql(&ranged, e))? as u64;
        if end >= hi {
            break;
        }
        events.emit(RunEvent::RowsCopied {
            doctype: &plan.doctype,
            table: &plan.table,
            copied,
            total: estimate.max(copied),
        });
        start = end + 1;
    }
    events.emit(RunEvent::RowsCopied {
        doctype: &plan.doctype,
        table: &plan.table,
        copied,
        total: copied,
    });
    Ok(copied)
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

/// A rebuild reads every row and writes them again: on a table that is
/// already damaged it would make things worse, so a table about to be
/// rebuilt must have passed `PRAGMA quick_check` (run in the background
/// since the lock was taken, see [`TableChecks`]). Also the point where the
/// background checks end, before the first step writes.
fn damaged(conn: &Connection, plan: &DocTypePlan, ctx: &ExecContext) -> Result<()> {
    let checks = &ctx.table_checks;
    if checks.overlaps_writes() {
        // WAL: the check may go on while the steps write; asked for by
        // `damaged_after_steps` before the savepoint is released.
        return Ok(());
    }
    if !plan.rebuilds() {
        checks.finish();
        return Ok(());
    }
    with_doctype(checks.result(conn, &plan.table), plan)
}

/// [`damaged`] on a WAL database: the verdict on a rebuilt table, after
/// its steps ran and before anything of them is kept.
fn damaged_after_steps(plan: &DocTypePlan, ctx: &ExecContext) -> Result<()> {
    if !ctx.table_checks.overlaps_writes() || !plan.rebuilds() {
        return Ok(());
    }
    with_doctype(ctx.table_checks.result_after_steps(&plan.table), plan)
}

fn with_doctype(result: Result<()>, plan: &DocTypePlan) -> Result<()> {
    result.map_err(|e| match e {
        Error::CorruptTable {
            table, problems, ..
        } => Error::CorruptTable {
            doctype: plan.doctype.clone(),
            table,
            problems,
        },
        e => e.in_context(&plan.doctype, &plan.table),
    })
}

fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.execute_batch(sql).map_err(|e| Error::sql(sql, e))
}
