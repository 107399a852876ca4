//! `tabMigrationHistory`: what was applied, when, by whom, and how to undo it.

mod status;

pub use status::{MigrationId, MigrationStatus};
