//! Applying exactly the plan a dry run showed (`ApplierBuilder::expect_plan`),
//! as an approval workflow needs: a changed schema or a new finding stops
//! the apply with the database untouched; changed row counts do not.

use crate::common::*;
use doctype_migrate::{Error, MigrationApplier, Rule};

const V1: &str = r#"{"name": "Reading", "fields": [
    {"fieldname": "code", "fieldtype": "Data"},
    {"fieldname": "value", "fieldtype": "Data"}
]}"#;

/// `value` becomes Int: DL003 counts the values that are not integers.
fn v2() -> doctype_migrate::DocType {
    doctype(&V1.replace(
        r#""value", "fieldtype": "Data""#,
        r#""value", "fieldtype": "Int""#,
    ))
}

fn db_with(values: &[&str]) -> TestDb {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    insert(&db, values, 0);
    db
}

fn insert(db: &TestDb, values: &[&str], from: usize) {
    let conn = db.conn();
    for (i, v) in values.iter().enumerate() {
        conn.execute(
            "INSERT INTO \"tabReading\" (name, value) VALUES (?1, ?2)",
            rusqlite::params![format!("R{:03}", from + i), v],
        )
        .unwrap();
    }
}

/// Applies `v2` expecting `report`, with data loss allowed (the approval).
fn apply_expecting(
    db: &TestDb,
    report: &doctype_migrate::DryRunReport,
) -> doctype_migrate::Result<doctype_migrate::ApplyReport> {
    MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .expect_plan(report)
        .no_audit_log()
        .build()
        .unwrap()
        .sync_all(&[v2()])
}

#[test]
fn the_plan_shown_is_applied_and_changed_row_counts_alone_pass() {
    let db = db_with(&["1", "2", "x"]);
    let report = db.applier().dry_run(&[v2()]).unwrap();
    assert_eq!(report.schema_fingerprint.len(), 64);
    let dl003: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == Rule::Dl003)
        .collect();
    assert_eq!(dl003.len(), 1);
    assert_eq!(dl003[0].rows_affected, Some(1));
    // More lossy rows since the plan: the same finding, another count.
    insert(&db, &["y", "z"], 10);
    let applied = apply_expecting(&db, &report).unwrap();
    assert_eq!(applied.migrations.len(), 1);
    let dl003: Vec<_> = applied
        .findings
        .iter()
        .filter(|f| f.rule == Rule::Dl003)
        .collect();
    assert_eq!(
        dl003[0].rows_affected,
        Some(3),
        "the apply reports the new count"
    );
}

#[test]
fn a_schema_changed_since_the_plan_is_refused_untouched() {
    let db = db_with(&["1"]);
    let report = db.applier().dry_run(&[v2()]).unwrap();
    db.conn()
        .execute_batch("CREATE INDEX outside ON \"tabReading\" (code)")
        .unwrap();
    let before = db.bytes();
    let err = apply_expecting(&db, &report).unwrap_err();
    match &err {
        Error::StalePlan { expected, found } => {
            assert_eq!(expected, &report.schema_fingerprint);
            assert_ne!(found, expected);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("schema changed"), "{err}");
    assert_eq!(db.bytes(), before);
    // Planned again, it goes through.
    let again = db.applier().dry_run(&[v2()]).unwrap();
    assert_ne!(again.schema_fingerprint, report.schema_fingerprint);
    apply_expecting(&db, &again).unwrap();
}

#[test]
fn a_finding_the_plan_did_not_show_is_refused_untouched() {
    // All values convert when planned: no DL003.
    let db = db_with(&["1", "2"]);
    let report = db.applier().dry_run(&[v2()]).unwrap();
    assert!(!report.findings.iter().any(|f| f.rule == Rule::Dl003));
    insert(&db, &["not a number"], 10);
    let before = db.bytes();
    let err = apply_expecting(&db, &report).unwrap_err();
    match &err {
        Error::NewFindings { findings } => {
            assert_eq!(findings.len(), 1, "{findings:?}");
            assert_eq!(findings[0].rule, Rule::Dl003);
            assert_eq!(findings[0].column.as_deref(), Some("value"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(db.bytes(), before);
}

#[test]
fn a_plan_with_work_whose_work_was_done_elsewhere_is_stale() {
    let db = db_with(&["1"]);
    let report = db.applier().dry_run(&[v2()]).unwrap();
    db.applier().sync_all(&[v2()]).unwrap();
    let err = apply_expecting(&db, &report).unwrap_err();
    assert!(matches!(err, Error::StalePlan { .. }), "{err:?}");
    // An up-to-date plan of an up-to-date database is fine.
    let now = db.applier().dry_run(&[v2()]).unwrap();
    let ok = apply_expecting(&db, &now).unwrap();
    assert!(ok.migrations.is_empty());
}
