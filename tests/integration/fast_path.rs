//! The start-up fast path: an up-to-date database is confirmed from
//! fingerprints alone, but a DocType edit or a table changed outside the
//! engine is never missed.

use crate::common::*;
use doctype_migrate::ChangeKind;

const NOTE: &str = r#"{"name": "Note", "fields": [
    {"fieldname": "title", "fieldtype": "Data", "search_index": 1},
    {"fieldname": "body", "fieldtype": "Text"}
]}"#;
const TAG: &str = r#"{"name": "Tag", "fields": [{"fieldname": "label", "fieldtype": "Data"}]}"#;

#[test]
fn up_to_date_is_confirmed_by_fingerprints() {
    let db = TestDb::new();
    let set = [doctype(NOTE), doctype(TAG)];
    let first = db.applier().sync_all(&set).unwrap();
    assert!(!first.fast_path);
    let again = db.applier().sync_all(&set).unwrap();
    assert!(
        again.fast_path,
        "nothing changed: confirmed without introspection"
    );
    assert!(again.migrations.is_empty());
}

#[test]
fn a_doctype_edit_is_not_missed() {
    let db = TestDb::new();
    db.applier()
        .sync_all(&[doctype(NOTE), doctype(TAG)])
        .unwrap();
    let edited = NOTE.replace(r#"{"fieldname": "body", "fieldtype": "Text"}"#, r#"{"fieldname": "body", "fieldtype": "Text"}, {"fieldname": "pinned", "fieldtype": "Check"}"#);
    let report = db
        .applier()
        .sync_all(&[doctype(&edited), doctype(TAG)])
        .unwrap();
    assert!(!report.fast_path);
    assert_eq!(report.migrations.len(), 1);
    assert_eq!(report.migrations[0].changes[0].kind, ChangeKind::AddColumn);
    assert!(
        db.applier()
            .sync_all(&[doctype(&edited), doctype(TAG)])
            .unwrap()
            .fast_path
    );
}

#[test]
fn a_table_altered_outside_the_engine_is_not_missed() {
    let db = TestDb::new();
    let set = [doctype(NOTE), doctype(TAG)];
    db.applier().sync_all(&set).unwrap();
    // Someone drops the engine's index by hand: the next start puts it back.
    db.conn()
        .execute_batch("DROP INDEX \"dm_idx__tabNote__title\"")
        .unwrap();
    let report = db.applier().sync_all(&set).unwrap();
    assert!(!report.fast_path);
    assert_eq!(report.migrations.len(), 1);
    assert_eq!(report.migrations[0].changes[0].kind, ChangeKind::AddIndex);
    assert!(index_names(&db.conn(), "tabNote").contains(&"dm_idx__tabNote__title".to_string()));
    // A harmless outside change (a user index) is looked at, found fine, and
    // reported by dry runs as drift; nothing is migrated.
    db.conn()
        .execute_batch("CREATE INDEX mine ON \"tabTag\"(label)")
        .unwrap();
    let report = db.applier().sync_all(&set).unwrap();
    assert!(!report.fast_path && report.migrations.is_empty());
    let drift = db.applier().dry_run(&set).unwrap();
    assert!(
        drift
            .findings
            .iter()
            .any(|f| f.rule == doctype_migrate::Rule::Cf001)
    );
}
