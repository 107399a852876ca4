//! The [`MigrationApplier`]: plans, validates and applies DocTypes against
//! one SQLite database.

mod backups;
mod builder;
mod online;
mod run;
mod startup;

pub use backups::RestoreReport;
pub use builder::{
    ApplierBuilder, ApplierOptions, BackupKey, BackupSettings, NullFill, RenameHint,
};
pub use online::OnlineReport;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde::Serialize;

use crate::audit::{Action, AuditLog, Level, clean_temp_files, scan_markers};
use crate::backup::{BackupManager, default_dir_for};
use crate::db::lock::read_only_reason;
use crate::doctype::{Conflict, DocType, Warning, WarningCode, conflicts, validate_set, warnings};
use crate::error::{Error, Result};
use crate::events::{Observers, Phase, RunEvent, RunOutcome};
use crate::execution::{MigrationRecord, error_chain, read_snapshot, retry_busy};
use crate::history::{HistoryRow, MigrationId, store};
use crate::plan::{DocTypePlan, MigrationPlan, Mode, SetOptions, plan_set};
use crate::rollback::{self, RollbackOptions, RollbackPlan, RollbackReport, RollbackTarget};
use crate::schema::SchemaSnapshot;
use crate::validation::{Finding, Rule, Severity, ValidationPolicy, sort_findings, validate_plan};

/// Applies DocTypes to one SQLite database.
///
/// ```
/// use doctype_migrate::{DocType, Field, FieldType, MigrationApplier};
///
/// let dir = tempfile::tempdir().unwrap();
/// let db = dir.path().join("app.db");
/// let note = DocType::new("Note")
///     .field(Field::new("title", FieldType::Data))
///     .field(Field::new("pinned", FieldType::Check));
///
/// let mut applier = MigrationApplier::builder(&db).create_if_missing(true).build().unwrap();
/// let preview = applier.dry_run(&[note.clone()]).unwrap();
/// assert_eq!(preview.plan.pending().count(), 1);
///
/// let report = applier.sync_all(&[note.clone()]).unwrap();
/// assert_eq!(report.migrations.len(), 1);
/// assert!(applier.sync_all(&[note]).unwrap().migrations.is_empty(), "second run is a no-op");
/// ```
#[derive(Debug)]
pub struct MigrationApplier {
    conn: Connection,
    path: PathBuf,
    options: ApplierOptions,
    audit: std::sync::Arc<AuditLog>,
    /// The audit log, then the caller's observers.
    events: Observers,
    /// For a lent connection: the settings to give back with it.
    caller: Option<builder::CallerSettings>,
    /// A lent in-memory (or temporary) database: nothing lives beside it
    /// (no run markers, no default audit log or backup directory).
    in_memory: bool,
    /// Built with [`ApplierBuilder::read_only`]: for planning only.
    read_only: bool,
}

/// The result of a dry run: the complete plan and its findings.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DryRunReport {
    /// Whether `apply` would refuse this plan.
    pub blocked: bool,
    /// The plan.
    pub plan: MigrationPlan,
    /// Validation findings, most severe first.
    pub findings: Vec<Finding>,
    /// What the input contained that was accepted as Frappe accepts it
    /// (see [`DocType::warnings`]).
    pub warnings: Vec<Warning>,
    /// Fingerprint (SHA-256, hex) of the live schema the plan was made on:
    /// every object in `sqlite_schema`, read in the same snapshot as the
    /// plan. [`ApplierBuilder::expect_plan`] applies the plan only while
    /// the schema still has it.
    pub schema_fingerprint: String,
}

/// The result of an apply.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ApplyReport {
    /// Always false in a returned report: a blocked apply returns [`Error::Blocked`].
    pub blocked: bool,
    /// The batch id shared by this call's history rows (None when nothing ran).
    pub batch_id: Option<String>,
    /// One record per DocType that changed (or failed).
    pub migrations: Vec<MigrationRecord>,
    /// Non-blocking findings.
    pub findings: Vec<Finding>,
    /// Nothing to do, confirmed from fingerprints alone (no table was
    /// introspected): the start-up fast path.
    pub fast_path: bool,
    /// Things the operator should know that did not stop the run: input
    /// accepted as Frappe accepts it (see [`DocType::warnings`]), an earlier
    /// run that was interrupted, an audit log that could not be written.
    pub warnings: Vec<Warning>,
}

