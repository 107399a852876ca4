//! Backups under attack: whoever can write the database file, or
//! drop files into the backup directory, gains nothing beyond that
//! database. Each test reproduces one attack on real SQLite files and shows
//! it refused with a typed error, the database byte-identical and no other
//! file touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::backup_support::{builder, open};
use crate::common::TestDb;
use doctype_migrate::{
    BackupErrorKind, BackupManager, BackupStrategy, DocType, Error, Field, FieldType,
    MigrationApplier, MigrationId, Reason, RestoreTarget, RollbackOptions, default_dir_for,
};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

const HEADER: usize = 64;
const FLAG_MAC: u16 = 4;

// ---------------------------------------------------------------- helpers

/// Every entry under `root` (not followed): its kind, mode and, for regular
/// files, its bytes. A FIFO is never opened. The engine's own audit log
/// (which records refusals) and run markers are left out.
fn tree(root: &Path) -> BTreeMap<PathBuf, (String, u32, Vec<u8>)> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".audit.jsonl") || name.contains(".dm-run.") {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let t = m.file_type();
            let mode = m.permissions().mode();
            let (kind, bytes) = if t.is_symlink() {
                (
                    "link",
                    std::fs::read_link(&p)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                        .into_bytes(),
                )
            } else if t.is_dir() {
                stack.push(p.clone());
                ("dir", Vec::new())
            } else if t.is_fifo() {
                ("fifo", Vec::new())
            } else {
                ("file", std::fs::read(&p).unwrap())
            };
            out.insert(p, (kind.to_string(), mode, bytes));
        }
    }
    out
}

/// A backup file cut into its parts.
struct Parts {
    prefix: [u8; 32],
    payload: Vec<u8>,
    manifest: serde_json::Value,
    mac: Vec<u8>,
}

fn split(bytes: &[u8]) -> Parts {
    let mut prefix = [0u8; 32];
    prefix.copy_from_slice(&bytes[..32]);
    let flags = u16::from_le_bytes([bytes[10], bytes[11]]);
    let mlen = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let plen = u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize;
    let mac_len = if flags & FLAG_MAC != 0 { 32 } else { 0 };
    assert_eq!(bytes.len(), HEADER + plen + mlen + mac_len);
    Parts {
        prefix,
        payload: bytes[HEADER..HEADER + plen].to_vec(),
        manifest: serde_json::from_slice(&bytes[HEADER + plen..HEADER + plen + mlen]).unwrap(),
        mac: bytes[HEADER + plen + mlen..].to_vec(),
    }
}

/// Frames the parts again with a consistent header and a recomputed
/// checksum, as anyone who knows the format can (no key needed). The MAC
/// cannot be recomputed: it is kept as it was, or left out (and its flag
/// cleared) when `mac` is empty.
fn frame(p: &Parts) -> Vec<u8> {
    let manifest = serde_json::to_vec(&p.manifest).unwrap();
    let mut prefix = p.prefix;
    let mut flags = u16::from_le_bytes([prefix[10], prefix[11]]);
    if p.mac.is_empty() {
        flags &= !FLAG_MAC;
    } else {
        flags |= FLAG_MAC;
    }
    prefix[10..12].copy_from_slice(&flags.to_le_bytes());
    prefix[12..16].copy_from_slice(&(manifest.len() as u32).to_le_bytes());
    prefix[16..24].copy_from_slice(&(p.payload.len() as u64).to_le_bytes());
    let mut h = Sha256::new();
    h.update(prefix);
    h.update(&manifest);
    let mut out = prefix.to_vec();
    out.extend_from_slice(&h.finalize());
    out.extend_from_slice(&p.payload);
    out.extend_from_slice(&manifest);
    out.extend_from_slice(&p.mac);
    out
}

/// The message of a backup error of `kind`; panics on anything else.
fn backup_error<T: std::fmt::Debug>(
    what: &str,
    kind: BackupErrorKind,
    r: doctype_migrate::Result<T>,
) -> String {
    match r {
        Err(e @ Error::Backup { .. }) => {
            assert_eq!(e.backup_kind(), Some(kind), "{what}: {e}");
            e.to_string()
        }
        other => panic!("{what}: expected a backup error, got {other:?}"),
    }
}

fn assert_contains(what: &str, msg: &str, needles: &[&str]) {
    assert!(
        needles.iter().any(|n| msg.contains(n)),
        "{what}: {msg:?} does not say {needles:?}"
    );
}

