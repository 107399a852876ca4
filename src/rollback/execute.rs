//! Executing a feasible [`RollbackPlan`] in one transaction.
//!
//! Foreign keys are switched off before `BEGIN IMMEDIATE` (inside a
//! transaction the pragma is a no-op, and a rebuilt or recreated parent
//! would otherwise cascade), the selection is checked again under the lock,
//! then for each migration, newest first: its rollback SQL (derived again from the history row and checked
//! against the stored text by feasibility), the
//! restores from backups, verification that the table's schema equals the
//! one recorded before the migration, and its history row moved to
//! `rolled_back` with `rollback_info`. When foreign keys were on,
//! `foreign_key_check` must find no more violations than before. Any error
//! rolls everything back.

use std::path::Path;
use std::time::Instant;

use rusqlite::Connection;
use serde::Serialize;

use crate::backup::BackupManager;
use crate::error::{Error, RefusedRollback, Result};
use crate::execution::{ForeignKeysOff, TxGuard, begin_immediate};
use crate::history::{MigrationId, store};
use crate::schema::SchemaSnapshot;

use super::compare::differences;
use super::feasibility::{self, Reason, RollbackPlan, RollbackStep};
use super::restore::{RestoreDone, restore_step};
use super::{RollbackOptions, RollbackTarget};

/// One migration that was rolled back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RolledBack {
    /// The migration.
    pub id: MigrationId,
    /// Its DocType.
    pub doctype: String,
    /// Its table.
    pub table: String,
    /// Included because of `cascade`.
    pub cascaded: bool,
    /// The statements run.
    pub statements: Vec<String>,
    /// The backups restored.
    pub restores: Vec<RestoreDone>,
    /// Milliseconds spent on this migration.
    pub execution_time_ms: f64,
}

/// The result of a rollback that ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RollbackReport {
    /// The plan that was executed (with its warnings).
    pub plan: RollbackPlan,
    /// What was undone, in execution order (newest first).
    pub rolled_back: Vec<RolledBack>,
    /// Milliseconds spent in total, including the re-check under the lock.
    pub execution_time_ms: f64,
}

