//! The vocabulary of outcomes that every layer (and the error type) speaks:
//! migration ids and the status lifecycle of a history row (`status`), and
//! the findings validation reports (`finding`). Plain data, importing
//! nothing else of the crate, so the error type can carry them.

mod finding;
mod status;

pub use finding::{Finding, Rule, Severity};
pub use status::{MigrationId, MigrationStatus};
