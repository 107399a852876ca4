//! The integrity check of the tables a run will rebuild, on a second
//! connection in a background thread.
//!
//! A rebuild reads every row and writes them again: on a table that is
//! already damaged it would make things worse, so each table is checked
//! with `PRAGMA quick_check(table)` before its rebuild. On a large table
//! that check costs about a quarter of the rebuild itself (it reads the
//! table and its indexes once more). It needs nothing the run writes, so
//! it runs on a read-only connection of its own from the moment the run
//! holds the write lock, while the run validates and takes its backups.
//!
//! The checker must be finished before the first rebuild copies rows: in
//! rollback-journal mode the checker's read lock would stop the writer
//! from spilling its page cache to the file, and the cache would grow with
//! the table. The run therefore waits for every check
//! ([`TableChecks::finish`]) before its first step. Where no second connection can read the
//! database (an in-memory or temporary database, a connection in exclusive
//! locking mode), the check runs on the run's own connection as before.

use std::collections::HashMap;
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;

use rusqlite::{Connection, InterruptHandle, OpenFlags};

use crate::error::{Error, Result};
use crate::ident::quote;

/// What `quick_check` said about one table: `Ok(())`, or its first few
/// problem lines.
type Verdict = std::result::Result<(), Vec<String>>;

/// Checks running (or done) in the background for one run.
#[derive(Default)]
pub struct TableChecks {
    inner: Mutex<Inner>,
    interrupt: Option<InterruptHandle>,
    /// The database is in WAL mode (normal locking) and the checks run in
    /// the background: the writer never needs the reader gone, so a
    /// rebuild may copy while its table is still being checked.
    overlaps_writes: bool,
}

#[derive(Default)]
struct Inner {
    rx: Option<mpsc::Receiver<(String, Option<Verdict>)>>,
    thread: Option<JoinHandle<()>>,
    done: HashMap<String, Option<Verdict>>,
}

impl std::fmt::Debug for TableChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableChecks").finish_non_exhaustive()
    }
}

impl TableChecks {
    /// Starts checking `tables` on a read-only connection to the database
    /// `conn` is open on. Nothing starts for an empty list or a database
    /// without a file; those tables are then checked on `conn` itself.
    pub fn start(conn: &Connection, tables: Vec<String>) -> Self {
        let path = match conn.path() {
            Some(p) if !p.is_empty() && !tables.is_empty() => p.to_owned(),
            _ => return TableChecks::default(),
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let Ok(reader) = Connection::open_with_flags(&path, flags) else {
            return TableChecks::default();
        };
        // Busy (a connection in exclusive locking mode): give up at once
        // and let the run check on its own connection.
        if reader.busy_timeout(std::time::Duration::ZERO).is_err() {
            return TableChecks::default();
        }
        let interrupt = reader.get_interrupt_handle();
        let pragma = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .unwrap_or_default()
        };
        let overlaps_writes = pragma("journal_mode").eq_ignore_ascii_case("wal")
            && pragma("locking_mode").eq_ignore_ascii_case("normal");
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("dm-table-check".into())
            .spawn(move || {
                for table in tables {
                    let verdict = check_on(&reader, &table).ok();
                    if tx.send((table, verdict)).is_err() {
                        return;
                    }
                }
            });
        match spawned {
            Ok(thread) => TableChecks {
                inner: Mutex::new(Inner {
                    rx: Some(rx),
                    thread: Some(thread),
                    done: HashMap::new(),
                }),
                interrupt: Some(interrupt),
                overlaps_writes,
            },
            Err(_) => TableChecks::default(),
        }
    }

    /// Waits until the background checks are done and their connection is
    /// closed. Called before a run's first step writes: from then on the
    /// run must be free to take the database's exclusive lock.
    pub fn finish(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = inner.rx.take() {
            for (t, verdict) in rx {
                inner.done.insert(t, verdict);
            }
        }
        if let Some(h) = inner.thread.take() {
            let _ = h.join();
        }
    }

    /// Whether a rebuild may run its steps before its table's verdict is
    /// in (WAL mode): it then asks [`result_after_steps`](Self::result_after_steps)
    /// before its savepoint is released.
    pub fn overlaps_writes(&self) -> bool {
        self.overlaps_writes
    }

    /// The background verdict on `table`, asked after the rebuild's steps
    /// ran: the table it names is gone from the run's view, so there is no
    /// checking it on the run's connection any more. A check that could
    /// not run is an error (the DocType rolls back), never a pass.
    pub fn result_after_steps(&self, table: &str) -> Result<()> {
        match self.background_verdict(table) {
            Some(v) => v.map_err(|lines| problems(table, lines)),
            None => Err(problems(
                table,
                vec!["the integrity check could not run on a second connection".into()],
            )),
        }
    }

    /// The verdict on `table` (after [`finish`](Self::finish)), checked
    /// on `conn` where the background did not (it was not asked to, or its
    /// connection failed: busy, unreadable).
    pub fn result(&self, conn: &Connection, table: &str) -> Result<()> {
        let verdict = match self.background_verdict(table) {
            Some(v) => v,
            None => check_on(conn, table)?,
        };
        verdict.map_err(|lines| problems(table, lines))
    }

    /// Waits for the background checks; the verdict on `table`, if the
    /// background gave one.
    fn background_verdict(&self, table: &str) -> Option<Verdict> {
        self.finish();
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.done.get(table).cloned().flatten()
    }
}

