//! Reading and writing `tabMigrationHistory`.
//!
//! Rows are written inside the transaction (and savepoint) of the change they
//! record (invariant "History in the same transaction"). Status changes go through [`set_status`], which
//! enforces the lifecycle.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use crate::outcome::{MigrationId, MigrationStatus};

/// Name of the history table.
pub const HISTORY_TABLE: &str = "tabMigrationHistory";

/// Columns of the history table and their definitions, in order. New
/// columns are added to existing history tables by [`ensure_table`].
const COLUMNS: &[(&str, &str)] = &[
    ("id", "INTEGER PRIMARY KEY AUTOINCREMENT"),
    ("batch_id", "TEXT"),
    ("doctype", "TEXT NOT NULL"),
    ("table_name", "TEXT NOT NULL"),
    ("version", "INTEGER NOT NULL"),
    ("timestamp", "TEXT NOT NULL"),
    ("sql", "TEXT NOT NULL DEFAULT '[]'"),
    ("rollback_sql", "TEXT NOT NULL DEFAULT '[]'"),
    ("changes", "TEXT NOT NULL DEFAULT '[]'"),
    ("status", "TEXT NOT NULL CHECK (status IN (%STATUSES%))"),
    ("applied_by", "TEXT NOT NULL DEFAULT ''"),
    ("execution_time", "REAL"),
    ("affected_rows", "INTEGER"),
    ("backup_path", "TEXT"),
    ("error", "TEXT"),
    ("rollback_info", "TEXT"),
    ("target_fingerprint", "TEXT"),
    ("fingerprint_before", "TEXT"),
    ("fingerprint_after", "TEXT"),
    ("schema_before", "TEXT"),
    ("schema_after", "TEXT"),
    ("metrics", "TEXT"),
    ("backup_sha256", "TEXT"),
];

/// One row of `tabMigrationHistory`. Serialized with the column names as
/// keys; `sql`, `rollback_sql`, `changes`, `schema_before` and
/// `schema_after` are JSON stored as text and given back parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistoryRow {
    /// Migration id.
    pub id: MigrationId,
    /// The `sync_all` call (batch) it belongs to.
    pub batch_id: Option<String>,
    /// The DocType.
    pub doctype: String,
    /// Its table.
    pub table_name: String,
    /// Per-DocType sequence number, 1 for the first migration.
    pub version: i64,
    /// When it was recorded (RFC 3339, UTC).
    pub timestamp: String,
    /// Forward statements.
    pub sql: Vec<String>,
    /// Statements that undo it.
    pub rollback_sql: Vec<String>,
    /// The changes it made.
    pub changes: serde_json::Value,
    /// Lifecycle status.
    pub status: MigrationStatus,
    /// Who applied it.
    pub applied_by: String,
    /// Milliseconds spent executing.
    pub execution_time: Option<f64>,
    /// Rows copied or changed.
    pub affected_rows: Option<i64>,
    /// Backup files taken before it (JSON array as text), if any.
    pub backup_path: Option<String>,
    /// Error text of a failed migration.
    pub error: Option<String>,
    /// What a rollback did.
    pub rollback_info: Option<String>,
    /// SHA-256 of the target table spec.
    pub target_fingerprint: Option<String>,
    /// Table schema fingerprint before.
    pub fingerprint_before: Option<String>,
    /// Table schema fingerprint after.
    pub fingerprint_after: Option<String>,
    /// `sqlite_schema` rows of the table before.
    pub schema_before: serde_json::Value,
    /// `sqlite_schema` rows of the table after.
    pub schema_after: serde_json::Value,
    /// Time per phase, rows copied, bytes backed up.
    pub metrics: serde_json::Value,
    /// The SHA-256 identifying each backup in `backup_path` (same order; a
    /// JSON array of hex strings as text): the backup's header checksum,
    /// which covers its manifest and so its payload's SHA-256. Rollback
    /// refuses a file that does not match.
    #[serde(default)]
    pub backup_sha256: Option<String>,
}

