//! Typed changes between a live table and its target.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::schema::Affinity;

/// The kind of a schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChangeKind {
    /// A new table.
    CreateTable,
    /// A table removed.
    DropTable,
    /// A new column.
    AddColumn,
    /// A column removed.
    DropColumn,
    /// A column renamed (only from an explicit hint).
    RenameColumn,
    /// A column's declared type changed; values are converted.
    ChangeType,
    /// A column became NOT NULL or nullable.
    ChangeNullability,
    /// A column's DEFAULT changed.
    ChangeDefault,
    /// The `name` column changes between `INTEGER PRIMARY KEY AUTOINCREMENT`
    /// (autoname `autoincrement`) and text (any other naming rule). Values
    /// are kept (`7` becomes `'7'`); text becomes integers only where every
    /// name is canonical integer text (MF004).
    ChangeAutoincrement,
    /// A new (non-unique) index.
    AddIndex,
    /// A (non-unique) index removed.
    DropIndex,
    /// A new unique index.
    AddUnique,
    /// A unique index removed.
    DropUnique,
}

impl ChangeKind {
    /// The snake_case name used in JSON and history.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::CreateTable => "create_table",
            ChangeKind::DropTable => "drop_table",
            ChangeKind::AddColumn => "add_column",
            ChangeKind::DropColumn => "drop_column",
            ChangeKind::RenameColumn => "rename_column",
            ChangeKind::ChangeType => "change_type",
            ChangeKind::ChangeNullability => "change_nullability",
            ChangeKind::ChangeDefault => "change_default",
            ChangeKind::ChangeAutoincrement => "change_autoincrement",
            ChangeKind::AddIndex => "add_index",
            ChangeKind::DropIndex => "drop_index",
            ChangeKind::AddUnique => "add_unique",
            ChangeKind::DropUnique => "drop_unique",
        }
    }

    /// Whether the change can destroy or alter stored values.
    pub fn is_destructive(self) -> bool {
        matches!(
            self,
            ChangeKind::DropTable
                | ChangeKind::DropColumn
                | ChangeKind::ChangeType
                | ChangeKind::ChangeNullability
        )
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Change {
    /// What kind of change.
    pub kind: ChangeKind,
    /// The column concerned (the new name for renames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The index concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// Indexed columns, for index changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// The old value: old name, type, `NULL`/`NOT NULL`, or default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The new value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The customization layers behind the change (`Custom Field "User-x"
    /// (fixtures/custom_field.json)`, ...); empty when the DocType itself
    /// asks for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

impl Change {
    /// A change of `kind` with nothing else set.
    pub fn new(kind: ChangeKind) -> Self {
        Change {
            layers: Vec::new(),
            kind,
            column: None,
            index: None,
            columns: Vec::new(),
            from: None,
            to: None,
        }
    }

    pub(crate) fn on_column(kind: ChangeKind, column: &str) -> Self {
        Change {
            column: Some(column.to_string()),
            ..Change::new(kind)
        }
    }

    /// Whether the change can alter stored values: a type change across
    /// affinities (`TEXT` -> `INTEGER` converts `'12'` to `12`), not one
    /// that keeps the affinity (`VARCHAR(140)` -> `TEXT`), whose values
    /// stay as stored whichever way the table is changed.
    pub(crate) fn converts_values(&self) -> bool {
        match self.kind {
            ChangeKind::ChangeType => {
                let affinity = |t: &Option<String>| Affinity::of(t.as_deref().unwrap_or_default());
                affinity(&self.from) != affinity(&self.to)
            }
            ChangeKind::ChangeAutoincrement => true,
            _ => false,
        }
    }

    pub(crate) fn with_values(mut self, from: Option<String>, to: Option<String>) -> Self {
        self.from = from;
        self.to = to;
        self
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(c) = &self.column {
            write!(f, " {c}")?;
        }
        if let Some(i) = &self.index {
            write!(f, " {i} ({})", self.columns.join(", "))?;
        }
        match (&self.from, &self.to) {
            (Some(a), Some(b)) => write!(f, ": {a} -> {b}"),
            (None, Some(b)) => write!(f, ": -> {b}"),
            (Some(a), None) => write!(f, ": {a} -> (none)"),
            (None, None) => Ok(()),
        }
    }
}
