//! [`AuditLog`]: append-only JSON Lines, one object per action.
//!
//! Each entry is serialized to one line and appended with a single
//! `write(2)` on a file opened with `O_APPEND`, so lines from concurrent
//! processes never interleave (on a local file system the kernel appends
//! each write whole). The file is opened per entry: nothing is held open
//! between calls, and a rotated or deleted log is simply recreated.
//!
//! The log is beside the database, where whoever can write the directory
//! can put anything at its name. It is opened with `O_NOFOLLOW` and
//! `O_NONBLOCK`, and appended to only when `fstat` says it is a regular
//! file with one name, owned by the effective uid and writable by nobody
//! else; otherwise the entry is not written and the refusal is returned
//! as the warning, like any other failure to write.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fsguard;
use crate::error::{Error, Result};
use crate::history::MigrationId;

/// Severity of an audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Level {
    /// Normal progress.
    Info,
    /// Something the operator should look at; the run continues.
    Warn,
    /// A failure.
    Error,
}

/// What happened. Serialized in snake_case (`lock_taken`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// A run started (the number of DocTypes given).
    RunStarted,
    /// A plan was computed (DocTypes, steps).
    Plan,
    /// Validation produced findings.
    Validate,
    /// The write lock (`BEGIN IMMEDIATE`) was taken (wait time, attempts).
    LockTaken,
    /// A backup file was written (path, table, rows, sha256).
    BackupWritten,
    /// One forward step executed (SQL, rows).
    Step,
    /// The live schema was verified against the target.
    Verify,
    /// The transaction committed.
    Commit,
    /// Something failed (the error chain).
    Failure,
    /// A transaction, savepoint or migration was rolled back.
    Rollback,
    /// Data was restored from a backup.
    Restore,
    /// A previous run started and never finished (its run marker was left).
    InterruptedRunDetected,
    /// A stale temporary file was removed.
    TempFileRemoved,
    /// A run ended (outcome, duration).
    RunFinished,
    /// Input was accepted as Frappe accepts it, or something else the
    /// operator should know (a warning: code, file, DocType, field, message).
    Warning,
    /// A mutating call to the HTTP API (`doctype-migrate serve`): the
    /// token's name, the method and path, the outcome.
    ApiCall,
    /// A step of an online migration: started (expanded and backfilled),
    /// resumed, completed or aborted.
    Online,
}

impl Action {
    /// The name written to the log (`lock_taken`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::RunStarted => "run_started",
            Action::Plan => "plan",
            Action::Validate => "validate",
            Action::LockTaken => "lock_taken",
            Action::BackupWritten => "backup_written",
            Action::Step => "step",
            Action::Verify => "verify",
            Action::Commit => "commit",
            Action::Failure => "failure",
            Action::Rollback => "rollback",
            Action::Online => "online",
            Action::Restore => "restore",
            Action::InterruptedRunDetected => "interrupted_run_detected",
            Action::TempFileRemoved => "temp_file_removed",
            Action::RunFinished => "run_finished",
            Action::Warning => "warning",
            Action::ApiCall => "api_call",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the audit log.
///
/// Keys, in order: `timestamp` (RFC 3339, UTC, milliseconds), `level`,
/// `action`, `details` (any JSON), then `migration_id` and `doctype` when
/// known, and `pid` (the writing process, so that the entries of
/// concurrent runs can be told apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// When (RFC 3339, UTC, milliseconds).
    pub timestamp: String,
    /// Severity.
    pub level: Level,
    /// What happened.
    pub action: Action,
    /// Action-specific details.
    #[serde(default)]
    pub details: Value,
    /// The migration (history id), when the action concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_id: Option<MigrationId>,
    /// The DocType, when the action concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctype: Option<String>,
    /// The process that wrote the entry.
    #[serde(default)]
    pub pid: u32,
}

/// Where the audit log of the database at `db_path` goes by default:
/// `<db file name>.audit.jsonl` in the same directory
/// (`/srv/app.db` → `/srv/app.db.audit.jsonl`).
pub fn default_path_for(db_path: &Path) -> PathBuf {
    let mut name = db_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "database".into());
    name.push(".audit.jsonl");
    db_path.with_file_name(name)
}

