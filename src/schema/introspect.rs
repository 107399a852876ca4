//! Reading the live schema: tables, columns, indexes, foreign keys, triggers
//! and views, from `sqlite_schema` and the table-valued pragmas. Table names
//! are always bound as parameters, never pasted into SQL.

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

use super::spec::{ColumnSpec, IndexSpec, TableSpec, is_managed_index, normalize_type};

/// One row of `sqlite_schema`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaObject {
    /// `table`, `index`, `view` or `trigger`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Object name.
    pub name: String,
    /// The table it belongs to.
    pub tbl_name: String,
    /// Its SQL (NULL for automatic indexes).
    pub sql: Option<String>,
}

/// The whole `sqlite_schema`, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaSnapshot {
    /// Every object, in `sqlite_schema` order (rowid).
    pub objects: Vec<SchemaObject>,
}

impl SchemaSnapshot {
    /// Reads `sqlite_schema`.
    pub fn read(conn: &Connection) -> Result<SchemaSnapshot> {
        const SQL: &str = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid";
        read_objects(conn, SQL, [])
    }

    /// Reads only the objects that belong to one table (`tbl_name`): the
    /// table, its indexes and triggers. Cheaper than [`SchemaSnapshot::read`]
    /// in large schemas; views that mention the table are not included.
    pub fn read_table(conn: &Connection, table: &str) -> Result<SchemaSnapshot> {
        const SQL: &str = "SELECT type, name, tbl_name, sql FROM sqlite_schema \
                           WHERE tbl_name = ?1 COLLATE NOCASE ORDER BY rowid";
        read_objects(conn, SQL, [table])
    }

    /// The largest rowid in `sqlite_schema` (0 when it is empty): a mark
    /// for [`SchemaSnapshot::read_added`]. One seek, no scan.
    pub fn last_rowid(conn: &Connection) -> Result<i64> {
        const SQL: &str = "SELECT coalesce(max(rowid), 0) FROM sqlite_schema";
        let mut stmt = conn.prepare_cached(SQL).map_err(|e| Error::sql(SQL, e))?;
        stmt.query_row([], |r| r.get(0))
            .map_err(|e| Error::sql(SQL, e))
    }

    /// The objects added to `sqlite_schema` since [`SchemaSnapshot::last_rowid`]
    /// gave `mark`, in rowid order: a seek to the mark, not a scan of the
    /// whole schema. After statements that only created one table, its
    /// objects (as [`SchemaSnapshot::read_table`] reads them) are those
    /// with that `tbl_name`: nothing can belong to a table before it exists.
    pub fn read_added(conn: &Connection, mark: i64) -> Result<SchemaSnapshot> {
        const SQL: &str = "SELECT type, name, tbl_name, sql FROM sqlite_schema \
                           WHERE rowid > ?1 ORDER BY rowid";
        read_objects(conn, SQL, [mark])
    }

    /// Only the objects of one table (`tbl_name`, case-insensitive).
    pub fn of_table(mut self, table: &str) -> SchemaSnapshot {
        self.objects
            .retain(|o| o.tbl_name.eq_ignore_ascii_case(table));
        self
    }

    /// The table with this name (case-insensitive), if any.
    pub fn table(&self, name: &str) -> Option<&SchemaObject> {
        self.objects
            .iter()
            .find(|o| o.kind == "table" && o.name.eq_ignore_ascii_case(name))
    }

    /// Views whose SQL mentions the table.
    pub fn views_mentioning(&self, table: &str) -> Vec<SchemaObject> {
        self.objects
            .iter()
            .filter(|o| o.kind == "view" && mentions(o, table))
            .cloned()
            .collect()
    }

    /// A fingerprint of one table's schema: SHA-256 over the SQL of the table
    /// and of its indexes and triggers. Changes when anything about the table
    /// is altered, inside or outside the engine.
    pub fn table_fingerprint(&self, table: &str) -> Option<String> {
        self.table(table)?;
        Some(fingerprint_of(
            self.objects
                .iter()
                .filter(|o| o.tbl_name.eq_ignore_ascii_case(table)),
        ))
    }

    /// One fingerprint of the whole schema (every object, in order).
    pub fn fingerprint(&self) -> String {
        fingerprint_of(self.objects.iter())
    }

