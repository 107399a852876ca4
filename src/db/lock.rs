//! The write lock: `BEGIN IMMEDIATE` with a busy timeout and a bounded retry
//! with backoff, so that concurrent starts queue instead of failing with
//! "database is locked".

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

use crate::error::{Error, Result};

/// Takes the write lock, waiting at most `max_wait` in total.
pub fn begin_immediate(conn: &Connection, path: &Path, max_wait: Duration) -> Result<()> {
    let start = Instant::now();
    let mut attempts = 0u32;
    let mut backoff = Duration::from_millis(5);
    loop {
        attempts += 1;
        match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => return Ok(()),
            Err(e) if is_busy(&e) && start.elapsed() < max_wait => {
                let left = max_wait.saturating_sub(start.elapsed());
                thread::sleep(backoff.min(left));
                backoff = (backoff * 2).min(Duration::from_millis(250));
            }
            Err(e) if is_busy(&e) => {
                return Err(Error::LockTimeout {
                    path: path.to_path_buf(),
                    write: true,
                    at_commit: false,
                    waited_ms: start.elapsed().as_millis() as u64,
                    attempts,
                });
            }
            Err(e) => return Err(Error::sql("BEGIN IMMEDIATE", e)),
        }
    }
}

/// Runs `op`, retrying it with the same backoff as [`begin_immediate`]
/// while it fails because the database is busy, for at most `max_wait` in
/// total; past the bound the error is [`Error::LockTimeout`]. For the reads
/// before the write lock (open, plan, validate): in rollback-journal mode a
/// writer holding EXCLUSIVE (a long rebuild that spilled its cache) blocks
/// readers longer than one busy timeout, and concurrent starts must wait for
/// it rather than fail with "database is locked".
pub fn retry_busy<T>(
    path: &Path,
    max_wait: Duration,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    let start = Instant::now();
    let mut attempts = 0u32;
    let mut backoff = Duration::from_millis(5);
    loop {
        attempts += 1;
        match op() {
            Err(e) if error_is_busy(&e) && start.elapsed() < max_wait => {
                let left = max_wait.saturating_sub(start.elapsed());
                thread::sleep(backoff.min(left));
                backoff = (backoff * 2).min(Duration::from_millis(250));
            }
            Err(e) if error_is_busy(&e) => {
                return Err(Error::LockTimeout {
                    path: path.to_path_buf(),
                    write: false,
                    at_commit: false,
                    waited_ms: start.elapsed().as_millis() as u64,
                    attempts,
                });
            }
            other => return other,
        }
    }
}

/// Runs `read` inside one read transaction, so that everything it reads
/// comes from one snapshot of the database (a plan and its validation must
/// see the same schema: another process may commit between two
/// autocommit reads). The transaction is ended before returning.
pub fn read_snapshot<T>(conn: &Connection, read: impl FnOnce() -> Result<T>) -> Result<T> {
    conn.execute_batch("BEGIN DEFERRED")
        .map_err(|e| Error::sql("BEGIN DEFERRED", e))?;
    let guard = TxGuard::new(conn);
    let value = read()?;
    guard.rollback()?;
    Ok(value)
}

/// Whether a library error was caused by SQLITE_BUSY or SQLITE_LOCKED.
pub fn error_is_busy(e: &Error) -> bool {
    match e {
        Error::Sql { source, .. } | Error::Open { source, .. } => is_busy(source),
        Error::DocTypeFailed { source, .. } => error_is_busy(source),
        _ => false,
    }
}

/// Whether an error is SQLITE_BUSY or SQLITE_LOCKED.
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked)
    )
}

/// Why this connection cannot write its main database, or `None` when it
/// can: SQLite opened it read-only (read-only open flags, a `mode=ro` URI,
/// or a file, directory or file system the process cannot write, which
/// SQLite opens read-only without an error), or `PRAGMA query_only` is on.
/// `BEGIN IMMEDIATE` succeeds on such a connection and the transaction
/// fails only at its first write, so whoever is about to write asks first.
pub fn read_only_reason(conn: &Connection) -> Result<Option<&'static str>> {
    let read_only = conn
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| Error::sql("sqlite3_db_readonly", e))?;
    if read_only {
        return Ok(Some(
            "SQLite opened it read-only: read-only open flags or a mode=ro URI, or a file, \
             directory or file system this process cannot write",
        ));
    }
    let query_only: bool = conn
        .query_row("PRAGMA query_only", [], |r| r.get(0))
        .map_err(|e| Error::sql("PRAGMA query_only", e))?;
    Ok(query_only.then_some("the connection has PRAGMA query_only on"))
}

/// Whether `PRAGMA foreign_keys` is on for this connection.
pub fn foreign_keys_enabled(conn: &Connection) -> Result<bool> {
    use rusqlite::OptionalExtension;
    conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .optional()
        .map(|v| v.unwrap_or(false))
        .map_err(|e| Error::sql("PRAGMA foreign_keys", e))
}

