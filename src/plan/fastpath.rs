//! Changes that touch no stored value, made without copying the table.
//!
//! - **Nullability** through SQLite's native `ALTER TABLE … ALTER COLUMN …
//!   DROP NOT NULL` and `SET NOT NULL` (which scans for NULLs and fails on
//!   one), after the NULL fill the data rules planned (MF003).
//! - **Schema-text edits** (sqlite.org/lang_altertable.html, "making other
//!   kinds of table schema changes"): a declared type that keeps the
//!   column's affinity (`VARCHAR(140)` → `TEXT`) and a DEFAULT change are
//!   made by rewriting the table's CREATE text in `sqlite_schema` under
//!   `PRAGMA writable_schema`, inside the migration's transaction. A view
//!   created and dropped around the edit moves the schema cookie, so other
//!   connections read the schema again, and `writable_schema = RESET`
//!   reloads it on this one.
//!
//! A DEFAULT edit is safe only when every row stores the column. Rows
//! written before an `ALTER TABLE ADD COLUMN` keep short records and read
//! that column's value from the schema's DEFAULT: editing it in place would
//! change their values while `integrity_check` still says ok. So a DEFAULT
//! is edited in place only for columns the engine's history shows every
//! row stores ([`StoredColumns`]): created with the table or present when
//! the engine last rebuilt it, in a table nobody changed outside the engine
//! since. Anything else takes the rebuild.
//!
//! Every fast path is proved before it is planned, on an in-memory copy of
//! the table: the statements must leave the CREATE text the rebuild would
//! write (whitespace aside), describe the same stored rows (columns, key,
//! affinities, rowid or not, STRICT or not), and their reverse must give
//! back the original text byte for byte.

use rusqlite::Connection;

use crate::db::create_table::{self, CreateTable};
use crate::diff::{Change, ChangeKind, TableDiff};
use crate::error::Result;
use crate::history::{HistoryRow, MigrationStatus, store};
use crate::ident::{quote, quote_literal};
use crate::schema::{Affinity, LiveTable, SchemaObject, TableSpec};

use super::rebuild::REBUILD_TEMP_PREFIX;
use super::types::{PlanStep, StepKind};

/// The view created and dropped around a schema-text edit: any DDL moves
/// the schema cookie, and a view has no pages to allocate.
const SCHEMA_EDIT_VIEW: &str = "_dm_schema_edit";

/// Which columns every row of a table stores, as the engine's history
/// shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredColumns {
    /// Columns every row stores.
    complete: Vec<String>,
    /// Columns rows may not store, each with why.
    short: Vec<(String, String)>,
    /// Why nothing is known (no usable history), if so.
    unknown: Option<String>,
}

impl StoredColumns {
    /// Every column of `live` (for replaying a recorded plan, whose choice
    /// was made when the migration ran).
    pub fn all(live: &LiveTable) -> Self {
        StoredColumns {
            complete: live.spec.columns.iter().map(|c| c.name.clone()).collect(),
            ..Default::default()
        }
    }

    /// Nothing known, for this reason.
    pub fn unknown(why: impl Into<String>) -> Self {
        StoredColumns {
            unknown: Some(why.into()),
            ..Default::default()
        }
    }

    /// `None` when every row stores `column`; otherwise why it may not.
    fn why_not(&self, column: &str) -> Option<String> {
        if self.complete.iter().any(|c| c.eq_ignore_ascii_case(column)) {
            return None;
        }
        if let Some((_, why)) = self
            .short
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(column))
        {
            return Some(why.clone());
        }
        Some(self.unknown.clone().unwrap_or_else(|| {
            format!("the engine's history does not show every row storing {column:?}")
        }))
    }
}

/// What the planner may rely on, beyond the live table, to take a fast
/// path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastPaths {
    /// `Err(why)`: every change that ALTER TABLE cannot make takes the
    /// rebuild (the caller turned fast paths off).
    enabled: std::result::Result<(), String>,
    /// `Err(why)`: the CREATE text cannot be edited (defensive mode).
    schema_edits: std::result::Result<(), String>,
    /// The columns every row stores.
    stored: StoredColumns,
}

impl FastPaths {
    /// Fast paths off: the rebuild for anything ALTER TABLE cannot add,
    /// rename or index, as before fast paths existed.
    pub fn off(why: impl Into<String>) -> Self {
        FastPaths {
            enabled: Err(why.into()),
            schema_edits: Ok(()),
            stored: StoredColumns::default(),
        }
    }

