//! Restoring a backup (or an incremental chain) into a table.
//!
//! Everything happens inside a SAVEPOINT, so it nests in a caller's
//! transaction. The chain is first streamed into a TEMP scratch table; only
//! when every file has passed all its checks (authentication, SHA-256, row
//! counts, chain row count) is the target touched, with set-based SQL
//! (`INSERT ... SELECT`, `UPDATE ... FROM`). After applying, the storage
//! class of every restored value is compared with the scratch copy, so a
//! column affinity that would change a value (text `'0012'` into an INTEGER
//! column) is an error rather than a silent change. Any error rolls back to
//! the savepoint: the target is left as it was.
//!
//! The table's own triggers are dropped for the duration and recreated from
//! their current SQL, so restoring data does not run application logic.

use std::fs::File;
use std::path::Path;

use rusqlite::types::Null;
use rusqlite::{Connection, Statement};

use super::codec;
use super::encoding::{self, Value};
use super::format::{self, ColumnMeta, Manifest};
use super::reader::{self, Item, Opened};
use super::tableinfo::{self, TableInfo};
use super::{BackupStrategy, RestoreTarget};
use crate::error::{BackupErrorKind as Kind, Error, Result};
use crate::ident::{ROWID_ALIASES, quote};

/// One file of a chain, with its key (wiped when dropped).
pub(crate) struct ChainFile {
    pub opened: Opened,
    pub file: File,
    pub key: Option<codec::SecretKey>,
}

/// Runs restore SQL (built from a manifest) under the engine's SQL guard.
fn exec(conn: &Connection, sql: &str) -> Result<()> {
    crate::db::sqlguard::run(conn, sql)
}

/// Runs a statement that writes into the target: the backed-up rows, or
/// the backup's schema SQL. SQLite refusing it on this database (a NOT
/// NULL, UNIQUE, CHECK or foreign key constraint, a rowid that is not an
/// integer, an index or trigger name already taken, a statement only a
/// forged file carries) is a refused restore, typed as one
/// ([`Kind::Restore`]), not an SQL failure; the engine's guard refusing
/// schema SQL means the manifest carries what the engine never writes
/// ([`Kind::Corrupted`]). A failure of the database itself (busy, I/O,
/// disk full) stays an SQL error. Nothing is restored either way: the
/// caller rolls back to the savepoint.
fn exec_into(conn: &Connection, table: &str, sql: &str) -> Result<()> {
    exec(conn, sql).map_err(|e| refused_here(table, sql, e))
}

fn refused_here(table: &str, sql: &str, e: Error) -> Error {
    use rusqlite::ErrorCode as Code;
    let code = match &e {
        Error::Sql { source, .. } => match source.as_ref() {
            rusqlite::Error::SqliteFailure(f, _)
            | rusqlite::Error::SqlInputError { error: f, .. } => Some(f.code),
            _ => None,
        },
        _ => None,
    };
    match (e, code) {
        (
            Error::Sql { source, .. },
            Some(Code::Unknown | Code::ConstraintViolation | Code::TypeMismatch),
        ) => target_err(
            table,
            format!(
                "table {table:?} refuses the backup as it is now ({source}, in {}); nothing restored",
                crate::db::sqlguard::printable(sql)
            ),
        ),
        (Error::UnsafeSql { reason, .. }, _) => manifest_err(
            table,
            format!(
                "the backup's statement {} is refused: {reason}",
                crate::db::sqlguard::printable(sql)
            ),
        ),
        (e, _) => e,
    }
}

/// Runs one of the restore's own savepoint statements.
fn control(conn: &Connection, sql: &str) -> Result<()> {
    conn.execute_batch(sql).map_err(|e| Error::sql(sql, e))
}

