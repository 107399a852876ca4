//! The applier over a connection the caller owns and lends
//! (`MigrationApplier::lend`, `builder_for_connection`, `into_connection`):
//! in-memory databases, custom functions, attached files and the caller's
//! settings come back as they were; the lock, savepoints and foreign-key
//! handling stay correct.

use doctype_migrate::{
    BackupPolicy, DocType, Error, Field, FieldType, MigrationApplier, MigrationStatus,
    RollbackOptions, audit_log_path_for, read_entries,
};
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

use crate::common::{TestDb, count, doctype};

fn note() -> DocType {
    DocType::new("Note").field(Field::new("title", FieldType::Data))
}

fn pragma(conn: &Connection, name: &str) -> i64 {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap()
}

/// A function only the caller's connection knows.
fn add_shout(conn: &Connection) {
    conn.create_scalar_function("shout", 1, FunctionFlags::SQLITE_UTF8, |ctx| {
        Ok(ctx.get::<String>(0)?.to_uppercase())
    })
    .unwrap();
}

#[test]
fn an_in_memory_database_is_migrated_and_given_back_as_the_caller_had_it() {
    let mut conn = Connection::open_in_memory().unwrap();
    add_shout(&conn);
    conn.busy_timeout(std::time::Duration::from_millis(1234))
        .unwrap();
    let report = MigrationApplier::lend(&mut conn, |b| b, |a| a.sync_all(&[note()])).unwrap();
    assert_eq!(report.migrations.len(), 1);
    assert_eq!(report.migrations[0].status, MigrationStatus::Completed);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    // The same connection: the table, the history and the caller's function.
    conn.execute(
        "INSERT INTO \"tabNote\" (name, title) VALUES ('n1', shout('hi'))",
        [],
    )
    .unwrap();
    assert_eq!(
        count(&conn, "SELECT count(*) FROM \"tabNote\" WHERE title = 'HI'"),
        1
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM \"tabMigrationHistory\""),
        1
    );
    // The caller's settings are back, and the engine's SQL authorizer is
    // gone: ATTACH (which it denies) works again.
    assert_eq!(pragma(&conn, "busy_timeout"), 1234);
    assert_eq!(pragma(&conn, "query_only"), 0);
    conn.execute_batch("ATTACH DATABASE ':memory:' AS scratch; DETACH DATABASE scratch;")
        .unwrap();

    // A second lend finds nothing to do; a dry run, the history and a
    // rollback work over the same connection.
    let again = MigrationApplier::lend(&mut conn, |b| b, |a| a.sync_all(&[note()])).unwrap();
    assert!(again.migrations.is_empty());
    let v2 = note().field(Field::new("body", FieldType::Text));
    let preview =
        MigrationApplier::lend(&mut conn, |b| b, |a| a.dry_run(std::slice::from_ref(&v2))).unwrap();
    assert_eq!(preview.plan.pending().count(), 1);
    MigrationApplier::lend(&mut conn, |b| b, |a| a.sync_all(&[v2])).unwrap();
    let history = MigrationApplier::lend(&mut conn, |b| b, |a| a.history(Some("Note"))).unwrap();
    assert_eq!(history.len(), 2);
    MigrationApplier::lend(
        &mut conn,
        |b| b,
        |a| a.rollback_last(Some("Note"), &RollbackOptions::default()),
    )
    .unwrap();
    let cols: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('tabNote')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!cols.contains(&"body".to_string()), "{cols:?}");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM \"tabNote\""),
        1,
        "the row stays"
    );
}

#[test]
fn a_connection_inside_a_transaction_is_refused_and_given_back_untouched() {
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("BEGIN; CREATE TABLE mine (x);").unwrap();
    let err = MigrationApplier::lend(&mut conn, |b| b, |a| a.sync_all(&[note()])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                option: "transaction",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("inside a transaction"), "{err}");
    // Still the caller's connection, still in its transaction.
    assert!(!conn.is_autocommit());
    conn.execute_batch("COMMIT").unwrap();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM sqlite_schema WHERE name = 'mine'"
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'tab%'"
        ),
        0,
        "nothing was written"
    );
}

#[test]
fn a_read_only_lend_writes_nothing_and_restores_query_only() {
    let mut conn = Connection::open_in_memory().unwrap();
    let err = MigrationApplier::lend(&mut conn, |b| b.read_only(true), |a| a.sync_all(&[note()]))
        .unwrap_err();
    assert!(
        crate::common::count(&conn, "SELECT count(*) FROM sqlite_schema") == 0,
        "nothing written: {err}"
    );
    assert_eq!(pragma(&conn, "query_only"), 0);
    let preview =
        MigrationApplier::lend(&mut conn, |b| b.read_only(true), |a| a.dry_run(&[note()])).unwrap();
    assert_eq!(preview.plan.pending().count(), 1);
}

