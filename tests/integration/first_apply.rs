//! The first apply of many new DocTypes: the cheap paths it takes (the
//! SQL001 replay of each new table apart, the history row's schema read
//! from the rows its statements added) keep every guarantee of the general
//! path: a statement SQLite would reject is caught before anything is
//! written and named by its DocType, and each DocType has its own history
//! row with the schema it left.

use crate::common::*;
use doctype_migrate::{DocType, Error, MigrationStatus, Rule, Severity};

/// `n` new DocTypes, each a table with an indexed field.
fn many(n: usize) -> Vec<DocType> {
    (0..n)
        .map(|i| {
            doctype(&format!(
                r#"{{"name": "Small {i:03}", "fields": [
                    {{"fieldname": "title", "fieldtype": "Data", "search_index": 1}},
                    {{"fieldname": "qty", "fieldtype": "Int"}},
                    {{"fieldname": "note", "fieldtype": "Text"}}]}}"#
            ))
        })
        .collect()
}

/// The SQL001 findings of a blocked run, as (DocType, message).
fn sql001(err: &Error) -> Vec<(String, String)> {
    let Error::Blocked { findings } = err else {
        panic!("expected a blocked run, got {err}");
    };
    findings
        .iter()
        .map(|f| {
            assert_eq!(
                (f.rule, f.severity, f.blocking),
                (Rule::Sql001, Severity::Critical, true)
            );
            (f.doctype.clone(), f.message.clone())
        })
        .collect()
}

#[test]
fn a_create_sqlite_rejects_in_a_large_first_apply_is_caught_before_anything_is_written() {
    // A table squatting on the name of the index one DocType will create.
    let db = TestDb::with_sql("CREATE TABLE \"dm_idx__tabSmall 150__title\" (x)");
    let before = db.bytes();
    let doctypes = many(300);
    let report = db.applier().dry_run(&doctypes).unwrap();
    assert!(report.blocked);
    let err = db.applier().sync_all(&doctypes).unwrap_err();
    let found = sql001(&err);
    assert_eq!(found.len(), 1, "{found:?}");
    let (doctype, message) = &found[0];
    assert_eq!(doctype, "Small 150");
    assert!(
        message.starts_with("forward statement fails on the shadow schema")
            && message.contains("there is already a table named dm_idx__tabSmall 150__title"),
        "{message}"
    );
    assert_eq!(
        report
            .findings
            .iter()
            .map(|f| (f.doctype.clone(), f.message.clone()))
            .collect::<Vec<_>>(),
        found,
        "the dry run says the same"
    );
    assert_eq!(db.bytes(), before, "nothing was written");
}

#[test]
fn two_new_doctypes_creating_one_index_name_are_caught_before_anything_is_written() {
    // "A" indexes b__c and "A__b" indexes c: both indexes are named
    // dm_idx__tabA__b__c. Each passes alone; together the second fails.
    let db = TestDb::new();
    let before = db.bytes();
    let doctypes = [
        doctype(
            r#"{"name": "A", "fields": [{"fieldname": "b__c", "fieldtype": "Data", "search_index": 1}]}"#,
        ),
        doctype(
            r#"{"name": "A__b", "fields": [{"fieldname": "c", "fieldtype": "Data", "search_index": 1}]}"#,
        ),
    ];
    let err = db.applier().sync_all(&doctypes).unwrap_err();
    let found = sql001(&err);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "A__b");
    assert!(
        found[0]
            .1
            .contains("index dm_idx__tabA__b__c already exists"),
        "{}",
        found[0].1
    );
    assert_eq!(db.bytes(), before, "nothing was written");
}

#[test]
fn each_new_doctype_has_its_own_history_row_with_the_schema_it_left() {
    let db = TestDb::new();
    let doctypes = many(40);
    let report = db.applier().sync_all(&doctypes).unwrap();
    assert_eq!(report.migrations.len(), 40);
    let conn = db.conn();
    let rows = db.applier().history(None).unwrap();
    assert_eq!(rows.len(), 40);
    for (row, dt) in rows.iter().zip(&doctypes) {
        assert_eq!(
            (row.doctype.as_str(), row.status, row.version),
            (dt.name.as_str(), MigrationStatus::Completed, 1)
        );
        assert_eq!(row.schema_before, serde_json::json!([]));
        // What a scan of sqlite_schema for the table reads, in order.
        let mut stmt = conn
            .prepare(
                "SELECT type, name, tbl_name, sql FROM sqlite_schema \
                 WHERE tbl_name = ?1 COLLATE NOCASE ORDER BY rowid",
            )
            .unwrap();
        let objects: Vec<serde_json::Value> = stmt
            .query_map([&row.table_name], |r| {
                Ok(serde_json::json!({
                    "type": r.get::<_, String>(0)?,
                    "name": r.get::<_, String>(1)?,
                    "tbl_name": r.get::<_, String>(2)?,
                    "sql": r.get::<_, Option<String>>(3)?,
                }))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(objects.len(), 3, "table, primary key and title index");
        assert_eq!(row.schema_after, serde_json::Value::Array(objects));
        assert!(row.fingerprint_after.is_some());
    }
    // The recorded fingerprints are those of the live tables: the next
    // start confirms "up to date" from them.
    let again = db.applier().sync_all(&doctypes).unwrap();
    assert!(again.fast_path && again.migrations.is_empty());
}
