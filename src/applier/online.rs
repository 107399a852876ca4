//! Online migrations on a [`MigrationApplier`]: start (expand, then
//! backfill), resume, complete (contract), abort, status. The steps are
//! the `online` module's; this is where they meet the lock, the plan,
//! validation, history and the audit log.

use std::time::Instant;

use rusqlite::Connection;
use serde::Serialize;

use super::{
    ApplyReport, MigrationApplier, new_batch_id, plan_on, refuse_if_blocked, split_conflicts,
};
use crate::audit::{Action, Level};
use crate::db::sqlguard;
use crate::doctype::{DocType, Warning, WarningCode, warnings};
use crate::error::{Error, Result};
use crate::events::{Phase, RollbackCause, RunEvent};
use crate::execution::{TableChecks, TxGuard, begin_immediate, error_chain};
use crate::history::{MigrationStatus, store};
use crate::ident::quote;
use crate::online::{self, BackfillStats, OnlineStatus, contract};
use crate::plan::{DocTypePlan, RenameHint};
use crate::schema::{SchemaSnapshot, introspect_table, table_spec};
use crate::validation::Finding;

/// What `online_start` or `online_resume` did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct OnlineReport {
    /// The online migration, after the backfill.
    pub status: OnlineStatus,
    /// Whether this call went on with an online migration already started
    /// (`online_resume`, or a repeated start) instead of starting one.
    pub resumed: bool,
    /// Non-blocking findings of the validation at start.
    pub findings: Vec<Finding>,
    /// What the operator should know (input accepted as Frappe accepts
    /// it, a database not in WAL mode).
    pub warnings: Vec<Warning>,
    /// The backfill's pace.
    pub backfill: BackfillStats,
}

impl MigrationApplier {
    /// Starts an online migration to `doctypes`: in one transaction under
    /// the write lock, validates the whole change as a plain apply would
    /// (lossy type changes and dropped data need `allow_data_loss`), adds
    /// what the new application version needs and the old one ignores
    /// (new tables, columns and indexes, and for each renamed column a
    /// twin under the new name kept equal by triggers), and records history
    /// rows in status `expanded`; then backfills the twins in short write
    /// transactions and returns when that is done.
    ///
    /// Both application versions can then use the table. Type, default and
    /// nullability changes, dropped fields and the renames themselves wait
    /// for [`online_complete`](Self::online_complete), once the old
    /// version is retired; [`online_abort`](Self::online_abort) undoes the
    /// start instead. A plain apply or a rollback is refused meanwhile.
    ///
    /// When an online migration of the same DocTypes was started and its
    /// backfill killed, this resumes it; one of other DocTypes is refused
    /// with [`Error::OnlineInProgress`].
    pub fn online_start(&mut self, doctypes: &[DocType]) -> Result<OnlineReport> {
        self.refuse_read_only()?;
        refuse_if_blocked(split_conflicts(doctypes).1)?;
        let accepted = warnings(doctypes);
        refuse_if_blocked(self.strict_findings(&accepted))?;
        if let Some(status) = self.read(|| online::read(&self.conn))? {
            let mut names: Vec<&str> = doctypes.iter().map(|d| d.name.as_str()).collect();
            names.sort_unstable();
            let mut started: Vec<String> = status.doctypes();
            started.sort_unstable();
            // The same DocTypes: a repeated start resumes.
            if names == started {
                return self.online_resume();
            }
            return Err(Error::OnlineInProgress {
                doctypes: status.doctypes(),
                batch_id: status.batch_id,
            });
        }
        let mut notes = accepted;
        if !self.in_memory && !self.is_wal()? {
            notes.push(Warning::run(
                WarningCode::RollbackJournal,
                format!(
                    "{} is in rollback-journal mode: each backfill range's commit waits for \
                     readers and blocks new ones; switch to WAL (`--wal`, \
                     MigrationApplier::switch_to_wal) so that readers are never blocked",
                    self.path.display()
                ),
            ));
        }
        let findings = self.expand(doctypes)?;
        let status = self
            .read(|| online::read(&self.conn))?
            .ok_or(Error::NoOnlineMigration)?;
        self.audit_online(
            true,
            serde_json::json!({
                "kind": "started",
                "batch_id": status.batch_id,
                "doctypes": status.doctypes(),
            }),
        );
        let mut report = self.backfill_status(status)?;
        report.findings = findings;
        report.warnings = notes;
        report.resumed = false;
        Ok(report)
    }

