//! Journal modes and read-only databases.
//!
//! - **WAL.** Everything the engine does (a native change, a rebuild with a
//!   backup, a rollback that restores from it, `backup restore`, a failed
//!   all-or-nothing run) ends on a WAL database exactly as on a
//!   rollback-journal one, and the database is still in WAL mode after:
//!   the engine never changes the caller's journal mode. A WAL reader reads
//!   the old, complete table while a long rebuild runs.
//! - **Rollback journal.** A reader holding the database (an open read
//!   transaction) keeps a commit from taking its exclusive lock: the commit
//!   waits for it within `lock_timeout`, then gives up with
//!   `Error::LockTimeout` naming the commit, having written nothing.
//! - **Read-only.** A database the applier can only read (built with
//!   `read_only(true)`, a lent connection opened read-only or with
//!   `query_only`, a file on a read-only file system) is refused by
//!   `sync_all`, rollbacks and restores with `Error::ReadOnly` before any
//!   work; planning still works.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doctype_migrate::{
    DocType, Error, MigrationApplier, RestoreTarget, RollbackOptions, RunEvent, RunObserver,
    StepKind,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value as Json;

use crate::common::*;

const ITEM_V1: &str = r#"{"name": "Item", "fields": [
    {"fieldname": "title", "fieldtype": "Data"},
    {"fieldname": "qty", "fieldtype": "Data"}
]}"#;

/// V1 plus a nullable column: a native `ALTER TABLE ... ADD COLUMN`.
const ITEM_V2: &str = r#"{"name": "Item", "fields": [
    {"fieldname": "title", "fieldtype": "Data"},
    {"fieldname": "qty", "fieldtype": "Data"},
    {"fieldname": "note", "fieldtype": "Data"}
]}"#;

/// V2 with `qty` an Int: a rebuild that converts '0012' to 12 (DL003, so
/// only with data loss allowed), `qty` backed up first.
const ITEM_V3: &str = r#"{"name": "Item", "fields": [
    {"fieldname": "title", "fieldtype": "Data"},
    {"fieldname": "qty", "fieldtype": "Int"},
    {"fieldname": "note", "fieldtype": "Data"}
]}"#;

