//! Runs the server started: their state, kept current by an observer of
//! the library's run events, so `status` and `runs/{id}` answer from
//! memory while a run holds the database lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use doctype_migrate::{RunEvent, RunObserver};
use serde::Serialize;
use serde_json::{Value, json};

/// How a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStateKind {
    /// Started, not ended.
    Running,
    /// Committed.
    Completed,
    /// Ended with an error; its transaction rolled back.
    Failed,
    /// Refused or stopped before writing anything.
    RolledBack,
}

/// One run, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunState {
    /// The run's id.
    pub id: String,
    /// The plan it applies.
    pub plan_id: String,
    /// The token that started it.
    pub started_by: String,
    /// When (RFC 3339).
    pub started_at: String,
    /// How it stands.
    pub state: RunStateKind,
    /// The current phase (`plan`, `lock`, `validate`, `backup`, ...).
    pub phase: Option<String>,
    /// The DocType being migrated.
    pub doctype: Option<String>,
    /// DocTypes with changes, and how many are done.
    pub doctypes_total: usize,
    /// DocTypes verified so far.
    pub doctypes_done: usize,
    /// Rows copied by the rebuild running now, and its estimate.
    pub rows_copied: u64,
    /// Rows expected by the rebuild running now.
    pub rows_total: u64,
    /// Bytes of backups written so far.
    pub bytes_backed_up: u64,
    /// Progress in percent (DocTypes done, plus the running rebuild's share).
    pub percent: f64,
    /// The apply report, once completed.
    pub report: Option<Value>,
    /// The error, once failed: `{"code", "message"}`.
    pub error: Option<Value>,
}

impl RunState {
    fn update_percent(&mut self) {
        if self.state == RunStateKind::Completed {
            self.percent = 100.0;
            return;
        }
        let total = self.doctypes_total.max(1) as f64;
        let current = if self.rows_total > 0 {
            (self.rows_copied as f64 / self.rows_total as f64).min(1.0)
        } else {
            0.0
        };
        self.percent = ((self.doctypes_done as f64 + current) / total * 100.0).min(99.9);
    }
}

/// Every run of this server process, and which one runs now.
pub struct Runs {
    inner: Mutex<RunsInner>,
    /// Every event of every run, as JSON, for `GET /api/migration/events`.
    events: tokio::sync::broadcast::Sender<Value>,
}

impl Default for Runs {
    fn default() -> Self {
        Runs {
            inner: Mutex::default(),
            // A slow listener that falls more than this far behind skips
            // ahead (and is told so); the run never waits for listeners.
            events: tokio::sync::broadcast::channel(1024).0,
        }
    }
}

#[derive(Default)]
struct RunsInner {
    all: HashMap<String, RunState>,
    current: Option<String>,
    next: u64,
}

impl Runs {
    /// Registers a new run as the current one, unless one is running:
    /// `None` then.
    pub fn begin(&self, plan_id: &str, started_by: &str) -> Option<String> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.current.is_some() {
            return None;
        }
        inner.next += 1;
        let id = format!("run-{}", inner.next);
        inner.all.insert(
            id.clone(),
            RunState {
                id: id.clone(),
                plan_id: plan_id.to_owned(),
                started_by: started_by.to_owned(),
                started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                state: RunStateKind::Running,
                phase: None,
                doctype: None,
                doctypes_total: 0,
                doctypes_done: 0,
                rows_copied: 0,
                rows_total: 0,
                bytes_backed_up: 0,
                percent: 0.0,
                report: None,
                error: None,
            },
        );
        inner.current = Some(id.clone());
        Some(id)
    }

    /// Listens to every event from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Value> {
        self.events.subscribe()
    }

    /// Sends `event` (with the run's id) and the run's state after it to
    /// the listeners.
    fn publish(&self, id: &str, event: Value) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let _ = self
            .events
            .send(json!({"type": "event", "run": id, "event": event}));
        if let Some(run) = self.get(id) {
            let _ = self
                .events
                .send(json!({"type": "progress", "run": id, "state": run}));
        }
    }

    /// A run's state.
    pub fn get(&self, id: &str) -> Option<RunState> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.all.get(id).cloned()
    }

    /// The running run's state, if one runs.
    pub fn current(&self) -> Option<RunState> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .current
            .as_ref()
            .and_then(|id| inner.all.get(id).cloned())
    }

    /// Changes a run's state.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut RunState)) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(run) = inner.all.get_mut(id) {
            f(run);
            run.update_percent();
        }
    }

    /// Ends a run: it is no longer the current one.
    pub fn end(&self, id: &str, state: RunStateKind, report: Option<Value>, error: Option<Value>) {
        self.update(id, |r| {
            r.state = state;
            r.report = report;
            r.error = error;
            r.phase = None;
            r.doctype = None;
        });
        {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if inner.current.as_deref() == Some(id) {
                inner.current = None;
            }
        }
        self.publish(id, json!({"kind": "run_ended", "state": state}));
    }
}

