//! Turns a [`TableDiff`] into steps with forward and rollback SQL.
//!
//! Renames, added columns and index changes run as native statements with
//! exact native inverses. Nullability, DEFAULT changes and type changes
//! that keep the affinity take the fast paths ([`super::fastpath`]) where
//! they are proved safe. Anything else (affinity changes, drops, columns
//! ALTER cannot add, the naming rule) makes the whole table one rebuild;
//! its rollback is a rebuild back to the original CREATE TABLE text. Each
//! table's plan says which ([`Approach`]) and why.

use crate::diff::{Change, ChangeKind, TableDiff};
use crate::error::Result;
use crate::ident::quote;
use crate::schema::{LiveTable, TableSpec};

use super::fastpath::{FastPaths, fast_steps};
use super::rebuild::{rebuild_forward, rebuild_rollback};
use super::types::{Approach, DocTypePlan, PlanStep, StepKind};

/// Plans one DocType's table.
pub fn plan_table(
    diff: &TableDiff,
    target: &TableSpec,
    live: Option<&LiveTable>,
    fingerprint_before: Option<String>,
    null_fills: &[(String, String)],
    fast: &FastPaths,
) -> Result<DocTypePlan> {
    let mut plan = DocTypePlan {
        doctype: diff.doctype.clone(),
        table: diff.table.clone(),
        changes: diff.changes.clone(),
        orphans: diff.orphans.clone(),
        steps: Vec::new(),
        target: target.clone(),
        fingerprint_before,
        null_fills: null_fills.to_vec(),
        backups: Vec::new(),
        approach: None,
        why: String::new(),
    };
    if diff.is_empty() {
        return Ok(plan);
    }
    let Some(live) = live else {
        plan.steps.push(create_step(diff, target));
        plan.approach = Some(Approach::Create);
        plan.why = "the table does not exist".into();
        return Ok(plan);
    };
    let fast = match rebuild_reason(diff, target) {
        Some(why) => Err(why),
        None => fast_steps(diff, target, live, null_fills, fast),
    };
    match fast {
        Ok(steps) => {
            let in_place = steps.iter().any(|s| s.kind == StepKind::InPlace);
            // Index drops, then the fast steps, then the other native steps.
            // A NULL fill must not run under a unique index this plan drops
            // (the filled values may repeat), and a new unique index is
            // built over the filled values. The fast steps name columns by
            // their live names, so they also come before the renames.
            let (drops, rest): (Vec<_>, Vec<_>) =
                native_steps(diff, target, live).into_iter().partition(|s| {
                    s.changes
                        .iter()
                        .all(|c| matches!(c.kind, ChangeKind::DropIndex | ChangeKind::DropUnique))
                });
            plan.steps = drops;
            plan.steps.extend(steps);
            plan.steps.extend(rest);
            let (approach, why) = if in_place {
                (
                    Approach::InPlace,
                    "only the CREATE text changes (declared types that keep their affinity, \
                     DEFAULTs every row stores); no row is copied",
                )
            } else {
                (
                    Approach::Native,
                    "native statements (ALTER TABLE, CREATE/DROP INDEX) make every change; no row is copied",
                )
            };
            plan.approach = Some(approach);
            plan.why = why.into();
        }
        Err(why) => {
            plan.steps.push(PlanStep {
                kind: StepKind::Rebuild,
                changes: diff.changes.clone(),
                forward: rebuild_forward(diff, target, live, null_fills)?,
                rollback: rebuild_rollback(diff, target, live)?,
            });
            plan.approach = Some(Approach::Rebuild);
            plan.why = why;
        }
    }
    Ok(plan)
}

/// Plans dropping the table of a DocType that no longer has one (it became
/// single or virtual). The rollback recreates the table, its indexes and
/// triggers from their original SQL; the rows come back from a backup.
pub fn plan_drop_table(
    doctype: &str,
    live: &LiveTable,
    fingerprint_before: Option<String>,
) -> DocTypePlan {
    let change = Change::new(ChangeKind::DropTable);
    let mut rollback = vec![live.sql.clone()];
    rollback.extend(live.indexes.iter().filter_map(|i| i.sql.clone()));
    rollback.extend(live.triggers.iter().filter_map(|t| t.sql.clone()));
    DocTypePlan {
        doctype: doctype.to_string(),
        table: live.spec.name.clone(),
        changes: vec![change.clone()],
        orphans: Vec::new(),
        steps: vec![PlanStep {
            kind: StepKind::Native,
            changes: vec![change],
            forward: vec![format!("DROP TABLE {}", quote(&live.spec.name))],
            rollback,
        }],
        target: TableSpec {
            name: live.spec.name.clone(),
            columns: Vec::new(),
            indexes: Vec::new(),
            autoincrement: false,
        },
        fingerprint_before,
        null_fills: Vec::new(),
        backups: Vec::new(),
        approach: Some(Approach::Drop),
        why: "the DocType no longer has a table".into(),
    }
}

