//! The feasibility report: everything that is checked before a rollback
//! runs, as typed [`Reason`]s with stable codes.
//!
//! A plan is feasible when it has no refusals. Two reasons only protect
//! data and become warnings with `allow_data_loss`:
//! [`Reason::DataWouldBeLost`] (undoing a CREATE TABLE or ADD COLUMN would
//! drop rows or values written since) and [`Reason::BackupNotRecorded`]
//! (the forward step destroyed or converted values and no backup covers
//! them, so the schema can come back but those values cannot).

use std::collections::HashMap;
use std::path::PathBuf;

use rusqlite::Connection;
use serde::Serialize;

use crate::backup::{BackupManager, BackupStrategy};
use crate::diff::{Change, ChangeKind};
use crate::error::{Error, RefusedPlan, RefusedRollback, Result};
use crate::execution::error_chain;
use crate::history::{HistoryRow, MigrationId, MigrationStatus};
use crate::ident::quote;
use crate::schema::{SchemaObject, SchemaSnapshot};

use super::compare::{SchemaDifference, differences, objects_from_json};
use super::select::{Selected, select};
use super::{RollbackOptions, RollbackTarget};

/// Why a rollback is refused (or, for the data-only reasons under
/// `allow_data_loss`, what it warns about). Serialized with a `code` tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// The target selects no completed migration.
    NothingToRollBack {
        /// The target, in words.
        target: String,
    },
    /// The migration is not `completed` (failed, already rolled back, ...).
    WrongStatus {
        /// The migration.
        id: MigrationId,
        /// Its status.
        status: MigrationStatus,
    },
    /// Later completed migrations of the same DocType exist; roll them back
    /// first, or use `cascade`.
    NotLatest {
        /// The migration.
        id: MigrationId,
        /// Its DocType.
        doctype: String,
        /// The later completed migrations, oldest first.
        later: Vec<MigrationId>,
    },
    /// The history row has forward SQL but no rollback SQL.
    NoRollbackSql {
        /// The migration.
        id: MigrationId,
    },
    /// The history row's rollback SQL holds a statement the engine never
    /// generates (a transaction statement, ATTACH, VACUUM, ...): the row was
    /// edited. Nothing is run.
    UnsafeRollbackSql {
        /// The migration.
        id: MigrationId,
        /// The statement, as stored.
        statement: String,
        /// Why it is not engine SQL.
        reason: String,
    },
    /// The stored rollback SQL differs from the SQL the engine derives from
    /// the row's typed changes and recorded schemas: the row was edited.
    /// Nothing is run.
    RollbackSqlMismatch {
        /// The migration.
        id: MigrationId,
        /// Index of the first statement that differs.
        statement: usize,
        /// The stored statement there (None: the stored SQL is shorter).
        stored: Option<String>,
        /// The derived statement there (None: the derived SQL is shorter).
        derived: Option<String>,
    },
    /// The history row cannot be read (schema or changes are not valid JSON).
    UnreadableHistory {
        /// The migration.
        id: MigrationId,
        /// What is wrong.
        message: String,
    },
    /// The table's schema is not the one the migration left behind.
    Drift {
        /// The migration.
        id: MigrationId,
        /// Its table.
        table: String,
        /// What the recorded schema was compared with: `None` for the live
        /// database, or the newer migration (rolled back first in this
        /// operation) whose recorded `schema_before` it should equal.
        against: Option<MigrationId>,
        /// What differs.
        differences: Vec<SchemaDifference>,
    },
    /// A backup named in the history row does not exist.
    BackupMissing {
        /// The migration.
        id: MigrationId,
        /// The backup file.
        path: PathBuf,
    },
    /// A backup exists but does not verify (corrupt, wrong key, truncated,
    /// not authenticated with the configured key), belongs to another
    /// table, migration or database, is not the file history recorded (its
    /// SHA-256 differs), or is not a regular file inside the backup
    /// directory.
    BackupInvalid {
        /// The migration.
        id: MigrationId,
        /// The backup file.
        path: PathBuf,
        /// The error.
        error: String,
    },
    /// The forward step destroyed or converted values (`lost`: column
    /// names, or `*` for the whole table) and no backup covers them.
    BackupNotRecorded {
        /// The migration.
        id: MigrationId,
        /// Its table.
        table: String,
        /// What cannot be restored.
        lost: Vec<String>,
    },
    /// Undoing the migration drops a table it created (`column` None) or a
    /// column it added that holds data written since.
    DataWouldBeLost {
        /// The migration.
        id: MigrationId,
        /// Its table.
        table: String,
        /// The column, or None for the whole table.
        column: Option<String>,
        /// Rows holding data (for a column: rows whose value is not the
        /// column default).
        rows: u64,
    },
    /// Between planning and taking the write lock, another process changed
    /// what would be rolled back.
    ChangedMeanwhile {
        /// What changed.
        message: String,
    },
}

