//! Crash safety (invariants "Atomic" and "History in the same transaction"): `doctype-migrate apply` of a table
//! rebuild is killed with SIGKILL at random instants. After every kill the
//! database must be intact and exactly before or exactly after the
//! migration:
//!
//! - `PRAGMA integrity_check` is `ok` and `PRAGMA foreign_key_check` is empty;
//! - `sqlite_schema` is byte-identical to the old schema or to the new one;
//! - no row is lost or changed (count and checksums of the key column, the
//!   retyped column and a child table that references the rebuilt one);
//! - a `completed` history row for the migration exists if and only if the
//!   new schema is there (and nothing else is in the history);
//! - no half-written backup sits under a final name: every `.dmbak` file in
//!   the backup directory verifies (a killed backup leaves only a hidden
//!   `.tmp` file, which the next run removes).
//!
//! At the end an uninterrupted run completes the migration.
//!
//! Kills: 30 by default, `DM_CRASH_KILLS` to change; instants come from a
//! seeded PRNG, `DM_CRASH_SEED` to replay a run (the seed is printed).
//! `scripts/crash.sh N` runs N kills.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::schema_of;
use doctype_migrate::MigrationApplier;
use rusqlite::Connection;

const ROWS: i64 = 200_000;

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

/// Rows for the ledger (integral amounts, so the type change is lossless)
/// and an unmanaged child table whose foreign key points at the ledger: a
/// rebuild must never cascade into it.
const DATA: &str = r#"
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
INSERT INTO "tabLedger" (name, account, amount, memo, qty, posted)
SELECT printf('L-%07d', i), 'ACC-' || (i % 97), CAST(i * 7 % 100003 AS TEXT),
       'memo ' || i, i * 0.25, '2024-01-01' FROM n;
CREATE TABLE "ledger_note" (
    id INTEGER PRIMARY KEY,
    ledger TEXT NOT NULL REFERENCES "tabLedger"(name) ON DELETE CASCADE,
    note TEXT
);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
INSERT INTO "ledger_note" (ledger, note) SELECT printf('L-%07d', i * 50), 'n' || i FROM n;
"#;

type Schema = Vec<(String, String, Option<String>)>;

/// xorshift64*: enough randomness for kill instants, no dependency.
struct Rng(u64);

impl Rng {
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

struct Fixture {
    dir: tempfile::TempDir,
    template: PathBuf,
    v2: PathBuf,
}

impl Fixture {
    fn new() -> Self {
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
            .execute_batch(DATA)
            .unwrap();
        let v2 = dir.path().join("v2");
        Fixture { dir, template, v2 }
    }

    fn fresh_db(&self, name: &str) -> PathBuf {
        let db = self.dir.path().join(name);
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        std::fs::copy(&self.template, &db).unwrap();
        db
    }

    fn apply(&self, db: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_doctype-migrate"));
        cmd.arg("apply")
            .arg("--db")
            .arg(db)
            .arg("--doctypes")
            .arg(&self.v2)
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }
}

/// What must never change: row count and checksums of the ledger keys,
/// amounts (as numbers: '42' and 42 both count 42) and the child table.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Content {
    rows: i64,
    key_sum: i64,
    amount_sum: i64,
    children: i64,
    child_sum: i64,
}

