//! The release-history replay harness (used by replay.rs).
//!
//! Given the DocType folders of consecutive releases of one app and one
//! SQLite database, [`replay`]:
//!
//! 1. applies each release in order (`load_paths(&[dir])`, then `sync_all`
//!    with `allow_data_loss`), after saving the full [`State`] `S_k` of the
//!    database just before applying release `k`. After each release it
//!    checks that no row was lost (every table that existed still exists
//!    with at least as many rows), that a second `sync_all` of the same
//!    DocTypes is a no-op, and that SQLite's `integrity_check` passes; it
//!    remembers the release's batch id;
//! 2. after each release, fills every still-empty table with a few
//!    generated rows (see [`fill_empty_tables`] for the value rules), so the
//!    next releases move real data: rebuilds copy it, conversions convert
//!    it, new unique indexes are checked against it;
//! 3. at the end rolls every batch back, newest first, and after rolling
//!    back batch `k` requires the database to equal `S_k` exactly: schema,
//!    every value with its storage class, rowids and `sqlite_sequence`.
//!
//! Any mismatch panics with a message naming the release (folder), the
//! table and the first differing schema entries or rows.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use doctype_migrate::{ApplyReport, Error, MigrationApplier, RollbackOptions, load_paths};
use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};

/// The engine's history table: never part of a [`State`], never filled.
pub const HISTORY: &str = "tabMigrationHistory";

/// The engine's meta table (the database id): never part of a [`State`].
pub const META: &str = "tabMigrationMeta";

/// Rows generated per empty table.
pub const FILL_ROWS: usize = 3;

/// How many differences a mismatch message lists (per category / table).
const SHOW: usize = 5;

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/// One stored value: its storage class (`typeof()`) and an exact literal
/// (integers in decimal, reals in Rust's shortest round-trip form, text
/// quoted, blobs as `X'..'`), so equal cells mean bit-equal values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cell {
    pub storage: &'static str,
    pub literal: String,
}

impl From<ValueRef<'_>> for Cell {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => Cell {
                storage: "null",
                literal: "NULL".into(),
            },
            ValueRef::Integer(i) => Cell {
                storage: "integer",
                literal: i.to_string(),
            },
            ValueRef::Real(f) => Cell {
                storage: "real",
                // {:?} is the shortest text that reads back to the same
                // bits (and keeps "2.0" distinct from the integer 2).
                literal: format!("{f:?}"),
            },
            ValueRef::Text(t) => Cell {
                storage: "text",
                literal: format!("'{}'", String::from_utf8_lossy(t).replace('\'', "''")),
            },
            ValueRef::Blob(b) => Cell {
                storage: "blob",
                literal: format!(
                    "X'{}'",
                    b.iter().map(|x| format!("{x:02X}")).collect::<String>()
                ),
            },
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 60;
        if self.literal.chars().count() > MAX {
            let cut: String = self.literal.chars().take(MAX).collect();
            write!(f, "{cut}...:{}", self.storage)
        } else {
            write!(f, "{}:{}", self.literal, self.storage)
        }
    }
}

/// One `sqlite_schema` row, SQL with whitespace runs collapsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaEntry {
    pub kind: String,
    pub name: String,
    pub tbl_name: String,
    pub sql: Option<String>,
}

impl fmt::Display for SchemaEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} on {:?}: {}",
            self.kind,
            self.name,
            self.tbl_name,
            self.sql.as_deref().unwrap_or("<no sql>")
        )
    }
}

/// The rows of one table: column names (`rowid` first for rowid tables,
/// then the columns in `PRAGMA table_info` order) and every row, ordered by
/// rowid (by `name`, or all columns, for a WITHOUT ROWID table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableData {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// Everything a rollback must give back.
///
/// * `schema`: every `sqlite_schema` row (type, name, tbl_name, SQL with
///   whitespace runs collapsed to one space and trimmed), sorted by (type,
///   name), except the history table's own objects (its table, indexes,
///   triggers), `sqlite_sequence` itself (SQLite creates it with the first
///   AUTOINCREMENT table and never drops it) and `sqlite_stat*`.
/// * `sequences`: the contents of `sqlite_sequence`, except the history
///   table's row.
/// * `data`: every row of every other table, each value with its storage
///   class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub schema: Vec<SchemaEntry>,
    pub sequences: BTreeMap<String, Cell>,
    pub data: BTreeMap<String, TableData>,
}