/// After SQLite rolled a transaction back by itself (a full disk, an I/O
/// error), the rollback may be unfinished: the original pages wait in a hot
/// journal and the file still holds the failed run's pages. One read makes
/// the pager play the journal back now, so the file is the one from before
/// the run when the engine returns, not only when someone next opens it.
/// Best effort: if even that fails, the next open does it.
pub(crate) fn recover_rolled_back(conn: &Connection) {
    if conn.is_autocommit() {
        let _ = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        });
    }
}

/// Rolls back an open transaction when dropped, unless committed.
pub struct TxGuard<'c> {
    conn: &'c Connection,
    done: bool,
}

impl<'c> TxGuard<'c> {
    /// Guards the transaction the caller has just begun.
    pub fn new(conn: &'c Connection) -> Self {
        TxGuard { conn, done: false }
    }

    /// Commits, waiting at most `max_wait` in total for the exclusive lock
    /// COMMIT needs. In rollback-journal mode a commit must wait until no
    /// other connection holds a shared lock (an open read transaction); a
    /// COMMIT that fails with SQLITE_BUSY leaves the transaction open and
    /// may be retried, so it is, with the backoff of [`begin_immediate`]
    /// (meanwhile SQLite's PENDING lock lets no new reader in). Past the
    /// bound the transaction is rolled back and the error is
    /// [`Error::LockTimeout`] with `at_commit`. When COMMIT fails otherwise
    /// (the disk is full, an I/O error), the transaction is rolled back if
    /// SQLite left it open, and the error ([`Error::CommitFailed`]) says
    /// that nothing was committed.
    pub fn commit(mut self, path: &Path, max_wait: Duration) -> Result<()> {
        self.done = true;
        let start = Instant::now();
        let mut attempts = 0u32;
        let mut backoff = Duration::from_millis(5);
        loop {
            attempts += 1;
            let e = match self.conn.execute_batch("COMMIT") {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let open = !self.conn.is_autocommit();
            if is_busy(&e) && open && start.elapsed() < max_wait {
                let left = max_wait.saturating_sub(start.elapsed());
                thread::sleep(backoff.min(left));
                backoff = (backoff * 2).min(Duration::from_millis(250));
                continue;
            }
            if open {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            recover_rolled_back(self.conn);
            if is_busy(&e) {
                return Err(Error::LockTimeout {
                    path: path.to_path_buf(),
                    write: true,
                    at_commit: true,
                    waited_ms: start.elapsed().as_millis() as u64,
                    attempts,
                });
            }
            return Err(Error::CommitFailed {
                source: Box::new(e),
            });
        }
    }

    /// Rolls back now.
    pub fn rollback(mut self) -> Result<()> {
        self.done = true;
        // SQLite may have rolled the transaction back itself (a full disk,
        // an I/O error): nothing is left to roll back then.
        if self.conn.is_autocommit() {
            recover_rolled_back(self.conn);
            return Ok(());
        }
        self.conn
            .execute_batch("ROLLBACK")
            .map_err(|e| Error::sql("ROLLBACK", e))
    }
}

impl Drop for TxGuard<'_> {
    fn drop(&mut self) {
        if !self.done && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        if !self.done {
            recover_rolled_back(self.conn);
        }
    }
}

/// Turns `PRAGMA foreign_keys` off for the guard's lifetime and restores it
/// after. Must be created outside any transaction: inside one, the pragma is
/// a no-op (the lesson drizzle-kit learned by wiping child tables).
pub struct ForeignKeysOff<'c> {
    conn: &'c Connection,
    restore: bool,
}

impl<'c> ForeignKeysOff<'c> {
    /// Switches foreign keys off if they are on.
    pub fn new(conn: &'c Connection) -> Result<Self> {
        let on = foreign_keys_enabled(conn)?;
        if on {
            debug_assert!(
                conn.is_autocommit(),
                "foreign_keys cannot change inside a transaction"
            );
            conn.execute_batch("PRAGMA foreign_keys = OFF")
                .map_err(|e| Error::sql("PRAGMA foreign_keys = OFF", e))?;
        }
        Ok(ForeignKeysOff { conn, restore: on })
    }

    /// Whether foreign keys were on before (and so must be checked before commit).
    pub fn were_on(&self) -> bool {
        self.restore
    }
}

impl Drop for ForeignKeysOff<'_> {
    fn drop(&mut self) {
        if self.restore {
            let _ = self.conn.execute_batch("PRAGMA foreign_keys = ON");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A COMMIT that fails and leaves the transaction open (here a
    /// deferred foreign-key violation; a full disk behaves alike) is rolled
    /// back, and the error says nothing was committed.
    #[test]
    fn a_failed_commit_rolls_back_and_says_nothing_was_committed() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("a.db")).unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE p (id INTEGER PRIMARY KEY);
             CREATE TABLE c (pid INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .unwrap();
        conn.execute_batch("BEGIN; INSERT INTO c VALUES (7);")
            .unwrap();
        let err = TxGuard::new(&conn)
            .commit(&dir.path().join("a.db"), Duration::from_secs(1))
            .unwrap_err();
        assert!(matches!(err, Error::CommitFailed { .. }), "{err:?}");
        assert!(err.to_string().contains("nothing was committed"), "{err}");
        assert!(conn.is_autocommit(), "the transaction was rolled back");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM c", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
