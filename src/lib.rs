//! # doctype-migrate
//!
//! An embedded-SQLite schema migration engine for DocType (Frappe-style)
//! metadata. See the README for the pipeline and the safety guarantees.
#![warn(missing_docs)]

pub mod backup;
mod error;
pub mod history;

pub use error::{Error, Result};
pub use history::{MigrationId, MigrationStatus};