/// What is known about a migration when it starts.
#[derive(Debug, Clone, Default)]
pub struct NewMigration {
    /// Batch id.
    pub batch_id: Option<String>,
    /// DocType.
    pub doctype: String,
    /// Table.
    pub table_name: String,
    /// Forward statements.
    pub sql: Vec<String>,
    /// Rollback statements.
    pub rollback_sql: Vec<String>,
    /// Changes, as JSON.
    pub changes: serde_json::Value,
    /// Who applies it.
    pub applied_by: String,
    /// Target spec fingerprint.
    pub target_fingerprint: Option<String>,
    /// Table fingerprint before.
    pub fingerprint_before: Option<String>,
    /// `sqlite_schema` rows before, as JSON.
    pub schema_before: serde_json::Value,
}

/// What is recorded when a migration completes.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// Milliseconds spent.
    pub execution_time: f64,
    /// Rows copied or changed.
    pub affected_rows: i64,
    /// Table fingerprint after.
    pub fingerprint_after: Option<String>,
    /// `sqlite_schema` rows after.
    pub schema_after: serde_json::Value,
    /// Backup files (JSON array text).
    pub backup_path: Option<String>,
    /// Where the time went (JSON).
    pub metrics: serde_json::Value,
    /// SHA-256 of each backup in `backup_path`, same order (JSON array
    /// text; see [`HistoryRow::backup_sha256`]).
    pub backup_sha256: Option<String>,
}

fn q(name: &str) -> String {
    crate::ident::quote(name)
}

/// Whether the history table exists.
pub fn table_exists(conn: &Connection) -> Result<bool> {
    const SQL: &str = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1";
    conn.query_row(SQL, [HISTORY_TABLE], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(|e| Error::sql(SQL, e))
}

/// Refuses to go on when the engine's own tables (`tabMigration*`) carry
/// triggers, or views read them: a trigger on the history table fires
/// inside the engine's transaction (one deleted every customer during an
/// apply), and the engine never creates either. Call under the lock,
/// before writing.
pub fn check_engine_tables(conn: &Connection) -> Result<()> {
    const SQL: &str = "SELECT type, name, tbl_name FROM sqlite_schema \
         WHERE (type = 'trigger' AND lower(tbl_name) LIKE 'tabmigration%') \
            OR (type = 'view' AND lower(sql) LIKE '%tabmigration%') \
         ORDER BY type, name LIMIT 1";
    let found: Option<(String, String, String)> = conn
        .query_row(SQL, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .map_err(|e| Error::sql(SQL, e))?;
    match found {
        None => Ok(()),
        Some((kind, name, table)) => Err(Error::EngineTableTampered {
            object: format!("{kind} {:?}", crate::db::sqlguard::printable(&name)),
            table: if kind == "trigger" {
                table
            } else {
                HISTORY_TABLE.to_string()
            },
        }),
    }
}

/// Creates the history table (and the engine's meta table with the
/// database id, see [`ensure_database_id`]) if missing, and adds columns
/// newer versions need.
pub fn ensure_table(conn: &Connection) -> Result<()> {
    ensure_history_table(conn)?;
    ensure_database_id(conn).map(drop)
}

/// A column's definition, with the status CHECK listing every status.
fn column_definition(def: &str) -> String {
    let statuses: Vec<String> = MigrationStatus::ALL
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    def.replace("%STATUSES%", &statuses.join(", "))
}

/// `CREATE TABLE` of the history table under `name`, every column.
fn create_history_sql(name: &str) -> String {
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|(n, d)| format!("  {} {}", q(n), column_definition(d)))
        .collect();
    format!("CREATE TABLE {} (\n{}\n)", q(name), cols.join(",\n"))
}

const HISTORY_INDEX: &str = "dm_history__doctype_status";

fn create_history_index(conn: &Connection) -> Result<()> {
    let idx = format!(
        "CREATE INDEX {} ON {} (doctype, status)",
        q(HISTORY_INDEX),
        q(HISTORY_TABLE)
    );
    conn.execute_batch(&idx).map_err(|e| Error::sql(&idx, e))
}

fn ensure_history_table(conn: &Connection) -> Result<()> {
    if !table_exists(conn)? {
        let sql = create_history_sql(HISTORY_TABLE);
        conn.execute_batch(&sql).map_err(|e| Error::sql(&sql, e))?;
        return create_history_index(conn);
    }
    const INFO: &str = "SELECT name FROM pragma_table_info(?1)";
    let mut stmt = conn.prepare(INFO).map_err(|e| Error::sql(INFO, e))?;
    let have: Vec<String> = stmt
        .query_map([HISTORY_TABLE], |r| r.get(0))
        .and_then(|r| r.collect())
        .map_err(|e| Error::sql(INFO, e))?;
    for (name, def) in COLUMNS {
        if !have.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            let def = column_definition(def).replace(" NOT NULL", "");
            let sql = format!(
                "ALTER TABLE {} ADD COLUMN {} {def}",
                q(HISTORY_TABLE),
                q(name)
            );
            conn.execute_batch(&sql).map_err(|e| Error::sql(&sql, e))?;
        }
    }
    Ok(())
}

