//! Incremental backups: only the rows added, changed or deleted since the
//! state recorded by a chain of backups (a full or column base, then zero or
//! more increments).
//!
//! The chain's state is rebuilt as `key → 128-bit row hash` in a TEMP scratch
//! table (so memory stays flat), then the live table is scanned once: a row
//! whose key is new or whose hash differs is written; every key seen is
//! removed from the scratch table, so the keys left at the end are the rows
//! deleted since. Keys are the primary key values (or the rowid when the
//! table has no primary key, or for a NULL key in a rowid table), encoded
//! exactly, so comparisons never depend on collations or affinity.

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use sha2::{Digest, Sha256};

use super::BackupStrategy;
use super::encoding::{self, Value};
use super::format::{self, BaseLink, FORMAT_NAME, Manifest};
use super::reader::{self, Item};
use super::restore::{ChainFile, Scratch};
use super::tableinfo;
use super::writer::{self, WriterConfig, Written};
use crate::error::{BackupErrorKind, Error, Result};
use crate::history::MigrationId;

fn row_hash(buf: &mut Vec<u8>, values: &[Value]) -> [u8; 16] {
    buf.clear();
    for v in values {
        encoding::put_value(buf, v);
    }
    let d = Sha256::digest(&buf[..]);
    let mut h = [0u8; 16];
    h.copy_from_slice(&d[..16]);
    h
}