impl Reason {
    /// The stable code (the JSON `code` tag).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NothingToRollBack { .. } => "nothing_to_roll_back",
            Reason::WrongStatus { .. } => "wrong_status",
            Reason::NotLatest { .. } => "not_latest",
            Reason::NoRollbackSql { .. } => "no_rollback_sql",
            Reason::UnsafeRollbackSql { .. } => "unsafe_rollback_sql",
            Reason::RollbackSqlMismatch { .. } => "rollback_sql_mismatch",
            Reason::UnreadableHistory { .. } => "unreadable_history",
            Reason::Drift { .. } => "drift",
            Reason::BackupMissing { .. } => "backup_missing",
            Reason::BackupInvalid { .. } => "backup_invalid",
            Reason::BackupNotRecorded { .. } => "backup_not_recorded",
            Reason::DataWouldBeLost { .. } => "data_would_be_lost",
            Reason::ChangedMeanwhile { .. } => "changed_meanwhile",
        }
    }

    /// Whether `allow_data_loss` turns this refusal into a warning.
    pub fn overridable(&self) -> bool {
        matches!(
            self,
            Reason::DataWouldBeLost { .. } | Reason::BackupNotRecorded { .. }
        )
    }

    /// The migration the reason is about, if one.
    pub fn migration(&self) -> Option<MigrationId> {
        match self {
            Reason::WrongStatus { id, .. }
            | Reason::NotLatest { id, .. }
            | Reason::NoRollbackSql { id }
            | Reason::UnsafeRollbackSql { id, .. }
            | Reason::RollbackSqlMismatch { id, .. }
            | Reason::UnreadableHistory { id, .. }
            | Reason::Drift { id, .. }
            | Reason::BackupMissing { id, .. }
            | Reason::BackupInvalid { id, .. }
            | Reason::BackupNotRecorded { id, .. }
            | Reason::DataWouldBeLost { id, .. } => Some(*id),
            Reason::NothingToRollBack { .. } | Reason::ChangedMeanwhile { .. } => None,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids = |v: &[MigrationId]| {
            v.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Reason::NothingToRollBack { target } => {
                write!(
                    f,
                    "nothing to roll back: {target} has no completed migration"
                )
            }
            Reason::WrongStatus { id, status } => write!(
                f,
                "migration {id} is {status}; only completed migrations can be rolled back"
            ),
            Reason::NotLatest { id, doctype, later } => write!(
                f,
                "migration {id} is not the latest of DocType {doctype:?}: later completed migration(s) {} must be rolled back first (or use cascade)",
                ids(later)
            ),
            Reason::NoRollbackSql { id } => write!(f, "migration {id} has no rollback SQL"),
            Reason::UnsafeRollbackSql {
                id,
                statement,
                reason,
            } => write!(
                f,
                "migration {id}: its stored rollback SQL was edited ({reason}): {}",
                crate::db::sqlguard::printable(statement)
            ),
            Reason::RollbackSqlMismatch {
                id,
                statement,
                stored,
                derived,
            } => {
                let show = |s: &Option<String>| {
                    s.as_deref()
                        .map_or_else(|| "(none)".to_string(), crate::db::sqlguard::printable)
                };
                write!(
                    f,
                    "migration {id}: its stored rollback SQL differs from the SQL derived from its \
                     recorded changes at statement {statement} (stored: {}; derived: {}); the row \
                     was edited",
                    show(stored),
                    show(derived)
                )
            }
            Reason::UnreadableHistory { id, message } => {
                write!(f, "migration {id}: {message}")
            }
            Reason::Drift {
                id,
                table,
                against,
                differences,
            } => {
                let base = match against {
                    None => "the live schema".to_string(),
                    Some(n) => format!("the schema before migration {n}"),
                };
                let list: Vec<String> = differences.iter().map(|d| d.to_string()).collect();
                write!(
                    f,
                    "migration {id}: table {table:?} drifted: {base} differs from the schema recorded after the migration: {}",
                    list.join("; ")
                )
            }
            Reason::BackupMissing { id, path } => {
                write!(f, "migration {id}: backup {} is missing", path.display())
            }
            Reason::BackupInvalid { id, path, error } => write!(
                f,
                "migration {id}: backup {} does not verify: {error}",
                path.display()
            ),
            Reason::BackupNotRecorded { id, table, lost } => write!(
                f,
                "migration {id} destroyed or converted data in table {table:?} ({}) and no backup covers it; the values cannot be restored (allow data loss to roll back the schema only)",
                lost.join(", ")
            ),
            Reason::DataWouldBeLost {
                id,
                table,
                column: None,
                rows,
            } => write!(
                f,
                "migration {id} created table {table:?}; rolling it back drops the table with its {rows} row(s) (allow data loss to proceed)"
            ),
            Reason::DataWouldBeLost {
                id,
                table,
                column: Some(c),
                rows,
            } => write!(
                f,
                "migration {id} added column {c:?} to table {table:?}; rolling it back drops the values of {rows} row(s) (allow data loss to proceed)"
            ),
            Reason::ChangedMeanwhile { message } => {
                write!(f, "the history changed while planning: {message}")
            }
        }
    }
}

