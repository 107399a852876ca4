//! `tabMigrationHistory`: what was applied, when, by whom, and how to undo it.

mod status;
pub mod store;

pub use status::{MigrationId, MigrationStatus};
pub use store::{HISTORY_TABLE, HistoryRow};
