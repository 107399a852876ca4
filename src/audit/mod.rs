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
//!
//! Both live beside the database, where whoever can write the directory
//! can put anything at their names, and that access must gain nothing
//! beyond the database. So nothing there is ever followed through a
//! symbolic link or opened when it is a FIFO or a device (`O_NOFOLLOW |
//! O_NONBLOCK`, then `fstat` on the descriptor); the log is appended to
//! only when it is a regular file with one name, owned by the effective
//! uid and writable by nobody else; a marker's name holding anything but a
//! marker is refused ([`scan_markers`]); and [`clean_temp_files`] removes
//! nothing outside the directory it is given.

mod fsguard;
mod log;
mod marker;
mod observer;

pub use log::{Action, AuditEntry, AuditLog, Level, default_path_for, read_entries};
pub(crate) use marker::{RunMarker, clean_temp_files, scan_markers};
pub use marker::{StaleRun, stale_runs};

#[cfg(test)]
mod tests;
