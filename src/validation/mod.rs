//! Validation of a plan before anything runs: data-aware data-loss checks,
//! conflict detection and SQL verification.

pub mod data;
mod finding;

pub use finding::{Finding, Rule, Severity};
