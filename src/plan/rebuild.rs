//! The 12-step table rebuild (sqlite.org/lang_altertable.html section 7):
//! create the new table under a temporary name, copy the rows with one
//! `INSERT ... SELECT`, drop the old table, rename the new one, recreate
//! indexes and triggers. The new CREATE TABLE is the original statement
//! edited in place, so everything the change does not touch (CHECK, COLLATE,
//! foreign keys, conflict clauses, generated columns, AUTOINCREMENT) is kept
//! byte for byte. Foreign keys must be off (outside the transaction) while
//! it runs; the executor takes care of that.

use crate::diff::{Change, ChangeKind, TableDiff};
use crate::error::{Error, Result};
use crate::ident::{ROWID_ALIASES, quote, quote_literal};
use crate::schema::{Affinity, ColumnSpec, LiveTable, TableSpec, is_managed_index};

use crate::db::create_table::{self, CreateTable};

/// Prefix of the temporary table a rebuild creates.
pub const REBUILD_TEMP_PREFIX: &str = "_dm_new_";

/// The forward statements of a rebuild from `live` to `target`;
/// `null_fills` are `(column, SQL literal)` pairs for NULLs to fill.
pub fn rebuild_forward(
    diff: &TableDiff,
    target: &TableSpec,
    live: &LiveTable,
    null_fills: &[(String, String)],
) -> Result<Vec<String>> {
    let table = &live.spec.name;
    let tmp = format!("{REBUILD_TEMP_PREFIX}{table}");
    let unsupported = |message: String| Error::UnsupportedChange {
        doctype: diff.doctype.clone(),
        table: table.clone(),
        message,
    };
    let mut ct = parse(&live.sql).map_err(&unsupported)?;
    ct.rename_table(&tmp)
        .map_err(|e| unsupported(e.to_string()))?;
    for (old, new) in &diff.renames {
        ct.rename_column(old, new)
            .map_err(|e| unsupported(e.to_string()))?;
    }
    for change in column_edit_order(diff) {
        let Some(column) = change.column.as_deref() else {
            continue;
        };
        let wanted = target.column(column);
        let edit = match (change.kind, wanted) {
            (ChangeKind::DropColumn, _) => ct.drop_column(column),
            (ChangeKind::ChangeType, Some(t)) => ct.set_type(column, &t.decl_type),
            (ChangeKind::ChangeNullability, Some(t)) => ct.set_not_null(column, t.not_null),
            (ChangeKind::ChangeDefault, Some(t)) => ct.set_default(column, t.default.as_deref()),
            (ChangeKind::AddColumn, Some(t)) => ct.add_column(&t.definition_sql(false)),
            (ChangeKind::ChangeAutoincrement, Some(t)) => ct
                .set_type(column, &t.decl_type)
                .and_then(|()| ct.set_autoincrement(column, target.autoincrement))
                .and_then(|()| ct.set_not_null(column, t.not_null)),
            _ => Ok(()),
        };
        edit.map_err(|e| unsupported(format!("column {column:?}: {e}")))?;
    }

    // Copy every surviving live column, converted to its new type. A new
    // INTEGER PRIMARY KEY is the rowid: its values come from the column.
    let (mut into, mut select) = if integer_primary_key(target) {
        (Vec::new(), Vec::new())
    } else {
        rowid_copy(&ct, live)
    };
    for (col, info) in live.spec.columns.iter().zip(&live.columns) {
        if info.generated || dropped(diff, &col.name) {
            continue;
        }
        let new_name = renamed(diff, &col.name);
        let dst = target.column(&new_name).unwrap_or(col);
        into.push(quote(&new_name));
        let fill = null_fills
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(&new_name))
            .map(|(_, v)| v.as_str());
        select.push(copy_expr_filling(&col.name, col, dst, fill));
    }

    // The counter moves with the table only when both have AUTOINCREMENT;
    // a table losing it loses its row (rollback gives it back), a table
    // gaining it starts from its largest name.
    let keep = live.spec.autoincrement && target.autoincrement;
    let mut sql = copy_and_swap(&ct, table, &tmp, &into, &select, keep);
    for idx in live.unmanaged_indexes() {
        if let Some(s) = &idx.sql {
            sql.push(s.clone());
        }
    }
    sql.extend(target.indexes.iter().map(|i| i.create_sql(table)));
    sql.extend(live.triggers.iter().filter_map(|t| t.sql.clone()));
    Ok(sql)
}

