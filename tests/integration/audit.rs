//! The audit trail of real runs (`sync_all`): every action in order for a
//! run with a failure and a rollback, interrupted runs noticed and
//! reported, and an audit log that cannot be written never stopping a
//! migration. The log and run markers themselves are tested in
//! `src/audit/tests.rs`.

use std::sync::{Arc, Mutex};

use doctype_migrate::{
    DocType, MigrationApplier, MigrationStatus, RunEvent, RunObserver, audit_log_path_for,
    read_entries,
};

use crate::common::{GAUGE_TRAP, TestDb, doctype};

fn set() -> Vec<DocType> {
    vec![
        doctype(r#"{"name": "Alpha", "fields": [{"fieldname": "a", "fieldtype": "Data"}]}"#),
        doctype(r#"{"name": "Gauge", "fields": [{"fieldname": "reading", "fieldtype": "Int"}]}"#),
    ]
}

fn actions(db: &TestDb) -> Vec<String> {
    read_entries(&audit_log_path_for(&db.path))
        .unwrap()
        .into_iter()
        .map(|e| e.action.as_str().to_string())
        .collect()
}

#[test]
fn a_failed_all_or_nothing_run_logs_every_action_in_order() {
    let db = TestDb::with_sql(GAUGE_TRAP);
    let err = db.applier().sync_all(&set()).unwrap_err();
    assert!(err.to_string().contains("Gauge"));
    let got = actions(&db);
    let expected = [
        "run_started",
        "plan",
        "lock_taken",
        "validate",
        "step",           // Alpha: CREATE TABLE
        "verify",         // Alpha verified
        "backup_written", // Gauge: the retyped column, before its rebuild
        "step",           // Gauge: CREATE TABLE _dm_new_
        "failure",        // the copy hits the CHECK
        "rollback",       // Gauge's savepoint
        "rollback",       // the whole transaction (all-or-nothing)
        "run_finished",
    ];
    assert_eq!(got, expected, "{got:#?}");
    let entries = read_entries(&audit_log_path_for(&db.path)).unwrap();
    let failure = entries
        .iter()
        .find(|e| e.action.as_str() == "failure")
        .unwrap();
    assert_eq!(failure.doctype.as_deref(), Some("Gauge"));
    assert!(
        failure.details["error"]
            .as_str()
            .unwrap()
            .contains("CHECK constraint failed")
    );
    assert_eq!(entries.last().unwrap().details["outcome"], "failed");
    assert_eq!(
        entries[0].details["doctypes"], 2,
        "run_started counts the input"
    );
}

/// Records every event a caller's observer hears, by name.
#[derive(Default)]
struct Heard(Mutex<Vec<String>>);

impl RunObserver for Heard {
    fn on_event(&self, event: &RunEvent<'_>) {
        let name = match event {
            RunEvent::RunStarted { .. } => "run_started",
            RunEvent::Planned { .. } => "plan",
            RunEvent::LockTaken { .. } => "lock_taken",
            RunEvent::Validated { .. } => "validate",
            RunEvent::StepExecuted { .. } => "step",
            RunEvent::Verified { .. } => "verify",
            RunEvent::BackupWritten { .. } => "backup_written",
            RunEvent::DocTypeFailed { .. } => "failure",
            RunEvent::SavepointRolledBack { .. } | RunEvent::TransactionRolledBack { .. } => {
                "rollback"
            }
            RunEvent::Committed { .. } => "commit",
            RunEvent::RunFinished { .. } => "run_finished",
            RunEvent::Phase { .. } => "phase",
            RunEvent::RowsCopied { .. } => "rows_copied",
            _ => "other",
        };
        self.0.lock().unwrap().push(name.to_string());
    }
}

#[test]
fn the_audit_log_and_a_callers_observer_hear_one_event_stream() {
    for continue_on_error in [false, true] {
        let db = TestDb::with_sql(GAUGE_TRAP);
        let heard = Arc::new(Heard::default());
        let result = MigrationApplier::builder(&db.path)
            .continue_on_error(continue_on_error)
            .observer(heard.clone())
            .build()
            .unwrap()
            .sync_all(&set());
        assert_eq!(result.is_ok(), continue_on_error);
        let heard = heard.0.lock().unwrap().clone();
        // What the caller heard, less the progress-only events, is exactly
        // what the audit log wrote, in the same order.
        let actions_heard: Vec<String> = heard
            .iter()
            .filter(|e| *e != "phase" && *e != "rows_copied")
            .cloned()
            .collect();
        assert_eq!(
            actions_heard,
            actions(&db),
            "continue_on_error={continue_on_error}"
        );
        assert!(heard.iter().any(|e| e == "phase"), "{heard:?}");
        assert_eq!(heard.first().map(String::as_str), Some("run_started"));
        assert_eq!(heard.last().map(String::as_str), Some("run_finished"));
    }
}

#[test]
fn continue_on_error_logs_the_failure_and_the_commit() {
    let db = TestDb::with_sql(GAUGE_TRAP);
    let report = MigrationApplier::builder(&db.path)
        .continue_on_error(true)
        .build()
        .unwrap()
        .sync_all(&set())
        .unwrap();
    assert_eq!(report.migrations[1].status, MigrationStatus::Failed);
    let got = actions(&db);
    let tail: Vec<&str> = got.iter().rev().take(2).rev().map(String::as_str).collect();
    assert_eq!(tail, ["commit", "run_finished"]);
    assert!(got.iter().any(|a| a == "failure"));
}

#[test]
fn an_interrupted_run_is_reported_once_and_cleared() {
    let db = TestDb::new();
    // A marker whose process is gone (nobody holds its lock).
    let marker = db.dir.path().join("app.db.dm-run.4242-1.json");
    std::fs::write(
        &marker,
        r#"{"run_id": "4242-1", "pid": 4242, "started": "2026-11-21T10:00:00Z", "database": "app.db", "version": "0.1.0"}"#,
    )
    .unwrap();
    let report = db.applier().sync_all(&set()[..1]).unwrap();
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].message.contains("4242"),
        "{}",
        report.warnings[0]
    );
    assert!(!marker.exists(), "the stale marker is cleared");
    assert_eq!(
        actions(&db)[..2],
        ["run_started", "interrupted_run_detected"]
    );
    let again = db.applier().sync_all(&set()[..1]).unwrap();
    assert!(again.warnings.is_empty());
    // A completed run leaves no marker behind.
    let left: Vec<_> = std::fs::read_dir(db.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".dm-run."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_unwritable_audit_log_warns_but_never_stops_a_migration() {
    let db = TestDb::new();
    let report = MigrationApplier::builder(&db.path)
        .create_if_missing(true)
        .audit_log(db.dir.path().join("no-such-dir/audit.jsonl"))
        .build()
        .unwrap()
        .sync_all(&set()[..1])
        .unwrap();
    assert_eq!(report.migrations.len(), 1);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.message.contains("audit log not written")),
        "{:?}",
        report.warnings
    );
}
