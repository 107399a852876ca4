//! Progress reporting and per-migration metrics.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

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

/// Something that happened during a run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProgressEvent<'a> {
    /// A phase starts (for one DocType, or for the whole batch).
    Phase {
        /// The DocType, when the phase is per DocType.
        doctype: Option<&'a str>,
        /// The phase.
        phase: Phase,
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
    /// A backup file was written.
    BackupWritten {
        /// The DocType.
        doctype: &'a str,
        /// The table backed up.
        table: &'a str,
        /// Its size on disk.
        bytes: u64,
        /// The file.
        path: &'a Path,
    },
}

/// Receives progress events; called from the migrating thread, so keep it quick.
pub trait ProgressObserver: Send + Sync {
    /// One event.
    fn on_event(&self, event: &ProgressEvent<'_>);
}

/// An optional shared observer.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<dyn ProgressObserver>>);

impl Progress {
    /// Reports to `observer`.
    pub fn new(observer: Arc<dyn ProgressObserver>) -> Self {
        Progress(Some(observer))
    }

    /// Sends an event, if anyone listens.
    pub fn emit(&self, event: ProgressEvent<'_>) {
        if let Some(o) = &self.0 {
            o.on_event(&event);
        }
    }

    /// Whether anyone listens.
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(observer)"
        } else {
            "Progress(none)"
        })
    }
}

/// Where one migration spent its time, and how much it moved. Stored with
/// the history row (`metrics`, JSON) and shown by `history`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Validating the batch this migration belongs to, in milliseconds.
    pub validate_ms: f64,
    /// Writing and verifying backups.
    pub backup_ms: f64,
    /// Running the steps.
    pub execute_ms: f64,
    /// Foreign-key check and verification.
    pub verify_ms: f64,
    /// Rows copied by rebuilds.
    pub rows_copied: u64,
    /// Bytes of backup files written.
    pub bytes_backed_up: u64,
}
