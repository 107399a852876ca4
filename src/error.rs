//! The library's one error type.
//!
//! Every variant carries the context an operator needs to find the fault (the
//! file, DocType, field, table, migration or SQL statement). Variants that wrap
//! a lower-level error expose it through [`std::error::Error::source`] and do
//! not repeat it in their own `Display` text.

use std::path::PathBuf;

use crate::outcome::{Finding, MigrationId, MigrationStatus};

/// An error followed by its sources, outermost first: the one walk over
/// `source()` chains in the crate (the CLI prints it as `caused by:` lines).
pub fn error_sources<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

/// An error with its sources, as one line (`outer: inner: ...`).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    error_sources(error)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// The plan of a refused rollback, as [`Error::RollbackRefused`] carries
/// it: it dereferences to [`crate::RollbackPlan`] (its `refusals` say why).
///
/// The plan is a type of the rollback layer, above this one; the error
/// holds it behind this wrapper so that the error type imports nothing
/// above it (the wrapper's accessors live with the plan).
pub struct RefusedRollback(pub(crate) Box<dyn RefusedPlan>);

/// What the error needs of a refused rollback's plan; implemented by the
/// rollback layer's plan type.
pub(crate) trait RefusedPlan: std::fmt::Debug + Send + Sync + 'static {
    /// One line: the reasons it was refused.
    fn summary(&self) -> String;
    /// For the typed accessors in the rollback layer.
    fn as_any(&self) -> &dyn std::any::Any;
    /// For [`RefusedRollback::into_plan`].
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

impl RefusedRollback {
    fn summary_line(&self) -> String {
        self.0.summary()
    }
}

