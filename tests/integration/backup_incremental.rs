//! Incremental chains: a base plus two increments restores exactly the table
//! as at the last increment; altered or missing bases are detected.

use crate::backup_support::*;
use doctype_migrate::{
    BackupErrorKind, BackupManager, BackupStrategy, Error, MigrationId, RestoreTarget,
};
use rusqlite::Connection;

/// Regression (found by `backup_fuzz`): after a table was
/// renamed in case only (`tabdoc` to `tabDoc`: the same table to SQLite),
/// `backup_table_incremental` accepted the base and wrote an increment that
/// `verify` and `restore` then refused ("base ... does not match its
/// incremental backup"): the chain compared table names case-sensitively.
#[test]
fn an_increment_after_a_case_only_rename_verifies_and_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = open(&tmp.path().join("app.db"));
    conn.execute_batch(
        "CREATE TABLE tabdoc (name TEXT PRIMARY KEY, qty INTEGER);
         INSERT INTO tabdoc VALUES ('a', 1), ('b', 2), ('c', 3);",
    )
    .unwrap();
    let mgr = builder(&tmp.path().join("b")).build().unwrap();
    let base = mgr
        .backup_table(&conn, "tabdoc", BackupStrategy::FullTable, None)
        .unwrap();
    conn.execute_batch(
        "ALTER TABLE tabdoc RENAME TO tabdoc_tmp; ALTER TABLE tabdoc_tmp RENAME TO tabDoc;
         UPDATE tabDoc SET qty = 20 WHERE name = 'b'; DELETE FROM tabDoc WHERE name = 'c';
         INSERT INTO tabDoc VALUES ('d', 4);",
    )
    .unwrap();
    let expected = snapshot(&conn, "tabDoc", true);
    let incr = mgr
        .backup_table_incremental(&conn, "tabDoc", &base.path, None)
        .unwrap();
    assert_eq!(incr.table, "tabDoc");
    mgr.verify(&incr.path).unwrap();
    conn.execute_batch("DELETE FROM tabDoc").unwrap();
    mgr.restore(&conn, &incr.path, RestoreTarget::Original)
        .unwrap();
    assert_eq!(snapshot(&conn, "tabDoc", true), expected);
}

fn table(conn: &Connection, pk: bool) {
    let key = if pk {
        "name TEXT PRIMARY KEY"
    } else {
        "name TEXT"
    };
    conn.execute_batch(&format!(
        "CREATE TABLE tabDoc ({key}, qty INTEGER, v, note TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO tabDoc SELECT 'DOC-' || i, i, randomblob(20), 'note ' || i FROM n;"
    ))
    .unwrap();
}

/// Base, then increments after two rounds of inserts, updates and deletes.
/// Returns the files and the table snapshots at each point.
fn chain(conn: &Connection, mgr: &BackupManager) -> (Vec<std::path::PathBuf>, Vec<Vec<Vec<V>>>) {
    let base = mgr
        .backup_table(
            conn,
            "tabDoc",
            BackupStrategy::FullTable,
            Some(MigrationId(1)),
        )
        .unwrap();
    let s0 = snapshot(conn, "tabDoc", true);
    conn.execute_batch(
        "INSERT INTO tabDoc VALUES ('NEW-1', 1, -0.0, 'inserted'), ('NEW-2', 2, NULL, CAST(x'ff00' AS TEXT));
         UPDATE tabDoc SET qty = qty * 10 WHERE qty % 7 = 0;
         UPDATE tabDoc SET v = 1.5 WHERE qty = 3;
         DELETE FROM tabDoc WHERE qty % 11 = 0;",
    )
    .unwrap();
    let i1 = mgr
        .backup_table_incremental(conn, "tabDoc", &base.path, Some(MigrationId(2)))
        .unwrap();
    let s1 = snapshot(conn, "tabDoc", true);
    assert_eq!(i1.base.as_deref(), Some(base.path.as_path()));
    assert!(i1.path.to_string_lossy().contains("__m2__incr"));
    assert!(
        i1.row_count < 400,
        "increment stores only changes: {}",
        i1.row_count
    );
    assert!(i1.deleted_count > 100);
    assert_eq!(i1.table_row_count, s1.len() as u64);
    conn.execute_batch(
        "DELETE FROM tabDoc WHERE name = 'NEW-1';
         INSERT INTO tabDoc VALUES ('NEW-3', 3, x'00', NULL);
         UPDATE tabDoc SET note = NULL WHERE qty BETWEEN 100 AND 120;
         INSERT INTO tabDoc VALUES ('DOC-11', 11, 'resurrected', 'was deleted in i1');",
    )
    .unwrap();
    let i2 = mgr
        .backup_table_incremental(conn, "tabDoc", &i1.path, Some(MigrationId(3)))
        .unwrap();
    let s2 = snapshot(conn, "tabDoc", true);
    assert!(i2.row_count < 100, "{}", i2.row_count);
    assert_eq!(i2.deleted_count, 1);
    (vec![base.path, i1.path, i2.path], vec![s0, s1, s2])
}