/// Collapses whitespace runs to one space and trims.
pub fn normalize_sql(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Quotes an identifier for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn excluded_schema_object(e: &SchemaEntry) -> bool {
    e.tbl_name.eq_ignore_ascii_case(HISTORY)
        || e.tbl_name.eq_ignore_ascii_case(META)
        || e.name == "sqlite_sequence"
        || e.name.starts_with("sqlite_stat")
}

/// The tables whose rows the harness looks at: every table except SQLite's
/// own and the engine's (history, meta), sorted.
pub fn data_tables(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .filter(|n| !n.eq_ignore_ascii_case(HISTORY) && !n.eq_ignore_ascii_case(META))
        .collect()
}

/// `(name, declared type, notnull, pk)` of each column, in `PRAGMA
/// table_info` order.
pub fn table_columns(conn: &Connection, table: &str) -> Vec<(String, String, bool, bool)> {
    let mut stmt = conn
        .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid")
        .unwrap();
    stmt.query_map([table], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)? != 0,
            r.get::<_, i64>(3)? > 0,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn is_without_rowid(conn: &Connection, table: &str) -> bool {
    // pragma_index_list reports origin 'pk' for the primary key of a
    // WITHOUT ROWID table; simpler and exact: try to select the rowid.
    conn.prepare(&format!("SELECT rowid FROM {} LIMIT 0", quote_ident(table)))
        .is_err()
}

fn table_data(conn: &Connection, table: &str) -> TableData {
    let cols: Vec<String> = table_columns(conn, table)
        .into_iter()
        .map(|c| c.0)
        .collect();
    let list = cols
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let q = quote_ident(table);
    let (columns, sql) = if is_without_rowid(conn, table) {
        let order = if cols.iter().any(|c| c == "name") {
            "\"name\"".to_string()
        } else {
            list.clone()
        };
        (
            cols.clone(),
            format!("SELECT {list} FROM {q} ORDER BY {order}"),
        )
    } else {
        let mut c = vec!["rowid".to_string()];
        c.extend(cols.iter().cloned());
        // `_rowid_` would be shadowed by a column named rowid; the engine
        // never makes one, and a shadowing column just shows up twice.
        let select = if list.is_empty() {
            "rowid".to_string()
        } else {
            format!("rowid, {list}")
        };
        (c, format!("SELECT {select} FROM {q} ORDER BY rowid"))
    };
    let mut stmt = conn.prepare(&sql).unwrap();
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            Ok((0..n)
                .map(|i| Cell::from(r.get_ref(i).unwrap()))
                .collect::<Vec<_>>())
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    TableData { columns, rows }
}

/// The full state of the database (see [`State`]).
pub fn state(conn: &Connection) -> State {
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema")
        .unwrap();
    let mut schema: Vec<SchemaEntry> = stmt
        .query_map([], |r| {
            Ok(SchemaEntry {
                kind: r.get(0)?,
                name: r.get(1)?,
                tbl_name: r.get(2)?,
                sql: r.get::<_, Option<String>>(3)?.map(|s| normalize_sql(&s)),
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| !excluded_schema_object(e))
        .collect();
    schema.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));

    let has_sequence: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'sqlite_sequence'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut sequences = BTreeMap::new();
    if has_sequence {
        let mut stmt = conn
            .prepare("SELECT name, seq FROM sqlite_sequence ORDER BY name")
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let name: String = r.get(0).unwrap();
            if !name.eq_ignore_ascii_case(HISTORY) {
                sequences.insert(name, Cell::from(r.get_ref(1).unwrap()));
            }
        }
    }

    let data = data_tables(conn)
        .into_iter()
        .map(|t| {
            let d = table_data(conn, &t);
            (t, d)
        })
        .collect();
    State {
        schema,
        sequences,
        data,
    }
}

/// Row count of every data table.
pub fn row_counts(conn: &Connection) -> BTreeMap<String, i64> {
    data_tables(conn)
        .into_iter()
        .map(|t| {
            let n: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM {}", quote_ident(&t)),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            (t, n)
        })
        .collect()
}

fn show_row(columns: &[String], row: &[Cell]) -> String {
    let parts: Vec<String> = row
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let col = columns.get(i).map(String::as_str).unwrap_or("?");
            format!("{col}={c}")
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// The differences between two states, `expected` first, as readable lines
/// naming the object or table and the first differing entries or rows.
/// Empty when the states are equal.
pub fn diff_states(expected: &State, actual: &State) -> Vec<String> {
    let mut out = Vec::new();

    // Schema: paired by (type, name).
    let key = |e: &SchemaEntry| (e.kind.clone(), e.name.clone());
    let exp: BTreeMap<_, _> = expected.schema.iter().map(|e| (key(e), e)).collect();
    let act: BTreeMap<_, _> = actual.schema.iter().map(|e| (key(e), e)).collect();
    let mut schema_diffs = Vec::new();
    for (k, e) in &exp {
        match act.get(k) {
            None => schema_diffs.push(format!("schema: missing {e}")),
            Some(a) if a != e => schema_diffs.push(format!(
                "schema: {} {:?} differs:\n      expected: {e}\n      actual:   {a}",
                e.kind, e.name
            )),
            Some(_) => {}
        }
    }
    for (k, a) in &act {
        if !exp.contains_key(k) {
            schema_diffs.push(format!("schema: unexpected {a}"));
        }
    }
    let n = schema_diffs.len();
    out.extend(schema_diffs.into_iter().take(SHOW));
    if n > SHOW {
        out.push(format!(
            "schema: ... and {} more schema difference(s)",
            n - SHOW
        ));
    }

    // sqlite_sequence.
    let names: BTreeSet<&String> = expected
        .sequences
        .keys()
        .chain(actual.sequences.keys())
        .collect();
    for name in names {
        let (e, a) = (expected.sequences.get(name), actual.sequences.get(name));
        if e != a {
            let show = |c: Option<&Cell>| c.map_or("<no row>".to_string(), |c| c.to_string());
            out.push(format!(
                "sqlite_sequence: table {name:?}: expected seq {}, actual {}",
                show(e),
                show(a)
            ));
        }
    }

    // Data.
    let tables: BTreeSet<&String> = expected.data.keys().chain(actual.data.keys()).collect();
    for t in tables {
        match (expected.data.get(t), actual.data.get(t)) {
            (Some(e), None) => out.push(format!(
                "data: table {t:?} is missing (expected {} row(s))",
                e.rows.len()
            )),
            (None, Some(a)) => out.push(format!(
                "data: table {t:?} is unexpected ({} row(s))",
                a.rows.len()
            )),
            (Some(e), Some(a)) if e != a => out.extend(diff_table(t, e, a)),
            _ => {}
        }
    }
    out
}

fn diff_table(table: &str, e: &TableData, a: &TableData) -> Vec<String> {
    let mut out = Vec::new();
    if e.columns != a.columns {
        out.push(format!(
            "data: table {table:?}: columns differ:\n      expected: {:?}\n      actual:   {:?}",
            e.columns, a.columns
        ));
    }
    if e.rows.len() != a.rows.len() {
        out.push(format!(
            "data: table {table:?}: expected {} row(s), found {}",
            e.rows.len(),
            a.rows.len()
        ));
    }
    let mut shown = 0;
    let mut differing = 0;
    for i in 0..e.rows.len().max(a.rows.len()) {
        let (er, ar) = (e.rows.get(i), a.rows.get(i));
        if er == ar && e.columns == a.columns {
            continue;
        }
        differing += 1;
        if shown < SHOW {
            shown += 1;
            let show = |cols: &[String], r: Option<&Vec<Cell>>| {
                r.map_or("<no row>".to_string(), |r| show_row(cols, r))
            };
            out.push(format!(
                "data: table {table:?}: row #{i} differs:\n      expected: {}\n      actual:   {}",
                show(&e.columns, er),
                show(&a.columns, ar)
            ));
        }
    }
    if differing > shown {
        out.push(format!(
            "data: table {table:?}: ... and {} more differing row(s)",
            differing - shown
        ));
    }
    out
}

/// Panics with the differences when `actual` is not `expected`.
pub fn assert_states_equal(expected: &State, actual: &State, context: &str) {
    let diffs = diff_states(expected, actual);
    if !diffs.is_empty() {
        panic!(
            "{context}: the database differs from the state saved before the batch \
             ({} difference(s)):\n  {}",
            diffs.len(),
            diffs.join("\n  ")
        );
    }
}

// ---------------------------------------------------------------------------
// Filling
// ---------------------------------------------------------------------------

/// SQLite's column affinity of a declared type (the rules of section 3.1 of
/// the datatype documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    Integer,
    Text,
    Blob,
    Real,
    Numeric,
}

pub fn affinity(decl: &str) -> Affinity {
    let d = decl.to_ascii_uppercase();
    if d.contains("INT") {
        Affinity::Integer
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        Affinity::Text
    } else if d.is_empty() || d.contains("BLOB") {
        Affinity::Blob
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        Affinity::Real
    } else {
        Affinity::Numeric
    }
}

/// The value row `row` (0-based) of a generated fill puts in a column of
/// declared type `decl`.
///
/// Value rules: every value must survive what later releases do to its
/// column, in both directions, so that rolling back gives the same value
/// and storage class back and a forward conversion never has to drop it:
///
/// * INTEGER affinity (Int, Check, Long Int, an autoincrement `name`):
///   `row + 1` (1, 2, 3): small, unique per row, valid in a Check, exact
///   as REAL and as text.
/// * REAL affinity (Float, Currency, Percent, Rating, Duration):
///   `row + 2` as a real (2.0, 3.0, 4.0): integral, so REAL -> INTEGER is
///   lossless; unique per row.
/// * Everything else (VARCHAR(n), TEXT, no type, NUMERIC), `name`
///   included: integer-looking text unique per row, `'1001'`, `'1002'`,
///   `'1003'`: it is TEXT (so `name` stays a text primary key), survives
///   TEXT -> INTEGER -> TEXT and TEXT -> REAL round trips, fits any
///   VARCHAR length of 4 or more, and never collides when a later release
///   adds a UNIQUE index on the column.
///
/// Every column, nullable or not, gets a value, so every column's data is
/// moved by the rebuilds and conversions of later releases.
pub fn fill_value(decl: &str, row: usize) -> Value {
    match affinity(decl) {
        Affinity::Integer => Value::Integer(row as i64 + 1),
        Affinity::Real => Value::Real(row as f64 + 2.0),
        Affinity::Text | Affinity::Blob | Affinity::Numeric => {
            Value::Text((1001 + row).to_string())
        }
    }
}

/// Inserts [`FILL_ROWS`] generated rows (see [`fill_value`]) into every
/// data table that is empty. Tables that already hold rows (filled after
/// an earlier release) are left alone: their rows must be carried through.
/// Returns the tables filled.
pub fn fill_empty_tables(conn: &Connection) -> Vec<String> {
    let mut filled = Vec::new();
    for (table, n) in row_counts(conn) {
        if n > 0 {
            continue;
        }
        let cols = table_columns(conn, &table);
        if cols.is_empty() {
            continue;
        }
        let names = cols
            .iter()
            .map(|c| quote_ident(&c.0))
            .collect::<Vec<_>>()
            .join(", ");
        let params = (1..=cols.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO {} ({names}) VALUES ({params})",
            quote_ident(&table)
        );
        for row in 0..FILL_ROWS {
            let values: Vec<Value> = cols.iter().map(|c| fill_value(&c.1, row)).collect();
            conn.execute(&sql, rusqlite::params_from_iter(values.iter()))
                .unwrap_or_else(|e| panic!("filling table {table:?}, row {row}: {e}\n  {sql}"));
        }
        filled.push(table);
    }
    filled
}

// ---------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------

/// What one release did. Not every field is asserted on; all are in the
/// `Debug` output of a summary.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub struct StepSummary {
    /// The folder's name.
    pub label: String,
    /// DocTypes loaded.
    pub doctypes: usize,
    /// The batch id, when the release changed anything.
    pub batch_id: Option<String>,
    /// DocTypes migrated.
    pub migrations: Vec<String>,
    /// How many changes of each kind the release made (e.g. `add_column`).
    pub changes: BTreeMap<String, usize>,
    /// Warnings reported (Frappe quirks accepted).
    pub warnings: usize,
    /// Tables the harness filled after the release.
    pub filled: Vec<String>,
    /// Row counts after the release (before the fill).
    pub counts_after: BTreeMap<String, i64>,
}

/// What a whole replay did.
#[derive(Debug, Clone)]
pub struct ReplaySummary {
    pub steps: Vec<StepSummary>,
    /// Row counts at the end of the forward pass (after the last fill).
    pub final_counts: BTreeMap<String, i64>,
    /// Batches rolled back, newest first.
    pub rolled_back: Vec<String>,
}

/// The name to show for a release folder.
pub fn label_of(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// An error with its source chain, and the details the engine's refusals
/// carry (every blocking finding, every rollback refusal).
pub fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(&format!("\n    caused by: {inner}"));
        src = inner.source();
    }
    match e {
        Error::Blocked { findings } => {
            for f in findings.iter().filter(|f| f.blocking) {
                s.push_str(&format!("\n    blocking: {f}"));
            }
        }
        Error::RollbackRefused { plan } => {
            for r in &plan.refusals {
                s.push_str(&format!("\n    refusal: {r}"));
            }
        }
        _ => {}
    }
    s
}

