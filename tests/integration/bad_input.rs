//! Bad DocType input gives an error naming the file and field and leaves the
//! database byte-identical.

use crate::common::*;
use doctype_migrate::{Error, load_path};

fn write(db: &TestDb, name: &str, json: &str) -> std::path::PathBuf {
    let p = db.dir.path().join(name);
    std::fs::write(&p, json).unwrap();
    p
}

fn assert_rejected(json: &str, must_mention: &[&str]) {
    let db = TestDb::new();
    db.applier()
        .sync_all(&[doctype(r#"{"name": "Keep", "fields": []}"#)])
        .unwrap();
    let before = db.bytes();
    let file = write(&db, "bad.json", json);
    let err = load_path(&file)
        .and_then(|dts| db.applier().sync_all(&dts))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("bad.json"),
        "error must name the file: {text}"
    );
    for m in must_mention {
        assert!(text.contains(m), "error must mention {m:?}: {text}");
    }
    assert!(
        // Loading reports parse errors; definition conflicts in a parsed set
        // are refused by sync_all as blocking CF003 findings.
        matches!(
            err,
            Error::Json { .. } | Error::InvalidDocType { .. } | Error::Blocked { .. }
        ),
        "{err:?}"
    );
    assert_eq!(db.bytes(), before, "database untouched");
}

#[test]
fn malformed_json() {
    assert_rejected(
        r#"{"doctype": "DocType", "name": "X", "fields": [ {"fieldname": "a",, } ]}"#,
        &[],
    );
}

#[test]
fn unknown_fieldtype() {
    assert_rejected(
        r#"{"doctype": "DocType", "name": "X", "fields": [{"fieldname": "a", "fieldtype": "Varchar"}]}"#,
        &["\"a\"", "Varchar"],
    );
}

#[test]
fn injected_fieldname() {
    assert_rejected(
        r#"{"doctype": "DocType", "name": "X", "fields": [{"fieldname": "x\"; DROP TABLE y; --", "fieldtype": "Data"}]}"#,
        &["DROP TABLE y"],
    );
}

#[test]
fn injected_doctype_name() {
    assert_rejected(
        r#"{"doctype": "DocType", "name": "Keep\"; DROP TABLE \"tabKeep", "fields": []}"#,
        &["DROP TABLE"],
    );
}

#[test]
fn duplicate_fieldnames_case_insensitive() {
    assert_rejected(
        r#"{"doctype": "DocType", "name": "X", "fields": [
            {"fieldname": "amount", "fieldtype": "Data"}, {"fieldname": "Amount", "fieldtype": "Int"}]}"#,
        &["mount"],
    );
}

#[test]
fn injected_default_is_escaped_not_executed() {
    let db = TestDb::new();
    let dt = doctype(
        r#"{"name": "Note", "fields": [{"fieldname": "title", "fieldtype": "Data", "default": "x'); DROP TABLE \"tabNote\"; --"}]}"#,
    );
    db.applier().sync_all(&[dt]).unwrap();
    let conn = db.conn();
    conn.execute("INSERT INTO \"tabNote\" (name) VALUES ('n1')", [])
        .unwrap();
    let title: String = conn
        .query_row("SELECT title FROM \"tabNote\"", [], |r| r.get(0))
        .unwrap();
    assert_eq!(title, "x'); DROP TABLE \"tabNote\"; --");
}
