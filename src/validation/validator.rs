//! The validator: runs every rule on a plan and returns findings, most
//! severe first.

use rusqlite::Connection;

use crate::doctype::DocType;
use crate::error::Result;
use crate::plan::MigrationPlan;
use crate::schema::SchemaSnapshot;

use super::{data_rules, rules, shadow};
use crate::outcome::Finding;

/// What the caller allows.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ValidationPolicy {
    /// Data-loss findings (DL*, RB001) do not block.
    pub allow_data_loss: bool,
}

/// Validates a plan against the live schema and data.
pub fn validate_plan(
    conn: &Connection,
    plan: &MigrationPlan,
    doctypes: &[DocType],
    policy: &ValidationPolicy,
) -> Result<Vec<Finding>> {
    let snapshot = SchemaSnapshot::read(conn)?;
    let mut findings = Vec::new();
    findings.extend(shadow::check(&snapshot, plan)?);
    findings.extend(rules::drift(conn, &snapshot, plan)?);
    findings.extend(rules::missing_links(&snapshot, doctypes));
    findings.extend(rules::unmanaged_references(&snapshot, plan));
    for p in plan.pending() {
        findings.extend(data_rules::check(conn, p, policy)?);
    }
    sort_findings(&mut findings);
    Ok(findings)
}

/// Most severe first, then by DocType, table, column and rule: deterministic.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.doctype.cmp(&b.doctype))
            .then_with(|| a.table.cmp(&b.table))
            .then_with(|| a.column.cmp(&b.column))
            .then_with(|| a.rule.cmp(&b.rule))
    });
}