/// Makes the history table accept every status of
/// [`MigrationStatus::ALL`]: a table created before the `expanded` status
/// existed has a CHECK that refuses it, and a CHECK cannot be altered, so
/// the table is rebuilt (create new, copy, drop old, rename new, as for
/// any table) with every row and id kept. Call under the write lock,
/// after [`ensure_table`]; a no-op when the CHECK already lists
/// `expanded`.
pub fn ensure_expanded_status(conn: &Connection) -> Result<()> {
    const SQL: &str = "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1";
    let sql: String = conn
        .query_row(SQL, [HISTORY_TABLE], |r| r.get(0))
        .map_err(|e| Error::sql(SQL, e))?;
    if sql.contains("'expanded'") {
        return Ok(());
    }
    let temp = format!("{HISTORY_TABLE}__dm_new");
    let cols: Vec<String> = COLUMNS.iter().map(|(n, _)| q(n)).collect();
    let cols = cols.join(", ");
    let steps = [
        create_history_sql(&temp),
        format!(
            "INSERT INTO {} ({cols}) SELECT {cols} FROM {}",
            q(&temp),
            q(HISTORY_TABLE)
        ),
        format!("DROP TABLE {}", q(HISTORY_TABLE)),
        format!("ALTER TABLE {} RENAME TO {}", q(&temp), q(HISTORY_TABLE)),
    ];
    for step in &steps {
        conn.execute_batch(step).map_err(|e| Error::sql(step, e))?;
    }
    create_history_index(conn)
}

/// The engine's key/value table. It holds one key, `database_id`: 16
/// random bytes (32 hex digits) naming this database, written into every
/// backup manifest and compared on restore and rollback, so that a backup
/// taken from another database is refused.
pub const META_TABLE: &str = "tabMigrationMeta";

/// The key of the database id in [`META_TABLE`].
const DATABASE_ID_KEY: &str = "database_id";

/// This database's id, if it has one (`None` when [`META_TABLE`] or the
/// key is missing, or the value is not 32 hex digits).
pub fn database_id(conn: &Connection) -> Result<Option<String>> {
    Ok(meta_value(conn, DATABASE_ID_KEY)?.filter(|v| {
        v.len() == 32
            && v.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }))
}

/// The value of `key` in [`META_TABLE`]; `None` when the table or the key
/// is missing.
fn meta_value(conn: &Connection, key: &str) -> Result<Option<String>> {
    const EXISTS: &str =
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE";
    let exists = conn
        .query_row(EXISTS, [META_TABLE], |_| Ok(()))
        .optional()
        .map_err(|e| Error::sql(EXISTS, e))?
        .is_some();
    if !exists {
        return Ok(None);
    }
    const SQL: &str = "SELECT value FROM \"tabMigrationMeta\" WHERE key = ?1";
    let value: Option<Option<String>> = conn
        .query_row(SQL, [key], |r| r.get(0))
        .optional()
        .map_err(|e| Error::sql(SQL, e))?;
    Ok(value.flatten())
}

/// This database's id, created (with [`META_TABLE`]) when missing: 16
/// bytes from the operating system's random source, as lower-case hex.
/// Writes only when it creates; runs in the caller's transaction.
pub fn ensure_database_id(conn: &Connection) -> Result<String> {
    if let Some(id) = database_id(conn)? {
        return Ok(id);
    }
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) \
         WITHOUT ROWID",
        q(META_TABLE)
    );
    conn.execute_batch(&create)
        .map_err(|e| Error::sql(&create, e))?;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::config(
            "os_random",
            format!("cannot get random bytes from the OS: {e}"),
        )
    })?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // REPLACE: a value that is not a valid id is replaced too.
    const SQL: &str = "INSERT OR REPLACE INTO \"tabMigrationMeta\" (key, value) VALUES (?1, ?2)";
    conn.execute(SQL, params![DATABASE_ID_KEY, id])
        .map_err(|e| Error::sql(SQL, e))?;
    Ok(id)
}

