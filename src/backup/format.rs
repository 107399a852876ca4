//! The `.dmbak` file format: fixed header, payload, manifest.
//!
//! ```text
//! offset 0   header (64 bytes)
//!            0..8    magic  b"DMBAK\r\n\x1a"
//!            8..10   format version, u16 LE (1)
//!            10..12  flags, u16 LE (bit 0 gzip, bit 1 encrypted; must match the manifest)
//!            12..16  manifest length, u32 LE (at most 16 MiB)
//!            16..24  payload length, u64 LE
//!            24..32  reserved, zero
//!            32..64  sha256(header[0..32] ‖ manifest)
//! offset 64  payload (payload length bytes): the record stream of
//!            `encoding.rs`, gzip-compressed and/or STREAM-encrypted
//! then       manifest (UTF-8 JSON, [`Manifest`])
//! ```
//!
//! The file size must be exactly `64 + payload + manifest`; anything else is
//! reported as truncated (or extended). The manifest comes last because it
//! records the row count and the plaintext SHA-256, known only once every
//! row has been streamed; the header is written last of all, at offset 0.
//! When encrypted, the final segment's associated data is `sha256(manifest)`,
//! so the manifest is authenticated by the key; the header checksum catches
//! accidental damage to header and manifest in every case and lets the reader
//! say "header corrupted" rather than "wrong key".

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BackupStrategy;
use super::codec::KdfParams;
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
    pub(crate) fn decode(b: &[u8; HEADER_LEN]) -> Result<(Header, [u8; 32], [u8; 32]), String> {
        if b[0..8] != MAGIC {
            return Err("not a doctype-migrate backup (bad magic)".into());
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != FORMAT_VERSION {
            return Err(format!(
                "unsupported backup format version {version} (this build reads version {FORMAT_VERSION}); header corrupted or written by a newer release"
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
            || header.flags & !(FLAG_GZIP | FLAG_ENCRYPTED) != 0
        {
            return Err("header flags do not match the manifest".into());
        }
        for k in &self.key_columns {
            if !self.columns.iter().any(|c| &c.name == k) {
                return Err(format!("key column {k:?} is not among the stored columns"));
            }
        }
        if self.created_at().is_none() {
            return Err(format!("created_at {:?} is not RFC 3339", self.created_at));
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
    fn sanitizes() {
        assert_eq!(sanitize_table_name("tabSales Order"), "tabSales_Order");
        assert_eq!(sanitize_table_name("../x"), "___x");
        assert_eq!(sanitize_table_name(""), "_");
    }
}
