//! Regression tests for forward-engine bugs found by the rollback round-trip
//! property test (tests/proptest_roundtrip.rs). Each one failed before its
//! `fix:` commit.

mod common;

use common::TestDb;
use doctype_migrate::{DocType, Error, Field, FieldType, Rule};

/// An Int field is NOT NULL DEFAULT 0: added as unique to a table with two
/// rows, both rows get 0. Validation must block it (MF001) instead of the
/// apply failing on `CREATE UNIQUE INDEX` with a constraint error.
#[test]
fn unique_new_column_with_a_constant_default_on_two_rows_is_mf001() {
    let db = TestDb::new();
    let mut a = db.applier();
    let v1 = DocType::new("Item").field(Field::new("title", FieldType::Data));
    a.sync_all(&[v1.clone()]).unwrap();
    db.conn()
        .execute_batch("INSERT INTO \"tabItem\" (name) VALUES ('a'), ('b')")
        .unwrap();
    let before = db.bytes();
    let v2 = v1.clone().field(Field::new("n", FieldType::Int).unique());
    match a.sync_all(&[v2.clone()]) {
        Err(Error::Blocked { findings }) => {
            let f = findings.iter().find(|f| f.blocking).unwrap();
            assert_eq!(f.rule, Rule::Mf001, "{f}");
            assert_eq!(f.rows_affected, Some(2));
        }
        other => panic!("expected MF001, got {other:?}"),
    }
    assert_eq!(db.bytes(), before);

    // A nullable new unique column is NULL in every row: no duplicates.
    let v3 = v1.field(Field::new("code", FieldType::Data).unique());
    a.sync_all(&[v3]).unwrap();
}

/// With one row, a constant default cannot collide.
#[test]
fn unique_new_column_with_a_constant_default_on_one_row_applies() {
    let db = TestDb::new();
    let mut a = db.applier();
    let v1 = DocType::new("Item").field(Field::new("title", FieldType::Data));
    a.sync_all(&[v1.clone()]).unwrap();
    db.conn()
        .execute_batch("INSERT INTO \"tabItem\" (name) VALUES ('a')")
        .unwrap();
    a.sync_all(&[v1.field(Field::new("n", FieldType::Int).unique())])
        .unwrap();
}
