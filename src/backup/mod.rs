//! Backups of tables and columns taken before destructive steps.
//!
//! A [`BackupManager`] writes one `.dmbak` file per table per migration into a
//! backup directory (by default `<db file name>.backups` beside the database,
//! see [`default_dir_for`]), and verifies, restores, lists and prunes them.
//!
//! * Strategies: [`BackupStrategy::FullTable`] (schema SQL plus every row with
//!   its rowid) and [`BackupStrategy::Columns`] (rowid, primary key and the
//!   named columns: what a dropped or retyped column needs).
//! * Values round-trip exactly: NULL, INTEGER, REAL (bit pattern), TEXT (raw
//!   bytes, even invalid UTF-8) and BLOB.
//! * Files are gzip-compressed (level 1 by default) and, with a key or
//!   passphrase, encrypted with AES-256-GCM in STREAM segments. Wrong keys,
//!   flipped bits and truncation are reported as [`crate::Error::Backup`],
//!   with a [`crate::BackupErrorKind`] saying which.
//! * Incremental backups store only rows added, changed or deleted since
//!   their base chain.
//!
//! Everything streams: memory does not grow with table size. Work that needs
//! a scratch table (restore, incremental diffs) uses TEMP tables, which live in
//! SQLite's temp store (a file unless `PRAGMA temp_store = MEMORY`).
//!
//! The file format is documented in `format.rs`, the row encoding in
//! `encoding.rs` and the encryption in `codec.rs`.

// `crate::Error` is large (its `Sql` variant holds a `rusqlite::Error` plus
// context); boxing it is a crate-wide decision for `error.rs`, not this module.
#![allow(clippy::result_large_err)]

mod codec;
mod encoding;
mod fault;
mod format;
mod incremental;
mod manager;
mod prune;
mod reader;
mod restore;
mod safefs;
mod tableinfo;
mod writer;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::history::MigrationId;

pub use crate::plan::{BackupPolicy, BackupStrategy, PlannedBackup};
pub use manager::{BackupKey, BackupManager, BackupManagerBuilder, default_dir_for};
pub use prune::PruneReport;
pub(crate) use prune::same_file;

/// Where [`BackupManager::restore`] puts the data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreTarget {
    /// The table the backup was taken from. A full backup replaces its
    /// contents (recreating the table, its indexes and triggers if it is
    /// missing); a column backup updates the named columns of the rows it
    /// matches by primary key (or rowid when the table has none).
    Original,
    /// A new table of this name, which must not exist. A full backup creates
    /// it from the backed-up `CREATE TABLE` (indexes and triggers are not
    /// copied); a column backup creates it with the stored columns.
    NewTable(String),
}

/// Which backups [`BackupManager::prune`] deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrunePolicy {
    /// Keep the newest `n` backups of each table, delete older ones.
    KeepNewest(usize),
    /// Delete backups created longer ago than this.
    OlderThan(chrono::Duration),
}

/// What is known about one backup file (from its manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BackupInfo {
    /// The backup file.
    pub path: PathBuf,
    /// The table's real name.
    pub table: String,
    /// What was backed up.
    pub strategy: BackupStrategy,
    /// Row records in this file (for an incremental backup: rows added or changed).
    pub row_count: u64,
    /// Rows recorded as deleted (incremental backups; 0 otherwise).
    pub deleted_count: u64,
    /// Rows the table held when the backup was taken.
    pub table_row_count: u64,
    /// When the backup was taken.
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// The migration the backup belongs to.
    pub migration_id: Option<MigrationId>,
    /// Whether the payload is gzip-compressed.
    pub compressed: bool,
    /// Whether the payload is encrypted.
    pub encrypted: bool,
    /// SHA-256 of the plaintext payload, hex.
    pub sha256: String,
    /// The header checksum, hex: SHA-256 over the header's first 32 bytes
    /// and the manifest (which holds `sha256`), so it identifies the
    /// backup's whole content. Recorded in history (`backup_sha256`) and
    /// compared by rollback.
    pub header_sha256: String,
    /// The id of the database the backup was taken from (see
    /// `history::store::database_id`); `None` in files written before
    /// databases had one.
    pub database_id: Option<String>,
    /// Whether the backup carries a MAC (it was written with a key) and
    /// this manager checked it with its own key. Always false for
    /// [`BackupManager::list`], which uses no key.
    pub authenticated: bool,
    /// The base of an incremental backup (same directory).
    pub base: Option<PathBuf>,
    /// Size of the file on disk.
    pub bytes: u64,
}

fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

impl BackupInfo {
    fn from_opened(o: &reader::Opened) -> BackupInfo {
        let mut info = BackupInfo::from_manifest(&o.path, &o.manifest, o.file_len, &o.checksum);
        info.authenticated = o.authenticated;
        info
    }

    fn from_manifest(
        path: &std::path::Path,
        m: &format::Manifest,
        bytes: u64,
        checksum: &[u8; 32],
    ) -> BackupInfo {
        BackupInfo {
            path: path.to_path_buf(),
            table: m.table.clone(),
            strategy: m.strategy.clone(),
            row_count: m.row_count,
            deleted_count: m.deleted_count,
            table_row_count: m.table_row_count,
            created_at: m.created_at().unwrap_or_default(),
            migration_id: m.migration_id,
            compressed: m.compression.is_some(),
            encrypted: m.encryption.is_some(),
            sha256: m.payload_sha256.clone(),
            header_sha256: format::hex_encode(checksum),
            database_id: m.database_id.clone(),
            authenticated: false,
            base: m.base.as_ref().map(|b| {
                path.parent()
                    .unwrap_or(std::path::Path::new("."))
                    .join(&b.file)
            }),
            bytes,
        }
    }
}
