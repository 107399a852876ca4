//! Validation of a plan before anything runs: data-aware data-loss checks,
//! conflict detection and SQL verification. Runs in `dry_run` and again in
//! `apply`, under the lock, on the plan that will execute.

pub mod data;
mod data_rules;
mod rules;
mod shadow;
mod validator;

pub use crate::outcome::{Finding, Rule, Severity};
pub use validator::{ValidationPolicy, sort_findings, validate_plan};