/// The statements that undo [`rebuild_forward`]: a rebuild back to the
/// original CREATE TABLE text, its indexes and triggers. Values the forward
/// step destroyed (dropped columns, lossy conversions) come back from backups.
pub fn rebuild_rollback(
    diff: &TableDiff,
    target: &TableSpec,
    live: &LiveTable,
) -> Result<Vec<String>> {
    let table = &live.spec.name;
    let tmp = format!("{REBUILD_TEMP_PREFIX}{table}");
    let mut ct = parse(&live.sql).map_err(|message| Error::UnsupportedChange {
        doctype: diff.doctype.clone(),
        table: table.clone(),
        message,
    })?;
    ct.rename_table(&tmp)
        .map_err(|e| Error::UnsupportedChange {
            doctype: diff.doctype.clone(),
            table: table.clone(),
            message: e.to_string(),
        })?;

    let (mut into, mut select) = rowid_copy(&ct, live);
    for (col, info) in live.spec.columns.iter().zip(&live.columns) {
        if info.generated || dropped(diff, &col.name) {
            continue;
        }
        let now_named = renamed(diff, &col.name);
        let now = target.column(&now_named).unwrap_or(col);
        into.push(quote(&col.name));
        select.push(copy_expr(&now_named, now, col));
    }
    let keep = live.spec.autoincrement && target.autoincrement;
    let mut sql = copy_and_swap(&ct, table, &tmp, &into, &select, keep);
    if live.spec.autoincrement && !target.autoincrement {
        sql.extend(restore_sequence(table, live.sequence));
    }
    sql.extend(live.indexes.iter().filter_map(|i| i.sql.clone()));
    sql.extend(live.triggers.iter().filter_map(|t| t.sql.clone()));
    debug_assert!(
        live.indexes
            .iter()
            .all(|i| i.sql.is_some() || !is_managed_index(&i.spec.name))
    );
    Ok(sql)
}

/// The order in which a rebuild edits the CREATE text: nullability last,
/// so a ` NOT NULL` it appends ends the column definition, where SQLite's
/// own `ALTER COLUMN … SET NOT NULL` puts it (the fast path and the rebuild
/// then write the same text).
pub(super) fn column_edit_order(diff: &TableDiff) -> impl Iterator<Item = &Change> {
    let last = |c: &&Change| c.kind == ChangeKind::ChangeNullability;
    diff.changes
        .iter()
        .filter(move |c| !last(c))
        .chain(diff.changes.iter().filter(last))
}

fn parse(sql: &str) -> std::result::Result<CreateTable, String> {
    create_table::parse(sql).map_err(|e| format!("cannot parse the table's CREATE statement: {e}"))
}

fn dropped(diff: &TableDiff, column: &str) -> bool {
    diff.changes.iter().any(|c| {
        c.kind == ChangeKind::DropColumn
            && c.column
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(column))
    })
}

fn renamed(diff: &TableDiff, column: &str) -> String {
    diff.renames
        .iter()
        .find(|(old, _)| old.eq_ignore_ascii_case(column))
        .map(|(_, new)| new.clone())
        .unwrap_or_else(|| column.to_string())
}

/// The SELECT expression that copies column `name` from `src` to `dst`:
/// CAST when the affinity changes, COALESCE with the default when the
/// column becomes NOT NULL and has one.
pub fn copy_expr(name: &str, src: &ColumnSpec, dst: &ColumnSpec) -> String {
    copy_expr_filling(name, src, dst, None)
}

/// [`copy_expr`], filling NULLs with `fill` (a SQL literal) when the column
/// becomes NOT NULL; the caller's fill wins over the column default.
pub(crate) fn copy_expr_filling(
    name: &str,
    src: &ColumnSpec,
    dst: &ColumnSpec,
    fill: Option<&str>,
) -> String {
    let mut expr = quote(name);
    let (from, to) = (Affinity::of(&src.decl_type), Affinity::of(&dst.decl_type));
    if from != to {
        if let Some(t) = to.cast_type() {
            expr = format!("CAST({expr} AS {t})");
        }
    }
    if dst.not_null && !src.not_null {
        if let Some(d) = fill.or(dst.default.as_deref()) {
            expr = format!("COALESCE({expr}, {d})");
        }
    }
    expr
}

