//! Whoever can write the database's directory gains nothing beyond the
//! database: with real databases and real runs (`sync_all`), the audit log
//! is never followed through a symbolic link or a hard link, never opened
//! when it is a FIFO, never appended to when it is someone else's or
//! writable by others; run markers are never followed; and temp-file
//! cleanup never reaches outside the backup directory. Every refusal leaves
//! the migration itself alone and is reported (`RUN002`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::*;
use doctype_migrate::{ApplyReport, MigrationStatus, WarningCode};
use doctype_migrate::{audit_log_path_for, read_entries};

/// What a hostile file at the log's name must never receive.
const PRECIOUS: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n";

fn note() -> Vec<doctype_migrate::DocType> {
    vec![doctype(
        r#"{"name": "Note", "fields": [{"fieldname": "title", "fieldtype": "Data"}]}"#,
    )]
}

/// A file outside the database's directory, with `PRECIOUS` in it.
fn precious_file(outside: &Path) -> PathBuf {
    let target = outside.join("passwd");
    std::fs::write(&target, PRECIOUS).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    target
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Runs `sync_all` on another thread; fails (never hangs) when it does not
/// return within a minute. `unblock` is opened for reading and writing on
/// a timeout, so that a run stuck opening that FIFO can end.
fn sync_with_timeout(db: &TestDb, unblock: &Path) -> ApplyReport {
    let (tx, rx) = mpsc::channel();
    let mut applier = db.applier();
    std::thread::spawn(move || {
        let _ = tx.send(applier.sync_all(&note()));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(result) => result.expect("the migration runs"),
        Err(_) => {
            let _ = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(unblock);
            panic!("sync_all hung on {}", unblock.display());
        }
    }
}

/// The migration of `note()` happened: the table exists and its history
/// row says completed.
fn assert_migrated(db: &TestDb, report: &ApplyReport) {
    assert_eq!(report.migrations.len(), 1, "{report:?}");
    assert_eq!(report.migrations[0].status, MigrationStatus::Completed);
    assert_eq!(
        count(
            &db.conn(),
            "SELECT count(*) FROM sqlite_schema WHERE name = 'tabNote'"
        ),
        1
    );
}

/// The `RUN002` warnings of a report, as text.
fn run002(report: &ApplyReport) -> Vec<String> {
    report
        .warnings
        .iter()
        .filter(|w| w.code == WarningCode::AuditNotWritten)
        .map(|w| {
            assert_eq!(w.code.as_str(), "RUN002");
            w.message.clone()
        })
        .collect()
}

/// Asserts one `RUN002` warning that names the log and `reason`.
fn assert_refused(db: &TestDb, report: &ApplyReport, reason: &str) {
    let warnings = run002(report);
    assert_eq!(warnings.len(), 1, "{:?}", report.warnings);
    let log = audit_log_path_for(&db.path);
    assert!(
        warnings[0].contains(&log.display().to_string()),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("refused"), "{}", warnings[0]);
    assert!(warnings[0].contains(reason), "{}", warnings[0]);
}

#[test]
fn a_symlinked_audit_log_is_never_followed() {
    let db = TestDb::new();
    let outside = tempfile::tempdir().unwrap();
    let target = precious_file(outside.path());
    let log = audit_log_path_for(&db.path);
    std::os::unix::fs::symlink(&target, &log).unwrap();

    let report = db.applier().sync_all(&note()).unwrap();

    assert_migrated(&db, &report);
    assert_eq!(
        std::fs::read(&target).unwrap(),
        PRECIOUS,
        "target untouched"
    );
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777,
        0o644
    );
    assert_refused(&db, &report, "is a symbolic link");
    assert!(
        std::fs::symlink_metadata(&log)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link is left as it was, not replaced"
    );
    // Reading follows no link either.
    let err = read_entries(&log).unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains("is a symbolic link"), "{chain}");
}

#[test]
fn a_dangling_symlinked_audit_log_creates_nothing() {
    let db = TestDb::new();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("cron.d-entry");
    std::os::unix::fs::symlink(&target, audit_log_path_for(&db.path)).unwrap();

    let report = db.applier().sync_all(&note()).unwrap();

    assert_migrated(&db, &report);
    assert!(!target.exists(), "nothing created through the link");
    assert_refused(&db, &report, "is a symbolic link");
}

#[test]
fn a_hard_linked_audit_log_is_refused() {
    let db = TestDb::new();
    // The same file system as the database (both temporary directories).
    let outside = tempfile::tempdir_in(db.dir.path().parent().unwrap()).unwrap();
    let target = precious_file(outside.path());
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::hard_link(&target, audit_log_path_for(&db.path)).unwrap();

    let report = db.applier().sync_all(&note()).unwrap();

    assert_migrated(&db, &report);
    assert_eq!(std::fs::read(&target).unwrap(), PRECIOUS);
    assert_refused(&db, &report, "has 2 hard links");
}

