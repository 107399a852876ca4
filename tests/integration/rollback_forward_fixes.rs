//! Regression tests for forward-engine bugs found by the rollback round-trip
//! property test (proptest_roundtrip.rs). Each one failed before its
//! `fix:` commit.

use crate::common::TestDb;
use doctype_migrate::{DocType, Error, Field, FieldType, Rule};

/// An Int field is NOT NULL DEFAULT 0: added as unique to a table with two
/// rows, both rows get 0. Validation must block it (MF001) instead of the
/// apply failing on `CREATE UNIQUE INDEX` with a constraint error.
#[test]
fn unique_new_column_with_a_constant_default_on_two_rows_is_mf001() {
    let db = TestDb::new();
    let mut a = db.applier();
    let v1 = DocType::new("Item").field(Field::new("title", FieldType::Data));
    a.sync_all(std::slice::from_ref(&v1)).unwrap();
    db.conn()
        .execute_batch("INSERT INTO \"tabItem\" (name) VALUES ('a'), ('b')")
        .unwrap();
    let before = db.bytes();
    let v2 = v1.clone().field(Field::new("n", FieldType::Int).unique());
    match a.sync_all(std::slice::from_ref(&v2)) {
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
    a.sync_all(std::slice::from_ref(&v1)).unwrap();
    db.conn()
        .execute_batch("INSERT INTO \"tabItem\" (name) VALUES ('a')")
        .unwrap();
    a.sync_all(&[v1.field(Field::new("n", FieldType::Int).unique())])
        .unwrap();
}

fn mf001(result: doctype_migrate::Result<doctype_migrate::ApplyReport>) -> u64 {
    match result {
        Err(Error::Blocked { findings }) => {
            let f = findings.iter().find(|f| f.blocking).unwrap();
            assert_eq!(f.rule, Rule::Mf001, "{f}");
            f.rows_affected.unwrap()
        }
        other => panic!("expected MF001, got {other:?}"),
    }
}

/// Two NULLs never collide in a unique index, but a Data column that becomes
/// a unique Check (NOT NULL DEFAULT 0) has its NULLs filled with 0 first.
/// MF001 must look at the converted values.
#[test]
fn unique_over_values_that_collide_after_a_null_fill_is_mf001() {
    let db = TestDb::new();
    let mut a = lossy_applier(&db);
    a.sync_all(&[DocType::new("Item").field(Field::new("f", FieldType::Data))])
        .unwrap();
    db.conn()
        .execute_batch("INSERT INTO \"tabItem\" (name, f) VALUES ('a', NULL), ('b', NULL)")
        .unwrap();
    let before = db.bytes();
    let v2 = DocType::new("Item").field(Field::new("f", FieldType::Check).unique());
    assert_eq!(mf001(a.sync_all(&[v2])), 2);
    assert_eq!(db.bytes(), before);
}

/// '12' and '12.0' are distinct in a unique Data column; as Int both are 12.
/// The existing unique index is rebuilt over the converted values.
#[test]
fn existing_unique_index_over_values_that_collide_after_a_cast_is_mf001() {
    let db = TestDb::new();
    let mut a = lossy_applier(&db);
    a.sync_all(&[DocType::new("Item").field(Field::new("f", FieldType::Data).unique())])
        .unwrap();
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabItem\" (name, f) VALUES ('a', '12'), ('b', '12.0'), ('c', '7')",
        )
        .unwrap();
    let before = db.bytes();
    let v2 = DocType::new("Item").field(Field::new("f", FieldType::Int).unique());
    assert_eq!(mf001(a.sync_all(&[v2])), 2);
    assert_eq!(db.bytes(), before);
    // Without the collision the same change applies.
    db.conn()
        .execute_batch("DELETE FROM \"tabItem\" WHERE name = 'b'")
        .unwrap();
    let v2 = DocType::new("Item").field(Field::new("f", FieldType::Int).unique());
    a.sync_all(&[v2]).unwrap();
}

fn lossy_applier(db: &TestDb) -> doctype_migrate::MigrationApplier {
    doctype_migrate::MigrationApplier::builder(&db.path)
        .create_if_missing(true)
        .allow_data_loss(true)
        .build()
        .unwrap()
}

/// Renaming an indexed column: the forward plan renamed first and dropped
/// the old managed index after, so the rollback (undone in reverse)
/// recreated the old index on the old column name while the column still
/// had the new one. SQL001 blocked every such rename.
#[test]
fn renaming_an_indexed_column_applies_and_rolls_back() {
    let db = TestDb::new();
    let mut a = db.applier();
    a.sync_all(&[DocType::new("Item").field(Field::new("f", FieldType::Data).indexed())])
        .unwrap();
    db.conn()
        .execute_batch("INSERT INTO \"tabItem\" (name, f) VALUES ('a', 'x')")
        .unwrap();
    let schema = db.schema();
    let v2 =
        DocType::new("Item").field(Field::new("g", FieldType::Data).indexed().renamed_from("f"));
    let report = a.sync_all(&[v2]).unwrap();
    assert_eq!(crate::common::column_names(&db.conn(), "tabItem")[7], "g");
    let id = report.migrations[0].id.unwrap();
    a.rollback_migration(id, &doctype_migrate::RollbackOptions::default())
        .unwrap();
    assert_eq!(db.schema(), schema);
    let f: String = db
        .conn()
        .query_row("SELECT f FROM \"tabItem\"", [], |r| r.get(0))
        .unwrap();
    assert_eq!(f, "x");
}