/// Restores the chain (base first) into `target`; returns rows restored.
pub(crate) fn restore(
    conn: &Connection,
    chain: Vec<ChainFile>,
    target: &RestoreTarget,
) -> Result<u64> {
    // Outside a transaction the savepoint is the transaction: a failure
    // then rolls it back whole. `ROLLBACK TO` + `RELEASE` would commit an
    // empty transaction, which still rewrites the database header (its
    // change counter), so the file would not be left as it was.
    let outermost = conn.is_autocommit();
    control(conn, "SAVEPOINT dm_backup_restore")?;
    match restore_inner(conn, chain, target) {
        Ok(n) => {
            control(conn, "RELEASE dm_backup_restore")?;
            Ok(n)
        }
        Err(e) => {
            // Best effort: the original error is what the caller needs.
            let undo = if outermost {
                "ROLLBACK"
            } else {
                "ROLLBACK TO dm_backup_restore; RELEASE dm_backup_restore"
            };
            let _ = conn.execute_batch(undo);
            Err(e)
        }
    }
}

/// The TEMP scratch table holding the restored state.
pub(crate) struct Scratch {
    /// `temp."_dm_..."`.
    pub qname: String,
    /// Whether it has the `k` key column (chains and incremental diffs).
    pub keyed: bool,
    pub ncols: usize,
}

impl Scratch {
    /// Creates `temp."<prefix><random>"` with untyped columns `v0..`.
    pub(crate) fn create(
        conn: &Connection,
        prefix: &str,
        ncols: usize,
        keyed: bool,
    ) -> Result<Scratch> {
        let mut rnd = [0u8; 6];
        codec::random_bytes(&mut rnd).map_err(|f| f.at(Path::new("<temp>")))?;
        let qname = format!(
            "temp.{}",
            quote(&format!("{prefix}{}", format::hex_encode(&rnd)))
        );
        let mut cols: Vec<String> = Vec::new();
        if keyed {
            cols.push("k BLOB PRIMARY KEY".into());
        }
        cols.extend((0..ncols).map(|i| format!("v{i}")));
        exec(conn, &format!("CREATE TABLE {qname} ({})", cols.join(", ")))?;
        Ok(Scratch {
            qname,
            keyed,
            ncols,
        })
    }

    /// `INSERT [OR REPLACE] INTO scratch VALUES (...)`; parameters: value
    /// `2i+1` and its "invalid UTF-8 text" flag `2i+2` per column, then `k`.
    pub(crate) fn insert_sql(&self) -> String {
        let mut vals: Vec<String> = (0..self.ncols)
            .map(|i| {
                format!(
                    "iif(?{f}, CAST(?{v} AS TEXT), ?{v})",
                    v = 2 * i + 1,
                    f = 2 * i + 2
                )
            })
            .collect();
        let mut cols: Vec<String> = (0..self.ncols).map(|i| format!("v{i}")).collect();
        if self.keyed {
            cols.push("k".into());
            vals.push(format!("?{}", 2 * self.ncols + 1));
        }
        format!(
            "INSERT OR REPLACE INTO {} ({}) VALUES ({})",
            self.qname,
            cols.join(", "),
            vals.join(", ")
        )
    }

    pub(crate) fn drop_sql(&self) -> String {
        format!("DROP TABLE IF EXISTS {}", self.qname)
    }
}

/// Binds one value (and its flag) at `2i+1`, `2i+2`.
pub(crate) fn bind_value(stmt: &mut Statement<'_>, i: usize, v: &Value) -> rusqlite::Result<()> {
    let (vi, fi) = (2 * i + 1, 2 * i + 2);
    let mut flag = 0i64;
    match v {
        Value::Null => stmt.raw_bind_parameter(vi, Null)?,
        Value::Integer(n) => stmt.raw_bind_parameter(vi, n)?,
        Value::Real(bits) => stmt.raw_bind_parameter(vi, f64::from_bits(*bits))?,
        Value::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => stmt.raw_bind_parameter(vi, s)?,
            Err(_) => {
                // Invalid UTF-8 in a TEXT value: bind the bytes, CAST to TEXT.
                stmt.raw_bind_parameter(vi, &t[..])?;
                flag = 1;
            }
        },
        Value::Blob(b) => stmt.raw_bind_parameter(vi, &b[..])?,
    }
    stmt.raw_bind_parameter(fi, flag)
}