#[test]
fn a_world_writable_audit_log_is_refused() {
    let db = TestDb::new();
    // A first run writes the log as it should be.
    let log = audit_log_path_for(&db.path);
    let first = db.applier().sync_all(&note()).unwrap();
    assert!(run002(&first).is_empty(), "{:?}", first.warnings);
    let before = std::fs::read(&log).unwrap();
    assert!(!before.is_empty());

    // Someone made it writable by everyone: anyone could forge entries.
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let report = db
        .applier()
        .sync_all(&[doctype(
            r#"{"name": "Memo", "fields": [{"fieldname": "body", "fieldtype": "Text"}]}"#,
        )])
        .unwrap();

    assert_eq!(report.migrations.len(), 1, "{report:?}");
    assert_eq!(report.migrations[0].status, MigrationStatus::Completed);
    assert_refused(&db, &report, "is writable by others (mode 0666)");
    assert_eq!(std::fs::read(&log).unwrap(), before, "not appended to");

    // Group-writable is refused too.
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o660)).unwrap();
    let again = db.applier().sync_all(&note()).unwrap();
    let warnings = run002(&again);
    assert_eq!(warnings.len(), 1, "{:?}", again.warnings);
    assert!(
        warnings[0].contains("is writable by its group"),
        "{}",
        warnings[0]
    );
    assert_eq!(std::fs::read(&log).unwrap(), before);

    // Once its mode is fixed, it is written again.
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fixed = db.applier().sync_all(&note()).unwrap();
    assert!(run002(&fixed).is_empty(), "{:?}", fixed.warnings);
    assert!(std::fs::read(&log).unwrap().len() > before.len());
}

#[test]
fn an_audit_log_owned_by_someone_else_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can give a file to another uid");
        return;
    }
    let db = TestDb::new();
    let log = audit_log_path_for(&db.path);
    std::fs::write(&log, b"").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&log, Some(4242), Some(4242)).unwrap();

    let report = db.applier().sync_all(&note()).unwrap();

    assert_migrated(&db, &report);
    assert_refused(&db, &report, "is owned by uid 4242");
    assert_eq!(std::fs::read(&log).unwrap(), b"");
}

#[test]
fn a_fifo_at_the_audit_log_path_is_refused_without_hanging() {
    let db = TestDb::new();
    let log = audit_log_path_for(&db.path);
    mkfifo(&log);

    let report = sync_with_timeout(&db, &log);

    assert_migrated(&db, &report);
    assert_refused(&db, &report, "is not a regular file (a FIFO)");
}

#[test]
fn a_symlinked_run_marker_is_not_followed() {
    let db = TestDb::new();
    let outside = tempfile::tempdir().unwrap();
    // A file elsewhere that reads as a dead run's marker...
    let fake = outside.path().join("fake-marker.json");
    let info = r#"{"run_id": "4242-1", "pid": 4242, "started": "2026-11-21T10:00:00Z", "database": "app.db", "version": "0.1.0"}"#;
    std::fs::write(&fake, info).unwrap();
    // ...and a FIFO elsewhere, which blocks whoever opens it.
    let fifo = outside.path().join("fifo");
    mkfifo(&fifo);
    let to_fake = db.dir.path().join("app.db.dm-run.4242-1.json");
    let to_fifo = db.dir.path().join("app.db.dm-run.4343-1.json");
    std::os::unix::fs::symlink(&fake, &to_fake).unwrap();
    std::os::unix::fs::symlink(&fifo, &to_fifo).unwrap();

    let report = sync_with_timeout(&db, &fifo);

    assert_migrated(&db, &report);
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| w.code == WarningCode::InterruptedRun),
        "a link is not a run: {:?}",
        report.warnings
    );
    // Each refused entry is reported, with its reason.
    let refused = run002(&report);
    assert_eq!(refused.len(), 2, "{:?}", report.warnings);
    assert!(
        refused
            .iter()
            .all(|w| w.contains("refused") && w.contains("symbolic link")),
        "{refused:?}"
    );
    assert_eq!(std::fs::read_to_string(&fake).unwrap(), info);
    for link in [&to_fake, &to_fifo] {
        assert!(
            std::fs::symlink_metadata(link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{} left alone",
            link.display()
        );
    }
    let actions: Vec<String> = read_entries(&audit_log_path_for(&db.path))
        .unwrap()
        .into_iter()
        .map(|e| e.action.as_str().to_string())
        .collect();
    assert!(
        !actions.iter().any(|a| a == "interrupted_run_detected"),
        "{actions:?}"
    );
    // This run's own marker was written and removed as usual.
    let markers: Vec<String> = std::fs::read_dir(db.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".dm-run."))
        .collect();
    assert_eq!(markers.len(), 2, "{markers:?}");
}

#[test]
fn temp_file_cleanup_never_leaves_the_backup_directory() {
    let db = TestDb::new();
    let outside = tempfile::tempdir().unwrap();
    let precious = outside.path().join("important.tmp");
    std::fs::write(&precious, PRECIOUS).unwrap();
    // The backup directory replaced by a link to somewhere else.
    let backups = doctype_migrate::default_dir_for(&db.path);
    std::os::unix::fs::symlink(outside.path(), &backups).unwrap();

    let report = db.applier().sync_all(&note()).unwrap();

    assert_migrated(&db, &report);
    assert_eq!(
        std::fs::read(&precious).unwrap(),
        PRECIOUS,
        "a *.tmp outside the backup directory is never removed"
    );
    let entries = read_entries(&audit_log_path_for(&db.path)).unwrap();
    assert!(
        !entries
            .iter()
            .any(|e| e.action.as_str() == "temp_file_removed"),
        "{entries:?}"
    );
    let refusal = entries
        .iter()
        .find(|e| e.action.as_str() == "failure" && e.details.get("temp_cleanup").is_some())
        .unwrap_or_else(|| panic!("the refused cleanup is logged: {entries:?}"));
    assert!(
        refusal.details["temp_cleanup"]
            .as_str()
            .unwrap()
            .contains(".backups"),
        "{refusal:?}"
    );
}
