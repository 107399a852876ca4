//! Rollback: feasibility refusals, execution with restores from backups,
//! cascade, batches, and re-applying after a rollback.

mod common;
mod rollback_support;

use common::TestDb;
use doctype_migrate::{
    DocType, Error, Field, FieldType, MigrationApplier, MigrationId, Reason, RollbackTarget,
};
use rollback_support::{manager, options, snapshot, status, sync_with_backups};

fn v1() -> DocType {
    DocType::new("Item")
        .field(Field::new("title", FieldType::Data))
        .field(Field::new("code", FieldType::Data))
        .field(Field::new("qty", FieldType::Int))
}

/// v2: `code` becomes Int (a lossy conversion of '0012'), `title` is dropped
/// (drop_orphan_columns), `note` is added.
fn v2() -> DocType {
    DocType::new("Item")
        .field(Field::new("code", FieldType::Int))
        .field(Field::new("qty", FieldType::Int))
        .field(Field::new("note", FieldType::SmallText))
}

fn applier(db: &TestDb) -> MigrationApplier {
    MigrationApplier::builder(&db.path)
        .create_if_missing(true)
        .allow_data_loss(true)
        .drop_orphan_columns(true)
        .build()
        .unwrap()
}

fn seed(db: &TestDb) {
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabItem\" (name, title, code, qty) VALUES
               ('a', 'Apple', '0012', 3), ('b', NULL, 'x7', 0), ('c', 'Cherry', NULL, 5),
               ('d', 'Dup', '0012', 1), ('e', X'00ff', 12.5, 2);",
        )
        .unwrap();
}

#[test]
fn rolls_back_a_rebuild_with_dropped_and_converted_columns_exactly() {
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = applier(&db);
    a.sync_all(&[v1()]).unwrap();
    seed(&db);
    let before = snapshot(&db.conn());
    let report = sync_with_backups(&mut a, &backups, &[v2()]).unwrap();
    let id = report.migrations[0].id.unwrap();
    assert_ne!(snapshot(&db.conn()), before);

    let plan = a
        .rollback_plan(&RollbackTarget::Migration { id }, &options(&backups))
        .unwrap();
    assert!(plan.feasible, "{:?}", plan.refusals);
    assert_eq!(plan.steps.len(), 1);
    assert_eq!(plan.steps[0].restores.len(), 1);

    let done = a.rollback_migration(id, &options(&backups)).unwrap();
    assert_eq!(done.rolled_back.len(), 1);
    assert_eq!(snapshot(&db.conn()), before);
    assert_eq!(status(&db.conn(), id.0), "rolled_back");
    let info: serde_json::Value = serde_json::from_str(
        a.history(Some("Item")).unwrap()[1]
            .rollback_info
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(info["rolled_back_by"], "tests");
    assert_eq!(info["rows_restored"], 5);
}
