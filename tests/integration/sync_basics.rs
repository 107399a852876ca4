//! Core sync: create, add, orphan, type change, indexes, NOT NULL, default,
//! rename, no-op second sync, dry run, history, pending.

use crate::common::*;
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
            "status",
            "_user_tags",
            "_comments",
            "_assign",
            "_liked_by"
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
    // '300' becomes 300.0, which reads back as '300.0': DL003 counts that as a
    // changed value, so the conversion needs consent.
    let blocked = db.applier().sync_all(&[doctype(&v2)]).unwrap_err();
    assert!(
        matches!(blocked, doctype_migrate::Error::Blocked { .. }),
        "{blocked}"
    );
    let mut applier = doctype_migrate::MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .build()
        .unwrap();
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

#[test]
fn index_and_unique_are_added_and_dropped_natively() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    seed(&db);
    let v2 = V1
        .replace(
            r#""customer_name", "fieldtype": "Data", "reqd": 1"#,
            r#""customer_name", "fieldtype": "Data", "reqd": 1, "unique": 1"#,
        )
        .replace(
            r#""status", "fieldtype": "Select""#,
            r#""status", "fieldtype": "Select", "search_index": 1"#,
        );
    let report = db.applier().sync_all(&[doctype(&v2)]).unwrap();
    let kinds: Vec<_> = report.migrations[0]
        .changes
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, [ChangeKind::AddIndex, ChangeKind::AddUnique]);
    let conn = db.conn();
    assert_eq!(
        index_names(&conn, "tabCustomer"),
        [
            "dm_idx__tabCustomer__status",
            "dm_uq__tabCustomer__customer_name",
            "sqlite_autoindex_tabCustomer_1"
        ]
    );
    let dup = conn.execute(
        "INSERT INTO \"tabCustomer\" (name, customer_name) VALUES ('X', 'Customer 1')",
        [],
    );
    assert!(dup.is_err(), "the unique index is enforced");
    // A user index the engine did not create survives every sync.
    conn.execute_batch("CREATE INDEX my_notes ON \"tabCustomer\"(notes)")
        .unwrap();
    let report = db.applier().sync_all(&[doctype(V1)]).unwrap();
    let kinds: Vec<_> = report.migrations[0]
        .changes
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, [ChangeKind::DropIndex, ChangeKind::DropUnique]);
    assert_eq!(
        index_names(&conn, "tabCustomer"),
        ["my_notes", "sqlite_autoindex_tabCustomer_1"]
    );
}

#[test]
fn not_null_and_default_changes_keep_rows_in_place_and_by_rebuild() {
    for always_rebuild in [false, true] {
        not_null_and_default_changes_keep_rows(always_rebuild);
    }
}

fn not_null_and_default_changes_keep_rows(always_rebuild: bool) {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    seed(&db);
    let v2 = V1
        .replace(
            r#""notes", "fieldtype": "Small Text""#,
            r#""notes", "fieldtype": "Small Text", "not_nullable": 1"#,
        )
        .replace(
            r#""options": "Active\nInactive""#,
            r#""options": "Active\nInactive", "default": "Active""#,
        );
    let report = doctype_migrate::MigrationApplier::builder(&db.path)
        .always_rebuild(always_rebuild)
        .build()
        .unwrap()
        .sync_all(&[doctype(&v2)])
        .unwrap();
    let kinds: Vec<_> = report.migrations[0]
        .changes
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(
        kinds,
        [ChangeKind::ChangeNullability, ChangeKind::ChangeDefault]
    );
    // The fast paths copy no row (nothing to fill: notes holds no NULL).
    assert_eq!(
        report.migrations[0].metrics.rows_copied == 0,
        !always_rebuild,
        "{:?}",
        report.migrations[0].metrics
    );
    let conn = db.conn();
    let cols = columns(&conn, "tabCustomer");
    let notes = cols.iter().find(|c| c.0 == "notes").unwrap();
    assert!(notes.2, "notes is NOT NULL now");
    let status = cols.iter().find(|c| c.0 == "status").unwrap();
    assert_eq!(status.3.as_deref(), Some("'Active'"));
    assert_eq!(count(&conn, "SELECT count(*) FROM \"tabCustomer\""), 50);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM \"tabCustomer\" WHERE status IS NULL"
        ),
        25,
        "existing NULLs are not rewritten by a default change"
    );
    conn.execute(
        "INSERT INTO \"tabCustomer\" (name, notes) VALUES ('new', 'x')",
        [],
    )
    .unwrap();
    let s: String = conn
        .query_row(
            "SELECT status FROM \"tabCustomer\" WHERE name = 'new'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(s, "Active");
}

