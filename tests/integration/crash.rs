//! Crash safety under SIGKILL (invariants "Atomic", "History in the same
//! transaction" and "Nothing lost without consent"): the commands that
//! write a database are killed at random instants, and after every kill the
//! database must be intact and exactly before or exactly after the command,
//! never a mix.
//!
//! # The harness
//!
//! [`Target::kill_loop`] is the one kill loop, for any command. One
//! uninterrupted reference run measures how long the command takes; each
//! kill then starts the command on the victim database, sends SIGKILL after
//! a delay drawn from a seeded PRNG over the whole run and a fifth past it,
//! and checks a copy of what the kill left (the database and its hot
//! journal, if any: SQLite rolls the journal back in the copy when the
//! check opens it). The victim keeps its hot journal: the next run starts
//! on the database exactly as the kill left it and must recover it by
//! itself. A kill that leaves the state after the command puts the victim
//! back at the state before it; a run that finished before its kill must
//! have succeeded and left that "after" state. After the last kill, one
//! uninterrupted run must complete.
//!
//! Every check (the loop-specific ones below) starts with [`intact`] and
//! [`files_beside`]:
//!
//! - `PRAGMA integrity_check` is `ok`, `PRAGMA foreign_key_check` is empty;
//! - no half-written file sits under a final name beside the database: run
//!   markers parse, every line of the audit log is complete JSON, and
//!   anything else beside the database is the database, its journal, its
//!   backup directory or a temporary `*.tmp` file.
//!
//! # What each loop proves
//!
//! Rows are compared one by one, by rowid, with a template file no command
//! touches: every column's value and storage class (`compare`).
//!
//! 1. **`apply`** of a table rebuild (`amount` Data -> Int on 200,000 rows,
//!    an unmanaged child table referencing them), with its default backup
//!    (a column backup of `amount`, asserted on the reference run and on
//!    every run that completed), starting each kill from the old database
//!    or from what the last kill left: `sqlite_schema` is byte-identical to
//!    the old or the new schema; no row is lost or changed (after the
//!    migration `amount` holds the same numbers as integers); a `completed`
//!    history row for the migration exists iff the new schema is there, and
//!    it names a backup that verifies; every `.dmbak` in the backup
//!    directory verifies (a killed backup leaves only a hidden `.tmp`
//!    file), and after the final run the directory holds exactly the backup
//!    history names: the next run removed what killed runs left.
//! 2. **`rollback`** of that migration where the forward step was lossy
//!    (`'x3'`, `'0042'`, `'12.5'` in `amount`, applied with
//!    `--allow-data-loss`), so the rollback rebuilds the table and restores
//!    `amount` from the column backup. Each kill starts from the migrated
//!    database (a copy of a migrated template with its backup directory) or
//!    from what the last kill left: afterwards it is exactly at the new
//!    state (schema, every value as migrated, history row `completed`) or
//!    exactly at the old state with every original value back, storage
//!    class included (history row `rolled_back`); the child table and the
//!    backup directory are untouched.
//! 3. **`backup restore`** of a full-table backup (taken with
//!    `BackupManager::backup_table` before rows were updated, deleted and
//!    inserted and logging triggers created), into the original table and
//!    `--into` a new table: the target is exactly as before or exactly the
//!    backed-up rows (rowids included) and schema, never partly restored;
//!    the table's triggers are there on both sides and never fired; history,
//!    the other tables and the backup directory are untouched. (No table
//!    references the ledger in the restore into the original: `backup
//!    restore` refuses to replace the rows of a referenced table while
//!    foreign keys are on, and the command line has them on, SQLite's
//!    default in this build.)
//!
//! The rollback and restore loops use a 50,000-row ledger: their kill
//! instants scale with the run as well, and `cargo test` stays short.
//!
//! Each loop prints its counts: kills that left the state before and after
//! the command, kills that left a hot journal (inside the write
//! transaction, after its first write to the file), runs that had finished
//! before their kill, and runs that started on a hot journal.
//!
//! # Counts
//!
//! 30 kills per loop by default. `DM_CRASH_KILLS` sets every loop's count;
//! `DM_CRASH_ROLLBACK_KILLS` and `DM_CRASH_RESTORE_KILLS` override it for
//! the rollback and the restore kills (these are split between the two
//! restore targets, the original table getting the odd one). Instants come
//! from a seeded PRNG, `DM_CRASH_SEED` to replay a run (the seed is
//! printed; each loop mixes it with its name). `scripts/crash.sh` runs the
//! long version: 500 apply, 200 rollback and 200 restore kills, or
//! `scripts/crash.sh N [SEED]` for N of each kind.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::common::schema_of;
use doctype_migrate::{
    BackupInfo, BackupManager, BackupStrategy, MigrationApplier, default_dir_for,
};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

/// Rows of the apply loop's ledger.
const ROWS: i64 = 200_000;

