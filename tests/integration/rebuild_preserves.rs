//! Invariants "Foreign keys never cascade" and "Rebuild preserves": a rebuild keeps what it does not change, and never
//! cascades through foreign keys.

use crate::common::*;

const PARENT: &str = r#"{"name": "Project", "fields": [
    {"fieldname": "title", "fieldtype": "Data"},
    {"fieldname": "budget", "fieldtype": "Data"}
]}"#;

#[test]
fn rebuilding_a_parent_keeps_every_cascade_child_row() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(PARENT)]).unwrap();
    let conn = db.conn();
    conn.execute_batch(
        "CREATE TABLE task (id INTEGER PRIMARY KEY, project TEXT NOT NULL REFERENCES \"tabProject\"(name) ON DELETE CASCADE);
         INSERT INTO \"tabProject\" (name, title, budget) VALUES ('P1', 'One', '100.5'), ('P2', 'Two', '200.25');
         INSERT INTO task (project) VALUES ('P1'), ('P1'), ('P2');",
    )
    .unwrap();
    // The caller's connection has foreign keys on: the engine must switch them
    // off before BEGIN, or DROP TABLE would cascade into task.
    let mut applier = db.applier();
    applier
        .connection()
        .execute_batch("PRAGMA foreign_keys = ON")
        .unwrap();
    let v2 = PARENT.replace(
        r#""budget", "fieldtype": "Data""#,
        r#""budget", "fieldtype": "Currency""#,
    );
    let report = applier.sync_all(&[doctype(&v2)]).unwrap();
    assert!(report.migrations[0].affected_rows == 2);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM task"),
        3,
        "no child row lost"
    );
    let fk_on: i64 = applier
        .connection()
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk_on, 1, "the caller's setting is restored");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );
}

#[test]
fn rebuild_keeps_trigger_view_check_partial_index_and_autoincrement() {
    let db = TestDb::with_sql(
        "CREATE TABLE \"tabLog\" (
            \"name\" INTEGER PRIMARY KEY AUTOINCREMENT,
            \"creation\" TEXT, \"modified\" TEXT, \"modified_by\" VARCHAR(140), \"owner\" VARCHAR(140),
            \"docstatus\" INTEGER NOT NULL DEFAULT 0, \"idx\" INTEGER NOT NULL DEFAULT 0,
            \"message\" VARCHAR(140) COLLATE NOCASE,
            \"level\" VARCHAR(140),
            \"priority\" VARCHAR(140),
            \"_user_tags\" TEXT, \"_comments\" TEXT, \"_assign\" TEXT, \"_liked_by\" TEXT,
            CHECK (\"docstatus\" BETWEEN 0 AND 2)
         );
         CREATE INDEX log_partial ON \"tabLog\"(message) WHERE level = 'error';
         CREATE TABLE audit (n INTEGER);
         CREATE TRIGGER log_audit AFTER INSERT ON \"tabLog\" BEGIN INSERT INTO audit VALUES (new.name); END;
         CREATE VIEW errors AS SELECT name, message FROM \"tabLog\" WHERE level = 'error';
         INSERT INTO \"tabLog\" (message, level) VALUES ('a', 'error'), ('b', '3'), ('c', 'error');
         DELETE FROM \"tabLog\" WHERE name = 3;",
    );
    let before = db.schema();
    let seq_before = count(
        &db.conn(),
        "SELECT seq FROM sqlite_sequence WHERE name = 'tabLog'",
    );
    assert_eq!(seq_before, 3);
    let dt = doctype(
        r#"{"name": "Log", "autoname": "autoincrement", "fields": [
            {"fieldname": "message", "fieldtype": "Data"},
            {"fieldname": "level", "fieldtype": "Data"},
            {"fieldname": "priority", "fieldtype": "Int"}
        ]}"#,
    );
    let report = db.applier().sync_all(&[dt]).unwrap();
    assert_eq!(
        report.migrations[0].changes.len(),
        3,
        "{:?}",
        report.migrations[0].changes
    );
    let after = db.schema();
    // Everything except the table itself is byte-identical in sqlite_schema.
    let others = |s: &Vec<(String, String, Option<String>)>| {
        s.iter()
            .filter(|o| {
                ![
                    "tabLog",
                    "sqlite_sequence",
                    "tabMigrationHistory",
                    "tabMigrationMeta",
                    "dm_history__doctype_status",
                ]
                .contains(&o.1.as_str())
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(others(&before), others(&after));
    let table_sql = after
        .iter()
        .find(|o| o.1 == "tabLog")
        .unwrap()
        .2
        .clone()
        .unwrap();
    assert!(
        table_sql.contains("CHECK (\"docstatus\" BETWEEN 0 AND 2)"),
        "{table_sql}"
    );
    assert!(table_sql.contains("COLLATE NOCASE"), "{table_sql}");
    assert!(table_sql.contains("AUTOINCREMENT"), "{table_sql}");
    // NOT NULL is appended last, where SQLite's own ALTER COLUMN … SET NOT
    // NULL puts it.
    assert!(
        table_sql.contains("\"priority\" INTEGER DEFAULT 0 NOT NULL"),
        "{table_sql}"
    );
    let conn = db.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT seq FROM sqlite_sequence WHERE name = 'tabLog'"
        ),
        3,
        "AUTOINCREMENT counter kept"
    );
    conn.execute(
        "INSERT INTO \"tabLog\" (message, level) VALUES ('d', 1)",
        [],
    )
    .unwrap();
    assert_eq!(
        count(&conn, "SELECT max(name) FROM \"tabLog\""),
        4,
        "ids are not reused"
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM audit"),
        4,
        "the trigger still fires"
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM errors"),
        1,
        "the view works"
    );
    assert!(
        conn.execute("UPDATE \"tabLog\" SET docstatus = 7", [])
            .is_err(),
        "the CHECK still holds"
    );
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn rebuild_keeps_rowids_with_gaps() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(PARENT)]).unwrap();
    let conn = db.conn();
    conn.execute_batch(
        "INSERT INTO \"tabProject\" (rowid, name, title, budget) VALUES (5, 'A', 'a', '1.5'), (9, 'B', 'b', '2.5'), (40, 'C', 'c', '3.5');",
    )
    .unwrap();
    let v2 = PARENT.replace(
        r#""budget", "fieldtype": "Data""#,
        r#""budget", "fieldtype": "Currency""#,
    );
    db.applier().sync_all(&[doctype(&v2)]).unwrap();
    let mut stmt = conn
        .prepare("SELECT rowid, name FROM \"tabProject\" ORDER BY rowid")
        .unwrap();
    let rows: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [
            (5, "A".to_string()),
            (9, "B".to_string()),
            (40, "C".to_string())
        ]
    );
}
