//! Round trips of every storage class and edge value, both strategies, with
//! and without compression and encryption (key, key file, passphrase).

use crate::backup_support::*;
use doctype_migrate::{
    BackupErrorKind, BackupManager, BackupStrategy, Error, MigrationId, RestoreTarget,
};
use rusqlite::Connection;
use std::path::Path;

/// The configurations every round trip runs under.
fn managers(dir: &std::path::Path) -> Vec<(&'static str, BackupManager)> {
    let keyfile = dir.join("backup.key");
    std::fs::write(&keyfile, format!("{}\n", "ab".repeat(32))).unwrap();
    let rawkey = dir.join("raw.key");
    std::fs::write(&rawkey, [0x5au8; 32]).unwrap();
    vec![
        (
            "plain",
            builder(&dir.join("plain"))
                .no_compression()
                .build()
                .unwrap(),
        ),
        ("gzip1", builder(&dir.join("gzip1")).build().unwrap()),
        (
            "gzip9",
            builder(&dir.join("gzip9"))
                .compression_level(9)
                .build()
                .unwrap(),
        ),
        (
            "gzip+key",
            builder(&dir.join("key")).key([7; 32]).build().unwrap(),
        ),
        (
            "gzip+hexkeyfile",
            builder(&dir.join("keyfile"))
                .key_file(&keyfile)
                .build()
                .unwrap(),
        ),
        (
            "plain+rawkeyfile",
            builder(&dir.join("rawkeyfile"))
                .no_compression()
                .key_file(&rawkey)
                .build()
                .unwrap(),
        ),
        (
            "gzip+passphrase",
            builder(&dir.join("pass"))
                .passphrase("correct horse battery staple")
                .build()
                .unwrap(),
        ),
    ]
}

fn setup() -> (tempfile::TempDir, Connection) {
    let tmp = tempfile::tempdir().unwrap();
    let conn = open(&tmp.path().join("app.db"));
    create_edge_table(&conn, "tabEdge");
    (tmp, conn)
}

#[test]
fn full_table_round_trips_exactly() {
    let (tmp, conn) = setup();
    let original = snapshot(&conn, "tabEdge", true);
    assert_edge_values_present(&original);
    let schema_before: Vec<(String, String)> = schema(&conn, "tabEdge");

    for (label, mgr) in managers(tmp.path()) {
        let info = mgr
            .backup_table(
                &conn,
                "tabEdge",
                BackupStrategy::FullTable,
                Some(MigrationId(7)),
            )
            .unwrap();
        assert_eq!(info.row_count, original.len() as u64, "{label}");
        assert_eq!(info.table, "tabEdge");
        assert_eq!(
            info.encrypted,
            label.contains("key") || label.contains("pass"),
            "{label}"
        );
        assert_eq!(info.compressed, label.starts_with("gzip"), "{label}");
        assert!(
            info.path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("tabEdge__m7__full")
        );
        let v = mgr.verify(&info.path).unwrap();
        assert_eq!(v.row_count, info.row_count);
        assert_eq!(v.sha256, info.sha256);

        // Wipe and scribble, then restore into the original table.
        conn.execute_batch("DELETE FROM tabEdge WHERE id > 3; UPDATE tabEdge SET a = 'junk'; INSERT INTO tabEdge (id, a) VALUES (99, 1)")
            .unwrap();
        let n = mgr
            .restore(&conn, &info.path, RestoreTarget::Original)
            .unwrap();
        assert_eq!(n, original.len() as u64, "{label}");
        assert_eq!(
            snapshot(&conn, "tabEdge", true),
            original,
            "{label}: original restore"
        );
        assert_eq!(
            schema(&conn, "tabEdge"),
            schema_before,
            "{label}: triggers/indexes kept"
        );

        // Dropped table: recreated with its indexes and triggers.
        conn.execute_batch("DROP TABLE tabEdge").unwrap();
        mgr.restore(&conn, &info.path, RestoreTarget::Original)
            .unwrap();
        assert_eq!(
            snapshot(&conn, "tabEdge", true),
            original,
            "{label}: recreated"
        );
        assert_eq!(
            schema(&conn, "tabEdge"),
            schema_before,
            "{label}: schema recreated"
        );

        // Into a new table.
        mgr.restore(
            &conn,
            &info.path,
            RestoreTarget::NewTable("copy of edge".into()),
        )
        .unwrap();
        assert_eq!(
            snapshot(&conn, "copy of edge", true),
            original,
            "{label}: new table"
        );
        let err = mgr
            .restore(
                &conn,
                &info.path,
                RestoreTarget::NewTable("copy of edge".into()),
            )
            .unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(err.backup_kind(), Some(BackupErrorKind::Restore), "{err}");
        conn.execute_batch("DROP TABLE \"copy of edge\"").unwrap();
    }
}

