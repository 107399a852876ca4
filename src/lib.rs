//! # doctype-migrate
//!
//! An embedded-SQLite schema migration engine for DocType (Frappe-style)
//! metadata. See the README for the pipeline and the safety guarantees.
#![warn(missing_docs)]

pub mod backup;
pub mod diff;
pub mod doctype;
mod error;
pub mod history;
pub mod ident;
pub mod plan;
pub mod schema;
pub mod validation;

pub use doctype::Conflict;
pub use doctype::{DocType, Field, FieldType, IndexDef};
pub use error::{Error, Result};
pub use history::{MigrationId, MigrationStatus};
