//! The audit trail: a JSON Lines log of every action a run takes
//! ([`AuditLog`]), and detection of runs that started and never finished
//! ([`RunMarker`], [`StaleRun`], [`clean_temp_files`]).
//!
//! Both are best effort by design: a failure to write the audit log or a
//! run marker is returned to the caller as a warning and never stops a
//! migration. The database (with `tabMigrationHistory` written in the same
//! transaction as each change) stays the source of truth; the audit log is
//! the narrative around it, including what never reached the database
//! (failures, rollbacks, interrupted runs).

mod log;
mod marker;

pub use log::{Action, AuditEntry, AuditLog, Level, default_path_for, read_entries};
pub use marker::{MARKER_INFIX, RunInfo, RunMarker, StaleRun, clean_temp_files, stale_runs};
