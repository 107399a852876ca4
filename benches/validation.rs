//! Cost of the data-aware validation of one table: `measure` answering five
//! risky-change questions (row count, non-NULL values, NULLs, two lossy type
//! conversions) against one plain full scan of the same table, in the same
//! run. The target is a ratio close to 1: validating should cost about one
//! scan however many questions a plan asks.
//!
//! Rows: `DM_BENCH_ROWS` (default 1,000,000). The table is generated inside
//! SQLite with a recursive CTE in a temporary directory.
//!
//! ```text
//! cargo bench --bench validation
//! DM_BENCH_ROWS=100000 cargo bench --bench validation
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use doctype_migrate::validation::data::{Question, measure};
use rusqlite::Connection;

const BASELINE: &str = "SELECT count(*) FROM t WHERE note IS NOT NULL";

fn rows() -> u64 {
    std::env::var("DM_BENCH_ROWS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000)
}

/// A table shaped like a DocType table: standard columns, a code stored as
/// text (some zero-padded), an amount, a nullable note, some filler.
fn generate(conn: &Connection, n: u64) {
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE t(
           name VARCHAR(140) PRIMARY KEY, creation DATETIME, modified DATETIME,
           owner VARCHAR(140), docstatus INTEGER NOT NULL DEFAULT 0, idx INTEGER NOT NULL DEFAULT 0,
           code VARCHAR(140), amount REAL, qty INTEGER, note TEXT, description TEXT);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
         INSERT INTO t SELECT
           printf('DOC-%08d', i), '2024-01-01 10:00:00.000000', '2024-06-01 10:00:00.000000',
           'Administrator', i % 3, i % 100,
           CASE WHEN i % 10 = 0 THEN printf('%06d', i) ELSE CAST(i AS TEXT) END,
           CASE WHEN i % 4 = 0 THEN i + 0.5 ELSE i * 1.0 END,
           i % 1000,
           CASE WHEN i % 5 = 0 THEN NULL ELSE 'note ' || i END,
           'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod ' || i
         FROM s;
         PRAGMA synchronous = FULL;"
    ))
    .expect("generate table");
}

fn questions() -> Vec<Question> {
    vec![
        Question::RowCount,
        Question::non_null("code"),
        Question::nulls("note"),
        Question::lossy("code", "INTEGER"),
        Question::lossy("amount", "INTEGER"),
    ]
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
    let conn = Connection::open(&path).expect("open");
    let t = Instant::now();
    generate(&conn, n);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "generated {n} rows, {:.0} MB, in {:.2?}",
        size as f64 / 1e6,
        t.elapsed()
    );

    let qs = questions();
    let answers = measure(&conn, "t", &qs).expect("measure");
    for (q, count) in answers.iter() {
        eprintln!("  {q:?}: {count}");
    }
    eprintln!("  SQL: {}", answers.statements().join("; "));

    let mut group = c.benchmark_group(format!("validate_{n}_rows"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("plain_full_scan", |b| b.iter(|| black_box(baseline(&conn))));
    group.bench_function("measure_5_questions", |b| {
        b.iter(|| black_box(measure(&conn, "t", &qs).expect("measure")))
    });
    // For scale: the same five answers asked one statement at a time, the
    // way a validator without `measure` would (five scans, or four and an
    // O(pages) count(*)).
    let separate: Vec<String> = answers
        .statements()
        .first()
        .map(|sql| split_aggregates(sql))
        .unwrap_or_default();
    group.bench_function("five_separate_statements", |b| {
        b.iter(|| {
            for sql in &separate {
                black_box(
                    conn.query_row(sql, [], |r| r.get::<_, i64>(0))
                        .expect("separate"),
                );
            }
        })
    });
    group.finish();

    // The headline figure, from the same warm file: best of 5 each.
    let scan = best_of(5, || {
        black_box(baseline(&conn));
    });
    let validate = best_of(5, || {
        black_box(measure(&conn, "t", &qs).expect("measure"));
    });
    eprintln!(
        "best of 5: plain scan {scan:.2?}, measure (5 questions) {validate:.2?}, ratio {:.2}",
        validate.as_secs_f64() / scan.as_secs_f64().max(1e-9)
    );
}

/// `SELECT a, b, c FROM "t"` → `SELECT a FROM "t"`, `SELECT b FROM "t"`, ...
/// (the aggregates `measure` generates contain no top-level `, ` other than
/// the separators, since their only commas are inside parentheses).
fn split_aggregates(sql: &str) -> Vec<String> {
    let Some(body) = sql.strip_prefix("SELECT ") else {
        return Vec::new();
    };
    let Some((list, from)) = body.rsplit_once(" FROM ") else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, ch) in list.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(list[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(list[start..].trim().to_string());
    parts
        .into_iter()
        .map(|agg| format!("SELECT {agg} FROM {from}"))
        .collect()
}

criterion_group!(benches, bench);
criterion_main!(benches);
