//! Building a [`MigrationApplier`]: options with fallible `build()`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::audit::AuditLog;
use crate::backup::BackupPolicy;
use crate::error::{Error, Result};
use crate::events::{Observers, RunObserver};
use crate::execution::retry_busy;
use crate::ident::check_fieldname;

use super::MigrationApplier;
use crate::online::BackfillSettings;

pub use crate::plan::{NullFill, RenameHint};

pub use crate::backup::BackupKey;

/// Options of a [`MigrationApplier`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApplierOptions {
    /// Continue with the other DocTypes when one fails (it is rolled back to
    /// its savepoint and recorded as `failed`). Default: all-or-nothing.
    pub continue_on_error: bool,
    /// Drop columns a DocType no longer declares. Default: keep them (orphans).
    pub drop_orphan_columns: bool,
    /// Drop the table of a DocType in the set that no longer has one (it
    /// became single or virtual). Default: the table is kept.
    pub drop_orphan_tables: bool,
    /// Let data-loss findings (DL*) through. Default: they block.
    pub allow_data_loss: bool,
    /// Refuse the DocType quirks Frappe accepts (a fieldname twice, a field
    /// named like a standard column, a non-numeric default on a numeric
    /// field) as blocking `ST001` findings, for app authors who want clean
    /// DocTypes in CI. Default: accepted, with a warning.
    pub strict: bool,
    /// Take the rebuild (copy the table) for every change ALTER TABLE
    /// cannot add, rename or index, as engines without fast paths do:
    /// no native `ALTER COLUMN … NOT NULL`, no edit of a CREATE text.
    /// Default: the fast paths, where they are proved safe (see
    /// [`crate::Approach`]).
    pub always_rebuild: bool,
    /// Rename hints on top of the fields' `renamed_from`.
    pub renames: Vec<RenameHint>,
    /// Values to fill NULLs with before a column becomes NOT NULL (the
    /// resolution of MF002).
    pub null_fills: Vec<NullFill>,
    /// When, where and how backups are taken.
    pub backups: BackupSettings,
    /// Hear every event of a run (after the audit log, in the order
    /// added). See [`ApplierBuilder::observer`].
    pub(crate) observers: Observers,
    /// Apply only the plan a dry run showed. See
    /// [`ApplierBuilder::expect_plan`].
    pub(crate) expected_plan: Option<ExpectedPlan>,
    /// Where the JSON Lines audit log goes: `None` = beside the database
    /// (`<db>.audit.jsonl`). See [`ApplierBuilder::no_audit_log`].
    pub audit_log: Option<PathBuf>,
    /// Write no audit log at all.
    pub audit_disabled: bool,
    /// SQLite busy timeout for each statement.
    pub busy_timeout: Duration,
    /// How long to wait for the write lock in total before giving up
    /// (and, on a rollback-journal database, at commit for other
    /// connections' reads to end; see [`Error::LockTimeout`]).
    pub lock_timeout: Duration,
    /// Recorded as `applied_by` in history.
    pub applied_by: String,
    /// How an online migration's backfill paces itself.
    pub backfill: BackfillSettings,
}

impl Default for ApplierOptions {
    fn default() -> Self {
        ApplierOptions {
            continue_on_error: false,
            drop_orphan_columns: false,
            drop_orphan_tables: false,
            allow_data_loss: false,
            strict: false,
            always_rebuild: false,
            renames: Vec::new(),
            null_fills: Vec::new(),
            backups: BackupSettings::default(),
            observers: Observers::default(),
            expected_plan: None,
            audit_log: None,
            audit_disabled: false,
            busy_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(60),
            applied_by: crate::history::default_actor(),
            backfill: BackfillSettings::default(),
        }
    }
}

/// When, where and how an applier takes backups: one value, so a client
/// (the command line, a service) builds it once from its own options and
/// hands it to [`ApplierBuilder::backups`].
///
/// ```
/// use doctype_migrate::{BackupPolicy, BackupSettings, MigrationApplier};
///
/// let dir = tempfile::tempdir().unwrap();
/// let settings = BackupSettings::default()
///     .with_policy(BackupPolicy::Always)
///     .with_dir(dir.path().join("backups"))
///     .with_compression_level(6);
/// let applier = MigrationApplier::builder(dir.path().join("app.db"))
///     .create_if_missing(true)
///     .backups(settings)
///     .build()
///     .unwrap();
/// assert_eq!(applier.backup_manager().unwrap().dir(), dir.path().join("backups"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackupSettings {
    /// When to back up tables before changing them.
    pub policy: BackupPolicy,
    /// Where backups go (default: `<database file name>.backups` beside it).
    pub dir: Option<PathBuf>,
    /// Encrypt and authenticate backups with this key (default: neither).
    pub key: Option<BackupKey>,
    /// gzip level 0-9 (default: the backup manager's fast level, 1).
    pub compression_level: Option<u32>,
    /// Read each backup back (decrypt, decompress, checksum, count) before
    /// the step it protects runs. Default: on.
    pub verify: bool,
}

