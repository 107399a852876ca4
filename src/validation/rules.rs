//! Schema rules that need no data scan: CF001 drift, CF002 missing links,
//! CF004 unmanaged objects that reference a changed column.

use rusqlite::Connection;

use crate::diff::ChangeKind;
use crate::doctype::DocType;
use crate::error::Result;
use crate::history::store;
use crate::plan::{DocTypePlan, MigrationPlan};
use crate::schema::{SchemaObject, SchemaSnapshot, is_managed_index};

use crate::outcome::{Finding, Rule, Severity};

/// CF001: the live table differs from the schema its last completed
/// migration recorded. Reported, not blocking, for forward plans (they are
/// computed from the live schema).
pub fn drift(
    conn: &Connection,
    snapshot: &SchemaSnapshot,
    plan: &MigrationPlan,
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    if !store::table_exists(conn)? {
        return Ok(out);
    }
    for p in &plan.doctypes {
        let Some(last) = store::latest_completed(conn, &p.doctype)? else {
            continue;
        };
        let (Some(recorded), Some(live)) = (&last.fingerprint_after, &p.fingerprint_before) else {
            continue;
        };
        if recorded == live {
            continue;
        }
        let then: Vec<SchemaObject> =
            serde_json::from_value(last.schema_after.clone()).unwrap_or_default();
        let now: Vec<&SchemaObject> = snapshot
            .objects
            .iter()
            .filter(|o| o.tbl_name.eq_ignore_ascii_case(&p.table))
            .collect();
        let mut what = Vec::new();
        for o in &now {
            match then.iter().find(|t| t.kind == o.kind && t.name == o.name) {
                None => what.push(format!("{} {:?} was added", o.kind, o.name)),
                Some(t) if t.sql != o.sql => {
                    what.push(format!("{} {:?} was changed", o.kind, o.name))
                }
                _ => {}
            }
        }
        for t in &then {
            if !now.iter().any(|o| o.kind == t.kind && o.name == t.name) {
                what.push(format!("{} {:?} was removed", t.kind, t.name));
            }
        }
        out.push(Finding {
            rule: Rule::Cf001,
            severity: Severity::High,
            blocking: false,
            doctype: p.doctype.clone(),
            table: p.table.clone(),
            column: None,
            rows_affected: None,
            message: format!(
                "table changed outside the engine since migration {}: {}",
                last.id,
                if what.is_empty() { "schema differs".to_string() } else { what.join(", ") }
            ),
            suggestion: "review the change; the plan below was computed from the live schema and will keep it".into(),
        });
    }
    Ok(out)
}

/// CF002: Link, Table and Table MultiSelect fields naming a DocType that is
/// neither in the set nor in the database.
pub fn missing_links(snapshot: &SchemaSnapshot, doctypes: &[DocType]) -> Vec<Finding> {
    let mut out = Vec::new();
    for dt in doctypes {
        for f in dt.fields.iter().filter(|f| f.fieldtype.links_doctype()) {
            let Some(target) = f
                .options
                .as_deref()
                .map(str::trim)
                .filter(|o| !o.is_empty())
            else {
                continue;
            };
            let in_set = doctypes.iter().any(|d| d.name == target);
            let in_db = snapshot.table(&format!("tab{target}")).is_some();
            if in_set || in_db {
                continue;
            }
            let child = !matches!(f.fieldtype, crate::doctype::FieldType::Link);
            out.push(Finding {
                rule: Rule::Cf002,
                severity: Severity::Medium,
                blocking: false,
                doctype: dt.name.clone(),
                table: dt.table_name(),
                column: Some(f.fieldname.clone()),
                rows_affected: None,
                message: if child {
                    format!("child table DocType {target:?} used by {} field {:?} is missing", f.fieldtype, f.fieldname)
                } else {
                    format!("Link field {:?} points to DocType {target:?}, which is neither in the set nor in the database", f.fieldname)
                },
                suggestion: format!("add the {target:?} DocType to the set, or check the field's options"),
            });
        }
    }
    out
}

/// CF004: user triggers, views and indexes that reference a column a rebuild
/// drops, renames or retypes. Recreating them would fail or change meaning.
pub fn unmanaged_references(snapshot: &SchemaSnapshot, plan: &MigrationPlan) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in plan.pending().filter(|p| p.rebuilds()) {
        let touched = touched_columns(p);
        let objects = snapshot.objects.iter().filter(|o| {
            o.kind != "table"
                && !(o.kind == "index" && is_managed_index(&o.name))
                && (o.tbl_name.eq_ignore_ascii_case(&p.table)
                    || (o.kind == "view" && mentions(o, &p.table)))
        });
        for o in objects {
            for (column, how) in &touched {
                if mentions(o, column) {
                    out.push(Finding {
                        rule: Rule::Cf004,
                        severity: Severity::Critical,
                        blocking: true,
                        doctype: p.doctype.clone(),
                        table: p.table.clone(),
                        column: Some(column.clone()),
                        rows_affected: None,
                        message: format!("{} {:?} (not managed by the engine) references column {column:?}, which this migration {how}", o.kind, o.name),
                        suggestion: format!("drop or rewrite {} {:?} first, then migrate and recreate it", o.kind, o.name),
                    });
                }
            }
        }
    }
    out
}

fn touched_columns(p: &DocTypePlan) -> Vec<(String, &'static str)> {
    p.changes
        .iter()
        .filter_map(|c| {
            let how = match c.kind {
                ChangeKind::DropColumn => "drops",
                ChangeKind::RenameColumn => "renames",
                ChangeKind::ChangeType => "retypes",
                _ => return None,
            };
            let column = if c.kind == ChangeKind::RenameColumn {
                c.from.clone()
            } else {
                c.column.clone()
            };
            column.map(|col| (col, how))
        })
        .collect()
}

/// Whether an object's SQL mentions `word` as a whole identifier
/// (case-insensitive; quoted or bare).
fn mentions(o: &SchemaObject, word: &str) -> bool {
    let Some(sql) = &o.sql else { return false };
    let (sql, word) = (sql.to_ascii_lowercase(), word.to_ascii_lowercase());
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    sql.match_indices(&word).any(|(i, _)| {
        let before = sql[..i].chars().next_back();
        let after = sql[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}
