//! The run's events: one [`RunEvent`] per happening of a `sync_all` run,
//! sent to every [`RunObserver`]. The audit log is one observer (it turns
//! events into its JSON lines), the CLI's progress display another, and a
//! caller may add its own ([`crate::ApplierBuilder::observer`]).
//!
//! Observers are called on the migrating thread, in order, while the run
//! holds the write lock: they must be quick and must not touch the
//! database. They cannot fail the run.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::doctype::Warning;
use crate::history::MigrationId;

/// A phase of a migration run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Planning (diff and SQL generation).
    Plan,
    /// Validating the plan against the data.
    Validate,
    /// Waiting for and taking the write lock.
    Lock,
    /// Writing backups.
    Backup,
    /// Running the steps.
    Execute,
    /// Checking the result.
    Verify,
    /// Committing.
    Commit,
}

impl Phase {
    /// The phase's lowercase name, as in JSON (`plan`, `validate`, `lock`,
    /// `backup`, `execute`, `verify`, `commit`).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Plan => "plan",
            Phase::Validate => "validate",
            Phase::Lock => "lock",
            Phase::Backup => "backup",
            Phase::Execute => "execute",
            Phase::Verify => "verify",
            Phase::Commit => "commit",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a run marker records about the run that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunInfo {
    /// `<pid>-<nanoseconds since the epoch>`, unique per run.
    pub run_id: String,
    /// The process that ran.
    pub pid: u32,
    /// When the run started (RFC 3339, UTC).
    pub started: String,
    /// The database path as given to the run.
    pub database: String,
    /// The doctype-migrate version that ran.
    pub version: String,
}

/// Why a transaction or a DocType's savepoint was rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RollbackCause<'a> {
    /// Another process applied the same changes while this one waited for
    /// the lock: nothing is left to do.
    NothingLeft,
    /// Validation found blocking findings.
    Blocked,
    /// A DocType failed; in all-or-nothing mode the whole transaction goes.
    DocTypeFailed(&'a str),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum RunOutcome<'a> {
    /// Nothing to do (`fast_path`: confirmed from fingerprints alone).
    UpToDate {
        /// Confirmed without introspecting a table.
        fast_path: bool,
    },
    /// The transaction committed.
    Committed {
        /// The batch id of the run's history rows.
        batch_id: Option<&'a str>,
        /// History rows written (completed and failed).
        migrations: usize,
        /// DocTypes recorded as failed (continue-on-error).
        failed: usize,
    },
    /// The run returned an error; nothing was committed.
    Failed {
        /// The error, with its causes.
        error: &'a str,
    },
}

/// Something that happened during a `sync_all` run, in the order it
/// happened. Each happening is sent once, to every observer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RunEvent<'a> {
    /// The run starts (before anything is read).
    RunStarted {
        /// DocTypes given.
        doctypes: usize,
    },
    /// The input holds something accepted as Frappe accepts it.
    InputAccepted {
        /// The warning.
        warning: &'a Warning,
    },
    /// An earlier run of this database started and never finished (its
    /// marker was left behind). Its transaction was rolled back by SQLite.
    InterruptedRun {
        /// The marker file.
        marker: &'a Path,
        /// What the marker says, when it could be read.
        run: Option<&'a RunInfo>,
    },
    /// Housekeeping did not work (a run marker not written, temporary files
    /// or orphaned backups not removed). The run goes on.
    HousekeepingFailed {
        /// What was being done: `run_marker`, `temp_cleanup` or
        /// `backup_cleanup`.
        task: &'static str,
        /// What went wrong.
        message: &'a str,
    },
    /// A file a killed run left behind was removed.
    LeftoverRemoved {
        /// The file.
        path: &'a Path,
        /// Why it was removed, when it was not a temporary file.
        reason: Option<&'static str>,
    },
    /// A phase starts (for one DocType, or for the whole batch).
    Phase {
        /// The DocType, when the phase is per DocType.
        doctype: Option<&'a str>,
        /// The phase.
        phase: Phase,
    },
    /// The plan was made (only when something is pending).
    Planned {
        /// DocTypes given.
        doctypes: usize,
        /// The DocTypes with changes, in the order they will run.
        pending: &'a [&'a str],
        /// Whether any table is rebuilt.
        rebuilds: bool,
    },
    /// The write lock was taken.
    LockTaken {
        /// How long it took, in milliseconds.
        waited_ms: f64,
    },
    /// The plan that will run was validated.
    Validated {
        /// Findings in all.
        findings: usize,
        /// Blocking findings (the run is refused when there are any).
        blocking: usize,
        /// How long it took, in milliseconds.
        ms: f64,
    },
    /// A backup file was written (and verified, if asked).
    BackupWritten {
        /// The migration it protects.
        migration: MigrationId,
        /// The DocType.
        doctype: &'a str,
        /// The table backed up.
        table: &'a str,
        /// The file.
        path: &'a Path,
        /// Rows in the table.
        rows: u64,
        /// Its size on disk.
        bytes: u64,
        /// SHA-256 of the payload, hex.
        sha256: &'a str,
        /// Whether it was read back and checked.
        verified: bool,
    },
    /// One statement of a DocType's plan ran.
    StepExecuted {
        /// The migration.
        migration: MigrationId,
        /// The DocType.
        doctype: &'a str,
        /// The statement.
        sql: &'a str,
        /// Rows copied, for a rebuild's copy.
        rows: Option<u64>,
        /// How long it took, in milliseconds.
        ms: f64,
    },
    /// Rows copied so far by a rebuild. `total` is an estimate until the
    /// last event, where `copied == total` is the exact row count.
    RowsCopied {
        /// The DocType.
        doctype: &'a str,
        /// The table being rebuilt.
        table: &'a str,
        /// Rows copied so far.
        copied: u64,
        /// Rows expected in all.
        total: u64,
    },
    /// One range of an online migration's backfill committed.
    Backfilled {
        /// The DocType.
        doctype: &'a str,
        /// Its table.
        table: &'a str,
        /// Every rowid up to this one is backfilled.
        rowid: i64,
        /// The largest rowid when the online migration started.
        max_rowid: i64,
        /// Rows whose twin this range wrote.
        rows: u64,
        /// How long the range held the write lock, in milliseconds.
        ms: f64,
    },
    /// A DocType's table was read back and matches its target.
    Verified {
        /// The migration.
        migration: MigrationId,
        /// The DocType.
        doctype: &'a str,
        /// The table.
        table: &'a str,
        /// How long verification took, in milliseconds.
        ms: f64,
    },
    /// A DocType failed; its savepoint is rolled back next.
    DocTypeFailed {
        /// The DocType.
        doctype: &'a str,
        /// Its table.
        table: &'a str,
        /// The error, with its causes.
        error: &'a str,
    },
    /// A DocType's savepoint was rolled back: nothing of it remains.
    SavepointRolledBack {
        /// The DocType.
        doctype: &'a str,
        /// Its table.
        table: &'a str,
    },
    /// The run's transaction was rolled back: nothing was written.
    TransactionRolledBack {
        /// Why.
        cause: RollbackCause<'a>,
    },
    /// The transaction committed.
    Committed {
        /// The batch id of the run's history rows.
        batch_id: &'a str,
        /// History rows written.
        migrations: usize,
    },
    /// The run ended (always the last event of a run).
    RunFinished {
        /// How.
        outcome: RunOutcome<'a>,
        /// The whole run, in milliseconds.
        ms: f64,
    },
}