impl std::fmt::Debug for RefusedRollback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in doctype-migrate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("I/O error on {path}")]
    Io {
        /// The path being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A DocType JSON document is not valid JSON or has the wrong shape.
    #[error("{origin}: malformed DocType JSON")]
    Json {
        /// Where the JSON came from (a file path, or `<string>`).
        origin: String,
        /// The underlying parse error (with line and column).
        #[source]
        source: serde_json::Error,
    },

    /// A DocType definition is invalid (bad identifier, unknown fieldtype,
    /// duplicate field, conflicting DocTypes, ...).
    #[error("{origin}: DocType {doctype:?}{}: {message}", field.as_ref().map(|f| format!(", field {f:?}")).unwrap_or_default())]
    InvalidDocType {
        /// Where the DocType came from (a file path, or `<string>`/`<code>`).
        origin: String,
        /// The DocType name (may be empty when the name itself is missing).
        doctype: String,
        /// The offending field, when the problem is in a field.
        field: Option<String>,
        /// What is wrong, in words.
        message: String,
    },

    /// Opening or configuring the database failed.
    #[error("cannot open database {path}")]
    Open {
        /// The database path.
        path: PathBuf,
        /// The underlying SQLite error.
        #[source]
        source: Box<rusqlite::Error>,
    },

    /// A SQL statement failed.
    #[error("SQL failed{}: {sql}", context_suffix(doctype, table))]
    Sql {
        /// The DocType being migrated, when known.
        doctype: Option<String>,
        /// The table concerned, when known.
        table: Option<String>,
        /// The statement that failed.
        sql: String,
        /// The underlying SQLite error (boxed to keep `Error` small).
        #[source]
        source: Box<rusqlite::Error>,
    },

    /// The write lock (or, for reads, a shared lock) could not be taken
    /// within the configured bound; or, with `at_commit`, the write lock
    /// was held but COMMIT could not take the exclusive lock it needs
    /// within the bound, and the transaction was rolled back. Nothing was
    /// written.
    #[error("{}", lock_timeout_message(path, *write, *at_commit, *waited_ms, *attempts))]
    LockTimeout {
        /// The database path.
        path: PathBuf,
        /// Whether the engine was waiting to write (`BEGIN IMMEDIATE`, or
        /// COMMIT) or only to read (`plan`, `history`, the reads before
        /// the write lock).
        write: bool,
        /// Whether the wait was at COMMIT: in rollback-journal mode a
        /// commit needs the database to itself, and other connections kept
        /// reading it (a read transaction holds a shared lock until it
        /// ends). The transaction was rolled back: nothing was committed.
        /// In WAL mode readers do not hold a commit up.
        at_commit: bool,
        /// Total time waited, in milliseconds.
        waited_ms: u64,
        /// Number of attempts made.
        attempts: u32,
    },

    /// After executing a migration, the live schema does not match the target.
    #[error("verification failed for DocType {doctype:?} (table {table:?}): {message}")]
    Verification {
        /// The DocType being migrated.
        doctype: String,
        /// The table concerned.
        table: String,
        /// What differs.
        message: String,
    },

    /// A migration was refused because validation reported blocking findings.
    /// Nothing was written.
    #[error(
        "migration refused: {} blocking finding(s); first: {}",
        findings.iter().filter(|f| f.blocking).count(),
        findings.iter().find(|f| f.blocking).map(|f| f.to_string()).unwrap_or_default()
    )]
    Blocked {
        /// Every finding (blocking and not), most severe first.
        findings: Vec<Finding>,
    },

    /// The live schema is no longer the one the expected plan was made on
    /// (see [`ApplierBuilder::expect_plan`](crate::ApplierBuilder::expect_plan)).
    /// Nothing was written.
    #[error("the schema changed since the plan was made: planned on {expected}, now {found}")]
    StalePlan {
        /// The fingerprint the plan was made on.
        expected: String,
        /// The live schema's fingerprint under the write lock.
        found: String,
    },

    /// Validation under the write lock found what the expected plan did
    /// not show: a finding whose rule, table and column it did not list
    /// (changed row counts alone are not new). Nothing was written.
    #[error(
        "validation found {} finding(s) the expected plan did not show, first: {}",
        findings.len(),
        findings.first().map(|f| f.to_string()).unwrap_or_default()
    )]
    NewFindings {
        /// The findings the expected plan did not show.
        findings: Vec<Finding>,
    },

    /// One or more DocTypes failed to migrate (all-or-nothing mode rolled everything back).
    #[error("migration of DocType {doctype:?} failed; nothing was committed")]
    DocTypeFailed {
        /// The DocType that failed.
        doctype: String,
        /// The underlying error.
        #[source]
        source: Box<Error>,
    },

    /// A history status transition that the lifecycle does not allow.
    #[error("migration {id}: status cannot go from {from} to {to}")]
    InvalidTransition {
        /// The migration.
        id: MigrationId,
        /// Current status.
        from: MigrationStatus,
        /// Requested status.
        to: MigrationStatus,
    },

    /// A migration id that does not exist in the history.
    #[error("migration {0} not found in tabMigrationHistory")]
    MigrationNotFound(MigrationId),

    /// The database holds something the engine cannot work with.
    #[error("database {path}: {message}")]
    UnsupportedSchema {
        /// The database path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The DocType asks for a change the engine cannot make safely.
    #[error("DocType {doctype:?} (table {table:?}): {message}")]
    UnsupportedChange {
        /// The DocType.
        doctype: String,
        /// The table.
        table: String,
        /// What cannot be done, and why.
        message: String,
    },

    /// A statement the engine was about to run (from a plan, a history row
    /// or a backup manifest) is not engine SQL: several statements in one
    /// text, a keyword the engine never generates, or something the SQL
    /// authorizer denies (another database file, transaction control, a
    /// pragma, an extension). Nothing of it ran.
    #[error("SQL refused ({reason}): {sql}")]
    UnsafeSql {
        /// The statement text, as found.
        sql: String,
        /// Why it was refused.
        reason: String,
    },

    /// The engine's own tables carry something the engine never creates
    /// (a trigger on the history table, a view reading it): someone with
    /// write access to the database planted it. Nothing was written.
    #[error(
        "{object} on the engine's table {table:?} was not created by the engine; refusing to write (drop it after checking what it does)"
    )]
    EngineTableTampered {
        /// The object, e.g. `trigger "wipe"`.
        object: String,
        /// The engine table it is on.
        table: String,
    },

    /// `PRAGMA quick_check` found a table damaged before the engine would
    /// rebuild it; rebuilding would copy the damage or lose rows. Nothing
    /// was written.
    #[error(
        "table {table:?} of DocType {doctype:?} is damaged ({problems}); refusing to rebuild it: restore it from a backup or repair the database first"
    )]
    CorruptTable {
        /// The DocType.
        doctype: String,
        /// The table.
        table: String,
        /// What `quick_check` reported (first few lines).
        problems: String,
    },

    /// COMMIT failed (the disk is full, an I/O error): the transaction was
    /// rolled back and nothing of it was committed. (A commit that other
    /// connections' reads held up past the lock timeout is
    /// [`Error::LockTimeout`] with `at_commit`.)
    #[error("COMMIT failed; nothing was committed (the transaction was rolled back)")]
    CommitFailed {
        /// The underlying SQLite error.
        #[source]
        source: Box<rusqlite::Error>,
    },

    /// The paths given to load DocTypes from hold none (an empty
    /// directory, JSON of other records): most likely the wrong path.
    #[error("no DocType JSON found in {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NoDocTypes {
        /// The paths given.
        paths: Vec<PathBuf>,
    },

    /// A builder or call was given an invalid option or combination of
    /// options (or the environment it needs is missing). Nothing was done.
    #[error("invalid configuration: {message}")]
    Config {
        /// The option or setting at fault: the builder method or parameter
        /// name (`lock_timeout`, `rename_column`, `dir`, `key_file`,
        /// `columns`, ...), `transaction` for a connection that is inside
        /// a transaction, `os_random` when the operating system's random
        /// source fails.
        option: &'static str,
        /// What is wrong, in words (it names the option too).
        message: String,
    },

    /// The database is open read-only and the call would write it
    /// (`sync_all`, a rollback, a restore): refused before anything was
    /// done. `reason` says how it came to be read-only: an applier built
    /// with [`crate::ApplierBuilder::read_only`] (which is for planning), a
    /// connection lent with `PRAGMA query_only` on, or one SQLite opened
    /// read-only (read-only open flags, a `mode=ro` URI, or a file,
    /// directory or file system this process cannot write). Planning
    /// (`plan`, `dry_run`, `rollback_plan`) works on it.
    #[error(
        "database {path} is read-only ({reason}); nothing was written: apply, rollback and \
         restore need write access (plan and dry run do not)"
    )]
    ReadOnly {
        /// The database path (`:memory:` for a lent in-memory database).
        path: PathBuf,
        /// How the database came to be read-only, in words.
        reason: String,
    },

    /// A rollback was refused by its feasibility check (see
    /// [`crate::Reason`]). Nothing was written.
    #[error("rollback refused: {}", plan.summary_line())]
    RollbackRefused {
        /// The rollback plan, with the reasons it was refused (it
        /// dereferences to [`crate::RollbackPlan`]).
        plan: RefusedRollback,
    },

    /// An online migration is in progress on this database (started and
    /// not yet completed or aborted): a plain apply, a rollback, or another
    /// online migration would change the tables both application versions
    /// are using. Nothing was written.
    #[error(
        "online migration {batch_id} is in progress (DocTypes {}); complete or abort it first (`online complete` / `online abort`)",
        doctypes.join(", ")
    )]
    OnlineInProgress {
        /// The batch id of its expand step.
        batch_id: String,
        /// Its DocTypes.
        doctypes: Vec<String>,
    },

    /// `online resume`, `complete`, `abort` found no online migration in
    /// progress. Nothing was written.
    #[error("no online migration is in progress on this database")]
    NoOnlineMigration,

    /// A change an online migration cannot make while two application
    /// versions share the table; a plain apply can. Nothing was written.
    #[error("DocType {doctype:?} (table {table:?}): not possible online: {reason}")]
    OnlineRefused {
        /// The DocType.
        doctype: String,
        /// Its table.
        table: String,
        /// Why, and what to do instead.
        reason: String,
    },

    /// `online complete` found a table whose backfill has not finished
    /// (run `online resume`). Nothing was written.
    #[error(
        "table {table:?}: the backfill is at rowid {backfilled_to} of {max_rowid}; run `online resume` first"
    )]
    BackfillIncomplete {
        /// The table.
        table: String,
        /// The last rowid backfilled.
        backfilled_to: i64,
        /// The largest rowid at start.
        max_rowid: i64,
    },

    /// `online complete` found rows whose old and new column disagree
    /// (something wrote the table with the triggers off or dropped).
    /// Nothing was written: the online migration is still in progress.
    #[error(
        "table {table:?}: {differing} of {rows} rows differ between column {old:?} and its new name {new:?}"
    )]
    OnlineMismatch {
        /// The table.
        table: String,
        /// The old column name.
        old: String,
        /// The new column name.
        new: String,
        /// Rows in the table.
        rows: i64,
        /// Rows whose two columns differ.
        differing: i64,
    },

    /// A backup file could not be written, read, verified or restored.
    /// [`kind`](BackupErrorKind) says why, for callers that branch on it;
    /// see also [`Error::backup_kind`].
    #[error("backup {path}: {message}")]
    Backup {
        /// The backup file (or the backup directory, or the table, when the
        /// error is about one of those).
        path: PathBuf,
        /// Why, as a stable category.
        kind: BackupErrorKind,
        /// What is wrong, in words.
        message: String,
    },
}

