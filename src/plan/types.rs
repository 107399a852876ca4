//! The migration plan: per DocType, steps with forward and rollback SQL.

use serde::Serialize;

use crate::diff::{Change, ChangeKind};
use crate::schema::TableSpec;

/// How a step changes its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepKind {
    /// `CREATE TABLE` and its indexes.
    CreateTable,
    /// A native `ALTER TABLE`, `CREATE INDEX` or `DROP INDEX`.
    Native,
    /// The 12-step rebuild (create new, copy, drop old, rename new).
    Rebuild,
    /// An edit of the table's CREATE text in `sqlite_schema` (declared
    /// types that keep their affinity, DEFAULTs every row stores), with any
    /// native `ALTER COLUMN … NOT NULL` of the same table: no stored value
    /// changes and no row is copied.
    InPlace,
}

/// How a DocType's table is changed, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Approach {
    /// The table is created.
    Create,
    /// Native statements only (`ALTER TABLE`, `CREATE`/`DROP INDEX`): no
    /// row is copied.
    Native,
    /// The CREATE text is edited in place, with native statements: no row
    /// is copied.
    InPlace,
    /// The 12-step rebuild: every row is copied into a new table.
    Rebuild,
    /// The table is dropped.
    Drop,
}

impl Approach {
    /// `create`, `native`, `in place`, `rebuild` or `drop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Approach::Create => "create",
            Approach::Native => "native",
            Approach::InPlace => "in place",
            Approach::Rebuild => "rebuild",
            Approach::Drop => "drop",
        }
    }
}

impl std::fmt::Display for Approach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step: forward SQL and the SQL that undoes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlanStep {
    /// How the step works.
    pub kind: StepKind,
    /// The changes this step carries out.
    pub changes: Vec<Change>,
    /// Statements to apply, in order.
    pub forward: Vec<String>,
    /// Statements that undo this step, in order.
    pub rollback: Vec<String>,
}

/// Everything one DocType needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DocTypePlan {
    /// The DocType.
    pub doctype: String,
    /// Its table.
    pub table: String,
    /// All changes, in order.
    pub changes: Vec<Change>,
    /// Live columns the DocType no longer declares, kept.
    pub orphans: Vec<String>,
    /// The steps, in execution order.
    pub steps: Vec<PlanStep>,
    /// The table the DocType wants.
    #[serde(skip)]
    pub target: TableSpec,
    /// Fingerprint of the live table's schema when planned (None: no table).
    #[serde(skip)]
    pub fingerprint_before: Option<String>,
    /// `(column, SQL literal)`: NULLs the rebuild fills with a value the
    /// caller chose, for columns that become NOT NULL.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub null_fills: Vec<(String, String)>,
    /// Backups taken before the steps run (empty when the policy needs none).
    pub backups: Vec<super::backups::PlannedBackup>,
    /// How the table is changed (`None`: nothing to do).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approach: Option<Approach>,
    /// Why that way: for a rebuild, the first change that needs it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
}

impl DocTypePlan {
    /// A plan with nothing to do, for a DocType confirmed up to date.
    pub fn up_to_date(
        doctype: &str,
        target: TableSpec,
        fingerprint_before: Option<String>,
    ) -> Self {
        DocTypePlan {
            doctype: doctype.to_string(),
            table: target.name.clone(),
            changes: Vec::new(),
            orphans: Vec::new(),
            steps: Vec::new(),
            target,
            fingerprint_before,
            null_fills: Vec::new(),
            backups: Vec::new(),
            approach: None,
            why: String::new(),
        }
    }

    /// Whether the DocType is already up to date.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether the plan drops the table (verification then expects it gone).
    pub(crate) fn drops_table(&self) -> bool {
        self.changes.iter().any(|c| c.kind == ChangeKind::DropTable)
    }

    /// Forward statements of all steps, in order.
    pub fn forward_sql(&self) -> Vec<String> {
        self.steps
            .iter()
            .flat_map(|s| s.forward.iter().cloned())
            .collect()
    }

    /// Rollback statements: each step's rollback, last step first.
    pub fn rollback_sql(&self) -> Vec<String> {
        self.steps
            .iter()
            .rev()
            .flat_map(|s| s.rollback.iter().cloned())
            .collect()
    }

    /// Whether every step creates the table (a DocType whose table is
    /// new): nothing existed before, and nothing but its own objects
    /// comes of it.
    pub(crate) fn only_creates(&self) -> bool {
        self.steps.iter().all(|s| s.kind == StepKind::CreateTable)
    }

    /// Whether any step rebuilds the table (and so needs foreign keys off).
    pub fn rebuilds(&self) -> bool {
        self.steps.iter().any(|s| s.kind == StepKind::Rebuild)
    }
}

/// The plan for a set of DocTypes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MigrationPlan {
    /// One entry per DocType that has a table, in a deterministic order.
    pub doctypes: Vec<DocTypePlan>,
    /// DocTypes confirmed up to date by fingerprints alone (the start-up
    /// fast path), without introspecting their tables.
    #[serde(skip)]
    pub confirmed_by_fingerprint: usize,
}

impl MigrationPlan {
    /// DocTypes with something to do.
    pub fn pending(&self) -> impl Iterator<Item = &DocTypePlan> {
        self.doctypes.iter().filter(|d| !d.is_empty())
    }

    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.pending().next().is_none()
    }

    /// Whether any DocType's plan rebuilds a table.
    pub fn rebuilds(&self) -> bool {
        self.doctypes.iter().any(DocTypePlan::rebuilds)
    }
}
