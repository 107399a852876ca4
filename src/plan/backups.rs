//! Which backups a migration takes before it changes a table: the
//! backup policy and strategy are planning decisions, made with the plan
//! (the `backup` module writes and reads the files).

use serde::{Deserialize, Serialize};

use super::DocTypePlan;
use crate::diff::ChangeKind;

/// What a backup stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "columns", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupStrategy {
    /// The table's schema SQL (table, indexes, triggers) and every row with
    /// its rowid.
    FullTable,
    /// The rowid, the primary key columns and the named columns.
    Columns(Vec<String>),
}

impl std::fmt::Display for BackupStrategy {
    /// `full`, or `columns(a, b)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupStrategy::FullTable => f.write_str("full"),
            BackupStrategy::Columns(cols) => write!(f, "columns({})", cols.join(", ")),
        }
    }
}

impl BackupStrategy {
    /// Short name used in file names: `full` or `columns`.
    pub fn short_name(&self) -> &'static str {
        match self {
            BackupStrategy::FullTable => "full",
            BackupStrategy::Columns(_) => "columns",
        }
    }
}

/// When the applier backs up a table before migrating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupPolicy {
    /// Before destructive steps (dropped columns and tables, type changes,
    /// filled NULLs) and before every rebuild. The default.
    #[default]
    DestructiveAndRebuild,
    /// Before every change to an existing table.
    Always,
    /// Never. Destructive changes then carry an RB001 finding.
    Never,
    /// As [`BackupPolicy::DestructiveAndRebuild`], but a full backup of a
    /// table that already has one (from this database, in the backup
    /// directory, whose chain verifies) is written as an incremental
    /// backup against the newest: only the rows added, changed or deleted
    /// since, by primary key. Restores follow the chain. Without a usable
    /// base the backup is full, as under the default policy.
    Incremental,
}

/// A backup the plan will take before executing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlannedBackup {
    /// The table, by its live name.
    pub table: String,
    /// What is kept: the columns a destructive step changes, or the whole table.
    pub strategy: BackupStrategy,
}

/// The backups `plan` needs under `policy`. Destructive column changes keep
/// just those columns (by their live names, plus the key); a dropped table
/// and any other rebuild keep the whole table. A type change that keeps
/// the affinity destroys nothing, and a fast path copies nothing: neither
/// needs a backup of its own.
pub fn planned_backups(plan: &DocTypePlan, policy: BackupPolicy) -> Vec<PlannedBackup> {
    if plan.is_empty()
        || policy == BackupPolicy::Never
        || plan
            .changes
            .iter()
            .any(|c| c.kind == ChangeKind::CreateTable)
    {
        return Vec::new();
    }
    let full = PlannedBackup {
        table: plan.table.clone(),
        strategy: BackupStrategy::FullTable,
    };
    if plan.changes.iter().any(|c| c.kind == ChangeKind::DropTable) {
        return vec![full];
    }
    let renamed_from = |col: &str| {
        plan.changes
            .iter()
            .find(|c| {
                c.kind == ChangeKind::RenameColumn
                    && c.column
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(col))
            })
            .and_then(|c| c.from.clone())
            .unwrap_or_else(|| col.to_string())
    };
    let mut columns: Vec<String> = Vec::new();
    for c in &plan.changes {
        let destructive = match c.kind {
            ChangeKind::DropColumn => true,
            ChangeKind::ChangeType => c.converts_values(),
            ChangeKind::ChangeNullability => plan
                .target
                .column(c.column.as_deref().unwrap_or_default())
                .is_some_and(|t| t.not_null),
            _ => false,
        };
        if let (true, Some(col)) = (destructive, c.column.as_deref()) {
            let live = renamed_from(col);
            if !columns.iter().any(|x| x.eq_ignore_ascii_case(&live)) {
                columns.push(live);
            }
        }
    }
    if !columns.is_empty() {
        return vec![PlannedBackup {
            table: plan.table.clone(),
            strategy: BackupStrategy::Columns(columns),
        }];
    }
    if plan.rebuilds() || policy == BackupPolicy::Always {
        return vec![full];
    }
    Vec::new()
}