fn restore_inner(conn: &Connection, chain: Vec<ChainFile>, target: &RestoreTarget) -> Result<u64> {
    let Some(last) = chain.last() else {
        return Err(Error::config("path", "restore: empty backup chain"));
    };
    let m: Manifest = last.opened.manifest.clone();
    let path = last.opened.path.clone();
    let keyed = chain.len() > 1;
    let scratch = Scratch::create(conn, "_dm_restore_", m.ncols(), keyed)?;
    let rowid_pos = m.has_rowid.then_some(0);
    let key_pos = m.key_positions();

    // 1. Stream every file of the chain into the scratch table.
    {
        let isql = scratch.insert_sql();
        let mut ins = conn.prepare(&isql).map_err(|e| Error::sql(&isql, e))?;
        let dsql = format!("DELETE FROM {} WHERE k = ?1", scratch.qname);
        let mut del = if keyed {
            Some(conn.prepare(&dsql).map_err(|e| Error::sql(&dsql, e))?)
        } else {
            None
        };
        let mut key = Vec::new();
        for cf in chain {
            let mut payload = reader::payload(&cf.opened, cf.file, cf.key.as_deref())?;
            while let Some(item) = payload.next_item()? {
                match item {
                    Item::Row(vals) => {
                        for (i, v) in vals.iter().enumerate() {
                            bind_value(&mut ins, i, v).map_err(|e| Error::sql(&isql, e))?;
                        }
                        if keyed {
                            encoding::row_key(&mut key, &vals, rowid_pos, &key_pos);
                            ins.raw_bind_parameter(2 * vals.len() + 1, &key[..])
                                .map_err(|e| Error::sql(&isql, e))?;
                        }
                        ins.raw_execute().map_err(|e| Error::sql(&isql, e))?;
                    }
                    Item::Delete(k) => match del.as_mut() {
                        Some(d) => {
                            d.raw_bind_parameter(1, &k[..])
                                .map_err(|e| Error::sql(&dsql, e))?;
                            d.raw_execute().map_err(|e| Error::sql(&dsql, e))?;
                        }
                        None => {
                            return Err(reader::bad(
                                &cf.opened.path,
                                Kind::Corrupted,
                                "delete record in a non-incremental backup",
                            ));
                        }
                    },
                }
            }
        }
    }
    let csql = format!("SELECT count(*) FROM {}", scratch.qname);
    let count: i64 = conn
        .query_row(&csql, [], |r| r.get(0))
        .map_err(|e| Error::sql(&csql, e))?;
    let expected = if keyed {
        m.table_row_count
    } else {
        m.row_count
    };
    if count as u64 != expected {
        return Err(reader::bad(
            &path,
            Kind::Chain,
            format!(
                "restored state has {count} rows but the backup recorded {expected}: chain inconsistent"
            ),
        ));
    }

    // 2. Apply.
    let n = match (&m.strategy, target) {
        (BackupStrategy::FullTable, RestoreTarget::Original) => {
            apply_full_original(conn, &m, &scratch)?
        }
        (BackupStrategy::FullTable, RestoreTarget::NewTable(name)) => {
            apply_full_new(conn, &m, &scratch, name)?
        }
        (BackupStrategy::Columns(names), RestoreTarget::Original) => {
            apply_columns_original(conn, &m, names, &scratch)?
        }
        (BackupStrategy::Columns(_), RestoreTarget::NewTable(name)) => {
            apply_columns_new(conn, &m, &scratch, name)?
        }
    };
    exec(conn, &scratch.drop_sql())?;
    Ok(n)
}

/// A refusal about the restore's target table.
fn target_err(table: &str, message: impl Into<String>) -> Error {
    Error::backup(table, Kind::Restore, message)
}

/// A manifest whose content is not what the engine writes (damaged or
/// forged), found while restoring from it.
fn manifest_err(table: &str, message: impl Into<String>) -> Error {
    Error::backup(table, Kind::Corrupted, message)
}

/// `v<i>` for stored column `c` (offset by the rowid).
fn vcol(m: &Manifest, idx: usize) -> String {
    format!("t.v{}", idx + usize::from(m.has_rowid))
}

fn changes(conn: &Connection) -> u64 {
    conn.changes()
}

/// Checks that every backed-up column exists in the live table; returns the
/// live spelling of each.
fn live_names(live: &TableInfo, cols: &[ColumnMeta]) -> Result<Vec<String>> {
    cols.iter()
        .map(|c| {
            live.columns
                .iter()
                .find(|l| l.name.eq_ignore_ascii_case(&c.name))
                .map(|l| l.name.clone())
                .ok_or_else(|| {
                    target_err(
                        &live.name,
                        format!(
                            "table {:?} has no column {:?}; roll the schema back first or restore into a new table",
                            live.name, c.name
                        ),
                    )
                })
        })
        .collect()
}