fn schema(conn: &Connection, table: &str) -> Vec<(String, String)> {
    let mut st = conn
        .prepare("SELECT name, sql FROM sqlite_schema WHERE tbl_name = ?1 AND sql IS NOT NULL ORDER BY name")
        .unwrap();
    st.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn columns_round_trip_exactly() {
    let (tmp, conn) = setup();
    let original = snapshot(&conn, "tabEdge", true);
    for (label, mgr) in managers(tmp.path()) {
        let info = mgr
            .backup_table(
                &conn,
                "tabEdge",
                BackupStrategy::Columns(vec!["a".into(), "B".into()]),
                None,
            )
            .unwrap();
        assert_eq!(
            info.strategy,
            BackupStrategy::Columns(vec!["a".into(), "b".into()])
        );
        assert!(
            info.path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .contains("__columns")
        );
        mgr.verify(&info.path).unwrap();

        conn.execute_batch("UPDATE tabEdge SET a = 'changed', b = NULL")
            .unwrap();
        let n = mgr
            .restore(&conn, &info.path, RestoreTarget::Original)
            .unwrap();
        assert_eq!(n, original.len() as u64, "{label}");
        assert_eq!(snapshot(&conn, "tabEdge", true), original, "{label}");

        // The dropped-column case: restore needs the column back first.
        conn.execute_batch("ALTER TABLE tabEdge DROP COLUMN b")
            .unwrap();
        let before = snapshot(&conn, "tabEdge", true);
        let err = mgr
            .restore(&conn, &info.path, RestoreTarget::Original)
            .unwrap_err();
        assert!(matches!(err, Error::Backup { .. }), "{err}");
        assert!(err.to_string().contains("no column"), "{err}");
        assert_eq!(err.backup_kind(), Some(BackupErrorKind::Restore), "{err}");
        assert_eq!(
            snapshot(&conn, "tabEdge", true),
            before,
            "{label}: failed restore changed nothing"
        );
        conn.execute_batch("ALTER TABLE tabEdge ADD COLUMN b BLOB")
            .unwrap();
        mgr.restore(&conn, &info.path, RestoreTarget::Original)
            .unwrap();
        // Column order differs after DROP/ADD, so compare column by column.
        let restored: Vec<(V, V)> = pairs(&conn, "tabEdge");
        let expected: Vec<(V, V)> = pairs_of(&original);
        assert_eq!(restored, expected, "{label}: column restored after re-add");
        // Restore columns into a new table: rowid, key and named columns.
        mgr.restore(&conn, &info.path, RestoreTarget::NewTable("cols".into()))
            .unwrap();
        let cols_snap = snapshot(&conn, "cols", true);
        assert_eq!(cols_snap.len(), original.len());
        for (got, want) in cols_snap.iter().zip(&original) {
            // rowid, id, a, b from the original (rowid, id, a, r, s, b, n).
            assert_eq!(
                got,
                &vec![
                    want[0].clone(),
                    want[1].clone(),
                    want[2].clone(),
                    want[5].clone()
                ],
                "{label}"
            );
        }
        conn.execute_batch("DROP TABLE cols").unwrap();
        // Back to the original layout for the next configuration.
        conn.execute_batch("DROP TABLE tabEdge").unwrap();
        create_edge_table(&conn, "tabEdge");
        assert_eq!(snapshot(&conn, "tabEdge", true), original);
    }
}

/// `(id, a, b)` columns by name.
fn pairs(conn: &Connection, table: &str) -> Vec<(V, V)> {
    let snap_sql = format!("SELECT a, b FROM \"{table}\" ORDER BY rowid");
    let mut st = conn.prepare(&snap_sql).unwrap();
    st.query_map([], |r| Ok((val(r.get_ref(0)?), val(r.get_ref(1)?))))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn pairs_of(snap: &[Vec<V>]) -> Vec<(V, V)> {
    snap.iter().map(|r| (r[2].clone(), r[5].clone())).collect()
}

fn val(v: rusqlite::types::ValueRef<'_>) -> V {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => V::Null,
        ValueRef::Integer(x) => V::Int(x),
        ValueRef::Real(f) => V::Real(f.to_bits()),
        ValueRef::Text(t) => V::Text(t.to_vec()),
        ValueRef::Blob(b) => V::Blob(b.to_vec()),
    }
}

#[test]
fn text_primary_key_columns_restore_matches_by_key_after_rowids_change() {
    // Frappe tables: `name TEXT PRIMARY KEY` in a rowid table. A rebuild that
    // copies rows without their rowid renumbers them; a column restore must
    // still put each value back into the right row.
    let tmp = tempfile::tempdir().unwrap();
    let conn = open(&tmp.path().join("app.db"));
    conn.execute_batch(
        "CREATE TABLE tabItem (name TEXT PRIMARY KEY COLLATE NOCASE, qty INTEGER, note TEXT);
         INSERT INTO tabItem VALUES ('A', 1, 'one'), ('B', 2, 'two'), ('C', 3, 'three'), ('D', 4, 'four');
         DELETE FROM tabItem WHERE name = 'B';",
    )
    .unwrap();
    let mgr = builder(&tmp.path().join("b")).build().unwrap();
    let info = mgr
        .backup_table(
            &conn,
            "tabitem",
            BackupStrategy::Columns(vec!["note".into()]),
            Some(MigrationId(1)),
        )
        .unwrap();
    assert_eq!(info.table, "tabItem");
    // Rebuild dropping `note`, renumbering rowids (C: 3 -> 2, D: 4 -> 3).
    conn.execute_batch(
        "CREATE TABLE new_item (name TEXT PRIMARY KEY COLLATE NOCASE, qty INTEGER);
         INSERT INTO new_item (name, qty) SELECT name, qty FROM tabItem;
         DROP TABLE tabItem; ALTER TABLE new_item RENAME TO tabItem;
         ALTER TABLE tabItem ADD COLUMN note TEXT;",
    )
    .unwrap();
    let n = mgr
        .restore(&conn, &info.path, RestoreTarget::Original)
        .unwrap();
    assert_eq!(n, 3);
    let got: Vec<(String, Option<String>)> = conn
        .prepare("SELECT name, note FROM tabItem ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        got,
        vec![
            ("A".into(), Some("one".into())),
            ("C".into(), Some("three".into())),
            ("D".into(), Some("four".into()))
        ]
    );
}

#[test]
fn without_rowid_table_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = open(&tmp.path().join("app.db"));
    conn.execute_batch(
        "CREATE TABLE kv (k TEXT, j INTEGER, v, PRIMARY KEY (k, j)) WITHOUT ROWID;
         INSERT INTO kv VALUES ('a', 1, -0.0), ('a', 2, x'00ff'), ('b', 1, NULL), ('c', 9, 'text');",
    )
    .unwrap();
    let original = snapshot(&conn, "kv", false);
    let mgr = builder(&tmp.path().join("b")).key([1; 32]).build().unwrap();
    let full = mgr
        .backup_table(&conn, "kv", BackupStrategy::FullTable, None)
        .unwrap();
    let cols = mgr
        .backup_table(&conn, "kv", BackupStrategy::Columns(vec!["v".into()]), None)
        .unwrap();
    conn.execute_batch("UPDATE kv SET v = 0").unwrap();
    mgr.restore(&conn, &cols.path, RestoreTarget::Original)
        .unwrap();
    assert_eq!(snapshot(&conn, "kv", false), original);
    conn.execute_batch("DELETE FROM kv WHERE k = 'a'").unwrap();
    mgr.restore(&conn, &full.path, RestoreTarget::Original)
        .unwrap();
    assert_eq!(snapshot(&conn, "kv", false), original);
    mgr.restore(&conn, &full.path, RestoreTarget::NewTable("kv2".into()))
        .unwrap();
    assert_eq!(snapshot(&conn, "kv2", false), original);
}

