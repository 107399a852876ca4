//! Data-aware rules: DL001-DL003, MF001-MF003 and RB001, measured on the
//! real data with one pass per table (plus one GROUP BY per new unique index).

use std::collections::HashMap;

use rusqlite::Connection;

use crate::diff::{Change, ChangeKind};
use crate::error::Result;
use crate::ident::quote;
use crate::plan::{DocTypePlan, copy_expr_filling};
use crate::schema::{SchemaSnapshot, introspect_table};

use super::data::{Question, duplicates, measure};
use super::validator::ValidationPolicy;
use crate::outcome::{Finding, Rule, Severity};

/// Findings for one DocType whose table exists.
pub fn check(
    conn: &Connection,
    p: &DocTypePlan,
    policy: &ValidationPolicy,
) -> Result<Vec<Finding>> {
    if p.is_empty() || p.changes.iter().any(|c| c.kind == ChangeKind::CreateTable) {
        return Ok(Vec::new());
    }
    // Changes name columns by their new names; the live table still has the old ones.
    let old_name: HashMap<String, String> = p
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::RenameColumn)
        .filter_map(|c| Some((c.column.clone()?.to_ascii_lowercase(), c.from.clone()?)))
        .collect();
    let live = |c: &str| {
        old_name
            .get(&c.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| c.to_string())
    };

    let becomes_not_null = |col: &str| p.target.column(col).is_some_and(|t| t.not_null);
    let mut questions = Vec::new();
    // DL001 and MF001 (a new unique index over a column added with a
    // constant default: every existing row holds that value) need the count.
    if p.changes
        .iter()
        .any(|c| matches!(c.kind, ChangeKind::DropTable | ChangeKind::AddUnique))
    {
        questions.push(Question::RowCount);
    }
    for c in &p.changes {
        let Some(col) = c.column.as_deref() else {
            continue;
        };
        match c.kind {
            ChangeKind::DropColumn => questions.push(Question::non_null(live(col))),
            // A type change that keeps the affinity converts nothing, and
            // a column becoming nullable needs no count: no scan for them.
            ChangeKind::ChangeType if c.converts_values() => {
                questions.push(Question::lossy(live(col), c.to.clone().unwrap_or_default()));
                questions.push(Question::nulls(live(col)));
            }
            ChangeKind::ChangeNullability if becomes_not_null(col) => {
                questions.push(Question::nulls(live(col)))
            }
            ChangeKind::ChangeAutoincrement if p.target.autoincrement => {
                questions.push(Question::lossy(live(col), "INTEGER".to_string()))
            }
            ChangeKind::AddColumn
                if p.target
                    .column(col)
                    .is_some_and(|t| t.not_null && t.default.is_none()) =>
            {
                questions.push(Question::RowCount)
            }
            _ => {}
        }
    }
    // Only tables with risky changes are read; no questions, no scan.
    let answers = measure(conn, &p.table, &questions)?;
    let get = |q: &Question| answers.get(q).unwrap_or(0);
    let rows = get(&Question::RowCount);

    let mut out = Vec::new();
    let finding = |rule: Rule,
                   severity: Severity,
                   blocking: bool,
                   column: &str,
                   n: Option<u64>,
                   message: String,
                   suggestion: String| Finding {
        rule,
        severity,
        blocking,
        doctype: p.doctype.clone(),
        table: p.table.clone(),
        column: Some(column.to_string()),
        rows_affected: n,
        message,
        suggestion,
    };
    let loss_blocks = !policy.allow_data_loss;
    if p.changes.iter().any(|c| c.kind == ChangeKind::DropTable) && rows > 0 {
        out.push(Finding {
            rule: Rule::Dl001,
            severity: Severity::Critical,
            blocking: loss_blocks,
            doctype: p.doctype.clone(),
            table: p.table.clone(),
            column: None,
            rows_affected: Some(rows),
            message: format!("dropping table {:?} destroys its {rows} row(s)", p.table),
            suggestion: "keep the table (do not drop orphan tables), or allow data loss to drop it"
                .into(),
        });
    }
    let mut destructive_with_data = Vec::new();
    if p.changes.iter().any(|c| c.kind == ChangeKind::DropTable) && rows > 0 {
        destructive_with_data.push(String::new());
    }
    let mut nulls_filled: Vec<(String, u64)> = Vec::new();
    for c in &p.changes {
        let Some(col) = c.column.as_deref() else {
            continue;
        };
        let target = p.target.column(col);
        match c.kind {
            ChangeKind::DropColumn => {
                let n = get(&Question::non_null(live(col)));
                if n > 0 {
                    out.push(finding(
                        Rule::Dl002,
                        Severity::High,
                        loss_blocks,
                        col,
                        Some(n),
                        format!("dropping column {col:?} destroys {n} non-NULL value(s)"),
                        rename_suggestion(p, c).unwrap_or_else(|| {
                            "keep the column (do not drop orphan columns), or allow data loss to drop it".into()
                        }),
                    ));
                    destructive_with_data.push(col.to_string());
                }
            }
            ChangeKind::ChangeType => {
                let lossy = Question::lossy(live(col), c.to.clone().unwrap_or_default());
                let n = get(&lossy);
                if n > 0 {
                    out.push(finding(
                        Rule::Dl003,
                        Severity::High,
                        loss_blocks,
                        col,
                        Some(n),
                        format!(
                            "changing {col:?} from {} to {} alters {n} value(s): converting them and back does not give the original",
                            c.from.as_deref().unwrap_or("?"),
                            c.to.as_deref().unwrap_or("?")
                        ),
                        "clean those values first, or allow data loss to convert them".into(),
                    ));
                    destructive_with_data.push(col.to_string());
                }
                if target.is_some_and(|t| t.not_null && t.default.is_some()) {
                    nulls_filled.push((col.to_string(), get(&Question::nulls(live(col)))));
                }
            }
            ChangeKind::ChangeNullability if target.is_some_and(|t| t.not_null) => {
                let n = get(&Question::nulls(live(col)));
                let fill = p
                    .null_fills
                    .iter()
                    .find(|(c, _)| c.eq_ignore_ascii_case(col))
                    .map(|(_, v)| v.clone());
                match fill.or_else(|| target.and_then(|t| t.default.clone())) {
                    Some(_) => nulls_filled.push((col.to_string(), n)),
                    None if n > 0 => out.push(finding(
                        Rule::Mf002,
                        Severity::Critical,
                        true,
                        col,
                        Some(n),
                        format!("{col:?} becomes NOT NULL but holds {n} NULL(s) and has no default to fill them"),
                        "fill the NULLs first, or give the field a default".into(),
                    )),
                    None => {}
                }
            }
            // Text names become an INTEGER PRIMARY KEY: only canonical
            // integer text ('12', not '0012' or 'HD-1') keeps its value, and
            // SQLite could not store the others, so no consent lets it through.
            ChangeKind::ChangeAutoincrement if p.target.autoincrement => {
                let n = get(&Question::lossy(live(col), "INTEGER".to_string()));
                if n > 0 {
                    out.push(finding(
                        Rule::Mf004,
                        Severity::Critical,
                        true,
                        col,
                        Some(n),
                        format!(
                            "autoname becomes autoincrement, but {n} {col:?} value(s) are not canonical \
                             integer text ('12', not '0012' or 'HD-1'); they cannot become INTEGER keys"
                        ),
                        "rename those documents to integer names first (a data patch), or keep the \
                         naming rule; allowing data loss does not override this"
                            .into(),
                    ));
                }
            }
            ChangeKind::AddColumn => {
                if let Some(t) = target.filter(|t| t.not_null && t.default.is_none()) {
                    if rows > 0 {
                        out.push(finding(
                            Rule::Mf002,
                            Severity::Critical,
                            true,
                            &t.name,
                            Some(rows),
                            format!("new column {col:?} is NOT NULL with no default, and the table has {rows} row(s)"),
                            "give the field a default".into(),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    for (col, n) in nulls_filled {
        if n > 0 {
            let fill = p
                .null_fills
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(&col))
                .map(|(_, v)| v.clone());
            let value = fill
                .or_else(|| p.target.column(&col).and_then(|t| t.default.clone()))
                .unwrap_or_default();
            out.push(finding(
                Rule::Mf003,
                Severity::Low,
                false,
                &col,
                Some(n),
                format!("{n} NULL(s) in {col:?} will be filled with {value}"),
                "nothing to do if the default is right for existing rows".into(),
            ));
        }
    }
    out.extend(unique_checks(conn, p, &live, rows)?);
    // With a backup planned, rollback can give the data back: no RB001.
    let unprotected = if p.backups.is_empty() {
        destructive_with_data
    } else {
        Vec::new()
    };
    for col in unprotected {
        let what = if col.is_empty() {
            format!("table {:?}", p.table)
        } else {
            format!("{col:?}")
        };
        let mut f = finding(
            Rule::Rb001,
            Severity::High,
            loss_blocks,
            &col,
            None,
            format!("no backup is taken of {what} (backup policy: never), so a rollback cannot restore what this migration destroys"),
            "use a backup policy other than never, or allow data loss only after backing up the database file".into(),
        );
        if col.is_empty() {
            f.column = None;
        }
        out.push(f);
    }
    Ok(out)
}

/// MF001: new unique indexes over columns that hold duplicates. A column
/// this plan adds holds its default in every existing row: NULL (never a
/// duplicate, so the index cannot fail) or one constant value (the same in
/// every row, so only the index's other columns can tell rows apart).
fn unique_checks(
    conn: &Connection,
    p: &DocTypePlan,
    live: &dyn Fn(&str) -> String,
    rows: u64,
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let added: Vec<&str> = p
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::AddColumn)
        .filter_map(|c| c.column.as_deref())
        .collect();
    let added_default = |col: &str| -> Option<Option<String>> {
        added.iter().find(|a| a.eq_ignore_ascii_case(col))?;
        Some(
            p.target
                .column(col)
                .and_then(|t| t.default.clone())
                .filter(|d| !d.eq_ignore_ascii_case("NULL")),
        )
    };
    // A rebuild converts values (CAST to the new affinity, NULLs filled when
    // a column becomes NOT NULL) before its unique indexes are built, so
    // distinct stored values can collide: '12' and '12.0' as INTEGER, NULL
    // and 0 filled with 0. Those keys are checked as converted. The fast
    // path fills NULLs the same way (an UPDATE before `SET NOT NULL`, under
    // the table's unique indexes and before new ones), so it is checked too.
    let converted: Vec<String> = p
        .changes
        .iter()
        .filter(|c| {
            matches!(
                c.kind,
                ChangeKind::ChangeType | ChangeKind::ChangeNullability
            )
        })
        .filter_map(|c| c.column.clone())
        .collect();
    let is_converted = |col: &str| converted.iter().any(|c| c.eq_ignore_ascii_case(col));
    let live_spec = if !converted.is_empty() {
        let snapshot = SchemaSnapshot::read_table(conn, &p.table)?;
        introspect_table(conn, &snapshot, &p.table)?.map(|t| t.spec)
    } else {
        None
    };
    // (index, columns, whether the index is new); a kept one is rebuilt
    // with the table, or stays in place under the fast path's NULL fill.
    let mut candidates: Vec<(Option<&str>, &[String], bool)> = p
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::AddUnique)
        .map(|c| (c.index.as_deref(), c.columns.as_slice(), true))
        .collect();
    if live_spec.is_some() {
        for idx in p.target.indexes.iter().filter(|i| i.unique) {
            let unlisted = candidates
                .iter()
                .all(|(n, _, _)| !n.is_some_and(|n| n.eq_ignore_ascii_case(&idx.name)));
            if unlisted && idx.columns.iter().any(|c| is_converted(c)) {
                candidates.push((Some(idx.name.as_str()), idx.columns.as_slice(), false));
            }
        }
    }
    for (index, columns, new) in candidates {
        let mut key: Vec<String> = Vec::new();
        let mut exprs: Vec<String> = Vec::new();
        let mut constants: Vec<String> = Vec::new();
        let mut may_fail = true;
        for col in columns {
            match added_default(col) {
                None => {
                    let old = live(col);
                    let conversion =
                        live_spec
                            .as_ref()
                            .filter(|_| is_converted(col))
                            .and_then(|l| {
                                let src = l.column(&old)?;
                                let dst = p.target.column(col)?;
                                let fill = p
                                    .null_fills
                                    .iter()
                                    .find(|(c, _)| c.eq_ignore_ascii_case(col))
                                    .map(|(_, v)| v.as_str());
                                Some(copy_expr_filling(&src.name, src, dst, fill))
                            });
                    exprs.push(conversion.unwrap_or_else(|| quote(&old)));
                    key.push(old);
                }
                Some(None) => may_fail = false, // NULL in every row: never a duplicate
                Some(Some(d)) => constants.push(format!("{col} = {d}")),
            }
        }
        if !may_fail {
            continue;
        }
        let plain = exprs.iter().zip(&key).all(|(e, k)| *e == quote(k));
        let (rows_in_groups, groups, examples) = if key.is_empty() {
            // Only new columns with a constant default: every row is the same.
            if rows < 2 {
                continue;
            }
            (
                rows,
                1,
                vec![format!("{} ({rows} rows)", constants.join(", "))],
            )
        } else if plain {
            let report = duplicates(conn, &p.table, &key, 3)?;
            let examples = report
                .examples
                .iter()
                .map(|e| format!("{} ({} rows)", e.value, e.rows))
                .collect();
            (report.rows_in_duplicate_groups, report.groups, examples)
        } else {
            let (n, g) = converted_duplicates(conn, &p.table, &exprs)?;
            (
                n,
                g,
                vec![format!(
                    "values that become equal when converted ({} rows)",
                    n
                )],
            )
        };
        if rows_in_groups == 0 {
            continue;
        }
        out.push(Finding {
            rule: Rule::Mf001,
            severity: Severity::Critical,
            blocking: true,
            doctype: p.doctype.clone(),
            table: p.table.clone(),
            column: Some(columns.join(", ")),
            rows_affected: Some(rows_in_groups),
            message: format!(
                "unique index {} {}: {} row(s) in {} group(s) share a value, e.g. {}",
                index.unwrap_or("?"),
                if new || p.rebuilds() {
                    "cannot be created"
                } else {
                    "would be violated by the NULL fill"
                },
                rows_in_groups,
                groups,
                examples.join(", ")
            ),
            suggestion: "remove or change the duplicates, or drop `unique` from the field".into(),
        });
    }
    Ok(out)
}

/// Rows in duplicate groups, and groups, of `exprs` (SQL over the live
/// table's columns) as a UNIQUE index would see them: NULL keys never collide.
fn converted_duplicates(conn: &Connection, table: &str, exprs: &[String]) -> Result<(u64, u64)> {
    let keys: Vec<String> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{e} AS k{i}"))
        .collect();
    let group: Vec<String> = (0..exprs.len()).map(|i| format!("k{i}")).collect();
    let not_null: Vec<String> = group.iter().map(|k| format!("{k} IS NOT NULL")).collect();
    let sql = format!(
        "SELECT coalesce(sum(n), 0), count(*) FROM (SELECT count(*) AS n FROM (SELECT {} FROM {}) \
         WHERE {} GROUP BY {} HAVING count(*) > 1)",
        keys.join(", "),
        quote(table),
        not_null.join(" AND "),
        group.join(", ")
    );
    conn.query_row(&sql, [], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .map(|(n, g)| (n.max(0) as u64, g.max(0) as u64))
        .map_err(|e| crate::error::Error::sql(&sql, e))
}

/// When a dropped column and an added one share a type, the drop may be a rename.
fn rename_suggestion(p: &DocTypePlan, dropped: &Change) -> Option<String> {
    let old = dropped.column.as_deref()?;
    let added = p.changes.iter().find(|c| {
        c.kind == ChangeKind::AddColumn
            && c.to.is_some()
            && c.to.as_deref().map(str::to_ascii_uppercase)
                == dropped.from.as_deref().map(str::to_ascii_uppercase)
    })?;
    let new = added.column.as_deref()?;
    Some(format!(
        "if {new:?} is {old:?} renamed, add \"renamed_from\": \"{old}\" to field {new:?} (or a rename hint) and the values are kept"
    ))
}