/// Refuses to DELETE from a parent table while foreign keys are enforced:
/// that would cascade to (or be blocked by) child rows (invariant "Foreign keys never cascade").
fn check_no_fk_children(conn: &Connection, table: &str) -> Result<()> {
    let on: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .map_err(|e| Error::sql("PRAGMA foreign_keys", e))?;
    if on == 0 {
        return Ok(());
    }
    let sql = "SELECT DISTINCT s.name FROM main.sqlite_schema AS s, pragma_foreign_key_list(s.name) AS f \
               WHERE s.type = 'table' AND f.\"table\" = ?1 COLLATE NOCASE AND s.name <> ?1 COLLATE NOCASE";
    let mut stmt = conn.prepare(sql).map_err(|e| Error::sql(sql, e))?;
    let children = stmt
        .query_map([table], |r| r.get::<_, String>(0))
        .map_err(|e| Error::sql(sql, e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| Error::sql(sql, e))?;
    if children.is_empty() {
        return Ok(());
    }
    Err(target_err(
        table,
        format!(
            "PRAGMA foreign_keys is ON and {} reference {table:?}: replacing its rows would cascade to or be blocked by child rows; turn foreign_keys off before BEGIN, restore, then run PRAGMA foreign_key_check",
            children.join(", ")
        ),
    ))
}

/// Drops the table's triggers; returns their SQL to recreate them.
fn suspend_triggers(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let sql = "SELECT name, sql FROM main.sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 COLLATE NOCASE";
    let mut stmt = conn.prepare(sql).map_err(|e| Error::sql(sql, e))?;
    let triggers = stmt
        .query_map([table], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(|e| Error::sql(sql, e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| Error::sql(sql, e))?;
    for (name, _) in &triggers {
        exec(conn, &format!("DROP TRIGGER main.{}", quote(name)))?;
    }
    Ok(triggers.into_iter().map(|t| t.1).collect())
}

fn resume_triggers(conn: &Connection, sqls: &[String]) -> Result<()> {
    for s in sqls {
        exec(conn, s)?;
    }
    Ok(())
}

/// A rowid alias not used as a column name of `cols`.
fn free_rowid_alias(cols: &[String]) -> Option<&'static str> {
    ROWID_ALIASES
        .iter()
        .find(|a| !cols.iter().any(|c| c.eq_ignore_ascii_case(a)))
        .copied()
}

/// Counts rows whose storage class differs between target and scratch (or
/// that are missing in the target), in chunks to stay under SQLite's
/// expression depth limit.
fn typeof_mismatches(
    conn: &Connection,
    table: &str,
    (join, present): &(String, String),
    scratch: &Scratch,
    pairs: &[(String, String)],
) -> Result<u64> {
    let mut total = 0u64;
    let chunks: Vec<&[(String, String)]> = if pairs.is_empty() {
        vec![&[]]
    } else {
        pairs.chunks(100).collect()
    };
    for chunk in chunks {
        let mut conds = vec![format!("{present} IS NULL")];
        conds.extend(
            chunk
                .iter()
                .map(|(live, v)| format!("typeof(x.{}) IS NOT typeof({v})", quote(live))),
        );
        let sql = format!(
            "SELECT count(*) FROM {} AS t LEFT JOIN main.{} AS x ON {join} WHERE {}",
            scratch.qname,
            quote(table),
            conds.join(" OR ")
        );
        let n: i64 = conn
            .query_row(&sql, [], |r| r.get(0))
            .map_err(|e| Error::sql(&sql, e))?;
        total = total.max(n as u64);
    }
    Ok(total)
}

fn affinity_error(table: &str, n: u64) -> Error {
    target_err(
        table,
        format!(
            "{n} row(s) would not round-trip exactly (missing, or a column's type affinity changed a value's storage class); nothing restored"
        ),
    )
}

/// Join condition matching target rows `x` to scratch rows `t`, and an
/// expression that is NULL exactly when no target row matched. With
/// `prefer_rowid` (restores that insert explicit rowids) rows are matched by
/// rowid when both sides have one; otherwise by primary key when there is one.
fn join_condition(
    m: &Manifest,
    live_alias: Option<&str>,
    live_key: &[String],
    prefer_rowid: bool,
) -> Result<(String, String)> {
    let by_rowid =
        m.has_rowid && live_alias.is_some() && (prefer_rowid || m.key_columns.is_empty());
    if by_rowid {
        let a = live_alias.unwrap_or("rowid");
        return Ok((format!("x.{a} = t.v0"), format!("x.{a}")));
    }
    let pos = m.key_positions();
    if pos.is_empty() || live_key.len() != pos.len() {
        return Err(target_err(
            &m.table,
            "cannot match rows: no rowid, and the primary key differs between backup and table",
        ));
    }
    let join = live_key
        .iter()
        .zip(pos)
        .map(|(k, p)| format!("x.{} = t.v{p}", quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    Ok((join, format!("x.{}", quote(&live_key[0]))))
}

fn apply_full_original(conn: &Connection, m: &Manifest, scratch: &Scratch) -> Result<u64> {
    let existing = tableinfo::find_table(conn, &m.table)?;
    let created = existing.is_none();
    let mut deferred_schema: &[String] = &[];
    if created {
        let (create, rest) = m
            .schema_sql
            .split_first()
            .ok_or_else(|| manifest_err(&m.table, "backup has no CREATE TABLE statement"))?;
        check_schema_statement(&m.table, create, "CREATE TABLE")?;
        exec_into(conn, &m.table, create)?;
        deferred_schema = rest;
    }
    let live = tableinfo::inspect(conn, &m.table)?;
    let names = live_names(&live, &m.columns)?;
    let triggers = if created {
        Vec::new()
    } else {
        check_no_fk_children(conn, &live.name)?;
        suspend_triggers(conn, &live.name)?
    };
    if !created {
        exec_into(
            conn,
            &live.name,
            &format!("DELETE FROM main.{}", quote(&live.name)),
        )?;
    }
    let n = insert_checked(conn, m, scratch, &live, &names)?;
    for s in deferred_schema {
        check_schema_statement(&m.table, s, "CREATE")?;
        exec_into(conn, &m.table, s)?;
    }
    resume_triggers(conn, &triggers)?;
    Ok(n)
}

fn key_meta(m: &Manifest) -> Vec<ColumnMeta> {
    m.key_columns
        .iter()
        .filter_map(|k| m.columns.iter().find(|c| &c.name == k).cloned())
        .collect()
}

/// Inserts the scratch rows into `live`, then checks that every value kept
/// its storage class (a column type that would convert a stored value is an
/// error, not a silent change). Returns the rows inserted.
fn insert_checked(
    conn: &Connection,
    m: &Manifest,
    scratch: &Scratch,
    live: &tableinfo::TableInfo,
    names: &[String],
) -> Result<u64> {
    let n = insert_from_scratch(conn, m, scratch, &live.name, live.rowid_alias, names)?;
    let pairs: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), vcol(m, i)))
        .collect();
    let live_key = live_names(live, &key_meta(m))?;
    let join = join_condition(m, live.rowid_alias, &live_key, true)?;
    let bad = typeof_mismatches(conn, &live.name, &join, scratch, &pairs)?;
    if bad > 0 {
        return Err(affinity_error(&live.name, bad));
    }
    Ok(n)
}

fn insert_from_scratch(
    conn: &Connection,
    m: &Manifest,
    scratch: &Scratch,
    table: &str,
    live_alias: Option<&str>,
    names: &[String],
) -> Result<u64> {
    let mut cols: Vec<String> = Vec::new();
    let mut vals: Vec<String> = Vec::new();
    if let (true, Some(a)) = (m.has_rowid, live_alias) {
        cols.push(a.to_string());
        vals.push("t.v0".into());
    }
    for (i, n) in names.iter().enumerate() {
        cols.push(quote(n));
        vals.push(vcol(m, i));
    }
    let sql = format!(
        "INSERT INTO main.{} ({}) SELECT {} FROM {} AS t",
        quote(table),
        cols.join(", "),
        vals.join(", "),
        scratch.qname
    );
    exec_into(conn, table, &sql)?;
    Ok(changes(conn))
}

fn apply_full_new(conn: &Connection, m: &Manifest, scratch: &Scratch, name: &str) -> Result<u64> {
    if tableinfo::find_table(conn, name)?.is_some() {
        return Err(target_err(name, format!("table {name:?} already exists")));
    }
    let create = m
        .schema_sql
        .first()
        .ok_or_else(|| manifest_err(&m.table, "backup has no CREATE TABLE statement"))?;
    check_schema_statement(&m.table, create, "CREATE TABLE")?;
    let renamed = rename_create_table(create, name).ok_or_else(|| {
        manifest_err(
            &m.table,
            "cannot parse the backed-up CREATE TABLE statement",
        )
    })?;
    exec_into(conn, name, &renamed)?;
    let live = tableinfo::inspect(conn, name)?;
    let names = live_names(&live, &m.columns)?;
    let n = insert_checked(conn, m, scratch, &live, &names)?;
    Ok(n)
}

fn apply_columns_new(
    conn: &Connection,
    m: &Manifest,
    scratch: &Scratch,
    name: &str,
) -> Result<u64> {
    if tableinfo::find_table(conn, name)?.is_some() {
        return Err(target_err(name, format!("table {name:?} already exists")));
    }
    let mut defs = Vec::new();
    for c in &m.columns {
        check_decl_type(&m.table, &c.decl_type)?;
        defs.push(
            format!("{} {}", quote(&c.name), c.decl_type)
                .trim_end()
                .to_string(),
        );
    }
    exec_into(
        conn,
        name,
        &format!("CREATE TABLE main.{} ({})", quote(name), defs.join(", ")),
    )?;
    let names: Vec<String> = m.columns.iter().map(|c| c.name.clone()).collect();
    let alias = free_rowid_alias(&names);
    let n = insert_from_scratch(conn, m, scratch, name, alias, &names)?;
    let pairs: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), vcol(m, i)))
        .collect();
    let key: Vec<String> = m.key_columns.clone();
    let join = join_condition(m, alias, &key, true)?;
    let bad = typeof_mismatches(conn, name, &join, scratch, &pairs)?;
    if bad > 0 {
        return Err(affinity_error(name, bad));
    }
    Ok(n)
}

