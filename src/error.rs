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
    /// within the configured bound.
    #[error(
        "could not take the {} lock on {path} after waiting {waited_ms} ms ({attempts} attempts)",
        if *write { "write" } else { "read" }
    )]
    LockTimeout {
        /// The database path.
        path: PathBuf,
        /// Whether the engine was waiting to write (`BEGIN IMMEDIATE`) or
        /// only to read (`plan`, `history`, the reads before the write lock).
        write: bool,
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
    /// rolled back and nothing of it was committed.
    #[error("COMMIT failed; nothing was committed (the transaction was rolled back)")]
    CommitFailed {
        /// The underlying SQLite error.
        #[source]
        source: Box<rusqlite::Error>,
    },

    /// A builder was given an invalid combination of options.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A rollback was refused by its feasibility check (see
    /// [`crate::Reason`]). Nothing was written.
    #[error("rollback refused: {}", plan.summary_line())]
    RollbackRefused {
        /// The rollback plan, with the reasons it was refused (it
        /// dereferences to [`crate::RollbackPlan`]).
        plan: RefusedRollback,
    },

    /// A backup file could not be written, read, verified or restored.
    #[error("backup {path}: {message}")]
    Backup {
        /// The backup file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
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
