//! Diff: compares a live table with its target spec and lists typed changes.
//!
//! Renames come only from explicit hints; columns the DocType no longer
//! declares are orphans (kept and reported) unless the caller asks to drop
//! them; indexes the engine did not create are never dropped.

mod change;

pub use change::{Change, ChangeKind};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::schema::compare::{ColumnDifference, compare_column, same_index};
use crate::schema::{IndexSpec, LiveTable, TableSpec};

/// The changes one table needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TableDiff {
    /// The DocType.
    pub doctype: String,
    /// The table.
    pub table: String,
    /// Changes in the order the planner applies them.
    pub changes: Vec<Change>,
    /// Live columns the DocType no longer declares, kept.
    pub orphans: Vec<String>,
    /// `(old, new)` column renames applied.
    pub renames: Vec<(String, String)>,
}

impl TableDiff {
    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether any change is of this kind.
    pub fn has(&self, kind: ChangeKind) -> bool {
        self.changes.iter().any(|c| c.kind == kind)
    }
}

/// Options for [`diff_table`].
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Drop columns the DocType no longer declares instead of keeping them.
    pub drop_orphan_columns: bool,
    /// Extra `(old, new)` rename hints for this table, on top of the
    /// fields' `renamed_from`.
    pub renames: Vec<(String, String)>,
}

/// Diffs a target spec against the live table (`None`: the table does not exist).
pub fn diff_table(
    doctype: &str,
    target: &TableSpec,
    live: Option<&LiveTable>,
    rename_hints: &[(String, String)],
    options: &DiffOptions,
) -> Result<TableDiff> {
    let mut diff = TableDiff {
        doctype: doctype.to_string(),
        table: target.name.clone(),
        changes: Vec::new(),
        orphans: Vec::new(),
        renames: Vec::new(),
    };
    let Some(live) = live else {
        diff.changes.push(Change::new(ChangeKind::CreateTable));
        diff.changes.extend(target.indexes.iter().map(add_index));
        return Ok(diff);
    };
    let unsupported = |message: String| Error::UnsupportedChange {
        doctype: doctype.to_string(),
        table: target.name.clone(),
        message,
    };
    // The naming rule moved to or from autoincrement: one change that
    // retypes `name` (the rebuild keeps every value; see ChangeAutoincrement).
    let naming_changes = live.spec.autoincrement != target.autoincrement;
    if naming_changes {
        let describe = |spec: &TableSpec| {
            let decl = spec
                .columns
                .iter()
                .find(|c| c.primary_key)
                .map_or_else(|| "?".to_string(), |c| c.decl_type.clone());
            if spec.autoincrement {
                format!("{decl} AUTOINCREMENT")
            } else {
                decl
            }
        };
        diff.changes.push(
            Change::on_column(ChangeKind::ChangeAutoincrement, "name")
                .with_values(Some(describe(&live.spec)), Some(describe(target))),
        );
    }

    // Renames, from hints only, and only when the old column is there and the new one is not.
    let mut live_names: Vec<String> = live.spec.columns.iter().map(|c| c.name.clone()).collect();
    let hints = rename_hints.iter().chain(options.renames.iter());
    for (old, new) in hints {
        let has = |n: &str| live_names.iter().any(|l| l.eq_ignore_ascii_case(n));
        if has(old) && !has(new) && target.column(new).is_some() {
            if let Some(slot) = live_names.iter_mut().find(|l| l.eq_ignore_ascii_case(old)) {
                diff.changes.push(
                    Change::on_column(ChangeKind::RenameColumn, new)
                        .with_values(Some(slot.clone()), Some(new.clone())),
                );
                diff.renames.push((slot.clone(), new.clone()));
                *slot = new.clone();
            }
        }
    }
    let live_col = |name: &str| {
        live_names
            .iter()
            .position(|l| l.eq_ignore_ascii_case(name))
            .map(|i| &live.spec.columns[i])
    };

    let mut index_changes = Vec::new();
    // Managed indexes that go away or change: dropped first.
    for idx in live.spec.indexes.iter().filter(|i| i.is_managed()) {
        match target.index(&idx.name) {
            Some(t) if same_index(t, idx, &diff.renames) => {}
            _ => index_changes.push(drop_index(idx)),
        }
    }
    for t in &target.columns {
        let Some(l) = live_col(&t.name) else {
            diff.changes.push(
                Change::on_column(ChangeKind::AddColumn, &t.name)
                    .with_values(None, Some(t.decl_type.clone())),
            );
            continue;
        };
        if naming_changes && t.primary_key && l.primary_key {
            continue;
        }
        // One comparison with verification (schema::compare): the NOT NULL
        // of a rowid alias is not compared.
        for difference in compare_column(target, t, &live.spec, l) {
            let change = match difference {
                ColumnDifference::PrimaryKey { target: key, .. } => {
                    return Err(unsupported(format!(
                        "column {:?} would {} the primary key; changing the primary key is not supported",
                        t.name,
                        if key { "become" } else { "stop being" }
                    )));
                }
                ColumnDifference::Type { live, target } => {
                    Change::on_column(ChangeKind::ChangeType, &t.name)
                        .with_values(Some(live), Some(target))
                }
                ColumnDifference::NotNull { live, target } => {
                    Change::on_column(ChangeKind::ChangeNullability, &t.name)
                        .with_values(Some(null_word(live)), Some(null_word(target)))
                }
                ColumnDifference::Default { live, target } => {
                    Change::on_column(ChangeKind::ChangeDefault, &t.name).with_values(live, target)
                }
            };
            diff.changes.push(change);
        }
    }
    for (i, name) in live_names.iter().enumerate() {
        if target.column(name).is_none() {
            if options.drop_orphan_columns {
                diff.changes.push(
                    Change::on_column(ChangeKind::DropColumn, name)
                        .with_values(Some(live.spec.columns[i].decl_type.clone()), None),
                );
            } else {
                diff.orphans.push(name.clone());
            }
        }
    }
    for t in &target.indexes {
        match live.spec.index(&t.name) {
            Some(l) if same_index(t, l, &diff.renames) => {}
            _ => index_changes.push(add_index(t)),
        }
    }
    diff.changes.extend(index_changes);
    Ok(diff)
}

fn null_word(not_null: bool) -> String {
    if not_null { "NOT NULL" } else { "NULL" }.to_string()
}

fn add_index(idx: &IndexSpec) -> Change {
    Change {
        index: Some(idx.name.clone()),
        columns: idx.columns.clone(),
        ..Change::new(if idx.unique {
            ChangeKind::AddUnique
        } else {
            ChangeKind::AddIndex
        })
    }
}

fn drop_index(idx: &IndexSpec) -> Change {
    Change {
        index: Some(idx.name.clone()),
        columns: idx.columns.clone(),
        ..Change::new(if idx.unique {
            ChangeKind::DropUnique
        } else {
            ChangeKind::DropIndex
        })
    }
}