/// How a backup gives data back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RestoreMode {
    /// A dropped table, recreated empty by the rollback SQL, gets every row
    /// of its full backup back (with their rowids).
    ReplaceTable,
    /// The full backup is restored into a scratch table; for the rows that
    /// still exist (matched by primary key, or rowid without one), the
    /// columns the forward step destroyed or converted are set from it.
    /// Rows added since the migration are kept; rows deleted since stay
    /// deleted.
    MergeColumns,
    /// A column backup updates its columns in the rows it matches by
    /// primary key (or rowid), like [`RestoreMode::MergeColumns`].
    RestoreColumns,
}

/// A backup that the rollback restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlannedRestore {
    /// The backup file.
    pub path: PathBuf,
    /// How it is restored.
    pub mode: RestoreMode,
    /// The columns restored (empty for [`RestoreMode::ReplaceTable`]).
    pub columns: Vec<String>,
    /// Rows in the backup.
    pub backup_rows: u64,
    /// The backup's SHA-256 (its header checksum, see
    /// [`crate::BackupInfo::header_sha256`]) as verified while planning:
    /// the restore refuses a file that no longer matches it.
    pub sha256: String,
}

/// One migration to undo.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RollbackStep {
    /// The migration.
    pub id: MigrationId,
    /// Its DocType.
    pub doctype: String,
    /// Its table.
    pub table: String,
    /// Its per-DocType version.
    pub version: i64,
    /// Its batch.
    pub batch_id: Option<String>,
    /// Included because `cascade` asked for later migrations.
    pub cascaded: bool,
    /// The recorded rollback statements, run in order.
    pub statements: Vec<String>,
    /// Backups verified and restored after the statements.
    pub restores: Vec<PlannedRestore>,
    /// Every backup named in the history row (all are verified).
    pub backups: Vec<PathBuf>,
    /// The table's schema before the migration: what the rollback must
    /// produce.
    #[serde(skip)]
    pub schema_before: Vec<SchemaObject>,
}

/// The feasibility report and the plan: what would be undone, in which
/// order, with which statements and backups, and why not (refusals).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RollbackPlan {
    /// What was asked for.
    pub target: RollbackTarget,
    /// Whether later migrations are included.
    pub cascade: bool,
    /// Whether data-only refusals were let through.
    pub allow_data_loss: bool,
    /// True when there are no refusals.
    pub feasible: bool,
    /// The migrations to undo, newest first (the execution order).
    pub steps: Vec<RollbackStep>,
    /// Why the rollback is refused (empty when feasible).
    pub refusals: Vec<Reason>,
    /// Data-only reasons let through by `allow_data_loss`.
    pub warnings: Vec<Reason>,
}

impl RollbackPlan {
    /// One line: the first refusal and how many there are.
    pub fn summary(&self) -> String {
        match self.refusals.first() {
            None => format!("{} migration(s) can be rolled back", self.steps.len()),
            Some(r) => format!("{} reason(s); first: {r}", self.refusals.len()),
        }
    }
}