/// Why a backup could not be written, read, verified or restored: the
/// category of an [`Error::Backup`], stable for callers to branch on (the
/// message text is for people and may change). Serialised in `snake_case`
/// (the same text as [`as_str`](Self::as_str)).
///
/// `docs/reference/backup-format.md` ("Errors") lists where each is raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupErrorKind {
    /// The key or passphrase does not open the backup: the key check or
    /// the MAC failed under it, or a key was given for a backup written
    /// with a passphrase (or the other way round).
    WrongKey,
    /// The backup is encrypted and no key or passphrase was given.
    KeyRequired,
    /// A key or passphrase is configured and the backup carries no MAC
    /// (written without a key, or by an older release): refused.
    Unauthenticated,
    /// The bytes are not what was written: a checksum, payload hash, row
    /// count or segment authentication failed (with the right key), or the
    /// manifest is not valid.
    Corrupted,
    /// The file is shorter than its header (or its segments) say.
    Truncated,
    /// The file is not a doctype-migrate backup (wrong magic), or does not
    /// exist where a backup was named.
    NotABackup,
    /// The backup needs something this reader does not support or accept:
    /// a newer format version, another encryption or KDF, or an argon2 cost
    /// above the one the manager writes with.
    Unsupported,
    /// The backup was taken from another database (or cannot be tied to
    /// this one: it or the database records no database id).
    OtherDatabase,
    /// The file is not the one recorded: its header SHA-256 differs from the
    /// one history recorded, or from the one its incremental backup's link
    /// recorded for it (the file was altered or replaced).
    Replaced,
    /// The path or the backup directory is refused: outside the backup
    /// directory, a symbolic link, not a regular file, or a directory that
    /// is a link, writable by everyone or owned by another user.
    UnsafePath,
    /// The incremental chain is broken: a base missing or unreadable, not
    /// matching its increment, a bad link, a cycle or an overlong chain, or
    /// a table whose shape changed since the base.
    Chain,
    /// The live table cannot be backed up or used as asked: it does not
    /// exist, is internal or virtual, hides its rowid, or lacks a named
    /// column.
    Table,
    /// The restore itself was refused: the target table exists or lacks a
    /// column, values would change storage class, foreign keys are on, rows
    /// cannot be matched, the scratch table name is taken.
    Restore,
    /// A new backup could not be encoded (its manifest could not be
    /// serialised, or is too large).
    Write,
    /// Anything else: the operating system's random source or argon2
    /// failed.
    Other,
}

