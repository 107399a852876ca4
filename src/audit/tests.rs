//! The audit log and run markers on real files with real processes:
//! concurrent appends never interleave, an unwritable log (read-only
//! directory, full disk, a directory) warns and never fails, a run marker of
//! a killed process is reported once and cleaned, live runs are never
//! reported, and stale temporary files are removed. Child processes are
//! this test binary re-run on one `#[ignore]`d test with an environment
//! variable saying what to do.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    Action, AuditLog, Level, RunMarker, clean_temp_files, default_path_for, read_entries,
    stale_runs,
};
use crate::history::MigrationId;

const CHILD_ENV: &str = "DM_AUDIT_CHILD";

/// Re-runs this binary on `child_entry` with `CHILD_ENV=task`.
fn spawn_child(task: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .arg("--exact")
        .arg("audit::tests::child_entry")
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, task)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child test process")
}

/// What a child process does (only when started by `spawn_child`).
#[test]
#[ignore = "child process entry point for the other tests"]
fn child_entry() {
    let Ok(task) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = task.splitn(3, '|');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("append"), Some(n), Some(path)) => {
            let audit = AuditLog::new(path);
            let n: usize = n.parse().unwrap();
            // Long details make interleaving likely if appends were not whole.
            let filler = "x".repeat(3000);
            for i in 0..n {
                let warning = audit.record(
                    Action::Step,
                    Level::Info,
                    Some(MigrationId(i as i64)),
                    Some("Note"),
                    json!({"i": i, "filler": filler}),
                );
                assert!(warning.is_none(), "{warning:?}");
            }
        }
        (Some("marker"), Some(db), None) => {
            let marker = RunMarker::begin(Path::new(db)).unwrap();
            std::fs::write(format!("{db}.ready"), marker.path().display().to_string()).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown child task {other:?}"),
    }
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "child never got ready"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn concurrent_processes_append_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.db.audit.jsonl");
    let (processes, lines) = (6, 200);
    let task = format!("append|{lines}|{}", log.display());
    let children: Vec<Child> = (0..processes).map(|_| spawn_child(&task)).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let all: Vec<&str> = text.lines().collect();
    assert_eq!(all.len(), processes * lines);
    for line in &all {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("interleaved or torn line ({e}): {line:.120}"));
        assert_eq!(v["action"], "step");
    }
    let entries = read_entries(&log).unwrap();
    let mut pids: Vec<u32> = entries.iter().map(|e| e.pid).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), processes);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the log may hold SQL and data values");
    }
}

#[test]
fn unwritable_logs_warn_and_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(&str, PathBuf)> = vec![
        ("a directory", dir.path().to_path_buf()),
        ("below a regular file", {
            let f = dir.path().join("plain");
            std::fs::write(&f, "x").unwrap();
            f.join("audit.jsonl")
        }),
        (
            "a missing directory",
            dir.path().join("missing/audit.jsonl"),
        ),
    ];
    if Path::new("/dev/full").exists() {
        cases.push(("a full disk (/dev/full)", PathBuf::from("/dev/full")));
    }
    #[cfg(unix)]
    let ro = {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        // root ignores directory permissions: only a real check when it bites.
        if std::fs::write(ro.join("probe"), "x").is_err() {
            cases.push(("a read-only directory", ro.join("app.db.audit.jsonl")));
        } else {
            eprintln!("running as root: the read-only directory case is not checked");
        }
        ro
    };
    for (what, path) in cases {
        let audit = AuditLog::new(&path);
        let warning = audit.record(Action::Failure, Level::Error, None, Some("Note"), json!({}));
        let warning = warning.unwrap_or_else(|| panic!("{what}: no warning"));
        assert!(
            warning.contains("could not record failure"),
            "{what}: {warning}"
        );
        assert_eq!(audit.failures(), 1, "{what}");
        assert_eq!(audit.last_error().as_deref(), Some(warning.as_str()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn the_default_log_is_beside_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sales.db");
    let audit = AuditLog::beside(&db);
    assert_eq!(
        audit.path(),
        Some(dir.path().join("sales.db.audit.jsonl").as_path())
    );
    assert_eq!(
        default_path_for(&db),
        dir.path().join("sales.db.audit.jsonl")
    );
    for action in [Action::Plan, Action::LockTaken, Action::Commit] {
        assert!(
            audit
                .record(action, Level::Info, None, None, json!(null))
                .is_none()
        );
    }
    let actions: Vec<Action> = read_entries(audit.path().unwrap())
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, [Action::Plan, Action::LockTaken, Action::Commit]);
}

#[test]
fn a_finished_run_leaves_no_marker_and_a_live_one_is_not_stale() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let marker = RunMarker::begin(&db).unwrap();
    let name = marker
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        name.starts_with("app.db.dm-run.") && name.ends_with(".json"),
        "{name}"
    );
    assert_eq!(marker.info().pid, std::process::id());
    let second = RunMarker::begin(&db).unwrap();
    assert_ne!(
        marker.path(),
        second.path(),
        "concurrent runs have their own markers"
    );
    assert!(
        RunMarker::detect_stale(&db).is_none(),
        "live runs are not interrupted runs"
    );
    let path = marker.path().to_path_buf();
    marker.finish().unwrap();
    assert!(!path.exists());
    let second_path = second.path().to_path_buf();
    drop(second);
    assert!(
        !second_path.exists(),
        "a run that returns (drop) removes its marker"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left"
    );
}