impl MigrationApplier {
    /// A builder for the database at `path`.
    pub fn builder(path: impl AsRef<Path>) -> ApplierBuilder {
        ApplierBuilder::new(path.as_ref())
    }

    /// A builder over a connection the caller opened (an in-memory
    /// database, one with custom functions, attached files or an
    /// encryption setup). The applier uses it as it would its own: the
    /// write lock, savepoints and foreign-key handling are the same. Get it
    /// back with [`into_connection`](Self::into_connection), or lend it
    /// for a while with [`lend`](Self::lend).
    ///
    /// A connection to a file keeps the audit log, run markers and
    /// default backup directory beside that file; an in-memory database has
    /// no audit log unless one is named and takes backups only into a
    /// named backup directory. Refused (at `build`) while the connection
    /// is inside a transaction.
    ///
    /// ```
    /// use doctype_migrate::{DocType, Field, FieldType, MigrationApplier};
    /// use rusqlite::Connection;
    ///
    /// let conn = Connection::open_in_memory().unwrap();
    /// let mut applier = MigrationApplier::builder_for_connection(conn).build().unwrap();
    /// let note = DocType::new("Note").field(Field::new("title", FieldType::Data));
    /// applier.sync_all(&[note]).unwrap();
    /// let conn = applier.into_connection();
    /// let n: i64 = conn.query_row("SELECT count(*) FROM \"tabNote\"", [], |r| r.get(0)).unwrap();
    /// assert_eq!(n, 0);
    /// ```
    pub fn builder_for_connection(conn: Connection) -> ApplierBuilder {
        ApplierBuilder::over(conn)
    }

    /// Lends the caller's connection to an applier for the duration of
    /// `work`, and gives it back, as the caller had it, whatever happens
    /// (as rusqlite_migration's `to_latest(&mut conn)` borrows it).
    /// `configure` sets the applier's options.
    ///
    /// ```
    /// use doctype_migrate::{DocType, Field, FieldType, MigrationApplier};
    /// use rusqlite::Connection;
    ///
    /// let mut conn = Connection::open_in_memory().unwrap();
    /// let note = DocType::new("Note").field(Field::new("title", FieldType::Data));
    /// let report = MigrationApplier::lend(&mut conn, |b| b, |a| a.sync_all(&[note])).unwrap();
    /// assert_eq!(report.migrations.len(), 1);
    /// conn.execute("INSERT INTO \"tabNote\" (name, title) VALUES ('n1', 'hi')", []).unwrap();
    /// ```
    pub fn lend<T>(
        conn: &mut Connection,
        configure: impl FnOnce(ApplierBuilder) -> ApplierBuilder,
        work: impl FnOnce(&mut MigrationApplier) -> Result<T>,
    ) -> Result<T> {
        let placeholder = Connection::open_in_memory()
            .map_err(|e| Error::open(Path::new(builder::IN_MEMORY), e))?;
        let taken = std::mem::replace(conn, placeholder);
        match configure(ApplierBuilder::over(taken)).build_keeping() {
            Ok(mut applier) => {
                let result = work(&mut applier);
                *conn = applier.into_connection();
                result
            }
            Err(refused) => {
                let (e, back) = *refused;
                if let Some(back) = back {
                    *conn = back;
                }
                Err(e)
            }
        }
    }

    /// The connection, given back to the caller: for a connection lent to
    /// [`builder_for_connection`](Self::builder_for_connection), with the
    /// caller's busy timeout and `query_only` restored and the engine's SQL
    /// authorizer removed. (An authorizer the caller had installed is not
    /// restored: SQLite cannot report it.)
    pub fn into_connection(self) -> Connection {
        let MigrationApplier {
            mut conn, caller, ..
        } = self;
        if let Some(c) = caller {
            builder::restore_caller(&mut conn, c);
        }
        conn
    }