/// An autoincrement `name` declared `INTEGER NOT NULL PRIMARY KEY
/// AUTOINCREMENT` (as a table made by hand may declare it; the engine
/// writes no NOT NULL) is what an autoincrement DocType asks for: SQLite
/// never stores NULL in a rowid alias, whatever it declares. Planning
/// finds nothing to do, and later changes (a native ADD COLUMN and a
/// rebuild) pass the shadow check (SQL001) and verification and keep the
/// declaration.
#[test]
fn autoincrement_name_declared_not_null_is_up_to_date() {
    let v1 = r#"{"name": "Log", "autoname": "autoincrement", "fields": [
        {"fieldname": "message", "fieldtype": "Data"}
    ]}"#;
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(v1)]).unwrap();
    let table_sql = |conn: &rusqlite::Connection| -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'tabLog'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let conn = db.conn();
    let created = table_sql(&conn);
    let declared = created.replace(
        "\"name\" INTEGER PRIMARY KEY AUTOINCREMENT",
        "\"name\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT",
    );
    assert_ne!(declared, created, "{created}");
    conn.execute_batch(&format!(
        "DROP TABLE \"tabLog\"; {declared};
         INSERT INTO \"tabLog\" (message) VALUES ('a'), ('b'), (NULL);"
    ))
    .unwrap();
    let nulls: Vec<bool> = columns(&conn, "tabLog").iter().map(|c| c.2).collect();
    assert!(nulls[0], "introspection reports the declared NOT NULL");

    let dry = db.applier().dry_run(&[doctype(v1)]).unwrap();
    assert!(dry.plan.is_empty(), "{:?}", dry.plan.doctypes[0].changes);
    assert!(
        db.applier()
            .sync_all(&[doctype(v1)])
            .unwrap()
            .migrations
            .is_empty()
    );

    // A native ADD COLUMN, then a type change (a rebuild): verified and
    // replayed on the shadow schema with the NOT NULL in place.
    let v2 = v1.replace(
        r#"{"fieldname": "message", "fieldtype": "Data"}"#,
        r#"{"fieldname": "message", "fieldtype": "Data"},
        {"fieldname": "level", "fieldtype": "Int"}"#,
    );
    let v3 = v2.replace(r#""fieldtype": "Data""#, r#""fieldtype": "Small Text""#);
    for (v, kind) in [(&v2, ChangeKind::AddColumn), (&v3, ChangeKind::ChangeType)] {
        let report = db.applier().sync_all(&[doctype(v)]).unwrap();
        assert_eq!(report.migrations.len(), 1);
        assert_eq!(report.migrations[0].status, MigrationStatus::Completed);
        let kinds: Vec<_> = report.migrations[0]
            .changes
            .iter()
            .map(|c| c.kind)
            .collect();
        assert_eq!(kinds, [kind]);
        assert!(db.applier().plan(&[doctype(v)]).unwrap().is_empty());
    }
    let conn = db.conn();
    assert!(
        table_sql(&conn).contains("\"name\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT"),
        "the rebuild keeps the declaration: {}",
        table_sql(&conn)
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM \"tabLog\""), 3);
    assert_eq!(
        count(&conn, "SELECT max(name) FROM \"tabLog\""),
        3,
        "rowids kept"
    );
}

