//! The write path of [`MigrationApplier::sync_all`], phase by phase:
//!
//! 1. **pre-plan**: plan from one read snapshot, confirming "up to date"
//!    from fingerprints where it can (the start-up fast path);
//! 2. **lock and re-plan**: foreign keys off outside the transaction when
//!    a rebuild is planned, `BEGIN IMMEDIATE`, plan again under the lock
//!    (another process may have migrated meanwhile), then the checks that
//!    must pass before anything is written (no planted triggers on the
//!    engine's tables) and housekeeping (files a killed run left);
//! 3. **validate** the plan that will run, under the lock;
//! 4. **back up and execute** each DocType in its own savepoint, with its
//!    history row (and verification, inside [`execute_doctype`]);
//! 5. **commit**.
//!
//! Each phase is one function. Each happening is one [`RunEvent`], sent to
//! every observer (the audit log first): the phase that does a thing says
//! so once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::builder::finding_key;
use super::{
    ApplyReport, MigrationApplier, Mode, new_batch_id, plan_on, plan_with, refuse_if_blocked,
    remove_files, split_conflicts,
};
use crate::audit::RunMarker;
use crate::doctype::{DocType, Warning};
use crate::error::{Error, Result};
use crate::events::{Phase, RollbackCause, RunEvent};
use crate::execution::{
    ExecContext, ForeignKeysOff, MigrationRecord, TableChecks, TxGuard, begin_immediate,
    error_chain, execute_doctype, record_failure,
};
use crate::history::store;
use crate::plan::BackupPolicy;
use crate::plan::MigrationPlan;
use crate::schema::{SchemaSnapshot, foreign_keys_enabled};
use crate::validation::{Finding, validate_plan};

/// The write lock, the foreign-key guard and the plan made under the lock.
/// Dropping it rolls the transaction back, then restores foreign keys
/// (fields drop in order).
pub(super) struct Locked<'c> {
    pub(super) guard: TxGuard<'c>,
    pub(super) fk: Option<ForeignKeysOff<'c>>,
    pub(super) plan: MigrationPlan,
}

impl MigrationApplier {
    pub(super) fn sync_inner(&self, doctypes: &[DocType]) -> Result<ApplyReport> {
        refuse_if_blocked(split_conflicts(doctypes).1)?;
        let preplan = self.pre_plan(doctypes)?;
        if preplan.is_empty()
            && self
                .options
                .expected_plan
                .as_ref()
                .is_some_and(|e| e.has_changes)
        {
            self.check_expected_schema()?;
        }
        if preplan.is_empty() {
            let mut report = ApplyReport::empty();
            report.fast_path = preplan.confirmed_by_fingerprint == preplan.doctypes.len();
            return Ok(report);
        }
        let mut notes: Vec<Warning> = Vec::new();
        let marker = self.begin_marker(&mut notes);
        // An online migration in progress refuses a plain apply that has
        // something to do (checked under the lock, before planning).
        let locked =
            self.lock_and_replan(doctypes, preplan.rebuilds(), &crate::online::in_progress)?;
        self.check_expected_schema()?;
        // The tables to be rebuilt are checked in the background while the
        // run validates and backs up (see `TableChecks`).
        let checks = Arc::new(TableChecks::start(
            &self.conn,
            locked
                .plan
                .pending()
                .filter(|p| p.rebuilds())
                .map(|p| p.table.clone())
                .collect(),
        ));
        notes.extend(self.remove_stale_backup_temp_files());
        notes.extend(self.remove_orphaned_backups());
        if locked.plan.is_empty() {
            locked.guard.rollback()?;
            self.events.emit(RunEvent::TransactionRolledBack {
                cause: RollbackCause::NothingLeft,
            });
            let mut report = ApplyReport::empty();
            report.warnings = notes;
            return Ok(report);
        }
        let (findings, validate_ms) = self.validate_locked(&locked.plan, doctypes)?;
        let (batch_id, migrations, taken) =
            self.back_up_and_execute(&locked, validate_ms, checks)?;
        self.commit(locked, &batch_id, migrations.len(), taken)?;
        if let Some(m) = marker {
            let _ = m.finish();
        }
        Ok(ApplyReport {
            blocked: false,
            batch_id: Some(batch_id),
            migrations,
            findings,
            fast_path: false,
            warnings: notes,
        })
    }