/// The key of the start-up record in [`META_TABLE`].
const STARTUP_KEY: &str = "startup";

/// What the last run that left the database up to date saw: the hash of
/// its input files and options, the hash of the schema it left, how many
/// DocTypes it read and the warnings their parse gave (as JSON). A later
/// run with the same input and schema is up to date without parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct StartupRecord {
    pub input_sha256: String,
    pub schema_sha256: String,
    pub doctypes: usize,
    pub warnings: serde_json::Value,
}

/// The start-up record, if one was written and reads back; `None`
/// otherwise (a record that does not parse is as good as none).
pub(crate) fn startup_record(conn: &Connection) -> Result<Option<StartupRecord>> {
    Ok(meta_value(conn, STARTUP_KEY)?.and_then(|v| serde_json::from_str(&v).ok()))
}

/// Writes the start-up record, in the caller's transaction.
pub(crate) fn write_startup_record(conn: &Connection, record: &StartupRecord) -> Result<()> {
    ensure_database_id(conn)?;
    const SQL: &str = "INSERT OR REPLACE INTO \"tabMigrationMeta\" (key, value) VALUES (?1, ?2)";
    conn.execute(SQL, params![STARTUP_KEY, json_text(record)])
        .map_err(|e| Error::sql(SQL, e))?;
    Ok(())
}

fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Records a migration that is starting, with the next version of its
/// DocType. The row is inserted `in_progress`, the status the lifecycle
/// gives a `planned` row that starts: it is written in the savepoint of
/// the change it records, right before that change, so it is never seen
/// `planned` (inserting it `planned` and moving it on cost one statement
/// more per DocType, prepared again after every CREATE).
pub fn start(conn: &Connection, m: &NewMigration) -> Result<MigrationId> {
    const INSERT: &str = "INSERT INTO \"tabMigrationHistory\" (batch_id, doctype, table_name, version, timestamp, sql, \
         rollback_sql, changes, status, applied_by, target_fingerprint, fingerprint_before, schema_before) \
         VALUES (?1, ?2, ?3, \
         (SELECT COALESCE(MAX(version), 0) + 1 FROM \"tabMigrationHistory\" WHERE doctype = ?2), \
         ?4, ?5, ?6, ?7, 'in_progress', ?8, ?9, ?10, ?11)";
    conn.prepare_cached(INSERT)
        .and_then(|mut stmt| {
            stmt.execute(params![
                m.batch_id,
                m.doctype,
                m.table_name,
                now(),
                json_text(&m.sql),
                json_text(&m.rollback_sql),
                json_text(&m.changes),
                m.applied_by,
                m.target_fingerprint,
                m.fingerprint_before,
                json_text(&m.schema_before),
            ])
        })
        .map_err(|e| Error::sql(INSERT, e))?;
    Ok(MigrationId(conn.last_insert_rowid()))
}

/// Marks a migration completed with its results: one statement, which
/// changes the row only when the lifecycle allows it (see [`set_status`]).
pub fn complete(conn: &Connection, id: MigrationId, c: &Completion) -> Result<()> {
    let to = MigrationStatus::Completed;
    let sql = format!(
        "UPDATE \"tabMigrationHistory\" SET status = ?2, execution_time = ?3, affected_rows = ?4, \
         fingerprint_after = ?5, schema_after = ?6, backup_path = ?7, metrics = ?8, backup_sha256 = ?9 \
         WHERE id = ?1 AND status IN ({})",
        statuses_before(to)
    );
    let changed = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                id.0,
                to.as_str(),
                c.execution_time,
                c.affected_rows,
                c.fingerprint_after,
                json_text(&c.schema_after),
                c.backup_path,
                json_text(&c.metrics),
                c.backup_sha256
            ])
        })
        .map_err(|e| Error::sql(&sql, e))?;
    if changed == 0 {
        return Err(refused_transition(conn, id, to));
    }
    Ok(())
}

/// What the expand step of an online migration leaves in the table once
/// the online migration completes: the columns, indexes and tables it
/// added for good (the old names' twins and the triggers are gone). Its
/// history row is rewritten to record exactly that, so that a rollback
/// derives its undo like any other migration's.
#[derive(Debug, Clone, Default)]
pub struct Expansion {
    /// Forward statements.
    pub sql: Vec<String>,
    /// Statements that undo them.
    pub rollback_sql: Vec<String>,
    /// The changes, as JSON.
    pub changes: serde_json::Value,
    /// Table fingerprint after.
    pub fingerprint_after: Option<String>,
    /// `sqlite_schema` rows after.
    pub schema_after: serde_json::Value,
}

