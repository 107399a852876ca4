//! # doctype-migrate
//!
//! An embedded-SQLite schema migration engine for DocType (Frappe-style)
//! metadata. See the README for the pipeline and the safety guarantees.
#![warn(missing_docs)]

pub mod backup;
pub mod doctype;
mod error;
pub mod history;
pub mod ident;

pub use backup::{
    BackupInfo, BackupManager, BackupManagerBuilder, BackupStrategy, PrunePolicy, RestoreTarget,
    default_dir_for,
};
pub use doctype::{DocType, Field, FieldType, IndexDef};
pub use error::{Error, Result};
pub use history::{MigrationId, MigrationStatus};
