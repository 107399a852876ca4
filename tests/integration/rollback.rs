//! Rollback: feasibility refusals, execution with restores from backups,
//! cascade, batches, and re-applying after a rollback.

use crate::common::TestDb;
use crate::rollback_support::{manager, options, snapshot, status, sync_with_backups};
use doctype_migrate::{
    DocType, Error, Field, FieldType, MigrationApplier, MigrationId, Reason, RollbackTarget,
};

fn refused(result: doctype_migrate::Result<doctype_migrate::RollbackReport>) -> Vec<Reason> {
    match result {
        Err(Error::RollbackRefused { plan }) => {
            assert!(!plan.feasible);
            plan.into_plan().refusals
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn v3() -> DocType {
    v2().field(Field::new("rating", FieldType::Rating))
}

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

#[test]
fn refuses_a_rollback_that_is_not_the_latest_and_cascade_rolls_back_newest_first() {
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = applier(&db);
    a.sync_all(&[v1()]).unwrap();
    seed(&db);
    let after_v1 = snapshot(&db.conn());
    let id2 = sync_with_backups(&mut a, &backups, &[v2()])
        .unwrap()
        .migrations[0]
        .id
        .unwrap();
    let id3 = sync_with_backups(&mut a, &backups, &[v3()])
        .unwrap()
        .migrations[0]
        .id
        .unwrap();
    let bytes = db.bytes();
    let reasons = refused(a.rollback_migration(id2, &options(&backups)));
    assert_eq!(
        reasons,
        [Reason::NotLatest {
            id: id2,
            doctype: "Item".into(),
            later: vec![id3]
        }]
    );
    assert_eq!(reasons[0].code(), "not_latest");
    assert_eq!(db.bytes(), bytes, "a refusal writes nothing");

    let cascade = options(&backups).with_cascade(true);
    let report = a.rollback_migration(id2, &cascade).unwrap();
    let order: Vec<(MigrationId, bool)> = report
        .rolled_back
        .iter()
        .map(|r| (r.id, r.cascaded))
        .collect();
    assert_eq!(order, [(id3, true), (id2, false)]);
    assert_eq!(snapshot(&db.conn()), after_v1);
    assert_eq!(status(&db.conn(), id3.0), "rolled_back");
}

#[test]
fn refuses_under_drift_and_shows_it() {
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = applier(&db);
    a.sync_all(&[v1()]).unwrap();
    seed(&db);
    let id = sync_with_backups(&mut a, &backups, &[v2()])
        .unwrap()
        .migrations[0]
        .id
        .unwrap();
    db.conn()
        .execute_batch("CREATE INDEX by_hand ON \"tabItem\" (qty)")
        .unwrap();
    let bytes = db.bytes();
    let reasons = refused(a.rollback_migration(id, &options(&backups)));
    let Reason::Drift {
        differences,
        against,
        ..
    } = &reasons[0]
    else {
        panic!("{reasons:?}")
    };
    assert_eq!(*against, None);
    assert_eq!(differences.len(), 1);
    assert_eq!(differences[0].name, "by_hand");
    assert_eq!(
        differences[0].difference,
        doctype_migrate::DifferenceKind::Unexpected
    );
    assert!(reasons[0].to_string().contains("by_hand"), "{}", reasons[0]);
    assert_eq!(db.bytes(), bytes);
}

#[test]
fn refuses_when_a_backup_is_missing_or_fails_verification() {
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = applier(&db);
    a.sync_all(&[v1()]).unwrap();
    seed(&db);
    let id = sync_with_backups(&mut a, &backups, &[v2()])
        .unwrap()
        .migrations[0]
        .id
        .unwrap();
    let plan = a
        .rollback_plan(&RollbackTarget::Migration { id }, &options(&backups))
        .unwrap();
    let path = plan.steps[0].backups[0].clone();
    let good = std::fs::read(&path).unwrap();
    let bytes = db.bytes();

    // One flipped byte in the payload.
    let mut bad = good.clone();
    let at = bad.len() - 10;
    bad[at] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    let reasons = refused(a.rollback_migration(id, &options(&backups)));
    assert!(
        matches!(&reasons[..], [Reason::BackupInvalid { path: p, .. }] if *p == path),
        "{reasons:?}"
    );
    assert_eq!(db.bytes(), bytes);

    std::fs::remove_file(&path).unwrap();
    let reasons = refused(a.rollback_migration(id, &options(&backups)));
    assert_eq!(
        reasons,
        [Reason::BackupMissing {
            id,
            path: path.clone()
        }]
    );
    assert_eq!(db.bytes(), bytes);
    assert_eq!(status(&db.conn(), id.0), "completed");

    // Put it back: the rollback works.
    std::fs::write(&path, &good).unwrap();
    a.rollback_migration(id, &options(&backups)).unwrap();
}

#[test]
fn refuses_destroyed_data_without_a_backup_unless_data_loss_is_allowed() {
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = applier(&db);
    a.sync_all(&[v1()]).unwrap();
    seed(&db);
    let before = snapshot(&db.conn());
    let mut no_backups = MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .drop_orphan_columns(true)
        .backup_policy(doctype_migrate::BackupPolicy::Never)
        .build()
        .unwrap();
    let report = no_backups.sync_all(&[v2()]).unwrap();
    assert!(a.history(None).unwrap()[1].backup_path.is_none());
    let id = report.migrations[0].id.unwrap();
    let reasons = refused(a.rollback_migration(id, &options(&backups)));
    let Reason::BackupNotRecorded { lost, .. } = &reasons[0] else {
        panic!("{reasons:?}")
    };
    assert_eq!(lost, &["code", "title"]);

    let lossy = options(&backups).with_allow_data_loss(true);
    let report = a.rollback_migration(id, &lossy).unwrap();
    assert_eq!(report.plan.warnings.len(), 1);
    let after = snapshot(&db.conn());
    assert_eq!(after.schema, before.schema, "the schema comes back");
    assert_ne!(
        after.rows, before.rows,
        "the values without a backup do not"
    );
    let info = a.history(Some("Item")).unwrap()[1]
        .rollback_info
        .clone()
        .unwrap();
    assert!(info.contains("backup_not_recorded"), "{info}");
}

#[test]
fn rows_written_since_the_migration_are_kept() {
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = applier(&db);
    a.sync_all(&[v1()]).unwrap();
    seed(&db);
    let id = sync_with_backups(&mut a, &backups, &[v2()])
        .unwrap()
        .migrations[0]
        .id
        .unwrap();
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabItem\" (name, code, qty) VALUES ('new', 5, 9);
             DELETE FROM \"tabItem\" WHERE name = 'b';
             UPDATE \"tabItem\" SET qty = 42 WHERE name = 'a';",
        )
        .unwrap();
    a.rollback_migration(id, &options(&backups)).unwrap();
    let conn = db.conn();
    let rows: Vec<Vec<rusqlite::types::Value>> = conn
        .prepare("SELECT name, title, code, qty FROM \"tabItem\" ORDER BY name")
        .unwrap()
        .query_map([], |r| (0..4).map(|i| r.get(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    use rusqlite::types::Value::{Blob, Integer, Null, Text};
    let t = |s: &str| Text(s.into());
    assert_eq!(
        rows,
        [
            // Updated since: the update is kept, the converted value restored.
            vec![t("a"), t("Apple"), t("0012"), Integer(42)],
            // 'b' was deleted since: it stays deleted.
            vec![t("c"), t("Cherry"), Null, Integer(5)],
            vec![t("d"), t("Dup"), t("0012"), Integer(1)],
            vec![t("e"), Blob(vec![0, 255]), t("12.5"), Integer(2)],
            // Inserted since: kept; the dropped column comes back empty.
            vec![t("new"), Null, t("5"), Integer(9)],
        ]
    );
}

#[test]
fn rolls_back_a_batch_of_two_doctypes() {
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = applier(&db);
    let other_v1 = DocType::new("Note").field(Field::new("body", FieldType::Text));
    let other_v2 = DocType::new("Note")
        .field(Field::new("body", FieldType::Text))
        .field(Field::new("pinned", FieldType::Check).indexed());
    a.sync_all(&[v1(), other_v1]).unwrap();
    seed(&db);
    let before = snapshot(&db.conn());
    let report = sync_with_backups(&mut a, &backups, &[v2(), other_v2]).unwrap();
    assert_eq!(report.migrations.len(), 2);
    let batch = report.batch_id.unwrap();
    let done = a.rollback_batch(&batch, &options(&backups)).unwrap();
    assert_eq!(done.rolled_back.len(), 2);
    assert!(
        done.rolled_back[0].id > done.rolled_back[1].id,
        "newest first"
    );
    assert_eq!(snapshot(&db.conn()), before);
    let reasons = refused(a.rollback_batch(&batch, &options(&backups)));
    assert_eq!(reasons[0].code(), "nothing_to_roll_back");
    let reasons = refused(a.rollback_batch("no-such-batch", &options(&backups)));
    assert_eq!(reasons[0].code(), "nothing_to_roll_back");
}

#[test]
fn rollback_reapply_rollback_keeps_history_consistent_and_create_table_needs_consent() {
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = applier(&db);
    let id1 = a.sync_all(&[v1()]).unwrap().migrations[0].id.unwrap();
    seed(&db);
    let after_v1 = snapshot(&db.conn());
    let id2 = sync_with_backups(&mut a, &backups, &[v2()])
        .unwrap()
        .migrations[0]
        .id
        .unwrap();
    a.rollback_last(Some("Item"), &options(&backups)).unwrap();
    let id3 = sync_with_backups(&mut a, &backups, &[v2()])
        .unwrap()
        .migrations[0]
        .id
        .unwrap();
    assert!(id3 > id2);
    let report = a.rollback_last(None, &options(&backups)).unwrap();
    assert_eq!(report.rolled_back[0].id, id3);
    assert_eq!(snapshot(&db.conn()), after_v1);
    let history = a.history(Some("Item")).unwrap();
    let rows: Vec<(i64, i64, String)> = history
        .iter()
        .map(|h| (h.id.0, h.version, h.status.to_string()))
        .collect();
    assert_eq!(
        rows,
        [
            (id1.0, 1, "completed".into()),
            (id2.0, 2, "rolled_back".into()),
            (id3.0, 3, "rolled_back".into())
        ]
    );

    // Migration 1 created the table, which now holds rows.
    let bytes = db.bytes();
    let reasons = refused(a.rollback_last(Some("Item"), &options(&backups)));
    assert_eq!(
        reasons,
        [Reason::DataWouldBeLost {
            id: id1,
            table: "tabItem".into(),
            column: None,
            rows: 5
        }]
    );
    assert_eq!(db.bytes(), bytes);
    let lossy = options(&backups).with_allow_data_loss(true);
    a.rollback_last(Some("Item"), &lossy).unwrap();
    assert!(crate::common::columns(&db.conn(), "tabItem").is_empty());
    // And the DocType can be applied again from scratch.
    a.sync_all(&[v1()]).unwrap();
    assert_eq!(a.history(Some("Item")).unwrap().last().unwrap().version, 4);
}

#[test]
fn values_in_an_added_column_need_consent() {
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = applier(&db);
    a.sync_all(&[v1()]).unwrap();
    seed(&db);
    let v1b = v1().field(Field::new("flag", FieldType::Check));
    let id = a.sync_all(&[v1b]).unwrap().migrations[0].id.unwrap();
    // Only the default so far: nothing to lose.
    let plan = a
        .rollback_plan(&RollbackTarget::Migration { id }, &options(&backups))
        .unwrap();
    assert!(plan.feasible, "{:?}", plan.refusals);
    db.conn()
        .execute_batch("UPDATE \"tabItem\" SET flag = 1 WHERE name IN ('a', 'c')")
        .unwrap();
    let reasons = refused(a.rollback_migration(id, &options(&backups)));
    assert_eq!(
        reasons,
        [Reason::DataWouldBeLost {
            id,
            table: "tabItem".into(),
            column: Some("flag".into()),
            rows: 2
        }]
    );
}

#[test]
fn dropped_table_comes_back_with_its_rows() {
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = MigrationApplier::builder(&db.path)
        .create_if_missing(true)
        .allow_data_loss(true)
        .drop_orphan_tables(true)
        .build()
        .unwrap();
    a.sync_all(&[v1()]).unwrap();
    seed(&db);
    db.conn()
        .execute_batch("CREATE TRIGGER item_touch AFTER UPDATE ON \"tabItem\" BEGIN SELECT 1; END;")
        .unwrap();
    let before = snapshot(&db.conn());
    let mut single = v1();
    single.issingle = true;
    let report = sync_with_backups(&mut a, &backups, &[single]).unwrap();
    assert!(crate::common::columns(&db.conn(), "tabItem").is_empty());
    let id = report.migrations[0].id.unwrap();
    let done = a.rollback_migration(id, &options(&backups)).unwrap();
    assert_eq!(done.rolled_back[0].restores[0].rows, 5);
    assert_eq!(snapshot(&db.conn()), before);
}

#[test]
fn dry_run_never_writes_and_wrong_status_is_refused() {
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = applier(&db);
    a.sync_all(&[v1()]).unwrap();
    seed(&db);
    let id = sync_with_backups(&mut a, &backups, &[v2()])
        .unwrap()
        .migrations[0]
        .id
        .unwrap();
    let bytes = db.bytes();
    let plan = a
        .rollback_plan(&RollbackTarget::Migration { id }, &options(&backups))
        .unwrap();
    assert!(plan.feasible);
    assert!(!plan.steps[0].statements.is_empty());
    assert_eq!(db.bytes(), bytes);
    a.rollback_migration(id, &options(&backups)).unwrap();
    let reasons = refused(a.rollback_migration(id, &options(&backups)));
    assert_eq!(
        reasons,
        [Reason::WrongStatus {
            id,
            status: doctype_migrate::MigrationStatus::RolledBack
        }]
    );
    assert!(matches!(
        a.rollback_migration(MigrationId(999), &options(&backups)),
        Err(Error::MigrationNotFound(_))
    ));
}

#[test]
fn foreign_keys_on_children_are_not_touched() {
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = applier(&db);
    a.sync_all(&[v1()]).unwrap();
    seed(&db);
    db.conn()
        .execute_batch(
            "CREATE TABLE child (id INTEGER PRIMARY KEY, item TEXT REFERENCES \"tabItem\"(name) ON DELETE CASCADE);
             INSERT INTO child (item) VALUES ('a'), ('c');",
        )
        .unwrap();
    a.connection()
        .execute_batch("PRAGMA foreign_keys = ON")
        .unwrap();
    let before = snapshot(&db.conn());
    let id = sync_with_backups(&mut a, &backups, &[v2()])
        .unwrap()
        .migrations[0]
        .id
        .unwrap();
    a.rollback_migration(id, &options(&backups)).unwrap();
    assert_eq!(snapshot(&db.conn()), before);
    let on: i64 = a
        .connection()
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(on, 1, "the caller's setting is restored");
}

#[test]
fn encrypted_backups_need_the_key_and_the_applier_supplies_its_own() {
    let db = TestDb::new();
    let key = db.dir.path().join("backup.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let mut a = MigrationApplier::builder(&db.path)
        .create_if_missing(true)
        .allow_data_loss(true)
        .drop_orphan_columns(true)
        .backup_key_file(&key)
        .build()
        .unwrap();
    a.sync_all(&[v1()]).unwrap();
    seed(&db);
    let before = snapshot(&db.conn());
    let id = a.sync_all(&[v2()]).unwrap().migrations[0].id.unwrap();

    // A manager without the key cannot verify the backup.
    let keyless = manager(&db.path);
    let reasons = refused(a.rollback_migration(id, &options(&keyless)));
    assert!(
        matches!(&reasons[..], [Reason::BackupInvalid { error, .. }] if error.contains("encrypted")),
        "{reasons:?}"
    );
    // Without explicit backups the rollback uses the applier's (with its key).
    let opts = doctype_migrate::RollbackOptions::default();
    a.rollback_migration(id, &opts).unwrap();
    assert_eq!(snapshot(&db.conn()), before);
}

#[test]
fn rollbacks_and_refusals_are_audited() {
    use doctype_migrate::{Action, Level, audit_log_path_for, read_entries};
    let db = TestDb::new();
    let backups = manager(&db.path);
    let mut a = applier(&db);
    a.sync_all(&[v1()]).unwrap();
    seed(&db);
    let id = a.sync_all(&[v2()]).unwrap().migrations[0].id.unwrap();
    a.rollback_migration(id, &options(&backups)).unwrap();
    let _ = a.rollback_migration(id, &options(&backups)).unwrap_err();
    let entries = read_entries(&audit_log_path_for(&db.path)).unwrap();
    let rollbacks: Vec<_> = entries
        .iter()
        .filter(|e| e.action == Action::Rollback && e.details.get("kind").is_some())
        .collect();
    assert_eq!(rollbacks.len(), 2, "{rollbacks:?}");
    assert_eq!(rollbacks[0].migration_id, Some(id));
    assert_eq!(rollbacks[0].level, Level::Info);
    assert_eq!(rollbacks[1].level, Level::Warn);
    assert_eq!(rollbacks[1].details["refusals"][0]["code"], "wrong_status");
    assert!(
        entries
            .iter()
            .any(|e| e.action == Action::Restore && e.migration_id == Some(id))
    );
}
