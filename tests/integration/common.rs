//! Helpers shared by the integration tests: real database files in
//! temporary directories.

use std::path::{Path, PathBuf};

use doctype_migrate::{DocType, MigrationApplier};
use rusqlite::Connection;
use tempfile::TempDir;

/// A temporary directory holding `app.db`.
pub struct TestDb {
    pub dir: TempDir,
    pub path: PathBuf,
}

impl TestDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        TestDb { dir, path }
    }

    /// A fresh database file created with `sql`.
    pub fn with_sql(sql: &str) -> Self {
        let db = TestDb::new();
        db.conn().execute_batch(sql).unwrap();
        db
    }

    pub fn conn(&self) -> Connection {
        Connection::open(&self.path).unwrap()
    }

    pub fn applier(&self) -> MigrationApplier {
        MigrationApplier::builder(&self.path)
            .create_if_missing(true)
            .build()
            .unwrap()
    }

    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap_or_default()
    }

    /// `(type, name, sql)` of every sqlite_schema row, sorted.
    pub fn schema(&self) -> Vec<(String, String, Option<String>)> {
        schema_of(&self.conn())
    }
}

pub fn schema_of(conn: &Connection) -> Vec<(String, String, Option<String>)> {
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Column `(name, type, notnull, default, pk)` of a table.
pub fn columns(
    conn: &Connection,
    table: &str,
) -> Vec<(String, String, bool, Option<String>, bool)> {
    let mut stmt = conn
        .prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid")
        .unwrap();
    stmt.query_map([table], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get::<_, i64>(4)? > 0,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

pub fn column_names(conn: &Connection, table: &str) -> Vec<String> {
    columns(conn, table).into_iter().map(|c| c.0).collect()
}

pub fn index_names(conn: &Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_index_list(?1) ORDER BY name")
        .unwrap();
    stmt.query_map([table], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

pub fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The header of `doctype-migrate history`, column by column.
pub const HISTORY_COLUMNS: [&str; 14] = [
    "id",
    "doctype",
    "version",
    "status",
    "timestamp",
    "changes",
    "ms",
    "rows",
    "val_ms",
    "bak_ms",
    "exe_ms",
    "ver_ms",
    "copied",
    "backup",
];

/// Parses one DocType from JSON text.
pub fn doctype(json: &str) -> DocType {
    doctype_migrate::doctypes_from_json(json, "<test>")
        .unwrap()
        .remove(0)
}

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// The name libtest gives test `name` of module `module` (its
/// `module_path!()`): the path below the crate, e.g. `audit::child_entry`.
/// For re-running this test binary on one test (`--exact`).
pub fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_string(),
    }
}

/// The shared Frappe corpus, when present beside the repository.
pub fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/frappe-v16-doctypes");
    p.is_dir().then_some(p)
}

/// A table created outside the engine whose CHECK rejects what the Gauge
/// DocType's type change (Data -> Int) writes: the rebuild's copy fails
/// inside SQLite, at execution, after validation passed. The way to test
/// what happens when a DocType fails mid-batch.
pub const GAUGE_TRAP: &str = "CREATE TABLE \"tabGauge\" (
    \"name\" VARCHAR(140) NOT NULL PRIMARY KEY, \"creation\" TEXT, \"modified\" TEXT,
    \"modified_by\" VARCHAR(140), \"owner\" VARCHAR(140),
    \"docstatus\" INTEGER NOT NULL DEFAULT 0, \"idx\" INTEGER NOT NULL DEFAULT 0,
    \"reading\" VARCHAR(140) CHECK (typeof(\"reading\") = 'text'));
    INSERT INTO \"tabGauge\" (name, reading) VALUES ('g1', '12'), ('g2', '13');";
