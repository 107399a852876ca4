//! Backups wired into apply: taken under the lock before destructive and
//! rebuild steps, verified, named in the history row, listed by dry runs,
//! and removed again when the migration rolls back.

use crate::common::*;
use doctype_migrate::{
    BackupManager, BackupPolicy, BackupStrategy, MigrationApplier, RestoreTarget,
};

const V1: &str = r#"{"name": "Contact", "fields": [
    {"fieldname": "full_name", "fieldtype": "Data"},
    {"fieldname": "phone", "fieldtype": "Data"},
    {"fieldname": "age", "fieldtype": "Data"}
]}"#;

fn seeded() -> TestDb {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabContact\" (name, full_name, phone, age) VALUES
               ('C1', 'Ann', '555-1', '31'), ('C2', 'Bob', NULL, 'n/a'), ('C3', 'Cy', '555-3', '07');",
        )
        .unwrap();
    db
}

fn without_phone() -> String {
    V1.replace(
        r#"    {"fieldname": "phone", "fieldtype": "Data"},
"#,
        "",
    )
}

#[test]
fn dropping_a_column_with_data_leaves_a_verified_column_backup_in_history() {
    let db = seeded();
    let v2 = without_phone();
    let mut applier = MigrationApplier::builder(&db.path)
        .drop_orphan_columns(true)
        .allow_data_loss(true)
        .build()
        .unwrap();
    let preview = applier.dry_run(&[doctype(&v2)]).unwrap();
    assert_eq!(
        preview.plan.doctypes[0].backups[0].strategy,
        BackupStrategy::Columns(vec!["phone".into()]),
        "the dry run lists the backup it would take"
    );
    let report = applier.sync_all(&[doctype(&v2)]).unwrap();
    let taken = &report.migrations[0].backups;
    assert_eq!(taken.len(), 1);
    let row = &applier.history(Some("Contact")).unwrap()[1];
    let named: Vec<std::path::PathBuf> =
        serde_json::from_str(row.backup_path.as_deref().unwrap()).unwrap();
    assert_eq!(&named, taken);
    assert!(named[0].starts_with(db.dir.path().join("app.db.backups")));
    let manager = applier.backup_manager().unwrap();
    let info = manager.verify(&named[0]).unwrap();
    assert_eq!(
        (info.table.as_str(), info.table_row_count),
        ("tabContact", 3)
    );
    assert_eq!(info.migration_id, Some(row.id));
    // The backup really holds the dropped values: restore them into a new table.
    let conn = db.conn();
    manager
        .restore(&conn, &named[0], RestoreTarget::NewTable("phones".into()))
        .unwrap();
    assert_eq!(count(&conn, "SELECT count(phone) FROM phones"), 2);
    assert!(!column_names(&conn, "tabContact").contains(&"phone".to_string()));
}

#[test]
fn encrypted_backups_with_a_key_file_and_no_backups_for_safe_changes() {
    let db = seeded();
    let key = db.dir.path().join("backup.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let v2 = V1.replace(
        r#""age", "fieldtype": "Data""#,
        r#""age", "fieldtype": "Int""#,
    );
    let mut applier = MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .backup_key_file(&key)
        .backup_dir(db.dir.path().join("vault"))
        .build()
        .unwrap();
    let report = applier.sync_all(&[doctype(&v2)]).unwrap();
    let path = &report.migrations[0].backups[0];
    assert!(path.starts_with(db.dir.path().join("vault")));
    let info = applier.backup_manager().unwrap().verify(path).unwrap();
    assert!(info.encrypted && info.compressed);
    let wrong = BackupManager::builder()
        .dir(db.dir.path().join("vault"))
        .key([9u8; 32])
        .build()
        .unwrap();
    assert!(wrong.verify(path).is_err(), "a wrong key is refused");
    assert_eq!(
        wrong.verify(path).unwrap_err().backup_kind(),
        Some(doctype_migrate::BackupErrorKind::WrongKey)
    );
    // Adding a nullable column is native and safe: no backup.
    let v3 = v2.replace(r#"{"fieldname": "full_name", "fieldtype": "Data"},"#, r#"{"fieldname": "full_name", "fieldtype": "Data"}, {"fieldname": "email", "fieldtype": "Data"},"#);
    let report = applier.sync_all(&[doctype(&v3)]).unwrap();
    assert!(report.migrations[0].backups.is_empty());
    assert!(
        applier.history(Some("Contact")).unwrap()[2]
            .backup_path
            .is_none()
    );
}

#[test]
fn backups_of_a_rolled_back_batch_are_removed_and_policy_never_takes_none() {
    let db = seeded();
    // A second DocType fails at execution (CHECK trap), so the whole batch rolls back.
    db.conn().execute_batch(GAUGE_TRAP).unwrap();
    let gauge =
        doctype(r#"{"name": "Gauge", "fields": [{"fieldname": "reading", "fieldtype": "Int"}]}"#);
    let v2 = V1.replace(
        r#""age", "fieldtype": "Data""#,
        r#""age", "fieldtype": "Int""#,
    );
    let backups = db.dir.path().join("app.db.backups");
    let err = MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .build()
        .unwrap()
        .sync_all(&[doctype(&v2), gauge])
        .unwrap_err();
    assert!(err.to_string().contains("Gauge"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&backups)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "backups of a rolled-back batch are removed: {left:?}"
    );
    let report = MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .backup_policy(BackupPolicy::Never)
        .build()
        .unwrap()
        .sync_all(&[doctype(&v2)])
        .unwrap();
    assert!(report.migrations[0].backups.is_empty());
}

#[test]
fn restore_backup_refusals_are_typed() {
    use doctype_migrate::{BackupErrorKind, Error};
    let db = seeded();
    let applier = db.applier();
    let dir = doctype_migrate::default_dir_for(&db.path);
    std::fs::create_dir(&dir).unwrap();

    let err = applier
        .restore_backup(&dir.join("x.dmbak"), RestoreTarget::NewTable(" ".into()))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Config {
                option: "target",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.backup_kind(), None);

    let err = applier
        .restore_backup(&dir.join("missing.dmbak"), RestoreTarget::Original)
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::NotABackup));

    let junk = dir.join("junk.dmbak");
    std::fs::write(&junk, vec![b'x'; 200]).unwrap();
    let err = applier
        .restore_backup(&junk, RestoreTarget::Original)
        .unwrap_err();
    assert!(
        err.to_string().contains("not a doctype-migrate backup"),
        "{err}"
    );
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::NotABackup));

    let outside = db.dir.path().join("junk.dmbak");
    std::fs::write(&outside, vec![b'x'; 200]).unwrap();
    let err = applier
        .restore_backup(&outside, RestoreTarget::Original)
        .unwrap_err();
    assert!(
        err.to_string().contains("is not in the backup directory"),
        "{err}"
    );
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::UnsafePath));
}