    /// Goes on with the backfill of the online migration in progress from
    /// its last committed range ([`Error::NoOnlineMigration`] when none is).
    pub fn online_resume(&mut self) -> Result<OnlineReport> {
        self.refuse_read_only()?;
        let status = self
            .read(|| online::read(&self.conn))?
            .ok_or(Error::NoOnlineMigration)?;
        self.audit_online(
            true,
            serde_json::json!({ "kind": "resumed", "batch_id": status.batch_id }),
        );
        let mut report = self.backfill_status(status)?;
        report.resumed = true;
        Ok(report)
    }

    /// The online migration in progress, if any. Reads only.
    pub fn online_status(&self) -> Result<Option<OnlineStatus>> {
        self.read(|| online::read(&self.conn))
    }

    /// Completes the online migration in progress, once the old
    /// application version is retired: under the write lock, checks that
    /// every renamed column's twin equals it in every row
    /// ([`Error::OnlineMismatch`]), drops the triggers and the twins, marks
    /// the expand rows `completed`, and applies the DocTypes given at start
    /// as a plain apply does (with the renames as hints, and the start's
    /// consent to data loss), all in one transaction: the result is the
    /// schema and rows a plain apply gives. The backfill must be done
    /// ([`Error::BackfillIncomplete`]). After complete, writes through the
    /// old names fail.
    pub fn online_complete(&mut self) -> Result<ApplyReport> {
        self.refuse_read_only()?;
        let status = self
            .read(|| online::read(&self.conn))?
            .ok_or(Error::NoOnlineMigration)?;
        if let Some(t) = status.tables.iter().find(|t| !t.backfill_done()) {
            return Err(Error::BackfillIncomplete {
                table: t.table.clone(),
                backfilled_to: t.backfilled_to,
                max_rowid: t.max_rowid,
            });
        }
        let doctypes: Vec<DocType> = status
            .tables
            .iter()
            .map(|t| t.definition().cloned())
            .collect::<Result<_>>()?;
        let mut options = self.options.clone();
        options.allow_data_loss |= status.allow_data_loss;
        options.drop_orphan_columns |= status.drop_orphan_columns;
        for t in &status.tables {
            for (from, to) in &t.renames {
                options.renames.push(RenameHint {
                    doctype: t.doctype.clone(),
                    from: from.clone(),
                    to: to.clone(),
                });
            }
        }
        let saved = std::mem::replace(&mut self.options, options);
        let started = Instant::now();
        self.events.emit(RunEvent::RunStarted {
            doctypes: doctypes.len(),
        });
        let result = self.complete_inner(&doctypes, &status.batch_id);
        self.options = saved;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let error = result.as_ref().err().map(|e| error_chain(e));
        let outcome = match (&result, &error) {
            (Ok(r), _) => crate::events::RunOutcome::Committed {
                batch_id: r.batch_id.as_deref(),
                migrations: r.migrations.len(),
                failed: r.failed().count(),
            },
            (Err(_), e) => crate::events::RunOutcome::Failed {
                error: e.as_deref().unwrap_or_default(),
            },
        };
        self.events.emit(RunEvent::RunFinished { outcome, ms });
        self.audit_online(
            result.is_ok(),
            serde_json::json!({
                "kind": if result.is_ok() { "completed" } else { "complete_failed" },
                "batch_id": status.batch_id,
                "error": error,
            }),
        );
        result
    }