/// A database with table `t` (3 rows) and a manager writing into `b/`.
fn small_db(tmp: &Path) -> Connection {
    let conn = open(&tmp.join("app.db"));
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t (v) VALUES ('one'), ('two'), ('three');",
    )
    .unwrap();
    conn
}

fn v1() -> DocType {
    DocType::new("Item")
        .field(Field::new("title", FieldType::Data))
        .field(Field::new("code", FieldType::Data))
}

/// Drops `title` (a rebuild with a full backup).
fn v2() -> DocType {
    DocType::new("Item").field(Field::new("code", FieldType::Data))
}

fn applier_with(db: &TestDb, key: Option<&Path>) -> MigrationApplier {
    let mut b = MigrationApplier::builder(&db.path)
        .create_if_missing(true)
        .allow_data_loss(true)
        .drop_orphan_columns(true);
    if let Some(k) = key {
        b = b.backup_key_file(k);
    }
    b.build().unwrap()
}

/// v1, three rows, then v2 (which backs `tabItem` up): the migration id of
/// v2 and its backup file.
fn migrated(db: &TestDb, key: Option<&Path>) -> (MigrationId, PathBuf) {
    let mut a = applier_with(db, key);
    a.sync_all(&[v1()]).unwrap();
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabItem\" (name, title, code) VALUES
               ('a', 'Apple', 'A1'), ('b', 'Banana', 'B2'), ('c', NULL, 'C3');",
        )
        .unwrap();
    let report = a.sync_all(&[v2()]).unwrap();
    let m = &report.migrations[0];
    assert_eq!(m.backups.len(), 1, "v2 takes one backup");
    (m.id.unwrap(), m.backups[0].clone())
}