fn run_chain(pk: bool, mgr_for: impl Fn(&std::path::Path) -> BackupManager) {
    let tmp = tempfile::tempdir().unwrap();
    let conn = open(&tmp.path().join("app.db"));
    table(&conn, pk);
    let mgr = mgr_for(&tmp.path().join("b"));
    let (files, snaps) = chain(&conn, &mgr);
    for f in &files {
        mgr.verify(f).unwrap();
    }
    // Scribble, then restore the last increment: exactly the table as then.
    conn.execute_batch("DELETE FROM tabDoc WHERE qty < 500; UPDATE tabDoc SET v = 'x'")
        .unwrap();
    let n = mgr
        .restore(&conn, &files[2], RestoreTarget::Original)
        .unwrap();
    assert_eq!(n, snaps[2].len() as u64);
    assert_eq!(snapshot(&conn, "tabDoc", true), snaps[2]);
    // The middle of the chain restores its own state.
    mgr.restore(&conn, &files[1], RestoreTarget::Original)
        .unwrap();
    assert_eq!(snapshot(&conn, "tabDoc", true), snaps[1]);
    mgr.restore(&conn, &files[2], RestoreTarget::NewTable("doc2".into()))
        .unwrap();
    assert_eq!(snapshot(&conn, "doc2", true), snaps[2]);
    mgr.restore(&conn, &files[0], RestoreTarget::Original)
        .unwrap();
    assert_eq!(snapshot(&conn, "tabDoc", true), snaps[0]);
}

#[test]
fn chain_restores_exactly_with_primary_key() {
    run_chain(true, |d| builder(d).build().unwrap());
}

#[test]
fn chain_restores_exactly_keyed_by_rowid_and_encrypted() {
    run_chain(false, |d| builder(d).key([9; 32]).build().unwrap());
}

#[test]
fn column_backups_chain_too() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = open(&tmp.path().join("app.db"));
    table(&conn, true);
    let mgr = builder(&tmp.path().join("b")).build().unwrap();
    let base = mgr
        .backup_table(
            &conn,
            "tabDoc",
            BackupStrategy::Columns(vec!["note".into()]),
            None,
        )
        .unwrap();
    conn.execute_batch("UPDATE tabDoc SET note = 'v2' WHERE qty <= 10")
        .unwrap();
    let inc = mgr
        .backup_table_incremental(&conn, "tabDoc", &base.path, None)
        .unwrap();
    assert_eq!(inc.row_count, 10);
    assert_eq!(inc.strategy, BackupStrategy::Columns(vec!["note".into()]));
    let want = snapshot(&conn, "tabDoc", true);
    conn.execute_batch("UPDATE tabDoc SET note = NULL").unwrap();
    mgr.restore(&conn, &inc.path, RestoreTarget::Original)
        .unwrap();
    assert_eq!(snapshot(&conn, "tabDoc", true), want);
}

