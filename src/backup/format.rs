//! The `.dmbak` file format: fixed header, payload, manifest, and (for a
//! backup written with a key) a MAC.
//!
//! ```text
//! offset 0   header (64 bytes)
//!            0..8    magic  b"DMBAK\r\n\x1a"
//!            8..10   format version, u16 LE (1)
//!            10..12  flags, u16 LE (bit 0 gzip, bit 1 encrypted, bit 2 MAC
//!                    trailer; gzip and encrypted must match the manifest)
//!            12..16  manifest length, u32 LE (at most 16 MiB)
//!            16..24  payload length, u64 LE
//!            24..32  reserved, zero
//!            32..64  sha256(header[0..32] ‖ manifest)
//! offset 64  payload (payload length bytes): the record stream of
//!            `encoding.rs`, gzip-compressed and/or STREAM-encrypted
//! then       manifest (UTF-8 JSON, [`Manifest`])
//! then       with flag bit 2 only: the MAC, 32 bytes:
//!            HMAC-SHA256(mac key, domain ‖ header[0..64] ‖ manifest)
//! ```
//!
//! The file size must be exactly `64 + payload + manifest (+ 32)`; anything
//! else is reported as truncated (or extended). The manifest comes last
//! because it records the row count and the plaintext SHA-256, known only
//! once every row has been streamed; the header is written last of all, at
//! offset 0.
//!
//! Integrity and authenticity:
//!
//! * The header checksum (no key) catches accidental damage to header and
//!   manifest and lets the reader say "header corrupted" rather than
//!   "wrong key". Anyone can recompute it, so it proves nothing about who
//!   wrote the file.
//! * A backup written with a key (key file or passphrase) is encrypted and
//!   carries the MAC trailer (see `codec.rs`: HMAC-SHA256 under a key
//!   derived from the encryption key with HKDF). A reader with a key checks
//!   it before it parses the manifest (only the KDF parameters are read
//!   first, to derive the key from a passphrase, capped at the reader's own
//!   cost), and refuses a file without one. The MAC covers the manifest,
//!   hence the payload's SHA-256, the table, the schema SQL, the migration
//!   and database ids.
//! * When encrypted, the final segment's associated data is
//!   `sha256(manifest)` too, so the payload is bound to its manifest.
//! * The manifest's `database_id` names the database the backup was taken
//!   from; restores compare it with the database they write to.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BackupStrategy;
use super::codec::KdfParams;
use super::fault::Fault;
use crate::error::BackupErrorKind;
use crate::history::MigrationId;

/// File magic: `DMBAK`, then CR LF and ^Z to detect text-mode mangling.
pub(crate) const MAGIC: [u8; 8] = *b"DMBAK\r\n\x1a";
/// Current format version.
pub(crate) const FORMAT_VERSION: u16 = 1;
/// Header size.
pub(crate) const HEADER_LEN: usize = 64;
/// Largest manifest accepted.
pub(crate) const MAX_MANIFEST_LEN: u32 = 16 * 1024 * 1024;
/// Most columns a SQLite table can have (SQLITE_MAX_COLUMN upper bound).
pub(crate) const MAX_COLUMNS: usize = 32767;
/// File extension.
pub(crate) const EXTENSION: &str = "dmbak";

pub(crate) const FLAG_GZIP: u16 = 1;
pub(crate) const FLAG_ENCRYPTED: u16 = 2;
/// A 32-byte MAC follows the manifest (backups written with a key).
pub(crate) const FLAG_MAC: u16 = 4;

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub flags: u16,
    pub manifest_len: u32,
    pub payload_len: u64,
}