    /// Opens an existing database with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::builder(path).build()
    }

    /// The database path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection (for reading; do not hold transactions open
    /// across applier calls).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Plans the DocTypes against the live database without validating data.
    /// Reads only.
    pub fn plan(&self, doctypes: &[DocType]) -> Result<MigrationPlan> {
        validate_set(doctypes)?;
        self.read(|| plan_on(&self.conn, doctypes, &self.options))
    }

    /// The complete plan with its findings. Never writes the database file.
    ///
    /// Definition conflicts in the set (invalid names, duplicate or
    /// colliding fieldnames, two DocTypes mapping to one table) are reported
    /// as blocking `CF003` findings, all at once, and the DocTypes involved
    /// are left out of the plan.
    pub fn dry_run(&self, doctypes: &[DocType]) -> Result<DryRunReport> {
        let (clean, mut findings) = split_conflicts(doctypes);
        let accepted = warnings(doctypes);
        findings.extend(self.strict_findings(&accepted));
        // Plan and validation read one snapshot: a commit by another process
        // in between would make the plan look wrong (SQL001 on a table that
        // appeared meanwhile).
        let events = &self.events;
        let (plan, more, schema_fingerprint, online) = self.read(|| {
            events.emit(RunEvent::Phase {
                doctype: None,
                phase: Phase::Plan,
            });
            store::check_engine_tables(&self.conn)?;
            let schema_fingerprint = SchemaSnapshot::read(&self.conn)?.fingerprint();
            let plan = plan_on(&self.conn, &clean, &self.options)?;
            events.emit(RunEvent::Phase {
                doctype: None,
                phase: Phase::Validate,
            });
            let findings = validate_plan(&self.conn, &plan, &clean, &self.policy())?;
            let online = crate::online::read(&self.conn)?;
            Ok((plan, findings, schema_fingerprint, online))
        })?;
        findings.extend(more);
        sort_findings(&mut findings);
        let mut warnings = accepted;
        // The plan is made against the expanded tables; apply would refuse.
        if let Some(online) = online.filter(|_| !plan.is_empty()) {
            warnings.push(Warning::run(
                WarningCode::OnlineInProgress,
                format!(
                    "online migration {} (DocTypes {}) is in progress: apply refuses until it is \
                     completed or aborted, and this plan is made against its expanded tables",
                    online.batch_id,
                    online.doctypes().join(", ")
                ),
            ));
        }
        Ok(DryRunReport {
            blocked: findings.iter().any(|f| f.blocking),
            plan,
            findings,
            warnings,
            schema_fingerprint,
        })
    }

    /// DocTypes that have changes to apply, with their plans.
    pub fn pending(&self, doctypes: &[DocType]) -> Result<Vec<DocTypePlan>> {
        Ok(self.plan(doctypes)?.pending().cloned().collect())
    }

    /// Migration history, oldest first (of one DocType, if given).
    pub fn history(&self, doctype: Option<&str>) -> Result<Vec<HistoryRow>> {
        store::list(&self.conn, doctype)
    }

    /// One migration's history row; [`Error::MigrationNotFound`] when no
    /// row has this id.
    pub fn migration(&self, id: MigrationId) -> Result<HistoryRow> {
        store::get(&self.conn, id)
    }

    /// This database's id (in `tabMigrationMeta`), which its backups are
    /// bound to; `None` until the first run that wrote history created it.
    pub fn database_id(&self) -> Result<Option<String>> {
        store::database_id(&self.conn)
    }

    /// Applies one DocType.
    pub fn sync_doctype(&mut self, doctype: &DocType) -> Result<ApplyReport> {
        self.sync_all(std::slice::from_ref(doctype))
    }

    /// Applies a set of DocTypes as one batch: validate, lock, re-plan under
    /// the lock, execute each DocType in its own savepoint with its history
    /// row, verify, commit. All-or-nothing unless `continue_on_error`.
    ///
    /// Every action is appended to the audit log; a run that an earlier
    /// process started and never finished is reported in `warnings` and the
    /// audit log, and its marker cleared.
    ///
    /// A database this applier can only read (see [`Error::ReadOnly`]) is
    /// refused before anything is done, even when it is up to date. In
    /// rollback-journal mode the commit waits for other connections'
    /// reads to end, within `lock_timeout`; past it the run is rolled back
    /// and the error is [`Error::LockTimeout`] with `at_commit`.
    pub fn sync_all(&mut self, doctypes: &[DocType]) -> Result<ApplyReport> {
        self.refuse_read_only()?;
        let started = std::time::Instant::now();
        self.events.emit(RunEvent::RunStarted {
            doctypes: doctypes.len(),
        });
        let mut found = self.notice_interrupted_runs();
        let accepted = warnings(doctypes);
        for w in &accepted {
            self.events.emit(RunEvent::InputAccepted { warning: w });
        }
        found.extend(accepted.iter().cloned());
        let result = if self.options.strict {
            refuse_if_blocked(self.strict_findings(&accepted))
                .and_then(|()| self.sync_inner(doctypes))
        } else {
            self.sync_inner(doctypes)
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let error_text = result.as_ref().err().map(audit_error);
        let outcome = match (&result, &error_text) {
            (Ok(r), _) if r.migrations.is_empty() => RunOutcome::UpToDate {
                fast_path: r.fast_path,
            },
            (Ok(r), _) => RunOutcome::Committed {
                batch_id: r.batch_id.as_deref(),
                migrations: r.migrations.len(),
                failed: r.failed().count(),
            },
            (Err(_), error) => RunOutcome::Failed {
                error: error.as_deref().unwrap_or_default(),
            },
        };
        self.events.emit(RunEvent::RunFinished { outcome, ms });
        if self.audit.failures() > 0 {
            if let Some(e) = self.audit.last_error() {
                found.push(Warning::run(
                    WarningCode::AuditNotWritten,
                    format!("audit log not written: {e}"),
                ));
            }
        }
        result.map(|mut r| {
            found.append(&mut r.warnings);
            r.warnings = found;
            r
        })
    }

    /// In strict mode, a blocking `ST001` finding for each accepted quirk
    /// (QK001-QK003); nothing otherwise.
    fn strict_findings(&self, accepted: &[Warning]) -> Vec<Finding> {
        if !self.options.strict {
            return Vec::new();
        }
        accepted
            .iter()
            .filter(|w| w.code.refused_when_strict())
            .map(|w| {
                let doctype = w.doctype.clone().unwrap_or_default();
                Finding {
                    rule: Rule::St001,
                    severity: Severity::High,
                    blocking: true,
                    table: format!("tab{doctype}"),
                    column: w.field.clone(),
                    rows_affected: None,
                    message: format!(
                        "strict mode refuses {}: {}: {}",
                        w.code,
                        w.file.as_deref().unwrap_or("?"),
                        w.message
                    ),
                    suggestion: "fix the DocType definition, or run without strict mode to accept \
                                 it as Frappe does"
                        .into(),
                    doctype,
                }
            })
            .collect()
    }

    /// Reports a housekeeping task that did not work, as an event and as
    /// a warning of the run.
    fn housekeeping_failed(&self, task: &'static str, text: String) -> Warning {
        self.events.emit(RunEvent::HousekeepingFailed {
            task,
            message: &text,
        });
        Warning::run(WarningCode::AuditNotWritten, text)
    }

    /// Reports runs that started and never finished (their markers were
    /// left behind) and clears them.
    fn notice_interrupted_runs(&self) -> Vec<Warning> {
        let mut found = Vec::new();
        if self.in_memory {
            return Vec::new();
        }
        let scan = scan_markers(&self.path);
        for refused in &scan.refused {
            found.push(self.housekeeping_failed("run_marker", refused.describe()));
        }
        for stale in scan.stale {
            self.events.emit(RunEvent::InterruptedRun {
                marker: &stale.marker,
                run: stale.info.as_ref(),
            });
            found.push(Warning::run(WarningCode::InterruptedRun, stale.describe()));
            if let Err(e) = stale.clear() {
                found.push(Warning::run(
                    WarningCode::AuditNotWritten,
                    format!("could not clear an interrupted run's marker: {e}"),
                ));
            }
        }
        found
    }

    /// The backup manager this applier's options describe (directory,
    /// compression, key). Building it writes nothing until a backup is taken.
    /// Fails with [`Error::Config`] for a lent in-memory database without
    /// a named backup directory (nothing lives beside it).
    pub fn backup_manager(&self) -> Result<BackupManager> {
        let o = &self.options;
        let dir = self.backup_dir().ok_or_else(|| {
            Error::config(
                "backup_dir",
                "an in-memory database has no default backup directory: name one with \
                 ApplierBuilder::backup_dir",
            )
        })?;
        let mut b = BackupManager::builder().dir(dir);
        if let Some(level) = o.backups.compression_level {
            b = b.compression_level(level);
        }
        if let Some(key) = &o.backups.key {
            b = b.backup_key(key);
        }
        b.build()
    }

    /// The backup directory: the one named, else the default beside the
    /// database file (`None` for a lent in-memory database).
    fn backup_dir(&self) -> Option<PathBuf> {
        match &self.options.backups.dir {
            Some(d) => Some(d.clone()),
            None if self.in_memory => None,
            None => Some(default_dir_for(&self.path)),
        }
    }

    /// Refuses a call that would write the database when this applier can
    /// only read it ([`Error::ReadOnly`]), before anything is done: no
    /// event, no audit line, no run marker. SQLite lets a read-only
    /// connection begin a write transaction (`BEGIN IMMEDIATE` succeeds)
    /// and fails only at its first write, the history row, after the
    /// plan, the validation and the run marker beside the database, with
    /// a raw "attempt to write a readonly database".
    fn refuse_read_only(&self) -> Result<()> {
        let reason = if self.read_only {
            Some("the applier was built with read_only(true), which is for planning")
        } else {
            read_only_reason(&self.conn)?
        };
        match reason {
            None => Ok(()),
            Some(reason) => Err(Error::ReadOnly {
                path: self.path.clone(),
                reason: reason.to_string(),
            }),
        }
    }

    /// Runs `work` in a transaction of its own under the write lock
    /// (`BEGIN IMMEDIATE`, the applier's lock timeout). It commits when
    /// `work` returns `(value, true)` and rolls back when it returns
    /// `(value, false)` or an error.
    fn write_locked<T>(&self, work: impl FnOnce(&Connection) -> Result<(T, bool)>) -> Result<T> {
        let conn = &self.conn;
        crate::execution::begin_immediate(conn, &self.path, self.options.lock_timeout)?;
        let guard = crate::execution::TxGuard::new(conn);
        match work(conn) {
            Ok((value, true)) => guard
                .commit(&self.path, self.options.lock_timeout)
                .map(|()| value),
            Ok((value, false)) => guard.rollback().map(|()| value),
            Err(e) => {
                guard.rollback()?;
                Err(e)
            }
        }
    }

    /// Runs reads before the write lock in one snapshot, retried while
    /// another process holds the database busy, within `lock_timeout`.
    fn read<T>(&self, mut read: impl FnMut() -> Result<T>) -> Result<T> {
        retry_busy(&self.path, self.options.lock_timeout, || {
            read_snapshot(&self.conn, &mut read)
        })
    }

    /// Removes temporary files a killed backup left in the backup directory.
    /// Only called under the write lock, when no other run can be writing one.
    /// A refusal to clean (a symlinked directory) comes back as a warning.
    fn remove_stale_backup_temp_files(&self) -> Option<Warning> {
        let dir = self.backup_dir().filter(|d| d.is_dir())?;
        match clean_temp_files(&dir, ".tmp", std::time::Duration::ZERO) {
            Ok(removed) => {
                for p in removed {
                    self.events.emit(RunEvent::LeftoverRemoved {
                        path: &p,
                        reason: None,
                    });
                }
                None
            }
            Err(e) => Some(self.housekeeping_failed(
                "temp_cleanup",
                format!("backup temp files not cleaned: {}", error_chain(&e)),
            )),
        }
    }

    /// Removes backups a killed run left behind: files of this database
    /// (same database id) that name a migration no history row records
    /// them for. Their migration never committed, so they protect nothing,
    /// and its id is given to the next migration: left in place, a file
    /// would name a migration that is not the one it backed up. Only
    /// called under the write lock. A failure is a warning.
    fn remove_orphaned_backups(&self) -> Option<Warning> {
        self.backup_dir().filter(|d| d.is_dir())?;
        let result = (|| -> Result<Vec<PathBuf>> {
            let Some(db_id) = store::database_id(&self.conn)? else {
                return Ok(Vec::new());
            };
            let recorded: Vec<PathBuf> = store::backup_paths_recorded(&self.conn)?
                .iter()
                .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
                .collect();
            let mut removed = Vec::new();
            for info in self.backup_manager()?.list()? {
                let ours = info.database_id.as_deref() == Some(db_id.as_str());
                let canonical =
                    std::fs::canonicalize(&info.path).unwrap_or_else(|_| info.path.clone());
                if ours && info.migration_id.is_some() && !recorded.contains(&canonical) {
                    std::fs::remove_file(&info.path).map_err(|source| Error::Io {
                        path: info.path.clone(),
                        source,
                    })?;
                    removed.push(info.path);
                }
            }
            Ok(removed)
        })();
        match result {
            Ok(removed) => {
                for p in removed {
                    self.events.emit(RunEvent::LeftoverRemoved {
                        path: &p,
                        reason: Some("backup of a migration that never committed"),
                    });
                }
                None
            }
            Err(e) => Some(self.housekeeping_failed(
                "backup_cleanup",
                format!("orphaned backups not cleaned: {}", error_chain(&e)),
            )),
        }
    }

    /// The audit log this applier appends to.
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    fn policy(&self) -> ValidationPolicy {
        ValidationPolicy {
            allow_data_loss: self.options.allow_data_loss,
        }
    }

    /// Rolls back one migration (see [`RollbackPlan`] and [`crate::Reason`]): feasibility
    /// first, then the rollback SQL, restores from backups, verification and
    /// history, in one transaction. A refusal is
    /// [`Error::RollbackRefused`] and writes nothing.
    pub fn rollback_migration(
        &mut self,
        id: MigrationId,
        options: &RollbackOptions,
    ) -> Result<RollbackReport> {
        self.rollback(&RollbackTarget::Migration { id }, options)
    }

    /// Rolls back the newest completed migration of `doctype`, or with
    /// `None` the newest completed migration of any DocType.
    pub fn rollback_last(
        &mut self,
        doctype: Option<&str>,
        options: &RollbackOptions,
    ) -> Result<RollbackReport> {
        let target = RollbackTarget::Last {
            doctype: doctype.map(str::to_string),
        };
        self.rollback(&target, options)
    }

    /// Rolls back every completed migration of one batch (one `sync_all`
    /// call), newest first, in one transaction.
    pub fn rollback_batch(
        &mut self,
        batch_id: &str,
        options: &RollbackOptions,
    ) -> Result<RollbackReport> {
        let target = RollbackTarget::Batch {
            batch_id: batch_id.to_string(),
        };
        self.rollback(&target, options)
    }

    /// The dry run of a rollback: the feasibility report and plan. Verifies
    /// backups; never writes the database.
    pub fn rollback_plan(
        &self,
        target: &RollbackTarget,
        options: &RollbackOptions,
    ) -> Result<RollbackPlan> {
        let default;
        let backups = match &options.backups {
            Some(b) => b.as_ref(),
            None => {
                default = self.rollback_backups()?;
                &default
            }
        };
        rollback::plan(&self.conn, target, options, backups)
    }

    /// [`MigrationApplier::rollback_migration`] and friends for any target.
    /// Refused with [`Error::ReadOnly`] on a database this applier can only
    /// read ([`rollback_plan`](Self::rollback_plan) works on it).
    pub fn rollback(
        &mut self,
        target: &RollbackTarget,
        options: &RollbackOptions,
    ) -> Result<RollbackReport> {
        self.refuse_read_only()?;
        // A rollback would change tables both versions of an online
        // migration are using.
        self.read(|| crate::online::in_progress(&self.conn))?;
        let default;
        let backups = match &options.backups {
            Some(b) => b.as_ref(),
            None => {
                default = self.rollback_backups()?;
                &default
            }
        };
        let result = rollback::run(&self.conn, &self.path, target, options, backups);
        self.audit_rollback(target, &result);
        result
    }

    /// Audit entries for a rollback: one `rollback` entry per migration
    /// undone and one `restore` per backup restored; a refusal (warn) or a
    /// failure (error) otherwise. Never fails the rollback.
    fn audit_rollback(&self, target: &RollbackTarget, result: &Result<RollbackReport>) {
        let target_json = serde_json::to_value(target).unwrap_or_default();
        match result {
            Ok(report) => {
                for r in &report.rolled_back {
                    for restore in &r.restores {
                        self.audit.record(
                            Action::Restore,
                            Level::Info,
                            Some(r.id),
                            Some(&r.doctype),
                            serde_json::to_value(restore).unwrap_or_default(),
                        );
                    }
                    self.audit.record(
                        Action::Rollback,
                        Level::Info,
                        Some(r.id),
                        Some(&r.doctype),
                        serde_json::json!({
                            "kind": "migration_rolled_back",
                            "target": target_json,
                            "table": r.table,
                            "cascaded": r.cascaded,
                            "statements": r.statements.len(),
                            "rows_restored": r.restores.iter().map(|x| x.rows).sum::<u64>(),
                            "execution_time_ms": r.execution_time_ms,
                        }),
                    );
                }
            }
            Err(Error::RollbackRefused { plan }) => {
                self.audit.record(
                    Action::Rollback,
                    Level::Warn,
                    None,
                    None,
                    serde_json::json!({
                        "kind": "rollback_refused",
                        "target": target_json,
                        "refusals": plan.refusals,
                    }),
                );
            }
            Err(e) => {
                self.audit.record(
                    Action::Failure,
                    Level::Error,
                    None,
                    None,
                    serde_json::json!({
                        "kind": "rollback_failed",
                        "target": target_json,
                        "error": crate::execution::error_chain(e),
                    }),
                );
            }
        }
    }

    /// The backups a rollback uses when its options name none: this
    /// applier's (see [`MigrationApplier::backup_manager`]). A lent
    /// in-memory database without a named backup directory gets a manager
    /// that reads only: a rollback that needs no backup runs, one that
    /// needs a backup is refused because the file is not in its directory.
    fn rollback_backups(&self) -> Result<BackupManager> {
        if self.backup_dir().is_none() {
            return BackupManager::builder()
                .dir(default_dir_for(&self.path))
                .build();
        }
        self.backup_manager()
    }
}

