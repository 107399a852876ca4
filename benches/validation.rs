//! Cost of the data-aware validation of one table, through the public API:
//! a dry run of a DocType change that asks five risky-change questions of
//! the data (row count, non-NULL values in a removed column, NULLs in a
//! column becoming mandatory, two lossy type conversions), against one
//! plain full scan of the same table and against the same questions asked
//! as five separate raw-SQL statements, in the same run. The target is a
//! ratio close to 1: validating should cost about one scan however many
//! questions a plan asks. The dry run also plans; that part does not grow
//! with the table.
//!
//! Rows: `DM_BENCH_ROWS` (default 1,000,000). The table is created by the
//! engine, then filled inside SQLite with a recursive CTE in a temporary
//! directory.
//!
//! ```text
//! cargo bench --bench validation
//! DM_BENCH_ROWS=100000 cargo bench --bench validation
//! ```

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use doctype_migrate::{DocType, Field, FieldType, MigrationApplier, Rule};
use rusqlite::Connection;

const TABLE: &str = "\"tabBench Item\"";

/// The plain scan: one pass over the table reading one column.
const BASELINE: &str = "SELECT count(*) FROM \"tabBench Item\" WHERE note IS NOT NULL";

/// The five questions as separate statements, the way a validator without
/// one-pass measurement asks them (the lossy checks compare the value with
/// its CAST, as DL003 does).
const SEPARATE: [&str; 5] = [
    "SELECT count(*) FROM \"tabBench Item\"",
    "SELECT count(*) FROM \"tabBench Item\" WHERE description IS NOT NULL",
    "SELECT count(*) FROM \"tabBench Item\" WHERE note IS NULL",
    "SELECT count(*) FROM \"tabBench Item\" WHERE code IS NOT NULL \
     AND (CAST(code AS INTEGER) IS NOT code OR typeof(CAST(code AS INTEGER)) <> typeof(code))",
    "SELECT count(*) FROM \"tabBench Item\" WHERE amount IS NOT NULL \
     AND (CAST(amount AS INTEGER) IS NOT amount OR typeof(CAST(amount AS INTEGER)) <> typeof(amount))",
];

fn rows() -> u64 {
    std::env::var("DM_BENCH_ROWS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000)
}

/// The DocType as it is: a code stored as text (some zero-padded), an
/// amount, a nullable note, a description.
fn before() -> DocType {
    DocType::new("Bench Item")
        .field(Field::new("code", FieldType::Data))
        .field(Field::new("amount", FieldType::Float))
        .field(Field::new("qty", FieldType::Int))
        .field(Field::new("note", FieldType::SmallText))
        .field(Field::new("description", FieldType::SmallText))
}

/// The change the dry run judges: code and amount become Int (lossy for
/// some rows), note becomes mandatory (it has NULLs), description is
/// removed from the DocType and dropped (it holds values).
fn after() -> DocType {
    DocType::new("Bench Item")
        .field(Field::new("code", FieldType::Int))
        .field(Field::new("amount", FieldType::Int))
        .field(Field::new("qty", FieldType::Int))
        .field(Field::new("note", FieldType::SmallText).not_nullable())
}

fn generate(path: &Path, n: u64) {
    MigrationApplier::builder(path)
        .create_if_missing(true)
        .build()
        .expect("applier")
        .sync_all(&[before()])
        .expect("create the table");
    let conn = Connection::open(path).expect("open");
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
         INSERT INTO {TABLE} (name, creation, modified, modified_by, owner, docstatus, idx,
                              code, amount, qty, note, description)
         SELECT printf('DOC-%08d', i), '2024-01-01 10:00:00.000000',
           '2024-06-01 10:00:00.000000', 'Administrator', 'Administrator', 0, i % 100,
           CASE WHEN i % 10 = 0 THEN printf('%06d', i) ELSE CAST(i AS TEXT) END,
           CASE WHEN i % 4 = 0 THEN i + 0.5 ELSE i * 1.0 END,
           i % 1000,
           CASE WHEN i % 5 = 0 THEN NULL ELSE 'note ' || i END,
           'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod ' || i
         FROM s;
         PRAGMA synchronous = FULL;"
    ))
    .expect("generate rows");
}

fn dry_run(applier: &MigrationApplier) -> usize {
    let report = applier.dry_run(&[after()]).expect("dry run");
    report.findings.len()
}

fn baseline(conn: &Connection) -> i64 {
    conn.query_row(BASELINE, [], |r| r.get(0))
        .expect("baseline")
}

fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let n = rows();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let t = Instant::now();
    generate(&path, n);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "generated {n} rows, {:.0} MB, in {:.2?}",
        size as f64 / 1e6,
        t.elapsed()
    );
    let conn = Connection::open(&path).expect("open");
    let applier = MigrationApplier::builder(&path)
        .read_only(true)
        .drop_orphan_columns(true)
        .build()
        .expect("applier");
    let report = applier.dry_run(&[after()]).expect("dry run");
    for f in &report.findings {
        eprintln!("  {} {}", f.rule.code(), f.message);
    }
    for rule in [Rule::Dl002, Rule::Dl003, Rule::Mf002] {
        assert!(
            report.findings.iter().any(|f| f.rule == rule),
            "the dry run measures {rule:?}"
        );
    }

    let mut group = c.benchmark_group(format!("validate_{n}_rows"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("plain_full_scan", |b| b.iter(|| black_box(baseline(&conn))));
    group.bench_function("dry_run_5_questions", |b| {
        b.iter(|| black_box(dry_run(&applier)))
    });
    group.bench_function("five_separate_statements", |b| {
        b.iter(|| black_box(separate(&conn)))
    });
    group.finish();

    // The headline figure, from the same warm file: best of 5 each.
    let scan = best_of(5, || {
        black_box(baseline(&conn));
    });
    let validate = best_of(5, || {
        black_box(dry_run(&applier));
    });
    let five = best_of(5, || {
        black_box(separate(&conn));
    });
    eprintln!(
        "best of 5: plain scan {scan:.2?}, dry run (5 questions) {validate:.2?} (ratio {:.2}), \
         five separate statements {five:.2?} (ratio {:.2})",
        validate.as_secs_f64() / scan.as_secs_f64().max(1e-9),
        five.as_secs_f64() / scan.as_secs_f64().max(1e-9)
    );
}

fn separate(conn: &Connection) -> i64 {
    SEPARATE
        .iter()
        .map(|sql| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).expect(sql))
        .sum()
}

criterion_group!(benches, bench);
criterion_main!(benches);