impl Header {
    fn prefix(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..16].copy_from_slice(&self.manifest_len.to_le_bytes());
        b[16..24].copy_from_slice(&self.payload_len.to_le_bytes());
        b
    }

    /// The 64 header bytes for `manifest`.
    pub(crate) fn encode(&self, manifest: &[u8]) -> [u8; HEADER_LEN] {
        let prefix = self.prefix();
        let mut b = [0u8; HEADER_LEN];
        b[..32].copy_from_slice(&prefix);
        b[32..].copy_from_slice(&checksum(&prefix, manifest));
        b
    }

    /// Parses the header; returns it with the stored checksum.
    pub(crate) fn decode(b: &[u8; HEADER_LEN]) -> Result<(Header, [u8; 32], [u8; 32]), Fault> {
        if b[0..8] != MAGIC {
            return Err(Fault::new(
                BackupErrorKind::NotABackup,
                "not a doctype-migrate backup (bad magic)",
            ));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != FORMAT_VERSION {
            return Err(Fault::new(
                BackupErrorKind::Unsupported,
                format!(
                    "unsupported backup format version {version} (this build reads version {FORMAT_VERSION}); header corrupted or written by a newer release"
                ),
            ));
        }
        let header = Header {
            flags: u16::from_le_bytes([b[10], b[11]]),
            manifest_len: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            payload_len: u64::from_le_bytes([
                b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23],
            ]),
        };
        let mut prefix = [0u8; 32];
        prefix.copy_from_slice(&b[..32]);
        let mut stored = [0u8; 32];
        stored.copy_from_slice(&b[32..]);
        Ok((header, prefix, stored))
    }
}

/// `sha256(header prefix ‖ manifest)`.
pub(crate) fn checksum(prefix: &[u8; 32], manifest: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prefix);
    h.update(manifest);
    h.finalize().into()
}

/// A stored column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ColumnMeta {
    /// Column name.
    pub name: String,
    /// Declared type as written in the schema (may be empty).
    pub decl_type: String,
    /// Position in the primary key (0 = not part of it).
    pub pk: u32,
}

/// Compression settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CompressionMeta {
    /// Always `gzip`.
    pub algorithm: String,
    /// Level 0-9.
    pub level: u32,
}

/// Encryption settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EncryptionMeta {
    /// [`super::codec::ENCRYPTION_ALGORITHM`].
    pub algorithm: String,
    /// Plaintext bytes per segment.
    pub segment_size: u32,
    /// 7-byte nonce prefix, hex.
    pub nonce_prefix: String,
    /// Key-check tag, hex.
    pub key_check: String,
    /// How the key was obtained: `key` (raw key or key file) or `passphrase`.
    pub key_source: String,
    /// KDF parameters when `key_source` is `passphrase`.
    pub kdf: Option<KdfParams>,
}

/// Link from an incremental backup to its base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BaseLink {
    /// File name of the base, in the same directory.
    pub file: String,
    /// The base's header checksum (covers its manifest, hence its payload hash).
    pub header_sha256: String,
    /// The base's plaintext payload SHA-256.
    pub payload_sha256: String,
}

/// The manifest (JSON, at the end of the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// Always `doctype-migrate backup`.
    pub format: String,
    /// The table's real name.
    pub table: String,
    /// What was backed up.
    pub strategy: BackupStrategy,
    /// True when each row record starts with the rowid.
    pub has_rowid: bool,
    /// Primary key columns in key order (empty: keyed by rowid).
    pub key_columns: Vec<String>,
    /// Stored columns, in record order (after the rowid).
    pub columns: Vec<ColumnMeta>,
    /// `CREATE TABLE` then index and trigger SQL (full strategy only).
    pub schema_sql: Vec<String>,
    /// Row records in the payload.
    pub row_count: u64,
    /// Delete records in the payload (incremental backups).
    pub deleted_count: u64,
    /// Rows in the table when the backup was taken.
    pub table_row_count: u64,
    /// RFC 3339, UTC, microseconds.
    pub created_at: String,
    /// The migration this backup belongs to.
    pub migration_id: Option<MigrationId>,
    /// gzip settings, when compressed.
    pub compression: Option<CompressionMeta>,
    /// Encryption settings, when encrypted.
    pub encryption: Option<EncryptionMeta>,
    /// SHA-256 of the plaintext record stream, hex.
    pub payload_sha256: String,
    /// Length of the plaintext record stream.
    pub payload_plain_bytes: u64,
    /// Base of an incremental backup.
    pub base: Option<BaseLink>,
    /// The id of the database the backup was taken from (see
    /// `history::store::database_id`); absent in files written before
    /// databases had one.
    #[serde(default)]
    pub database_id: Option<String>,
}

