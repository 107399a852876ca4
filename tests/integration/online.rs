//! Online migrations (expand, backfill, contract): both application
//! versions write the table meanwhile; complete gives what a plain apply
//! gives; abort gives back the exact schema from before the start.

use crate::common::*;
use doctype_migrate::{Error, MigrationApplier, MigrationStatus};
use rusqlite::Connection;

/// Version 1: `title` (Data, default 'untitled'), `amount` (Data), `note`.
pub(crate) const V1: &str = r#"{"name": "Ticket", "fields": [
    {"fieldname": "title", "fieldtype": "Data", "default": "untitled"},
    {"fieldname": "amount", "fieldtype": "Data"},
    {"fieldname": "note", "fieldtype": "Small Text"}
]}"#;

/// Version 2: `title` renamed `subject`; `amount` becomes Int; `note`
/// dropped from the DocType; a new NOT NULL `priority` with a default; an
/// index on `amount`.
pub(crate) const V2: &str = r#"{"name": "Ticket", "fields": [
    {"fieldname": "subject", "fieldtype": "Data", "default": "untitled", "renamed_from": "title"},
    {"fieldname": "amount", "fieldtype": "Int", "search_index": 1},
    {"fieldname": "priority", "fieldtype": "Data", "not_nullable": 1, "default": "Medium"}
]}"#;

fn applier(db: &TestDb) -> MigrationApplier {
    MigrationApplier::builder(&db.path)
        .create_if_missing(true)
        .no_audit_log()
        .backfill_batch_rows(7)
        .backfill_pause(std::time::Duration::ZERO)
        .build()
        .unwrap()
}

/// A database at version 1 with `rows` tickets (`amount` holds integer text).
fn v1_db(rows: usize) -> TestDb {
    let db = TestDb::new();
    applier(&db).sync_all(&[doctype(V1)]).unwrap();
    let conn = db.conn();
    for i in 0..rows {
        conn.execute(
            "INSERT INTO tabTicket (name, title, amount, note) VALUES (?1, ?2, ?3, 'n')",
            rusqlite::params![
                format!("T{i:04}"),
                format!("title {i}"),
                (i * 3).to_string()
            ],
        )
        .unwrap();
    }
    db
}

