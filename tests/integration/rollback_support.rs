//! Helpers for the rollback tests: applying with backups, and exact
//! snapshots of a database (schema and every value with its storage class).

use std::collections::BTreeMap;
use std::sync::Arc;

use doctype_migrate::{
    ApplyReport, BackupManager, DocType, MigrationApplier, Result, RollbackOptions, default_dir_for,
};
use rusqlite::Connection;
use rusqlite::types::ValueRef;

/// The backup manager the applier uses by default for `db`.
pub fn manager(db: &std::path::Path) -> Arc<BackupManager> {
    Arc::new(
        BackupManager::builder()
            .dir(default_dir_for(db))
            .build()
            .unwrap(),
    )
}

/// Rollback options with the given backups.
pub fn options(backups: &Arc<BackupManager>) -> RollbackOptions {
    RollbackOptions::default()
        .with_backups(backups.clone())
        .with_rolled_back_by("tests")
}

/// `sync_all` through the real applier path, which takes the backups its
/// policy asks for (by default before destructive and rebuild steps) and
/// records them in the history row's `backup_path`. `backups` is the
/// manager for the same directory (the default beside the database).
pub fn sync_with_backups(
    applier: &mut MigrationApplier,
    backups: &BackupManager,
    doctypes: &[DocType],
) -> Result<ApplyReport> {
    let _ = backups;
    applier.sync_all(doctypes)
}

/// A value with its storage class, compared bit for bit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Val {
    Null,
    Integer(i64),
    Real(u64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl From<ValueRef<'_>> for Val {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => Val::Null,
            ValueRef::Integer(i) => Val::Integer(i),
            ValueRef::Real(f) => Val::Real(f.to_bits()),
            ValueRef::Text(t) => Val::Text(t.to_vec()),
            ValueRef::Blob(b) => Val::Blob(b.to_vec()),
        }
    }
}

/// Everything about a database that a rollback must give back: the
/// `sqlite_schema` rows (sorted; the history table's own left out) and every
/// row of every table with its rowid, plus `sqlite_sequence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub schema: Vec<(String, String, String, Option<String>)>,
    pub rows: BTreeMap<String, Vec<Vec<Val>>>,
}

const HISTORY: &str = "tabMigrationHistory";

pub fn snapshot(conn: &Connection) -> Snapshot {
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")
        .unwrap();
    let schema: Vec<(String, String, String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .filter(|o: &(String, String, String, Option<String>)| o.2 != HISTORY)
        .collect();
    let mut rows = BTreeMap::new();
    for (kind, name, _, _) in &schema {
        if kind != "table" {
            continue;
        }
        let q = format!("\"{}\"", name.replace('"', "\"\""));
        let sql = if name == "sqlite_sequence" {
            format!("SELECT * FROM {q} WHERE name <> '{HISTORY}' ORDER BY name")
        } else {
            let without_rowid: bool = conn
                .query_row(
                    "SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_schema WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .unwrap();
            if without_rowid {
                format!("SELECT * FROM {q} ORDER BY 1")
            } else {
                format!("SELECT rowid, * FROM {q} ORDER BY rowid")
            }
        };
        let mut stmt = conn.prepare(&sql).unwrap();
        let n = stmt.column_count();
        let table_rows: Vec<Vec<Val>> = stmt
            .query_map([], |r| {
                Ok((0..n).map(|i| Val::from(r.get_ref(i).unwrap())).collect())
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.insert(name.clone(), table_rows);
    }
    Snapshot { schema, rows }
}

/// The status of a migration.
pub fn status(conn: &Connection, id: i64) -> String {
    conn.query_row(
        "SELECT status FROM \"tabMigrationHistory\" WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .unwrap()
}