impl RefusedPlan for RollbackPlan {
    fn summary(&self) -> String {
        RollbackPlan::summary(self)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl RefusedRollback {
    pub(crate) fn new(plan: RollbackPlan) -> Self {
        RefusedRollback(Box::new(plan))
    }

    /// The refused plan.
    pub fn plan(&self) -> &RollbackPlan {
        self.0
            .as_any()
            .downcast_ref()
            .expect("only the rollback layer makes a RefusedRollback, from a RollbackPlan")
    }

    /// The refused plan, by value.
    pub fn into_plan(self) -> RollbackPlan {
        *self
            .0
            .into_any()
            .downcast()
            .expect("only the rollback layer makes a RefusedRollback, from a RollbackPlan")
    }
}

impl std::ops::Deref for RefusedRollback {
    type Target = RollbackPlan;

    fn deref(&self) -> &RollbackPlan {
        self.plan()
    }
}

/// What a forward migration destroyed or converted (in the table's original
/// column names).
struct Lost {
    table: bool,
    columns: Vec<String>,
}

/// Selects and checks. With `backups` None the backups are not verified and
/// no restores are planned (the cheap re-check under the lock).
pub(crate) fn check(
    conn: &Connection,
    target: &RollbackTarget,
    options: &RollbackOptions,
    backups: Option<&BackupManager>,
) -> Result<RollbackPlan> {
    let (selected, mut reasons) = select(conn, target, options.cascade)?;
    // Per table (lowercase): the schema it will have once the newer
    // selected migrations are undone, and the migration that leaves it.
    let mut simulated: HashMap<String, (Vec<SchemaObject>, MigrationId)> = HashMap::new();
    let mut steps = Vec::new();
    // A migration with later ones left in place (no cascade) is refused as
    // not the latest; comparing its recorded schema with the live one would
    // only repeat that as drift.
    let not_latest: Vec<MigrationId> = reasons
        .iter()
        .filter_map(|r| match r {
            Reason::NotLatest { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    for Selected { row, cascaded } in selected {
        let skip_drift = not_latest.contains(&row.id);
        let (step, step_reasons) =
            check_one(conn, &row, cascaded, skip_drift, &mut simulated, backups)?;
        reasons.extend(step_reasons);
        steps.push(step);
    }
    let (warnings, refusals): (Vec<Reason>, Vec<Reason>) = reasons
        .into_iter()
        .partition(|r| options.allow_data_loss && r.overridable());
    Ok(RollbackPlan {
        target: target.clone(),
        cascade: options.cascade,
        allow_data_loss: options.allow_data_loss,
        feasible: refusals.is_empty(),
        steps,
        refusals,
        warnings,
    })
}

fn check_one(
    conn: &Connection,
    row: &HistoryRow,
    cascaded: bool,
    skip_drift: bool,
    simulated: &mut HashMap<String, (Vec<SchemaObject>, MigrationId)>,
    backups: Option<&BackupManager>,
) -> Result<(RollbackStep, Vec<Reason>)> {
    let id = row.id;
    let table = row.table_name.clone();
    let mut reasons = Vec::new();
    let mut step = RollbackStep {
        id,
        doctype: row.doctype.clone(),
        table: table.clone(),
        version: row.version,
        batch_id: row.batch_id.clone(),
        cascaded,
        statements: row.rollback_sql.clone(),
        restores: Vec::new(),
        backups: Vec::new(),
        schema_before: Vec::new(),
    };
    if row.rollback_sql.is_empty() && !row.sql.is_empty() {
        reasons.push(Reason::NoRollbackSql { id });
    }
    // A statement the engine never generates means the row was edited:
    // refuse before anything runs (the SQL guard would refuse it at run
    // time too, inside the transaction).
    for statement in &row.rollback_sql {
        if let Err(reason) = crate::db::sqlguard::check_planned_text(statement) {
            reasons.push(Reason::UnsafeRollbackSql {
                id,
                statement: statement.clone(),
                reason,
            });
        }
    }
    let unreadable = |message: String| Reason::UnreadableHistory { id, message };
    let (before, after) = match (
        objects_from_json(&row.schema_before),
        objects_from_json(&row.schema_after),
    ) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(e), _) | (_, Err(e)) => {
            reasons.push(unreadable(e));
            return Ok((step, reasons));
        }
    };
    step.schema_before = before.clone();

    // What runs is derived from the row's typed changes and schemas; the
    // stored text must say the same, or the row was edited.
    if !row.rollback_sql.is_empty() {
        match super::derive::derive(row, &before, &after) {
            Ok(derived) if derived == row.rollback_sql => step.statements = derived,
            Ok(derived) => {
                let at = derived
                    .iter()
                    .zip(&row.rollback_sql)
                    .position(|(d, s)| d != s)
                    .unwrap_or(derived.len().min(row.rollback_sql.len()));
                reasons.push(Reason::RollbackSqlMismatch {
                    id,
                    statement: at,
                    stored: row.rollback_sql.get(at).cloned(),
                    derived: derived.get(at).cloned(),
                });
            }
            Err(message) => reasons.push(unreadable(format!(
                "its rollback SQL cannot be derived from the recorded changes: {message}"
            ))),
        }
    }

    // Drift: against the live schema, or against what the newer migration
    // (undone first) recorded as its schema before.
    let key = table.to_ascii_lowercase();
    let (current, against) = match simulated.get(&key) {
        Some((objs, newer)) => (objs.clone(), Some(*newer)),
        None => (SchemaSnapshot::read_table(conn, &table)?.objects, None),
    };
    let diffs = differences(&after, &current);
    if !diffs.is_empty() && !skip_drift {
        reasons.push(Reason::Drift {
            id,
            table: table.clone(),
            against,
            differences: diffs,
        });
    }
    simulated.insert(key, (before, id));

    let changes: Vec<Change> = match serde_json::from_value(row.changes.clone()) {
        Ok(c) => c,
        Err(e) => {
            reasons.push(unreadable(format!("recorded changes are unreadable: {e}")));
            return Ok((step, reasons));
        }
    };

    // Backups: every one named must exist, verify, come from this database
    // and be the file history recorded (its SHA-256, when recorded).
    step.backups = backup_paths(row.backup_path.as_deref());
    let recorded = backup_digests(row.backup_sha256.as_deref(), step.backups.len());
    let mut verified = Vec::new();
    let mut backup_problem = false;
    for (i, path) in step.backups.iter().enumerate() {
        if !path.exists() {
            reasons.push(Reason::BackupMissing {
                id,
                path: path.clone(),
            });
            backup_problem = true;
            continue;
        }
        let Some(manager) = backups else { continue };
        match manager.verify_for(conn, path) {
            Ok(info)
                if recorded
                    .as_ref()
                    .is_some_and(|r| !r[i].eq_ignore_ascii_case(&info.header_sha256)) =>
            {
                reasons.push(Reason::BackupInvalid {
                    id,
                    path: path.clone(),
                    error: format!(
                        "it is not the backup the migration recorded: its SHA-256 is {}, history records {} (the file was replaced)",
                        info.header_sha256,
                        recorded.as_ref().map_or("", |r| r[i].as_str())
                    ),
                });
                backup_problem = true;
            }
            Ok(info) if !info.table.eq_ignore_ascii_case(&table) => {
                reasons.push(Reason::BackupInvalid {
                    id,
                    path: path.clone(),
                    error: format!("it is a backup of table {:?}, not {table:?}", info.table),
                });
                backup_problem = true;
            }
            Ok(info) if info.migration_id.is_some_and(|m| m != id) => {
                reasons.push(Reason::BackupInvalid {
                    id,
                    path: path.clone(),
                    error: format!(
                        "it belongs to migration {}",
                        info.migration_id.unwrap_or(id)
                    ),
                });
                backup_problem = true;
            }
            Ok(info) => verified.push(info),
            Err(e) => {
                reasons.push(Reason::BackupInvalid {
                    id,
                    path: path.clone(),
                    error: error_chain(&e),
                });
                backup_problem = true;
            }
        }
    }

    // What the forward step destroyed, and which backups give it back.
    let lost = lost_data(row, &changes);
    if backups.is_some() && !backup_problem {
        let (restores, uncovered) = plan_restores(&lost, &verified);
        step.restores = restores;
        if !uncovered.is_empty() {
            reasons.push(Reason::BackupNotRecorded {
                id,
                table: table.clone(),
                lost: uncovered,
            });
        }
    }

    // Data written since that undoing the migration would drop.
    reasons.extend(data_since(conn, id, &table, &changes)?);
    Ok((step, reasons))
}

/// The digests in a history row's `backup_sha256`, one per backup path:
/// `None` when none were recorded (rows written before they were). A
/// value that is not a JSON array of as many strings as there are paths
/// gives one digest nothing can match, so every backup is refused.
fn backup_digests(text: Option<&str>, paths: usize) -> Option<Vec<String>> {
    let text = text.map(str::trim).filter(|t| !t.is_empty())?;
    match serde_json::from_str::<Vec<String>>(text) {
        Ok(v) if v.len() == paths => Some(v),
        _ => Some(vec![format!("(unreadable: {text:?})"); paths]),
    }
}

/// The paths in a history row's `backup_path`: a JSON array of paths (as
/// the applier writes it), or a single path as plain text.
pub fn backup_paths(text: Option<&str>) -> Vec<PathBuf> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Vec::new();
    };
    if text.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(text) {
            return v.into_iter().map(PathBuf::from).collect();
        }
    }
    vec![PathBuf::from(text)]
}