    /// [`SchemaSnapshot::table_fingerprint`] of every table at once, keyed by
    /// lowercase table name: one pass over the snapshot instead of one per table.
    pub fn table_fingerprints(&self) -> std::collections::HashMap<String, String> {
        let mut groups: std::collections::HashMap<String, Vec<&SchemaObject>> = Default::default();
        for o in &self.objects {
            groups
                .entry(o.tbl_name.to_ascii_lowercase())
                .or_default()
                .push(o);
        }
        groups
            .into_iter()
            .filter(|(_, objs)| objs.iter().any(|o| o.kind == "table"))
            .map(|(t, objs)| (t, fingerprint_of(objs.into_iter())))
            .collect()
    }
}

fn fingerprint_of<'a>(objects: impl Iterator<Item = &'a SchemaObject>) -> String {
    let mut h = Sha256::new();
    for o in objects {
        for part in [
            o.kind.as_str(),
            o.name.as_str(),
            o.sql.as_deref().unwrap_or(""),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
    }
    hex(&h.finalize())
}

fn read_objects<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> Result<SchemaSnapshot> {
    let mut stmt = conn.prepare_cached(sql).map_err(|e| Error::sql(sql, e))?;
    let objects = stmt
        .query_map(params, |r| {
            Ok(SchemaObject {
                kind: r.get(0)?,
                name: r.get(1)?,
                tbl_name: r.get(2)?,
                sql: r.get(3)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| Error::sql(sql, e))?;
    Ok(SchemaSnapshot { objects })
}

fn mentions(o: &SchemaObject, table: &str) -> bool {
    o.kind != "table"
        && o.sql.as_deref().is_some_and(|sql| {
            sql.to_ascii_lowercase()
                .contains(&table.to_ascii_lowercase())
        })
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A foreign key of a table (one row per column pair).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    /// The referenced (parent) table.
    pub table: String,
    /// The column in this table.
    pub from: String,
    /// The referenced column (None = parent's primary key).
    pub to: Option<String>,
    /// ON DELETE action.
    pub on_delete: String,
}

/// A live index with what the engine needs to recreate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveIndex {
    /// Name, columns and uniqueness.
    pub spec: IndexSpec,
    /// `c` (CREATE INDEX), `u` (UNIQUE constraint) or `pk`.
    pub origin: String,
    /// Has a WHERE clause.
    pub partial: bool,
    /// Its CREATE statement (None for indexes SQLite creates for constraints).
    pub sql: Option<String>,
}

/// Per-column facts not in [`ColumnSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveColumn {
    /// Column name.
    pub name: String,
    /// Collation, when not BINARY.
    pub collation: Option<String>,
    /// A generated column (cannot be inserted into).
    pub generated: bool,
}

/// A live table as introspected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveTable {
    /// Columns and all indexes (managed and not).
    pub spec: TableSpec,
    /// The table's CREATE TABLE statement as stored.
    pub sql: String,
    /// Collation and generated flags per column.
    pub columns: Vec<LiveColumn>,
    /// Every index with its SQL.
    pub indexes: Vec<LiveIndex>,
    /// Triggers on the table.
    pub triggers: Vec<SchemaObject>,
    /// Views whose SQL mentions the table.
    pub views: Vec<SchemaObject>,
    /// Foreign keys declared by the table.
    pub foreign_keys: Vec<ForeignKey>,
    /// The table's AUTOINCREMENT counter (`sqlite_sequence.seq`), when it
    /// has one: a rebuild that takes AUTOINCREMENT away must be able to
    /// give it back on rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<i64>,
}

impl LiveTable {
    /// Indexes the engine did not create.
    pub fn unmanaged_indexes(&self) -> impl Iterator<Item = &LiveIndex> {
        self.indexes
            .iter()
            .filter(|i| !is_managed_index(&i.spec.name))
    }
}

/// Introspects one table; `None` when it does not exist.
pub fn introspect_table(
    conn: &Connection,
    snapshot: &SchemaSnapshot,
    table: &str,
) -> Result<Option<LiveTable>> {
    let Some(obj) = snapshot.table(table) else {
        return Ok(None);
    };
    let name = obj.name.clone();
    let sql = obj.sql.clone().unwrap_or_default();
    let autoincrement = sql.to_ascii_uppercase().contains("AUTOINCREMENT");

    let (columns, live_columns) = read_columns(conn, &name)?;

    let indexes = read_indexes(conn, snapshot, &name)?;
    let foreign_keys = read_foreign_keys(conn, &name)?;
    let triggers = snapshot
        .objects
        .iter()
        .filter(|o| o.kind == "trigger" && o.tbl_name.eq_ignore_ascii_case(&name))
        .cloned()
        .collect();
    let views = snapshot.views_mentioning(&name);
    let sequence = if autoincrement {
        read_sequence(conn, &name)?
    } else {
        None
    };
    Ok(Some(LiveTable {
        spec: TableSpec {
            name: name.clone(),
            columns,
            indexes: indexes.iter().map(|i| i.spec.clone()).collect(),
            autoincrement,
        },
        sql,
        columns: live_columns,
        indexes,
        triggers,
        views,
        foreign_keys,
        sequence,
    }))
}

/// The table's row in `sqlite_sequence`, if there is one (the table exists
/// only once some AUTOINCREMENT table has had a row inserted).
fn read_sequence(conn: &Connection, table: &str) -> Result<Option<i64>> {
    const SQL: &str = "SELECT seq FROM sqlite_sequence WHERE name = ?1";
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_sequence')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| Error::Sql {
            doctype: None,
            table: Some(table.to_string()),
            sql: "SELECT EXISTS (... sqlite_sequence)".to_string(),
            source: Box::new(e),
        })?;
    if !has_table {
        return Ok(None);
    }
    conn.query_row(SQL, [table], |r| r.get(0))
        .optional()
        .map_err(|e| Error::Sql {
            doctype: None,
            table: Some(table.to_string()),
            sql: SQL.to_string(),
            source: Box::new(e),
        })
}