/// Keeps one run's state current from its events, and tells the request
/// that started it once the run is past validation (it then answers 202).
pub struct Tracker {
    pub runs: Arc<Runs>,
    pub id: String,
    /// Fired once: when the run validated with nothing blocking, or by
    /// the thread running it once it ended (after its state was recorded).
    pub validated: Gate,
}

/// Why a run ended before it wrote anything: the API code and the
/// error's text.
pub type Refusal = (&'static str, String);

/// Where the request that started a run waits: `None` when the run got
/// past validation (or ended otherwise), the refusal when it ended before.
pub type Gate = Arc<Mutex<Option<tokio::sync::oneshot::Sender<Option<Refusal>>>>>;

impl Tracker {
    /// Lets the waiting request go (once; later calls do nothing).
    pub fn open(gate: &Gate, refusal: Option<Refusal>) {
        let sender = gate.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(s) = sender {
            let _ = s.send(refusal);
        }
    }
}

impl RunObserver for Tracker {
    fn on_event(&self, event: &RunEvent<'_>) {
        self.track(event);
        if let Some(json) = event_json(event) {
            self.runs.publish(&self.id, json);
        }
    }
}

impl Tracker {
    fn track(&self, event: &RunEvent<'_>) {
        match event {
            RunEvent::Phase { doctype, phase } => self.runs.update(&self.id, |r| {
                r.phase = Some(phase.as_str().to_owned());
                if let Some(d) = doctype {
                    if r.doctype.as_deref() != Some(d) {
                        r.rows_copied = 0;
                        r.rows_total = 0;
                    }
                    r.doctype = Some((*d).to_owned());
                }
            }),
            RunEvent::Planned { pending, .. } => {
                let n = pending.len();
                self.runs.update(&self.id, |r| r.doctypes_total = n);
            }
            RunEvent::Validated { blocking: 0, .. } => Tracker::open(&self.validated, None),
            RunEvent::RowsCopied { copied, total, .. } => {
                let (c, t) = (*copied, *total);
                self.runs.update(&self.id, |r| {
                    r.rows_copied = c;
                    r.rows_total = t;
                });
            }
            RunEvent::BackupWritten { bytes, .. } => {
                let b = *bytes;
                self.runs.update(&self.id, |r| r.bytes_backed_up += b);
            }
            RunEvent::Verified { .. } => self.runs.update(&self.id, |r| {
                r.doctypes_done += 1;
                r.rows_copied = 0;
                r.rows_total = 0;
            }),
            _ => {}
        }
    }
}

/// A run event as JSON (`kind` plus its fields); `None` for the ones the
/// stream leaves out (the per-statement SQL, housekeeping).
fn event_json(event: &RunEvent<'_>) -> Option<Value> {
    Some(match event {
        RunEvent::Phase { doctype, phase } => {
            json!({"kind": "phase", "phase": phase.as_str(), "doctype": doctype})
        }
        RunEvent::Planned {
            doctypes,
            pending,
            rebuilds,
        } => {
            json!({"kind": "planned", "doctypes": doctypes, "pending": pending, "rebuilds": rebuilds})
        }
        RunEvent::LockTaken { waited_ms } => json!({"kind": "lock_taken", "waited_ms": waited_ms}),
        RunEvent::Validated {
            findings,
            blocking,
            ms,
        } => json!({"kind": "validated", "findings": findings, "blocking": blocking, "ms": ms}),
        RunEvent::BackupWritten {
            doctype,
            table,
            rows,
            bytes,
            verified,
            ..
        } => json!({"kind": "backup_written", "doctype": doctype, "table": table,
                    "rows": rows, "bytes": bytes, "verified": verified}),
        RunEvent::RowsCopied {
            doctype,
            table,
            copied,
            total,
        } => json!({"kind": "rows_copied", "doctype": doctype, "table": table,
                    "copied": copied, "total": total}),
        RunEvent::Verified {
            doctype, table, ms, ..
        } => json!({"kind": "verified", "doctype": doctype, "table": table, "ms": ms}),
        RunEvent::DocTypeFailed {
            doctype,
            table,
            error,
        } => json!({"kind": "doctype_failed", "doctype": doctype, "table": table, "error": error}),
        RunEvent::Committed {
            batch_id,
            migrations,
        } => json!({"kind": "committed", "batch_id": batch_id, "migrations": migrations}),
        RunEvent::TransactionRolledBack { .. } => json!({"kind": "rolled_back"}),
        _ => return None,
    })
}
