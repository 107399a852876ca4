//! Validation rules that need no data scan: SQL001, CF001, CF002, CF004.

use crate::common::*;
use doctype_migrate::{Error, Rule, Severity};

const LOG: &str = r#"{"name": "Log", "fields": [
    {"fieldname": "message", "fieldtype": "Data"},
    {"fieldname": "level", "fieldtype": "Data"}
]}"#;

#[test]
fn sql001_blocks_a_plan_whose_sql_fails_on_the_shadow_schema() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(LOG)]).unwrap();
    // An object squatting on the rebuild's temporary name makes the forward SQL fail.
    db.conn()
        .execute_batch("CREATE TABLE \"_dm_new_tabLog\" (x)")
        .unwrap();
    let v2 = LOG.replace(
        r#""level", "fieldtype": "Data""#,
        r#""level", "fieldtype": "Int""#,
    );
    let applier = db.applier();
    let report = applier.dry_run(&[doctype(&v2)]).unwrap();
    assert!(report.blocked);
    let f = &report.findings[0];
    assert_eq!(
        (f.rule, f.severity, f.blocking),
        (Rule::Sql001, Severity::Critical, true)
    );
    assert!(f.message.contains("_dm_new_tabLog"), "{}", f.message);
    let before = db.bytes();
    drop(applier);
    let err = db.applier().sync_all(&[doctype(&v2)]).unwrap_err();
    assert!(matches!(err, Error::Blocked { .. }), "{err}");
    assert_eq!(db.bytes(), before);
}

#[test]
fn cf001_reports_drift_outside_the_engine_without_blocking() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(LOG)]).unwrap();
    db.conn()
        .execute_batch("CREATE INDEX by_level ON \"tabLog\"(level)")
        .unwrap();
    let report = db.applier().dry_run(&[doctype(LOG)]).unwrap();
    let f = report
        .findings
        .iter()
        .find(|f| f.rule == Rule::Cf001)
        .expect("drift reported");
    assert_eq!((f.severity, f.blocking), (Severity::High, false));
    assert!(
        f.message.contains("index \"by_level\" was added"),
        "{}",
        f.message
    );
    assert!(!report.blocked);
}

#[test]
fn cf002_reports_missing_link_targets_but_not_present_ones() {
    let db = TestDb::new();
    let order = doctype(
        r#"{"name": "Order", "fields": [
            {"fieldname": "customer", "fieldtype": "Link", "options": "Customer"},
            {"fieldname": "log", "fieldtype": "Link", "options": "Log"},
            {"fieldname": "items", "fieldtype": "Table", "options": "Order Item"}
        ]}"#,
    );
    let report = db.applier().dry_run(&[order, doctype(LOG)]).unwrap();
    let cf002: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == Rule::Cf002)
        .collect();
    assert_eq!(cf002.len(), 2, "{cf002:?}");
    assert!(
        cf002
            .iter()
            .all(|f| f.severity == Severity::Medium && !f.blocking)
    );
    assert!(
        cf002
            .iter()
            .any(|f| f.column.as_deref() == Some("customer"))
    );
    assert!(
        cf002
            .iter()
            .any(|f| f.message.contains("child table DocType \"Order Item\""))
    );
}

#[test]
fn cf004_blocks_a_rebuild_that_would_change_a_user_views_meaning() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(LOG)]).unwrap();
    db.conn()
        .execute_batch("CREATE VIEW errors AS SELECT name FROM \"tabLog\" WHERE level = 'error'")
        .unwrap();
    let v2 = LOG.replace(
        r#""level", "fieldtype": "Data""#,
        r#""level", "fieldtype": "Int""#,
    );
    let report = db.applier().dry_run(&[doctype(&v2)]).unwrap();
    let f = report
        .findings
        .iter()
        .find(|f| f.rule == Rule::Cf004)
        .expect("CF004");
    assert!(f.blocking && f.column.as_deref() == Some("level"));
    assert!(f.message.contains("view \"errors\""), "{}", f.message);
    // A retype of a column the view does not use is fine.
    let v3 = LOG.replace(
        r#""message", "fieldtype": "Data""#,
        r#""message", "fieldtype": "Text""#,
    );
    assert!(!db.applier().dry_run(&[doctype(&v3)]).unwrap().blocked);
}

#[test]
fn cf003_reports_every_definition_conflict_and_plans_the_rest() {
    let db = TestDb::new();
    let a = doctype(r#"{"name": "Sales Order", "fields": []}"#);
    let b = doctype(r#"{"name": "sales order", "fields": []}"#);
    let mut c =
        doctype(r#"{"name": "Note", "fields": [{"fieldname": "title", "fieldtype": "Data"}]}"#);
    c.fields.push(doctype_migrate::Field::new(
        "Title",
        doctype_migrate::FieldType::Data,
    ));
    let ok = doctype(LOG);
    let report = db
        .applier()
        .dry_run(&[a.clone(), b.clone(), c, ok])
        .unwrap();
    let cf003: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == Rule::Cf003)
        .collect();
    assert!(cf003.len() >= 2, "{cf003:?}");
    assert!(
        cf003
            .iter()
            .all(|f| f.blocking && f.severity == Severity::Critical)
    );
    assert!(cf003.iter().any(|f| f.column.as_deref() == Some("Title")));
    assert!(report.blocked);
    let planned: Vec<_> = report
        .plan
        .doctypes
        .iter()
        .map(|d| d.doctype.as_str())
        .collect();
    assert_eq!(
        planned,
        ["Log"],
        "only the DocType without conflicts is planned"
    );
    let before = db.bytes();
    let err = db.applier().sync_all(&[a, b]).unwrap_err();
    assert!(
        matches!(&err, doctype_migrate::Error::Blocked { findings } if findings.iter().all(|f| f.rule == Rule::Cf003)),
        "{err}"
    );
    assert_eq!(db.bytes(), before);
}