impl Default for BackupSettings {
    fn default() -> Self {
        BackupSettings {
            policy: BackupPolicy::default(),
            dir: None,
            key: None,
            compression_level: None,
            verify: true,
        }
    }
}

impl BackupSettings {
    /// Sets [`policy`](Self::policy).
    pub fn with_policy(mut self, policy: BackupPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets [`dir`](Self::dir).
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Sets [`key`](Self::key).
    pub fn with_key(mut self, key: BackupKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets [`compression_level`](Self::compression_level) (checked at
    /// `build`).
    pub fn with_compression_level(mut self, level: u32) -> Self {
        self.compression_level = Some(level);
        self
    }

    /// Sets [`verify`](Self::verify).
    pub fn with_verify(mut self, yes: bool) -> Self {
        self.verify = yes;
        self
    }
}

/// How to open the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenMode {
    ReadWrite,
    CreateIfMissing,
    ReadOnly,
}

/// Builder for [`MigrationApplier`].
#[derive(Debug)]
pub struct ApplierBuilder {
    path: PathBuf,
    mode: OpenMode,
    options: ApplierOptions,
    /// The caller's connection, when the applier works over it.
    lent: Option<Connection>,
}

impl ApplierBuilder {
    pub(super) fn new(path: &Path) -> Self {
        ApplierBuilder {
            path: path.to_path_buf(),
            mode: OpenMode::ReadWrite,
            options: ApplierOptions::default(),
            lent: None,
        }
    }

    pub(super) fn over(conn: Connection) -> Self {
        // The file the connection has open names the audit log, the run
        // markers and the default backup directory, as a path would; an
        // in-memory or temporary database has none of them.
        let path = conn
            .path()
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(IN_MEMORY), PathBuf::from);
        ApplierBuilder {
            path,
            mode: OpenMode::ReadWrite,
            options: ApplierOptions::default(),
            lent: Some(conn),
        }
    }

    /// Create the database file if it does not exist (default: it must exist).
    pub fn create_if_missing(mut self, yes: bool) -> Self {
        if yes {
            self.mode = OpenMode::CreateIfMissing;
        } else if self.mode == OpenMode::CreateIfMissing {
            self.mode = OpenMode::ReadWrite;
        }
        self
    }

    /// Open read-only, for planning: the file is never written, and a
    /// missing file plans against an empty database. `sync_all`, rollbacks
    /// and restores are refused with [`Error::ReadOnly`].
    pub fn read_only(mut self, yes: bool) -> Self {
        self.mode = if yes {
            OpenMode::ReadOnly
        } else {
            OpenMode::ReadWrite
        };
        self
    }

    /// See [`ApplierOptions::continue_on_error`].
    pub fn continue_on_error(mut self, yes: bool) -> Self {
        self.options.continue_on_error = yes;
        self
    }

    /// See [`ApplierOptions::drop_orphan_columns`]. Destroys data in those
    /// columns; only with [`ApplierBuilder::allow_data_loss`] when they hold values.
    pub fn drop_orphan_columns(mut self, yes: bool) -> Self {
        self.options.drop_orphan_columns = yes;
        self
    }

    /// See [`ApplierOptions::drop_orphan_tables`]. Destroys the rows of
    /// those tables; only with [`ApplierBuilder::allow_data_loss`] when they hold rows.
    pub fn drop_orphan_tables(mut self, yes: bool) -> Self {
        self.options.drop_orphan_tables = yes;
        self
    }

    /// See [`ApplierOptions::always_rebuild`].
    pub fn always_rebuild(mut self, yes: bool) -> Self {
        self.options.always_rebuild = yes;
        self
    }

    /// See [`ApplierOptions::strict`].
    pub fn strict(mut self, yes: bool) -> Self {
        self.options.strict = yes;
        self
    }

    /// See [`ApplierOptions::allow_data_loss`].
    pub fn allow_data_loss(mut self, yes: bool) -> Self {
        self.options.allow_data_loss = yes;
        self
    }

    /// The start-up record's key for `paths` under these options (see
    /// `startup::input_sha256`): what a fleet hashes once for all its
    /// databases.
    pub(crate) fn startup_input(&self, paths: &[PathBuf]) -> Result<String> {
        super::startup::input_sha256(&self.options, paths)
    }

    /// Rows in the first range of an online migration's backfill (see
    /// [`BackfillSettings::batch_rows`]); must be above zero.
    pub fn backfill_batch_rows(mut self, rows: u32) -> Self {
        self.options.backfill.batch_rows = rows;
        self
    }

    /// How long one backfill range may hold the write lock (see
    /// [`BackfillSettings::max_batch`]); must be above zero.
    pub fn backfill_max_batch(mut self, max: Duration) -> Self {
        self.options.backfill.max_batch = max;
        self
    }

    /// The pause between backfill ranges (see [`BackfillSettings::pause`]).
    pub fn backfill_pause(mut self, pause: Duration) -> Self {
        self.options.backfill.pause = pause;
        self
    }

    /// Adds a rename hint: in `doctype`, column `from` was renamed to `to`.
    pub fn rename_column(mut self, doctype: &str, from: &str, to: &str) -> Self {
        self.options.renames.push(RenameHint {
            doctype: doctype.to_string(),
            from: from.to_string(),
            to: to.to_string(),
        });
        self
    }

    /// Before `column` of `doctype` becomes NOT NULL, fill its NULLs with
    /// `value` (resolves MF002 findings; reported as MF003).
    pub fn fill_nulls(mut self, doctype: &str, column: &str, value: &str) -> Self {
        self.options.null_fills.push(NullFill {
            doctype: doctype.to_string(),
            column: column.to_string(),
            value: value.to_string(),
        });
        self
    }

    /// All backup settings at once (replacing any set before).
    pub fn backups(mut self, settings: BackupSettings) -> Self {
        self.options.backups = settings;
        self
    }

    /// See [`BackupSettings::policy`].
    pub fn backup_policy(mut self, policy: BackupPolicy) -> Self {
        self.options.backups.policy = policy;
        self
    }

    /// See [`BackupSettings::dir`].
    pub fn backup_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.options.backups.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Encrypts backups with the key in this file (32 bytes or 64 hex characters).
    pub fn backup_key_file(mut self, path: impl AsRef<Path>) -> Self {
        self.options.backups.key = Some(BackupKey::KeyFile(path.as_ref().to_path_buf()));
        self
    }

    /// Encrypts backups with a key derived from this passphrase (argon2id).
    pub fn backup_passphrase(mut self, passphrase: &str) -> Self {
        self.options.backups.key = Some(BackupKey::Passphrase(passphrase.to_string()));
        self
    }

    /// Encrypts and authenticates backups with `key` (a key file or a
    /// passphrase).
    pub fn backup_key(mut self, key: BackupKey) -> Self {
        self.options.backups.key = Some(key);
        self
    }

    /// See [`BackupSettings::compression_level`].
    pub fn backup_compression_level(mut self, level: u32) -> Self {
        self.options.backups.compression_level = Some(level);
        self
    }

    /// See [`BackupSettings::verify`].
    pub fn verify_backups(mut self, yes: bool) -> Self {
        self.options.backups.verify = yes;
        self
    }

    /// Appends the audit log (JSON Lines) to this file instead of the
    /// default `<database>.audit.jsonl` beside the database.
    pub fn audit_log(mut self, path: impl AsRef<Path>) -> Self {
        self.options.audit_log = Some(path.as_ref().to_path_buf());
        self.options.audit_disabled = false;
        self
    }

    /// Applies only the plan `report` showed, as an approval workflow
    /// needs: under the write lock, the live schema must still have the
    /// report's [`schema_fingerprint`](crate::DryRunReport::schema_fingerprint)
    /// (else [`Error::StalePlan`]), and validating again must find nothing
    /// whose rule, table and column the report did not list (else
    /// [`Error::NewFindings`]; changed row counts alone pass). Either way
    /// nothing is written.
    pub fn expect_plan(mut self, report: &super::DryRunReport) -> Self {
        self.options.expected_plan = Some(ExpectedPlan {
            schema_fingerprint: report.schema_fingerprint.clone(),
            has_changes: report.plan.pending().next().is_some(),
            findings: report.findings.iter().map(finding_key).collect(),
        });
        self
    }

    /// Writes no audit log.
    pub fn no_audit_log(mut self) -> Self {
        self.options.audit_disabled = true;
        self
    }

    /// Adds an observer that hears every [`crate::RunEvent`] of each run
    /// (phases, the plan, the lock, validation, backups, statements, rows
    /// copied, verification, commit or rollback, the end), after the audit
    /// log and the observers added before it.
    pub fn observer(mut self, observer: std::sync::Arc<dyn RunObserver>) -> Self {
        self.options.observers.push(observer);
        self
    }

    /// See [`ApplierOptions::busy_timeout`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.options.busy_timeout = timeout;
        self
    }

