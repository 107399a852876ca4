//! The 265 real Frappe v16 DocTypes from ../shared apply to an empty
//! database, and a second apply records nothing.

use crate::common::*;
use doctype_migrate::load_path;

#[test]
fn frappe_corpus_applies_and_second_apply_is_a_noop() {
    let Some(dir) = corpus() else {
        eprintln!("note: ../shared/corpus/frappe-v16-doctypes not found; corpus test skipped");
        return;
    };
    let doctypes = load_path(&dir).unwrap();
    assert_eq!(doctypes.len(), 265);
    let with_table: Vec<_> = doctypes.iter().filter(|d| d.has_table()).collect();
    let db = TestDb::new();
    let report = db.applier().sync_all(&doctypes).unwrap();
    assert_eq!(report.migrations.len(), with_table.len());
    let conn = db.conn();
    let tables = count(
        &conn,
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'tab%' AND name NOT IN ('tabMigrationHistory', 'tabMigrationMeta')",
    );
    assert_eq!(
        tables as usize,
        with_table.len(),
        "one table per non-single, non-virtual DocType"
    );
    for dt in doctypes.iter().filter(|d| !d.has_table()) {
        assert!(
            column_names(&conn, &dt.table_name()).is_empty(),
            "{} must have no table",
            dt.name
        );
    }
    let before = db.bytes();
    let again = db.applier().sync_all(&doctypes).unwrap();
    assert!(again.migrations.is_empty());
    assert_eq!(db.bytes(), before);
    assert_eq!(db.applier().history(None).unwrap().len(), with_table.len());
}

#[test]
fn frappe_corpus_dry_run_on_an_empty_database_has_no_blocking_findings() {
    let Some(dir) = corpus() else {
        eprintln!("note: corpus not found; skipped");
        return;
    };
    let doctypes = load_path(&dir).unwrap();
    let db = TestDb::new();
    let report = db.applier().dry_run(&doctypes).unwrap();
    assert!(
        !report.blocked,
        "{:?}",
        report.findings.iter().find(|f| f.blocking)
    );
    assert_eq!(
        report.plan.pending().count(),
        doctypes.iter().filter(|d| d.has_table()).count()
    );
}
