//! Planning and SQL generation: per DocType, the steps that take the live
//! table to its target, each with forward and rollback SQL.
//!
//! [`crate::db::create_table`] edits the original `CREATE TABLE` text of a
//! table so a rebuild keeps everything it does not change.

mod backups;
mod fastpath;
mod planner;
mod rebuild;
mod set;
mod types;

pub use backups::{BackupPolicy, BackupStrategy, PlannedBackup};
pub(crate) use fastpath::{FastPaths, StoredColumns};
pub use planner::{plan_drop_table, plan_table};
pub use rebuild::REBUILD_TEMP_PREFIX;
pub(crate) use rebuild::copy_expr_filling;
pub(crate) use set::{Mode, SetOptions, plan_set};
pub use set::{NullFill, RenameHint};
pub use types::{Approach, DocTypePlan, MigrationPlan, PlanStep, StepKind};