/// Marks the expand step of a completing online migration `completed`,
/// recording what it leaves (see [`Expansion`]).
pub fn complete_expanded(conn: &Connection, id: MigrationId, e: &Expansion) -> Result<()> {
    set_status(conn, id, MigrationStatus::Completed)?;
    const SQL: &str = "UPDATE \"tabMigrationHistory\" SET sql = ?2, rollback_sql = ?3, changes = ?4, \
         fingerprint_after = ?5, schema_after = ?6 WHERE id = ?1";
    conn.execute(
        SQL,
        params![
            id.0,
            json_text(&e.sql),
            json_text(&e.rollback_sql),
            json_text(&e.changes),
            e.fingerprint_after,
            json_text(&e.schema_after)
        ],
    )
    .map(drop)
    .map_err(|e| Error::sql(SQL, e))
}

/// Marks a migration failed with its error.
pub fn fail(conn: &Connection, id: MigrationId, error: &str, execution_time: f64) -> Result<()> {
    set_status(conn, id, MigrationStatus::Failed)?;
    const SQL: &str =
        "UPDATE \"tabMigrationHistory\" SET error = ?2, execution_time = ?3 WHERE id = ?1";
    conn.execute(SQL, params![id.0, error, execution_time])
        .map(drop)
        .map_err(|e| Error::sql(SQL, e))
}

/// Marks a completed migration `rolled_back` and records what the rollback
/// did (`info`: JSON text) in `rollback_info`.
pub fn record_rollback(conn: &Connection, id: MigrationId, info: &str) -> Result<()> {
    set_status(conn, id, MigrationStatus::RolledBack)?;
    const SQL: &str = "UPDATE \"tabMigrationHistory\" SET rollback_info = ?2 WHERE id = ?1";
    conn.execute(SQL, params![id.0, info])
        .map(drop)
        .map_err(|e| Error::sql(SQL, e))
}

/// Moves a migration to `to`, refusing transitions the lifecycle forbids:
/// one `UPDATE` that changes the row only from a status that may become
/// `to`; when it changes nothing, the row's status says why.
pub fn set_status(conn: &Connection, id: MigrationId, to: MigrationStatus) -> Result<()> {
    let sql = format!(
        "UPDATE \"tabMigrationHistory\" SET status = ?2 WHERE id = ?1 AND status IN ({})",
        statuses_before(to)
    );
    let changed = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| stmt.execute(params![id.0, to.as_str()]))
        .map_err(|e| Error::sql(&sql, e))?;
    if changed == 0 {
        return Err(refused_transition(conn, id, to));
    }
    Ok(())
}

/// The statuses that may become `to`, as SQL literals (`'a', 'b'`; `NULL`
/// when none may).
fn statuses_before(to: MigrationStatus) -> String {
    let from: Vec<String> = MigrationStatus::ALL
        .iter()
        .filter(|s| s.can_become(to))
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    if from.is_empty() {
        "NULL".into()
    } else {
        from.join(", ")
    }
}

/// Why a migration could not move to `to`: it does not exist, or its
/// status may not become `to`.
fn refused_transition(conn: &Connection, id: MigrationId, to: MigrationStatus) -> Error {
    match get(conn, id) {
        Ok(row) => Error::InvalidTransition {
            id,
            from: row.status,
            to,
        },
        Err(e) => e,
    }
}

const SELECT: &str = "SELECT id, batch_id, doctype, table_name, version, timestamp, sql, rollback_sql, changes, \
     status, applied_by, execution_time, affected_rows, backup_path, error, rollback_info, target_fingerprint, \
     fingerprint_before, fingerprint_after, schema_before, schema_after, metrics, backup_sha256 \
     FROM \"tabMigrationHistory\"";