/// Manifest `format` value.
pub(crate) const FORMAT_NAME: &str = "doctype-migrate backup";

impl Manifest {
    /// Structural checks on a manifest read from a file.
    pub(crate) fn check(&self, header: &Header) -> Result<(), String> {
        if self.format != FORMAT_NAME {
            return Err(format!(
                "manifest format {:?} is not {FORMAT_NAME:?}",
                self.format
            ));
        }
        if self.columns.len() > MAX_COLUMNS {
            return Err(format!(
                "manifest lists {} columns (at most {MAX_COLUMNS})",
                self.columns.len()
            ));
        }
        if (header.flags & FLAG_GZIP != 0) != self.compression.is_some()
            || (header.flags & FLAG_ENCRYPTED != 0) != self.encryption.is_some()
            || header.flags & !(FLAG_GZIP | FLAG_ENCRYPTED | FLAG_MAC) != 0
            || (header.flags & FLAG_MAC != 0 && self.encryption.is_none())
        {
            return Err("header flags do not match the manifest".into());
        }
        // Column names are unique as SQLite compares them (ASCII case
        // folded): a table cannot have two columns of one name.
        let mut names = std::collections::HashSet::with_capacity(self.columns.len());
        if let Some(c) = self
            .columns
            .iter()
            .find(|c| !names.insert(c.name.to_ascii_lowercase()))
        {
            return Err(format!("column {:?} is stored twice", c.name));
        }
        for k in &self.key_columns {
            if !self.columns.iter().any(|c| &c.name == k) {
                return Err(format!("key column {k:?} is not among the stored columns"));
            }
        }
        // What a column restore updates: at least one column, each stored
        // (the writer refuses a column backup that names none).
        if let BackupStrategy::Columns(names) = &self.strategy {
            if names.is_empty() {
                return Err("a column backup must name at least one column".into());
            }
            if let Some(n) = names
                .iter()
                .find(|n| !self.columns.iter().any(|c| &c.name == *n))
            {
                return Err(format!(
                    "backed-up column {n:?} is not among the stored columns"
                ));
            }
        }
        if self.created_at().is_none() {
            return Err(format!("created_at {:?} is not RFC 3339", self.created_at));
        }
        if let Some(id) = &self.database_id {
            if !is_database_id(id) {
                return Err(format!("database_id {id:?} is not 32 hex digits"));
            }
        }
        self.check_schema_sql()
    }

    /// The schema SQL is run on restore, so it must be what a backup of
    /// `table` holds: for a full backup, first one `CREATE TABLE` statement
    /// creating that table with a column list, then single `CREATE INDEX`,
    /// `CREATE UNIQUE INDEX` or `CREATE TRIGGER` statements; for a column
    /// backup, nothing. One statement each: a second one after a `;`
    /// (`VACUUM INTO ...`, `ATTACH ...`) makes the manifest invalid, so
    /// `verify` refuses it as well as `restore`.
    fn check_schema_sql(&self) -> Result<(), String> {
        let (create, rest) = match (&self.strategy, self.schema_sql.split_first()) {
            (BackupStrategy::Columns(_), None) => return Ok(()),
            (BackupStrategy::Columns(_), Some(_)) => {
                return Err("a column backup carries no schema SQL".into());
            }
            (BackupStrategy::FullTable, None) => {
                return Err("a full backup must carry its CREATE TABLE statement".into());
            }
            (BackupStrategy::FullTable, Some(x)) => x,
        };
        let single = |sql: &str| {
            crate::db::sqlguard::check_text(sql).map_err(|why| {
                format!(
                    "schema statement {} is not a single engine statement: {why}",
                    crate::db::sqlguard::printable(sql)
                )
            })
        };
        single(create)?;
        match created_table(create) {
            Some((name, rest)) if name.eq_ignore_ascii_case(&self.table) => {
                if !rest.trim_start().starts_with('(') {
                    return Err("the CREATE TABLE statement has no column list".into());
                }
            }
            Some((name, _)) => {
                return Err(format!(
                    "the CREATE TABLE statement creates {name:?}, not the backed-up table {:?}",
                    self.table
                ));
            }
            None => {
                return Err(format!(
                    "schema statement {} is not a CREATE TABLE statement",
                    crate::db::sqlguard::printable(create)
                ));
            }
        }
        for sql in rest {
            single(sql)?;
            let upper = sql.trim_start().to_ascii_uppercase();
            if !["CREATE INDEX ", "CREATE UNIQUE INDEX ", "CREATE TRIGGER "]
                .iter()
                .any(|p| upper.starts_with(p))
            {
                return Err(format!(
                    "schema statement {} is not a CREATE INDEX or CREATE TRIGGER statement",
                    crate::db::sqlguard::printable(sql)
                ));
            }
        }
        Ok(())
    }

