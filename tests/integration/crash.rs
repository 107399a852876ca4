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
//! [`Target::kill_loop_with`] is the same loop with the instants chosen by
//! the caller ([`Strike`]): a delay from the start, or from the moment the
//! run logged given entries to the audit log beside the database (polled;
//! every entry is one line written as the event happens). It keeps what
//! each killed run had logged, so a loop can tell where its kills landed.
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
//! 4. **Fast paths**: one DocType change that copies no row, on a ledger
//!    beside 600 unrelated tables (as in a Frappe site): a DEFAULT change
//!    and `VARCHAR(140)` -> `VARCHAR(255)` (a schema-text edit: view
//!    `_dm_schema_edit` created, `writable_schema`, `UPDATE sqlite_schema`,
//!    view dropped), a NOT NULL relaxed (native `DROP NOT NULL`), and a
//!    column made NOT NULL with its NULLs filled by its new default (a
//!    column backup, the fill `UPDATE`, native `SET NOT NULL`). `plan
//!    --json` must say `"approach": "in_place"` with exactly those
//!    statements, so the loop cannot silently test a rebuild.
//!    - **`apply`** (100,000 rows, a third of them NULL in the filled
//!      column): a third of the kills over the whole run, a third after the
//!      run logged its backup (over the steps, verification and commit), a
//!      third within 300 µs of the schema edit's first statement. After
//!      each, `sqlite_schema` (root pages included) is byte-identical to the
//!      old or the new schema, never holding the view; every row, value and
//!      storage class is unchanged, or after the migration exactly as
//!      filled; a `completed` history row exists iff the new schema is
//!      there, naming the column backup, which verifies. From the audit
//!      log: every step a killed run logged is the plan's next statement; a
//!      run that logged its commit left the new state, one that had not
//!      verified the old one. The loop prints where its kills found the run
//!      (before the steps, inside the schema edit, in the native steps,
//!      verifying or committing, after the commit) and fails if none landed
//!      inside the steps.
//!    - **`rollback`** of that migration (50,000 rows): the native reverse
//!      steps, the edit back to the original CREATE text, and the NULLs
//!      restored from the column backup. Afterwards the database is exactly
//!      at the new state (history row `completed`) or exactly at the old one,
//!      NULLs back and every other value as it was (history row
//!      `rolled_back`); the child table and the backup directory untouched.
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
//! `DM_CRASH_FASTPATH_KILLS`, `DM_CRASH_ROLLBACK_KILLS` and
//! `DM_CRASH_RESTORE_KILLS` override it for the fast-path apply, the
//! rollback (both rollback loops) and the restore kills (these are split
//! between the two restore targets, the original table getting the odd
//! one). Instants come from a seeded PRNG, `DM_CRASH_SEED` to replay a run
//! (the seed is printed; each loop mixes it with its name); the instants
//! anchored at an audit entry also depend on when the run logs it.
//! `scripts/crash.sh` runs the long version: 500 apply, 500 fast-path
//! apply, 200 rollback and 200 restore kills, or `scripts/crash.sh N
//! [SEED]` for N of each kind.

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
/// change is lossless).
const DATA: &str = r#"
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
INSERT INTO "tabLedger" (name, account, amount, memo, qty, posted)
SELECT printf('L-%07d', i), 'ACC-' || (i % 97), CAST(i * 7 % 100003 AS TEXT),
       'memo ' || i, i * 0.25, '2024-01-01' FROM n;
"#;

