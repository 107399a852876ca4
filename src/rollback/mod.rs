//! Rollback: undo applied migrations, data included, and prove the schema
//! came back exactly.
//!
//! The flow is *feasibility first*: [`plan`] selects the migrations to undo
//! ([`select`]: one migration, the latest of a DocType, a batch; with
//! `cascade`, the later migrations of the same DocTypes too, newest first)
//! and checks every one of them ([`feasibility`]) before anything runs:
//!
//! * it is `completed`, and the latest completed migration of its DocType
//!   (or every later one is rolled back first, with `cascade`);
//! * the live schema of its table equals the schema recorded after it
//!   ([`compare`]: same `sqlite_schema` objects and SQL);
//! * every backup named in its history row exists, verifies, and belongs to
//!   its table; what the forward step destroyed or converted is covered by a
//!   backup;
//! * undoing it does not silently drop data written since (rows of a table
//!   it created, values in columns it added) unless data loss is allowed.
//!
//! The rollback SQL is derived again from the row's typed changes and
//! recorded schemas (`derive`), never run from the row's stored text; a
//! stored text that differs refuses the rollback.
//!
//! [`run`] then executes the whole selection in one transaction
//! ([`execute`]): foreign keys off outside the transaction, the derived
//! rollback SQL, data restored from backups ([`restore`]), a foreign-key
//! check, verification against the schema recorded before each migration,
//! and the history rows moved to `rolled_back` with a `rollback_info`
//! record, all committed together or not at all.

pub mod compare;
mod derive;
mod execute;
pub mod feasibility;
mod restore;
pub mod select;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use crate::backup::BackupManager;
use crate::error::Result;
use crate::history::MigrationId;

pub use compare::{DifferenceKind, SchemaDifference};
pub use execute::{RollbackReport, RolledBack};
pub use feasibility::{PlannedRestore, Reason, RestoreMode, RollbackPlan, RollbackStep};
pub use restore::RestoreDone;

/// What to roll back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RollbackTarget {
    /// One migration, by history id.
    Migration {
        /// The migration.
        id: MigrationId,
    },
    /// The newest completed migration of one DocType, or (with `None`) the
    /// newest completed migration of any DocType.
    Last {
        /// The DocType, or `None` for all.
        doctype: Option<String>,
    },
    /// Every completed migration of one `sync_all` call.
    Batch {
        /// The batch id (see `ApplyReport::batch_id`).
        batch_id: String,
    },
}

impl std::fmt::Display for RollbackTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RollbackTarget::Migration { id } => write!(f, "migration {id}"),
            RollbackTarget::Last { doctype: Some(d) } => {
                write!(f, "the latest migration of DocType {d:?}")
            }
            RollbackTarget::Last { doctype: None } => f.write_str("the latest migration"),
            RollbackTarget::Batch { batch_id } => write!(f, "batch {batch_id:?}"),
        }
    }
}

/// Options of a rollback.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RollbackOptions {
    /// Roll back the later completed migrations of the same DocTypes first
    /// (newest first) instead of refusing with [`Reason::NotLatest`].
    pub cascade: bool,
    /// Let through the refusals that only protect data
    /// ([`Reason::DataWouldBeLost`], [`Reason::BackupNotRecorded`]): rows
    /// or values written since the migration are dropped with the table or
    /// column it created, and values it destroyed without a backup stay lost.
    /// They are reported as warnings and recorded in `rollback_info`.
    pub allow_data_loss: bool,
    /// Recorded in `rollback_info` as who rolled back.
    pub rolled_back_by: String,
    /// How long to wait for the write lock in total (and, on a
    /// rollback-journal database, at commit for other connections' reads
    /// to end).
    pub lock_timeout: Duration,
    /// The backups to verify and restore from. `None`: the applier's
    /// (`MigrationApplier::backup_manager`: its backup directory and key).
    pub backups: Option<Arc<BackupManager>>,
}

impl Default for RollbackOptions {
    fn default() -> Self {
        RollbackOptions {
            cascade: false,
            allow_data_loss: false,
            rolled_back_by: crate::history::default_actor(),
            lock_timeout: Duration::from_secs(60),
            backups: None,
        }
    }
}

impl RollbackOptions {
    /// Sets [`cascade`](Self::cascade).
    pub fn with_cascade(mut self, yes: bool) -> Self {
        self.cascade = yes;
        self
    }

    /// Sets [`allow_data_loss`](Self::allow_data_loss): risky, read it first.
    pub fn with_allow_data_loss(mut self, yes: bool) -> Self {
        self.allow_data_loss = yes;
        self
    }

    /// Sets who is recorded as having rolled back.
    pub fn with_rolled_back_by(mut self, who: impl Into<String>) -> Self {
        self.rolled_back_by = who.into();
        self
    }

    /// Sets how long to wait for the write lock in total.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Sets the backups to verify and restore from.
    pub fn with_backups(mut self, backups: Arc<BackupManager>) -> Self {
        self.backups = Some(backups);
        self
    }
}

/// Selects the migrations `target` names and checks whether they can be
/// rolled back: the feasibility report. Reads only (backups are verified,
/// nothing is restored); this is the dry run.
pub fn plan(
    conn: &Connection,
    target: &RollbackTarget,
    options: &RollbackOptions,
    backups: &BackupManager,
) -> Result<RollbackPlan> {
    feasibility::check(conn, target, options, Some(backups))
}

/// Plans, and when feasible executes, the rollback in one transaction.
///
/// Refusals return [`crate::Error::RollbackRefused`] with the plan and
/// nothing is written. `db_path` is used for lock-timeout messages.
pub fn run(
    conn: &Connection,
    db_path: &Path,
    target: &RollbackTarget,
    options: &RollbackOptions,
    backups: &BackupManager,
) -> Result<RollbackReport> {
    let plan = plan(conn, target, options, backups)?;
    execute::execute(conn, db_path, plan, options, backups)
}
