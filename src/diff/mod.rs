//! Diff: compares a live table with its target spec and lists typed changes.
//!
//! Renames come only from explicit hints; columns the DocType no longer
//! declares are orphans (kept and reported) unless the caller asks to drop
//! them; indexes the engine did not create are never dropped.

mod change;

pub use change::{Change, ChangeKind};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::schema::{IndexSpec, LiveTable, TableSpec, normalize_type};

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
        if l.primary_key != t.primary_key {
            return Err(unsupported(format!(
                "column {:?} would {} the primary key; changing the primary key is not supported",
                t.name,
                if t.primary_key {
                    "become"
                } else {
                    "stop being"
                }
            )));
        }
        if normalize_type(&l.decl_type) != normalize_type(&t.decl_type) {
            diff.changes.push(
                Change::on_column(ChangeKind::ChangeType, &t.name)
                    .with_values(Some(l.decl_type.clone()), Some(t.decl_type.clone())),
            );
        }
        // An INTEGER PRIMARY KEY is never reported NOT NULL; nothing to compare.
        let integer_pk = t.primary_key && !t.not_null;
        if !integer_pk && l.not_null != t.not_null {
            diff.changes.push(
                Change::on_column(ChangeKind::ChangeNullability, &t.name)
                    .with_values(Some(null_word(l.not_null)), Some(null_word(t.not_null))),
            );
        }
        if l.default != t.default {
            diff.changes.push(
                Change::on_column(ChangeKind::ChangeDefault, &t.name)
                    .with_values(l.default.clone(), t.default.clone()),
            );
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

fn same_index(target: &IndexSpec, live: &IndexSpec, renames: &[(String, String)]) -> bool {
    let renamed = |c: &String| {
        renames
            .iter()
            .find(|(old, _)| old.eq_ignore_ascii_case(c))
            .map(|(_, new)| new.clone())
            .unwrap_or_else(|| c.clone())
    };
    target.unique == live.unique
        && target.columns.len() == live.columns.len()
        && target
            .columns
            .iter()
            .zip(live.columns.iter().map(renamed))
            .all(|(a, b)| a.eq_ignore_ascii_case(&b))
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