fn owned(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f.to_bits()),
        ValueRef::Text(t) => Value::Text(t.to_vec()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// Writes an incremental backup of `table` on top of `chain` (base first,
/// the file passed as base last).
pub(crate) fn backup_incremental(
    conn: &Connection,
    cfg: &WriterConfig<'_>,
    table: &str,
    chain: Vec<ChainFile>,
    migration_id: Option<MigrationId>,
) -> Result<Written> {
    let Some(base) = chain.last() else {
        return Err(Error::config(
            "base",
            "incremental backup: empty base chain",
        ));
    };
    let bm = base.opened.manifest.clone();
    let base_path = base.opened.path.clone();
    let base_link = BaseLink {
        file: base_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        header_sha256: format::hex_encode(&base.opened.checksum),
        payload_sha256: bm.payload_sha256.clone(),
    };

    let info = tableinfo::inspect(conn, table)?;
    if !info.name.eq_ignore_ascii_case(&bm.table) {
        return Err(reader::bad(
            &base_path,
            BackupErrorKind::Chain,
            format!(
                "base is a backup of table {:?}, not {:?}",
                bm.table, info.name
            ),
        ));
    }
    let columns = info.stored_columns(&bm.strategy)?;
    if columns != bm.columns
        || info.rowid_alias.is_some() != bm.has_rowid
        || info.key_columns != bm.key_columns
    {
        return Err(reader::bad(
            &base_path,
            BackupErrorKind::Chain,
            format!(
                "table {:?} changed shape since the base (columns, rowid or primary key); take a full backup instead",
                info.name
            ),
        ));
    }

    exec(conn, "SAVEPOINT dm_backup_incremental")?;
    let result = (|| {
        let scratch = Scratch::create(conn, "_dm_incr_", 1, true)?;
        let r = diff_and_write(
            conn,
            cfg,
            &info,
            &bm,
            &scratch,
            chain,
            base_link,
            migration_id,
        );
        exec(conn, &scratch.drop_sql())?;
        r
    })();
    match result {
        Ok(w) => {
            exec(conn, "RELEASE dm_backup_incremental")?;
            Ok(w)
        }
        Err(e) => {
            let _ = conn
                .execute_batch("ROLLBACK TO dm_backup_incremental; RELEASE dm_backup_incremental");
            Err(e)
        }
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.execute_batch(sql).map_err(|e| Error::sql(sql, e))
}

#[allow(clippy::too_many_arguments)]
fn diff_and_write(
    conn: &Connection,
    cfg: &WriterConfig<'_>,
    info: &tableinfo::TableInfo,
    bm: &Manifest,
    scratch: &Scratch,
    chain: Vec<ChainFile>,
    base_link: BaseLink,
    migration_id: Option<MigrationId>,
) -> Result<Written> {
    let rowid_pos = bm.has_rowid.then_some(0);
    let key_pos = bm.key_positions();
    let mut key = Vec::new();
    let mut hbuf = Vec::new();

    // 1. The chain's state as key -> row hash.
    let isql = format!(
        "INSERT OR REPLACE INTO {} (k, v0) VALUES (?1, ?2)",
        scratch.qname
    );
    let dsql = format!("DELETE FROM {} WHERE k = ?1", scratch.qname);
    {
        let mut ins = conn.prepare(&isql).map_err(|e| Error::sql(&isql, e))?;
        let mut del = conn.prepare(&dsql).map_err(|e| Error::sql(&dsql, e))?;
        for cf in chain {
            let mut payload = reader::payload(&cf.opened, cf.file, cf.key.as_deref())?;
            while let Some(item) = payload.next_item()? {
                match item {
                    Item::Row(vals) => {
                        encoding::row_key(&mut key, &vals, rowid_pos, &key_pos);
                        let h = row_hash(&mut hbuf, &vals);
                        ins.execute(rusqlite::params![&key[..], &h[..]])
                            .map_err(|e| Error::sql(&isql, e))?;
                    }
                    Item::Delete(k) => {
                        del.execute([&k[..]]).map_err(|e| Error::sql(&dsql, e))?;
                    }
                }
            }
        }
    }

    // 2. Scan the table once, writing new and changed rows; then the keys
    //    never seen are the deleted rows.
    let now = chrono::Utc::now();
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        table: info.name.clone(),
        strategy: bm.strategy.clone(),
        has_rowid: bm.has_rowid,
        key_columns: bm.key_columns.clone(),
        columns: bm.columns.clone(),
        schema_sql: match bm.strategy {
            BackupStrategy::FullTable => info.schema_sql.clone(),
            BackupStrategy::Columns(_) => Vec::new(),
        },
        row_count: 0,
        deleted_count: 0,
        table_row_count: 0,
        created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        migration_id,
        compression: None,
        encryption: None,
        payload_sha256: String::new(),
        payload_plain_bytes: 0,
        base: Some(base_link),
        database_id: crate::history::store::database_id(conn)?,
    };
    let stem = format::file_stem(&info.name, migration_id, &now, "incr");
    let select = info.select_sql(&bm.columns);
    let ncols = bm.ncols();
    let lsql = format!("SELECT v0 FROM {} WHERE k = ?1", scratch.qname);
    let ksql = format!("SELECT k FROM {}", scratch.qname);
    writer::write_backup(cfg, &stem, manifest, |sink| {
        let mut lookup = conn.prepare(&lsql).map_err(|e| Error::sql(&lsql, e))?;
        let mut del = conn.prepare(&dsql).map_err(|e| Error::sql(&dsql, e))?;
        let mut stmt = conn.prepare(&select).map_err(|e| Error::sql(&select, e))?;
        let mut rows = stmt.query([]).map_err(|e| Error::sql(&select, e))?;
        let mut table_rows = 0u64;
        let mut vals: Vec<Value> = Vec::with_capacity(ncols);
        while let Some(row) = rows.next().map_err(|e| Error::sql(&select, e))? {
            table_rows += 1;
            vals.clear();
            for i in 0..ncols {
                vals.push(owned(row.get_ref(i).map_err(|e| Error::sql(&select, e))?));
            }
            encoding::row_key(&mut key, &vals, rowid_pos, &key_pos);
            let h = row_hash(&mut hbuf, &vals);
            let old: Option<Vec<u8>> = {
                let mut q = lookup.query([&key[..]]).map_err(|e| Error::sql(&lsql, e))?;
                match q.next().map_err(|e| Error::sql(&lsql, e))? {
                    Some(r) => Some(r.get(0).map_err(|e| Error::sql(&lsql, e))?),
                    None => None,
                }
            };
            if old.as_deref() != Some(&h[..]) {
                sink.row_values(&vals)?;
            }
            if old.is_some() {
                del.execute([&key[..]]).map_err(|e| Error::sql(&dsql, e))?;
            }
        }
        let mut kstmt = conn.prepare(&ksql).map_err(|e| Error::sql(&ksql, e))?;
        let mut krows = kstmt.query([]).map_err(|e| Error::sql(&ksql, e))?;
        while let Some(r) = krows.next().map_err(|e| Error::sql(&ksql, e))? {
            let k: Vec<u8> = r.get(0).map_err(|e| Error::sql(&ksql, e))?;
            sink.delete(&k)?;
        }
        Ok(table_rows)
    })
}
