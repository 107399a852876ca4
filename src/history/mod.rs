//! `tabMigrationHistory`: what was applied, when, by whom, and how to undo it.

pub mod store;

pub use crate::outcome::{MigrationId, MigrationStatus};
pub use store::HistoryRow;

/// Who a history row says ran a migration or a rollback when the caller
/// names no one: `$USER (doctype-migrate)` (`$USERNAME` on Windows), or
/// `doctype-migrate`.
pub fn default_actor() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map(|u| format!("{u} (doctype-migrate)"))
        .unwrap_or_else(|_| "doctype-migrate".to_string())
}