fn integrity_check(conn: &Connection, context: &str) {
    let mut stmt = conn.prepare("PRAGMA integrity_check").unwrap();
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(lines, ["ok"], "{context}: PRAGMA integrity_check failed");
}

fn migrated(report: &ApplyReport) -> Vec<String> {
    report
        .migrations
        .iter()
        .map(|m| m.doctype.clone())
        .collect()
}

fn change_kinds(report: &ApplyReport) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for c in report.migrations.iter().flat_map(|m| &m.changes) {
        *kinds.entry(c.kind.to_string()).or_insert(0) += 1;
    }
    kinds
}

/// Replays `dirs` (one DocType folder per release, oldest first) forward
/// and back on a fresh database in a temporary directory; panics on any
/// failed check (see the module documentation). Progress goes to stderr.
pub fn replay(dirs: &[PathBuf]) -> ReplaySummary {
    assert!(!dirs.is_empty(), "replay: no release folders given");
    let keep = std::env::var_os("DM_REPLAY_KEEP").is_some();
    let mut tmp = tempfile::Builder::new()
        .prefix("dm-replay-")
        .tempdir()
        .unwrap();
    // DM_REPLAY_KEEP=1 keeps the database, backups and audit log for a
    // post-mortem, also when a check fails.
    tmp.disable_cleanup(keep);
    let db = tmp.path().join("app.db");
    let backups = tmp.path().join("backups");
    eprintln!("replay: database {}", db.display());
    let mut applier = MigrationApplier::builder(&db)
        .create_if_missing(true)
        .allow_data_loss(true)
        .backup_dir(&backups)
        .audit_log(tmp.path().join("audit.jsonl"))
        .applied_by("replay harness")
        .build()
        .unwrap_or_else(|e| panic!("replay: cannot open {}: {}", db.display(), describe(&e)));
    let conn = Connection::open(&db).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .unwrap();

    // before[k] = S_k, the state just before release k was applied.
    let mut before: Vec<State> = Vec::new();
    let mut steps: Vec<StepSummary> = Vec::new();

    for dir in dirs {
        let label = label_of(dir);
        let doctypes = load_paths(std::slice::from_ref(dir)).unwrap_or_else(|e| {
            panic!(
                "release {label}: load_paths({}) failed: {}",
                dir.display(),
                describe(&e)
            )
        });
        before.push(state(&conn));
        let counts_before = row_counts(&conn);

        let report = applier.sync_all(&doctypes).unwrap_or_else(|e| {
            panic!(
                "release {label}: sync_all of {} DocType(s) failed: {}",
                doctypes.len(),
                describe(&e)
            )
        });
        if let Some(failed) = report.failed().next() {
            panic!(
                "release {label}: DocType {:?} (table {:?}) failed: {}",
                failed.doctype,
                failed.table,
                failed.error.as_deref().unwrap_or("?")
            );
        }
        let context = format!("release {label} (forward)");
        integrity_check(&conn, &context);

        // (a) No row lost; no table gone.
        let counts_after = row_counts(&conn);
        for (table, n) in &counts_before {
            match counts_after.get(table) {
                None => panic!(
                    "{context}: table {table:?} disappeared (it held {n} row(s); orphan \
                     tables are kept by default)"
                ),
                Some(m) if m < n => {
                    panic!("{context}: table {table:?} lost rows: {n} before, {m} after")
                }
                Some(_) => {}
            }
        }

        // (b) A second sync of the same DocTypes is a no-op.
        let again = applier
            .sync_all(&doctypes)
            .unwrap_or_else(|e| panic!("{context}: the second sync_all failed: {}", describe(&e)));
        if !again.migrations.is_empty() {
            let what: Vec<String> = again
                .migrations
                .iter()
                .take(SHOW)
                .map(|m| {
                    let changes: Vec<String> = m.changes.iter().map(|c| c.to_string()).collect();
                    format!(
                        "{:?} (table {:?}): {}",
                        m.doctype,
                        m.table,
                        changes.join("; ")
                    )
                })
                .collect();
            panic!(
                "{context}: a second sync_all of the same DocTypes migrated {} DocType(s) \
                 again (not idempotent):\n  {}",
                again.migrations.len(),
                what.join("\n  ")
            );
        }

        // (c) Remember the batch.
        if report.batch_id.is_none() {
            assert!(
                report.migrations.is_empty(),
                "{context}: migrations ran without a batch id"
            );
        }

        let filled = fill_empty_tables(&conn);
        let changes = change_kinds(&report);
        let rows_moved: i64 = report.migrations.iter().map(|m| m.affected_rows).sum();
        eprintln!(
            "replay: {label}: {} DocType(s), {} migrated ({}), {rows_moved} row(s) copied, \
             {} warning(s), batch {}, filled {} table(s)",
            doctypes.len(),
            report.migrations.len(),
            changes
                .iter()
                .map(|(k, n)| format!("{k} x{n}"))
                .collect::<Vec<_>>()
                .join(", "),
            report.warnings.len(),
            report.batch_id.as_deref().unwrap_or("-"),
            filled.len()
        );
        steps.push(StepSummary {
            label,
            doctypes: doctypes.len(),
            batch_id: report.batch_id.clone(),
            migrations: migrated(&report),
            changes,
            warnings: report.warnings.len(),
            filled,
            counts_after,
        });
    }
    let final_counts = row_counts(&conn);

    // Roll back, newest first; after batch k the state must be S_k.
    let options = RollbackOptions::default()
        .with_allow_data_loss(true)
        .with_rolled_back_by("replay harness");
    let mut rolled_back = Vec::new();
    for (k, step) in steps.iter().enumerate().rev() {
        let context = format!("release {} (rollback of its batch)", step.label);
        let Some(batch) = &step.batch_id else {
            eprintln!(
                "replay: {}: nothing was applied, nothing to roll back",
                step.label
            );
            continue;
        };
        let report = applier.rollback_batch(batch, &options).unwrap_or_else(|e| {
            panic!(
                "{context}: rollback_batch({batch:?}) failed: {}",
                describe(&e)
            )
        });
        integrity_check(&conn, &context);
        assert_states_equal(&before[k], &state(&conn), &context);
        eprintln!(
            "replay: {}: rolled back {} migration(s); state equals the one before the batch",
            step.label,
            report.rolled_back.len()
        );
        rolled_back.push(batch.clone());
    }

    drop(conn);
    drop(applier);
    if keep {
        eprintln!("replay: kept {}", tmp.path().display());
    }
    ReplaySummary {
        steps,
        final_counts,
        rolled_back,
    }
}