/// Columns of a table from `pragma_table_xinfo`, with collations.
fn read_columns(conn: &Connection, name: &str) -> Result<(Vec<ColumnSpec>, Vec<LiveColumn>)> {
    const COLS: &str = "SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid";
    let mut stmt = conn.prepare_cached(COLS).map_err(|e| Error::sql(COLS, e))?;
    let raw: Vec<(String, String, bool, Option<String>, i64, i64)> = stmt
        .query_map([name], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sql(COLS, e).in_context("", name))?;
    let mut columns = Vec::new();
    let mut live_columns = Vec::new();
    for (col, decl, not_null, default, pk, hidden) in raw {
        if hidden == 1 {
            continue; // hidden columns of virtual tables
        }
        let collation = conn
            .column_metadata(None::<&str>, name, col.as_str())
            .ok()
            .and_then(|m| m.1.map(|c| c.to_string_lossy().into_owned()))
            .filter(|c| !c.eq_ignore_ascii_case("BINARY"));
        live_columns.push(LiveColumn {
            name: col.clone(),
            collation,
            generated: hidden >= 2,
        });
        columns.push(ColumnSpec {
            name: col,
            decl_type: normalize_type(&decl),
            not_null,
            default,
            primary_key: pk > 0,
        });
    }

    Ok((columns, live_columns))
}

/// Columns and indexes of a table from the pragmas alone, without reading
/// `sqlite_schema` (whose lookups are full scans): what verification needs.
/// `None` when the table does not exist. `autoincrement` is not read.
pub fn table_spec(conn: &Connection, table: &str) -> Result<Option<TableSpec>> {
    let (columns, _) = read_columns(conn, table)?;
    if columns.is_empty() {
        return Ok(None);
    }
    let indexes = read_indexes(conn, &SchemaSnapshot::default(), table)?
        .into_iter()
        .map(|i| i.spec)
        .collect();
    Ok(Some(TableSpec {
        name: table.to_string(),
        columns,
        indexes,
        autoincrement: false,
    }))
}