#[test]
fn a_lent_file_connection_keeps_foreign_keys_and_the_files_beside_it() {
    let db = TestDb::with_sql(
        "CREATE TABLE \"tabParent\" (name VARCHAR(140) NOT NULL PRIMARY KEY, creation TEXT,
            modified TEXT, modified_by VARCHAR(140), owner VARCHAR(140),
            docstatus INTEGER NOT NULL DEFAULT 0, idx INTEGER NOT NULL DEFAULT 0,
            code VARCHAR(140));
         CREATE TABLE child (id INTEGER PRIMARY KEY,
            parent TEXT REFERENCES \"tabParent\"(name) ON DELETE CASCADE);
         INSERT INTO \"tabParent\" (name, code) VALUES ('p1', '7'), ('p2', '8');
         INSERT INTO child (parent) VALUES ('p1'), ('p2'), ('p2');",
    );
    let mut conn = db.conn();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    // Data -> Int rebuilds tabParent: a rebuild with foreign keys on would
    // cascade-delete the child rows if the engine did not turn them off.
    let parent =
        doctype(r#"{"name": "Parent", "fields": [{"fieldname": "code", "fieldtype": "Int"}]}"#);
    let report = MigrationApplier::lend(
        &mut conn,
        |b| b.backup_policy(BackupPolicy::Never),
        |a| a.sync_all(&[parent]),
    )
    .unwrap();
    assert_eq!(report.migrations.len(), 1);
    assert_eq!(count(&conn, "SELECT count(*) FROM child"), 3, "no cascade");
    assert_eq!(
        pragma(&conn, "foreign_keys"),
        1,
        "the caller's setting is back"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM \"tabParent\" WHERE typeof(code) = 'integer'"
        ),
        2
    );
    // The audit log is beside the file the connection has open, as for a
    // path, and another connection sees the committed change.
    let actions: Vec<String> = read_entries(&audit_log_path_for(&db.path))
        .unwrap()
        .into_iter()
        .map(|e| e.action.as_str().to_string())
        .collect();
    assert_eq!(actions.first().map(String::as_str), Some("run_started"));
    assert!(actions.iter().any(|a| a == "commit"), "{actions:?}");
    assert_eq!(
        count(
            &db.conn(),
            "SELECT count(*) FROM \"tabMigrationHistory\" WHERE status = 'completed'"
        ),
        1
    );
}

#[test]
fn an_in_memory_database_needs_a_named_backup_directory_for_backups() {
    let mut conn = Connection::open_in_memory().unwrap();
    let v1 = DocType::new("Item").field(Field::new("code", FieldType::Data));
    MigrationApplier::lend(&mut conn, |b| b, |a| a.sync_all(&[v1])).unwrap();
    conn.execute_batch("INSERT INTO \"tabItem\" (name, code) VALUES ('i1', '0042'), ('i2', '7')")
        .unwrap();
    // Data -> Int changes '0042': allowed, it needs a backup first.
    let v2 = DocType::new("Item").field(Field::new("code", FieldType::Int));
    let before = crate::common::schema_of(&conn);
    let err = MigrationApplier::lend(
        &mut conn,
        |b| b.allow_data_loss(true),
        |a| a.sync_all(std::slice::from_ref(&v2)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("backup"), "{err}");
    assert!(
        matches!(
            err,
            Error::Config {
                option: "backup_dir",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(crate::common::schema_of(&conn), before, "nothing changed");

    let dir = tempfile::tempdir().unwrap();
    let report = MigrationApplier::lend(
        &mut conn,
        |b| b.allow_data_loss(true).backup_dir(dir.path()),
        |a| a.sync_all(std::slice::from_ref(&v2)),
    )
    .unwrap();
    assert_eq!(report.migrations[0].backups.len(), 1);
    assert!(report.migrations[0].backups[0].starts_with(dir.path()));
    MigrationApplier::lend(
        &mut conn,
        |b| b.backup_dir(dir.path()),
        |a| a.rollback_last(Some("Item"), &RollbackOptions::default()),
    )
    .unwrap();
    let code: String = conn
        .query_row("SELECT code FROM \"tabItem\" WHERE name = 'i1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(code, "0042", "the value came back from the backup");
}

#[test]
fn an_attached_database_of_the_caller_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "ATTACH DATABASE '{}' AS other;
         CREATE TABLE other.\"tabNote\" (name TEXT PRIMARY KEY, mine TEXT);
         INSERT INTO other.\"tabNote\" VALUES ('x', 'keep');",
        other.display()
    ))
    .unwrap();
    MigrationApplier::lend(&mut conn, |b| b, |a| a.sync_all(&[note()])).unwrap();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM other.\"tabNote\" WHERE mine = 'keep'"
        ),
        1
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM main.\"tabNote\""), 0);
    let cols: i64 = count(
        &conn,
        "SELECT count(*) FROM pragma_table_info('tabNote', 'main') WHERE name = 'title'",
    );
    assert_eq!(cols, 1, "the engine's table is in main");
}