impl BackupErrorKind {
    /// The stable `snake_case` name (`wrong_key`, `corrupted`, ...), as in
    /// JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupErrorKind::WrongKey => "wrong_key",
            BackupErrorKind::KeyRequired => "key_required",
            BackupErrorKind::Unauthenticated => "unauthenticated",
            BackupErrorKind::Corrupted => "corrupted",
            BackupErrorKind::Truncated => "truncated",
            BackupErrorKind::NotABackup => "not_a_backup",
            BackupErrorKind::Unsupported => "unsupported",
            BackupErrorKind::OtherDatabase => "other_database",
            BackupErrorKind::Replaced => "replaced",
            BackupErrorKind::UnsafePath => "unsafe_path",
            BackupErrorKind::Chain => "chain",
            BackupErrorKind::Table => "table",
            BackupErrorKind::Restore => "restore",
            BackupErrorKind::Write => "write",
            BackupErrorKind::Other => "other",
        }
    }
}

impl std::fmt::Display for BackupErrorKind {
    /// The [`as_str`](Self::as_str) name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn lock_timeout_message(
    path: &std::path::Path,
    write: bool,
    at_commit: bool,
    waited_ms: u64,
    attempts: u32,
) -> String {
    let path = path.display();
    if at_commit {
        format!(
            "could not commit to {path}: other connections kept reading it for {waited_ms} ms \
             ({attempts} attempts; a commit in rollback-journal mode waits for readers to \
             finish); nothing was committed (the transaction was rolled back)"
        )
    } else {
        let lock = if write { "write" } else { "read" };
        format!(
            "could not take the {lock} lock on {path} after waiting {waited_ms} ms ({attempts} attempts)"
        )
    }
}