fn lost_data(row: &HistoryRow, changes: &[Change]) -> Lost {
    let original = |name: &str| -> String {
        changes
            .iter()
            .find(|c| {
                c.kind == ChangeKind::RenameColumn
                    && c.column
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|c| c.from.clone())
            .unwrap_or_else(|| name.to_string())
    };
    let table = changes.iter().any(|c| c.kind == ChangeKind::DropTable);
    let mut columns: Vec<String> = Vec::new();
    // A rebuild that copied no rows found an empty table: nothing to lose.
    if row.affected_rows != Some(0) {
        for c in changes {
            let Some(col) = c.column.as_deref() else {
                continue;
            };
            let name = match c.kind {
                ChangeKind::DropColumn => col.to_string(),
                ChangeKind::ChangeType if c.converts_values() => original(col),
                // Only becoming NOT NULL changes values (NULLs are filled).
                ChangeKind::ChangeNullability
                    if c.to
                        .as_deref()
                        .is_some_and(|t| t.eq_ignore_ascii_case("NOT NULL")) =>
                {
                    original(col)
                }
                _ => continue,
            };
            if !columns.iter().any(|x| x.eq_ignore_ascii_case(&name)) {
                columns.push(name);
            }
        }
    }
    Lost { table, columns }
}

/// The restores that give `lost` back from the verified backups, and what
/// stays uncovered (`*` for a whole table).
fn plan_restores(
    lost: &Lost,
    verified: &[crate::backup::BackupInfo],
) -> (Vec<PlannedRestore>, Vec<String>) {
    let full = verified
        .iter()
        .find(|b| b.strategy == BackupStrategy::FullTable && b.base.is_none())
        .or_else(|| {
            verified
                .iter()
                .find(|b| b.strategy == BackupStrategy::FullTable)
        });
    if lost.table {
        return match full {
            Some(b) => (
                vec![PlannedRestore {
                    path: b.path.clone(),
                    mode: RestoreMode::ReplaceTable,
                    columns: Vec::new(),
                    backup_rows: b.row_count,
                    sha256: b.header_sha256.clone(),
                }],
                Vec::new(),
            ),
            None => (Vec::new(), vec!["*".to_string()]),
        };
    }
    if lost.columns.is_empty() {
        return (Vec::new(), Vec::new());
    }
    if let Some(b) = full {
        return (
            vec![PlannedRestore {
                path: b.path.clone(),
                mode: RestoreMode::MergeColumns,
                columns: lost.columns.clone(),
                backup_rows: b.row_count,
                sha256: b.header_sha256.clone(),
            }],
            Vec::new(),
        );
    }
    let mut restores = Vec::new();
    let mut covered: Vec<String> = Vec::new();
    for b in verified {
        let BackupStrategy::Columns(cols) = &b.strategy else {
            continue;
        };
        let useful: Vec<&String> = cols
            .iter()
            .filter(|c| lost.columns.iter().any(|l| l.eq_ignore_ascii_case(c)))
            .collect();
        if useful.is_empty() {
            continue;
        }
        covered.extend(useful.into_iter().cloned());
        restores.push(PlannedRestore {
            path: b.path.clone(),
            mode: RestoreMode::RestoreColumns,
            columns: cols.clone(),
            backup_rows: b.row_count,
            sha256: b.header_sha256.clone(),
        });
    }
    let uncovered = lost
        .columns
        .iter()
        .filter(|l| !covered.iter().any(|c| c.eq_ignore_ascii_case(l)))
        .cloned()
        .collect();
    (restores, uncovered)
}

/// Rows of a table the migration created, and values in columns it added,
/// that exist now and that undoing it would drop.
fn data_since(
    conn: &Connection,
    id: MigrationId,
    table: &str,
    changes: &[Change],
) -> Result<Vec<Reason>> {
    let mut out = Vec::new();
    let live = live_columns(conn, table)?;
    if live.is_empty() {
        return Ok(out);
    }
    if changes.iter().any(|c| c.kind == ChangeKind::CreateTable) {
        let rows = count(conn, &format!("SELECT count(*) FROM main.{}", quote(table)))?;
        if rows > 0 {
            out.push(Reason::DataWouldBeLost {
                id,
                table: table.to_string(),
                column: None,
                rows,
            });
        }
        return Ok(out);
    }
    for c in changes.iter().filter(|c| c.kind == ChangeKind::AddColumn) {
        let Some(name) = c.column.as_deref() else {
            continue;
        };
        // Renamed or dropped by a later migration: nothing of it is live.
        let Some((live_name, default)) = live.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))
        else {
            continue;
        };
        let col = quote(live_name);
        let cond = match default.as_deref().filter(|d| is_plain_literal(d)) {
            Some(d) => format!("NOT ({col} IS {d})"),
            None => format!("{col} IS NOT NULL"),
        };
        let rows = count(
            conn,
            &format!("SELECT count(*) FROM main.{} WHERE {cond}", quote(table)),
        )?;
        if rows > 0 {
            out.push(Reason::DataWouldBeLost {
                id,
                table: table.to_string(),
                column: Some(live_name.clone()),
                rows,
            });
        }
    }
    Ok(out)
}