/// An unmanaged child table whose foreign key points at the ledger
/// (`{children}` rows): a migration must never cascade into it.
const CHILDREN: &str = r#"
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
    /// The ledger of the rebuild loops ([`V1`], [`V2`], [`DATA`],
    /// [`CHILDREN`]).
    fn new(rows: i64) -> Self {
        Fixture::of(rows, V1, V2, &[DATA, CHILDREN])
    }

    /// A ledger of the DocType `v1` with `rows` rows (the SQL of `data`,
    /// with `{rows}` and `{children}` in it), to migrate to `v2`.
    fn of(rows: i64, v1: &str, v2: &str, data: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (v, json) in [("v1", v1), ("v2", v2)] {
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
                &data
                    .concat()
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
    /// The audit log beside it.
    fn audit(&self) -> PathBuf {
        doctype_migrate::audit_log_path_for(&self.db)
    }

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
        self.run_to_end(what, &[]).0
    }

    /// [`Target::uninterrupted`], also timing the run from the moment it
    /// logged the entries of `anchor` ([`await_anchor`]): returns how long
    /// it took in all and from then (zero without an anchor).
    fn run_to_end(&mut self, what: &str, anchor: &[Anchor]) -> (Duration, Duration) {
        let what = format!("{} {what}", self.name);
        let (stdout, stderr) = (
            suffixed(&self.victim.inspect, ".stdout"),
            suffixed(&self.victim.inspect, ".stderr"),
        );
        let mut audit = AuditTail::at_end(&self.victim.audit());
        let t = Instant::now();
        let mut child = (self.command)()
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut logged = Vec::new();
        let seen = await_anchor(&mut child, &mut audit, anchor, &mut logged);
        let anchored = Instant::now();
        let status = child.wait().unwrap();
        let (took, from_anchor) = (t.elapsed(), anchored.elapsed());
        let output = || {
            format!(
                "{}{}",
                std::fs::read_to_string(&stdout).unwrap_or_default(),
                std::fs::read_to_string(&stderr).unwrap_or_default()
            )
        };
        assert!(status.success(), "{what}: {status}\n{}", output());
        assert!(
            seen,
            "{what}: the run never logged {anchor:?}\n{}",
            output()
        );
        let side = self.check_now(&what);
        assert_eq!(side, Side::After, "{what}");
        let from_anchor = if anchor.is_empty() {
            Duration::ZERO
        } else {
            from_anchor
        };
        (took, from_anchor)
    }

    /// The reference run, from the state before the command: how long an
    /// uninterrupted run takes. Leaves the victim after the command.
    fn reference(&mut self) -> Duration {
        (self.reset)();
        self.uninterrupted("reference run")
    }

    /// [`Target::reference`], also timing the run from `anchor` (see
    /// [`Target::run_to_end`]).
    fn reference_from(&mut self, anchor: &[Anchor]) -> (Duration, Duration) {
        (self.reset)();
        self.run_to_end("reference run", anchor)
    }

    /// `kills` SIGKILLs at random instants over `full` and a fifth past it,
    /// each followed by the check; then one uninterrupted run.
    fn kill_loop(&mut self, kills: u64, seed: u64, full: Duration) -> Tally {
        let window = (full.as_micros() as u64 * 6 / 5).max(1);
        self.kill_loop_with(kills, seed, full, |_, rng| Strike {
            anchor: &[],
            delay: Duration::from_micros(rng.below(window)),
        })
    }

    /// `kills` SIGKILLs, the `k`th at the instant `strike(k, rng)` says,
    /// each followed by the check; then one uninterrupted run (`full`: how
    /// long the reference run took, for the summary). The tally
    /// keeps, for every kill, what its run had logged when it died.
    fn kill_loop_with(
        &mut self,
        kills: u64,
        seed: u64,
        full: Duration,
        mut strike: impl FnMut(u64, &mut Rng) -> Strike,
    ) -> Tally {
        let mut rng = Rng::for_loop(seed, self.name);
        let started = Instant::now();
        let mut tally = Tally::default();
        (self.reset)();
        for k in 0..kills {
            let Strike { anchor, delay } = strike(k, &mut rng);
            let journal_before = self.victim.journal_stamp();
            if journal_before.is_some() {
                tally.inherited += 1;
            }
            let mut audit = AuditTail::at_end(&self.victim.audit());
            let mut child = (self.command)().spawn().unwrap();
            let mut logged = Vec::new();
            let seen = await_anchor(&mut child, &mut audit, anchor, &mut logged);
            pause(delay);
            let finished_before_kill = child.try_wait().unwrap().is_some();
            let _ = child.kill(); // SIGKILL on Unix
            let status = child.wait().unwrap();
            logged.extend(audit.read(child.id()));
            let since = match anchor.last() {
                None => String::new(),
                Some((action, sql)) => format!(" past its audit entry {action} {sql:?}"),
            };
            let what = format!(
                "{} kill {k} after {delay:?}{since} (seed {seed:#x})",
                self.name
            );
            if finished_before_kill {
                tally.exited += 1;
                assert!(
                    status.success(),
                    "{what}: the run failed on its own: {status}"
                );
            }
            assert!(seen, "{what}: the run ended without logging {anchor:?}");
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
            tally.kills.push(Kill { what, side, logged });
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

/// When a kill strikes: `delay` after the command starts, or, with an
/// `anchor`, after its run logged the anchor's audit entries.
#[derive(Debug, Clone, Copy)]
struct Strike {
    anchor: &'static [Anchor],
    delay: Duration,
}

/// An audit log entry to wait for: its action and how its SQL starts (for
/// `step` entries; `""` matches any).
type Anchor = (&'static str, &'static str);

/// Sleeps for `d`, or spins when it is below two milliseconds (a sleep
/// overshoots by tens of microseconds).
fn pause(d: Duration) {
    if d >= Duration::from_millis(2) {
        std::thread::sleep(d);
        return;
    }
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Waits until the child has logged the entries of `anchor`, in order;
/// `false` when it exited first. The audit log is polled every millisecond,
/// or constantly for the last entry of an anchor of two or more (the first
/// entries bring the run close, the last one is the instant that counts).
/// Everything the run logged meanwhile goes to `logged`.
fn await_anchor(
    child: &mut std::process::Child,
    audit: &mut AuditTail,
    anchor: &[Anchor],
    logged: &mut Vec<Logged>,
) -> bool {
    let mut next = 0;
    loop {
        for entry in audit.read(child.id()) {
            if next < anchor.len() && entry.is(anchor[next]) {
                next += 1;
            }
            logged.push(entry);
        }
        if next == anchor.len() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            // What it logged just before exiting.
            for entry in audit.read(child.id()) {
                if next < anchor.len() && entry.is(anchor[next]) {
                    next += 1;
                }
                logged.push(entry);
            }
            return next == anchor.len();
        }
        if next + 1 == anchor.len() && anchor.len() > 1 {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// One entry of the audit log: its action and, for a step, its SQL.
#[derive(Debug, Clone)]
struct Logged {
    action: String,
    sql: Option<String>,
}

impl Logged {
    fn is(&self, (action, sql): Anchor) -> bool {
        self.action == action
            && (sql.is_empty() || self.sql.as_deref().is_some_and(|s| s.starts_with(sql)))
    }
}

/// The audit log beside the victim, read from where it ended: the entries
/// one run (by pid) appended since. Every entry is one `write` of one line,
/// so complete lines are complete entries.
struct AuditTail {
    path: PathBuf,
    offset: u64,
}

impl AuditTail {
    fn at_end(path: &Path) -> Self {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        AuditTail {
            path: path.to_path_buf(),
            offset,
        }
    }

    /// The entries of process `pid` appended since the last read.
    fn read(&mut self, pid: u32) -> Vec<Logged> {
        use std::io::{Read, Seek, SeekFrom};
        if std::fs::metadata(&self.path).map_or(0, |m| m.len()) <= self.offset {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        let mut file = std::fs::File::open(&self.path).unwrap();
        file.seek(SeekFrom::Start(self.offset)).unwrap();
        file.read_to_end(&mut bytes).unwrap();
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.offset += complete as u64;
        bytes[..complete]
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice::<serde_json::Value>(line).unwrap())
            .filter(|entry| entry["pid"].as_u64() == Some(u64::from(pid)))
            .map(|entry| Logged {
                action: entry["action"].as_str().unwrap_or_default().to_string(),
                sql: entry["details"]["sql"].as_str().map(str::to_string),
            })
            .collect()
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
    /// Every kill, in order.
    kills: Vec<Kill>,
}

/// One kill: its name for messages, the side it left and what its run had
/// logged to the audit log when it died.
#[derive(Debug)]
struct Kill {
    what: String,
    side: Side,
    logged: Vec<Logged>,
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

/// The history a killed apply of migration 2 may leave: migration 1
/// completed and, on the new side only, migration 2 completed, naming one
/// column backup of `column` holding `rows` rows that is in the backup
/// directory (`backups_now`, as [`verify_final_names`] found it).
fn assert_apply_recorded(
    conn: &Connection,
    side: Side,
    backups_now: &BTreeMap<String, BackupInfo>,
    (column, rows): (&str, i64),
    what: &str,
) {
    let mut want = vec![row(1, "completed")];
    if side == Side::After {
        want.push(row(2, "completed"));
        let taken = file_names(&recorded_backups(conn, 2));
        assert_eq!(taken.len(), 1, "{what}: the migration names no backup");
        let info = backups_now
            .get(&taken[0])
            .unwrap_or_else(|| panic!("{what}: the recorded backup {} is missing", taken[0]));
        assert_eq!(
            info.strategy,
            BackupStrategy::Columns(vec![column.into()]),
            "{what}"
        );
        assert_eq!(info.row_count, rows as u64, "{what}");
    }
    assert_eq!(
        history(conn),
        want,
        "{what}: a completed history row must exist iff the new schema is there ({side:?})"
    );
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
        if side == Side::After {
            let ints: i64 = conn
                .query_row(
                    "SELECT count(*) FROM \"tabLedger\" WHERE typeof(amount) = 'integer'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(ints, ROWS, "{what}: the new schema holds converted values");
        }
        // Every completed run took its backup of `amount`.
        assert_apply_recorded(&conn, side, &backups_now, ("amount", ROWS), what);
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

/// A rollback loop: `rollback --id <id>` on the victim, reset before each
/// run to the migrated copy and its backup directory.
struct Rollback<'a> {
    name: &'static str,
    victim: &'a Victim,
    /// The history id of the migration to roll back.
    id: i64,
    /// The victim migrated, and its backup directory.
    migrated: &'a Path,
    migrated_backups: &'a Path,
    /// The file whose `ledger_note` rows every copy must hold.
    notes: &'a Path,
}

impl<'a> Rollback<'a> {
    /// The reference run and `kills` SIGKILLs, each copy checked: intact;
    /// `side_of` does the loop's own checks and says which side the copy
    /// is at, which file holds the ledger rows it must have and what its
    /// history row must say; then the ledger and its notes, the history
    /// and the backup directory (unchanged) are checked.
    fn kill_loop(
        &self,
        kills: u64,
        seed: u64,
        side_of: impl Fn(&Connection, &str) -> (Side, &'a Path, &'static str) + 'a,
    ) {
        let victim = self.victim;
        let notes = self.notes;
        let backup_files = files(self.migrated_backups);
        let check = move |copy: &Path, what: &str| -> Side {
            let conn = Connection::open(copy).unwrap();
            intact(&conn, what);
            let (side, want, status) = side_of(&conn, what);
            let rows = Rows {
                file: want,
                table: "tabLedger",
            };
            assert_rows(
                &conn,
                "tabLedger",
                &rows,
                &[],
                &format!("{what} ({side:?})"),
            );
            let notes = Rows {
                file: notes,
                table: "ledger_note",
            };
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
        let (id, migrated, migrated_backups) = (self.id, self.migrated, self.migrated_backups);
        let mut target = Target {
            name: self.name,
            sides: ["the new state", "the old one restored"],
            victim,
            command: Box::new(move || {
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
            reset: Box::new(move || victim.reset(migrated, Some(migrated_backups))),
        };
        let full = target.reference();
        target.kill_loop(kills, seed, full);
    }
}

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
    let rows_of = |file| Rows {
        file,
        table: "tabLedger",
    };
    // The migration changed the lossy values (and the storage class of
    // all): the rollback has something to restore.
    let conn = Connection::open(&migrated).unwrap();
    assert_eq!(
        compare(&conn, "tabLedger", &rows_of(&old_file), &[]).differing,
        SMALL
    );
    drop(conn);

    let rollback = Rollback {
        name: "rollback",
        victim: &victim,
        id,
        migrated: &migrated,
        migrated_backups: &migrated_backups,
        notes: &fixture.template,
    };
    // Every value, `amount` included with its storage class: as migrated,
    // or the originals ('x3', '0042', '12.5') restored from the backup.
    rollback.kill_loop(kills, seed, |conn, what| {
        let schema = schema_of(conn);
        if schema == new {
            (Side::Before, migrated.as_path(), "completed")
        } else if schema == old {
            (Side::After, old_file.as_path(), "rolled_back")
        } else {
            panic!("{what}: the schema is neither the new nor the rolled-back one:\n{schema:#?}");
        }
    });
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

// ---------------------------------------------------------------------------
// 4. fast paths

/// Rows of the fast-path apply loop's ledger: a third of them NULL in
/// `note`, so the NULL fill and its column backup take measurable time.
const FAST_ROWS: i64 = 100_000;

/// The fast-path ledger: v1 of [`V1`] with a DEFAULT (`status`), a Data
/// field (`reference`, VARCHAR(140)), a NOT NULL one (`code`) and a
/// nullable one (`note`).
const FAST_V1: &str = r#"{"name": "Ledger", "fields": [
    {"fieldname": "account", "fieldtype": "Data", "search_index": 1},
    {"fieldname": "amount", "fieldtype": "Data"},
    {"fieldname": "memo", "fieldtype": "Small Text"},
    {"fieldname": "qty", "fieldtype": "Float"},
    {"fieldname": "posted", "fieldtype": "Date"},
    {"fieldname": "status", "fieldtype": "Data", "default": "Open"},
    {"fieldname": "reference", "fieldtype": "Data"},
    {"fieldname": "code", "fieldtype": "Data", "not_nullable": 1},
    {"fieldname": "note", "fieldtype": "Data"}
]}"#;

/// v2 changes no stored value but the NULLs of `note`: `status` DEFAULT
/// 'Open' -> 'Closed' and `reference` VARCHAR(140) -> VARCHAR(255) (edits
/// of the CREATE text), `code` loses NOT NULL (native DROP NOT NULL),
/// `note` becomes NOT NULL DEFAULT '-' with its NULLs filled with '-' (a
/// column backup, the fill UPDATE, native SET NOT NULL, and a DEFAULT
/// edit).
const FAST_V2: &str = r#"{"name": "Ledger", "fields": [
    {"fieldname": "account", "fieldtype": "Data", "search_index": 1},
    {"fieldname": "amount", "fieldtype": "Data"},
    {"fieldname": "memo", "fieldtype": "Small Text"},
    {"fieldname": "qty", "fieldtype": "Float"},
    {"fieldname": "posted", "fieldtype": "Date"},
    {"fieldname": "status", "fieldtype": "Data", "default": "Closed"},
    {"fieldname": "reference", "fieldtype": "Data", "length": 255},
    {"fieldname": "code", "fieldtype": "Data"},
    {"fieldname": "note", "fieldtype": "Data", "not_nullable": 1, "default": "-"}
]}"#;

/// Rows for the fast-path ledger: NULLs, explicit values and blobs in the
/// edited columns (a blob keeps its storage class under TEXT affinity), a
/// third of `note` NULL.
const FAST_DATA: &str = r#"
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
INSERT INTO "tabLedger"
    (name, account, amount, memo, qty, posted, status, reference, code, note)
SELECT printf('L-%07d', i), 'ACC-' || (i % 97), CAST(i * 7 % 100003 AS TEXT),
       CASE WHEN i % 11 = 0 THEN NULL ELSE 'memo ' || i END, i * 0.25, '2024-01-01',
       CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN 'Open' ELSE 'Paid' END,
       CASE i % 7 WHEN 0 THEN CAST('R-' || i AS BLOB) WHEN 1 THEN NULL ELSE 'R-' || i END,
       'C-' || i,
       CASE i % 3 WHEN 0 THEN NULL WHEN 1 THEN 'n' || i ELSE x'6e00ff' END
FROM n;
"#;

/// Unrelated tables (each with an index) beside the fast-path ledger, as
/// in a Frappe site (an ERPNext site has some 800 tables). They make the
/// schema edit last long enough to be hit: after the edit, SQLite reloads
/// the whole schema (`writable_schema = RESET`, the view's DROP).
const OTHER_TABLES: usize = 600;

/// What the fill does to the rows (run on a copy of the template, for the
/// rows the new state must hold).
const FILL: &str = r#"UPDATE "tabLedger" SET note = '-' WHERE note IS NULL"#;

/// The view a schema-text edit creates and drops around it.
const SCHEMA_EDIT_VIEW: &str = "_dm_schema_edit";

/// The audit entry the fast-path steps follow (the backup is the last
/// thing a run does before them), and the first of them.
const BACKED_UP: Anchor = ("backup_written", "");
const VIEW_CREATED: Anchor = ("step", "CREATE VIEW \"_dm_schema_edit\"");

/// `sqlite_schema` as stored: type, name, table, root page and SQL of
/// every object. A fast path moves no root page.
type StoredSchema = Vec<(String, String, String, i64, Option<String>)>;

fn stored_schema(conn: &Connection) -> StoredSchema {
    conn.prepare(
        "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_schema ORDER BY type, name",
    )
    .unwrap()
    .query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

impl Fixture {
    /// The fast-path ledger (`FAST_*`) with `rows` rows and its child
    /// table.
    fn fast(rows: i64) -> Self {
        let fixture = Fixture::of(rows, FAST_V1, FAST_V2, &[FAST_DATA, CHILDREN]);
        let others: String = (0..OTHER_TABLES)
            .map(|i| {
                format!(
                    "CREATE TABLE \"other_{i}\" (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c INTEGER);\n\
                     CREATE INDEX \"other_{i}_a\" ON \"other_{i}\" (a);\n"
                )
            })
            .collect();
        Connection::open(&fixture.template)
            .unwrap()
            .execute_batch(&format!("BEGIN;\n{others}COMMIT;"))
            .unwrap();
        fixture
    }

    /// A copy of the template with the NULLs of `note` filled: the rows
    /// after the fast-path migration.
    fn filled(&self) -> PathBuf {
        let filled = self.path("filled.db");
        std::fs::copy(&self.template, &filled).unwrap();
        let conn = Connection::open(&filled).unwrap();
        let nulls = count_nulls(&conn, "tabLedger", "note");
        assert!(nulls > 0);
        assert_eq!(conn.execute(FILL, []).unwrap() as i64, nulls);
        filled
    }
}

fn count_nulls(conn: &Connection, table: &str, column: &str) -> i64 {
    conn.query_row(
        &format!("SELECT count(*) FROM \"{table}\" WHERE \"{column}\" IS NULL"),
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// The fast-path migration as `plan --json` gives it on `db`: one DocType
/// migrated in place (no row copied): the schema-text edit, then the
/// native nullability steps with the fill; a column backup of `note`.
/// Returns its forward SQL.
fn fast_plan(fixture: &Fixture, db: &Path) -> Vec<String> {
    let out = cli()
        .arg("plan")
        .arg("--db")
        .arg(db)
        .arg("--doctypes")
        .arg(&fixture.v2)
        .arg("--json")
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "plan failed: {}", out.status);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let [doctype] = plan["doctypes"].as_array().unwrap().as_slice() else {
        panic!("one DocType is planned: {plan:#}");
    };
    assert_eq!(
        doctype["approach"], "in_place",
        "the migration must take the fast paths, not a rebuild: {doctype:#}"
    );
    assert_eq!(
        doctype["backups"],
        serde_json::json!([{"table": "tabLedger", "strategy": {"kind": "columns", "columns": ["note"]}}]),
        "the fill's column backup"
    );
    let forward: Vec<String> = doctype["forward_sql"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let expected = [
        "CREATE VIEW \"_dm_schema_edit\" AS SELECT 1",
        "PRAGMA writable_schema = ON",
        "UPDATE sqlite_schema SET sql = 'CREATE TABLE \"tabLedger\"",
        "PRAGMA writable_schema = RESET",
        "DROP VIEW \"_dm_schema_edit\"",
        "ALTER TABLE \"tabLedger\" ALTER COLUMN \"code\" DROP NOT NULL",
        "UPDATE \"tabLedger\" SET \"note\" = '-' WHERE \"note\" IS NULL",
        "ALTER TABLE \"tabLedger\" ALTER COLUMN \"note\" SET NOT NULL",
    ];
    assert_eq!(forward.len(), expected.len(), "{forward:#?}");
    for (sql, want) in forward.iter().zip(expected) {
        assert!(
            sql.starts_with(want),
            "{sql:?} is not {want:?}…: {forward:#?}"
        );
    }
    forward
}

/// Panics unless the new schema is the old one with exactly the v2 edits
/// of the ledger's columns (and nothing else moved, root pages included).
fn assert_fast_target(old: &StoredSchema, new: &StoredSchema, conn: &Connection, template: &Path) {
    let others = |s: &StoredSchema| -> StoredSchema {
        s.iter()
            .filter(|o| !(o.0 == "table" && o.1 == "tabLedger"))
            .cloned()
            .collect()
    };
    assert_eq!(
        others(new),
        others(old),
        "only the ledger's CREATE text changes"
    );
    let ledger = |s: &StoredSchema| {
        s.iter()
            .find(|o| o.0 == "table" && o.1 == "tabLedger")
            .map(|o| o.3)
    };
    assert_eq!(ledger(new), ledger(old), "the ledger keeps its root page");
    let mut want = crate::common::columns(&Connection::open(template).unwrap(), "tabLedger");
    for (name, decl, not_null, default, _) in &mut want {
        match name.as_str() {
            "status" => *default = Some("'Closed'".into()),
            "reference" => *decl = "VARCHAR(255)".into(),
            "code" => *not_null = false,
            "note" => (*not_null, *default) = (true, Some("'-'".into())),
            _ => {}
        }
    }
    assert_eq!(crate::common::columns(conn, "tabLedger"), want);
}

#[test]
fn sigkill_during_fast_path_steps_leaves_the_old_or_the_new_database() {
    let kills = kills(Some("DM_CRASH_FASTPATH_KILLS"));
    let seed = seed();
    let fixture = Fixture::fast(FAST_ROWS);
    let template = &fixture.template;
    let filled = fixture.filled();
    let old = stored_schema(&Connection::open(template).unwrap());
    let victim = fixture.victim("fast-path-apply");
    let backups = victim.backups();
    victim.reset(template, None);
    let forward = fast_plan(&fixture, &victim.db);

    let mut new: Option<StoredSchema> = None;
    let mut verified = HashMap::new();
    let check = |copy: &Path, what: &str| -> Side {
        let conn = Connection::open(copy).unwrap();
        intact(&conn, what);
        let schema = stored_schema(&conn);
        assert!(
            !schema.iter().any(|o| o.1 == SCHEMA_EDIT_VIEW),
            "{what}: the schema edit's view is left: {schema:#?}"
        );
        let side = if schema == old {
            Side::Before
        } else {
            // The first new schema seen (the reference run's) is checked
            // column by column; every later one must be it byte for byte.
            let want = new.get_or_insert_with(|| {
                assert_fast_target(&old, &schema, &conn, template);
                schema.clone()
            });
            assert_eq!(
                &schema, want,
                "{what}: the schema is neither the old nor the new one"
            );
            Side::After
        };
        // Every row and value as it was, storage class included; after the
        // migration with the NULLs of `note` filled, and only those.
        let rows = Rows {
            file: if side == Side::Before {
                template
            } else {
                &filled
            },
            table: "tabLedger",
        };
        assert_rows(
            &conn,
            "tabLedger",
            &rows,
            &[],
            &format!("{what} ({side:?})"),
        );
        let notes = Rows {
            file: template,
            table: "ledger_note",
        };
        assert_rows(&conn, "ledger_note", &notes, &[], what);
        let backups_now = verify_final_names(&backups, &mut verified, what);
        assert_apply_recorded(&conn, side, &backups_now, ("note", FAST_ROWS), what);
        side
    };
    let mut target = Target {
        name: "fast-path apply",
        sides: ["the old schema", "the new one"],
        victim: &victim,
        command: Box::new(|| fixture.apply(&victim.db)),
        check: Box::new(check),
        reset: Box::new(|| victim.reset(template, None)),
    };
    // The reference run, timed from its backup: the steps, verification
    // and commit that follow.
    let (full, tail) = target.reference_from(&[BACKED_UP]);
    let recorded = || {
        file_names(&recorded_backups(
            &Connection::open(&victim.inspect).unwrap(),
            2,
        ))
    };
    assert_eq!(files(&backups).into_keys().collect::<Vec<_>>(), recorded());

    // A third of the kills over the whole run, a third after the backup
    // (over the steps, verification and commit), a third within 300 µs
    // of the schema edit's first statement (while its view exists).
    let window = (full.as_micros() as u64 * 6 / 5).max(1);
    let after_backup = (tail.as_micros() as u64 * 6 / 5).max(1);
    let tally = target.kill_loop_with(kills, seed, full, |k, rng| match k % 3 {
        0 => Strike {
            anchor: &[],
            delay: Duration::from_micros(rng.below(window)),
        },
        1 => Strike {
            anchor: &[BACKED_UP],
            delay: Duration::from_micros(rng.below(after_backup)),
        },
        _ => Strike {
            anchor: &[BACKED_UP, VIEW_CREATED],
            delay: Duration::from_micros(rng.below(300)),
        },
    });
    assert_eq!(
        files(&backups).into_keys().collect::<Vec<_>>(),
        recorded(),
        "after the final run, the backup directory holds exactly the recorded backup"
    );

    // Where each kill found its run, from what it had logged: every step
    // logged is the plan's next statement (nothing but the fast paths
    // ran); a run that logged its commit left the new state, one that had
    // not verified yet the old one.
    let mut places: BTreeMap<&str, u64> = BTreeMap::new();
    for kill in &tally.kills {
        let what = &kill.what;
        let steps: Vec<&str> = kill
            .logged
            .iter()
            .filter(|e| e.action == "step")
            .map(|e| e.sql.as_deref().unwrap_or_default())
            .collect();
        assert!(
            steps.len() <= forward.len() && steps.iter().zip(&forward).all(|(a, b)| a == b),
            "{what}: the run logged steps other than the plan's: {steps:#?}"
        );
        let logged = |action: &str| kill.logged.iter().any(|e| e.action == action);
        let place = if logged("commit") {
            assert_eq!(kill.side, Side::After, "{what}: the run had committed");
            "after the commit"
        } else if logged("verify") {
            "verifying or committing"
        } else {
            assert_eq!(kill.side, Side::Before, "{what}: the run had not verified");
            match steps.len() {
                0 => "before the steps",
                1..5 => "inside the schema edit",
                _ => "in the native steps",
            }
        };
        *places.entry(place).or_default() += 1;
    }
    eprintln!("crash fast-path apply: the kills found the run {places:?}");
    let inside = places.get("inside the schema edit").copied().unwrap_or(0)
        + places.get("in the native steps").copied().unwrap_or(0);
    assert!(
        kills < 6 || inside > 0,
        "no kill landed between the first fast-path statement and the commit: {places:?}"
    );
}

#[test]
fn sigkill_during_a_fast_path_rollback_leaves_the_new_state_or_the_old_one_restored() {
    let kills = kills(Some("DM_CRASH_ROLLBACK_KILLS"));
    let seed = seed();
    let fixture = Fixture::fast(SMALL);
    let template = &fixture.template;
    let filled = fixture.filled();
    let old = stored_schema(&Connection::open(template).unwrap());
    let victim = fixture.victim("fast-path-rollback");

    // The migrated template: v2 applied in place, with its backup
    // directory (where history names the backup: the victim's).
    victim.reset(template, None);
    fast_plan(&fixture, &victim.db);
    let out = fixture.apply(&victim.db).output().unwrap();
    assert!(out.status.success(), "apply failed");
    let conn = Connection::open(&victim.db).unwrap();
    let new = stored_schema(&conn);
    assert_fast_target(&old, &new, &conn, template);
    let id: i64 = conn
        .query_row(
            "SELECT id FROM \"tabMigrationHistory\" WHERE version = 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded_backups(&conn, 2).len(), 1);
    let filled_rows = Rows {
        file: &filled,
        table: "tabLedger",
    };
    assert_rows(&conn, "tabLedger", &filled_rows, &[], "migrated");
    drop(conn);
    let migrated = fixture.path("fast-path-migrated.db");
    let migrated_backups = fixture.path("fast-path-migrated.backups");
    std::fs::copy(&victim.db, &migrated).unwrap();
    copy_dir(&victim.backups(), &migrated_backups);

    let rollback = Rollback {
        name: "fast-path rollback",
        victim: &victim,
        id,
        migrated: &migrated,
        migrated_backups: &migrated_backups,
        notes: template,
    };
    // Every value as migrated, or the NULLs of `note` back from the backup
    // (and every other value, storage class included, as it was).
    rollback.kill_loop(kills, seed, |conn, what| {
        let schema = stored_schema(conn);
        assert!(
            !schema.iter().any(|o| o.1 == SCHEMA_EDIT_VIEW),
            "{what}: the schema edit's view is left: {schema:#?}"
        );
        if schema == new {
            (Side::Before, filled.as_path(), "completed")
        } else if schema == old {
            (Side::After, template, "rolled_back")
        } else {
            panic!("{what}: the schema is neither the new nor the rolled-back one:\n{schema:#?}");
        }
    });
}
