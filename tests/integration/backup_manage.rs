//! Files on disk (mode, names, no temp files), list, prune, builder checks.

use std::path::{Path, PathBuf};

use crate::backup_support::*;
use doctype_migrate::{
    BackupKey, BackupManager, BackupSettings, BackupStrategy, Error, MigrationApplier, MigrationId,
    PrunePolicy, default_dir_for,
};
use rusqlite::Connection;

fn db(dir: &Path) -> Connection {
    let conn = open(&dir.join("app.db"));
    conn.execute_batch(
        "CREATE TABLE \"tab Sales/Order\" (name TEXT PRIMARY KEY, total REAL);
         INSERT INTO \"tab Sales/Order\" VALUES ('SO-1', 1.5), ('SO-2', 2.5);
         CREATE TABLE tabUser (name TEXT PRIMARY KEY, email TEXT);
         INSERT INTO tabUser VALUES ('u1', 'a@b.c');",
    )
    .unwrap();
    conn
}

#[test]
fn files_are_private_named_and_leave_no_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = db(tmp.path());
    let dir = tmp.path().join("nested/backups");
    let mgr = builder(&dir).key([1; 32]).build().unwrap();
    let a = mgr
        .backup_table(
            &conn,
            "tab Sales/Order",
            BackupStrategy::FullTable,
            Some(MigrationId(12)),
        )
        .unwrap();
    let b = mgr
        .backup_table(
            &conn,
            "tab Sales/Order",
            BackupStrategy::FullTable,
            Some(MigrationId(12)),
        )
        .unwrap();
    let c = mgr
        .backup_table(
            &conn,
            "tabUser",
            BackupStrategy::Columns(vec!["email".into()]),
            None,
        )
        .unwrap();
    assert_eq!(
        a.path.file_name().unwrap(),
        "tab_Sales_Order__m12__full.dmbak"
    );
    assert_eq!(
        b.path.file_name().unwrap(),
        "tab_Sales_Order__m12__full-2.dmbak"
    );
    let cname = c.path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        cname.starts_with("tabUser__20") && cname.ends_with("Z__columns.dmbak"),
        "{cname}"
    );
    assert_eq!(a.table, "tab Sales/Order");
    assert_eq!(
        dir_entries(&dir).len(),
        3,
        "no temp files: {:?}",
        dir_entries(&dir)
    );
    assert_eq!(a.bytes, std::fs::metadata(&a.path).unwrap().len());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in backup_files(&dir) {
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
    // BackupInfo serialises for the CLI's JSON output.
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["table"], "tab Sales/Order");
    assert_eq!(json["migration_id"], 12);
    assert_eq!(json["strategy"]["kind"], "full_table");
    assert!(json["created_at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn failed_backup_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = db(tmp.path());
    let dir = tmp.path().join("b");
    let mgr = builder(&dir).build().unwrap();
    assert!(
        mgr.backup_table(&conn, "nope", BackupStrategy::FullTable, None)
            .is_err()
    );
    assert!(
        mgr.backup_table(
            &conn,
            "tabUser",
            BackupStrategy::Columns(vec!["missing".into()]),
            None
        )
        .is_err()
    );
    assert!(!dir.exists() || dir_entries(&dir).is_empty());
}

#[test]
fn list_is_sorted_and_reads_manifests_only() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = db(tmp.path());
    let dir = tmp.path().join("b");
    let mgr = builder(&dir).passphrase("pw").build().unwrap();
    let u1 = mgr
        .backup_table(
            &conn,
            "tabUser",
            BackupStrategy::FullTable,
            Some(MigrationId(1)),
        )
        .unwrap();
    let s1 = mgr
        .backup_table(
            &conn,
            "tab Sales/Order",
            BackupStrategy::FullTable,
            Some(MigrationId(1)),
        )
        .unwrap();
    let u2 = mgr
        .backup_table(
            &conn,
            "tabUser",
            BackupStrategy::FullTable,
            Some(MigrationId(2)),
        )
        .unwrap();
    std::fs::write(dir.join("README.txt"), "not a backup").unwrap();
    std::fs::write(dir.join("broken.dmbak"), "garbage").unwrap();
    // Listing needs no key.
    let lister = builder(&dir).build().unwrap();
    let list = lister.list().unwrap();
    let paths: Vec<&PathBuf> = list.iter().map(|i| &i.path).collect();
    assert_eq!(paths, vec![&s1.path, &u1.path, &u2.path]);
    assert!(list.iter().all(|i| i.encrypted && i.compressed));
    let unreadable = lister.list_unreadable().unwrap();
    assert_eq!(unreadable.len(), 1);
    assert!(unreadable[0].0.ends_with("broken.dmbak"));
    assert!(
        builder(&tmp.path().join("none"))
            .build()
            .unwrap()
            .list()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn prune_keeps_newest_protected_and_bases() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = db(tmp.path());
    let dir = tmp.path().join("b");
    let mgr = builder(&dir).build().unwrap();
    let full = |m: i64| {
        mgr.backup_table(
            &conn,
            "tabUser",
            BackupStrategy::FullTable,
            Some(MigrationId(m)),
        )
        .unwrap()
        .path
    };
    let u1 = full(1);
    let u2 = full(2);
    let u3 = full(3);
    let s1 = mgr
        .backup_table(
            &conn,
            "tab Sales/Order",
            BackupStrategy::FullTable,
            Some(MigrationId(1)),
        )
        .unwrap()
        .path;

    // Keep newest 1 per table; u1 protected (its migration can still roll back).
    let report = mgr
        .prune(PrunePolicy::KeepNewest(1), std::slice::from_ref(&u1), false)
        .unwrap();
    assert_eq!(report.deleted, vec![u2.clone()]);
    assert_eq!(report.kept_protected, vec![u1.clone()]);
    assert!(report.deleted_protected.is_empty() && report.kept_as_base.is_empty());
    assert!(u1.exists() && u3.exists() && s1.exists());
    // Forced: the protected one goes too.
    let report = mgr
        .prune(PrunePolicy::KeepNewest(1), std::slice::from_ref(&u1), true)
        .unwrap();
    assert_eq!(report.deleted, vec![u1.clone()]);
    assert_eq!(report.deleted_protected, vec![u1.clone()]);
    assert!(report.kept_protected.is_empty());

    // A kept incremental keeps its whole chain, even when forced.
    conn.execute_batch("INSERT INTO tabUser VALUES ('u2', 'x@y.z')")
        .unwrap();
    let i1 = mgr
        .backup_table_incremental(&conn, "tabUser", &u3, Some(MigrationId(4)))
        .unwrap()
        .path;
    conn.execute_batch("INSERT INTO tabUser VALUES ('u3', 'x@y.z')")
        .unwrap();
    let i2 = mgr
        .backup_table_incremental(&conn, "tabUser", &i1, Some(MigrationId(5)))
        .unwrap()
        .path;
    let report = mgr.prune(PrunePolicy::KeepNewest(1), &[], true).unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(
        report.kept_as_base,
        vec![u3.clone(), i1.clone()],
        "{report:?}"
    );
    assert!(u3.exists() && i1.exists() && i2.exists());
    mgr.verify(&i2).unwrap();

    // By age: everything older than "now" except what is protected.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let report = mgr
        .prune(
            PrunePolicy::OlderThan(chrono::Duration::zero()),
            std::slice::from_ref(&s1),
            false,
        )
        .unwrap();
    let mut want = vec![u3, i1, i2];
    want.sort();
    assert_eq!(report.deleted, want);
    assert_eq!(report.kept_protected, vec![s1.clone()]);
    assert_eq!(backup_files(&dir), vec![s1]);
}

#[test]
fn builder_rejects_bad_options() {
    let tmp = tempfile::tempdir().unwrap();
    // The option at fault, and the message.
    let config = |r: Result<BackupManager, Error>| match r {
        Err(Error::Config { option, message }) => (option, message),
        other => panic!("expected Config error, got {other:?}"),
    };
    assert_eq!(config(BackupManager::builder().build()).0, "dir");
    assert_eq!(
        config(
            BackupManager::builder()
                .dir(tmp.path())
                .compression_level(10)
                .build(),
        )
        .0,
        "compression_level"
    );
    assert_eq!(
        config(
            BackupManager::builder()
                .dir(tmp.path())
                .no_compression()
                .compression_level(1)
                .build(),
        )
        .0,
        "no_compression"
    );
    assert_eq!(
        config(
            BackupManager::builder()
                .dir(tmp.path())
                .key([0; 32])
                .passphrase("x")
                .build(),
        )
        .0,
        "key"
    );
    assert_eq!(
        config(
            BackupManager::builder()
                .dir(tmp.path())
                .passphrase("")
                .build(),
        )
        .0,
        "passphrase"
    );
    assert_eq!(
        config(
            BackupManager::builder()
                .dir(tmp.path())
                .argon2_params(u32::MAX, 1, 1)
                .build(),
        )
        .0,
        "argon2_params"
    );
    let short = tmp.path().join("short.key");
    std::fs::write(&short, "abcd").unwrap();
    let err = BackupManager::builder()
        .dir(tmp.path())
        .key_file(&short)
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid configuration: key file "),
        "{err}"
    );
    let (option, m) = config(Err(err));
    assert_eq!(option, "key_file");
    assert!(m.contains("32 raw bytes or 64 hex digits"), "{m}");
    let missing = BackupManager::builder()
        .dir(tmp.path())
        .key_file(tmp.path().join("nope.key"))
        .build()
        .unwrap_err();
    assert!(matches!(missing, Error::Io { .. }));
    // Debug output never shows secrets.
    let b = BackupManager::builder()
        .dir(tmp.path())
        .passphrase("hunter2");
    assert!(!format!("{b:?}").contains("hunter2"));
    let m = b.build().unwrap();
    assert!(!format!("{m:?}").contains("hunter2"));
}