impl ApplyReport {
    fn empty() -> Self {
        ApplyReport {
            blocked: false,
            batch_id: None,
            migrations: Vec::new(),
            findings: Vec::new(),
            fast_path: false,
            warnings: Vec::new(),
        }
    }

    /// DocTypes that failed (continue-on-error mode).
    pub fn failed(&self) -> impl Iterator<Item = &MigrationRecord> {
        self.migrations.iter().filter(|m| m.error.is_some())
    }
}

/// The one call for application start: loads every DocType under
/// `doctypes` (a file or a directory tree), creates the database if needed
/// and applies them with default (safe) options. When nothing changed since
/// the last start, the files are hashed and not parsed (see
/// [`MigrationApplier::sync_paths`]).
///
/// While an online migration is in progress (a rolling deploy: both
/// application versions use the expanded tables), the schema is the online
/// migration's to change: an application starting then is not refused, it
/// starts without migrating, and the report says so in a `RUN004` warning.
pub fn migrate_on_start(
    database: impl AsRef<Path>,
    doctypes: impl AsRef<Path>,
) -> Result<ApplyReport> {
    let result = MigrationApplier::builder(database)
        .create_if_missing(true)
        .build()?
        .sync_paths(&[doctypes.as_ref().to_path_buf()]);
    match result {
        Err(Error::OnlineInProgress { batch_id, doctypes }) => {
            let mut report = ApplyReport::empty();
            report.warnings.push(Warning::run(
                WarningCode::OnlineInProgress,
                format!(
                    "online migration {batch_id} (DocTypes {}) is in progress: not migrated at \
                     start; the online migration's complete or abort changes the schema",
                    doctypes.join(", ")
                ),
            ));
            Ok(report)
        }
        other => other,
    }
}