/// The refusals of a rollback that must be refused.
fn refusals(r: doctype_migrate::Result<doctype_migrate::RollbackReport>) -> Vec<Reason> {
    match r {
        Err(Error::RollbackRefused { plan }) => plan.into_plan().refusals,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The error of the single `BackupInvalid` refusal.
fn backup_invalid(reasons: &[Reason]) -> String {
    match reasons {
        [Reason::BackupInvalid { error, .. }] => error.clone(),
        other => panic!("expected one backup_invalid refusal, got {other:?}"),
    }
}

fn set_backup_path(db: &TestDb, id: MigrationId, paths: &[&Path]) {
    db.conn()
        .execute(
            "UPDATE \"tabMigrationHistory\" SET backup_path = ?2 WHERE id = ?1",
            rusqlite::params![id.0, serde_json::json!(paths).to_string()],
        )
        .unwrap();
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

// ---------------------------------------------------------------- schema SQL

#[test]
fn a_forged_backup_whose_schema_sql_vacuums_into_a_file_is_refused_by_verify_and_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = small_db(tmp.path());
    let mgr = builder(&tmp.path().join("b")).build().unwrap();
    let info = mgr
        .backup_table(&conn, "t", BackupStrategy::FullTable, None)
        .unwrap();
    // The table is gone: a restore into it would run schema_sql[0].
    conn.execute_batch("DROP TABLE t").unwrap();
    let genuine = split(&std::fs::read(&info.path).unwrap());
    let stolen = tmp.path().join("stolen.db");
    let vacuum = format!("VACUUM INTO '{}'", stolen.display());
    let attach = format!("ATTACH '{}' AS x", stolen.display());
    let create = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)".to_string();
    let variants: Vec<Vec<String>> = vec![
        vec![vacuum.clone()],
        vec![format!("{create}; {vacuum}")],
        vec![format!("{create} /* */ ; {vacuum} -- ")],
        vec![create.clone(), format!("CREATE INDEX i ON t(v); {vacuum}")],
        vec![create.clone(), attach],
        vec!["CREATE TABLE x AS SELECT * FROM sqlite_schema".to_string()],
    ];
    for schema in variants {
        let mut forged = Parts {
            prefix: genuine.prefix,
            payload: genuine.payload.clone(),
            manifest: genuine.manifest.clone(),
            mac: Vec::new(),
        };
        forged.manifest["schema_sql"] = serde_json::json!(schema);
        std::fs::write(&info.path, frame(&forged)).unwrap();
        let before = tree(tmp.path());
        let what = format!("{schema:?}");

        let msg = backup_error(&what, BackupErrorKind::Corrupted, mgr.verify(&info.path));
        assert_contains(&what, &msg, &["manifest is not valid"]);
        let msg = backup_error(
            &what,
            BackupErrorKind::Corrupted,
            mgr.restore(&conn, &info.path, RestoreTarget::Original),
        );
        assert_contains(&what, &msg, &["manifest is not valid"]);
        let msg = backup_error(
            &what,
            BackupErrorKind::Corrupted,
            mgr.restore(&conn, &info.path, RestoreTarget::NewTable("t2".into())),
        );
        assert_contains(&what, &msg, &["manifest is not valid"]);

        assert!(!stolen.exists(), "{what}: a file was written");
        assert_eq!(tree(tmp.path()), before, "{what}: a file changed");
        assert!(conn.is_autocommit());
    }
}

// ---------------------------------------------------------------- keys

#[test]
fn an_unauthenticated_backup_is_refused_when_a_key_is_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = small_db(tmp.path());
    let dir = tmp.path().join("b");
    let keyed = builder(&dir).key([7; 32]).build().unwrap();
    let genuine = keyed
        .backup_table(&conn, "t", BackupStrategy::FullTable, None)
        .unwrap();
    assert!(genuine.authenticated && genuine.encrypted);
    assert!(keyed.verify(&genuine.path).unwrap().authenticated);

    // An unencrypted backup dropped into the directory (here written by a
    // manager without the key, as anyone can).
    let planted = builder(&dir)
        .build()
        .unwrap()
        .backup_table(&conn, "t", BackupStrategy::FullTable, None)
        .unwrap();
    // The genuine keyed backup with its MAC stripped (flag cleared,
    // checksum recomputed).
    let mut stripped = split(&std::fs::read(&genuine.path).unwrap());
    stripped.mac.clear();
    let stripped_path = dir.join("t__stripped__full.dmbak");
    std::fs::write(&stripped_path, frame(&stripped)).unwrap();

    conn.execute_batch("UPDATE t SET v = 'changed'").unwrap();
    let before = tree(tmp.path());
    for path in [&planted.path, &stripped_path] {
        let what = path.display().to_string();
        let msg = backup_error(&what, BackupErrorKind::Unauthenticated, keyed.verify(path));
        assert_contains(&what, &msg, &["not authenticated"]);
        for target in [
            RestoreTarget::Original,
            RestoreTarget::NewTable("t2".into()),
        ] {
            let msg = backup_error(
                &what,
                BackupErrorKind::Unauthenticated,
                keyed.restore(&conn, path, target),
            );
            assert_contains(&what, &msg, &["not authenticated"]);
        }
    }
    // A passphrase manager refuses them the same way.
    let pass = builder(&dir).passphrase("pw").build().unwrap();
    let msg = backup_error(
        "passphrase",
        BackupErrorKind::Unauthenticated,
        pass.verify(&planted.path),
    );
    assert_contains("passphrase", &msg, &["not authenticated"]);
    assert_eq!(tree(tmp.path()), before);
}

#[test]
fn a_forged_manifest_with_a_huge_argon2_cost_is_refused_quickly() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = small_db(tmp.path());
    let dir = tmp.path().join("b");
    // The writer's cost: 1 MiB, 1 pass, 1 lane.
    let mgr = builder(&dir).passphrase("pw").build().unwrap();
    let info = mgr
        .backup_table(&conn, "t", BackupStrategy::FullTable, None)
        .unwrap();
    let mut forged = split(&std::fs::read(&info.path).unwrap());
    // 1 GiB and 64 passes: within the global limits, minutes of work.
    forged.manifest["encryption"]["kdf"]["m_cost_kib"] = serde_json::json!(1 << 20);
    forged.manifest["encryption"]["kdf"]["t_cost"] = serde_json::json!(64);
    std::fs::write(&info.path, frame(&forged)).unwrap();
    // A fresh manager: nothing cached.
    let mgr = builder(&dir).passphrase("pw").build().unwrap();
    let before = tree(tmp.path());
    let start = Instant::now();
    let msg = backup_error(
        "verify",
        BackupErrorKind::Unsupported,
        mgr.verify(&info.path),
    );
    assert_contains("verify", &msg, &["argon2 cost"]);
    let msg = backup_error(
        "restore",
        BackupErrorKind::Unsupported,
        mgr.restore(&conn, &info.path, RestoreTarget::Original),
    );
    assert_contains("restore", &msg, &["argon2 cost"]);
    let spent = start.elapsed();
    assert!(spent < Duration::from_secs(2), "took {spent:?}");
    assert_eq!(tree(tmp.path()), before);

    // A cheaper cost than the writer's is derived, and fails the MAC.
    forged.manifest["encryption"]["kdf"]["m_cost_kib"] = serde_json::json!(512);
    forged.manifest["encryption"]["kdf"]["t_cost"] = serde_json::json!(1);
    std::fs::write(&info.path, frame(&forged)).unwrap();
    let msg = backup_error("cheaper", BackupErrorKind::WrongKey, mgr.verify(&info.path));
    assert_contains("cheaper", &msg, &["failed authentication"]);
}