/// Table `t` whose column `s` held text ('0012', 'abc'), backed up by
/// column into `dir/b`, then rebuilt with `s` INTEGER and emptied.
fn text_backed_up_then_retyped(
    db: &Path,
    dir: &Path,
) -> (Connection, BackupManager, doctype_migrate::BackupInfo) {
    let conn = open(db);
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT); INSERT INTO t VALUES (1, '0012'), (2, 'abc');")
        .unwrap();
    let mgr = builder(&dir.join("b")).build().unwrap();
    let info = mgr
        .backup_table(&conn, "t", BackupStrategy::Columns(vec!["s".into()]), None)
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE t2 (id INTEGER PRIMARY KEY, s INTEGER); INSERT INTO t2 SELECT id, NULL FROM t;
         DROP TABLE t; ALTER TABLE t2 RENAME TO t;",
    )
    .unwrap();
    (conn, mgr, info)
}

#[test]
fn restore_refuses_a_value_that_affinity_would_change() {
    // Column `s` held text '0012'; the migration made it INTEGER. Restoring
    // would store integer 12: refused, and nothing changes.
    let tmp = tempfile::tempdir().unwrap();
    let (conn, mgr, info) = text_backed_up_then_retyped(&tmp.path().join("app.db"), tmp.path());
    let before = snapshot(&conn, "t", true);
    let err = mgr
        .restore(&conn, &info.path, RestoreTarget::Original)
        .unwrap_err();
    assert!(err.to_string().contains("round-trip"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::Restore), "{err}");
    assert_eq!(snapshot(&conn, "t", true), before);
}