    /// See [`ApplierOptions::lock_timeout`].
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.options.lock_timeout = timeout;
        self
    }

    /// See [`ApplierOptions::applied_by`].
    pub fn applied_by(mut self, who: &str) -> Self {
        self.options.applied_by = who.to_string();
        self
    }

    /// Checks the options and opens the database (or takes over the
    /// connection given to [`MigrationApplier::builder_for_connection`]).
    pub fn build(self) -> Result<MigrationApplier> {
        self.build_keeping().map_err(|r| r.0)
    }

    /// [`build`](Self::build), giving a lent connection back on failure.
    pub(super) fn build_keeping(mut self) -> std::result::Result<MigrationApplier, Refused> {
        let lent = self.lent.take();
        if let Err(e) = self.check() {
            return Err(Box::new((e, lent)));
        }
        match lent {
            None => self.open_path().map_err(|e| Box::new((e, None))),
            Some(conn) => self.take_over(conn),
        }
    }

    fn check(&self) -> Result<()> {
        if self.options.backfill.batch_rows == 0 {
            return Err(Error::config(
                "backfill_batch_rows",
                "backfill_batch_rows must be greater than zero",
            ));
        }
        if self.options.backfill.max_batch.is_zero() {
            return Err(Error::config(
                "backfill_max_batch",
                "backfill_max_batch must be greater than zero",
            ));
        }
        for hint in &self.options.renames {
            for name in [&hint.from, &hint.to] {
                check_fieldname(name).map_err(|m| {
                    Error::config(
                        "rename_column",
                        format!("rename hint for DocType {:?}: {m}", hint.doctype),
                    )
                })?;
            }
            if hint.from.eq_ignore_ascii_case(&hint.to) {
                return Err(Error::config(
                    "rename_column",
                    format!(
                        "rename hint for DocType {:?} renames {:?} to itself",
                        hint.doctype, hint.from
                    ),
                ));
            }
        }
        for fill in &self.options.null_fills {
            check_fieldname(&fill.column).map_err(|m| {
                Error::config(
                    "fill_nulls",
                    format!("fill_nulls for DocType {:?}: {m}", fill.doctype),
                )
            })?;
            if fill.value.contains('\0') {
                return Err(Error::config(
                    "fill_nulls",
                    format!("fill_nulls value for {:?} contains a NUL byte", fill.column),
                ));
            }
        }
        if self
            .options
            .backups
            .compression_level
            .is_some_and(|l| l > 9)
        {
            return Err(Error::config(
                "backup_compression_level",
                "backup compression level must be 0 to 9",
            ));
        }
        if self.options.lock_timeout.is_zero() {
            return Err(Error::config(
                "lock_timeout",
                "lock_timeout must be greater than zero",
            ));
        }
        Ok(())
    }

    fn open_path(self) -> Result<MigrationApplier> {
        let conn = open(&self.path, self.mode)?;
        conn.busy_timeout(self.options.busy_timeout)
            .map_err(|source| Error::open(&self.path, source))?;
        // Opening is lazy: read the schema once so that a file that is not a
        // database fails here, with its path, before anything else. Another
        // process's long write may hold the file busy: wait within the lock bound.
        retry_busy(&self.path, self.options.lock_timeout, || {
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|source| Error::open(&self.path, source))
        })?;
        Ok(self.finish(conn, None))
    }

    /// Works over the caller's connection: refused inside a transaction
    /// (the engine takes its own write lock and turns foreign keys off
    /// outside any transaction); the busy timeout and `query_only` the
    /// caller had are remembered and given back by
    /// [`MigrationApplier::into_connection`].
    fn take_over(self, mut conn: Connection) -> std::result::Result<MigrationApplier, Refused> {
        if !conn.is_autocommit() {
            return Err(Box::new((
                Error::config(
                    "transaction",
                    "the connection is inside a transaction; commit or roll back before \
                     lending it to the applier",
                ),
                Some(conn),
            )));
        }
        let pragma = |conn: &Connection, name: &str| -> Result<i64> {
            let sql = format!("PRAGMA {name}");
            conn.query_row(&sql, [], |r| r.get(0))
                .map_err(|e| Error::sql(sql, e))
        };
        let caller = (|| -> Result<CallerSettings> {
            let settings = CallerSettings {
                busy_timeout_ms: pragma(&conn, "busy_timeout")?,
                query_only: pragma(&conn, "query_only")? != 0,
            };
            conn.busy_timeout(self.options.busy_timeout)
                .map_err(|e| Error::sql("busy_timeout", e))?;
            if self.mode == OpenMode::ReadOnly {
                conn.execute_batch("PRAGMA query_only = ON")
                    .map_err(|e| Error::sql("PRAGMA query_only = ON", e))?;
            }
            Ok(settings)
        })();
        let caller = match caller {
            Ok(c) => c,
            Err(e) => return Err(Box::new((e, Some(conn)))),
        };
        if let Err(e) = crate::db::sqlguard::install(&mut conn) {
            restore_caller(&mut conn, caller);
            return Err(Box::new((e, Some(conn))));
        }
        Ok(self.finish(conn, Some(caller)))
    }

    /// The applier over `conn`, with its audit log: the one named, else
    /// the default beside the database file; none when disabled, when only
    /// reading, or for a lent in-memory database (nothing lives beside it).
    fn finish(self, conn: Connection, caller: Option<CallerSettings>) -> MigrationApplier {
        let in_memory = caller.is_some() && self.path == Path::new(IN_MEMORY);
        let audit = if self.options.audit_disabled || self.mode == OpenMode::ReadOnly {
            AuditLog::disabled()
        } else {
            match &self.options.audit_log {
                Some(p) => AuditLog::new(p.clone()),
                None if in_memory => AuditLog::disabled(),
                None => AuditLog::beside(&self.path),
            }
        };
        let audit = std::sync::Arc::new(audit);
        let mut events = Observers::default();
        events.push(audit.clone());
        events.extend(&self.options.observers);
        MigrationApplier {
            conn,
            path: self.path,
            options: self.options,
            audit,
            events,
            caller,
            in_memory,
            read_only: self.mode == OpenMode::ReadOnly,
        }
    }
}