/// An append-only JSON Lines audit log.
///
/// Writing never fails the caller: [`AuditLog::record`] returns a warning
/// text when the entry could not be written (read-only directory, full
/// disk, a path the engine refuses to write: a symbolic link, a FIFO, a
/// file owned by another uid or writable by others, ...), and the log
/// remembers the last one ([`AuditLog::last_error`]) and how many entries
/// were lost ([`AuditLog::failures`]). It never prints.
///
/// ```
/// use doctype_migrate::{Action, AuditLog, Level, read_entries};
/// use serde_json::json;
///
/// let dir = tempfile::tempdir().unwrap();
/// let audit = AuditLog::beside(&dir.path().join("app.db"));
/// audit.record(Action::Commit, Level::Info, None, Some("Note"), json!({"ms": 3}));
/// let entries = read_entries(audit.path().unwrap()).unwrap();
/// assert_eq!(entries[0].action, Action::Commit);
/// assert!(audit.last_error().is_none());
/// ```
#[derive(Debug, Default)]
pub struct AuditLog {
    path: Option<PathBuf>,
    last_error: Mutex<Option<String>>,
    failures: AtomicU64,
}

impl AuditLog {
    /// A log at `path` (created on the first entry, mode 0600 on Unix;
    /// never followed when it is a symbolic link).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditLog {
            path: Some(path.into()),
            ..AuditLog::default()
        }
    }

    /// A log at the default place for the database at `db_path`
    /// ([`default_path_for`]).
    pub fn beside(db_path: &Path) -> Self {
        AuditLog::new(default_path_for(db_path))
    }

    /// A log that writes nothing (every call succeeds).
    pub fn disabled() -> Self {
        AuditLog::default()
    }

    /// The log file, or None when disabled.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends one entry stamped now. Returns a warning text when it could
    /// not be written; never fails and never panics.
    pub fn record(
        &self,
        action: Action,
        level: Level,
        migration_id: Option<MigrationId>,
        doctype: Option<&str>,
        details: Value,
    ) -> Option<String> {
        self.write(&AuditEntry {
            timestamp: crate::history::store::now(),
            level,
            action,
            details,
            migration_id,
            doctype: doctype.map(str::to_string),
            pid: std::process::id(),
        })
    }

    /// Appends a prepared entry (one line, one `write`). Returns a warning
    /// text when it could not be written.
    pub fn write(&self, entry: &AuditEntry) -> Option<String> {
        let path = self.path.as_deref()?;
        let problem = match append_line(path, entry) {
            Ok(()) => return None,
            Err(problem) => problem,
        };
        let warning = format!(
            "audit log {}: could not record {}: {problem}",
            path.display(),
            entry.action
        );
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(warning.clone());
        }
        Some(warning)
    }

    /// The warning of the most recent failed write, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|l| l.clone())
    }

    /// How many entries could not be written.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