    /// Aborts the online migration in progress: under the write lock, in
    /// one transaction, drops the triggers, the twins and everything the
    /// start added (new tables, columns and indexes, with whatever the new
    /// version wrote into them), checks that each table is exactly as it
    /// was before the start, and marks the expand rows `rolled_back`.
    /// Every row written meanwhile is kept, under the old names. Returns
    /// the online migration that was aborted.
    pub fn online_abort(&mut self) -> Result<OnlineStatus> {
        self.refuse_read_only()?;
        let result = self.write_locked(|conn| {
            store::check_engine_tables(conn)?;
            let status = online::read(conn)?.ok_or(Error::NoOnlineMigration)?;
            contract::abort(conn, &status)?;
            Ok((status, true))
        });
        self.audit_online(
            result.is_ok(),
            match &result {
                Ok(status) => serde_json::json!({
                    "kind": "aborted",
                    "batch_id": status.batch_id,
                    "migrations": status.tables.iter().map(|t| t.migration).collect::<Vec<_>>(),
                }),
                Err(e) => serde_json::json!({ "kind": "abort_failed", "error": error_chain(e) }),
            },
        );
        result
    }

    /// Switches the database to WAL journal mode (persistent: it stays in
    /// WAL mode for every connection until switched back). In WAL mode
    /// readers never block the writer and are never blocked by it, which
    /// is what an online migration's backfill wants.
    pub fn switch_to_wal(&self) -> Result<()> {
        self.refuse_read_only()?;
        const SQL: &str = "PRAGMA journal_mode = WAL";
        let mode: String = self
            .conn
            .query_row(SQL, [], |r| r.get(0))
            .map_err(|e| Error::sql(SQL, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::UnsupportedSchema {
                path: self.path.clone(),
                message: format!("the database cannot switch to WAL mode (it stays in {mode})"),
            });
        }
        Ok(())
    }

    /// An `online` entry in the audit log: info, or error when `ok` is false.
    fn audit_online(&self, ok: bool, details: serde_json::Value) {
        let level = if ok { Level::Info } else { Level::Error };
        self.audit
            .record(Action::Online, level, None, None, details);
    }

    fn is_wal(&self) -> Result<bool> {
        const SQL: &str = "PRAGMA journal_mode";
        let mode: String = self
            .conn
            .query_row(SQL, [], |r| r.get(0))
            .map_err(|e| Error::sql(SQL, e))?;
        Ok(mode.eq_ignore_ascii_case("wal"))
    }

    /// The expand step: one transaction under the write lock. Returns the
    /// non-blocking findings.
    fn expand(&self, doctypes: &[DocType]) -> Result<Vec<Finding>> {
        let conn = &self.conn;
        self.phase(Phase::Lock);
        let clock = Instant::now();
        begin_immediate(conn, &self.path, self.options.lock_timeout)?;
        let guard = TxGuard::new(conn);
        store::check_engine_tables(conn)?;
        online::in_progress(conn)?;
        let plan = plan_on(conn, doctypes, &self.options)?;
        self.events.emit(RunEvent::LockTaken {
            waited_ms: clock.elapsed().as_secs_f64() * 1000.0,
        });
        let (findings, _) = self.validate_locked(&plan, doctypes)?;
        if plan.is_empty() {
            guard.rollback()?;
            self.events.emit(RunEvent::TransactionRolledBack {
                cause: RollbackCause::NothingLeft,
            });
            return Err(Error::UnsupportedSchema {
                path: self.path.clone(),
                message: "the database is already up to date with these DocTypes: there is \
                          nothing to migrate online"
                    .into(),
            });
        }
        store::ensure_table(conn)?;
        store::ensure_expanded_status(conn)?;
        online::ensure_tables(conn)?;
        let batch_id = new_batch_id();
        let snapshot = SchemaSnapshot::read(conn)?;
        let mut migrations = 0;
        for (n, dt_plan) in plan.pending().enumerate() {
            let live = introspect_table(conn, &snapshot, &dt_plan.table)?;
            let expansion = online::expand(dt_plan, live.as_ref())?;
            let definition = doctypes
                .iter()
                .find(|d| d.name == dt_plan.doctype)
                .ok_or_else(|| Error::UnsupportedChange {
                    doctype: dt_plan.doctype.clone(),
                    table: dt_plan.table.clone(),
                    message: "planned but not among the DocTypes given".into(),
                })?;
            let savepoint = quote(&format!("dm_online_sp_{n}"));
            exec(conn, &format!("SAVEPOINT {savepoint}"))?;
            self.expand_doctype(dt_plan, &expansion, definition, &batch_id)
                .inspect_err(|e| {
                    self.events.emit(RunEvent::DocTypeFailed {
                        doctype: &dt_plan.doctype,
                        table: &dt_plan.table,
                        error: &error_chain(e),
                    })
                })?;
            exec(conn, &format!("RELEASE {savepoint}"))?;
            migrations += 1;
        }
        self.phase(Phase::Commit);
        guard.commit(&self.path, self.options.lock_timeout)?;
        self.events.emit(RunEvent::Committed {
            batch_id: &batch_id,
            migrations,
        });
        Ok(findings)
    }

