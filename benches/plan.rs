//! Planning cost over 1,000 up-to-date DocTypes: a full dry run (introspects
//! every table) and a no-op apply (the fingerprint fast path), compared in
//! the same run with the raw floor (opening the database and reading
//! sqlite_schema).

use criterion::{Criterion, criterion_group, criterion_main};
use doctype_migrate::{DocType, Field, FieldType, MigrationApplier};
use rusqlite::Connection;

fn doctypes(n: usize) -> Vec<DocType> {
    (0..n)
        .map(|i| {
            let mut dt = DocType::new(format!("Bench DocType {i:04}"));
            for f in 0..14 {
                let ft = match f % 5 {
                    0 => FieldType::Data,
                    1 => FieldType::Int,
                    2 => FieldType::Currency,
                    3 => FieldType::Check,
                    _ => FieldType::Text,
                };
                let mut field = Field::new(format!("field_{f}"), ft);
                field.search_index = f == 0;
                dt = dt.field(field);
            }
            dt
        })
        .collect()
}

fn bench_plan(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let dts = doctypes(1000);
    MigrationApplier::builder(&db)
        .create_if_missing(true)
        .build()
        .unwrap()
        .sync_all(&dts)
        .unwrap();

    let mut group = c.benchmark_group("plan_1000_doctypes");
    group.sample_size(10);
    group.bench_function("engine_dry_run_up_to_date", |b| {
        b.iter(|| {
            let applier = MigrationApplier::builder(&db)
                .read_only(true)
                .build()
                .unwrap();
            let report = applier.dry_run(&dts).unwrap();
            assert!(report.plan.is_empty());
        })
    });
    group.bench_function("engine_apply_up_to_date_fast_path", |b| {
        b.iter(|| {
            let mut applier = MigrationApplier::builder(&db).build().unwrap();
            let report = applier.sync_all(&dts).unwrap();
            assert!(report.fast_path);
        })
    });
    group.bench_function("baseline_read_sqlite_schema", |b| {
        b.iter(|| {
            let conn = Connection::open(&db).unwrap();
            let n: i64 = conn
                .query_row("SELECT count(sql) FROM sqlite_schema", [], |r| r.get(0))
                .unwrap();
            assert!(n > 1000);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);