impl Drop for TableChecks {
    /// A run that ends early (refused, failed) does not wait for a long
    /// check: it is interrupted.
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        if let (Some(i), Some(_)) = (&self.interrupt, &inner.thread) {
            i.interrupt();
        }
        drop(inner.rx.take());
        if let Some(h) = inner.thread.take() {
            let _ = h.join();
        }
    }
}

/// `PRAGMA quick_check(table)`: the table and its indexes are readable
/// and consistent (no full cross-check of index contents; that is
/// `integrity_check`, several times slower).
fn check_on(conn: &Connection, table: &str) -> Result<Verdict> {
    let sql = format!("PRAGMA quick_check({})", quote(table));
    let mut stmt = conn.prepare(&sql).map_err(|e| Error::sql(&sql, e))?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.take(5).collect())
        .map_err(|e| Error::sql(&sql, e))?;
    if lines.len() == 1 && lines[0] == "ok" {
        Ok(Ok(()))
    } else {
        Ok(Err(lines))
    }
}

/// The error for a damaged table; the DocType is added by the caller.
fn problems(table: &str, lines: Vec<String>) -> Error {
    Error::CorruptTable {
        doctype: String::new(),
        table: table.to_owned(),
        problems: lines
            .iter()
            .map(|p| crate::db::sqlguard::printable(p))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file database with one table `t`; with `damaged`, a NULL under
    /// a NOT NULL its schema gained afterwards (quick_check reports it).
    fn db(dir: &std::path::Path, damaged: bool) -> Connection {
        let conn = Connection::open(dir.join("t.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT); INSERT INTO t VALUES ('x'), (NULL);")
            .unwrap();
        if damaged {
            conn.execute_batch(
                "PRAGMA writable_schema = ON;
                 UPDATE sqlite_schema SET sql = 'CREATE TABLE t (a TEXT NOT NULL)' WHERE name = 't';
                 PRAGMA writable_schema = OFF;",
            )
            .unwrap();
        }
        Connection::open(dir.join("t.db")).unwrap()
    }

    fn is_damaged(r: Result<()>) -> bool {
        matches!(r, Err(Error::CorruptTable { ref table, .. }) if table == "t")
    }

    #[test]
    fn the_background_check_finds_a_damaged_table() {
        let dir = tempfile::tempdir().unwrap();
        let conn = db(dir.path(), true);
        let checks = TableChecks::start(&conn, vec!["t".into()]);
        assert!(checks.interrupt.is_some(), "a background check started");
        checks.finish();
        let done = checks.inner.lock().unwrap().done.get("t").cloned();
        assert!(matches!(done, Some(Some(Err(_)))), "{done:?}");
        assert!(is_damaged(checks.result(&conn, "t")));
    }

    #[test]
    fn a_sound_table_passes_and_a_table_not_asked_for_is_checked_inline() {
        let dir = tempfile::tempdir().unwrap();
        let conn = db(dir.path(), false);
        let checks = TableChecks::start(&conn, vec!["t".into()]);
        assert!(checks.result(&conn, "t").is_ok());
        // Not in the list: checked on `conn` (and a missing table is an
        // error, not a pass).
        assert!(checks.result(&conn, "nope").is_err());
    }

    #[test]
    fn a_database_no_second_connection_can_read_is_checked_on_the_run_connection() {
        let dir = tempfile::tempdir().unwrap();
        let conn = db(dir.path(), true);
        // The run's connection holds the exclusive lock: the background
        // reader is busy at once and gives up.
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
            .unwrap();
        let checks = TableChecks::start(&conn, vec!["t".into()]);
        checks.finish();
        let done = checks.inner.lock().unwrap().done.get("t").cloned();
        assert!(matches!(done, Some(None)), "background gave up: {done:?}");
        assert!(is_damaged(checks.result(&conn, "t")));
        // In memory: nothing starts, the check runs inline.
        let mem = Connection::open_in_memory().unwrap();
        mem.execute_batch("CREATE TABLE t (a)").unwrap();
        let checks = TableChecks::start(&mem, vec!["t".into()]);
        assert!(checks.interrupt.is_none());
        assert!(checks.result(&mem, "t").is_ok());
    }

    #[test]
    fn only_a_wal_database_in_normal_locking_lets_writes_overlap_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let conn = db(dir.path(), false);
        assert!(!TableChecks::start(&conn, vec!["t".into()]).overlaps_writes());
        conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
        let checks = TableChecks::start(&conn, vec!["t".into()]);
        assert!(checks.overlaps_writes());
        assert!(checks.result_after_steps("t").is_ok());
        // Not among the tables checked: an error, never a pass.
        assert!(checks.result_after_steps("other").is_err());
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE;")
            .unwrap();
        assert!(!TableChecks::start(&conn, vec!["t".into()]).overlaps_writes());
    }

    #[test]
    fn dropped_checks_leave_the_database_free_for_the_exclusive_lock() {
        let dir = tempfile::tempdir().unwrap();
        let conn = db(dir.path(), false);
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
             INSERT INTO t SELECT printf('%0100d', i) FROM n;",
        )
        .unwrap();
        let checks = TableChecks::start(&conn, vec!["t".into(); 20]);
        drop(checks); // interrupted and joined: its read lock is gone
        conn.busy_timeout(std::time::Duration::ZERO).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;").unwrap();
    }
}
