#![doc = include_str!("../README.md")]
//!
//! # The API at a glance
//!
//! Everything public is re-exported here; the modules are private.
//!
//! - **Input**: [`DocType`], [`Field`], [`FieldType`], [`IndexDef`];
//!   [`load_path`], [`load_paths`] (files and directory trees, with
//!   [`Layer`]s of Custom Fields and Property Setters merged, validated),
//!   [`doctypes_from_json`], [`validate_doctypes`], [`conflicts`]; what was
//!   accepted as Frappe accepts it: [`Warning`], [`warnings`].
//! - **Running**: [`MigrationApplier`] and its [`ApplierBuilder`] (plan,
//!   dry run, apply, roll back, history, backups); [`migrate_on_start`].
//! - **Plans and reports**: [`MigrationPlan`], [`DocTypePlan`],
//!   [`PlanStep`], [`Change`], [`ChangeKind`], [`Finding`], [`Rule`],
//!   [`Severity`], [`DryRunReport`], [`ApplyReport`], [`MigrationRecord`],
//!   [`HistoryRow`], [`MigrationId`], [`MigrationStatus`].
//! - **Rollback**: [`RollbackTarget`], [`RollbackOptions`],
//!   [`RollbackPlan`], [`Reason`], [`RollbackReport`].
//! - **Backups**: [`BackupPolicy`], [`BackupKey`], [`BackupManager`],
//!   [`BackupInfo`], [`PrunePolicy`], [`PruneReport`], [`RestoreReport`].
//! - **Observing a run**: [`RunObserver`] hears every [`RunEvent`] of a
//!   run (the audit log and the CLI's progress display are observers
//!   too); the audit log ([`AuditLog`], [`read_entries`]); interrupted runs
//!   ([`stale_runs`]).
//! - **Errors**: [`Error`], [`BackupErrorKind`] (why a backup failed:
//!   [`Error::backup_kind`]), [`RefusedRollback`], [`Result`],
//!   [`error_chain`], [`error_sources`].
#![warn(missing_docs)]

mod applier;
mod audit;
mod backup;
mod db;
mod diff;
mod doctype;
mod error;
mod events;
mod execution;
mod fleet;
mod history;
mod ident;
mod online;
mod outcome;
mod plan;
mod rollback;
mod schema;
mod validation;

pub use applier::{
    ApplierBuilder, ApplierOptions, ApplyReport, BackupKey, BackupSettings, DryRunReport,
    MigrationApplier, NullFill, OnlineReport, RenameHint, RestoreReport, migrate_on_start,
};
pub use audit::{
    Action, AuditEntry, AuditLog, Level, StaleRun, default_path_for as audit_log_path_for,
    read_entries, stale_runs,
};
pub use backup::{
    BackupInfo, BackupManager, BackupManagerBuilder, BackupPolicy, BackupStrategy, PlannedBackup,
    PrunePolicy, PruneReport, RestoreTarget, default_dir_for,
};
pub use diff::{Change, ChangeKind, TableDiff};
pub use doctype::{
    Conflict, DocType, Field, FieldType, IndexDef, Layer, LayerKind, Warning, WarningCode,
    conflicts, doctypes_from_json, load_path, load_paths, validate_doctypes, warnings,
};
pub use error::{BackupErrorKind, Error, RefusedRollback, Result, error_chain, error_sources};
pub use events::{Phase, RollbackCause, RunEvent, RunInfo, RunObserver, RunOutcome};
pub use execution::{Metrics, MigrationRecord};
pub use fleet::{
    DbOutcome, DbStatus, Fleet, FleetBuilder, FleetPlan, FleetReport, OnError, PlanGroup,
};
pub use history::{HistoryRow, MigrationId, MigrationStatus};
pub use online::{BackfillSettings, BackfillStats, OnlineStatus, OnlineTable};
pub use plan::{Approach, DocTypePlan, MigrationPlan, PlanStep, StepKind};
pub use rollback::{
    DifferenceKind, PlannedRestore, Reason, RestoreDone, RestoreMode, RollbackOptions,
    RollbackPlan, RollbackReport, RollbackStep, RollbackTarget, RolledBack, SchemaDifference,
};
pub use schema::{Affinity, ColumnSpec, IndexSpec, TableSpec};
pub use validation::{Finding, Rule, Severity, ValidationPolicy};

/// The fleet guide's Rust example (docs/fleet.md), compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../docs/fleet.md")]
pub struct FleetDoctests;

/// The guide's Rust examples (docs/guide.md), compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
pub struct GuideDoctests;