#[test]
fn a_killed_run_is_detected_once_then_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let db_text = db.to_str().unwrap();
    let mut child = spawn_child(&format!("marker|{db_text}"));
    let ready = PathBuf::from(format!("{db_text}.ready"));
    wait_for(&ready);
    let marker = PathBuf::from(std::fs::read_to_string(&ready).unwrap());
    assert!(marker.exists());
    assert!(RunMarker::detect_stale(&db).is_none(), "the child is alive");

    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    assert!(marker.exists(), "a killed run leaves its marker");

    let stale = RunMarker::detect_stale(&db).expect("the killed run is detected");
    assert_eq!(stale.marker, marker);
    let info = stale.info.clone().expect("readable marker");
    assert_eq!(info.pid, child.id());
    assert_eq!(stale.details()["pid"], child.id());
    assert!(stale.describe().contains(&format!("pid {}", child.id())));
    // While this process holds it, nobody else reports the same run.
    assert!(stale_runs(&db).is_empty());
    stale.clear().unwrap();
    assert!(!marker.exists());
    assert!(RunMarker::detect_stale(&db).is_none());
}

#[test]
fn leftover_markers_and_marker_temporaries_are_stale_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let info = |pid: u32, started: &str| {
        json!({"run_id": format!("{pid}-1"), "pid": pid, "started": started,
               "database": "app.db", "version": "0.1.0"})
        .to_string()
    };
    std::fs::write(
        dir.path().join("app.db.dm-run.9-1.json"),
        info(9, "2024-02-01T00:00:00.000Z"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app.db.dm-run.8-1.json"),
        info(8, "2024-01-01T00:00:00.000Z"),
    )
    .unwrap();
    std::fs::write(dir.path().join("app.db.dm-run.7-1.json.tmp"), "{\"run_").unwrap();
    // Another database's marker and unrelated files are not ours.
    std::fs::write(dir.path().join("other.db.dm-run.5-1.json"), info(5, "2020")).unwrap();
    std::fs::write(dir.path().join("app.db.audit.jsonl"), "").unwrap();
    let stale = stale_runs(&db);
    let pids: Vec<Option<u32>> = stale
        .iter()
        .map(|s| s.info.as_ref().map(|i| i.pid))
        .collect();
    assert_eq!(
        pids,
        [None, Some(8), Some(9)],
        "unreadable first (no start time), then oldest"
    );
    for s in stale {
        s.clear().unwrap();
    }
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["app.db.audit.jsonl", "other.db.dm-run.5-1.json"]);
}

#[test]
fn markers_in_an_unwritable_place_are_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "x").unwrap();
    let err = RunMarker::begin(&plain.join("app.db")).unwrap_err();
    assert!(err.to_string().contains("plain"), "{err}");
    assert!(RunMarker::detect_stale(&plain.join("app.db")).is_none());
    assert!(RunMarker::detect_stale(Path::new("/")).is_none());
}

#[test]
fn stale_temp_files_are_removed_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("tabItem.1.backup.tmp"), "half").unwrap();
    std::fs::write(d.join("tabItem.2.backup.tmp"), "half").unwrap();
    std::fs::write(d.join("tabItem.1.backup"), "whole").unwrap();
    std::fs::write(d.join(".tmp"), "a bare suffix is not a temp file").unwrap();
    std::fs::create_dir(d.join("dir.tmp")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(d.join("tabItem.1.backup"), d.join("link.tmp")).unwrap();

    let young = clean_temp_files(d, ".tmp", Duration::from_secs(3600)).unwrap();
    assert!(
        young.is_empty(),
        "files younger than min_age stay: {young:?}"
    );
    let removed = clean_temp_files(d, ".tmp", Duration::ZERO).unwrap();
    assert_eq!(
        removed,
        [
            d.join("tabItem.1.backup.tmp"),
            d.join("tabItem.2.backup.tmp")
        ]
    );
    assert!(d.join("tabItem.1.backup").exists());
    assert!(d.join("dir.tmp").is_dir());
    assert!(d.join(".tmp").exists());
    #[cfg(unix)]
    assert!(std::fs::symlink_metadata(d.join("link.tmp")).is_ok());
    assert!(
        clean_temp_files(&d.join("missing"), ".tmp", Duration::ZERO)
            .unwrap()
            .is_empty()
    );
}

// --- the audit trail of real runs -------------------------------------------
