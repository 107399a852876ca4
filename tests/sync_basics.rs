//! Core sync: create, add, orphan, type change, indexes, NOT NULL, default,
//! rename, no-op second sync, dry run, history, pending.

mod common;

use common::*;
use doctype_migrate::{ChangeKind, MigrationStatus};

const V1: &str = r#"{"doctype": "DocType", "name": "Customer", "fields": [
    {"fieldname": "customer_name", "fieldtype": "Data", "reqd": 1},
    {"fieldname": "credit_limit", "fieldtype": "Data"},
    {"fieldname": "notes", "fieldtype": "Small Text"},
    {"fieldname": "status", "fieldtype": "Select", "options": "Active\nInactive"}
]}"#;

fn seed(db: &TestDb) {
    let conn = db.conn();
    for i in 0..50 {
        conn.execute(
            "INSERT INTO \"tabCustomer\" (name, customer_name, credit_limit, notes, status) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                format!("CUST-{i:04}"),
                format!("Customer {i}"),
                if i % 5 == 0 { None } else { Some((i * 100).to_string()) },
                "n",
                if i % 2 == 0 { Some("Active") } else { None }
            ],
        )
        .unwrap();
    }
}

#[test]
fn create_table_then_second_sync_is_a_noop() {
    let db = TestDb::new();
    let dt = doctype(V1);
    let report = db.applier().sync_all(std::slice::from_ref(&dt)).unwrap();
    assert_eq!(report.migrations.len(), 1);
    assert_eq!(report.migrations[0].status, MigrationStatus::Completed);
    assert_eq!(
        report.migrations[0].changes[0].kind,
        ChangeKind::CreateTable
    );
    let conn = db.conn();
    assert_eq!(
        column_names(&conn, "tabCustomer"),
        [
            "name",
            "creation",
            "modified",
            "modified_by",
            "owner",
            "docstatus",
            "idx",
            "customer_name",
            "credit_limit",
            "notes",
            "status"
        ]
    );
    let before = db.bytes();
    let again = db.applier().sync_all(&[dt]).unwrap();
    assert!(again.migrations.is_empty());
    assert_eq!(db.bytes(), before, "a no-op sync must not write");
    assert_eq!(db.applier().history(None).unwrap().len(), 1);
}

#[test]
fn add_column_is_native_and_removed_field_is_kept_as_orphan() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    seed(&db);
    let v2 = V1.replace(
        r#"{"fieldname": "notes", "fieldtype": "Small Text"},"#,
        r#"{"fieldname": "email", "fieldtype": "Data", "options": "Email"},"#,
    );
    let applier = db.applier();
    let plan = applier.dry_run(&[doctype(&v2)]).unwrap().plan;
    let dt_plan = &plan.doctypes[0];
    assert_eq!(dt_plan.orphans, ["notes"]);
    assert!(
        !dt_plan.rebuilds(),
        "adding a nullable column is a native ALTER"
    );
    assert_eq!(
        dt_plan.forward_sql(),
        ["ALTER TABLE \"tabCustomer\" ADD COLUMN \"email\" VARCHAR(140)"]
    );
    assert_eq!(
        dt_plan.rollback_sql(),
        ["ALTER TABLE \"tabCustomer\" DROP COLUMN \"email\""]
    );
    let mut applier = applier;
    applier.sync_all(&[doctype(&v2)]).unwrap();
    let conn = db.conn();
    let cols = column_names(&conn, "tabCustomer");
    assert!(cols.contains(&"email".to_string()) && cols.contains(&"notes".to_string()));
    assert_eq!(
        count(&conn, "SELECT count(notes) FROM \"tabCustomer\""),
        50,
        "orphan data kept"
    );
}

#[test]
fn type_change_rebuilds_and_converts_values() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    seed(&db);
    let v2 = V1.replace(
        r#""credit_limit", "fieldtype": "Data""#,
        r#""credit_limit", "fieldtype": "Currency""#,
    );
    let mut applier = db.applier();
    let report = applier.sync_all(&[doctype(&v2)]).unwrap();
    let rec = &report.migrations[0];
    assert!(rec.changes.iter().any(|c| c.kind == ChangeKind::ChangeType));
    assert_eq!(rec.affected_rows, 50, "rows copied by the rebuild");
    let conn = db.conn();
    let col = columns(&conn, "tabCustomer")
        .into_iter()
        .find(|c| c.0 == "credit_limit")
        .unwrap();
    assert_eq!(
        (col.1.as_str(), col.2, col.3.as_deref()),
        ("REAL", true, Some("0"))
    );
    let (t, v): (String, f64) = conn
        .query_row("SELECT typeof(credit_limit), credit_limit FROM \"tabCustomer\" WHERE name = 'CUST-0003'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((t.as_str(), v), ("real", 300.0));
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM \"tabCustomer\" WHERE credit_limit = 0"
        ),
        10,
        "NULLs filled with the default"
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM \"tabCustomer\""), 50);
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}