// ---------------------------------------------------------------- database id

#[test]
fn a_backup_copied_from_another_database_is_refused_by_restore() {
    // Two databases with the same table, backed up with the same key.
    let tmp = tempfile::tempdir().unwrap();
    let a = open(&tmp.path().join("a.db"));
    let b = small_db(tmp.path());
    a.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t (v) VALUES ('secret of a');",
    )
    .unwrap();
    let dir_a = tmp.path().join("a_backups");
    let dir_b = tmp.path().join("b");
    let from_a = builder(&dir_a)
        .key([5; 32])
        .build()
        .unwrap()
        .backup_table(&a, "t", BackupStrategy::FullTable, None)
        .unwrap();
    let mgr_b = builder(&dir_b).key([5; 32]).build().unwrap();
    let own = mgr_b
        .backup_table(&b, "t", BackupStrategy::FullTable, None)
        .unwrap();
    assert_ne!(from_a.database_id, own.database_id);
    // Dropped into B's backup directory: genuine (it verifies), but not B's.
    let planted = dir_b.join("t__planted__full.dmbak");
    std::fs::copy(&from_a.path, &planted).unwrap();
    mgr_b.verify(&planted).unwrap();
    let before = tree(tmp.path());
    let msg = backup_error(
        "verify_for",
        BackupErrorKind::OtherDatabase,
        mgr_b.verify_for(&b, &planted),
    );
    assert_contains("verify_for", &msg, &["another database"]);
    for target in [
        RestoreTarget::Original,
        RestoreTarget::NewTable("t2".into()),
    ] {
        let msg = backup_error(
            "restore",
            BackupErrorKind::OtherDatabase,
            mgr_b.restore(&b, &planted, target),
        );
        assert_contains("restore", &msg, &["another database"]);
    }
    assert_eq!(tree(tmp.path()), before);
    mgr_b.verify_for(&b, &own.path).unwrap();
}