/// Why the diff needs the rebuild whatever the fast paths could do:
/// changes neither ALTER TABLE nor a schema-text edit can make. `None`
/// when there is none.
fn rebuild_reason(diff: &TableDiff, target: &TableSpec) -> Option<String> {
    diff.changes.iter().find_map(|c| {
        let column = c.column.as_deref().unwrap_or_default();
        match c.kind {
            ChangeKind::ChangeAutoincrement => Some(format!(
                "the naming rule changes the primary key {column:?} ({} -> {})",
                c.from.as_deref().unwrap_or("?"),
                c.to.as_deref().unwrap_or("?")
            )),
            ChangeKind::DropColumn => Some(format!("column {column:?} is dropped")),
            ChangeKind::AddColumn => match target.column(column) {
                Some(col) if col.addable_natively() => None,
                Some(col) if col.primary_key => Some(format!(
                    "new column {column:?} is the primary key, which ALTER TABLE ADD COLUMN \
                     cannot add"
                )),
                _ => Some(format!(
                    "new column {column:?} is NOT NULL without a default, which ALTER TABLE \
                     ADD COLUMN cannot add"
                )),
            },
            _ => None,
        }
    })
}

fn create_step(diff: &TableDiff, target: &TableSpec) -> PlanStep {
    let mut forward = vec![target.create_sql()];
    forward.extend(target.indexes.iter().map(|i| i.create_sql(&target.name)));
    PlanStep {
        kind: StepKind::CreateTable,
        changes: diff.changes.clone(),
        forward,
        rollback: vec![format!("DROP TABLE {}", quote(&target.name))],
    }
}

fn native_steps(diff: &TableDiff, target: &TableSpec, live: &LiveTable) -> Vec<PlanStep> {
    let table = quote(&target.name);
    let step = |change: &Change, forward: String, rollback: String| PlanStep {
        kind: StepKind::Native,
        changes: vec![change.clone()],
        forward: vec![forward],
        rollback: vec![rollback],
    };
    let mut steps = Vec::new();
    // Index drops first, then renames, columns, index adds. Dropping before
    // renaming matters for the rollback (the steps undone in reverse): a
    // dropped index is recreated from its original SQL, which names the
    // columns by their old names, so it must come back after the renames
    // are undone.
    let drops_first = diff
        .changes
        .iter()
        .filter(|c| matches!(c.kind, ChangeKind::DropIndex | ChangeKind::DropUnique))
        .chain(
            diff.changes
                .iter()
                .filter(|c| !matches!(c.kind, ChangeKind::DropIndex | ChangeKind::DropUnique)),
        );
    for change in drops_first {
        let column = change.column.as_deref().unwrap_or_default();
        let index = change.index.as_deref().unwrap_or_default();
        match change.kind {
            ChangeKind::RenameColumn => {
                let old = change.from.as_deref().unwrap_or_default();
                steps.push(step(
                    change,
                    format!(
                        "ALTER TABLE {table} RENAME COLUMN {} TO {}",
                        quote(old),
                        quote(column)
                    ),
                    format!(
                        "ALTER TABLE {table} RENAME COLUMN {} TO {}",
                        quote(column),
                        quote(old)
                    ),
                ));
            }
            ChangeKind::DropIndex | ChangeKind::DropUnique => {
                let Some(original) = live.indexes.iter().find(|i| i.spec.name == index) else {
                    continue;
                };
                let recreate = original
                    .sql
                    .clone()
                    .unwrap_or_else(|| original.spec.create_sql(&target.name));
                steps.push(step(change, original.spec.drop_sql(), recreate));
            }
            ChangeKind::AddColumn => {
                if let Some(col) = target.column(column) {
                    steps.push(step(
                        change,
                        format!(
                            "ALTER TABLE {table} ADD COLUMN {}",
                            col.definition_sql(false)
                        ),
                        format!("ALTER TABLE {table} DROP COLUMN {}", quote(&col.name)),
                    ));
                }
            }
            ChangeKind::AddIndex | ChangeKind::AddUnique => {
                if let Some(idx) = target.index(index) {
                    steps.push(step(change, idx.create_sql(&target.name), idx.drop_sql()));
                }
            }
            _ => {}
        }
    }
    steps
}
