//! Validation of a plan before anything runs: data-aware data-loss checks,
//! conflict detection and SQL verification.

mod finding;

pub use finding::{Finding, Rule, Severity};