    /// With [`ApplierBuilder::expect_plan`](crate::ApplierBuilder::expect_plan):
    /// the live schema must be the one the plan was made on. Called under
    /// the write lock (its guard rolls back on error), or before it when
    /// there is nothing to do.
    pub(super) fn check_expected_schema(&self) -> Result<()> {
        let Some(expected) = &self.options.expected_plan else {
            return Ok(());
        };
        let found = SchemaSnapshot::read(&self.conn)?.fingerprint();
        if found != expected.schema_fingerprint {
            return Err(Error::StalePlan {
                expected: expected.schema_fingerprint.clone(),
                found,
            });
        }
        Ok(())
    }

    pub(super) fn phase(&self, phase: Phase) {
        self.events.emit(RunEvent::Phase {
            doctype: None,
            phase,
        });
    }

    /// Phase 1: the plan from one read snapshot (retried while the
    /// database is busy), with the fingerprint fast path.
    pub(super) fn pre_plan(&self, doctypes: &[DocType]) -> Result<MigrationPlan> {
        self.phase(Phase::Plan);
        let preplan = self.read(|| plan_with(&self.conn, doctypes, &self.options, Mode::Fast))?;
        if !preplan.is_empty() {
            let pending: Vec<&str> = preplan.pending().map(|p| p.doctype.as_str()).collect();
            self.events.emit(RunEvent::Planned {
                doctypes: doctypes.len(),
                pending: &pending,
                rebuilds: preplan.rebuilds(),
            });
        }
        Ok(preplan)
    }

    /// A marker beside the database says a run is under way; if this
    /// process dies, the next run finds it (see `notice_interrupted_runs`).
    /// Not writing it is a warning, never a failure.
    pub(super) fn begin_marker(&self, notes: &mut Vec<Warning>) -> Option<RunMarker> {
        if self.in_memory {
            // No process but this one can see an in-memory database.
            return None;
        }
        match RunMarker::begin(&self.path) {
            Ok(m) => Some(m),
            Err(e) => {
                notes.push(self.housekeeping_failed(
                    "run_marker",
                    format!("run marker not written: {}", error_chain(&e)),
                ));
                None
            }
        }
    }

