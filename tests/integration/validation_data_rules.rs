//! Data-aware rules with exact rows_affected on real databases:
//! DL002, DL003, MF001, MF002, MF003, RB001, and the allow_data_loss policy.

use crate::common::*;
use doctype_migrate::{Error, MigrationApplier, Rule};

const V1: &str = r#"{"name": "Reading", "fields": [
    {"fieldname": "code", "fieldtype": "Data"},
    {"fieldname": "value", "fieldtype": "Data"},
    {"fieldname": "note", "fieldtype": "Small Text"}
]}"#;

fn db_with(rows: &[(&str, Option<&str>, Option<&str>)]) -> TestDb {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    let mut conn = db.conn();
    let tx = conn.transaction().unwrap();
    for (i, (code, value, note)) in rows.iter().enumerate() {
        tx.execute(
            "INSERT INTO \"tabReading\" (name, code, value, note) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![format!("R{i:05}"), code, value, note],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    db
}

fn findings(db: &TestDb, json: &str, rule: Rule) -> Vec<doctype_migrate::Finding> {
    let report = db.applier().dry_run(&[doctype(json)]).unwrap();
    report
        .findings
        .into_iter()
        .filter(|f| f.rule == rule)
        .collect()
}

#[test]
fn mf001_counts_rows_in_duplicate_groups() {
    // 1,000 rows: 12 values repeated across 37 rows, 963 unique.
    let mut codes: Vec<String> = Vec::new();
    for g in 0..12 {
        let copies = if g < 11 { 3 } else { 4 };
        codes.extend(std::iter::repeat_n(format!("DUP-{g:02}"), copies));
    }
    assert_eq!(codes.len(), 37);
    codes.extend((0..963).map(|i| format!("U-{i:04}")));
    let rows: Vec<_> = codes.iter().map(|c| (c.as_str(), None, None)).collect();
    let db = db_with(&rows);
    let v2 = V1.replace(
        r#""code", "fieldtype": "Data""#,
        r#""code", "fieldtype": "Data", "unique": 1"#,
    );
    let f = findings(&db, &v2, Rule::Mf001);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rows_affected, Some(37));
    assert!(f[0].blocking);
    assert!(
        f[0].message.contains("12 group(s)") && f[0].message.contains("DUP-11"),
        "{}",
        f[0].message
    );
    // MF001 cannot be overridden.
    let before = db.bytes();
    let err = MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .build()
        .unwrap()
        .sync_all(&[doctype(&v2)])
        .unwrap_err();
    assert!(matches!(err, Error::Blocked { .. }));
    assert_eq!(
        db.bytes(),
        before,
        "a blocked apply leaves the file byte-identical"
    );
}

#[test]
fn dl003_counts_values_that_do_not_survive_the_conversion() {
    let values = ["12", "0012", " 12", "12.0", "1e2", "abc", "", "7", "-3"];
    let mut rows: Vec<_> = values.iter().map(|v| ("c", Some(*v), None)).collect();
    rows.push(("c", None, None));
    let db = db_with(&rows);
    let v2 = V1.replace(
        r#""value", "fieldtype": "Data""#,
        r#""value", "fieldtype": "Int""#,
    );
    let f = findings(&db, &v2, Rule::Dl003);
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].rows_affected,
        Some(6),
        "0012, ' 12', 12.0, 1e2, abc and '' do not survive"
    );
    assert!(f[0].blocking);
    let mf003 = findings(&db, &v2, Rule::Mf003);
    assert_eq!(
        mf003[0].rows_affected,
        Some(1),
        "the NULL will be filled with 0"
    );
    assert!(!mf003[0].blocking);
    // The default policy backs the retyped column up, so rollback can restore it...
    assert!(findings(&db, &v2, Rule::Rb001).is_empty());
    let plan = db.applier().dry_run(&[doctype(&v2)]).unwrap().plan;
    assert_eq!(
        plan.doctypes[0].backups[0].strategy,
        doctype_migrate::BackupStrategy::Columns(vec!["value".into()])
    );
    // ...without backups, RB001 says rollback could not.
    let never = MigrationApplier::builder(&db.path)
        .backup_policy(doctype_migrate::BackupPolicy::Never)
        .build()
        .unwrap()
        .dry_run(&[doctype(&v2)])
        .unwrap();
    let rb001: Vec<_> = never
        .findings
        .iter()
        .filter(|f| f.rule == Rule::Rb001)
        .collect();
    assert_eq!(rb001.len(), 1);
    assert!(rb001[0].blocking);
    // Allowed, the apply goes through and converts with CAST semantics.
    MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .build()
        .unwrap()
        .sync_all(&[doctype(&v2)])
        .unwrap();
    assert_eq!(
        count(&db.conn(), "SELECT sum(value) FROM \"tabReading\""),
        12 + 12 + 12 + 12 + 1 + 7 - 3
    );
}