const ITEM_ROWS: &str = "INSERT INTO \"tabItem\" (name, title, qty) VALUES
    ('I1', 'Bolt', '0012'), ('I2', 'Nut', '7'), ('I3', 'Washer', NULL);";

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doctype-migrate"))
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn journal_mode(conn: &Connection) -> String {
    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

/// Switches the database file to WAL (a persistent property of the file).
fn make_wal(db: &TestDb) {
    let mode: String = db
        .conn()
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// The journal mode a fresh connection finds.
fn mode_of(db: &TestDb) -> String {
    journal_mode(&db.conn())
}

/// Every entry of a directory tree below `dir`, relative, sorted, files
/// with their size: what the engine left beside the database.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                let len = std::fs::metadata(&path).unwrap().len();
                out.push(format!("{rel} {len}"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The names of the files below `dir` (not directories: a run that rolled
/// back removes the backup files it wrote, not the backup directory it
/// created; not sizes: the audit log records the failure).
fn files_below(dir: &Path) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|e| !e.ends_with('/'))
        .map(|e| {
            e.rsplit_once(' ')
                .map_or(e.clone(), |(name, _)| name.to_string())
        })
        .collect()
}

/// A connection with an open read transaction that has read: it holds a
/// SHARED lock until it ends. (POSIX drops every lock a process holds on
/// a file when it closes any descriptor of that file: so the tests read
/// the file's bytes before and after holding it, never while.)
fn hold_shared(db: &TestDb) -> Connection {
    let reader = db.conn();
    reader.execute_batch("BEGIN").unwrap();
    assert_eq!(count(&reader, "SELECT count(*) FROM \"tabItem\""), 3);
    reader
}

/// An error with its sources, as one line.
fn error_chain(e: &Error) -> String {
    doctype_migrate::error_chain(e)
}

/// Every row of a table, in rowid order, each value with its storage class.
fn rows(conn: &Connection, table: &str) -> Vec<Vec<Value>> {
    let sql = format!("SELECT * FROM \"{table}\" ORDER BY rowid");
    let mut stmt = conn.prepare(&sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// What a run left in the database, independent of time, process and the
/// random database id: the schema, every row of every table but the
/// engine's meta table, and the history rows without their timestamps,
/// batch ids, actors and backup file details.
#[derive(Debug, PartialEq)]
struct State {
    schema: Vec<(String, String, Option<String>)>,
    tables: Vec<(String, Vec<Vec<Value>>)>,
    history: Vec<Vec<Value>>,
}

fn state(db: &TestDb) -> State {
    let conn = db.conn();
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT IN ('tabMigrationHistory', 'tabMigrationMeta') ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let tables = names
        .into_iter()
        .map(|t| {
            let r = rows(&conn, &t);
            (t, r)
        })
        .collect();
    let mut stmt = conn
        .prepare(
            "SELECT id, doctype, table_name, version, sql, rollback_sql, changes, status, \
             affected_rows, error, target_fingerprint, fingerprint_before, fingerprint_after, \
             schema_before, schema_after, backup_path IS NOT NULL, \
             json_extract(rollback_info, '$.rows_restored') \
             FROM \"tabMigrationHistory\" ORDER BY id",
        )
        .unwrap();
    let history = stmt
        .query_map([], |r| (0..17).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    State {
        schema: schema_of(&conn),
        tables,
        history,
    }
}

fn applier(db: &TestDb, allow_data_loss: bool) -> MigrationApplier {
    MigrationApplier::builder(&db.path)
        .create_if_missing(true)
        .allow_data_loss(allow_data_loss)
        .build()
        .unwrap()
}

fn step_kinds(applier: &MigrationApplier, doctypes: &[DocType]) -> Vec<StepKind> {
    let plan = applier.plan(doctypes).unwrap();
    plan.pending()
        .flat_map(|p| p.steps.iter().map(|s| s.kind))
        .collect()
}

fn qty(db: &TestDb) -> Vec<Value> {
    db.conn()
        .prepare("SELECT qty FROM \"tabItem\" ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The whole life of a database, in the journal mode given: created by
/// apply, a native change, a rebuild with a backup, a rollback restoring
/// from it, the rebuild again through the CLI, `backup restore` into a new
/// table, and an all-or-nothing run that fails. Checks the journal mode
/// after each step and returns what is left.
fn life(wal: bool) -> State {
    let db = TestDb::new();
    let expected_mode = if wal { "wal" } else { "delete" };
    // The file exists, in its journal mode, before the engine sees it.
    db.conn().execute_batch("PRAGMA user_version = 7").unwrap();
    if wal {
        make_wal(&db);
    }
    assert_eq!(mode_of(&db), expected_mode);

    applier(&db, false).sync_all(&[doctype(ITEM_V1)]).unwrap();
    db.conn().execute_batch(ITEM_ROWS).unwrap();
    assert_eq!(mode_of(&db), expected_mode, "after CREATE TABLE");

    // A native change.
    let mut a = applier(&db, false);
    assert_eq!(step_kinds(&a, &[doctype(ITEM_V2)]), [StepKind::Native]);
    let report = a.sync_all(&[doctype(ITEM_V2)]).unwrap();
    assert!(report.migrations[0].backups.is_empty());
    assert_eq!(mode_of(&db), expected_mode, "after a native change");

    // A rebuild with a backup.
    let mut a = applier(&db, true);
    assert_eq!(step_kinds(&a, &[doctype(ITEM_V3)]), [StepKind::Rebuild]);
    let report = a.sync_all(&[doctype(ITEM_V3)]).unwrap();
    assert_eq!(report.migrations[0].backups.len(), 1);
    // Int is NOT NULL DEFAULT 0: the NULL becomes 0 (MF003, backed up too).
    assert_eq!(
        qty(&db),
        [Value::Integer(12), Value::Integer(7), Value::Integer(0)]
    );
    assert_eq!(mode_of(&db), expected_mode, "after a rebuild");

    // Rollback, restoring '0012' from the backup.
    let undone = a
        .rollback_last(Some("Item"), &RollbackOptions::default())
        .unwrap();
    assert_eq!(undone.rolled_back.len(), 1);
    assert_eq!(undone.rolled_back[0].restores.len(), 1);
    assert_eq!(
        qty(&db),
        [
            Value::Text("0012".into()),
            Value::Text("7".into()),
            Value::Null
        ]
    );
    assert_eq!(mode_of(&db), expected_mode, "after a rollback");
    drop(a);

    // The rebuild again through the CLI, then `backup restore` of its
    // backup into a new table.
    let file = db.dir.path().join("item.json");
    std::fs::write(&file, ITEM_V3).unwrap();
    let out = bin()
        .args(["apply", "--db", s(&db.path), "--doctypes", s(&file)])
        .args(["--allow-data-loss", "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report: Json = serde_json::from_slice(&out.stdout).unwrap();
    let backup = report["migrations"][0]["backups"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(mode_of(&db), expected_mode, "after the CLI's apply");
    let out = bin()
        .args(["backup", "restore", "--db", s(&db.path), &backup])
        .args(["--into", "item_qty"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        rows(&db.conn(), "item_qty")
            .into_iter()
            .map(|r| r[1].clone())
            .collect::<Vec<_>>(),
        [
            Value::Text("0012".into()),
            Value::Text("7".into()),
            Value::Null
        ]
    );
    assert_eq!(mode_of(&db), expected_mode, "after backup restore");

    // An all-or-nothing run that fails on its second DocType.
    db.conn().execute_batch(GAUGE_TRAP).unwrap();
    let before = state(&db);
    let backups = files_below(&db.dir.path().join("app.db.backups"));
    let trap = [
        doctype(r#"{"name": "Alpha", "fields": [{"fieldname": "a", "fieldtype": "Data"}]}"#),
        doctype(r#"{"name": "Gauge", "fields": [{"fieldname": "reading", "fieldtype": "Int"}]}"#),
        doctype(r#"{"name": "Zulu", "fields": [{"fieldname": "z", "fieldtype": "Data"}]}"#),
    ];
    let err = applier(&db, false).sync_all(&trap).unwrap_err();
    assert!(
        matches!(&err, Error::DocTypeFailed { doctype, .. } if doctype == "Gauge"),
        "{err:?}"
    );
    assert_eq!(state(&db), before, "the failed run left nothing");
    assert_eq!(
        files_below(&db.dir.path().join("app.db.backups")),
        backups,
        "nor a backup file"
    );
    assert_eq!(mode_of(&db), expected_mode, "after a failed run");

    let conn = db.conn();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(count(&conn, "PRAGMA user_version"), 7);
    drop(conn);
    state(&db)
}

#[test]
fn wal_and_rollback_journal_databases_end_identical_and_keep_their_mode() {
    let journal = life(false);
    let wal = life(true);
    assert_eq!(wal, journal);
    // Not vacuous: the runs did things.
    assert_eq!(journal.history.len(), 4);
    assert!(journal.tables.iter().any(|(t, _)| t == "item_qty"));
}

/// A connection lent with its own journal mode (per connection for
/// TRUNCATE, PERSIST and MEMORY) gets it back unchanged, after a rebuild.
#[test]
fn a_lent_connection_keeps_its_journal_mode() {
    for mode in ["truncate", "persist", "memory", "wal"] {
        let db = TestDb::new();
        let mut conn = db.conn();
        let set: String = conn
            .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(set, mode);
        MigrationApplier::lend(&mut conn, |b| b, |a| a.sync_all(&[doctype(ITEM_V2)])).unwrap();
        conn.execute_batch(ITEM_ROWS).unwrap();
        MigrationApplier::lend(
            &mut conn,
            |b| b.allow_data_loss(true),
            |a| a.sync_all(&[doctype(ITEM_V3)]),
        )
        .unwrap();
        assert_eq!(journal_mode(&conn), mode, "journal mode {mode} given back");
        assert_eq!(
            count(&conn, "SELECT count(*) FROM \"tabMigrationHistory\""),
            2
        );
    }
}

// ---------------------------------------------------------------------------
// A WAL reader during a long rebuild.

/// Parks the migrating thread at the first `RowsCopied` event of a
/// rebuild that has not finished copying: tells the reader, then waits
/// until the reader has read. So the reads happen while the rebuild's
/// write transaction is open with rows copied.
struct ParkWhileCopying {
    gate: Mutex<Option<(Sender<u64>, Receiver<()>)>>,
}

impl RunObserver for ParkWhileCopying {
    fn on_event(&self, event: &RunEvent<'_>) {
        if let RunEvent::RowsCopied { copied, total, .. } = event {
            if copied < total {
                if let Some((copying, read)) = self.gate.lock().unwrap().take() {
                    copying.send(*copied).unwrap();
                    read.recv_timeout(Duration::from_secs(120))
                        .expect("the reader answers");
                }
            }
        }
    }
}

const READING_V1: &str =
    r#"{"name": "Reading", "fields": [{"fieldname": "value", "fieldtype": "Data"}]}"#;

/// One read, in one statement (one snapshot): the row count, the storage
/// class of the values and the table's SQL.
fn read_state(reader: &Connection) -> rusqlite::Result<(i64, String, String)> {
    reader.query_row(
        "SELECT (SELECT count(*) FROM \"tabReading\"), \
                (SELECT group_concat(DISTINCT typeof(value)) FROM \"tabReading\"), \
                (SELECT sql FROM sqlite_schema WHERE name = 'tabReading')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

#[test]
fn a_wal_reader_reads_the_old_complete_table_during_a_long_rebuild() {
    const N: i64 = 300_000;
    let db = TestDb::new();
    make_wal(&db);
    db.applier().sync_all(&[doctype(READING_V1)]).unwrap();
    db.conn()
        .execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {N})
             INSERT INTO \"tabReading\" (name, value) SELECT 'R' || i, i * 3 FROM n;"
        ))
        .unwrap();
    let reader = db.conn();
    // A read that would have to wait for a lock fails at once instead.
    reader.busy_timeout(Duration::ZERO).unwrap();
    let old = read_state(&reader).unwrap();
    assert_eq!((old.0, old.1.as_str()), (N, "text"));

    let (copying_tx, copying_rx) = mpsc::channel();
    let (read_tx, read_rx) = mpsc::channel();
    let park = Arc::new(ParkWhileCopying {
        gate: Mutex::new(Some((copying_tx, read_rx))),
    });
    let path = db.path.clone();
    let v2 = READING_V1.replace(r#""fieldtype": "Data""#, r#""fieldtype": "Int""#);
    let migrating = std::thread::spawn(move || {
        MigrationApplier::builder(&path)
            .observer(park)
            .build()
            .unwrap()
            .sync_all(&[doctype(&v2)])
    });

    // While the rebuild is parked mid-copy: old and complete, every time.
    let copied = copying_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the rebuild copies in ranges");
    assert!(copied < N as u64);
    for _ in 0..20 {
        assert_eq!(read_state(&reader).unwrap(), old, "mid-rebuild read");
    }
    read_tx.send(()).unwrap();

    // While it finishes: the old or the new table, complete. (SQLite's own
    // waits, if a read ever meets one, are allowed from here on: this part
    // checks what a read sees, the part above that reads are not blocked.)
    reader.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut reads = 0;
    while !migrating.is_finished() {
        let (n, types, _sql) = read_state(&reader).unwrap();
        assert_eq!(n, N);
        assert!(types == "text" || types == "integer", "{types}");
        reads += 1;
    }
    let report = migrating.join().unwrap().unwrap();
    assert_eq!(report.migrations[0].metrics.rows_copied, N as u64);
    let new = read_state(&reader).unwrap();
    assert_eq!((new.0, new.1.as_str()), (N, "integer"));
    assert_ne!(new.2, old.2);
    assert_eq!(mode_of(&db), "wal");
    println!("{reads} reads while the rebuild finished");
}

/// In WAL mode a reader in an open read transaction keeps its snapshot and
/// does not hold the commit up: apply commits at once, the reader still
/// sees the old table until its transaction ends.
#[test]
fn a_wal_reader_in_a_read_transaction_does_not_hold_the_commit_up() {
    let db = TestDb::new();
    make_wal(&db);
    db.applier().sync_all(&[doctype(ITEM_V2)]).unwrap();
    db.conn().execute_batch(ITEM_ROWS).unwrap();
    let reader = hold_shared(&db);
    let report = MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .busy_timeout(Duration::from_millis(50))
        .lock_timeout(Duration::from_millis(400))
        .build()
        .unwrap()
        .sync_all(&[doctype(ITEM_V3)])
        .unwrap();
    assert_eq!(report.migrations.len(), 1);
    let old: String = reader
        .query_row("SELECT qty FROM \"tabItem\" WHERE name = 'I1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(old, "0012", "the reader's snapshot");
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(
        qty(&db),
        [Value::Integer(12), Value::Integer(7), Value::Integer(0)]
    );
    assert_eq!(mode_of(&db), "wal");
}

// ---------------------------------------------------------------------------
// A reader holding a rollback-journal database.

/// A database in rollback-journal mode with Item V2 applied and rows.
fn item_db() -> TestDb {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(ITEM_V2)]).unwrap();
    db.conn().execute_batch(ITEM_ROWS).unwrap();
    assert_eq!(mode_of(&db), "delete");
    db
}

fn history_rows(db: &TestDb) -> i64 {
    count(&db.conn(), "SELECT count(*) FROM \"tabMigrationHistory\"")
}

#[test]
fn a_reader_holding_a_rollback_journal_database_times_the_commit_out_clearly() {
    let db = item_db();
    let bytes = db.bytes();
    let history = history_rows(&db);
    let reader = hold_shared(&db);
    let files = files_below(db.dir.path());

    let mut applier = MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .busy_timeout(Duration::from_millis(50))
        .lock_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let err = applier.sync_all(&[doctype(ITEM_V3)]).unwrap_err();
    let text = error_chain(&err);
    println!("{err:?}\n{text}");
    match &err {
        Error::LockTimeout {
            path,
            write: true,
            at_commit: true,
            waited_ms,
            ..
        } => {
            assert_eq!(path, &db.path);
            assert!(*waited_ms >= 400, "waited within lock_timeout: {waited_ms}");
        }
        other => panic!("expected LockTimeout, got {other:?}"),
    }
    assert!(text.contains("could not commit to"), "{text}");
    assert!(text.contains("nothing was committed"), "{text}");
    assert!(text.contains(s(&db.path)), "{text}");
    assert!(!text.contains("database is locked"), "{text}");
    drop(applier);

    // Nothing written: no backup, no journal, no history row, the file.
    assert_eq!(files_below(db.dir.path()), files);
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(history_rows(&db), history);
    assert_eq!(db.bytes(), bytes);

    // With the reader gone, the same run goes through.
    let report = MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .build()
        .unwrap()
        .sync_all(&[doctype(ITEM_V3)])
        .unwrap();
    assert_eq!(report.migrations[0].backups.len(), 1);
}

#[test]
fn the_cli_reports_a_reader_holding_the_database_at_commit_and_writes_nothing() {
    let db = item_db();
    let file = db.dir.path().join("item.json");
    std::fs::write(&file, ITEM_V3).unwrap();
    let bytes = db.bytes();
    let reader = hold_shared(&db);
    let files = files_below(db.dir.path());
    let out = bin()
        .args(["apply", "--db", s(&db.path), "--doctypes", s(&file)])
        .args([
            "--allow-data-loss",
            "--lock-timeout",
            "0.3",
            "--busy-timeout",
            "50",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert!(
        err.contains("could not commit to") && err.contains("nothing was committed"),
        "{err}"
    );
    assert!(err.contains(s(&db.path)), "{err}");
    assert_eq!(files_below(db.dir.path()), files);
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(db.bytes(), bytes);
}

/// The error of a commit that a reader held past the lock timeout.
fn assert_commit_timed_out(err: &Error) {
    assert!(
        matches!(
            err,
            Error::LockTimeout {
                at_commit: true,
                ..
            }
        ),
        "{err:?}"
    );
}

/// A rollback and a restore commit under the same rule: a reader holding
/// a rollback-journal database times their commit out within the lock
/// timeout, and nothing is written.
#[test]
fn rollbacks_and_restores_time_their_commit_out_alike() {
    let db = item_db();
    let report = applier(&db, true).sync_all(&[doctype(ITEM_V3)]).unwrap();
    let backup = report.migrations[0].backups[0].clone();
    let mut a = MigrationApplier::builder(&db.path)
        .busy_timeout(Duration::from_millis(50))
        .lock_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let bytes = db.bytes();
    let reader = hold_shared(&db);
    let files = files_below(db.dir.path());
    let mut options = RollbackOptions::default();
    options.lock_timeout = Duration::from_millis(300);
    let err = a.rollback_last(Some("Item"), &options).unwrap_err();
    assert_commit_timed_out(&err);
    let err = a
        .restore_backup(&backup, RestoreTarget::NewTable("item_qty".into()))
        .unwrap_err();
    assert_commit_timed_out(&err);
    assert_eq!(files_below(db.dir.path()), files);
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(db.bytes(), bytes);
}

/// A rebuild too large for SQLite's page cache, with a reader holding the
/// database: the cache cannot spill to the file (that needs the exclusive
/// lock), so it grows and the wait comes at commit, as for a small change.
#[test]
fn a_reader_holding_the_database_during_a_large_rebuild_times_the_commit_out() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(READING_V1)]).unwrap();
    db.conn()
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
             INSERT INTO \"tabReading\" (name, value) SELECT 'R' || i, i * 3 FROM n;",
        )
        .unwrap();
    let bytes = db.bytes();
    let reader = db.conn();
    reader.execute_batch("BEGIN").unwrap();
    assert_eq!(
        count(&reader, "SELECT count(*) FROM \"tabReading\""),
        200_000
    );
    let files = files_below(db.dir.path());
    let v2 = READING_V1.replace(r#""fieldtype": "Data""#, r#""fieldtype": "Int""#);
    let err = MigrationApplier::builder(&db.path)
        .busy_timeout(Duration::from_millis(50))
        .lock_timeout(Duration::from_millis(400))
        .build()
        .unwrap()
        .sync_all(&[doctype(&v2)])
        .unwrap_err();
    let text = error_chain(&err);
    println!("{text}");
    assert_commit_timed_out(&err);
    assert_eq!(files_below(db.dir.path()), files);
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(db.bytes(), bytes);
}

/// A reader that finishes within `lock_timeout` only delays the commit.
#[test]
fn a_reader_that_finishes_within_the_lock_timeout_only_delays_the_commit() {
    let db = item_db();
    let reader = hold_shared(&db);
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        reader.execute_batch("COMMIT").unwrap();
    });
    let report = MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .busy_timeout(Duration::from_millis(50))
        .lock_timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .sync_all(&[doctype(ITEM_V3)])
        .unwrap();
    release.join().unwrap();
    assert_eq!(report.migrations.len(), 1);
    // Int is NOT NULL DEFAULT 0: the NULL becomes 0 (MF003, backed up too).
    assert_eq!(
        qty(&db),
        [Value::Integer(12), Value::Integer(7), Value::Integer(0)]
    );
}

// ---------------------------------------------------------------------------
// Read-only databases.

fn assert_read_only(err: &Error, db: &Path) {
    let text = error_chain(err);
    match err {
        Error::ReadOnly { path, .. } => assert_eq!(path, db, "{text}"),
        other => panic!("expected ReadOnly, got {other:?}"),
    }
    assert!(text.contains("read-only"), "{text}");
    assert!(text.contains("nothing was written"), "{text}");
}

/// Plans and dry runs work on the applier; `sync_all` is refused before
/// any work.
fn refused_but_plans(applier: &mut MigrationApplier, db: &Path) {
    let v3 = [doctype(ITEM_V3)];
    assert_eq!(applier.plan(&v3).unwrap().pending().count(), 1);
    let preview = applier.dry_run(&v3).unwrap();
    assert!(!preview.blocked, "data loss is allowed");
    assert!(
        !preview.findings.is_empty(),
        "DL003: '0012' would become 12"
    );
    let err = applier.sync_all(&[doctype(ITEM_V3)]).unwrap_err();
    assert_read_only(&err, db);
}

#[test]
fn a_read_only_connection_lent_to_the_applier_is_refused_up_front() {
    let db = item_db();
    let bytes = db.bytes();
    let files = listing(db.dir.path());
    let open = |how: &str| -> Connection {
        match how {
            "SQLITE_OPEN_READ_ONLY" => {
                Connection::open_with_flags(&db.path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
            }
            "mode=ro" => Connection::open_with_flags(
                format!("file:{}?mode=ro", s(&db.path)),
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI,
            )
            .unwrap(),
            _ => {
                let c = db.conn();
                c.execute_batch("PRAGMA query_only = ON").unwrap();
                c
            }
        }
    };
    for how in ["SQLITE_OPEN_READ_ONLY", "mode=ro", "query_only"] {
        // By value: built, refused, and given back.
        let conn = open(how);
        let mut applier = MigrationApplier::builder_for_connection(conn)
            .allow_data_loss(true)
            .build()
            .unwrap();
        refused_but_plans(&mut applier, &db.path);
        let conn = applier.into_connection();
        assert_eq!(count(&conn, "SELECT count(*) FROM \"tabItem\""), 3);
        if how == "query_only" {
            assert_eq!(count(&conn, "PRAGMA query_only"), 1, "the caller's setting");
        }
        // Lent: refused, and given back.
        let mut conn = open(how);
        let err = MigrationApplier::lend(
            &mut conn,
            |b| b.allow_data_loss(true),
            |a| a.sync_all(&[doctype(ITEM_V3)]),
        )
        .unwrap_err();
        assert_read_only(&err, &db.path);
        assert_eq!(count(&conn, "SELECT count(*) FROM \"tabItem\""), 3);
        // Rollbacks are refused alike.
        let err = MigrationApplier::lend(
            &mut conn,
            |b| b,
            |a| a.rollback_last(None, &RollbackOptions::default()),
        )
        .unwrap_err();
        assert_read_only(&err, &db.path);
        assert_eq!(db.bytes(), bytes, "{how}");
        assert_eq!(listing(db.dir.path()), files, "{how}");
    }
}

#[test]
fn an_applier_built_read_only_plans_and_refuses_to_write() {
    let db = item_db();
    // A backup to restore and a migration to roll back exist.
    let report = applier(&db, true).sync_all(&[doctype(ITEM_V3)]).unwrap();
    let backup = report.migrations[0].backups[0].clone();
    let bytes = db.bytes();
    let files = listing(db.dir.path());
    let mut a = MigrationApplier::builder(&db.path)
        .read_only(true)
        .build()
        .unwrap();
    let v2 = [doctype(ITEM_V2)];
    assert_eq!(a.plan(&v2).unwrap().pending().count(), 1);
    assert!(!a.dry_run(&v2).unwrap().blocked);
    assert_read_only(&a.sync_all(&v2).unwrap_err(), &db.path);
    // Refused up front: even when there would be nothing to do.
    assert!(a.plan(&[doctype(ITEM_V3)]).unwrap().is_empty());
    assert_read_only(&a.sync_all(&[doctype(ITEM_V3)]).unwrap_err(), &db.path);
    assert_read_only(
        &a.rollback_last(Some("Item"), &RollbackOptions::default())
            .unwrap_err(),
        &db.path,
    );
    assert!(
        a.rollback_plan(
            &doctype_migrate::RollbackTarget::Last { doctype: None },
            &RollbackOptions::default()
        )
        .unwrap()
        .feasible,
        "the rollback's dry run reads only"
    );
    assert_read_only(
        &a.restore_backup(&backup, RestoreTarget::NewTable("item_qty".into()))
            .unwrap_err(),
        &db.path,
    );
    assert_eq!(db.bytes(), bytes);
    assert_eq!(listing(db.dir.path()), files);
}

/// Exit code of the mount script when it could not make the directory
/// read-only.
const NO_RO_MOUNT: i32 = 97;

/// Runs `program args` with the directory `dir` bind-mounted read-only
/// onto itself, in a private mount namespace (`unshare -m`): the mount
/// never shows outside it, even if the test fails. `None` when this
/// machine cannot (no `unshare`, no mount capability), or when the
/// directory is still writable under the mount.
fn with_read_only_dir(dir: &str, program: &str, args: &[&str]) -> Option<Output> {
    let script = format!(
        "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" || exit {NO_RO_MOUNT}
         touch \"$1/.probe\" 2>/dev/null && exit {NO_RO_MOUNT}
         shift; exec \"$@\""
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script, "sh", dir, program])
        .args(args)
        .output()
        .ok()?;
    (out.status.code() != Some(NO_RO_MOUNT)).then_some(out)
}

/// `apply` on a file the process can only read: refused before any work
/// with a clear message (exit 1), the file and its directory unchanged;
/// `plan` still works. The directory is made read-only by a read-only
/// bind mount of itself (as root, where modes do not stop writes), or by
/// its mode (as any other user).
#[test]
fn the_cli_refuses_to_apply_to_a_database_it_can_only_read_and_still_plans() {
    let db = item_db();
    let file = db.dir.path().join("item.json");
    std::fs::write(&file, ITEM_V3).unwrap();
    let bytes = db.bytes();
    let files = listing(db.dir.path());
    let dir = s(db.dir.path());
    let bin = env!("CARGO_BIN_EXE_doctype-migrate");
    let apply = [
        "apply",
        "--db",
        s(&db.path),
        "--doctypes",
        s(&file),
        "--allow-data-loss",
    ];
    let plan = [
        "plan",
        "--db",
        s(&db.path),
        "--doctypes",
        s(&file),
        "--allow-data-loss",
    ];
    let (applied, planned) = if unsafe { libc::geteuid() } == 0 {
        match (
            with_read_only_dir(dir, bin, &apply),
            with_read_only_dir(dir, bin, &plan),
        ) {
            (Some(a), Some(p)) => (a, p),
            _ => {
                println!(
                    "skipped: running as root (file modes do not stop root's writes) and a \
                     read-only bind mount is not possible here"
                );
                return;
            }
        }
    } else {
        use std::os::unix::fs::PermissionsExt;
        let set = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(&db.path, 0o444);
        set(db.dir.path(), 0o555);
        let applied = bin_run(&apply);
        let planned = bin_run(&plan);
        set(db.dir.path(), 0o755);
        set(&db.path, 0o644);
        (applied, planned)
    };
    let err = stderr(&applied);
    println!("{err}");
    assert_eq!(code(&applied), 1, "{err}");
    assert!(
        err.contains("read-only") && err.contains("nothing was written"),
        "{err}"
    );
    assert!(err.contains(s(&db.path)), "{err}");
    assert_eq!(code(&planned), 0, "{}", stderr(&planned));
    assert!(stdout(&planned).contains("Item"), "{}", stdout(&planned));
    assert_eq!(db.bytes(), bytes);
    assert_eq!(listing(db.dir.path()), files);
}

fn bin_run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}