#[test]
fn default_dir_is_beside_the_database() {
    assert_eq!(
        default_dir_for(Path::new("/data/app.db")),
        PathBuf::from("/data/app.db.backups")
    );
    assert_eq!(
        default_dir_for(Path::new("app.db")),
        PathBuf::from("app.db.backups")
    );
}

/// Pauses a run right after its backup is written, until told to go on.
struct PauseAfterBackup {
    written: std::sync::mpsc::SyncSender<()>,
    resume: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl doctype_migrate::RunObserver for PauseAfterBackup {
    fn on_event(&self, event: &doctype_migrate::RunEvent<'_>) {
        if matches!(event, doctype_migrate::RunEvent::BackupWritten { .. }) {
            let _ = self.written.send(());
            let _ = self.resume.lock().unwrap().recv();
        }
    }
}

#[test]
fn prune_cannot_delete_the_backup_of_an_apply_still_running() {
    use doctype_migrate::{DocType, Field, FieldType, MigrationApplier};
    use std::time::Duration;

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("app.db");
    let v1 = DocType::new("Item").field(Field::new("code", FieldType::Data));
    let v2 = DocType::new("Item").field(Field::new("code", FieldType::Int));
    MigrationApplier::builder(&path)
        .create_if_missing(true)
        .build()
        .unwrap()
        .sync_all(std::slice::from_ref(&v1))
        .unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch("INSERT INTO \"tabItem\" (name, code) VALUES ('a', '7'), ('b', 'x')")
        .unwrap();

    let (written_tx, written_rx) = std::sync::mpsc::sync_channel(1);
    let (resume_tx, resume_rx) = std::sync::mpsc::channel();
    let apply_path = path.clone();
    let apply = std::thread::spawn(move || {
        MigrationApplier::builder(&apply_path)
            .allow_data_loss(true)
            .observer(std::sync::Arc::new(PauseAfterBackup {
                written: written_tx,
                resume: std::sync::Mutex::new(resume_rx),
            }))
            .build()
            .unwrap()
            .sync_all(&[v2])
    });
    // The apply has written its backup and holds the write lock; its
    // history row is not completed yet, so nothing protects the file.
    written_rx.recv().unwrap();
    let prune_path = path.clone();
    let prune = std::thread::spawn(move || {
        MigrationApplier::builder(&prune_path)
            .lock_timeout(Duration::from_secs(30))
            .build()
            .unwrap()
            .prune_backups(PrunePolicy::OlderThan(chrono::Duration::zero()), false)
    });
    // Give a prune that did not wait for the lock the time to delete it.
    std::thread::sleep(Duration::from_millis(300));
    resume_tx.send(()).unwrap();
    let report = apply.join().unwrap().unwrap();
    let pruned = prune.join().unwrap().unwrap();
    let backup = report.migrations[0].backups[0].clone();
    assert!(backup.exists(), "pruned under a running apply: {pruned:?}");
    assert!(
        pruned.kept_protected.contains(&backup),
        "the prune ran after the commit, when the completed migration protects it: {pruned:?}"
    );
    // And the backup still does its job.
    MigrationApplier::open(&path)
        .unwrap()
        .rollback_last(Some("Item"), &doctype_migrate::RollbackOptions::default())
        .unwrap();
    let code: String = Connection::open(&path)
        .unwrap()
        .query_row("SELECT code FROM \"tabItem\" WHERE name = 'b'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(code, "x");
}

/// Key material never shows in `Debug` output: a `BackupKey` passphrase,
/// the manager builder's key or passphrase, the manager, the applier's
/// backup settings, its builder and the applier itself (all carry the key).
#[test]
fn debug_output_never_shows_a_passphrase_or_key() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = "hunter2-correct-horse";
    let raw = [0xab_u8; 32];
    let key = BackupKey::Passphrase(secret.into());
    let dir = tmp.path().join("b");
    let settings = BackupSettings::default().with_key(key.clone());
    let applier_builder = MigrationApplier::builder(tmp.path().join("app.db"))
        .create_if_missing(true)
        .backup_passphrase(secret);
    let texts = [
        format!("{key:?}"),
        format!("{:?}", builder(&dir).passphrase(secret)),
        format!("{:?}", builder(&dir).key(raw)),
        format!("{:?}", builder(&dir).passphrase(secret).build().unwrap()),
        format!("{:?}", builder(&dir).key(raw).build().unwrap()),
        format!("{settings:#?}"),
        format!("{applier_builder:?}"),
        format!("{:?}", applier_builder.build().unwrap()),
    ];
    for text in &texts {
        assert!(!text.contains(secret), "passphrase in {text}");
        assert!(
            !text.contains("171, 171") && !text.to_ascii_lowercase().contains("abababab"),
            "key bytes in {text}"
        );
    }
    assert_eq!(texts[0], "Passphrase(<redacted>)");
}