/// Receives the events of a run. Called on the migrating thread while the
/// run holds the write lock: keep it quick, and do not use the database.
pub trait RunObserver: Send + Sync {
    /// One event.
    fn on_event(&self, event: &RunEvent<'_>);

    /// Whether this observer wants [`RunEvent::RowsCopied`]. Counting rows
    /// as a rebuild copies them costs a little; it is done only when some
    /// observer wants them.
    fn wants_rows_copied(&self) -> bool {
        true
    }
}

/// The observers of a run, in the order they hear each event.
#[derive(Clone, Default)]
pub(crate) struct Observers(Vec<Arc<dyn RunObserver>>);

impl Observers {
    /// Adds an observer; it hears every event after those added before it.
    pub(crate) fn push(&mut self, observer: Arc<dyn RunObserver>) {
        self.0.push(observer);
    }

    /// Adds every observer of `other`, after these.
    pub(crate) fn extend(&mut self, other: &Observers) {
        self.0.extend(other.0.iter().cloned());
    }

    /// Sends an event to every observer.
    pub(crate) fn emit(&self, event: RunEvent<'_>) {
        for o in &self.0 {
            o.on_event(&event);
        }
    }

    /// Whether any observer wants [`RunEvent::RowsCopied`].
    pub(crate) fn want_rows_copied(&self) -> bool {
        self.0.iter().any(|o| o.wants_rows_copied())
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Observers({})", self.0.len())
    }
}