/// Rows of the rollback and restore loops' ledger: every check there
/// compares every value, and the kill instants scale with the run, so a
/// smaller table keeps `cargo test` short without changing what a kill can
/// hit.
const SMALL: i64 = 50_000;

const V1: &str = r#"{"name": "Ledger", "fields": [
    {"fieldname": "account", "fieldtype": "Data", "search_index": 1},
    {"fieldname": "amount", "fieldtype": "Data"},
    {"fieldname": "memo", "fieldtype": "Small Text"},
    {"fieldname": "qty", "fieldtype": "Float"},
    {"fieldname": "posted", "fieldtype": "Date"}
]}"#;

/// v2 retypes `amount` Data -> Int: a table rebuild (create, copy, drop, rename).
const V2: &str = r#"{"name": "Ledger", "fields": [
    {"fieldname": "account", "fieldtype": "Data", "search_index": 1},
    {"fieldname": "amount", "fieldtype": "Int"},
    {"fieldname": "memo", "fieldtype": "Small Text"},
    {"fieldname": "qty", "fieldtype": "Float"},
    {"fieldname": "posted", "fieldtype": "Date"}
]}"#;

/// Rows for the ledger (`{rows}` of them, integral amounts, so the type
/// change is lossless) and an unmanaged child table whose foreign key
/// points at the ledger (`{children}` rows): a rebuild must never cascade
/// into it.
const DATA: &str = r#"
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
INSERT INTO "tabLedger" (name, account, amount, memo, qty, posted)
SELECT printf('L-%07d', i), 'ACC-' || (i % 97), CAST(i * 7 % 100003 AS TEXT),
       'memo ' || i, i * 0.25, '2024-01-01' FROM n;
CREATE TABLE "ledger_note" (
    id INTEGER PRIMARY KEY,
    ledger TEXT NOT NULL REFERENCES "tabLedger"(name) ON DELETE CASCADE,
    note TEXT
);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {children})
INSERT INTO "ledger_note" (ledger, note) SELECT printf('L-%07d', i * 50), 'n' || i FROM n;
"#;

/// For the rollback loop: amounts an Int column cannot keep as they are
/// (one row in 1000: `'x3'`, `'0042'`, `'12.5'`), so v2 needs
/// `--allow-data-loss` and rolling it back needs the column backup.
const LOSSY: &str = r#"
UPDATE "tabLedger" SET amount = CASE rowid % 3000
    WHEN 0 THEN 'x' || (rowid / 3000 % 10)
    WHEN 1000 THEN printf('%04d', rowid % 97)
    ELSE (rowid % 89) || '.5' END
WHERE rowid % 1000 = 0;
"#;

/// For the restore loops, after the backup: rows changed, deleted (none a
/// child references) and added, and triggers that would log any insert or
/// delete (a restore must not fire them).
const CHANGED_SINCE_BACKUP: &str = r#"
UPDATE "tabLedger" SET amount = 'changed ' || rowid, memo = NULL WHERE rowid % 100 = 7;
DELETE FROM "tabLedger" WHERE rowid % 1000 = 3;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
INSERT INTO "tabLedger" (name, account, amount, memo, qty, posted)
SELECT printf('N-%07d', i), 'ACC-NEW', CAST(i AS TEXT), 'new ' || i, i, '2025-01-01' FROM n;
CREATE TABLE "ledger_log" (id INTEGER PRIMARY KEY, what TEXT, ledger TEXT);
CREATE TRIGGER "ledger_log_insert" AFTER INSERT ON "tabLedger"
BEGIN INSERT INTO "ledger_log" (what, ledger) VALUES ('insert', NEW.name); END;
CREATE TRIGGER "ledger_log_delete" AFTER DELETE ON "tabLedger"
BEGIN INSERT INTO "ledger_log" (what, ledger) VALUES ('delete', OLD.name); END;
"#;

/// The new table `backup restore --into` creates.
const RESTORED: &str = "tabLedger_restored";

type Schema = Vec<(String, String, Option<String>)>;

// ---------------------------------------------------------------------------
// Settings.

/// xorshift64*: enough randomness for kill instants, no dependency.
struct Rng(u64);