fn apply_columns_original(
    conn: &Connection,
    m: &Manifest,
    named: &[String],
    scratch: &Scratch,
) -> Result<u64> {
    let live = tableinfo::inspect(conn, &m.table)?;
    let named_meta: Vec<ColumnMeta> = named
        .iter()
        .filter_map(|n| m.columns.iter().find(|c| &c.name == n).cloned())
        .collect();
    if named_meta.len() != named.len() {
        return Err(manifest_err(
            &m.table,
            "manifest strategy names a column that is not stored",
        ));
    }
    let live_named = live_names(&live, &named_meta)?;
    let live_key = live_names(&live, &key_meta(m))?;
    let sets: Vec<String> = live_named
        .iter()
        .zip(&named_meta)
        .map(|(l, c)| {
            let idx = m.columns.iter().position(|x| x.name == c.name).unwrap_or(0);
            format!("{} = {}", quote(l), vcol(m, idx))
        })
        .collect();
    let triggers = suspend_triggers(conn, &live.name)?;
    let table = quote(&live.name);
    let (join, _) = join_condition(m, live.rowid_alias, &live_key, false)?;
    let update = |cond: &str| -> Result<u64> {
        exec_into(
            conn,
            &live.name,
            &format!(
                "UPDATE main.{table} AS x SET {} FROM {} AS t WHERE {cond}",
                sets.join(", "),
                scratch.qname
            ),
        )?;
        Ok(changes(conn))
    };
    let mut n = update(&join)?;
    // A rowid table's declared primary key may be NULL (an old SQLite quirk):
    // such rows are matched by rowid instead.
    let null_key_join = match (m.key_columns.is_empty(), m.has_rowid, live.rowid_alias) {
        (false, true, Some(a)) => {
            let null_key = m
                .key_positions()
                .iter()
                .map(|p| format!("t.v{p} IS NULL"))
                .collect::<Vec<_>>()
                .join(" OR ");
            Some(format!("({null_key}) AND x.{a} = t.v0"))
        }
        _ => None,
    };
    if let Some(cond) = &null_key_join {
        n += update(cond)?;
    }
    // Exactness check on the rows that matched (rows deleted since the
    // backup are skipped by a column restore).
    let conds: Vec<String> = live_named
        .iter()
        .zip(&named_meta)
        .map(|(l, c)| {
            let idx = m.columns.iter().position(|x| x.name == c.name).unwrap_or(0);
            format!("typeof(x.{}) IS NOT typeof({})", quote(l), vcol(m, idx))
        })
        .collect();
    for cond in std::iter::once(&join).chain(null_key_join.as_ref()) {
        for chunk in conds.chunks(100) {
            let sql = format!(
                "SELECT count(*) FROM {} AS t JOIN main.{table} AS x ON {cond} WHERE {}",
                scratch.qname,
                chunk.join(" OR ")
            );
            let bad: i64 = conn
                .query_row(&sql, [], |r| r.get(0))
                .map_err(|e| Error::sql(&sql, e))?;
            if bad > 0 {
                return Err(affinity_error(&live.name, bad as u64));
            }
        }
    }
    resume_triggers(conn, &triggers)?;
    Ok(n)
}