/// Rowids are copied too when the table has them and no column aliases or
/// hides them, so rowid-keyed data (backups of tables without a primary
/// key, external references) still matches after the rebuild. A rebuild
/// otherwise renumbers rows 1..n and closes gaps.
fn rowid_copy(ct: &CreateTable, live: &LiveTable) -> (Vec<String>, Vec<String>) {
    let hides_rowid = live.spec.columns.iter().any(|c| {
        ROWID_ALIASES
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&c.name))
    });
    let pk: Vec<_> = live.spec.columns.iter().filter(|c| c.primary_key).collect();
    let integer_pk = pk.len() == 1 && pk[0].decl_type.eq_ignore_ascii_case("INTEGER");
    if ct.without_rowid() || hides_rowid || integer_pk {
        return (Vec::new(), Vec::new());
    }
    (vec!["rowid".to_string()], vec!["rowid".to_string()])
}

/// Steps shared by both directions: create the new table, copy the rows in
/// one `INSERT ... SELECT`, keep the AUTOINCREMENT counter, drop the old
/// table and rename the new one into its place.
fn copy_and_swap(
    ct: &CreateTable,
    table: &str,
    tmp: &str,
    into: &[String],
    select: &[String],
    autoincrement: bool,
) -> Vec<String> {
    let mut sql = vec![ct.to_sql()];
    sql.push(format!(
        "INSERT INTO {} ({}) SELECT {} FROM {}",
        quote(tmp),
        into.join(", "),
        select.join(", "),
        quote(table)
    ));
    if autoincrement {
        sql.extend(keep_sequence(table, tmp));
    }
    sql.extend(swap_tables(table, tmp));
    sql
}

/// Carries the AUTOINCREMENT counter over to the new table: dropping the
/// old table deletes its `sqlite_sequence` row, and the copy alone would
/// only record the largest rowid copied.
fn keep_sequence(table: &str, tmp: &str) -> Vec<String> {
    let (t, n) = (quote_literal(table), quote_literal(tmp));
    vec![
        format!(
            "INSERT INTO sqlite_sequence (name, seq) SELECT {n}, seq FROM sqlite_sequence WHERE name = {t} \
             AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = {n})"
        ),
        format!(
            "UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = {t}) \
             WHERE name = {n} AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = {t})"
        ),
    ]
}

/// Whether the table's primary key is an INTEGER PRIMARY KEY (the rowid).
fn integer_primary_key(spec: &TableSpec) -> bool {
    let pk: Vec<_> = spec.columns.iter().filter(|c| c.primary_key).collect();
    pk.len() == 1 && pk[0].decl_type.eq_ignore_ascii_case("INTEGER")
}

/// Puts back the AUTOINCREMENT counter a rebuild took away (the table had
/// `seq` before): the rows copied back set it to their largest name, which
/// may be below what the counter had reached (deleted rows), or above it
/// (rows written since, which the counter must not reuse).
fn restore_sequence(table: &str, seq: Option<i64>) -> Vec<String> {
    let Some(seq) = seq else {
        return Vec::new();
    };
    let t = quote_literal(table);
    vec![
        format!(
            "INSERT INTO sqlite_sequence (name, seq) SELECT {t}, {seq} \
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = {t})"
        ),
        format!("UPDATE sqlite_sequence SET seq = max(seq, {seq}) WHERE name = {t}"),
    ]
}

/// Drops the old table and renames the new one into its place. The rename
/// runs with `legacy_alter_table` on so that views and triggers naming the
/// table are left alone (otherwise SQLite re-checks them while the table is
/// missing and the rename fails).
fn swap_tables(table: &str, tmp: &str) -> Vec<String> {
    vec![
        format!("DROP TABLE {}", quote(table)),
        "PRAGMA legacy_alter_table = ON".to_string(),
        format!("ALTER TABLE {} RENAME TO {}", quote(tmp), quote(table)),
        "PRAGMA legacy_alter_table = OFF".to_string(),
    ]
}