impl Rng {
    /// A generator for one loop: the seed mixed with the loop's name, so
    /// each loop replays on its own whatever else runs.
    fn for_loop(seed: u64, name: &str) -> Rng {
        let mut h = seed ^ 0xCBF2_9CE4_8422_2325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
        }
        Rng(h.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..bound` (bound > 0).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| {
        let v = v.trim();
        match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => v.parse().ok(),
        }
    })
}

fn seed() -> u64 {
    env_u64("DM_CRASH_SEED").unwrap_or(0x5EED_C0DE_2024)
}

/// Kills for a loop: its own variable, else `DM_CRASH_KILLS`, else 30.
fn kills(own: Option<&str>) -> u64 {
    own.and_then(env_u64)
        .or_else(|| env_u64("DM_CRASH_KILLS"))
        .unwrap_or(30)
}

// ---------------------------------------------------------------------------
// Fixtures.

/// The v1 database with its ledger rows (`template.db`) and the v2
/// DocTypes, in a temporary directory.
struct Fixture {
    dir: tempfile::TempDir,
    template: PathBuf,
    v2: PathBuf,
}

impl Fixture {
    fn new(rows: i64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (v, json) in [("v1", V1), ("v2", V2)] {
            std::fs::create_dir(dir.path().join(v)).unwrap();
            std::fs::write(dir.path().join(v).join("ledger.json"), json).unwrap();
        }
        let template = dir.path().join("template.db");
        let v1 = doctype_migrate::load_path(&dir.path().join("v1")).unwrap();
        MigrationApplier::builder(&template)
            .create_if_missing(true)
            .build()
            .unwrap()
            .sync_all(&v1)
            .unwrap();
        Connection::open(&template)
            .unwrap()
            .execute_batch(
                &DATA
                    .replace("{rows}", &rows.to_string())
                    .replace("{children}", &(rows / 100).to_string()),
            )
            .unwrap();
        let v2 = dir.path().join("v2");
        Fixture { dir, template, v2 }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A victim database in a directory of its own, `name/victim.db`.
    fn victim(&self, name: &str) -> Victim {
        let dir = self.path(name);
        std::fs::create_dir(&dir).unwrap();
        Victim {
            db: dir.join("victim.db"),
            inspect: self.path(&format!("{name}-inspect.db")),
        }
    }

    fn apply(&self, db: &Path) -> Command {
        let mut cmd = cli();
        cmd.arg("apply")
            .arg("--db")
            .arg(db)
            .arg("--doctypes")
            .arg(&self.v2)
            .arg("--json");
        cmd
    }
}

/// `doctype-migrate` with no input and no output.
fn cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_doctype-migrate"));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// The database the kills hit, alone in its directory with what the engine
/// keeps beside it (backup directory, audit log, run markers).
struct Victim {
    db: PathBuf,
    /// Where a check's copy of it goes.
    inspect: PathBuf,
}

fn suffixed(db: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", db.display()))
}

fn remove_database(db: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let _ = std::fs::remove_file(suffixed(db, suffix));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

impl Victim {
    fn journal(&self) -> PathBuf {
        suffixed(&self.db, "-journal")
    }

    fn backups(&self) -> PathBuf {
        default_dir_for(&self.db)
    }

    /// Puts a copy of `db` in place of the victim, and a copy of `backups`
    /// in place of its backup directory (none when `None`).
    fn reset(&self, db: &Path, backups: Option<&Path>) {
        remove_database(&self.db);
        std::fs::copy(db, &self.db).unwrap();
        let dir = self.backups();
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(from) = backups {
            copy_dir(from, &dir);
        }
    }

    /// A copy of the database as it is now, hot journal included; the
    /// victim keeps its own journal for the next run to recover.
    fn snapshot(&self) -> &Path {
        remove_database(&self.inspect);
        std::fs::copy(&self.db, &self.inspect).unwrap();
        if self.journal().exists() {
            std::fs::copy(self.journal(), suffixed(&self.inspect, "-journal")).unwrap();
        }
        &self.inspect
    }

    /// Size and modification time of the journal, if there is one.
    fn journal_stamp(&self) -> Option<(u64, SystemTime)> {
        let meta = std::fs::metadata(self.journal()).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    }
}

// ---------------------------------------------------------------------------
// What the checks compare.

/// A table as it must be: `table` in the database file `file` (a template
/// no command touches).
struct Rows<'a> {
    file: &'a Path,
    table: &'a str,
}

/// Row counts of a live table and of the rows it must hold, and how many
/// live rows differ (matched by rowid: missing there, or any column's value
/// or storage class different; the columns in `as_integer` are compared as
/// integers, as a type change from text to INTEGER converts them).
#[derive(Debug, PartialEq, Eq)]
struct Comparison {
    rows: i64,
    want: i64,
    differing: i64,
}

impl Comparison {
    fn same(&self) -> bool {
        self.rows == self.want && self.differing == 0
    }
}

fn compare(conn: &Connection, table: &str, want: &Rows<'_>, as_integer: &[&str]) -> Comparison {
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        .unwrap()
        .query_map([table], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!columns.is_empty(), "no table {table}");
    let differ: Vec<String> = columns
        .iter()
        .map(|c| {
            if as_integer.contains(&c.as_str()) {
                format!("CAST(a.\"{c}\" AS INTEGER) IS NOT CAST(b.\"{c}\" AS INTEGER)")
            } else {
                format!("a.\"{c}\" IS NOT b.\"{c}\" OR typeof(a.\"{c}\") <> typeof(b.\"{c}\")")
            }
        })
        .collect();
    conn.execute("ATTACH DATABASE ?1 AS want", [want.file.to_str().unwrap()])
        .unwrap();
    let sql = format!(
        "SELECT (SELECT count(*) FROM main.\"{table}\"), (SELECT count(*) FROM want.\"{w}\"), \
         (SELECT count(*) FROM main.\"{table}\" AS a LEFT JOIN want.\"{w}\" AS b ON a.rowid = b.rowid \
          WHERE b.rowid IS NULL OR {})",
        differ.join(" OR "),
        w = want.table
    );
    let comparison = conn
        .query_row(&sql, [], |r| {
            Ok(Comparison {
                rows: r.get(0)?,
                want: r.get(1)?,
                differing: r.get(2)?,
            })
        })
        .unwrap();
    conn.execute_batch("DETACH DATABASE want").unwrap();
    comparison
}

/// Panics unless `table` holds exactly the rows of `want`.
fn assert_rows(conn: &Connection, table: &str, want: &Rows<'_>, as_integer: &[&str], what: &str) {
    let c = compare(conn, table, want, as_integer);
    assert!(
        c.same(),
        "{what}: {table} holds {} rows, {} of them lost or changed; {} rows expected",
        c.rows,
        c.differing,
        c.want
    );
}

/// `(doctype, version, status)` of every history row, in order.
fn history(conn: &Connection) -> Vec<(String, i64, String)> {
    conn.prepare("SELECT doctype, version, status FROM \"tabMigrationHistory\" ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn row(version: i64, status: &str) -> (String, i64, String) {
    ("Ledger".to_string(), version, status.to_string())
}

/// The backups the history row of `version` names.
fn recorded_backups(conn: &Connection, version: i64) -> Vec<PathBuf> {
    let text: Option<String> = conn
        .query_row(
            "SELECT backup_path FROM \"tabMigrationHistory\" WHERE doctype = 'Ledger' AND version = ?1",
            [version],
            |r| r.get(0),
        )
        .unwrap();
    match text.as_deref().map(str::trim) {
        None | Some("") => Vec::new(),
        Some(t) if t.starts_with('[') => serde_json::from_str::<Vec<PathBuf>>(t).unwrap(),
        Some(t) => vec![PathBuf::from(t)],
    }
}

fn manager(dir: &Path) -> BackupManager {
    BackupManager::builder().dir(dir).build().unwrap()
}

/// Name and SHA-256 of every file in `dir` (empty when there is no `dir`).
fn files(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            let digest = Sha256::digest(std::fs::read(e.path()).unwrap());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            (e.file_name().to_string_lossy().into_owned(), hex)
        })
        .collect()
}

/// Integrity and foreign keys.
fn intact(conn: &Connection, what: &str) {
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(integrity, ["ok"], "{what}: integrity_check");
    let fk: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk, 0, "{what}: foreign_key_check found violations");
}

/// No half-written file under a final name beside the database: run
/// markers parse, every line of the audit log is complete JSON, and nothing
/// else is there but the database, its journal, its backup directory and
/// temporary `*.tmp` files.
fn files_beside(db: &Path, what: &str) {
    let name = db.file_name().unwrap().to_string_lossy().into_owned();
    let marker = format!("{name}.dm-run.");
    let audit = doctype_migrate::audit_log_path_for(db)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let backups = format!("{name}.backups");
    for entry in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        let file = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if file == name || file == format!("{name}-journal") || file == backups {
            continue;
        }
        if file.ends_with(".tmp") {
            continue;
        }
        if file == audit {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "{what}: the audit log ends in a partial line"
            );
            for line in text.lines() {
                serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| {
                    panic!("{what}: audit log line is not complete JSON ({e}): {line}")
                });
            }
        } else if file.starts_with(&marker) && file.ends_with(".json") {
            let text = std::fs::read(&path).unwrap();
            serde_json::from_slice::<serde_json::Value>(&text).unwrap_or_else(|e| {
                panic!("{what}: run marker {file} is under its final name but incomplete: {e}")
            });
        } else {
            panic!("{what}: unexpected file beside the database: {file}");
        }
    }
}

// ---------------------------------------------------------------------------
// The kill loop.

/// Which side of the command a database is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Before,
    After,
}

/// Checks the copy of the victim at the given path and says which side
/// of the command it is on; panics on anything else. The second argument
/// names the kill for messages.
type Check<'a> = Box<dyn FnMut(&Path, &str) -> Side + 'a>;

/// One command to kill, on one victim database.
struct Target<'a> {
    /// The loop's name, for messages and its PRNG.
    name: &'static str,
    /// What the two sides are, for the summary.
    sides: [&'static str; 2],
    victim: &'a Victim,
    /// The command, on the victim.
    command: Box<dyn Fn() -> Command + 'a>,
    /// Checks the copy (the victim as a kill left it, journal rolled
    /// back).
    check: Check<'a>,
    /// Puts the victim back at the state before the command.
    reset: Box<dyn FnMut() + 'a>,
}

impl Target<'_> {
    fn check_now(&mut self, what: &str) -> Side {
        files_beside(&self.victim.db, what);
        let copy = self.victim.snapshot().to_path_buf();
        (self.check)(&copy, what)
    }

    /// Runs the command to the end on the victim as it is; it must succeed
    /// and leave the "after" state. Returns how long it took.
    fn uninterrupted(&mut self, what: &str) -> Duration {
        let t = Instant::now();
        let out = (self.command)()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "{} {what}: {}\n{}{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let side = self.check_now(&format!("{} {what}", self.name));
        assert_eq!(side, Side::After, "{} {what}", self.name);
        took
    }

    /// The reference run, from the state before the command: how long an
    /// uninterrupted run takes. Leaves the victim after the command.
    fn reference(&mut self) -> Duration {
        (self.reset)();
        self.uninterrupted("reference run")
    }

    /// `kills` SIGKILLs at random instants over `full` and a fifth past it,
    /// each followed by the check; then one uninterrupted run.
    fn kill_loop(&mut self, kills: u64, seed: u64, full: Duration) -> Tally {
        let mut rng = Rng::for_loop(seed, self.name);
        let window = (full.as_micros() as u64 * 6 / 5).max(1);
        let started = Instant::now();
        let mut tally = Tally::default();
        (self.reset)();
        for k in 0..kills {
            let delay = Duration::from_micros(rng.below(window));
            let journal_before = self.victim.journal_stamp();
            if journal_before.is_some() {
                tally.inherited += 1;
            }
            let mut child = (self.command)().spawn().unwrap();
            std::thread::sleep(delay);
            let finished_before_kill = child.try_wait().unwrap().is_some();
            let _ = child.kill(); // SIGKILL on Unix
            let status = child.wait().unwrap();
            let what = format!("{} kill {k} after {delay:?} (seed {seed:#x})", self.name);
            if finished_before_kill {
                tally.exited += 1;
                assert!(
                    status.success(),
                    "{what}: the run failed on its own: {status}"
                );
            }
            // A new journal means the kill landed inside the write
            // transaction; the check rolls back a copy, the next run the
            // journal itself.
            let journal_after = self.victim.journal_stamp();
            if journal_after.is_some() && journal_after != journal_before {
                tally.hot += 1;
            }
            let t = Instant::now();
            let side = self.check_now(&what);
            tally.checking += t.elapsed();
            if finished_before_kill {
                assert_eq!(side, Side::After, "{what}: a finished run left");
            }
            match side {
                Side::Before => tally.before += 1,
                Side::After => {
                    tally.after += 1;
                    (self.reset)();
                }
            }
        }
        let [before, after] = self.sides;
        eprintln!(
            "crash {}: seed {seed:#x}, {kills} kills in {:?} ({:?} checking), uninterrupted run {full:?}: \
             {} left {before}, {} {after}; {} left a hot journal, {} runs had \
             finished, {} started on a hot journal",
            self.name,
            started.elapsed(),
            tally.checking,
            tally.before,
            tally.after,
            tally.hot,
            tally.exited,
            tally.inherited,
        );
        assert!(
            kills == 0 || tally.before > 0,
            "{}: no kill landed before the commit: the window is wrong",
            self.name
        );
        // The database the last kill left is brought to the end by the next
        // normal run.
        self.uninterrupted("final run");
        tally
    }
}

#[derive(Debug, Default)]
struct Tally {
    /// Kills that left the state before the command.
    before: u64,
    /// Kills that left the state after it.
    after: u64,
    /// Kills that left a new hot journal.
    hot: u64,
    /// Runs that finished before their kill.
    exited: u64,
    /// Runs that started on a hot journal a kill left.
    inherited: u64,
    checking: Duration,
}

// ---------------------------------------------------------------------------
// 1. apply

/// Checks that every `.dmbak` in `dir` verifies (once per file version:
/// `verified` remembers them); hidden `*.tmp` files (a killed backup) are
/// the only other files allowed. Returns the backups by file name.
fn verify_final_names(
    dir: &Path,
    verified: &mut HashMap<(PathBuf, u64, SystemTime), BackupInfo>,
    what: &str,
) -> BTreeMap<String, BackupInfo> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    let mut found = BTreeMap::new();
    for entry in entries {
        let entry = entry.unwrap();
        let path = entry.path();
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with('.') && file.ends_with(".tmp") {
            continue;
        }
        assert!(
            file.ends_with(".dmbak"),
            "{what}: unexpected file {file} in the backup directory"
        );
        let meta = entry.metadata().unwrap();
        let key = (path.clone(), meta.len(), meta.modified().unwrap());
        let info = verified.entry(key).or_insert_with(|| {
            manager(dir).verify(&path).unwrap_or_else(|e| {
                panic!("{what}: {file} is under its final name but does not verify: {e}")
            })
        });
        found.insert(file, info.clone());
    }
    found
}

fn file_names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn sigkill_at_random_instants_leaves_the_old_or_the_new_database() {
    let kills = kills(None);
    let seed = seed();
    let fixture = Fixture::new(ROWS);
    let template = &fixture.template;
    let old = schema_of(&Connection::open(template).unwrap());
    let ledger = Rows {
        file: template,
        table: "tabLedger",
    };
    let notes = Rows {
        file: template,
        table: "ledger_note",
    };

    let victim = fixture.victim("apply");
    let backups = victim.backups();
    // The new schema, from a run of its own.
    let reference = fixture.path("reference.db");
    std::fs::copy(template, &reference).unwrap();
    let out = fixture.apply(&reference).output().unwrap();
    assert!(out.status.success(), "the reference run failed");
    let new = schema_of(&Connection::open(&reference).unwrap());
    assert_ne!(old, new);

    let mut verified = HashMap::new();
    let check = |copy: &Path, what: &str| -> Side {
        let conn = Connection::open(copy).unwrap();
        intact(&conn, what);
        let schema = schema_of(&conn);
        let side = if schema == old {
            Side::Before
        } else if schema == new {
            Side::After
        } else {
            panic!("{what}: the schema is neither the old nor the new one:\n{schema:#?}");
        };
        // Every row and value as it was; after the migration `amount` as
        // an integer ('42' became 42).
        let converted: &[&str] = match side {
            Side::Before => &[],
            Side::After => &["amount"],
        };
        assert_rows(
            &conn,
            "tabLedger",
            &ledger,
            converted,
            &format!("{what} ({side:?})"),
        );
        assert_rows(&conn, "ledger_note", &notes, &[], what);
        let backups_now = verify_final_names(&backups, &mut verified, what);
        let mut want = vec![row(1, "completed")];
        if side == Side::After {
            want.push(row(2, "completed"));
            let ints: i64 = conn
                .query_row(
                    "SELECT count(*) FROM \"tabLedger\" WHERE typeof(amount) = 'integer'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(ints, ROWS, "{what}: the new schema holds converted values");
            // Every completed run took its backup of `amount`.
            let taken = file_names(&recorded_backups(&conn, 2));
            assert_eq!(taken.len(), 1, "{what}: the migration names no backup");
            let info = backups_now
                .get(&taken[0])
                .unwrap_or_else(|| panic!("{what}: the recorded backup {} is missing", taken[0]));
            assert_eq!(
                info.strategy,
                BackupStrategy::Columns(vec!["amount".into()]),
                "{what}"
            );
            assert_eq!(info.row_count, ROWS as u64, "{what}");
        }
        assert_eq!(
            history(&conn),
            want,
            "{what}: a completed history row must exist iff the new schema is there ({side:?})"
        );
        side
    };
    let mut target = Target {
        name: "apply",
        sides: ["the old schema", "the new one"],
        victim: &victim,
        command: Box::new(|| fixture.apply(&victim.db)),
        check: Box::new(check),
        reset: Box::new(|| victim.reset(template, None)),
    };
    let full = target.reference();
    // The reference run backed up `amount` (checked with the new state),
    // and nothing else is in the backup directory.
    let recorded = || {
        file_names(&recorded_backups(
            &Connection::open(&victim.inspect).unwrap(),
            2,
        ))
    };
    assert_eq!(files(&backups).into_keys().collect::<Vec<_>>(), recorded());

    target.kill_loop(kills, seed, full);
    // The final run left exactly its own backup: what killed runs left
    // (complete backups of migrations that never committed, temporary
    // files) is gone.
    assert_eq!(
        files(&backups).into_keys().collect::<Vec<_>>(),
        recorded(),
        "after the final run, the backup directory holds exactly the recorded backup"
    );
}

// ---------------------------------------------------------------------------
// 2. rollback

#[test]
fn sigkill_during_a_rollback_leaves_the_new_state_or_the_old_one_restored() {
    let kills = kills(Some("DM_CRASH_ROLLBACK_KILLS"));
    let seed = seed();
    let fixture = Fixture::new(SMALL);
    let victim = fixture.victim("rollback");

    // The old state: v1 with amounts an Int column cannot keep.
    victim.reset(&fixture.template, None);
    let conn = Connection::open(&victim.db).unwrap();
    conn.execute_batch(LOSSY).unwrap();
    let lossy: i64 = conn
        .query_row(
            "SELECT count(*) FROM \"tabLedger\" WHERE CAST(CAST(amount AS INTEGER) AS TEXT) IS NOT amount",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(lossy, SMALL / 1000);
    let old = schema_of(&conn);
    drop(conn);
    let old_file = fixture.path("rollback-old.db");
    std::fs::copy(&victim.db, &old_file).unwrap();

    // v2 refuses the lossy conversion without consent, and applies with it.
    let refused = fixture.apply(&victim.db).status().unwrap();
    assert_eq!(refused.code(), Some(2), "v2 must need --allow-data-loss");
    let out = fixture
        .apply(&victim.db)
        .arg("--allow-data-loss")
        .output()
        .unwrap();
    assert!(out.status.success(), "apply --allow-data-loss failed");
    let conn = Connection::open(&victim.db).unwrap();
    let new = schema_of(&conn);
    let id: i64 = conn
        .query_row(
            "SELECT id FROM \"tabMigrationHistory\" WHERE version = 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded_backups(&conn, 2).len(), 1);
    drop(conn);
    assert_ne!(old, new);
    // The migrated template: the database and its backup directory, put
    // back where history names the backup (the victim's directory).
    let migrated = fixture.path("rollback-migrated.db");
    let migrated_backups = fixture.path("rollback-migrated.backups");
    std::fs::copy(&victim.db, &migrated).unwrap();
    copy_dir(&victim.backups(), &migrated_backups);
    let backup_files = files(&migrated_backups);
    let rows_of = |file| Rows {
        file,
        table: "tabLedger",
    };
    let notes = Rows {
        file: &fixture.template,
        table: "ledger_note",
    };
    // The migration changed the lossy values (and the storage class of
    // all): the rollback has something to restore.
    let conn = Connection::open(&migrated).unwrap();
    assert_eq!(
        compare(&conn, "tabLedger", &rows_of(&old_file), &[]).differing,
        SMALL
    );
    drop(conn);

    let check = |copy: &Path, what: &str| -> Side {
        let conn = Connection::open(copy).unwrap();
        intact(&conn, what);
        let schema = schema_of(&conn);
        let (side, want, status) = if schema == new {
            (Side::Before, &migrated, "completed")
        } else if schema == old {
            (Side::After, &old_file, "rolled_back")
        } else {
            panic!("{what}: the schema is neither the new nor the rolled-back one:\n{schema:#?}");
        };
        // Every value, `amount` included with its storage class: as
        // migrated, or the originals ('x3', '0042', '12.5') restored from
        // the backup.
        assert_rows(
            &conn,
            "tabLedger",
            &rows_of(want),
            &[],
            &format!("{what} ({side:?})"),
        );
        assert_rows(&conn, "ledger_note", &notes, &[], what);
        assert_eq!(
            history(&conn),
            [row(1, "completed"), row(2, status)],
            "{what}: the history row must say {status} ({side:?})"
        );
        assert_eq!(
            files(&victim.backups()),
            backup_files,
            "{what}: the backup directory changed"
        );
        side
    };
    let mut target = Target {
        name: "rollback",
        sides: ["the new state", "the old one restored"],
        victim: &victim,
        command: Box::new(|| {
            let mut cmd = cli();
            cmd.arg("rollback")
                .arg("--db")
                .arg(&victim.db)
                .arg("--id")
                .arg(id.to_string())
                .arg("--json");
            cmd
        }),
        check: Box::new(check),
        reset: Box::new(|| victim.reset(&migrated, Some(&migrated_backups))),
    };
    let full = target.reference();
    target.kill_loop(kills, seed, full);
}

// ---------------------------------------------------------------------------
// 3. backup restore

/// The restore loops' victim: v1 with a full backup of the ledger taken
/// (so the backed-up rows are the template's), then rows changed, deleted
/// and added and logging triggers created.
struct RestoreFixture {
    fixture: Fixture,
    victim: Victim,
    /// The victim before any restore, and its backup directory.
    pristine: PathBuf,
    pristine_backups: PathBuf,
    backup: PathBuf,
    /// Whether the child table referencing the ledger is there.
    children: bool,
    schema: Schema,
}

impl RestoreFixture {
    /// With `children`, the child table referencing the ledger is kept;
    /// without, it is dropped first.
    fn new(name: &str, children: bool) -> Self {
        let fixture = Fixture::new(SMALL);
        let victim = fixture.victim(name);
        victim.reset(&fixture.template, None);
        let conn = Connection::open(&victim.db).unwrap();
        if !children {
            conn.execute_batch("DROP TABLE \"ledger_note\"").unwrap();
        }
        let info = manager(&victim.backups())
            .backup_table(&conn, "tabLedger", BackupStrategy::FullTable, None)
            .unwrap();
        assert_eq!(info.row_count, SMALL as u64);
        conn.execute_batch(CHANGED_SINCE_BACKUP).unwrap();
        let schema = schema_of(&conn);
        drop(conn);
        let pristine = fixture.path(&format!("{name}-pristine.db"));
        let pristine_backups = fixture.path(&format!("{name}-pristine.backups"));
        std::fs::copy(&victim.db, &pristine).unwrap();
        copy_dir(&victim.backups(), &pristine_backups);
        let f = RestoreFixture {
            victim,
            pristine,
            pristine_backups,
            backup: info.path,
            children,
            schema,
            fixture,
        };
        let conn = Connection::open(&f.pristine).unwrap();
        assert!(!compare(&conn, "tabLedger", &f.backed_up(), &[]).same());
        f
    }

    /// The ledger as backed up: the template's.
    fn backed_up(&self) -> Rows<'_> {
        Rows {
            file: &self.fixture.template,
            table: "tabLedger",
        }
    }

    /// The ledger as changed since the backup.
    fn changed(&self) -> Rows<'_> {
        Rows {
            file: &self.pristine,
            table: "tabLedger",
        }
    }

    fn target<'a>(
        &'a self,
        name: &'static str,
        into: Option<&'static str>,
        check: impl FnMut(&Path, &str) -> Side + 'a,
    ) -> Target<'a> {
        Target {
            name,
            sides: ["the table as before", "the backed-up rows restored"],
            victim: &self.victim,
            command: Box::new(move || {
                let mut cmd = cli();
                cmd.args(["backup", "restore", "--db"])
                    .arg(&self.victim.db)
                    .arg(&self.backup)
                    .arg("--json");
                if let Some(table) = into {
                    cmd.arg("--into").arg(table);
                }
                cmd
            }),
            check: Box::new(check),
            reset: Box::new(|| {
                self.victim
                    .reset(&self.pristine, Some(&self.pristine_backups))
            }),
        }
    }

    /// What holds on both sides: intact, the other tables, history and the
    /// backup directory untouched, the logging triggers never fired.
    fn common(&self, conn: &Connection, what: &str) {
        intact(conn, what);
        if self.children {
            let notes = Rows {
                file: &self.fixture.template,
                table: "ledger_note",
            };
            assert_rows(conn, "ledger_note", &notes, &[], what);
        }
        let logged: i64 = conn
            .query_row("SELECT count(*) FROM \"ledger_log\"", [], |r| r.get(0))
            .unwrap();
        assert_eq!(logged, 0, "{what}: the table's triggers fired");
        assert_eq!(history(conn), [row(1, "completed")], "{what}: history");
        assert_eq!(
            files(&self.victim.backups()),
            files(&self.pristine_backups),
            "{what}: the backup directory changed"
        );
    }
}

/// The restore kills for one target: half of `DM_CRASH_RESTORE_KILLS` (the
/// original table gets the odd one).
fn restore_kills(original: bool) -> u64 {
    let n = kills(Some("DM_CRASH_RESTORE_KILLS"));
    if original { n.div_ceil(2) } else { n / 2 }
}

#[test]
fn sigkill_during_a_restore_into_the_original_table_leaves_it_before_or_restored() {
    // No table references the ledger here: `backup restore` refuses to
    // replace the rows of a referenced table while foreign keys are on,
    // and the command line has them on (SQLite's default in this build).
    let f = RestoreFixture::new("restore-original", false);
    let check = |copy: &Path, what: &str| -> Side {
        let conn = Connection::open(copy).unwrap();
        f.common(&conn, what);
        // Same schema on both sides: the table existed, and its triggers
        // are back.
        assert_eq!(schema_of(&conn), f.schema, "{what}: schema");
        if compare(&conn, "tabLedger", &f.changed(), &[]).same() {
            Side::Before
        } else {
            let what = format!("{what}: neither as before nor as backed up");
            assert_rows(&conn, "tabLedger", &f.backed_up(), &[], &what);
            Side::After
        }
    };
    let mut target = f.target("restore into the original table", None, check);
    let full = target.reference();
    target.kill_loop(restore_kills(true), seed(), full);
}

#[test]
fn sigkill_during_a_restore_into_a_new_table_leaves_no_table_or_all_of_it() {
    let f = RestoreFixture::new("restore-into", true);
    let mut restored_schema: Option<Schema> = None;
    let check = |copy: &Path, what: &str| -> Side {
        let conn = Connection::open(copy).unwrap();
        f.common(&conn, what);
        assert_rows(
            &conn,
            "tabLedger",
            &f.changed(),
            &[],
            &format!("{what}: source"),
        );
        let schema = schema_of(&conn);
        if schema == f.schema {
            return Side::Before;
        }
        // The first restore seen (the reference run) fixes the schema.
        let want = restored_schema.get_or_insert_with(|| schema.clone());
        assert_eq!(&schema, want, "{what}: schema neither before nor after");
        assert!(
            schema.iter().any(|(t, n, _)| t == "table" && n == RESTORED),
            "{what}: schema"
        );
        assert_rows(&conn, RESTORED, &f.backed_up(), &[], what);
        Side::After
    };
    let mut target = f.target("restore into a new table", Some(RESTORED), check);
    let full = target.reference();
    target.kill_loop(restore_kills(false), seed(), full);
}
