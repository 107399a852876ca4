//! Invariant "Concurrent starts", safe under concurrent starts: many `doctype-migrate apply`
//! processes started at once on one database all succeed, each change is
//! applied and recorded exactly once, the schema ends at the target, and
//! nobody reports "database is locked".
//!
//! The process count is 32, or `DM_CONCURRENCY` when set
//! (`scripts/concurrency.sh N` runs these tests with N processes).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestDb, count};
use doctype_migrate::{Error, MigrationApplier, MigrationStatus};
use rusqlite::Connection;
use serde_json::Value;

fn processes() -> usize {
    std::env::var("DM_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(32)
}

fn example(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/doctypes")
        .join(version)
}

/// What one process did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Spawns `n` `apply --json` processes at once (all started before any is
/// waited for), then waits for all. Output goes to files, not pipes, so a
/// process never blocks on a full pipe while another is being waited for.
fn apply_concurrently(dir: &Path, db: &Path, doctypes: &Path, n: usize) -> Vec<Run> {
    let children: Vec<(Child, PathBuf, PathBuf)> = (0..n)
        .map(|i| {
            let out = dir.join(format!("out{i}.json"));
            let err = dir.join(format!("err{i}.txt"));
            let child = Command::new(env!("CARGO_BIN_EXE_doctype-migrate"))
                .arg("apply")
                .arg("--db")
                .arg(db)
                .arg("--doctypes")
                .arg(doctypes)
                .arg("--json")
                .stdin(Stdio::null())
                .stdout(File::create(&out).unwrap())
                .stderr(File::create(&err).unwrap())
                .spawn()
                .expect("spawn doctype-migrate");
            (child, out, err)
        })
        .collect();
    children
        .into_iter()
        .map(|(mut child, out, err)| {
            let status = child.wait().expect("wait for doctype-migrate");
            Run {
                code: status.code(),
                stdout: std::fs::read_to_string(out).unwrap_or_default(),
                stderr: std::fs::read_to_string(err).unwrap_or_default(),
            }
        })
        .collect()
}

/// Asserts every process succeeded without lock errors, and returns how
/// many migrations (DocType changes) all processes together applied.
fn check_runs(runs: &[Run]) -> usize {
    let mut applied = 0;
    for (i, run) in runs.iter().enumerate() {
        assert!(
            !run.stderr.contains("database is locked")
                && !run.stdout.contains("database is locked"),
            "process {i} reported a lock error:\n{}",
            run.stderr
        );
        assert_eq!(
            run.code,
            Some(0),
            "process {i} failed\nstdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
        let json: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("process {i}: stdout is not JSON ({e}):\n{}", run.stdout));
        assert_eq!(json["blocked"], false, "process {i}: {}", run.stdout);
        for m in json["migrations"].as_array().unwrap() {
            assert_eq!(m["status"], "completed", "process {i}: {m}");
            applied += 1;
        }
    }
    applied
}

/// `(doctype, status, count)` of the history.
fn history_counts(db: &Path) -> Vec<(String, String, i64)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT doctype, status, count(*) FROM \"tabMigrationHistory\" \
             GROUP BY doctype, status ORDER BY doctype, status",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `plan --json` on the result shows nothing left to do.
fn assert_up_to_date(db: &Path, doctypes: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_doctype-migrate"))
        .arg("plan")
        .arg("--db")
        .arg(db)
        .arg("--doctypes")
        .arg(doctypes)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["blocked"], false);
    let pending: Vec<&Value> = json["doctypes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| !d["changes"].as_array().unwrap().is_empty())
        .collect();
    assert!(
        pending.is_empty(),
        "changes left after the runs: {pending:?}"
    );
}

fn integrity_ok(db: &Path) {
    let conn = Connection::open(db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

const DOCTYPES: [&str; 4] = ["Customer", "Item", "Sales Order", "Sales Order Item"];

#[test]
fn concurrent_starts_on_a_fresh_database_apply_each_change_once() {
    let n = processes();
    let db = TestDb::new();
    let v1 = example("v1");
    let start = Instant::now();
    let runs = apply_concurrently(db.dir.path(), &db.path, &v1, n);
    let elapsed = start.elapsed();
    let applied = check_runs(&runs);
    eprintln!("{n} concurrent v1 applies on a fresh database: {elapsed:?}");
    assert_eq!(applied, DOCTYPES.len(), "each DocType created exactly once");
    let expected: Vec<(String, String, i64)> = DOCTYPES
        .iter()
        .map(|d| (d.to_string(), "completed".to_string(), 1))
        .collect();
    assert_eq!(history_counts(&db.path), expected);
    assert_up_to_date(&db.path, &v1);
    integrity_ok(&db.path);
}

/// Sample rows that v2 accepts without data-loss findings: unique item
/// codes, integral shelf lives (Data -> Int), no e-mail addresses yet.
const ROWS: &str = "
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
INSERT INTO \"tabItem\" (name, item_code, item_name, standard_rate, shelf_life_in_days)
SELECT 'ITEM-' || i, 'ITEM-' || i, 'Item ' || i, i * 1.5, CAST(i % 365 AS TEXT) FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
INSERT INTO \"tabCustomer\" (name, customer_name, territory, mobile_no, credit_limit)
SELECT 'CUST-' || i, 'Customer ' || i, 'T' || (i % 7), '+1-555-' || i, i * 10 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO \"tabSales Order\" (name, customer, transaction_date, grand_total)
SELECT 'SO-' || i, 'CUST-' || (1 + i % 500), '2024-01-01', i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
INSERT INTO \"tabSales Order Item\" (name, idx, parent, parentfield, parenttype, item_code, qty, rate, amount)
SELECT 'SOI-' || i, i % 3, 'SO-' || (1 + i % 1000), 'items', 'Sales Order', 'ITEM-' || (1 + i % 2000), 1, 2, 2 FROM n;
";

/// Row count and a checksum of every table's primary keys.
fn fingerprint(db: &Path) -> Vec<(i64, i64)> {
    let conn = Connection::open(db).unwrap();
    DOCTYPES
        .iter()
        .map(|d| {
            let sql = format!(
                "SELECT count(*), coalesce(sum(length(name) * 131 + unicode(substr(name, -1))), 0) FROM \"tab{d}\""
            );
            conn.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
        })
        .collect()
}

#[test]
fn concurrent_starts_migrate_v1_to_v2_with_data_once() {
    let n = processes();
    let db = TestDb::new();
    let (v1, v2) = (example("v1"), example("v2"));
    let first = apply_concurrently(db.dir.path(), &db.path, &v1, 1);
    assert_eq!(check_runs(&first), DOCTYPES.len());
    db.conn().execute_batch(ROWS).unwrap();
    let rows_before = fingerprint(&db.path);

    let start = Instant::now();
    let runs = apply_concurrently(db.dir.path(), &db.path, &v2, n);
    let elapsed = start.elapsed();
    let applied = check_runs(&runs);
    eprintln!("{n} concurrent v2 applies on v1 with data: {elapsed:?}");

    // v2 changes every DocType: one more completed row each, nothing else.
    let expected: Vec<(String, String, i64)> = DOCTYPES
        .iter()
        .map(|d| (d.to_string(), "completed".to_string(), 2))
        .collect();
    assert_eq!(history_counts(&db.path), expected);
    assert_eq!(applied, DOCTYPES.len(), "each change applied exactly once");
    assert_up_to_date(&db.path, &v2);
    integrity_ok(&db.path);
    assert_eq!(fingerprint(&db.path), rows_before, "no row lost or added");
    let ints = count(
        &db.conn(),
        "SELECT count(*) FROM \"tabItem\" WHERE typeof(shelf_life_in_days) = 'integer'",
    );
    assert_eq!(ints, 2000, "the Data -> Int rebuild converted every value");
}

/// The pre-lock phase (open, plan, validate) must not surface SQLITE_BUSY
/// either: while another connection holds an EXCLUSIVE lock for longer
/// than the busy timeout (a long rebuild that spilled its cache does), the
/// applier waits up to its lock bound instead of failing with "database is
/// locked".
#[test]
fn busy_reads_before_the_lock_wait_within_the_lock_bound() {
    let db = TestDb::new();
    let doctypes = doctype_migrate::load_path(&example("v1")).unwrap();
    // The file exists (empty database with one unrelated table).
    db.conn()
        .execute_batch("CREATE TABLE \"unrelated\" (x)")
        .unwrap();
    let mut applier = MigrationApplier::builder(&db.path)
        .busy_timeout(Duration::from_millis(50))
        .lock_timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    let holder = db.conn();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        holder.execute_batch("COMMIT").unwrap();
    });
    let result = applier.sync_all(&doctypes);
    release.join().unwrap();
    let report = result.unwrap_or_else(|e| panic!("{e}: {:?}", std::error::Error::source(&e)));
    assert_eq!(report.migrations.len(), DOCTYPES.len());
    assert!(
        report
            .migrations
            .iter()
            .all(|m| m.status == MigrationStatus::Completed)
    );
}

/// When the bound is exceeded in the pre-lock phase, the error is the
/// lock-wait error naming the database, not a raw SQLite "database is locked".
#[test]
fn busy_reads_beyond_the_bound_give_the_lock_timeout_error() {
    let db = TestDb::with_sql("CREATE TABLE \"unrelated\" (x)");
    let doctypes = doctype_migrate::load_path(&example("v1")).unwrap();
    let mut applier = MigrationApplier::builder(&db.path)
        .busy_timeout(Duration::from_millis(20))
        .lock_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let holder = db.conn();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = applier.sync_all(&doctypes).unwrap_err();
    holder.execute_batch("ROLLBACK").unwrap();
    assert!(
        matches!(&err, Error::LockTimeout { path, .. } if path == &db.path),
        "{err}"
    );
}

/// Opening (the builder's first read) waits for a busy database within the
/// lock bound as well.
#[test]
fn opening_a_busy_database_waits_within_the_lock_bound() {
    let db = TestDb::with_sql("CREATE TABLE \"unrelated\" (x)");
    let holder = db.conn();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        holder.execute_batch("COMMIT").unwrap();
    });
    let built = MigrationApplier::builder(&db.path)
        .busy_timeout(Duration::from_millis(50))
        .lock_timeout(Duration::from_secs(20))
        .build();
    release.join().unwrap();
    if let Err(e) = built {
        panic!("{e}: {:?}", std::error::Error::source(&e));
    }
}