#[test]
fn rename_only_from_a_hint_and_data_follows() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    seed(&db);
    // Without a hint, a renamed field is an add plus an orphan: nothing is guessed.
    let renamed = V1.replace(r#""fieldname": "notes""#, r#""fieldname": "remarks""#);
    let plan = db.applier().dry_run(&[doctype(&renamed)]).unwrap().plan;
    assert_eq!(plan.doctypes[0].changes[0].kind, ChangeKind::AddColumn);
    assert_eq!(plan.doctypes[0].orphans, ["notes"]);
    // With the field's renamed_from hint it is a native rename.
    let hinted = V1.replace(
        r#""fieldname": "notes""#,
        r#""fieldname": "remarks", "renamed_from": "notes""#,
    );
    let report = db.applier().sync_all(&[doctype(&hinted)]).unwrap();
    assert_eq!(
        report.migrations[0].changes[0].kind,
        ChangeKind::RenameColumn
    );
    let conn = db.conn();
    assert_eq!(
        count(&conn, "SELECT count(remarks) FROM \"tabCustomer\""),
        50
    );
    assert!(!column_names(&conn, "tabCustomer").contains(&"notes".to_string()));
    // The applier option works the same way.
    let mut applier = doctype_migrate::MigrationApplier::builder(&db.path)
        .rename_column("Customer", "remarks", "notes")
        .build()
        .unwrap();
    applier.sync_all(&[doctype(V1)]).unwrap();
    assert_eq!(count(&conn, "SELECT count(notes) FROM \"tabCustomer\""), 50);
}

#[test]
fn dry_run_leaves_the_file_byte_identical() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    seed(&db);
    let before = db.bytes();
    let v2 = V1.replace(
        r#""credit_limit", "fieldtype": "Data""#,
        r#""credit_limit", "fieldtype": "Int""#,
    );
    let applier = db.applier();
    let report = applier.dry_run(&[doctype(&v2)]).unwrap();
    assert!(report.plan.doctypes[0].rebuilds());
    assert!(!report.plan.doctypes[0].forward_sql().is_empty());
    assert!(!report.plan.doctypes[0].rollback_sql().is_empty());
    assert_eq!(applier.pending(&[doctype(&v2)]).unwrap().len(), 1);
    drop(applier);
    assert_eq!(db.bytes(), before);
    // A read-only applier on a missing file plans against an empty database and creates nothing.
    let missing = db.dir.path().join("missing.db");
    let ro = doctype_migrate::MigrationApplier::builder(&missing)
        .read_only(true)
        .build()
        .unwrap();
    assert_eq!(
        ro.dry_run(&[doctype(V1)]).unwrap().plan.doctypes[0].changes[0].kind,
        ChangeKind::CreateTable
    );
    assert!(!missing.exists());
}

#[test]
fn plans_are_deterministic() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    let v2 = V1.replace(
        r#""credit_limit", "fieldtype": "Data""#,
        r#""credit_limit", "fieldtype": "Int""#,
    );
    let a = serde_json::to_string(&db.applier().dry_run(&[doctype(&v2)]).unwrap()).unwrap();
    let b = serde_json::to_string(&db.applier().dry_run(&[doctype(&v2)]).unwrap()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn history_rows_are_written_and_read_and_pending_lists_changes() {
    let db = TestDb::new();
    let item =
        doctype(r#"{"name": "Item", "fields": [{"fieldname": "item_code", "fieldtype": "Data"}]}"#);
    let mut applier = db.applier();
    assert_eq!(
        applier.pending(&[doctype(V1), item.clone()]).unwrap().len(),
        2
    );
    let report = applier.sync_all(&[doctype(V1), item.clone()]).unwrap();
    assert!(applier.pending(&[doctype(V1), item]).unwrap().is_empty());
    let history = applier.history(None).unwrap();
    assert_eq!(history.len(), 2);
    let row = &history[0];
    assert_eq!(
        (row.doctype.as_str(), row.version, row.status),
        ("Customer", 1, MigrationStatus::Completed)
    );
    assert_eq!(row.batch_id, report.batch_id);
    assert!(row.sql[0].starts_with("CREATE TABLE \"tabCustomer\""));
    assert_eq!(row.rollback_sql, ["DROP TABLE \"tabCustomer\""]);
    assert!(row.fingerprint_after.is_some() && row.target_fingerprint.is_some());
    assert_eq!(applier.history(Some("Item")).unwrap().len(), 1);
    // The history table has the documented columns.
    let cols = column_names(&db.conn(), "tabMigrationHistory");
    for c in [
        "id",
        "doctype",
        "version",
        "timestamp",
        "sql",
        "rollback_sql",
        "status",
        "applied_by",
        "execution_time",
        "affected_rows",
        "backup_path",
        "error",
        "rollback_info",
    ] {
        assert!(cols.contains(&c.to_string()), "{c}");
    }
}