    /// Phase 2: foreign keys off (outside any transaction) when a rebuild
    /// is planned, the write lock, the plan made again under it, and the
    /// precondition that nothing foreign sits on the engine's own tables.
    /// Validation waits for this phase: it runs once, on the plan that will
    /// run, and a blocked plan holds the lock only to say so.
    ///
    /// `prelude` runs under the lock before each planning (an online
    /// migration's complete removes its scaffolding there); its error
    /// rolls back and refuses.
    pub(super) fn lock_and_replan(
        &self,
        doctypes: &[DocType],
        rebuilds: bool,
        prelude: &dyn Fn(&rusqlite::Connection) -> Result<()>,
    ) -> Result<Locked<'_>> {
        let conn = &self.conn;
        let mut fk = if rebuilds {
            Some(ForeignKeysOff::new(conn)?)
        } else {
            None
        };
        self.phase(Phase::Lock);
        let clock = Instant::now();
        let (guard, plan) = loop {
            begin_immediate(conn, &self.path, self.options.lock_timeout)?;
            let guard = TxGuard::new(conn);
            if let Err(e) = store::check_engine_tables(conn).and_then(|()| prelude(conn)) {
                guard.rollback()?;
                return Err(e);
            }
            let plan = plan_on(conn, doctypes, &self.options)?;
            // The plan under the lock may rebuild where the pre-plan did not:
            // foreign keys must then go off, which only works outside the
            // transaction.
            if plan.rebuilds() && fk.is_none() && foreign_keys_enabled(conn)? {
                guard.rollback()?;
                fk = Some(ForeignKeysOff::new(conn)?);
                continue;
            }
            break (guard, plan);
        };
        self.events.emit(RunEvent::LockTaken {
            waited_ms: clock.elapsed().as_secs_f64() * 1000.0,
        });
        Ok(Locked { guard, fk, plan })
    }

    /// Phase 3: validation of the plan that will run. Blocking findings
    /// roll the transaction back and refuse the run.
    pub(super) fn validate_locked(
        &self,
        plan: &MigrationPlan,
        doctypes: &[DocType],
    ) -> Result<(Vec<Finding>, f64)> {
        self.phase(Phase::Validate);
        let clock = Instant::now();
        let findings = validate_plan(&self.conn, plan, doctypes, &self.policy())?;
        if let Some(expected) = &self.options.expected_plan {
            let new: Vec<Finding> = findings
                .iter()
                .filter(|f| !expected.findings.contains(&finding_key(f)))
                .cloned()
                .collect();
            if !new.is_empty() {
                self.conn
                    .execute_batch("ROLLBACK")
                    .map_err(|e| Error::sql("ROLLBACK", e))?;
                self.events.emit(RunEvent::TransactionRolledBack {
                    cause: RollbackCause::Blocked,
                });
                return Err(Error::NewFindings { findings: new });
            }
        }
        let ms = clock.elapsed().as_secs_f64() * 1000.0;
        let blocking = findings.iter().filter(|f| f.blocking).count();
        self.events.emit(RunEvent::Validated {
            findings: findings.len(),
            blocking,
            ms,
        });
        if blocking > 0 {
            self.conn
                .execute_batch("ROLLBACK")
                .map_err(|e| Error::sql("ROLLBACK", e))?;
            self.events.emit(RunEvent::TransactionRolledBack {
                cause: RollbackCause::Blocked,
            });
            return Err(Error::Blocked { findings });
        }
        Ok((findings, ms))
    }

    /// Phase 4: each pending DocType backed up and executed in its own
    /// savepoint with its history row. All-or-nothing by default: a failure
    /// rolls the whole transaction back and removes the backups taken.
    /// With `continue_on_error`, a failed DocType is rolled back to its
    /// savepoint and recorded as failed. Returns the batch id, the records
    /// and the backup files taken.
    pub(super) fn back_up_and_execute(
        &self,
        locked: &Locked<'_>,
        validate_ms: f64,
        table_checks: Arc<TableChecks>,
    ) -> Result<(String, Vec<MigrationRecord>, Vec<PathBuf>)> {
        let conn = &self.conn;
        store::ensure_table(conn)?;
        let ctx = ExecContext {
            applied_by: self.options.applied_by.clone(),
            batch_id: new_batch_id(),
            check_foreign_keys: locked.fk.as_ref().is_some_and(ForeignKeysOff::were_on),
            verify_backups: self.options.backups.verify,
            incremental_backups: self.options.backups.policy == BackupPolicy::Incremental,
            events: self.events.clone(),
            validate_ms,
            table_checks,
        };
        let manager = if locked.plan.pending().any(|p| !p.backups.is_empty()) {
            Some(self.backup_manager()?)
        } else {
            None
        };
        // Backup files of DocTypes (or a batch) that roll back protect
        // nothing: they are removed.
        let mut taken: Vec<PathBuf> = Vec::new();
        let mut migrations = Vec::new();
        for (n, dt_plan) in locked.plan.pending().enumerate() {
            let start = Instant::now();
            let before = taken.len();
            match execute_doctype(conn, dt_plan, n, &ctx, manager.as_ref(), &mut taken) {
                Ok(record) => migrations.push(record),
                // With continue-on-error the others go on, in the same
                // transaction; unless SQLite already rolled that back.
                Err(e) if self.options.continue_on_error && !conn.is_autocommit() => {
                    remove_files(taken.drain(before..));
                    let ms = start.elapsed().as_secs_f64() * 1000.0;
                    migrations.push(record_failure(conn, dt_plan, &ctx, &e, ms)?);
                }
                Err(e) => {
                    if conn.is_autocommit() {
                        crate::db::lock::recover_rolled_back(conn);
                    } else {
                        conn.execute_batch("ROLLBACK")
                            .map_err(|e| Error::sql("ROLLBACK", e))?;
                    }
                    self.events.emit(RunEvent::TransactionRolledBack {
                        cause: RollbackCause::DocTypeFailed(&dt_plan.doctype),
                    });
                    remove_files(taken.drain(..));
                    return Err(Error::DocTypeFailed {
                        doctype: dt_plan.doctype.clone(),
                        source: Box::new(e),
                    });
                }
            }
        }
        Ok((ctx.batch_id, migrations, taken))
    }

    /// Phase 5: COMMIT, then foreign keys back as the caller had them. A
    /// failed COMMIT has rolled back: the backups taken are removed.
    pub(super) fn commit(
        &self,
        locked: Locked<'_>,
        batch_id: &str,
        migrations: usize,
        mut taken: Vec<PathBuf>,
    ) -> Result<()> {
        self.phase(Phase::Commit);
        let Locked { guard, fk, .. } = locked;
        if let Err(e) = guard.commit(&self.path, self.options.lock_timeout) {
            remove_files(taken.drain(..));
            return Err(e);
        }
        drop(fk);
        self.events.emit(RunEvent::Committed {
            batch_id,
            migrations,
        });
        Ok(())
    }
}