    /// Fast paths on, with what is known of the database and the table.
    pub fn on(schema_edits: std::result::Result<(), String>, stored: StoredColumns) -> Self {
        FastPaths {
            enabled: Ok(()),
            schema_edits,
            stored,
        }
    }
}

/// Whether a change is one the fast paths may make (otherwise the planner
/// decides between ALTER TABLE and the rebuild as before).
pub(super) fn is_fast_kind(kind: ChangeKind) -> bool {
    matches!(
        kind,
        ChangeKind::ChangeType | ChangeKind::ChangeDefault | ChangeKind::ChangeNullability
    )
}

/// Whether SQLite's defensive mode is on (it forbids `writable_schema`):
/// `Err(why)` then.
pub fn schema_edits_allowed(conn: &Connection) -> std::result::Result<(), String> {
    match conn.db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE) {
        Ok(false) => Ok(()),
        Ok(true) => Err(
            "defensive mode is on (SQLITE_DBCONFIG_DEFENSIVE): the CREATE text \
                         cannot be edited"
                .into(),
        ),
        Err(e) => Err(format!("cannot read whether defensive mode is on: {e}")),
    }
}

/// The steps that make the type, DEFAULT and nullability changes of `diff`
/// without copying the table, to run before its native renames, columns
/// and indexes (their rollback runs last, on the original names). Empty
/// when the diff has none; `Err(why)` when they need the rebuild.
pub(super) fn fast_steps(
    diff: &TableDiff,
    target: &TableSpec,
    live: &LiveTable,
    null_fills: &[(String, String)],
    facts: &FastPaths,
) -> std::result::Result<Vec<PlanStep>, String> {
    let changes: Vec<&Change> = diff
        .changes
        .iter()
        .filter(|c| is_fast_kind(c.kind))
        .collect();
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    facts.enabled.clone()?;
    let original = parse(&live.sql)?;
    let table = quote(&live.spec.name);
    let mut edited = original.clone();
    let mut text_edits = false;
    let mut nullability = Vec::new();
    let mut nullability_back = Vec::new();
    for change in &changes {
        let column = change.column.as_deref().unwrap_or_default();
        let live_name = live_name(diff, column);
        let wanted = target
            .column(column)
            .ok_or_else(|| format!("the target has no column {column:?}"))?;
        let Some(index) = live
            .spec
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(&live_name))
        else {
            return Err(format!("the table has no column {live_name:?}"));
        };
        let (spec, info) = (&live.spec.columns[index], &live.columns[index]);
        if info.generated {
            return Err(format!("{live_name:?} is a generated column"));
        }
        match change.kind {
            ChangeKind::ChangeType => {
                let (from, to) = (
                    Affinity::of(&spec.decl_type),
                    Affinity::of(&wanted.decl_type),
                );
                if from != to {
                    return Err(format!(
                        "{column:?} changes affinity ({} -> {}): stored values are converted",
                        spec.decl_type, wanted.decl_type
                    ));
                }
                if spec.primary_key {
                    return Err(format!("{column:?} is the primary key"));
                }
                if original.is_strict() {
                    return Err(
                        "the table is STRICT, which checks declared types on every write"
                            .to_string(),
                    );
                }
                edited
                    .set_type(&live_name, &wanted.decl_type)
                    .map_err(|e| format!("column {live_name:?}: {e}"))?;
                text_edits = true;
            }
            ChangeKind::ChangeDefault => {
                if let Some(why) = facts.stored.why_not(&live_name) {
                    return Err(format!("the DEFAULT of {column:?} changes, and {why}"));
                }
                edited
                    .set_default(&live_name, wanted.default.as_deref())
                    .map_err(|e| format!("column {live_name:?}: {e}"))?;
                text_edits = true;
            }
            ChangeKind::ChangeNullability if wanted.not_null => {
                let fill = null_fills
                    .iter()
                    .find(|(c, _)| c.eq_ignore_ascii_case(column))
                    .map(|(_, v)| v.clone())
                    .or_else(|| wanted.default.clone());
                if let Some(fill) = fill {
                    if !live.triggers.is_empty() {
                        return Err(format!(
                            "{column:?} becomes NOT NULL with its NULLs filled, and an UPDATE \
                             would fire the table's triggers"
                        ));
                    }
                    nullability.push(format!(
                        "UPDATE {table} SET {c} = {fill} WHERE {c} IS NULL",
                        c = quote(&live_name)
                    ));
                }
                nullability.push(alter_column(&table, &live_name, "SET NOT NULL"));
                nullability_back.push(alter_column(&table, &live_name, "DROP NOT NULL"));
            }
            ChangeKind::ChangeNullability => {
                nullability.push(alter_column(&table, &live_name, "DROP NOT NULL"));
                nullability_back.push(alter_column(&table, &live_name, "SET NOT NULL"));
            }
            _ => {}
        }
    }
    if text_edits {
        facts.schema_edits.clone()?;
    }
    let mut forward = Vec::new();
    if text_edits {
        forward.extend(schema_edit(
            &live.spec.name,
            Some(&live.sql),
            &edited.to_sql(),
        ));
    }
    forward.extend(nullability);
    nullability_back.reverse();
    let mut rollback = nullability_back;

    // The proof, on an in-memory copy of the table.
    let expected = rebuilt_text(diff, target, live, &changes)?;
    let shadow = Shadow::open(&live.sql)?;
    let before = shadow.shape(&live.spec.name)?;
    shadow.run_all(&forward)?;
    let after = shadow.text(&live.spec.name)?;
    if normalize_create_sql(&after) != normalize_create_sql(&expected) {
        return Err(format!(
            "the statements would leave a CREATE text other than the rebuild's ({after:?}, not \
             {expected:?})"
        ));
    }
    if shadow.shape(&live.spec.name)? != before {
        return Err(
            "the edited CREATE text would not describe the same stored rows (columns, key, \
             affinities)"
                .into(),
        );
    }
    shadow.run_all(&rollback)?;
    if shadow.text(&live.spec.name)? != live.sql {
        // The native reverse does not write the text back byte for byte:
        // finish with an edit back to the original.
        facts.schema_edits.clone().map_err(|why| {
            format!("{why}, and the rollback must restore the original CREATE text")
        })?;
        rollback.extend(schema_edit(&live.spec.name, None, &live.sql));
        shadow.run_all(&rollback[rollback.len() - SCHEMA_EDIT_LEN..])?;
        if shadow.text(&live.spec.name)? != live.sql {
            return Err("the rollback would not restore the original CREATE text".into());
        }
    }
    Ok(vec![PlanStep {
        kind: if text_edits {
            StepKind::InPlace
        } else {
            StepKind::Native
        },
        changes: changes.into_iter().cloned().collect(),
        forward,
        rollback,
    }])
}