/// `sqlite_schema` without the engine's tables, SQL with whitespace collapsed.
pub(crate) fn app_schema(conn: &Connection) -> Vec<(String, String, String)> {
    schema_of(conn)
        .into_iter()
        .filter(|(_, name, _)| {
            let n = name.to_ascii_lowercase();
            !n.starts_with("tabmigration")
                && !n.starts_with("sqlite_")
                && !n.starts_with("dm_history")
        })
        .map(|(kind, name, sql)| {
            let sql = sql.unwrap_or_default();
            (
                kind,
                name,
                sql.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect()
}

/// Every row of `tabTicket` as `(name, column, typeof, value as text)`.
fn rows(conn: &Connection, columns: &[&str]) -> Vec<Vec<(String, String)>> {
    let list: Vec<String> = columns
        .iter()
        .map(|c| format!("typeof(\"{c}\"), quote(\"{c}\")"))
        .collect();
    let sql = format!("SELECT {} FROM tabTicket ORDER BY name", list.join(", "));
    let mut stmt = conn.prepare(&sql).unwrap();
    stmt.query_map([], |r| {
        (0..columns.len())
            .map(|i| Ok((r.get(2 * i)?, r.get(2 * i + 1)?)))
            .collect()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Writes through the old names (version 1's application).
fn old_app_writes(conn: &Connection, tag: &str) {
    conn.execute(
        "INSERT INTO tabTicket (name, title, amount, note) VALUES (?1, 'from old', '41', 'o')",
        [format!("OLD-{tag}")],
    )
    .unwrap();
    conn.execute(
        "UPDATE tabTicket SET title = ?1 WHERE name = 'T0001'",
        [format!("old edit {tag}")],
    )
    .unwrap();
}

/// Writes through the new names (version 2's application).
fn new_app_writes(conn: &Connection, tag: &str) {
    conn.execute(
        "INSERT INTO tabTicket (name, subject, amount, priority) VALUES (?1, 'from new', 42, 'High')",
        [format!("NEW-{tag}")],
    )
    .unwrap();
    conn.execute(
        "UPDATE tabTicket SET subject = ?1 WHERE name = 'T0002'",
        [format!("new edit {tag}")],
    )
    .unwrap();
}

#[test]
fn start_then_complete_equals_a_plain_apply_with_writes_from_both_versions_kept() {
    let db = v1_db(50);
    let plain = v1_db(50);
    let report = applier(&db).online_start(&[doctype(V2)]).unwrap();
    assert!(report.status.backfill_done());
    assert!(report.backfill.batches > 1, "backfilled in ranges");
    let conn = db.conn();
    // Every existing row has its twin.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM tabTicket WHERE subject IS NOT title"
        ),
        0
    );
    old_app_writes(&conn, "1");
    new_app_writes(&conn, "1");
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM tabTicket WHERE subject IS NOT title"
        ),
        0,
        "the triggers keep both names equal"
    );
    let history = applier(&db).history(Some("Ticket")).unwrap();
    assert_eq!(history.last().unwrap().status, MigrationStatus::Expanded);
    // A plain apply is refused meanwhile.
    let refused = applier(&db).sync_all(&[doctype(V2)]).unwrap_err();
    assert!(
        matches!(refused, Error::OnlineInProgress { .. }),
        "{refused}"
    );

    // The old version is retired; the new one goes on.
    new_app_writes(&conn, "2");
    let done = MigrationApplier::builder(&db.path)
        .no_audit_log()
        .build()
        .unwrap()
        .online_complete()
        .unwrap();
    assert_eq!(done.migrations.len(), 1);
    assert!(applier(&db).online_status().unwrap().is_none());

    // The same writes, through the final names, on the plain copy.
    let pconn = plain.conn();
    old_app_writes(&pconn, "1");
    applier(&plain).sync_all(&[doctype(V2)]).unwrap();
    new_app_writes(&pconn, "1");
    new_app_writes(&pconn, "2");
    assert_eq!(app_schema(&conn), app_schema(&pconn));
    let cols = ["name", "subject", "amount", "priority", "note"];
    assert_eq!(rows(&conn, &cols), rows(&pconn, &cols));
    let history = applier(&db).history(Some("Ticket")).unwrap();
    assert!(
        history
            .iter()
            .all(|h| h.status == MigrationStatus::Completed)
    );
}

#[test]
fn abort_gives_back_the_exact_schema_with_every_write_kept_under_the_old_names() {
    let db = v1_db(30);
    let before = app_schema(&db.conn());
    applier(&db).online_start(&[doctype(V2)]).unwrap();
    let conn = db.conn();
    old_app_writes(&conn, "1");
    new_app_writes(&conn, "1");
    let aborted = applier(&db).online_abort().unwrap();
    assert_eq!(aborted.tables.len(), 1);
    assert_eq!(app_schema(&conn), before);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM tabTicket WHERE name = 'NEW-1' AND title = 'from new'"
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM tabTicket WHERE name = 'T0002' AND title = 'new edit 1'"
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM tabTicket WHERE name = 'T0001' AND title = 'old edit 1'"
        ),
        1
    );
    let history = applier(&db).history(Some("Ticket")).unwrap();
    assert_eq!(history.last().unwrap().status, MigrationStatus::RolledBack);
    // Nothing is in progress any more: a plain apply works.
    applier(&db).sync_all(&[doctype(V2)]).unwrap();
}

#[test]
fn a_lossy_type_change_is_refused_without_consent_and_nothing_is_written() {
    let db = v1_db(5);
    db.conn()
        .execute(
            "UPDATE tabTicket SET amount = '12abc' WHERE name = 'T0001'",
            [],
        )
        .unwrap();
    let before = app_schema(&db.conn());
    let bytes = db.bytes();
    let e = applier(&db).online_start(&[doctype(V2)]).unwrap_err();
    assert!(matches!(e, Error::Blocked { .. }), "{e}");
    assert_eq!(db.bytes(), bytes, "the database is byte-identical");
    let consented = MigrationApplier::builder(&db.path)
        .no_audit_log()
        .allow_data_loss(true)
        .build()
        .unwrap()
        .online_start(&[doctype(V2)])
        .unwrap();
    assert!(consented.status.allow_data_loss);
    // Complete converts as a plain apply with consent does, and backs up
    // the column first, so a rollback gives '12abc' back.
    let done = applier(&db).online_complete().unwrap();
    assert_eq!(done.migrations[0].backups.len(), 1);
    assert_eq!(
        count(
            &db.conn(),
            "SELECT count(*) FROM tabTicket WHERE typeof(amount) = 'integer'"
        ),
        5
    );
    // Rolled back like any migration: the contract step, then the
    // expand step, give back the schema from before the start.
    let options = doctype_migrate::RollbackOptions::default();
    applier(&db).rollback_last(None, &options).unwrap();
    assert_eq!(
        count(
            &db.conn(),
            "SELECT count(*) FROM tabTicket WHERE amount = '12abc'"
        ),
        1
    );
    applier(&db).rollback_last(None, &options).unwrap();
    assert_eq!(app_schema(&db.conn()), before);
}

#[test]
fn renaming_a_not_null_column_without_a_default_is_refused_online() {
    let db = TestDb::new();
    let v1 = r#"{"name": "Ticket", "fields": [
        {"fieldname": "code", "fieldtype": "Data", "not_nullable": 1}]}"#;
    let v2 = r#"{"name": "Ticket", "fields": [
        {"fieldname": "ref", "fieldtype": "Data", "not_nullable": 1, "renamed_from": "code"}]}"#;
    applier(&db).sync_all(&[doctype(v1)]).unwrap();
    let bytes = db.bytes();
    let e = applier(&db).online_start(&[doctype(v2)]).unwrap_err();
    match &e {
        Error::OnlineRefused {
            doctype, reason, ..
        } => {
            assert_eq!(doctype, "Ticket");
            assert!(reason.contains("plain apply"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(db.bytes(), bytes);
}

#[test]
fn complete_drops_a_removed_field_only_when_asked_at_start() {
    for drop in [false, true] {
        let db = v1_db(10);
        MigrationApplier::builder(&db.path)
            .no_audit_log()
            .drop_orphan_columns(drop)
            .allow_data_loss(drop)
            .build()
            .unwrap()
            .online_start(&[doctype(V2)])
            .unwrap();
        // The old version still writes `note` until it is retired.
        db.conn()
            .execute(
                "UPDATE tabTicket SET note = 'still used' WHERE name = 'T0003'",
                [],
            )
            .unwrap();
        applier(&db).online_complete().unwrap();
        let kept = column_names(&db.conn(), "tabTicket").contains(&"note".to_string());
        assert_eq!(kept, !drop, "drop_orphan_columns({drop})");
    }
}

#[test]
fn one_online_migration_at_a_time_and_a_repeated_start_resumes() {
    let db = v1_db(20);
    applier(&db).online_start(&[doctype(V2)]).unwrap();
    // The same DocTypes again: it goes on with the one in progress.
    let again = applier(&db).online_start(&[doctype(V2)]).unwrap();
    assert!(again.resumed);
    // Other DocTypes: refused, and so are a rollback and a second start.
    let other =
        doctype(r#"{"name": "Other", "fields": [{"fieldname": "x", "fieldtype": "Data"}]}"#);
    let bytes = db.bytes();
    let e = applier(&db)
        .online_start(std::slice::from_ref(&other))
        .unwrap_err();
    assert!(matches!(e, Error::OnlineInProgress { .. }), "{e}");
    let e = applier(&db)
        .rollback_last(None, &doctype_migrate::RollbackOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::OnlineInProgress { .. }), "{e}");
    let e = applier(&db).sync_all(&[other]).unwrap_err();
    assert!(matches!(e, Error::OnlineInProgress { .. }), "{e}");
    assert_eq!(db.bytes(), bytes, "refusals write nothing");
    // A dry run says why apply would refuse its plan.
    let preview = applier(&db).dry_run(&[doctype(V2)]).unwrap();
    assert!(preview.warnings.iter().any(|w| w.code.as_str() == "RUN004"));
    // An application of either version that migrates at start starts
    // without migrating, and is told why.
    for version in [V1, V2] {
        let dir = db.dir.path().join(format!("doctypes-{}", version.len()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ticket.json"), version).unwrap();
        let report = doctype_migrate::migrate_on_start(&db.path, &dir).unwrap();
        assert!(report.migrations.is_empty());
        assert_eq!(report.warnings[0].code.as_str(), "RUN004");
    }
    assert!(applier(&db).online_status().unwrap().is_some());
}

#[test]
fn nothing_in_progress_is_a_clear_error_and_up_to_date_refuses_to_start() {
    let db = v1_db(1);
    let mut a = applier(&db);
    assert!(a.online_status().unwrap().is_none());
    assert!(matches!(
        a.online_complete().unwrap_err(),
        Error::NoOnlineMigration
    ));
    assert!(matches!(
        a.online_abort().unwrap_err(),
        Error::NoOnlineMigration
    ));
    assert!(matches!(
        a.online_resume().unwrap_err(),
        Error::NoOnlineMigration
    ));
    let bytes = db.bytes();
    let e = a.online_start(&[doctype(V1)]).unwrap_err();
    assert!(e.to_string().contains("up to date"), "{e}");
    assert_eq!(db.bytes(), bytes);
}

/// A history table created before the `expanded` status existed has a
/// CHECK that refuses it: start widens it, keeping every row and id.
#[test]
fn start_upgrades_an_older_history_table_keeping_its_rows() {
    let db = v1_db(3);
    let conn = db.conn();
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'tabMigrationHistory'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Rebuild it with the older CHECK.
    let old = sql.replace(
        "'planned', 'in_progress', 'expanded',",
        "'planned', 'in_progress',",
    );
    assert_ne!(old, sql);
    conn.execute_batch(&format!(
        "PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = '{}' WHERE name = 'tabMigrationHistory'; PRAGMA writable_schema = OFF;",
        old.replace('\'', "''")
    ))
    .unwrap();
    drop(conn);
    let rows_before = applier(&db).history(None).unwrap();
    applier(&db).online_start(&[doctype(V2)]).unwrap();
    let rows_after = applier(&db).history(None).unwrap();
    assert_eq!(rows_after[..rows_before.len()], rows_before[..]);
    assert_eq!(rows_after.last().unwrap().status, MigrationStatus::Expanded);
    let check: String = db
        .conn()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn a_new_table_and_an_index_on_a_renamed_column_wait_for_the_right_moment() {
    let db = v1_db(5);
    let v2 = V2.replace(
        r#""renamed_from": "title""#,
        r#""renamed_from": "title", "search_index": 1"#,
    );
    let other = r#"{"name": "Label", "fields": [{"fieldname": "text", "fieldtype": "Data"}]}"#;
    let plain = v1_db(5);
    applier(&db)
        .online_start(&[doctype(&v2), doctype(other)])
        .unwrap();
    let conn = db.conn();
    // The new table is there for the new version at once; the index on
    // the renamed column waits for complete.
    assert!(column_names(&conn, "tabLabel").contains(&"text".to_string()));
    assert!(
        !index_names(&conn, "tabTicket")
            .iter()
            .any(|i| i.contains("subject"))
    );
    applier(&db).online_complete().unwrap();
    assert!(
        index_names(&conn, "tabTicket")
            .iter()
            .any(|i| i.contains("subject"))
    );
    applier(&plain)
        .sync_all(&[doctype(&v2), doctype(other)])
        .unwrap();
    assert_eq!(app_schema(&conn), app_schema(&plain.conn()));
}

/// A column becoming NOT NULL: its NULLs are filled meanwhile (by the
/// backfill, and by triggers for what the old version writes), the
/// constraint comes at complete; abort gives every filled NULL back.
#[test]
fn a_column_becoming_not_null_is_filled_meanwhile_and_abort_gives_the_nulls_back() {
    let v1 = r#"{"name": "Lead", "fields": [{"fieldname": "source", "fieldtype": "Data"}]}"#;
    let v2 = r#"{"name": "Lead", "fields": [
        {"fieldname": "source", "fieldtype": "Data", "not_nullable": 1, "default": "web"}]}"#;
    let setup = || {
        let db = TestDb::new();
        applier(&db).sync_all(&[doctype(v1)]).unwrap();
        db.conn()
            .execute_batch(
                "INSERT INTO tabLead (name, source) VALUES ('L1', NULL), ('L2', 'mail'), ('L3', NULL);",
            )
            .unwrap();
        db
    };
    let nulls =
        |conn: &Connection| count(conn, "SELECT count(*) FROM tabLead WHERE source IS NULL");

    let db = setup();
    let before = app_schema(&db.conn());
    applier(&db).online_start(&[doctype(v2)]).unwrap();
    let conn = db.conn();
    assert_eq!(nulls(&conn), 0, "the backfill filled the NULLs");
    // The old version still writes NULLs; they are filled as they come.
    conn.execute("INSERT INTO tabLead (name, source) VALUES ('L4', NULL)", [])
        .unwrap();
    conn.execute("UPDATE tabLead SET source = NULL WHERE name = 'L2'", [])
        .unwrap();
    assert_eq!(nulls(&conn), 0);
    // A value written meanwhile that equals the fill stays on abort only
    // when it was not a filled NULL.
    conn.execute(
        "INSERT INTO tabLead (name, source) VALUES ('L5', 'web')",
        [],
    )
    .unwrap();
    applier(&db).online_abort().unwrap();
    assert_eq!(app_schema(&conn), before);
    let null_names: Vec<String> = conn
        .prepare("SELECT name FROM tabLead WHERE source IS NULL ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(null_names, ["L1", "L2", "L3", "L4"]);

    // Completed: the constraint is set, as a plain apply sets it.
    let db = setup();
    let plain = setup();
    applier(&db).online_start(&[doctype(v2)]).unwrap();
    db.conn()
        .execute("INSERT INTO tabLead (name, source) VALUES ('L4', NULL)", [])
        .unwrap();
    applier(&db).online_complete().unwrap();
    plain
        .conn()
        .execute("INSERT INTO tabLead (name, source) VALUES ('L4', NULL)", [])
        .unwrap();
    applier(&plain).sync_all(&[doctype(v2)]).unwrap();
    assert_eq!(app_schema(&db.conn()), app_schema(&plain.conn()));
    let dump = "SELECT group_concat(name || '=' || source, ',') FROM (SELECT * FROM tabLead ORDER BY name)";
    let text = |c: &Connection| -> String { c.query_row(dump, [], |r| r.get(0)).unwrap() };
    assert_eq!(text(&db.conn()), text(&plain.conn()));
    assert_eq!(text(&db.conn()), "L1=web,L2=mail,L3=web,L4=web");
}

/// The online state is data: a fill value edited into SQL that is not a
/// literal is refused, not run.
#[test]
fn an_edited_fill_value_is_refused_not_run() {
    let v1 = r#"{"name": "Lead", "fields": [{"fieldname": "source", "fieldtype": "Data"}]}"#;
    let v2 = r#"{"name": "Lead", "fields": [
        {"fieldname": "source", "fieldtype": "Data", "not_nullable": 1, "default": "web"}]}"#;
    let db = TestDb::new();
    applier(&db).sync_all(&[doctype(v1)]).unwrap();
    db.conn()
        .execute("INSERT INTO tabLead (name, source) VALUES ('L1', NULL)", [])
        .unwrap();
    applier(&db).online_start(&[doctype(v2)]).unwrap();
    db.conn()
        .execute(
            "UPDATE tabMigrationOnline SET fills = '[[\"source\", \"''web'') OR (1\"]]'",
            [],
        )
        .unwrap();
    let bytes = db.bytes();
    let e = applier(&db).online_abort().unwrap_err();
    assert!(e.to_string().contains("not a literal"), "{e}");
    assert!(applier(&db).online_status().is_err());
    assert_eq!(db.bytes(), bytes);
}