#[test]
fn a_backup_from_another_database_is_refused() {
    // Two databases, the same key, the same DocTypes: the same migration
    // ids and backup file names.
    let key_dir = tempfile::tempdir().unwrap();
    let key = key_dir.path().join("backup.key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    let a = TestDb::new();
    let b = TestDb::new();
    let (id_a, file_a) = migrated(&a, Some(&key));
    let (id_b, file_b) = migrated(&b, Some(&key));
    assert_eq!(id_a, id_b);
    assert_eq!(file_a.file_name(), file_b.file_name());
    let ids = (
        MigrationApplier::open(&a.path)
            .unwrap()
            .database_id()
            .unwrap()
            .unwrap(),
        MigrationApplier::open(&b.path)
            .unwrap()
            .database_id()
            .unwrap()
            .unwrap(),
    );
    assert_ne!(ids.0, ids.1);
    let mgr_b = applier_with(&b, Some(&key)).backup_manager().unwrap();
    assert_eq!(
        mgr_b.verify(&file_b).unwrap().database_id.as_deref(),
        Some(ids.1.as_str())
    );

    // Someone with write access to B's backup directory puts A's backup
    // (other values) in place of B's.
    b.conn()
        .execute_batch("UPDATE \"tabItem\" SET code = 'B-' || code")
        .unwrap();
    std::fs::copy(&file_a, &file_b).unwrap();
    let before = tree(b.dir.path());

    let reasons = refusals(
        applier_with(&b, Some(&key)).rollback_migration(id_b, &RollbackOptions::default()),
    );
    let error = backup_invalid(&reasons);
    assert!(error.contains("another database"), "{error}");

    // The library calls refuse it too (it verifies: same key, genuine file).
    mgr_b.verify(&file_b).unwrap();
    let conn = b.conn();
    let msg = backup_error(
        "verify_for",
        BackupErrorKind::OtherDatabase,
        mgr_b.verify_for(&conn, &file_b),
    );
    assert_contains("verify_for", &msg, &["another database"]);
    let msg = backup_error(
        "restore",
        BackupErrorKind::OtherDatabase,
        mgr_b.restore(&conn, &file_b, RestoreTarget::NewTable("x".into())),
    );
    assert_contains("restore", &msg, &["another database"]);
    assert_eq!(tree(b.dir.path()), before);
}

#[test]
fn history_records_each_backups_sha256_and_a_replaced_file_is_refused() {
    let db = TestDb::new();
    let (id, file) = migrated(&db, None);
    let mgr = crate::rollback_support::manager(&db.path);
    let info = mgr.verify(&file).unwrap();
    let row = MigrationApplier::open(&db.path)
        .unwrap()
        .migration(id)
        .unwrap();
    let recorded: Vec<String> =
        serde_json::from_str(row.backup_sha256.as_deref().unwrap()).unwrap();
    assert_eq!(recorded, vec![info.header_sha256.clone()]);
    assert_eq!(
        info.database_id,
        MigrationApplier::open(&db.path)
            .unwrap()
            .database_id()
            .unwrap(),
        "the manifest names this database"
    );

    // Another genuine backup of the same table, database and migration id,
    // taken later (other values), put in the recorded file's place.
    let conn = db.conn();
    conn.execute_batch("UPDATE \"tabItem\" SET code = 'later'")
        .unwrap();
    let later = mgr
        .backup_table(&conn, "tabItem", BackupStrategy::FullTable, Some(id))
        .unwrap();
    std::fs::rename(&later.path, &file).unwrap();
    let before = tree(db.dir.path());
    let reasons = refusals(
        applier_with(&db, None).rollback_migration(id, &crate::rollback_support::options(&mgr)),
    );
    let error = backup_invalid(&reasons);
    assert!(
        error.contains("not the backup the migration recorded"),
        "{error}"
    );
    assert_eq!(tree(db.dir.path()), before);
    // Restoring exactly the recorded file through the library is refused
    // the same way, typed.
    let msg = backup_error(
        "restore_exact",
        BackupErrorKind::Replaced,
        mgr.restore_exact(
            &conn,
            &file,
            RestoreTarget::NewTable("x".into()),
            &recorded[0],
        ),
    );
    assert_contains("restore_exact", &msg, &["it was replaced"]);
    assert_eq!(tree(db.dir.path()), before);
}

// ---------------------------------------------------------------- paths

#[test]
fn a_history_backup_path_outside_the_backup_directory_is_refused() {
    let db = TestDb::new();
    let (id, file) = migrated(&db, None);
    let mgr = crate::rollback_support::manager(&db.path);
    let dir = default_dir_for(&db.path);
    // A genuine copy of the backup, outside the directory.
    let elsewhere = db.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let outside = elsewhere.join(file.file_name().unwrap());
    std::fs::copy(&file, &outside).unwrap();
    let link = dir.join("link.dmbak");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let dotted = dir
        .join("..")
        .join("elsewhere")
        .join(file.file_name().unwrap());

    for (path, expect) in [
        (outside.as_path(), "outside the backup directory"),
        (dotted.as_path(), "outside the backup directory"),
        (Path::new("/etc/passwd"), "outside the backup directory"),
        (link.as_path(), "symbolic link"),
    ] {
        set_backup_path(&db, id, &[path]);
        let before = tree(db.dir.path());
        let reasons = refusals(
            applier_with(&db, None).rollback_migration(id, &crate::rollback_support::options(&mgr)),
        );
        let error = backup_invalid(&reasons);
        assert!(error.contains(expect), "{}: {error}", path.display());
        assert_eq!(tree(db.dir.path()), before, "{}", path.display());
        // Restoring from it directly is refused the same way.
        let msg = backup_error(
            "restore",
            BackupErrorKind::UnsafePath,
            mgr.restore(&db.conn(), path, RestoreTarget::NewTable("x".into())),
        );
        assert_contains("restore", &msg, &[expect]);
        assert_eq!(tree(db.dir.path()), before, "{}", path.display());
    }
    // Put back: the rollback goes through.
    set_backup_path(&db, id, &[file.as_path()]);
    std::fs::remove_file(&link).unwrap();
    applier_with(&db, None)
        .rollback_migration(id, &crate::rollback_support::options(&mgr))
        .unwrap();
}

#[test]
fn a_fifo_in_the_backup_directory_is_refused_without_hanging() {
    let db = TestDb::new();
    let (id, file) = migrated(&db, None);
    std::fs::remove_file(&file).unwrap();
    mkfifo(&file);
    let before = tree(db.dir.path());
    let (tx, rx) = mpsc::channel();
    let path = db.path.clone();
    let fifo = file.clone();
    std::thread::spawn(move || {
        let mgr = BackupManager::builder()
            .dir(default_dir_for(&path))
            .build()
            .unwrap();
        let verify = mgr.verify(&fifo).map(drop);
        let list = mgr.list().map(|l| l.len());
        let conn = Connection::open(&path).unwrap();
        let restore = mgr.restore(&conn, &fifo, RestoreTarget::NewTable("x".into()));
        let mut applier = MigrationApplier::builder(&path)
            .allow_data_loss(true)
            .build()
            .unwrap();
        let rollback = applier.rollback_migration(id, &RollbackOptions::default());
        let _ = tx.send((verify, list, restore, rollback));
    });
    let (verify, list, restore, rollback) = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(r) => r,
        Err(_) => {
            // Unblock the stuck open so the process can end, then fail.
            let _ = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&file);
            panic!("a FIFO in the backup directory made the engine hang");
        }
    };
    assert_contains(
        "verify",
        &backup_error("verify", BackupErrorKind::UnsafePath, verify),
        &["a FIFO"],
    );
    assert_eq!(list.unwrap(), 0, "a FIFO is not listed as a backup");
    assert_contains(
        "restore",
        &backup_error("restore", BackupErrorKind::UnsafePath, restore),
        &["a FIFO"],
    );
    let error = backup_invalid(&refusals(rollback));
    assert!(error.contains("a FIFO"), "{error}");
    assert_eq!(tree(db.dir.path()), before);
}

