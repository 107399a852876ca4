//! Warnings: input the engine accepted as Frappe does, and things the
//! operator should know that did not stop a run. Never silent: the loader's
//! warnings travel with each DocType ([`DocType::warnings`]), and plans and
//! apply reports carry them (JSON key `warnings`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::model::DocType;

/// The kind of a warning, by its stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum WarningCode {
    /// `QK001`: a fieldname defined twice in one DocType. As Frappe does,
    /// one column is built from the last definition, at the first one's
    /// position.
    DuplicateField,
    /// `QK002`: a field named like a standard column (`idx`, `owner`, ...)
    /// but stored differently. The standard column is kept.
    StandardColumnRedeclared,
    /// `QK003`: a default on a Check/Int/Long Int/Float/Currency/Percent
    /// field that is not a plain number. The column gets the value Frappe's
    /// `cint`/`flt` give it (`"False"` becomes 0).
    NonNumericDefault,
    /// `QK004`: a Property Setter whose field is not in its DocType; Frappe
    /// skips it, and so does the engine.
    PropertySetterMissingField,
    /// `RUN001`: an earlier run started and never finished (its marker was
    /// left behind).
    InterruptedRun,
    /// `RUN002`: the audit log, or a run marker, could not be written.
    AuditNotWritten,
    /// `RUN003`: an online migration started on a database in
    /// rollback-journal mode, where each backfill range's commit waits for
    /// readers and blocks new ones; WAL mode (`--wal`) avoids both.
    RollbackJournal,
    /// `RUN004`: an application started while an online migration was in
    /// progress, and was not migrated (see `migrate_on_start`).
    OnlineInProgress,
}

impl WarningCode {
    /// The stable code, e.g. `QK001`.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::DuplicateField => "QK001",
            WarningCode::StandardColumnRedeclared => "QK002",
            WarningCode::NonNumericDefault => "QK003",
            WarningCode::PropertySetterMissingField => "QK004",
            WarningCode::InterruptedRun => "RUN001",
            WarningCode::AuditNotWritten => "RUN002",
            WarningCode::RollbackJournal => "RUN003",
            WarningCode::OnlineInProgress => "RUN004",
        }
    }

    /// Whether strict mode refuses input that gives this warning
    /// (the definition quirks QK001-QK003).
    pub fn refused_when_strict(self) -> bool {
        matches!(
            self,
            WarningCode::DuplicateField
                | WarningCode::StandardColumnRedeclared
                | WarningCode::NonNumericDefault
        )
    }
}

impl fmt::Display for WarningCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for WarningCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl WarningCode {
    const ALL: [WarningCode; 8] = [
        WarningCode::DuplicateField,
        WarningCode::StandardColumnRedeclared,
        WarningCode::NonNumericDefault,
        WarningCode::PropertySetterMissingField,
        WarningCode::InterruptedRun,
        WarningCode::AuditNotWritten,
        WarningCode::RollbackJournal,
        WarningCode::OnlineInProgress,
    ];
}

impl<'de> Deserialize<'de> for WarningCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        WarningCode::ALL
            .into_iter()
            .find(|c| c.as_str() == code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown warning code {code:?}")))
    }
}

/// One warning: what was accepted or noticed, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Warning {
    /// What kind of warning (stable code).
    pub code: WarningCode,
    /// The file at fault (a DocType or fixture file, `<string>`, `<code>`),
    /// or the database for run warnings.
    pub file: Option<String>,
    /// The DocType concerned.
    pub doctype: Option<String>,
    /// The field concerned.
    pub field: Option<String>,
    /// What happened, in words.
    pub message: String,
}

impl Warning {
    /// A warning about a DocType (and a field of it).
    pub(crate) fn about(
        code: WarningCode,
        file: &str,
        doctype: &str,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Warning {
            code,
            file: Some(file.to_string()),
            doctype: Some(doctype.to_string()),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    /// A warning about a run (no DocType).
    pub fn run(code: WarningCode, message: impl Into<String>) -> Self {
        Warning {
            code,
            file: None,
            doctype: None,
            field: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] ", self.code)?;
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        if let Some(doctype) = &self.doctype {
            write!(f, "DocType {doctype:?}")?;
            if let Some(field) = &self.field {
                write!(f, ", field {field:?}")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every warning of a set of DocTypes, in input order: what loading them
/// noted and the definition quirks the engine accepts (see
/// [`DocType::warnings`]).
pub fn warnings(doctypes: &[DocType]) -> Vec<Warning> {
    doctypes.iter().flat_map(DocType::warnings).collect()
}