fn parse_json(text: Option<String>) -> serde_json::Value {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<HistoryRow> {
    let status: String = r.get(9)?;
    let status = status.parse::<MigrationStatus>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, e.into())
    })?;
    let stmts = |i: usize| -> rusqlite::Result<Vec<String>> {
        let t: Option<String> = r.get(i)?;
        Ok(t.and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default())
    };
    Ok(HistoryRow {
        id: MigrationId(r.get(0)?),
        batch_id: r.get(1)?,
        doctype: r.get(2)?,
        table_name: r.get(3)?,
        version: r.get(4)?,
        timestamp: r.get(5)?,
        sql: stmts(6)?,
        rollback_sql: stmts(7)?,
        changes: parse_json(r.get(8)?),
        status,
        applied_by: r.get(10)?,
        execution_time: r.get(11)?,
        affected_rows: r.get(12)?,
        backup_path: r.get(13)?,
        error: r.get(14)?,
        rollback_info: r.get(15)?,
        target_fingerprint: r.get(16)?,
        fingerprint_before: r.get(17)?,
        fingerprint_after: r.get(18)?,
        schema_before: parse_json(r.get(19)?),
        schema_after: parse_json(r.get(20)?),
        metrics: parse_json(r.get(21)?),
        backup_sha256: r.get(22)?,
    })
}

/// One migration by id.
pub fn get(conn: &Connection, id: MigrationId) -> Result<HistoryRow> {
    let sql = format!("{SELECT} WHERE id = ?1");
    conn.query_row(&sql, [id.0], from_row)
        .optional()
        .map_err(|e| Error::sql(&sql, e))?
        .ok_or(Error::MigrationNotFound(id))
}

/// All migrations (of one DocType, if given), oldest first. Empty when the
/// history table does not exist yet.
pub fn list(conn: &Connection, doctype: Option<&str>) -> Result<Vec<HistoryRow>> {
    if !table_exists(conn)? {
        return Ok(Vec::new());
    }
    let sql = format!("{SELECT} WHERE (?1 IS NULL OR doctype = ?1) ORDER BY id");
    let mut stmt = conn.prepare(&sql).map_err(|e| Error::sql(&sql, e))?;
    stmt.query_map([doctype], from_row)
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sql(&sql, e))
}

/// The latest completed migration of a DocType, if any.
pub fn latest_completed(conn: &Connection, doctype: &str) -> Result<Option<HistoryRow>> {
    if !table_exists(conn)? {
        return Ok(None);
    }
    let sql =
        format!("{SELECT} WHERE doctype = ?1 AND status = 'completed' ORDER BY id DESC LIMIT 1");
    conn.query_row(&sql, [doctype], from_row)
        .optional()
        .map_err(|e| Error::sql(&sql, e))
}

/// `(target_fingerprint, fingerprint_after)` of a completed migration.
pub type RecordedFingerprints = (Option<String>, Option<String>);

/// For each DocType, the `(target_fingerprint, fingerprint_after)` of its
/// latest completed migration: what the start-up fast path compares with.
/// One query; empty when the history table does not exist.
pub fn latest_fingerprints(
    conn: &Connection,
) -> Result<std::collections::HashMap<String, RecordedFingerprints>> {
    if !table_exists(conn)? {
        return Ok(Default::default());
    }
    const SQL: &str = "SELECT doctype, target_fingerprint, fingerprint_after FROM \"tabMigrationHistory\" \
         WHERE id IN (SELECT max(id) FROM \"tabMigrationHistory\" WHERE status = 'completed' GROUP BY doctype)";
    let mut stmt = conn.prepare(SQL).map_err(|e| Error::sql(SQL, e))?;
    stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sql(SQL, e))
}

