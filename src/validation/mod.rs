//! Validation of a plan before anything runs: data-aware data-loss checks,
//! conflict detection and SQL verification.

mod finding;
mod validator;

pub use finding::{Finding, Rule, Severity};
pub use validator::{ValidationPolicy, validate_plan};
