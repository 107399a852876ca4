//! A type change through the engine (a table rebuild, backups off) against
//! the hand-written 12-step rebuild of the same table, in the same run.
//! Rows: `DM_BENCH_ROWS` (default 100,000).

use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use doctype_migrate::{BackupPolicy, DocType, Field, FieldType, MigrationApplier};
use rusqlite::Connection;

fn doctype(amount: FieldType) -> DocType {
    DocType::new("Ledger")
        .field(Field::new("account", FieldType::Data).indexed())
        .field(Field::new("amount", amount))
        .field(Field::new("memo", FieldType::Text))
}

fn base(dir: &Path, rows: u64) -> PathBuf {
    let db = dir.join("base.db");
    MigrationApplier::builder(&db)
        .create_if_missing(true)
        .build()
        .unwrap()
        .sync_all(&[doctype(FieldType::Data)])
        .unwrap();
    Connection::open(&db)
        .unwrap()
        .execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO \"tabLedger\" (name, account, amount, memo)
             SELECT 'L' || i, 'ACC-' || (i % 500), CAST(i % 10000 AS TEXT), 'memo ' || i FROM n"
        ))
        .unwrap();
    db
}

fn fresh(base: &Path, dir: &Path) -> PathBuf {
    let p = dir.join(format!(
        "run-{}.db",
        std::process::id() as u64 ^ rand_suffix()
    ));
    std::fs::copy(base, &p).unwrap();
    p
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn hand_written(db: &Path) {
    Connection::open(db)
        .unwrap()
        .execute_batch(
            "PRAGMA foreign_keys = OFF; BEGIN;
             CREATE TABLE \"new_tabLedger\" (\"name\" VARCHAR(140) NOT NULL PRIMARY KEY, \"creation\" TEXT,
                \"modified\" TEXT, \"modified_by\" VARCHAR(140), \"owner\" VARCHAR(140),
                \"docstatus\" INTEGER NOT NULL DEFAULT 0, \"idx\" INTEGER NOT NULL DEFAULT 0,
                \"account\" VARCHAR(140), \"amount\" REAL NOT NULL DEFAULT 0, \"memo\" TEXT);
             INSERT INTO \"new_tabLedger\" (rowid, name, creation, modified, modified_by, owner, docstatus, idx, account, amount, memo)
                SELECT rowid, name, creation, modified, modified_by, owner, docstatus, idx, account,
                       COALESCE(CAST(amount AS REAL), 0), memo FROM \"tabLedger\";
             DROP TABLE \"tabLedger\";
             ALTER TABLE \"new_tabLedger\" RENAME TO \"tabLedger\";
             CREATE INDEX \"h_account\" ON \"tabLedger\" (\"account\");
             COMMIT;",
        )
        .unwrap();
}

fn bench_rebuild(c: &mut Criterion) {
    let rows: u64 = std::env::var("DM_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path(), rows);
    let mut group = c.benchmark_group(format!("rebuild_type_change_{rows}_rows"));
    group.sample_size(10);
    group.bench_function("engine_backups_off", |b| {
        b.iter_batched(
            || fresh(&base, dir.path()),
            |db| {
                let report = MigrationApplier::builder(&db)
                    .backup_policy(BackupPolicy::Never)
                    .allow_data_loss(true)
                    .build()
                    .unwrap()
                    .sync_all(&[doctype(FieldType::Currency)])
                    .unwrap();
                assert_eq!(report.migrations[0].affected_rows as u64, rows);
                std::fs::remove_file(db).unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("hand_written_12_step", |b| {
        b.iter_batched(
            || fresh(&base, dir.path()),
            |db| {
                hand_written(&db);
                std::fs::remove_file(db).unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_rebuild);
criterion_main!(benches);