fn read_indexes(
    conn: &Connection,
    snapshot: &SchemaSnapshot,
    table: &str,
) -> Result<Vec<LiveIndex>> {
    const LIST: &str =
        "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1) ORDER BY name";
    const INFO: &str = "SELECT name FROM pragma_index_info(?1) ORDER BY seqno";
    let mut list = conn.prepare_cached(LIST).map_err(|e| Error::sql(LIST, e))?;
    let rows: Vec<(String, bool, String, bool)> = list
        .query_map([table], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sql(LIST, e))?;
    let mut info = conn.prepare_cached(INFO).map_err(|e| Error::sql(INFO, e))?;
    let mut out = Vec::with_capacity(rows.len());
    for (name, unique, origin, partial) in rows {
        let columns: Vec<String> = info
            .query_map([&name], |r| {
                Ok(r.get::<_, Option<String>>(0)?
                    .unwrap_or_else(|| "<expr>".into()))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| Error::sql(INFO, e))?;
        let sql = snapshot
            .objects
            .iter()
            .find(|o| o.kind == "index" && o.name == name)
            .and_then(|o| o.sql.clone());
        out.push(LiveIndex {
            spec: IndexSpec {
                name,
                columns,
                unique,
            },
            origin,
            partial,
            sql,
        });
    }
    Ok(out)
}

fn read_foreign_keys(conn: &Connection, table: &str) -> Result<Vec<ForeignKey>> {
    const FK: &str = "SELECT \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq";
    let mut stmt = conn.prepare_cached(FK).map_err(|e| Error::sql(FK, e))?;
    stmt.query_map([table], |r| {
        Ok(ForeignKey {
            table: r.get(0)?,
            from: r.get(1)?,
            to: r.get(2)?,
            on_delete: r.get(3)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(|e| Error::sql(FK, e))
}

/// Tables whose foreign keys reference `table` (its children).
pub fn referencing_tables(conn: &Connection, table: &str) -> Result<Vec<String>> {
    const SQL: &str = "SELECT DISTINCT m.name FROM sqlite_schema AS m, pragma_foreign_key_list(m.name) AS f \
                       WHERE m.type = 'table' AND f.\"table\" = ?1 COLLATE NOCASE ORDER BY m.name";
    let mut stmt = conn.prepare_cached(SQL).map_err(|e| Error::sql(SQL, e))?;
    stmt.query_map([table], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sql(SQL, e))
}

pub use crate::db::lock::foreign_keys_enabled;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn introspects_columns_indexes_fks_triggers_and_views() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE p (id INTEGER PRIMARY KEY AUTOINCREMENT);
             CREATE TABLE \"tabX\" (name TEXT NOT NULL PRIMARY KEY, qty INTEGER NOT NULL DEFAULT 0,
                 code TEXT COLLATE NOCASE UNIQUE, pid INTEGER REFERENCES p(id) ON DELETE CASCADE,
                 total INTEGER GENERATED ALWAYS AS (qty * 2) VIRTUAL, CHECK (qty >= 0));
             CREATE INDEX dm_idx__tabX__qty ON \"tabX\"(qty);
             CREATE INDEX user_idx ON \"tabX\"(code) WHERE code IS NOT NULL;
             CREATE TRIGGER t1 AFTER INSERT ON \"tabX\" BEGIN SELECT 1; END;
             CREATE VIEW v AS SELECT name FROM \"tabX\";",
        )
        .unwrap();
        let snap = SchemaSnapshot::read(&conn).unwrap();
        let t = introspect_table(&conn, &snap, "tabx").unwrap().unwrap();
        assert_eq!(t.spec.name, "tabX");
        let names: Vec<_> = t.spec.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["name", "qty", "code", "pid", "total"]);
        let qty = t.spec.column("qty").unwrap();
        assert!(qty.not_null);
        assert_eq!(qty.default.as_deref(), Some("0"));
        assert!(t.spec.column("name").unwrap().primary_key);
        assert_eq!(t.columns[2].collation.as_deref(), Some("NOCASE"));
        assert!(t.columns[4].generated);
        assert_eq!(t.indexes.len(), 4, "{:?}", t.indexes);
        let user = t
            .indexes
            .iter()
            .find(|i| i.spec.name == "user_idx")
            .unwrap();
        assert!(user.partial);
        assert_eq!(t.unmanaged_indexes().count(), 3);
        assert_eq!(t.foreign_keys[0].on_delete, "CASCADE");
        assert_eq!(t.triggers.len(), 1);
        assert_eq!(t.views.len(), 1);
        assert_eq!(referencing_tables(&conn, "p").unwrap(), ["tabX"]);
        assert!(introspect_table(&conn, &snap, "nope").unwrap().is_none());
        let fp = snap.table_fingerprint("tabX").unwrap();
        conn.execute_batch("CREATE INDEX other ON \"tabX\"(pid)")
            .unwrap();
        let snap2 = SchemaSnapshot::read(&conn).unwrap();
        assert_ne!(snap2.table_fingerprint("tabX").unwrap(), fp);
    }

    #[test]
    fn the_rows_added_since_a_mark_are_a_new_tables_objects() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE a (x); CREATE TABLE b (y); DROP TABLE b; CREATE INDEX ax ON a (x)",
        )
        .unwrap();
        let mark = SchemaSnapshot::last_rowid(&conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE \"tabX\" (name TEXT PRIMARY KEY, n INTEGER, u UNIQUE);
             CREATE INDEX ix ON \"tabX\" (n)",
        )
        .unwrap();
        let added = SchemaSnapshot::read_added(&conn, mark).unwrap();
        assert_eq!(added.objects.len(), 4, "{added:?}");
        assert_eq!(
            added.of_table("TABX"),
            SchemaSnapshot::read_table(&conn, "tabX").unwrap()
        );
        assert_eq!(
            SchemaSnapshot::read_added(&conn, SchemaSnapshot::last_rowid(&conn).unwrap()).unwrap(),
            SchemaSnapshot::default()
        );
    }
}
