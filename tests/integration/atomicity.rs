//! Invariant "Atomic": all-or-nothing by default; with continue-on-error each
//! DocType commits or rolls back on its own and failures are recorded.

use crate::common::*;
use doctype_migrate::{Error, MigrationApplier, MigrationStatus};

fn doctypes() -> Vec<doctype_migrate::DocType> {
    vec![
        doctype(r#"{"name": "Alpha", "fields": [{"fieldname": "a", "fieldtype": "Data"}]}"#),
        doctype(r#"{"name": "Gauge", "fields": [{"fieldname": "reading", "fieldtype": "Int"}]}"#),
        doctype(r#"{"name": "Zulu", "fields": [{"fieldname": "z", "fieldtype": "Data"}]}"#),
    ]
}

#[test]
fn all_or_nothing_commits_nothing_when_one_doctype_fails() {
    let db = TestDb::with_sql(GAUGE_TRAP);
    let before = db.schema();
    let err = db.applier().sync_all(&doctypes()).unwrap_err();
    match &err {
        Error::DocTypeFailed { doctype, source } => {
            assert_eq!(doctype, "Gauge");
            assert!(source.to_string().contains("tabGauge"), "{source}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(
        db.schema(),
        before,
        "Alpha (before Gauge) was rolled back too, Zulu never ran"
    );
    assert_eq!(
        count(
            &db.conn(),
            "SELECT count(*) FROM \"tabGauge\" WHERE typeof(reading) = 'text'"
        ),
        2
    );
}

#[test]
fn continue_on_error_commits_the_others_and_records_the_failure() {
    let db = TestDb::with_sql(GAUGE_TRAP);
    let mut applier = MigrationApplier::builder(&db.path)
        .continue_on_error(true)
        .build()
        .unwrap();
    let report = applier.sync_all(&doctypes()).unwrap();
    let status: Vec<_> = report
        .migrations
        .iter()
        .map(|m| (m.doctype.as_str(), m.status))
        .collect();
    assert_eq!(
        status,
        [
            ("Alpha", MigrationStatus::Completed),
            ("Gauge", MigrationStatus::Failed),
            ("Zulu", MigrationStatus::Completed)
        ]
    );
    let conn = db.conn();
    assert!(!column_names(&conn, "tabAlpha").is_empty());
    assert!(!column_names(&conn, "tabZulu").is_empty());
    let gauge = columns(&conn, "tabGauge")
        .into_iter()
        .find(|c| c.0 == "reading")
        .unwrap();
    assert_eq!(
        gauge.1, "VARCHAR(140)",
        "the failed DocType was rolled back to its savepoint"
    );
    let failed = &applier.history(Some("Gauge")).unwrap()[0];
    assert_eq!(failed.status, MigrationStatus::Failed);
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .contains("CHECK constraint failed"),
        "{:?}",
        failed.error
    );
    assert_eq!(report.failed().count(), 1);
}
