//! # doctype-migrate
//!
//! An embedded-SQLite schema migration engine for DocType (Frappe-style)
//! metadata. Hand it DocTypes; it diffs them against the live database,
//! plans forward and rollback SQL, validates the plan against the real data,
//! and applies it atomically with a history row in the same transaction.
//!
//! The modules follow the pipeline: [`doctype`] (parse, validate) →
//! [`schema`] (target spec, introspection) → [`diff`] → [`plan`] →
//! [`validation`] → [`execution`] (lock, savepoints, verify) → [`history`].
//! [`applier`] drives them; [`backup`] keeps what destructive steps change;
//! [`rollback`] undoes migrations, data included.
#![warn(missing_docs)]

pub mod applier;
pub mod audit;
pub mod backup;
mod db;
pub mod diff;
pub mod doctype;
mod error;
pub mod execution;
pub mod history;
pub mod ident;
pub mod plan;
pub mod rollback;
pub mod schema;
pub mod validation;

pub use applier::{
    ApplierBuilder, ApplierOptions, ApplyReport, BackupKey, DryRunReport, MigrationApplier,
    NullFill, RenameHint, migrate_on_start,
};
pub use audit::{AuditEntry, AuditLog, RunMarker, StaleRun};
pub use backup::{
    BackupInfo, BackupManager, BackupManagerBuilder, BackupPolicy, BackupStrategy, PlannedBackup,
    PrunePolicy, RestoreTarget, default_dir_for,
};
pub use diff::{Change, ChangeKind, TableDiff};
pub use doctype::{
    Conflict, DocType, Field, FieldType, IndexDef, Layer, LayerKind, Warning, WarningCode,
    load_path, load_paths, warnings,
};
pub use error::{Error, Result, error_chain, error_sources};
pub use execution::{Metrics, MigrationRecord, Phase, ProgressEvent, ProgressObserver};
pub use history::{HistoryRow, MigrationId, MigrationStatus};
pub use plan::{DocTypePlan, MigrationPlan, PlanStep, StepKind};
pub use rollback::{
    Reason, RollbackOptions, RollbackPlan, RollbackReport, RollbackTarget, RolledBack,
};
pub use schema::{ColumnSpec, IndexSpec, TableSpec};
pub use validation::{Finding, Rule, Severity, ValidationPolicy};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The guide's Rust examples (docs/guide.md), compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
pub struct GuideDoctests;