#[test]
fn dl002_counts_values_in_a_dropped_column_and_suggests_a_rename() {
    let db = db_with(&[
        ("a", None, Some("x")),
        ("b", None, Some("y")),
        ("c", None, None),
    ]);
    let v2 = V1.replace(r#""fieldname": "note""#, r#""fieldname": "remark""#);
    let report = MigrationApplier::builder(&db.path)
        .drop_orphan_columns(true)
        .build()
        .unwrap()
        .dry_run(&[doctype(&v2)])
        .unwrap();
    let f = report
        .findings
        .iter()
        .find(|f| f.rule == Rule::Dl002)
        .unwrap();
    assert_eq!(f.rows_affected, Some(2));
    assert!(f.blocking);
    assert!(
        f.suggestion.contains("\"renamed_from\": \"note\""),
        "{}",
        f.suggestion
    );
    assert!(report.blocked);
}

#[test]
fn mf002_blocks_not_null_without_default_over_nulls() {
    let db = db_with(&[("a", None, Some("x")), ("b", None, None), ("c", None, None)]);
    let v2 = V1.replace(
        r#""note", "fieldtype": "Small Text""#,
        r#""note", "fieldtype": "Small Text", "not_nullable": 1"#,
    );
    let f = findings(&db, &v2, Rule::Mf002);
    assert_eq!(f[0].rows_affected, Some(2));
    assert!(f[0].blocking);
    let with_default = V1.replace(
        r#""note", "fieldtype": "Small Text""#,
        r#""note", "fieldtype": "Small Text", "not_nullable": 1, "default": "-""#,
    );
    assert!(findings(&db, &with_default, Rule::Mf002).is_empty());
    assert_eq!(
        findings(&db, &with_default, Rule::Mf003)[0].rows_affected,
        Some(2)
    );
}

#[test]
fn lossless_changes_produce_no_data_findings() {
    let db = db_with(&[("a", Some("12"), None), ("b", Some("-4"), None)]);
    let v2 = V1.replace(
        r#""value", "fieldtype": "Data""#,
        r#""value", "fieldtype": "Int""#,
    );
    let report = db.applier().dry_run(&[doctype(&v2)]).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    db.applier().sync_all(&[doctype(&v2)]).unwrap();
}

#[test]
fn dl001_counts_rows_of_a_dropped_table_and_drop_needs_consent() {
    let db = db_with(&[("a", None, None), ("b", None, None)]);
    let mut single = doctype(V1);
    single.issingle = true;
    // Without the option, the table of a DocType that became single is kept.
    assert!(
        db.applier()
            .dry_run(std::slice::from_ref(&single))
            .unwrap()
            .plan
            .is_empty()
    );
    let dropping = MigrationApplier::builder(&db.path)
        .drop_orphan_tables(true)
        .build()
        .unwrap();
    let report = dropping.dry_run(std::slice::from_ref(&single)).unwrap();
    let f = report
        .findings
        .iter()
        .find(|f| f.rule == Rule::Dl001)
        .unwrap();
    assert_eq!((f.rows_affected, f.blocking), (Some(2), true));
    assert_eq!(
        report.plan.doctypes[0].forward_sql(),
        ["DROP TABLE \"tabReading\""]
    );
    assert!(report.plan.doctypes[0].rollback_sql()[0].starts_with("CREATE TABLE \"tabReading\""));
    drop(dropping);
    MigrationApplier::builder(&db.path)
        .drop_orphan_tables(true)
        .allow_data_loss(true)
        .build()
        .unwrap()
        .sync_all(&[single])
        .unwrap();
    assert!(column_names(&db.conn(), "tabReading").is_empty());
}

#[test]
fn fill_nulls_resolves_mf002_and_fills_the_rows() {
    let db = db_with(&[("a", None, Some("x")), ("b", None, None), ("c", None, None)]);
    let v2 = V1.replace(
        r#""note", "fieldtype": "Small Text""#,
        r#""note", "fieldtype": "Small Text", "not_nullable": 1"#,
    );
    let mut applier = MigrationApplier::builder(&db.path)
        .fill_nulls("Reading", "note", "n/a")
        .build()
        .unwrap();
    let report = applier.dry_run(&[doctype(&v2)]).unwrap();
    assert!(
        report.findings.iter().all(|f| f.rule != Rule::Mf002),
        "{:?}",
        report.findings
    );
    let f = report
        .findings
        .iter()
        .find(|f| f.rule == Rule::Mf003)
        .unwrap();
    assert_eq!(f.rows_affected, Some(2));
    assert!(f.message.contains("'n/a'"), "{}", f.message);
    applier.sync_all(&[doctype(&v2)]).unwrap();
    assert_eq!(
        count(
            &db.conn(),
            "SELECT count(*) FROM \"tabReading\" WHERE note = 'n/a'"
        ),
        2
    );
}