    /// One DocType's expand step, in its savepoint: history row, the
    /// statements, verification, `expanded`, the online record.
    fn expand_doctype(
        &self,
        plan: &DocTypePlan,
        expansion: &online::Expansion,
        definition: &DocType,
        batch_id: &str,
    ) -> Result<()> {
        let conn = &self.conn;
        let before = SchemaSnapshot::read_table(conn, &plan.table)?;
        let id = store::start(
            conn,
            &store::NewMigration {
                batch_id: Some(batch_id.to_string()),
                doctype: plan.doctype.clone(),
                table_name: plan.table.clone(),
                sql: expansion.statements.clone(),
                rollback_sql: Vec::new(),
                changes: serde_json::to_value(&plan.changes).unwrap_or_default(),
                applied_by: self.options.applied_by.clone(),
                target_fingerprint: Some(plan.target.fingerprint()),
                fingerprint_before: before.table_fingerprint(&plan.table),
                schema_before: serde_json::to_value(&before.objects).unwrap_or_default(),
            },
        )?;
        self.events.emit(RunEvent::Phase {
            doctype: Some(&plan.doctype),
            phase: Phase::Execute,
        });
        for sql in &expansion.statements {
            let clock = Instant::now();
            sqlguard::run(conn, sql)?;
            self.events.emit(RunEvent::StepExecuted {
                migration: id,
                doctype: &plan.doctype,
                sql,
                rows: None,
                ms: clock.elapsed().as_secs_f64() * 1000.0,
            });
        }
        verify_expanded(conn, plan, expansion)?;
        store::set_status(conn, id, MigrationStatus::Expanded)?;
        let max_rowid = if expansion.renames.is_empty() && expansion.fills.is_empty() {
            0
        } else {
            let sql = format!("SELECT coalesce(max(rowid), 0) FROM {}", quote(&plan.table));
            conn.query_row(&sql, [], |r| r.get(0))
                .map_err(|e| Error::sql(&sql, e))?
        };
        online::record(
            conn,
            &online::NewOnlineTable {
                batch_id,
                migration: id,
                doctype: definition,
                table: &plan.table,
                added: &expansion.added,
                added_sql: &expansion.added_sql,
                added_rollback: &expansion.added_rollback,
                renames: &expansion.renames,
                fills: &expansion.fills,
                max_rowid,
                allow_data_loss: self.options.allow_data_loss,
                drop_orphan_columns: self.options.drop_orphan_columns,
            },
        )
    }

    /// Runs the backfill of `status` and reads the state again after it.
    fn backfill_status(&mut self, status: OnlineStatus) -> Result<OnlineReport> {
        let stats = online::backfill(
            &mut self.conn,
            &self.path,
            (self.options.lock_timeout, self.options.busy_timeout),
            &status.tables,
            &self.options.backfill,
            &self.events,
        )?;
        let status = self
            .read(|| online::read(&self.conn))?
            .ok_or(Error::NoOnlineMigration)?;
        Ok(OnlineReport {
            status,
            resumed: false,
            findings: Vec::new(),
            warnings: Vec::new(),
            backfill: stats,
        })
    }