#[test]
fn altered_or_missing_base_fails_verify_and_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = open(&tmp.path().join("app.db"));
    table(&conn, true);
    let mgr = builder(&tmp.path().join("b")).build().unwrap();
    let (files, _) = chain(&conn, &mgr);
    let current = snapshot(&conn, "tabDoc", true);
    let base_bytes = std::fs::read(&files[0]).unwrap();

    // A flipped payload byte in the base: the base itself fails its checks.
    let mut b = base_bytes.clone();
    b[100] ^= 0x10;
    std::fs::write(&files[0], &b).unwrap();
    assert!(mgr.verify(&files[2]).is_err());
    // The base's payload is read (and found corrupted) after the chain is
    // opened: the error names the base.
    match mgr.verify(&files[2]).unwrap_err() {
        Error::Backup { path, kind, .. } => {
            assert_eq!(path, files[0]);
            assert_eq!(kind, BackupErrorKind::Corrupted);
        }
        other => panic!("expected a backup error, got {other:?}"),
    }
    assert!(
        mgr.restore(&conn, &files[2], RestoreTarget::Original)
            .is_err()
    );
    assert_eq!(snapshot(&conn, "tabDoc", true), current);

    // The base replaced by another, internally valid backup of the table.
    std::fs::remove_file(&files[0]).unwrap();
    let other = mgr
        .backup_table(&conn, "tabDoc", BackupStrategy::FullTable, None)
        .unwrap();
    std::fs::rename(&other.path, &files[0]).unwrap();
    let err = mgr.verify(&files[2]).unwrap_err();
    assert!(err.to_string().contains("altered or replaced"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::Replaced), "{err}");
    let err = mgr
        .restore(&conn, &files[2], RestoreTarget::Original)
        .unwrap_err();
    assert!(err.to_string().contains("altered or replaced"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::Replaced), "{err}");

    // Missing.
    std::fs::remove_file(&files[0]).unwrap();
    let err = mgr.verify(&files[2]).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::Chain), "{err}");
    let err = mgr.verify(&files[1]).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::Chain), "{err}");
    let err = mgr
        .restore(&conn, &files[2], RestoreTarget::Original)
        .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::Chain), "{err}");
    assert_eq!(snapshot(&conn, "tabDoc", true), current);

    // A base outside the backup directory cannot be linked by name.
    let elsewhere = builder(&tmp.path().join("elsewhere")).build().unwrap();
    let err = elsewhere
        .backup_table_incremental(&conn, "tabDoc", &files[2], None)
        .unwrap_err();
    assert!(
        err.to_string().contains("must be in the backup directory"),
        "{err}"
    );
    assert_eq!(
        err.backup_kind(),
        Some(BackupErrorKind::UnsafePath),
        "{err}"
    );

    // A changed table shape needs a new full backup.
    std::fs::write(&files[0], &base_bytes).unwrap();
    mgr.verify(&files[2]).unwrap();
    conn.execute_batch("ALTER TABLE tabDoc ADD COLUMN extra TEXT")
        .unwrap();
    let err = mgr
        .backup_table_incremental(&conn, "tabDoc", &files[2], None)
        .unwrap_err();
    assert!(err.to_string().contains("full backup"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::Chain), "{err}");
}

mod in_apply {
    //! The `incremental` backup policy in `apply`: a full backup of a table
    //! that has one already is written as an increment against it, much
    //! smaller when few rows changed, and rollback restores through the
    //! chain exactly.

    use doctype_migrate::{
        BackupPolicy, DocType, Field, FieldType, MigrationApplier, RollbackOptions,
    };
    use rusqlite::Connection;

    use crate::common::TestDb;

    const ROWS: i64 = 20_000;

    /// `note`'s default is the only thing that changes: with the fast
    /// paths off, a rebuild that loses nothing, which the policies back up
    /// in full.
    fn item(default: &str) -> DocType {
        DocType::new("Item")
            .field(Field::new("code", FieldType::Data))
            .field(Field::new("note", FieldType::Data).default_value(default))
    }