/// Backup files named by `completed` history rows: the backups that
/// still-rollbackable migrations need, which pruning must keep unless forced.
///
/// Paths are returned as recorded (sorted, without duplicates). A
/// `backup_path` that is not a JSON array of strings is taken as one path,
/// so that an unexpected value protects too much rather than too little.
/// Empty when the history table does not exist.
pub fn backup_paths_in_use(conn: &Connection) -> Result<Vec<std::path::PathBuf>> {
    if !table_exists(conn)? {
        return Ok(Vec::new());
    }
    const SQL: &str = "SELECT backup_path FROM \"tabMigrationHistory\" \
         WHERE status = 'completed' AND backup_path IS NOT NULL ORDER BY id";
    let mut stmt = conn.prepare(SQL).map_err(|e| Error::sql(SQL, e))?;
    let texts: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sql(SQL, e))?;
    let mut paths: Vec<std::path::PathBuf> = Vec::new();
    for text in texts {
        match serde_json::from_str::<Vec<std::path::PathBuf>>(&text) {
            Ok(list) => paths.extend(list),
            Err(_) if !text.trim().is_empty() => paths.push(text.into()),
            Err(_) => {}
        }
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// Every backup path any history row names, whatever its status, sorted.
pub fn backup_paths_recorded(conn: &Connection) -> Result<Vec<std::path::PathBuf>> {
    if !table_exists(conn)? {
        return Ok(Vec::new());
    }
    const SQL: &str = "SELECT backup_path FROM \"tabMigrationHistory\" \
         WHERE backup_path IS NOT NULL ORDER BY id";
    let mut stmt = conn.prepare(SQL).map_err(|e| Error::sql(SQL, e))?;
    let texts: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::sql(SQL, e))?;
    let mut paths: Vec<std::path::PathBuf> = texts
        .iter()
        .filter_map(|t| serde_json::from_str::<Vec<std::path::PathBuf>>(t).ok())
        .flatten()
        .collect();
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// The current time as stored in history rows.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NewMigration {
        NewMigration {
            doctype: "Note".into(),
            table_name: "tabNote".into(),
            sql: vec!["CREATE TABLE x (a)".into()],
            rollback_sql: vec!["DROP TABLE x".into()],
            applied_by: "test".into(),
            ..Default::default()
        }
    }

    #[test]
    fn rows_follow_the_lifecycle() {
        let conn = Connection::open_in_memory().unwrap();
        assert!(list(&conn, None).unwrap().is_empty());
        ensure_table(&conn).unwrap();
        ensure_table(&conn).unwrap();
        let id = start(&conn, &sample()).unwrap();
        assert_eq!(get(&conn, id).unwrap().status, MigrationStatus::InProgress);
        complete(
            &conn,
            id,
            &Completion {
                affected_rows: 3,
                ..Default::default()
            },
        )
        .unwrap();
        let row = get(&conn, id).unwrap();
        assert_eq!(
            (row.status, row.version, row.affected_rows),
            (MigrationStatus::Completed, 1, Some(3))
        );
        assert_eq!(row.sql, ["CREATE TABLE x (a)"]);
        let err = fail(&conn, id, "boom", 0.0).unwrap_err();
        assert!(matches!(err, Error::InvalidTransition { .. }), "{err}");
        record_rollback(&conn, id, "{\"by\":\"test\"}").unwrap();
        assert_eq!(
            get(&conn, id).unwrap().rollback_info.as_deref(),
            Some("{\"by\":\"test\"}")
        );
        assert!(matches!(
            record_rollback(&conn, id, "{}"),
            Err(Error::InvalidTransition { .. })
        ));
        let id2 = start(&conn, &sample()).unwrap();
        assert_eq!(get(&conn, id2).unwrap().version, 2);
        assert!(latest_completed(&conn, "Note").unwrap().is_none());
        assert!(matches!(
            get(&conn, MigrationId(99)),
            Err(Error::MigrationNotFound(_))
        ));
    }

    #[test]
    fn backup_paths_in_use_come_from_completed_rows_only() {
        let conn = Connection::open_in_memory().unwrap();
        assert!(backup_paths_in_use(&conn).unwrap().is_empty());
        ensure_table(&conn).unwrap();
        let done = |paths: Option<&str>| {
            let id = start(&conn, &sample()).unwrap();
            let c = Completion {
                backup_path: paths.map(String::from),
                ..Default::default()
            };
            complete(&conn, id, &c).unwrap();
            id
        };
        done(Some(r#"["/b/one.dmbak", "/b/two.dmbak"]"#));
        done(None);
        let undone = done(Some(r#"["/b/three.dmbak"]"#));
        set_status(&conn, undone, MigrationStatus::RolledBack).unwrap();
        done(Some("/b/legacy.dmbak"));
        let failed = start(&conn, &sample()).unwrap();
        fail(&conn, failed, "boom", 0.0).unwrap();
        let got = backup_paths_in_use(&conn).unwrap();
        let want: Vec<std::path::PathBuf> = ["/b/legacy.dmbak", "/b/one.dmbak", "/b/two.dmbak"]
            .iter()
            .map(Into::into)
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn old_history_tables_gain_new_columns() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE \"tabMigrationHistory\" (id INTEGER PRIMARY KEY, doctype TEXT, status TEXT)")
            .unwrap();
        ensure_table(&conn).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('tabMigrationHistory')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n as usize, COLUMNS.len());
    }
}