fn content(conn: &Connection) -> Content {
    let (rows, key_sum, amount_sum) = conn
        .query_row(
            "SELECT count(*), sum(CAST(substr(name, 3) AS INTEGER)), sum(CAST(amount AS INTEGER)) FROM \"tabLedger\"",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let (children, child_sum) = conn
        .query_row(
            "SELECT count(*), sum(CAST(substr(ledger, 3) AS INTEGER) + id) FROM \"ledger_note\"",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    Content {
        rows,
        key_sum,
        amount_sum,
        children,
        child_sum,
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum State {
    Old,
    New,
}

/// Checks every invariant on the database after a kill; returns which side
/// of the migration it is on.
fn check(db: &Path, old: &Schema, new: &Schema, expected: Content, what: &str) -> State {
    // Opening read-write lets SQLite roll back a hot journal left by the kill.
    let conn = Connection::open(db).unwrap();
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
    let schema = schema_of(&conn);
    let state = if &schema == old {
        State::Old
    } else if &schema == new {
        State::New
    } else {
        panic!("{what}: the schema is neither the old nor the new one:\n{schema:#?}");
    };
    assert_eq!(
        content(&conn),
        expected,
        "{what}: rows lost or changed ({state:?})"
    );
    let history: Vec<(String, i64, String)> = conn
        .prepare("SELECT doctype, version, status FROM \"tabMigrationHistory\" ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut want = vec![("Ledger".to_string(), 1, "completed".to_string())];
    if state == State::New {
        want.push(("Ledger".to_string(), 2, "completed".to_string()));
        let ints: i64 = conn
            .query_row(
                "SELECT count(*) FROM \"tabLedger\" WHERE typeof(amount) = 'integer'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(ints, ROWS, "{what}: the new schema holds converted values");
    }
    assert_eq!(
        history, want,
        "{what}: a completed history row must exist iff the new schema is there ({state:?})"
    );
    let backups = doctype_migrate::default_dir_for(db);
    if let Ok(dir) = std::fs::read_dir(&backups) {
        let manager = doctype_migrate::BackupManager::builder()
            .dir(&backups)
            .build()
            .unwrap();
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "dmbak") {
                manager.verify(&path).unwrap_or_else(|e| {
                    panic!(
                        "{what}: {} is under its final name but does not verify: {e}",
                        path.display()
                    )
                });
                // Checked once: a killed run's backup is complete but
                // unreferenced; remove it so later kills do not re-verify it.
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    state
}

#[test]
fn sigkill_at_random_instants_leaves_the_old_or_the_new_database() {
    let kills = env_u64("DM_CRASH_KILLS").unwrap_or(30);
    let seed = env_u64("DM_CRASH_SEED").unwrap_or(0x5EED_C0DE_2024);
    let mut rng = Rng(seed.max(1));
    let started = Instant::now();
    let fixture = Fixture::new();
    let prepared = started.elapsed();
    let old = schema_of(&Connection::open(&fixture.template).unwrap());
    let expected = content(&Connection::open(&fixture.template).unwrap());
    assert_eq!(expected.rows, ROWS);

    // One uninterrupted run: the new schema and how long a run takes.
    let reference = fixture.fresh_db("reference.db");
    let t0 = Instant::now();
    let status = fixture.apply(&reference).status().unwrap();
    let full = t0.elapsed();
    assert!(status.success(), "the uninterrupted run failed: {status}");
    let new = schema_of(&Connection::open(&reference).unwrap());
    assert_ne!(old, new);
    assert_eq!(
        check(&reference, &old, &new, expected, "reference run"),
        State::New
    );
    eprintln!(
        "crash test: seed {seed:#x}, {kills} kills, {ROWS} rows, template {prepared:?}, uninterrupted run {full:?}"
    );

    // Kill instants spread over the whole run and a little past it.
    let window = (full.as_micros() as u64 * 11 / 10).max(1);
    let db = fixture.fresh_db("victim.db");
    let (mut olds, mut news, mut exited, mut hot) = (0, 0, 0, 0);
    let journal = PathBuf::from(format!("{}-journal", db.display()));
    let mut checking = Duration::ZERO;
    for k in 0..kills {
        let delay = Duration::from_micros(rng.below(window));
        let mut child = fixture.apply(&db).spawn().unwrap();
        std::thread::sleep(delay);
        let finished_before_kill = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        if finished_before_kill {
            exited += 1;
            assert!(
                status.success(),
                "kill {k}: the run failed on its own: {status}"
            );
        }
        // A journal left behind means the kill landed inside the write
        // transaction; the check below rolls it back.
        if journal.exists() {
            hot += 1;
        }
        let what = format!("kill {k} after {delay:?} (seed {seed:#x})");
        let t = Instant::now();
        let state = check(&db, &old, &new, expected, &what);
        checking += t.elapsed();
        match state {
            State::Old => olds += 1,
            State::New => {
                news += 1;
                // Start the next kill from the old database again.
                let _ = fixture.fresh_db("victim.db");
            }
        }
    }
    eprintln!(
        "crash test: {kills} kills in {:?} ({checking:?} checking): {olds} left the old schema, \
         {news} the new one; {hot} landed inside the write transaction, {exited} runs had finished",
        started.elapsed()
    );
    assert!(
        olds > 0,
        "no kill landed before the commit: the window is wrong"
    );

    // The database a kill left behind is migrated by the next normal run.
    let out = fixture.apply(&db).stdout(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(check(&db, &old, &new, expected, "final run"), State::New);
}