/// Regression (found by `backup_fuzz`): a restore that failed
/// outside a transaction rolled back to its savepoint and then released it,
/// which commits the (now empty) transaction: the database header (its
/// change counter) was rewritten. It now rolls the whole transaction back,
/// so the file is left byte for byte as it was; inside a caller's
/// transaction it still only rolls back to its savepoint.
#[test]
fn a_failed_restore_leaves_the_database_file_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    // `s` became INTEGER: the restore updates the rows, then refuses (the
    // text '0012' would be stored as 12) after it has written.
    let (conn, mgr, info) = text_backed_up_then_retyped(&db, tmp.path());
    let bytes = std::fs::read(&db).unwrap();
    let err = mgr
        .restore(&conn, &info.path, RestoreTarget::Original)
        .unwrap_err();
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::Restore), "{err}");
    assert!(conn.is_autocommit());
    assert!(
        std::fs::read(&db).unwrap() == bytes,
        "a failed restore rewrote the database file"
    );

    // Inside the caller's transaction: the caller's own write survives and
    // the transaction stays open.
    conn.execute_batch("BEGIN; INSERT INTO t VALUES (3, 7);")
        .unwrap();
    let err = mgr
        .restore(&conn, &info.path, RestoreTarget::Original)
        .unwrap_err();
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::Restore), "{err}");
    assert!(!conn.is_autocommit(), "the caller's transaction was ended");
    let s: i64 = conn
        .query_row("SELECT s FROM t WHERE id = 3", [], |r| r.get(0))
        .unwrap();
    assert_eq!(s, 7, "the caller's write was lost");
    conn.execute_batch("ROLLBACK").unwrap();
    assert!(std::fs::read(&db).unwrap() == bytes);
}

/// Regression (found by `backup_fuzz`): rows the target table
/// refuses (a NOT NULL or UNIQUE constraint it gained since the backup, a
/// forged rowid that is not an integer) were an untyped `Error::Sql`; they
/// are a refused restore, `BackupErrorKind::Restore`, and nothing changes.
#[test]
fn rows_the_target_table_refuses_are_a_typed_restore_error() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = open(&tmp.path().join("app.db"));
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, u TEXT);
         INSERT INTO t VALUES (1, NULL, 'x'), (2, 'b', 'x');",
    )
    .unwrap();
    let mgr = builder(&tmp.path().join("b")).build().unwrap();
    let full = mgr
        .backup_table(&conn, "t", BackupStrategy::FullTable, None)
        .unwrap();
    let cols = mgr
        .backup_table(&conn, "t", BackupStrategy::Columns(vec!["u".into()]), None)
        .unwrap();
    // Rebuilt since: `s` NOT NULL, `u` UNIQUE.
    conn.execute_batch(
        "DROP TABLE t;
         CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT NOT NULL DEFAULT '', u TEXT UNIQUE);
         INSERT INTO t VALUES (1, 'a', 'p'), (2, 'b', 'q');",
    )
    .unwrap();
    let before = snapshot(&conn, "t", true);
    for (what, file) in [("full", &full.path), ("columns", &cols.path)] {
        let err = mgr
            .restore(&conn, file, RestoreTarget::Original)
            .unwrap_err();
        assert_eq!(
            err.backup_kind(),
            Some(BackupErrorKind::Restore),
            "{what}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("refuses the backup") && msg.contains("constraint failed"),
            "{what}: {msg}"
        );
        assert_eq!(snapshot(&conn, "t", true), before, "{what}");
        assert!(conn.is_autocommit(), "{what}");
    }
}