/// The number of statements of [`schema_edit`].
const SCHEMA_EDIT_LEN: usize = 5;

/// The statements that set the CREATE text of `table` to `to`. With
/// `from`, only a table whose text is exactly `from` is edited (verification
/// then finds any other unchanged); a rollback sets the original text
/// whatever the native reverse statements wrote.
fn schema_edit(table: &str, from: Option<&str>, to: &str) -> Vec<String> {
    let only_if = from
        .map(|f| format!(" AND sql = {}", quote_literal(f)))
        .unwrap_or_default();
    vec![
        format!("CREATE VIEW {} AS SELECT 1", quote(SCHEMA_EDIT_VIEW)),
        "PRAGMA writable_schema = ON".to_string(),
        format!(
            "UPDATE sqlite_schema SET sql = {} WHERE type = 'table' AND name = {}{only_if}",
            quote_literal(to),
            quote_literal(table)
        ),
        "PRAGMA writable_schema = RESET".to_string(),
        format!("DROP VIEW {}", quote(SCHEMA_EDIT_VIEW)),
    ]
}

fn alter_column(table: &str, column: &str, what: &str) -> String {
    format!("ALTER TABLE {table} ALTER COLUMN {} {what}", quote(column))
}

fn parse(sql: &str) -> std::result::Result<CreateTable, String> {
    create_table::parse(sql).map_err(|e| format!("cannot parse the table's CREATE statement: {e}"))
}

/// The column's name in the live table (before a rename in the same diff).
fn live_name(diff: &TableDiff, column: &str) -> String {
    diff.renames
        .iter()
        .find(|(_, new)| new.eq_ignore_ascii_case(column))
        .map(|(old, _)| old.clone())
        .unwrap_or_else(|| column.to_string())
}