fn context_suffix(doctype: &Option<String>, table: &Option<String>) -> String {
    match (doctype, table) {
        (Some(d), Some(t)) => format!(" (DocType {d:?}, table {t:?})"),
        (Some(d), None) => format!(" (DocType {d:?})"),
        (None, Some(t)) => format!(" (table {t:?})"),
        (None, None) => String::new(),
    }
}

impl Error {
    /// The [`BackupErrorKind`] of a backup error: of this error when it is
    /// an [`Error::Backup`], or of the error a [`Error::DocTypeFailed`]
    /// wraps; `None` for anything else.
    pub fn backup_kind(&self) -> Option<BackupErrorKind> {
        match self {
            Error::Backup { kind, .. } => Some(*kind),
            Error::DocTypeFailed { source, .. } => source.backup_kind(),
            _ => None,
        }
    }

    /// A backup error.
    pub(crate) fn backup(
        path: impl Into<PathBuf>,
        kind: BackupErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Error::Backup {
            path: path.into(),
            kind,
            message: message.into(),
        }
    }

    /// A configuration error about `option`.
    pub(crate) fn config(option: &'static str, message: impl Into<String>) -> Self {
        Error::Config {
            option,
            message: message.into(),
        }
    }

    /// Wraps a rusqlite error with the SQL statement and optional context.
    pub(crate) fn sql(sql: impl Into<String>, source: rusqlite::Error) -> Self {
        Error::Sql {
            doctype: None,
            table: None,
            sql: sql.into(),
            source: Box::new(source),
        }
    }

    /// Wraps a rusqlite error raised while opening the database.
    pub(crate) fn open(path: &std::path::Path, source: rusqlite::Error) -> Self {
        Error::Open {
            path: path.to_path_buf(),
            source: Box::new(source),
        }
    }

    /// Adds DocType/table context to a SQL error that lacks it.
    pub(crate) fn in_context(self, doctype: &str, table: &str) -> Self {
        match self {
            Error::Sql {
                doctype: None,
                table: None,
                sql,
                source,
            } => Error::Sql {
                doctype: Some(doctype.to_string()),
                table: Some(table.to_string()),
                sql,
                source,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_kinds_have_stable_snake_case_names() {
        use BackupErrorKind::*;
        for (kind, name) in [
            (WrongKey, "wrong_key"),
            (KeyRequired, "key_required"),
            (Unauthenticated, "unauthenticated"),
            (Corrupted, "corrupted"),
            (Truncated, "truncated"),
            (NotABackup, "not_a_backup"),
            (Unsupported, "unsupported"),
            (OtherDatabase, "other_database"),
            (Replaced, "replaced"),
            (UnsafePath, "unsafe_path"),
            (Chain, "chain"),
            (Table, "table"),
            (Restore, "restore"),
            (Write, "write"),
            (Other, "other"),
        ] {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
            assert_eq!(serde_json::to_value(kind).unwrap(), name);
        }
    }

    #[test]
    fn backup_kind_is_found_through_a_failed_doctype() {
        let e = Error::backup("b.dmbak", BackupErrorKind::Truncated, "truncated: x");
        assert_eq!(e.to_string(), "backup b.dmbak: truncated: x");
        assert_eq!(e.backup_kind(), Some(BackupErrorKind::Truncated));
        let wrapped = Error::DocTypeFailed {
            doctype: "Item".into(),
            source: Box::new(e),
        };
        assert_eq!(wrapped.backup_kind(), Some(BackupErrorKind::Truncated));
        assert_eq!(Error::MigrationNotFound(MigrationId(1)).backup_kind(), None);
    }

    #[test]
    fn config_errors_name_the_option_and_keep_their_text() {
        let e = Error::config("lock_timeout", "lock_timeout must be greater than zero");
        assert!(matches!(
            e,
            Error::Config {
                option: "lock_timeout",
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "invalid configuration: lock_timeout must be greater than zero"
        );
        assert_eq!(e.backup_kind(), None);
    }
}