/// An error as the audit log records it. A refusal lists its findings by
/// rule, place and row count only: finding messages quote stored values
/// (MF001 names duplicate keys), and data values stay out of the log.
fn audit_error(e: &Error) -> String {
    match e {
        Error::Blocked { findings } => {
            let list: Vec<String> = findings
                .iter()
                .filter(|f| f.blocking)
                .map(|f| {
                    let mut place = f.table.clone();
                    if let Some(c) = &f.column {
                        place = format!("{place}.{c}");
                    }
                    match f.rows_affected {
                        Some(n) => format!("{} {place} ({n} rows)", f.rule),
                        None => format!("{} {place}", f.rule),
                    }
                })
                .collect();
            format!(
                "migration refused: {} blocking finding(s): {}",
                list.len(),
                list.join(", ")
            )
        }
        other => error_chain(other),
    }
}

fn remove_files(paths: impl Iterator<Item = PathBuf>) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

/// Splits a set into the DocTypes without definition conflicts and CF003
/// findings for the others. A DocType is left out when a conflict names it
/// or its table (so both sides of a table clash are left out).
fn split_conflicts(doctypes: &[DocType]) -> (Vec<DocType>, Vec<Finding>) {
    let found: Vec<Conflict> = conflicts(doctypes);
    let bad_tables: Vec<String> = found
        .iter()
        .map(|c| format!("tab{}", c.doctype).to_ascii_lowercase())
        .collect();
    let clean = doctypes
        .iter()
        .filter(|d| !bad_tables.contains(&d.table_name().to_ascii_lowercase()))
        .cloned()
        .collect();
    let findings = found
        .into_iter()
        .map(|c| Finding {
            rule: Rule::Cf003,
            severity: Severity::Critical,
            blocking: true,
            table: format!("tab{}", c.doctype),
            column: c.field.clone(),
            rows_affected: None,
            message: format!("{}: {}", c.origin, c.message),
            suggestion: "fix the DocType definition".into(),
            doctype: c.doctype,
        })
        .collect();
    (clean, findings)
}

fn refuse_if_blocked(findings: Vec<Finding>) -> Result<()> {
    if findings.iter().any(|f| f.blocking) {
        return Err(Error::Blocked { findings });
    }
    Ok(())
}

/// The set planner's view of this applier's options.
fn set_options(options: &ApplierOptions) -> SetOptions<'_> {
    SetOptions {
        drop_orphan_columns: options.drop_orphan_columns,
        drop_orphan_tables: options.drop_orphan_tables,
        renames: &options.renames,
        null_fills: &options.null_fills,
        backup_policy: options.backups.policy,
        fast_paths: !options.always_rebuild,
    }
}

fn plan_on(
    conn: &Connection,
    doctypes: &[DocType],
    options: &ApplierOptions,
) -> Result<MigrationPlan> {
    plan_set(conn, doctypes, &set_options(options), Mode::Full)
}

fn plan_with(
    conn: &Connection,
    doctypes: &[DocType],
    options: &ApplierOptions,
    mode: Mode,
) -> Result<MigrationPlan> {
    plan_set(conn, doctypes, &set_options(options), mode)
}

fn new_batch_id() -> String {
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        std::process::id()
    )
}