/// Executes `plan`; refuses (writing nothing) unless it is feasible and the
/// re-check under the write lock selects the same migrations.
pub(crate) fn execute(
    conn: &Connection,
    db_path: &Path,
    plan: RollbackPlan,
    options: &RollbackOptions,
    backups: &BackupManager,
) -> Result<RollbackReport> {
    if !plan.feasible {
        return Err(Error::RollbackRefused {
            plan: RefusedRollback::new(plan),
        });
    }
    if !conn.is_autocommit() {
        return Err(Error::config(
            "transaction",
            "rollback needs its own transaction; commit or roll back the open one first",
        ));
    }
    let start = Instant::now();
    let fk = ForeignKeysOff::new(conn)?;
    begin_immediate(conn, db_path, options.lock_timeout)?;
    let guard = TxGuard::new(conn);
    if let Err(e) = crate::history::store::check_engine_tables(conn) {
        guard.rollback()?;
        return Err(e);
    }

    // Check again under the lock (cheap: backups were verified already, and
    // every restore verifies its file again before touching a table).
    let recheck = feasibility::check(conn, &plan.target, options, None)?;
    let ids = |p: &RollbackPlan| p.steps.iter().map(|s| s.id).collect::<Vec<_>>();
    if !recheck.feasible || ids(&recheck) != ids(&plan) {
        guard.rollback()?;
        let mut refused = recheck;
        if refused.feasible {
            refused.feasible = false;
            refused.refusals.push(Reason::ChangedMeanwhile {
                message: format!(
                    "planned to roll back {:?}, now {:?}",
                    ids(&plan),
                    ids(&refused)
                ),
            });
        }
        return Err(Error::RollbackRefused {
            plan: RefusedRollback::new(refused),
        });
    }

    let violations_before = if fk.were_on() {
        fk_violations(conn)?
    } else {
        0
    };
    let all_ids = ids(&plan);
    let mut rolled_back = Vec::new();
    for step in &plan.steps {
        rolled_back.push(undo_one(conn, step, &plan, options, backups, &all_ids)?);
    }
    if fk.were_on() {
        let after = fk_violations(conn)?;
        if after > violations_before {
            return Err(Error::Verification {
                doctype: plan
                    .steps
                    .iter()
                    .map(|s| s.doctype.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                table: plan
                    .steps
                    .iter()
                    .map(|s| s.table.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                message: format!(
                    "foreign_key_check found {} new violation(s) after the rollback",
                    after - violations_before
                ),
            });
        }
    }
    guard.commit(db_path, options.lock_timeout)?;
    drop(fk);
    Ok(RollbackReport {
        plan,
        rolled_back,
        execution_time_ms: start.elapsed().as_secs_f64() * 1000.0,
    })
}

fn undo_one(
    conn: &Connection,
    step: &RollbackStep,
    plan: &RollbackPlan,
    options: &RollbackOptions,
    backups: &BackupManager,
    all_ids: &[MigrationId],
) -> Result<RolledBack> {
    let start = Instant::now();
    let run = |sqls: &[String]| -> Result<()> {
        for sql in sqls {
            crate::db::sqlguard::run_planned(conn, sql)
                .map_err(|e| e.in_context(&step.doctype, &step.table))?;
        }
        Ok(())
    };
    let (body, deferred) = split_recreations(&step.statements, !step.restores.is_empty());
    run(body)?;
    let restores = restore_step(conn, backups, step)?;
    run(deferred)?;
    let live = SchemaSnapshot::read_table(conn, &step.table)?;
    let diffs = differences(&step.schema_before, &live.objects);
    if !diffs.is_empty() {
        let list: Vec<String> = diffs.iter().map(|d| d.to_string()).collect();
        return Err(Error::Verification {
            doctype: step.doctype.clone(),
            table: step.table.clone(),
            message: format!(
                "after rolling back migration {}, the schema differs from the one recorded before it: {}",
                step.id,
                list.join("; ")
            ),
        });
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let warnings: Vec<&Reason> = plan
        .warnings
        .iter()
        .filter(|w| w.migration() == Some(step.id))
        .collect();
    let info = serde_json::json!({
        "rolled_back_at": store::now(),
        "rolled_back_by": options.rolled_back_by,
        "target": target_json(&plan.target),
        "cascaded": step.cascaded,
        "operation": all_ids,
        "statements": step.statements,
        "restores": restores,
        "rows_restored": restores.iter().map(|r| r.rows).sum::<u64>(),
        "warnings": warnings,
        "execution_time_ms": ms,
    });
    store::record_rollback(conn, step.id, &info.to_string())?;
    Ok(RolledBack {
        id: step.id,
        doctype: step.doctype.clone(),
        table: step.table.clone(),
        cascaded: step.cascaded,
        statements: step.statements.clone(),
        restores,
        execution_time_ms: ms,
    })
}

/// Splits a migration's rollback statements into the undo itself and the
/// index and trigger recreations it ends with, so that restores run before
/// the indexes come back: a unique index over values the forward step
/// filled (NULLs that became the same default) only builds once the
/// original values are restored. After a rebuild the recreations are what
/// follows the swap's closing `PRAGMA legacy_alter_table = OFF`; after
/// native and fast-path steps, the indexes the forward dropped first come
/// back last. Without restores, or when anything else follows the swap,
/// the statements run as recorded.
fn split_recreations(statements: &[String], restoring: bool) -> (&[String], &[String]) {
    if !restoring {
        return (statements, &[]);
    }
    let is_recreation = |s: &String| {
        let head: String = s
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase();
        head.starts_with("CREATE INDEX")
            || head.starts_with("CREATE UNIQUE INDEX")
            || head.starts_with("CREATE TRIGGER")
    };
    let split = statements.len()
        - statements
            .iter()
            .rev()
            .take_while(|s| is_recreation(s))
            .count();
    // After a rebuild, only recreations that directly follow the swap.
    let swap_end = statements.iter().rposition(|s| {
        s.trim()
            .eq_ignore_ascii_case("PRAGMA legacy_alter_table = OFF")
    });
    if swap_end.is_some_and(|end| split != end + 1) {
        return (statements, &[]);
    }
    statements.split_at(split)
}

fn target_json(target: &RollbackTarget) -> serde_json::Value {
    serde_json::to_value(target).unwrap_or_default()
}

/// Foreign-key violations in the whole database.
fn fk_violations(conn: &Connection) -> Result<u64> {
    const SQL: &str = "SELECT count(*) FROM pragma_foreign_key_check";
    conn.query_row(SQL, [], |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
        .map_err(|e| Error::sql(SQL, e))
}
