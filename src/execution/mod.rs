//! Execution: the write lock, foreign-key handling, per-DocType savepoints
//! and verification of the result.

mod executor;
mod metrics;
mod table_check;
mod verify;

pub use crate::db::lock::{ForeignKeysOff, TxGuard, begin_immediate, read_snapshot, retry_busy};
pub use executor::{ExecContext, MigrationRecord, error_chain, execute_doctype, record_failure};
pub use metrics::Metrics;
pub use table_check::TableChecks;