/// A refused build over a lent connection: the error, and the connection
/// to give back.
pub(super) type Refused = Box<(Error, Option<Connection>)>;

/// What stands for the path of an in-memory or temporary database in
/// messages.
pub(super) const IN_MEMORY: &str = ":memory:";

/// Gives a lent connection its settings back and removes the engine's SQL
/// authorizer. Best effort: these statements do not fail on an open
/// connection outside a transaction.
pub(super) fn restore_caller(conn: &mut Connection, caller: CallerSettings) {
    use rusqlite::hooks::{AuthContext, Authorization};
    let _ = conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
    let ms = u64::try_from(caller.busy_timeout_ms).unwrap_or(0);
    let _ = conn.busy_timeout(Duration::from_millis(ms));
    let _ = conn.execute_batch(if caller.query_only {
        "PRAGMA query_only = ON"
    } else {
        "PRAGMA query_only = OFF"
    });
}

/// The settings of a lent connection that the applier changes, as the
/// caller had them.
#[derive(Debug, Clone, Copy)]
pub(super) struct CallerSettings {
    pub busy_timeout_ms: i64,
    pub query_only: bool,
}

fn open(path: &Path, mode: OpenMode) -> Result<Connection> {
    let open_err = |source| Error::open(path, source);
    if path.is_dir() {
        return Err(Error::UnsupportedSchema {
            path: path.to_path_buf(),
            message: "is a directory, not a database file".into(),
        });
    }
    let exists = path.exists();
    let conn = match mode {
        OpenMode::ReadOnly if !exists => Connection::open_in_memory().map_err(open_err)?,
        OpenMode::ReadOnly => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?,
        OpenMode::ReadWrite if !exists => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "database file does not exist",
                ),
            });
        }
        OpenMode::ReadWrite => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?,
        OpenMode::CreateIfMissing => Connection::open(path).map_err(open_err)?,
    };
    let mut conn = conn;
    crate::db::sqlguard::install(&mut conn)?;
    Ok(conn)
}

/// What [`ApplierBuilder::expect_plan`] keeps of a dry run.
#[derive(Debug, Clone)]
pub(crate) struct ExpectedPlan {
    pub schema_fingerprint: String,
    /// Whether the plan had anything to do.
    pub has_changes: bool,
    /// The findings it showed, by identity.
    pub findings: Vec<FindingKey>,
}

/// A finding's identity for [`ExpectedPlan`]: rule, table, column.
pub(crate) type FindingKey = (crate::validation::Rule, String, Option<String>);

pub(crate) fn finding_key(f: &crate::validation::Finding) -> FindingKey {
    (f.rule, f.table.to_ascii_lowercase(), f.column.clone())
}
