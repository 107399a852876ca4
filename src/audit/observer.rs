//! The audit log as an observer of a run: each [`RunEvent`] that is an
//! action becomes one JSON line (progress-only events are not logged).

use serde_json::json;

use super::log::{Action, AuditLog, Level};
use crate::events::{RollbackCause, RunEvent, RunObserver, RunOutcome};

impl RunObserver for AuditLog {
    fn on_event(&self, event: &RunEvent<'_>) {
        let Some((action, level, migration, doctype, details)) = entry(event) else {
            return;
        };
        self.record(action, level, migration, doctype, details);
    }

    fn wants_rows_copied(&self) -> bool {
        false
    }
}

type Entry<'a> = (
    Action,
    Level,
    Option<crate::history::MigrationId>,
    Option<&'a str>,
    serde_json::Value,
);

/// The audit entry of an event, or `None` for progress-only events.
fn entry<'a>(event: &RunEvent<'a>) -> Option<Entry<'a>> {
    use Level::{Error, Info, Warn};
    Some(match *event {
        RunEvent::RunStarted { doctypes } => (
            Action::RunStarted,
            Info,
            None,
            None,
            json!({"doctypes": doctypes}),
        ),
        RunEvent::InputAccepted { warning } => (
            Action::Warning,
            Warn,
            None,
            warning.doctype.as_deref(),
            serde_json::to_value(warning).unwrap_or_default(),
        ),
        RunEvent::InterruptedRun { marker, run } => (
            Action::InterruptedRunDetected,
            Warn,
            None,
            None,
            json!({
                "marker": marker.display().to_string(),
                "run_id": run.map(|i| i.run_id.clone()),
                "pid": run.map(|i| i.pid),
                "started": run.map(|i| i.started.clone()),
                "version": run.map(|i| i.version.clone()),
            }),
        ),
        RunEvent::HousekeepingFailed { task, message } => {
            let mut details = serde_json::Map::new();
            details.insert(task.to_string(), message.into());
            (Action::Failure, Warn, None, None, details.into())
        }
        RunEvent::LeftoverRemoved { path, reason } => {
            let details = match reason {
                Some(r) => json!({"path": path, "reason": r}),
                None => json!({ "path": path }),
            };
            (Action::TempFileRemoved, Warn, None, None, details)
        }
        RunEvent::Planned {
            doctypes,
            pending,
            rebuilds,
        } => (
            Action::Plan,
            Info,
            None,
            None,
            json!({"doctypes": doctypes, "pending": pending, "rebuilds": rebuilds}),
        ),
        RunEvent::LockTaken { waited_ms } => (
            Action::LockTaken,
            Info,
            None,
            None,
            json!({ "waited_ms": waited_ms }),
        ),
        RunEvent::Validated {
            findings,
            blocking,
            ms,
        } => (
            Action::Validate,
            if blocking > 0 { Warn } else { Info },
            None,
            None,
            json!({"findings": findings, "blocking": blocking, "ms": ms}),
        ),
        RunEvent::BackupWritten {
            migration,
            doctype,
            table,
            path,
            rows,
            bytes,
            sha256,
            verified,
        } => (
            Action::BackupWritten,
            Info,
            Some(migration),
            Some(doctype),
            json!({"path": path, "table": table, "rows": rows, "bytes": bytes,
                "sha256": sha256, "verified": verified}),
        ),
        RunEvent::StepExecuted {
            migration,
            doctype,
            sql,
            rows,
            ms,
        } => (
            Action::Step,
            Info,
            Some(migration),
            Some(doctype),
            json!({"sql": sql, "rows": rows, "ms": ms}),
        ),
        RunEvent::Verified {
            migration,
            doctype,
            table,
            ms,
        } => (
            Action::Verify,
            Info,
            Some(migration),
            Some(doctype),
            json!({"table": table, "ok": true, "ms": ms}),
        ),
        RunEvent::DocTypeFailed {
            doctype,
            table,
            error,
        } => (
            Action::Failure,
            Error,
            None,
            Some(doctype),
            json!({"table": table, "error": error}),
        ),
        RunEvent::SavepointRolledBack { doctype, table } => (
            Action::Rollback,
            Warn,
            None,
            Some(doctype),
            json!({"scope": "savepoint", "table": table}),
        ),
        RunEvent::TransactionRolledBack { cause } => {
            let (level, reason) = match cause {
                RollbackCause::NothingLeft => {
                    (Info, "another process migrated meanwhile".to_string())
                }
                RollbackCause::Blocked => (Warn, "blocked by validation".to_string()),
                RollbackCause::DocTypeFailed(d) => (Error, format!("DocType {d:?} failed")),
            };
            (
                Action::Rollback,
                level,
                None,
                None,
                json!({"scope": "transaction", "reason": reason}),
            )
        }
        RunEvent::Committed {
            batch_id,
            migrations,
        } => (
            Action::Commit,
            Info,
            None,
            None,
            json!({"batch_id": batch_id, "migrations": migrations}),
        ),
        RunEvent::RunFinished { outcome, ms } => match outcome {
            RunOutcome::UpToDate { fast_path } => (
                Action::RunFinished,
                Info,
                None,
                None,
                json!({"outcome": "up_to_date", "fast_path": fast_path, "ms": ms}),
            ),
            RunOutcome::Committed {
                batch_id,
                migrations,
                failed,
            } => (
                Action::RunFinished,
                Info,
                None,
                None,
                json!({"outcome": "committed", "batch_id": batch_id, "migrations": migrations,
                    "failed": failed, "ms": ms}),
            ),
            RunOutcome::Failed { error } => (
                Action::RunFinished,
                Error,
                None,
                None,
                json!({"outcome": "failed", "error": error, "ms": ms}),
            ),
        },
        RunEvent::Phase { .. } | RunEvent::RowsCopied { .. } | RunEvent::Backfilled { .. } => {
            return None;
        }
    })
}