fn append_line(path: &Path, entry: &AuditEntry) -> std::result::Result<(), String> {
    let mut line = serde_json::to_vec(entry).map_err(|e| e.to_string())?;
    line.push(b'\n');
    // Never through a symbolic link, never to a FIFO or a device, only to a
    // file of this process's own that nobody else can write (see fsguard).
    let mut file = fsguard::open_log_for_append(path)?;
    // One write call: with O_APPEND the kernel places it whole at the end,
    // so concurrent writers' lines do not interleave. A short write (disk
    // full) is reported rather than completed by a second write that
    // another process's line could split.
    match file.write(&line) {
        Ok(n) if n == line.len() => Ok(()),
        Ok(n) => Err(format!("short write ({n} of {} bytes)", line.len())),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads an audit log. Lines that are not entries (a line torn by a full
/// disk, foreign text) are skipped; a missing file gives no entries. A
/// symbolic link, a FIFO or anything else that is not a regular file with
/// a single name is an error, never followed or opened.
pub fn read_entries(path: &Path) -> Result<Vec<AuditEntry>> {
    let file = match fsguard::open_for_read(path).map_err(fsguard::ReadOpenError::into_io) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut entries = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if let Ok(entry) = serde_json::from_slice::<AuditEntry>(&line) {
            entries.push(entry);
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs::OpenOptions;

    #[test]
    fn default_path_is_beside_the_database() {
        assert_eq!(
            default_path_for(Path::new("/srv/data/app.db")),
            Path::new("/srv/data/app.db.audit.jsonl")
        );
        assert_eq!(
            default_path_for(Path::new("app.db")),
            Path::new("app.db.audit.jsonl")
        );
    }

    #[test]
    fn entries_are_one_line_each_with_keys_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::new(dir.path().join("a.jsonl"));
        let details = json!({"sql": "CREATE TABLE \"x\" (\n a\n);\u{0}", "note": "line\nbreak"});
        assert!(
            audit
                .record(
                    Action::Step,
                    Level::Info,
                    Some(MigrationId(7)),
                    Some("Sales Order"),
                    details.clone()
                )
                .is_none()
        );
        audit.record(Action::LockTaken, Level::Warn, None, None, Value::Null);
        let text = std::fs::read_to_string(audit.path().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first: serde_json::Map<String, Value> = serde_json::from_str(lines[0]).unwrap();
        let keys: Vec<&str> = first.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "action",
                "details",
                "migration_id",
                "doctype",
                "pid"
            ]
        );
        assert_eq!(first["action"], "step");
        assert_eq!(first["level"], "info");
        assert_eq!(first["migration_id"], 7);
        assert_eq!(first["details"], details);
        let second: serde_json::Map<String, Value> = serde_json::from_str(lines[1]).unwrap();
        assert!(!second.contains_key("migration_id") && !second.contains_key("doctype"));
        assert_eq!(second["action"], "lock_taken");
        assert_eq!(second["level"], "warn");
        let entries = read_entries(audit.path().unwrap()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].doctype.as_deref(), Some("Sales Order"));
        assert_eq!(entries[1].pid, std::process::id());
    }

    #[test]
    fn action_names_match_serde() {
        for a in [
            Action::RunStarted,
            Action::Plan,
            Action::Validate,
            Action::LockTaken,
            Action::BackupWritten,
            Action::Step,
            Action::Verify,
            Action::Commit,
            Action::Failure,
            Action::Rollback,
            Action::Restore,
            Action::InterruptedRunDetected,
            Action::TempFileRemoved,
            Action::RunFinished,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
    }

    #[test]
    fn an_unwritable_path_warns_and_never_fails() {
        let dir = tempfile::tempdir().unwrap();
        // A path under a regular file cannot be created, even by root.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let audit = AuditLog::new(blocker.join("audit.jsonl"));
        let warning = audit
            .record(Action::Commit, Level::Info, None, None, json!({}))
            .expect("a warning");
        assert!(warning.contains("could not record commit"), "{warning}");
        assert!(warning.contains("audit.jsonl"), "{warning}");
        audit.record(Action::RunFinished, Level::Info, None, None, json!({}));
        assert_eq!(audit.failures(), 2);
        assert!(audit.last_error().unwrap().contains("run_finished"));
    }

    #[test]
    fn disabled_log_writes_nothing() {
        let audit = AuditLog::disabled();
        assert!(audit.path().is_none());
        assert!(
            audit
                .record(Action::Plan, Level::Info, None, None, Value::Null)
                .is_none()
        );
        assert_eq!(audit.failures(), 0);
    }

    #[test]
    fn torn_and_foreign_lines_are_skipped_when_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let audit = AuditLog::new(&path);
        audit.record(Action::Plan, Level::Info, None, None, json!(1));
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"timestamp\": \"2024\", \"lev\nnot json\n")
            .unwrap();
        audit.record(Action::Commit, Level::Info, None, None, json!(2));
        let actions: Vec<Action> = read_entries(&path)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions, [Action::Plan, Action::Commit]);
        assert!(
            read_entries(&dir.path().join("missing"))
                .unwrap()
                .is_empty()
        );
    }
}