/// Regression (found by `backup_fuzz`): restoring a full backup
/// of a dropped table recreates it, then its indexes and triggers; when one
/// of their names is taken by now (by another table's index), SQLite's
/// refusal was an untyped `Error::Sql`. It is a refused restore, and the
/// table is not left half recreated.
#[test]
fn a_backup_whose_index_name_is_taken_is_a_typed_restore_error() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    let conn = open(&db);
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT); CREATE INDEX t_s ON t(s);
         INSERT INTO t VALUES (1, 'a');",
    )
    .unwrap();
    let mgr = builder(&tmp.path().join("b")).build().unwrap();
    let full = mgr
        .backup_table(&conn, "t", BackupStrategy::FullTable, None)
        .unwrap();
    conn.execute_batch("DROP TABLE t; CREATE TABLE other (s TEXT); CREATE INDEX t_s ON other(s);")
        .unwrap();
    let bytes = std::fs::read(&db).unwrap();
    let err = mgr
        .restore(&conn, &full.path, RestoreTarget::Original)
        .unwrap_err();
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::Restore), "{err:?}");
    assert!(
        err.to_string().contains("index t_s already exists"),
        "{err}"
    );
    assert!(std::fs::read(&db).unwrap() == bytes, "the database changed");
    // Into a new table the indexes are not copied: that works.
    mgr.restore(&conn, &full.path, RestoreTarget::NewTable("t2".into()))
        .unwrap();
}

#[test]
fn backup_and_restore_inside_a_callers_transaction() {
    let (tmp, conn) = setup();
    let original = snapshot(&conn, "tabEdge", true);
    let mgr = builder(&tmp.path().join("b")).build().unwrap();
    conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO tabEdge (id, a) VALUES (500, 'uncommitted');")
        .unwrap();
    // The backup sees the transaction's own writes.
    let info = mgr
        .backup_table(&conn, "tabEdge", BackupStrategy::FullTable, None)
        .unwrap();
    assert_eq!(info.row_count, original.len() as u64 + 1);
    conn.execute_batch("DELETE FROM tabEdge").unwrap();
    mgr.restore(&conn, &info.path, RestoreTarget::Original)
        .unwrap();
    assert!(
        !conn.is_autocommit(),
        "restore must not end the caller's transaction"
    );
    assert_eq!(snapshot(&conn, "tabEdge", true).len(), original.len() + 1);
    conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(snapshot(&conn, "tabEdge", true), original);
}

#[test]
fn restore_refuses_to_cascade_into_child_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = open(&tmp.path().join("app.db"));
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         CREATE TABLE parent (id INTEGER PRIMARY KEY, v TEXT);
         CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id) ON DELETE CASCADE);
         INSERT INTO parent VALUES (1, 'a'), (2, 'b'); INSERT INTO child VALUES (10, 1), (20, 2);",
    )
    .unwrap();
    let mgr = builder(&tmp.path().join("b")).build().unwrap();
    let info = mgr
        .backup_table(&conn, "parent", BackupStrategy::FullTable, None)
        .unwrap();
    let err = mgr
        .restore(&conn, &info.path, RestoreTarget::Original)
        .unwrap_err();
    assert!(err.to_string().contains("foreign_keys"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::Restore), "{err}");
    let children: i64 = conn
        .query_row("SELECT count(*) FROM child", [], |r| r.get(0))
        .unwrap();
    assert_eq!(children, 2);
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    mgr.restore(&conn, &info.path, RestoreTarget::Original)
        .unwrap();
    let children: i64 = conn
        .query_row("SELECT count(*) FROM child", [], |r| r.get(0))
        .unwrap();
    assert_eq!(children, 2);
}

#[test]
fn wrong_kind_of_secret_is_a_clear_error() {
    let (tmp, conn) = setup();
    let with_key = builder(&tmp.path().join("b")).key([3; 32]).build().unwrap();
    let info = with_key
        .backup_table(&conn, "tabEdge", BackupStrategy::FullTable, None)
        .unwrap();
    let none = builder(&tmp.path().join("b")).build().unwrap();
    let err = none.verify(&info.path).unwrap_err();
    assert!(err.to_string().contains("encrypted"), "{err}");
    assert_eq!(
        err.backup_kind(),
        Some(BackupErrorKind::KeyRequired),
        "{err}"
    );
    let pass = builder(&tmp.path().join("b"))
        .passphrase("p")
        .build()
        .unwrap();
    let err = pass.verify(&info.path).unwrap_err();
    assert!(err.to_string().contains("wrong key"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::WrongKey), "{err}");
    let other_pass = builder(&tmp.path().join("c"))
        .passphrase("secret one")
        .build()
        .unwrap();
    let info2 = other_pass
        .backup_table(&conn, "tabEdge", BackupStrategy::FullTable, None)
        .unwrap();
    let err = builder(&tmp.path().join("c"))
        .passphrase("secret two")
        .build()
        .unwrap()
        .verify(&info2.path)
        .unwrap_err();
    assert!(err.to_string().contains("wrong key or passphrase"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::WrongKey), "{err}");
}