    /// Complete under the lock: the scaffolding goes (the prelude of the
    /// planning), then the plain apply's phases, in one transaction.
    fn complete_inner(&self, doctypes: &[DocType], batch_id: &str) -> Result<ApplyReport> {
        let prelude = |conn: &Connection| {
            let status = online::read(conn)?.ok_or(Error::NoOnlineMigration)?;
            if status.batch_id != batch_id {
                return Err(Error::OnlineInProgress {
                    doctypes: status.doctypes(),
                    batch_id: status.batch_id,
                });
            }
            contract::prepare_complete(conn, &status)
        };
        // Foreign keys go off before the lock (a rebuild may follow); they
        // are checked before commit when they were on.
        let locked = self.lock_and_replan(doctypes, true, &prelude)?;
        let checks = std::sync::Arc::new(TableChecks::start(
            &self.conn,
            locked
                .plan
                .pending()
                .filter(|p| p.rebuilds())
                .map(|p| p.table.clone())
                .collect(),
        ));
        let (findings, migrations, batch, taken) = if locked.plan.is_empty() {
            (Vec::new(), Vec::new(), None, Vec::new())
        } else {
            let (findings, validate_ms) = self.validate_locked(&locked.plan, doctypes)?;
            let (batch, migrations, taken) =
                self.back_up_and_execute(&locked, validate_ms, checks)?;
            (findings, migrations, Some(batch), taken)
        };
        let n = migrations.len();
        self.commit(locked, batch.as_deref().unwrap_or(batch_id), n, taken)?;
        Ok(ApplyReport {
            blocked: false,
            batch_id: batch,
            migrations,
            findings,
            fast_path: false,
            warnings: Vec::new(),
        })
    }
}

/// The expanded table has every column, index and trigger the expand step
/// added ([`Error::Verification`] otherwise).
fn verify_expanded(
    conn: &Connection,
    plan: &DocTypePlan,
    expansion: &online::Expansion,
) -> Result<()> {
    let spec = table_spec(conn, &plan.table)?;
    let mut missing = Vec::new();
    for change in &expansion.added {
        let found = match (&change.column, &change.index) {
            (_, Some(index)) => spec.as_ref().is_some_and(|s| s.index(index).is_some()),
            (Some(column), None) => spec.as_ref().is_some_and(|s| s.column(column).is_some()),
            (None, None) => spec.is_some(),
        };
        if !found {
            missing.push(change.to_string());
        }
    }
    for (old, new) in &expansion.renames {
        if spec.as_ref().is_none_or(|s| s.column(new).is_none()) {
            missing.push(format!("twin column {new:?} of {old:?}"));
        }
        for trigger in online::twin_triggers(&plan.table, old, new) {
            const SQL: &str =
                "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name = ?1";
            let n: i64 = conn
                .query_row(SQL, [&trigger], |r| r.get(0))
                .map_err(|e| Error::sql(SQL, e))?;
            if n != 1 {
                missing.push(format!("trigger {trigger:?}"));
            }
        }
    }
    let triggers = expansion
        .renames
        .iter()
        .flat_map(|(old, new)| online::twin_triggers(&plan.table, old, new))
        .chain(
            expansion
                .fills
                .iter()
                .flat_map(|(column, _)| online::fill_triggers(&plan.table, column)),
        );
    for trigger in triggers {
        const SQL: &str = "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name = ?1";
        let n: i64 = conn
            .query_row(SQL, [&trigger], |r| r.get(0))
            .map_err(|e| Error::sql(SQL, e))?;
        if n != 1 {
            missing.push(format!("trigger {trigger:?}"));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Verification {
        doctype: plan.doctype.clone(),
        table: plan.table.clone(),
        message: format!("the expand step did not leave: {}", missing.join(", ")),
    })
}

fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.execute_batch(sql).map_err(|e| Error::sql(sql, e))
}