    fn apply(db: &TestDb, dt: DocType, policy: BackupPolicy) -> doctype_migrate::ApplyReport {
        MigrationApplier::builder(&db.path)
            .create_if_missing(true)
            .always_rebuild(true)
            .backup_policy(policy)
            .build()
            .unwrap()
            .sync_all(&[dt])
            .unwrap()
    }

    fn rows(conn: &Connection) -> Vec<(String, Option<String>, Option<String>)> {
        conn.prepare("SELECT name, code, note FROM \"tabItem\" ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_table_backed_up_before_gets_an_increment_and_rolls_back_through_it() {
        let db = TestDb::new();
        apply(&db, item("a"), BackupPolicy::Incremental);
        db.conn()
            .execute_batch(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
                 INSERT INTO \"tabItem\" (name, code, note)
                 SELECT printf('I-%06d', i), 'code ' || i, printf('%.80c', 'x') FROM n;"
            ))
            .unwrap();
        // First backed-up change: no base yet, so a full backup.
        let first = apply(&db, item("b"), BackupPolicy::Incremental);
        let full = first.migrations[0].backups[0].clone();
        assert!(!full.to_string_lossy().contains("incr"), "{full:?}");
        // 1 % of the rows change, one is added, one deleted.
        db.conn()
            .execute_batch(
                "UPDATE \"tabItem\" SET code = 'changed ' || name WHERE rowid % 100 = 0;
                 INSERT INTO \"tabItem\" (name, code) VALUES ('I-new', 'new');
                 DELETE FROM \"tabItem\" WHERE name = 'I-000001';",
            )
            .unwrap();
        let before_second = rows(&db.conn());
        let second = apply(&db, item("c"), BackupPolicy::Incremental);
        let incr = second.migrations[0].backups[0].clone();
        assert!(incr.to_string_lossy().contains("incr"), "{incr:?}");
        let (full_bytes, incr_bytes) = (
            std::fs::metadata(&full).unwrap().len(),
            std::fs::metadata(&incr).unwrap().len(),
        );
        assert!(
            incr_bytes * 10 < full_bytes,
            "1 % of the rows changed: the increment ({incr_bytes} B) is far smaller than the full backup ({full_bytes} B)"
        );

        // Rows written after the migration must not survive a restore of the
        // table's backup: roll back, then compare with the rows it had.
        let applier = || MigrationApplier::open(&db.path).unwrap();
        let report = applier()
            .rollback_last(Some("Item"), &RollbackOptions::default())
            .unwrap();
        assert_eq!(report.rolled_back.len(), 1);
        assert_eq!(
            rows(&db.conn()),
            before_second,
            "restored through the chain"
        );
        // The base still serves the first migration's rollback.
        applier()
            .rollback_last(Some("Item"), &RollbackOptions::default())
            .unwrap();
        let n: i64 = db
            .conn()
            .query_row("SELECT count(*) FROM \"tabItem\"", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, ROWS, "the rows as before the first migration's change");
    }

    #[test]
    fn without_a_usable_base_the_backup_is_full() {
        let db = TestDb::new();
        apply(&db, item("a"), BackupPolicy::Incremental);
        db.conn()
            .execute_batch("INSERT INTO \"tabItem\" (name, code) VALUES ('I-1', 'one')")
            .unwrap();
        // The base is taken under the default policy, then the table
        // changes shape (a new column), so an increment cannot apply.
        apply(&db, item("b"), BackupPolicy::DestructiveAndRebuild);
        let wider = item("b").field(Field::new("extra", FieldType::Data));
        apply(&db, wider.clone(), BackupPolicy::Incremental);
        let mut changed = wider;
        changed.fields.last_mut().unwrap().default = Some("z".into());
        let report = apply(&db, changed, BackupPolicy::Incremental);
        let path = report.migrations[0].backups[0].clone();
        assert!(
            !path.to_string_lossy().contains("incr"),
            "a base of another shape is not used: {path:?}"
        );
    }
}