    /// Values per row record.
    pub(crate) fn ncols(&self) -> usize {
        self.columns.len() + usize::from(self.has_rowid)
    }

    /// Parsed creation time.
    pub(crate) fn created_at(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.created_at)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// Positions (in a row's values) of the key columns.
    pub(crate) fn key_positions(&self) -> Vec<usize> {
        let off = usize::from(self.has_rowid);
        self.key_columns
            .iter()
            .filter_map(|k| {
                self.columns
                    .iter()
                    .position(|c| &c.name == k)
                    .map(|p| p + off)
            })
            .collect()
    }
}

/// The table name and the text after it in `CREATE TABLE <name> ...`, as
/// SQLite stores it in `sqlite_schema` (keyword normalised, no `IF NOT
/// EXISTS`, no schema name). The name is unquoted.
pub(crate) fn created_table(sql: &str) -> Option<(String, &str)> {
    const PREFIX: &str = "CREATE TABLE ";
    if !sql.get(..PREFIX.len())?.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let rest = &sql[PREFIX.len()..];
    let bytes = rest.as_bytes();
    match *bytes.first()? {
        q @ (b'"' | b'`' | b'\'') => {
            let mut name = Vec::new();
            let mut i = 1;
            loop {
                let c = *bytes.get(i)?;
                if c == q {
                    if bytes.get(i + 1) == Some(&q) {
                        name.push(q);
                        i += 2;
                        continue;
                    }
                    break;
                }
                name.push(c);
                i += 1;
            }
            Some((String::from_utf8(name).ok()?, &rest[i + 1..]))
        }
        b'[' => {
            let end = rest.find(']')?;
            Some((rest[1..end].to_string(), &rest[end + 1..]))
        }
        _ => {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '(')
                .unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            Some((rest[..end].to_string(), &rest[end..]))
        }
    }
}