/// The CREATE text the rebuild would give the table for these changes
/// (its own edits, in its order), under the table's own name.
fn rebuilt_text(
    diff: &TableDiff,
    target: &TableSpec,
    live: &LiveTable,
    changes: &[&Change],
) -> std::result::Result<String, String> {
    let mut ct = parse(&live.sql)?;
    let sub = TableDiff {
        changes: changes.iter().map(|c| (*c).clone()).collect(),
        ..diff.clone()
    };
    for change in super::rebuild::column_edit_order(&sub) {
        let column = change.column.as_deref().unwrap_or_default();
        let name = live_name(diff, column);
        let Some(t) = target.column(column) else {
            continue;
        };
        let edit = match change.kind {
            ChangeKind::ChangeType => ct.set_type(&name, &t.decl_type),
            ChangeKind::ChangeNullability => ct.set_not_null(&name, t.not_null),
            ChangeKind::ChangeDefault => ct.set_default(&name, t.default.as_deref()),
            _ => Ok(()),
        };
        edit.map_err(|e| format!("column {name:?}: {e}"))?;
    }
    Ok(ct.to_sql())
}

/// Whitespace-insensitive form of a CREATE text, for comparing two: runs
/// of whitespace outside quotes become one space, and none is kept after
/// `(` or before `)` and `,`. Quoted text (`'…'`, `"…"`, `` `…` ``, `[…]`)
/// is kept as it is.
pub(crate) fn normalize_create_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut space = false;
    let mut quote_end: Option<char> = None;
    for ch in sql.chars() {
        if let Some(end) = quote_end {
            out.push(ch);
            if ch == end {
                quote_end = None;
            }
            continue;
        }
        if ch.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() && !matches!(ch, '(' | ')' | ',') && !out.ends_with('(') {
            out.push(' ');
        }
        space = false;
        quote_end = match ch {
            '\'' | '"' | '`' => Some(ch),
            '[' => Some(']'),
            _ => None,
        };
        out.push(ch);
    }
    out
}

/// An in-memory database holding one table, for the proofs.
struct Shadow(Connection);

/// What decides how a table's rows are stored and read: per column its
/// name, affinity, key position and hidden flag; the table's rowid and
/// STRICT flags.
type Shape = (Vec<(String, Affinity, i64, i64)>, String);

impl Shadow {
    fn open(create_sql: &str) -> std::result::Result<Self, String> {
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        conn.execute_batch(create_sql)
            .map_err(|e| format!("the CREATE text does not replay on its own: {e}"))?;
        Ok(Shadow(conn))
    }

    fn run_all(&self, statements: &[String]) -> std::result::Result<(), String> {
        for sql in statements {
            self.0
                .execute_batch(sql)
                .map_err(|e| format!("{sql} fails on a copy of the table: {e}"))?;
        }
        Ok(())
    }