/// Schema SQL from a backup is executed on restore: accept only a single
/// statement of the expected kind.
fn check_schema_statement(table: &str, sql: &str, prefix: &str) -> Result<()> {
    let upper = sql.trim_start().to_ascii_uppercase();
    let ok_kind = upper.starts_with(prefix)
        && (prefix != "CREATE"
            || ["CREATE INDEX", "CREATE UNIQUE INDEX", "CREATE TRIGGER"]
                .iter()
                .any(|p| upper.starts_with(p)));
    if !ok_kind {
        return Err(manifest_err(
            table,
            format!("backup schema statement is not a {prefix} statement"),
        ));
    }
    Ok(())
}

/// Declared types used in a generated CREATE TABLE: letters, digits, spaces,
/// `_`, `.`, `+`, `-`, and one balanced parenthesised argument list.
fn check_decl_type(table: &str, t: &str) -> Result<()> {
    let mut depth = 0i32;
    for c in t.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 1 => {}
            c if c.is_ascii_alphanumeric() || " _.+-".contains(c) => {}
            _ => depth = -100,
        }
        if !(0..=1).contains(&depth) {
            return Err(manifest_err(
                table,
                format!("unsafe declared type {t:?} in backup"),
            ));
        }
    }
    if depth != 0 {
        return Err(manifest_err(
            table,
            format!("unsafe declared type {t:?} in backup"),
        ));
    }
    Ok(())
}

