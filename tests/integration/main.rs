//! The integration tests: one test binary, one module per area.
//!
//! One binary instead of one per file: each binary links the library,
//! SQLite and the crypto crates, so 34 of them cost most of `cargo test`'s
//! build time and CI time. Run a part with a filter on the module path,
//! e.g. `cargo test --test integration rollback::` or
//! `cargo test --test integration -- --exact replay::replay_from_env`.
//!
//! The tests of all modules run as threads of one process. A test that
//! measures the whole process (peak RSS in `backup_memory`) re-runs itself
//! in a child process of its own; tests that need other processes start the
//! `doctype-migrate` binary (`CARGO_BIN_EXE_doctype-migrate`) or re-run this
//! one on an ignored entry point (`audit::child_entry`).
//!
//! Fixtures are in `tests/fixtures/` (`common::fixture`).

// Helpers shared by the modules below.
mod backup_support;
mod common;
mod replay_support;
mod rollback_support;

mod architecture;
mod atomicity;
mod audit;
#[cfg(unix)]
mod audit_security;
mod backup_fuzz;
mod backup_incremental;
mod backup_integration;
mod backup_manage;
mod backup_memory;
mod backup_roundtrip;
#[cfg(unix)]
mod backup_security;
mod backup_tamper;
mod cli;
mod cli_backup;
mod cli_output;
mod concurrency;
mod corpus;
mod crash;
#[cfg(feature = "server")]
mod dashboard;
mod disk_full;
mod expected_plan;
mod fast_path;
mod first_apply;
#[cfg(unix)]
mod fleet;
mod frappe_apps;
mod input;
#[cfg(unix)]
mod journal_modes;
mod no_copy;
mod online;
#[cfg(unix)]
mod online_deploy;
mod own_connection;
mod progress;
mod proptest_roundtrip;
mod rebuild_preserves;
mod replay;
mod rollback;
mod rollback_cli;
mod rollback_forward_fixes;
mod security;
#[cfg(feature = "server")]
pub(crate) mod serve;
mod sync_basics;
mod validation_data_rules;
mod validation_rules;