    fn text(&self, table: &str) -> std::result::Result<String, String> {
        self.0
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())
    }

    fn shape(&self, table: &str) -> std::result::Result<Shape, String> {
        let err = |e: rusqlite::Error| e.to_string();
        let mut stmt = self
            .0
            .prepare("SELECT name, type, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")
            .map_err(err)?;
        let columns = stmt
            .query_map([table], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Affinity::of(&r.get::<_, String>(1)?),
                    r.get(2)?,
                    r.get(3)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(err)?;
        let flags = self
            .0
            .query_row(
                "SELECT type || ' ' || ncol || ' ' || wr || ' ' || strict \
                 FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(err)?;
        Ok((columns, flags))
    }
}

/// Which columns every row of `live` stores, from the engine's history of
/// `doctype`: the columns of the table when the engine created or last
/// rebuilt it (both write every row in full), less those it added since
/// with `ALTER TABLE ADD COLUMN`, renamed as it renamed them. Nothing is
/// known when the history has no migration that created or rebuilt the
/// table, or when the table is not as the last recorded migration left it
/// (changed outside the engine).
pub(crate) fn stored_columns(
    conn: &Connection,
    doctype: &str,
    live: &LiveTable,
) -> Result<StoredColumns> {
    let rows = store::list(conn, Some(doctype))?;
    Ok(stored_from_history(&rows, live))
}

fn stored_from_history(rows: &[HistoryRow], live: &LiveTable) -> StoredColumns {
    let table = &live.spec.name;
    let applied: Vec<&HistoryRow> = rows
        .iter()
        .filter(|r| r.table_name.eq_ignore_ascii_case(table))
        .filter(|r| {
            matches!(
                r.status,
                MigrationStatus::Completed | MigrationStatus::Expanded
            )
        })
        .collect();
    let Some(last) = applied.last() else {
        return StoredColumns::unknown(
            "the engine's history has no migration of the table (rows added before \
             ALTER TABLE ADD COLUMN would read a DEFAULT from the schema)",
        );
    };
    let recorded = table_sql(&last.schema_after, table);
    if recorded.as_deref() != Some(live.sql.as_str()) {
        return StoredColumns::unknown(format!(
            "the table is not as its last recorded migration ({}) left it: it was changed \
             outside the engine",
            last.id
        ));
    }
    let copy = format!(
        "INSERT INTO {}",
        quote(&format!("{REBUILD_TEMP_PREFIX}{table}"))
    );
    let mut stored: Option<StoredColumns> = None;
    for row in applied {
        let changes: Vec<Change> = serde_json::from_value(row.changes.clone()).unwrap_or_default();
        let writes_all = changes.iter().any(|c| c.kind == ChangeKind::CreateTable)
            || row.sql.iter().any(|s| s.starts_with(&copy));
        if writes_all {
            let columns = table_sql(&row.schema_after, table)
                .and_then(|sql| create_table::parse(&sql).ok())
                .map(|ct| ct.columns().iter().map(|c| c.name().to_string()).collect());
            stored = columns.map(|complete| StoredColumns {
                complete,
                ..Default::default()
            });
            continue;
        }
        let Some(s) = stored.as_mut() else { continue };
        for c in &changes {
            let Some(column) = c.column.as_deref() else {
                continue;
            };
            match c.kind {
                ChangeKind::AddColumn => {
                    s.complete.retain(|x| !x.eq_ignore_ascii_case(column));
                    s.short.retain(|(x, _)| !x.eq_ignore_ascii_case(column));
                    s.short.push((
                        column.to_string(),
                        format!(
                            "migration {} added {column:?} with ALTER TABLE ADD COLUMN, with no \
                             rebuild since: rows written before read its DEFAULT from the schema",
                            row.id
                        ),
                    ));
                }
                ChangeKind::RenameColumn => {
                    let old = c.from.as_deref().unwrap_or_default();
                    for x in s
                        .complete
                        .iter_mut()
                        .filter(|x| x.eq_ignore_ascii_case(old))
                    {
                        *x = column.to_string();
                    }
                    for (x, _) in s
                        .short
                        .iter_mut()
                        .filter(|(x, _)| x.eq_ignore_ascii_case(old))
                    {
                        *x = column.to_string();
                    }
                }
                _ => {}
            }
        }
    }
    stored.unwrap_or_else(|| {
        StoredColumns::unknown(
            "no recorded migration created or rebuilt the table (rows added before ALTER TABLE \
             ADD COLUMN would read a DEFAULT from the schema)",
        )
    })
}

/// The table's CREATE text in a history row's recorded schema.
fn table_sql(objects: &serde_json::Value, table: &str) -> Option<String> {
    let objects: Vec<SchemaObject> = serde_json::from_value(objects.clone()).ok()?;
    objects
        .into_iter()
        .find(|o| o.kind == "table" && o.name.eq_ignore_ascii_case(table))?
        .sql
}

#[cfg(test)]
mod tests {
    use super::normalize_create_sql as normalize;

    #[test]
    fn normalize_ignores_whitespace_outside_quotes_only() {
        assert_eq!(
            normalize("CREATE TABLE t (\n  a TEXT ,\n  b  INT\n)"),
            normalize("CREATE TABLE t(a TEXT, b INT)")
        );
        assert_ne!(
            normalize("CREATE TABLE t (a TEXT NOT NULL DEFAULT 1)"),
            normalize("CREATE TABLE t (a TEXT DEFAULT 1 NOT NULL)")
        );
        assert_ne!(
            normalize("CREATE TABLE t (a TEXT DEFAULT 'x y')"),
            normalize("CREATE TABLE t (a TEXT DEFAULT 'x  y')")
        );
        assert_ne!(
            normalize("CREATE TABLE t (\"a b\" TEXT)"),
            normalize("CREATE TABLE t (\"a  b\" TEXT)")
        );
    }
}