// ---------------------------------------------------------------- directory

#[test]
fn a_symlinked_or_world_writable_backup_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let conn = small_db(tmp.path());
    let real = tmp.path().join("real");
    let mgr = builder(&real).build().unwrap();
    let info = mgr
        .backup_table(&conn, "t", BackupStrategy::FullTable, None)
        .unwrap();
    let mode = std::fs::metadata(&real).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "created 0700");
    let file_mode = std::fs::metadata(&info.path).unwrap().permissions().mode();
    assert_eq!(file_mode & 0o777, 0o600);

    // A symbolic link as the backup directory.
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let via_link = builder(&link).build().unwrap();
    let in_link = link.join(info.path.file_name().unwrap());
    let before = tree(tmp.path());
    let msg = backup_error(
        "backup",
        BackupErrorKind::UnsafePath,
        via_link.backup_table(&conn, "t", BackupStrategy::FullTable, None),
    );
    assert_contains("link backup", &msg, &["symbolic link"]);
    assert_contains(
        "link verify",
        &backup_error(
            "verify",
            BackupErrorKind::UnsafePath,
            via_link.verify(&in_link),
        ),
        &["symbolic link"],
    );
    assert_contains(
        "link restore",
        &backup_error(
            "restore",
            BackupErrorKind::UnsafePath,
            via_link.restore(&conn, &in_link, RestoreTarget::NewTable("x".into())),
        ),
        &["symbolic link"],
    );
    assert_contains(
        "link list",
        &backup_error("list", BackupErrorKind::UnsafePath, via_link.list()),
        &["symbolic link"],
    );
    assert_eq!(tree(tmp.path()), before);

    // A world-writable directory.
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
    let before = tree(tmp.path());
    for (what, r) in [
        (
            "backup",
            mgr.backup_table(&conn, "t", BackupStrategy::FullTable, None)
                .map(drop),
        ),
        ("verify", mgr.verify(&info.path).map(drop)),
        (
            "restore",
            mgr.restore(&conn, &info.path, RestoreTarget::NewTable("x".into()))
                .map(drop),
        ),
        ("list", mgr.list().map(drop)),
    ] {
        assert_contains(
            what,
            &backup_error(what, BackupErrorKind::UnsafePath, r),
            &["writable by everyone"],
        );
    }
    assert_eq!(tree(tmp.path()), before);

    // Owned by another user (only root can arrange that here).
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&real, Some(4242), None).unwrap();
        let msg = backup_error("owner", BackupErrorKind::UnsafePath, mgr.verify(&info.path));
        assert_contains("owner", &msg, &["owned by uid 4242"]);
        std::os::unix::fs::chown(&real, Some(0), None).unwrap();
    }
    mgr.verify(&info.path).unwrap();
}
