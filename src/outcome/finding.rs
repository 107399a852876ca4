//! Findings: what validation reports about a plan.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How serious a finding is, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// For information.
    Info,
    /// Worth a look.
    Low,
    /// Should be reviewed.
    Medium,
    /// Likely to lose or change data, or a sign of trouble.
    High,
    /// The migration would fail or destroy data.
    Critical,
}

impl Severity {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validation rule, by its stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Rule {
    /// Every statement prepares and the plan replays on a shadow schema.
    #[serde(rename = "SQL001")]
    Sql001,
    /// Drop of a table that holds rows.
    #[serde(rename = "DL001")]
    Dl001,
    /// Drop of a column with values.
    #[serde(rename = "DL002")]
    Dl002,
    /// Type change that loses information.
    #[serde(rename = "DL003")]
    Dl003,
    /// Unique index on a column holding duplicates.
    #[serde(rename = "MF001")]
    Mf001,
    /// NOT NULL on a column holding NULLs with no default.
    #[serde(rename = "MF002")]
    Mf002,
    /// NOT NULL with a default: existing NULLs will be filled.
    #[serde(rename = "MF003")]
    Mf003,
    /// Destructive step whose data rollback could not restore.
    #[serde(rename = "RB001")]
    Rb001,
    /// Drift: the live table differs from the schema last recorded.
    #[serde(rename = "CF001")]
    Cf001,
    /// A linked DocType is missing.
    #[serde(rename = "CF002")]
    Cf002,
    /// Definition conflicts across the DocType set.
    #[serde(rename = "CF003")]
    Cf003,
    /// Unmanaged objects reference a column being dropped, renamed or retyped.
    #[serde(rename = "CF004")]
    Cf004,
    /// `name` would become an INTEGER PRIMARY KEY AUTOINCREMENT but holds
    /// values that are not canonical integer text. SQLite could not store
    /// them, so allowing data loss does not let this through.
    #[serde(rename = "MF004")]
    Mf004,
    /// Strict mode: a DocType quirk Frappe accepts (QK001-QK003 warnings)
    /// is refused.
    #[serde(rename = "ST001")]
    St001,
}

impl Rule {
    /// The stable code, e.g. `DL003`.
    pub fn code(self) -> &'static str {
        match self {
            Rule::Sql001 => "SQL001",
            Rule::Dl001 => "DL001",
            Rule::Dl002 => "DL002",
            Rule::Dl003 => "DL003",
            Rule::Mf001 => "MF001",
            Rule::Mf002 => "MF002",
            Rule::Mf003 => "MF003",
            Rule::Rb001 => "RB001",
            Rule::Cf001 => "CF001",
            Rule::Cf002 => "CF002",
            Rule::Cf003 => "CF003",
            Rule::Cf004 => "CF004",
            Rule::Mf004 => "MF004",
            Rule::St001 => "ST001",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One finding about a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// The rule that produced it.
    pub rule: Rule,
    /// How serious it is.
    pub severity: Severity,
    /// Whether it stops `apply`.
    pub blocking: bool,
    /// The DocType concerned.
    pub doctype: String,
    /// The table concerned.
    pub table: String,
    /// The column concerned, if any.
    pub column: Option<String>,
    /// Exact count of affected rows from the data, or None when not data-dependent.
    pub rows_affected: Option<u64>,
    /// What is wrong, for a person.
    pub message: String,
    /// What to do about it.
    pub suggestion: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{} {}] {} ({}",
            self.rule, self.severity, self.message, self.table
        )?;
        if let Some(c) = &self.column {
            write!(f, ".{c}")?;
        }
        if let Some(n) = self.rows_affected {
            write!(f, ", {n} rows")?;
        }
        write!(f, ")")
    }
}