/// Whether `s` is a database id: 32 lower-case hex digits (16 bytes).
pub(crate) fn is_database_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Lower-case hex.
pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses hex (either case); `None` on odd length or a non-hex digit.
pub(crate) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    b.chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16)?;
            let lo = (p[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

/// A table name made safe for a file name: ASCII letters, digits, `-` and
/// `_` kept, everything else `_`, at most 80 bytes. The real name stays in
/// the manifest; collisions are resolved by a numeric suffix when writing.
pub(crate) fn sanitize_table_name(table: &str) -> String {
    let mut s: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if s.is_empty() {
        s.push('_');
    }
    s
}

/// `<table>__<m<id> | timestamp>__<kind>` (no extension, no collision suffix).
pub(crate) fn file_stem(
    table: &str,
    migration_id: Option<MigrationId>,
    created_at: &DateTime<Utc>,
    kind: &str,
) -> String {
    let when = match migration_id {
        Some(id) => format!("m{}", id.0),
        None => created_at.format("%Y%m%dT%H%M%S%6fZ").to_string(),
    };
    format!("{}__{when}__{kind}", sanitize_table_name(table))
}

/// True if `path` has the backup extension.
pub(crate) fn is_backup_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == EXTENSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex_decode(&hex_encode(&b)).unwrap(), b);
        assert!(hex_decode("abc").is_none());
        assert!(hex_decode("zz").is_none());
    }

    #[test]
    fn created_table_names() {
        assert_eq!(
            created_table("CREATE TABLE \"tab\"\"X\" (a)").unwrap(),
            ("tab\"X".to_string(), " (a)")
        );
        assert_eq!(created_table("CREATE TABLE t(a)").unwrap().0, "t");
        assert_eq!(created_table("CREATE TABLE [a b] (a)").unwrap().0, "a b");
        assert!(created_table("CREATE INDEX i ON t(a)").is_none());
        assert!(created_table("VACUUM INTO 'x'").is_none());
    }

    fn manifest(schema: &[&str]) -> Manifest {
        Manifest {
            format: FORMAT_NAME.into(),
            table: "t".into(),
            strategy: BackupStrategy::FullTable,
            has_rowid: true,
            key_columns: vec![],
            columns: vec![],
            schema_sql: schema.iter().map(|s| s.to_string()).collect(),
            row_count: 0,
            deleted_count: 0,
            table_row_count: 0,
            created_at: "2024-01-01T00:00:00Z".into(),
            migration_id: None,
            compression: None,
            encryption: None,
            payload_sha256: String::new(),
            payload_plain_bytes: 0,
            base: None,
            database_id: None,
        }
    }

    #[test]
    fn schema_sql_must_be_single_create_statements() {
        let h = Header {
            flags: 0,
            manifest_len: 0,
            payload_len: 0,
        };
        let ok = manifest(&[
            "CREATE TABLE t (a)",
            "CREATE INDEX i ON t(a)",
            "CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END",
        ]);
        ok.check(&h).unwrap();
        for bad in [
            &["CREATE TABLE t (a); VACUUM INTO '/tmp/x'"][..],
            &["VACUUM INTO '/tmp/x'"],
            &["CREATE TABLE other (a)"],
            &["CREATE TABLE t AS SELECT * FROM secrets"],
            &["CREATE TABLE t (a)", "ATTACH 'x' AS y"],
            &["CREATE TABLE t (a)", "CREATE INDEX i ON t(a); VACUUM"],
            &["CREATE TABLE t (a)", "CREATE VIEW v AS SELECT 1"],
            &[],
        ] {
            let err = manifest(bad).check(&h).unwrap_err();
            assert!(!err.is_empty(), "{bad:?}");
        }
    }

    /// Found by `backup_fuzz`: forged manifests that restore
    /// turned into invalid SQL.
    #[test]
    fn columns_are_unique_and_a_column_strategy_names_stored_ones() {
        let h = Header {
            flags: 0,
            manifest_len: 0,
            payload_len: 0,
        };
        let col = |name: &str| ColumnMeta {
            name: name.into(),
            decl_type: String::new(),
            pk: 0,
        };
        let mut m = manifest(&["CREATE TABLE t (a, b)"]);
        m.columns = vec![col("a"), col("b")];
        m.check(&h).unwrap();
        m.columns = vec![col("a"), col("A")];
        assert!(m.check(&h).unwrap_err().contains("stored twice"));
        let mut m = manifest(&[]);
        m.columns = vec![col("a")];
        m.strategy = BackupStrategy::Columns(vec!["a".into()]);
        m.check(&h).unwrap();
        for bad in [vec![], vec!["b".to_string()]] {
            m.strategy = BackupStrategy::Columns(bad.clone());
            assert!(m.check(&h).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sanitizes() {
        assert_eq!(sanitize_table_name("tabSales Order"), "tabSales_Order");
        assert_eq!(sanitize_table_name("../x"), "___x");
        assert_eq!(sanitize_table_name(""), "_");
    }
}