/// `(name, dflt_value)` of a live table's columns; empty when it does not exist.
fn live_columns(conn: &Connection, table: &str) -> Result<Vec<(String, Option<String>)>> {
    const SQL: &str = "SELECT name, dflt_value FROM pragma_table_info(?1) ORDER BY cid";
    let mut stmt = conn.prepare_cached(SQL).map_err(|e| Error::sql(SQL, e))?;
    stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sql(SQL, e))
}

fn count(conn: &Connection, sql: &str) -> Result<u64> {
    conn.query_row(sql, [], |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
        .map_err(|e| Error::sql(sql, e))
}

/// Whether a column default (as `pragma_table_info` shows it) is a plain
/// literal that can be compared in SQL: NULL, TRUE/FALSE, a number, or a
/// single-quoted string. Anything else is not pasted into SQL.
fn is_plain_literal(d: &str) -> bool {
    let d = d.trim();
    if ["NULL", "TRUE", "FALSE"]
        .iter()
        .any(|k| d.eq_ignore_ascii_case(k))
    {
        return true;
    }
    if let Some(inner) = d.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return !inner.replace("''", "").contains('\'');
    }
    let body = d.strip_prefix(['-', '+']).unwrap_or(d);
    !body.is_empty()
        && body.chars().all(|c| c.is_ascii_digit() || c == '.')
        && body.chars().filter(|c| *c == '.').count() <= 1
        && body.chars().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_literals_only() {
        for ok in ["0", "-1.5", "'x'", "'it''s'", "NULL", "true", "+3"] {
            assert!(is_plain_literal(ok), "{ok}");
        }
        for bad in [
            "",
            "'a' || 'b'",
            "(1)",
            "CURRENT_TIMESTAMP",
            "1e5",
            "'a'b'",
            ".",
        ] {
            assert!(!is_plain_literal(bad), "{bad}");
        }
    }

    #[test]
    fn backup_paths_accepts_json_arrays_and_plain_paths() {
        assert!(backup_paths(None).is_empty());
        assert!(backup_paths(Some(" ")).is_empty());
        assert_eq!(
            backup_paths(Some(r#"["/a/x.dmbak","/b/y.dmbak"]"#)),
            [PathBuf::from("/a/x.dmbak"), PathBuf::from("/b/y.dmbak")]
        );
        assert_eq!(
            backup_paths(Some("/a/x.dmbak")),
            [PathBuf::from("/a/x.dmbak")]
        );
    }
}