/// Replaces the table name in a `CREATE TABLE` statement, with the one
/// `CREATE TABLE` editor of the crate (`db::create_table`); everything
/// after the name is kept byte for byte.
pub(crate) fn rename_create_table(sql: &str, new_name: &str) -> Option<String> {
    let mut ct = crate::db::create_table::CreateTable::parse(sql).ok()?;
    ct.rename_table(new_name).ok()?;
    Some(ct.to_sql())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_create_table() {
        assert_eq!(
            rename_create_table("CREATE TABLE \"tab\"\"X\" (a)", "n").unwrap(),
            "CREATE TABLE \"n\" (a)"
        );
        assert_eq!(
            rename_create_table("CREATE TABLE t(a)", "n").unwrap(),
            "CREATE TABLE \"n\"(a)"
        );
        assert_eq!(
            rename_create_table("CREATE TABLE [a b] (a)", "n").unwrap(),
            "CREATE TABLE \"n\" (a)"
        );
        assert!(rename_create_table("CREATE INDEX i ON t(a)", "n").is_none());
    }

    #[test]
    fn decl_types() {
        assert!(check_decl_type("t", "varchar(140)").is_ok());
        assert!(check_decl_type("t", "decimal(21,9)").is_ok());
        assert!(check_decl_type("t", "").is_ok());
        assert!(check_decl_type("t", "int); drop table x; --").is_err());
        assert!(check_decl_type("t", "int, b text").is_err());
    }
}
