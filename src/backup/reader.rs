//! Reading a backup file: structural checks on header and manifest, then the
//! payload as a stream of records with every integrity check at its end.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Take};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::codec::{
    self, DecryptReader, HashingReader, KdfParams, MAC_LEN, MaybeDecrypt, MaybeGunzip,
    NONCE_PREFIX_LEN, SEGMENT_SIZE,
};
use super::encoding::{Record, RecordReader, Value};
use super::fault::Fault;
use super::format::{self, FLAG_MAC, HEADER_LEN, Header, MAX_MANIFEST_LEN, Manifest};
use crate::error::{BackupErrorKind as Kind, Error, Result};

/// A backup whose header and manifest passed the structural checks.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    pub path: PathBuf,
    pub header: Header,
    /// Stored (and verified) header checksum.
    pub checksum: [u8; 32],
    pub manifest: Manifest,
    /// `sha256(manifest bytes)`: the final segment's associated data.
    pub manifest_sha: [u8; 32],
    pub file_len: u64,
    /// Whether the MAC was checked with the reader's key.
    pub authenticated: bool,
}

pub(crate) fn bad(path: &Path, kind: Kind, message: impl Into<String>) -> Error {
    Error::backup(path, kind, message)
}

fn io_err(path: &Path, e: io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Maps an error from the payload pipeline to a clear backup error: a
/// [`Fault`] raised by the codec (truncation, a segment failing
/// authentication) keeps its kind and text; other invalid data is a
/// corrupted payload; anything else is an I/O error.
fn payload_err(path: &Path, e: io::Error) -> Error {
    if let Some(fault) = Fault::of_io(&e) {
        return fault.clone().at(path);
    }
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof => {
            bad(path, Kind::Corrupted, format!("corrupted payload: {e}"))
        }
        _ => io_err(path, e),
    }
}

/// A backup whose size and header checksum were checked; the manifest is
/// not parsed yet and the MAC (if any) not checked.
pub(crate) struct Raw {
    /// The path as given (for messages and [`Opened::path`]).
    pub path: PathBuf,
    pub file: File,
    pub file_len: u64,
    pub header: Header,
    /// The 64 header bytes, as stored.
    pub header_bytes: [u8; HEADER_LEN],
    /// Stored (and verified) header checksum.
    pub checksum: [u8; 32],
    pub manifest_bytes: Vec<u8>,
    /// The MAC trailer, when the header says there is one.
    pub mac: Option<[u8; MAC_LEN]>,
}

/// Reads the header of an open backup, checks magic, version, sizes and
/// the header checksum, and reads the manifest bytes and the MAC trailer.
/// Nothing is parsed beyond the fixed header.
pub(crate) fn open_raw_file(path: &Path, mut file: File) -> Result<Raw> {
    let file_len = file.metadata().map_err(|e| io_err(path, e))?.len();
    if file_len < HEADER_LEN as u64 {
        return Err(bad(
            path,
            Kind::Truncated,
            format!("truncated: {file_len} bytes, shorter than the {HEADER_LEN}-byte header"),
        ));
    }
    let mut hb = [0u8; HEADER_LEN];
    file.read_exact(&mut hb).map_err(|e| io_err(path, e))?;
    let (header, prefix, stored) = Header::decode(&hb).map_err(|f| f.at(path))?;
    if header.manifest_len > MAX_MANIFEST_LEN {
        return Err(bad(
            path,
            Kind::Corrupted,
            format!(
                "header corrupted: manifest length {} exceeds {MAX_MANIFEST_LEN}",
                header.manifest_len
            ),
        ));
    }
    let mac_len = if header.flags & FLAG_MAC != 0 {
        MAC_LEN as u64
    } else {
        0
    };
    let expected = (HEADER_LEN as u64)
        .checked_add(header.payload_len)
        .and_then(|v| v.checked_add(u64::from(header.manifest_len)))
        .and_then(|v| v.checked_add(mac_len));
    match expected {
        Some(n) if n == file_len => {}
        Some(n) if n > file_len => {
            return Err(bad(
                path,
                Kind::Truncated,
                format!(
                    "truncated: file is {file_len} bytes but its header describes {n} (or the header is corrupted)"
                ),
            ));
        }
        _ => {
            return Err(bad(
                path,
                Kind::Corrupted,
                format!(
                    "file is {file_len} bytes but its header describes {} (extra bytes appended, or the header is corrupted)",
                    expected.map_or_else(|| "an impossible size".to_string(), |n| n.to_string())
                ),
            ));
        }
    }
    file.seek(SeekFrom::Start(HEADER_LEN as u64 + header.payload_len))
        .map_err(|e| io_err(path, e))?;
    let mut manifest_bytes = vec![0u8; header.manifest_len as usize];
    file.read_exact(&mut manifest_bytes)
        .map_err(|e| io_err(path, e))?;
    let mac = if mac_len > 0 {
        let mut m = [0u8; MAC_LEN];
        file.read_exact(&mut m).map_err(|e| io_err(path, e))?;
        Some(m)
    } else {
        None
    };
    if format::checksum(&prefix, &manifest_bytes) != stored {
        return Err(bad(
            path,
            Kind::Corrupted,
            "header or manifest corrupted: checksum mismatch",
        ));
    }
    if prefix[24..32] != [0u8; 8] {
        return Err(bad(
            path,
            Kind::Corrupted,
            "header corrupted: reserved bytes are not zero",
        ));
    }
    Ok(Raw {
        path: path.to_path_buf(),
        file,
        file_len,
        header,
        header_bytes: hb,
        checksum: stored,
        manifest_bytes,
        mac,
    })
}

/// The KDF parameters of a raw backup: the one thing read from a manifest
/// before its MAC is checked (a passphrase key cannot be derived without
/// them). Only `encryption.kdf` is looked at; the rest is skipped.
pub(crate) fn kdf_params(raw: &Raw) -> Result<Option<KdfParams>> {
    #[derive(serde::Deserialize)]
    struct KdfOnly {
        encryption: Option<EncOnly>,
    }
    #[derive(serde::Deserialize)]
    struct EncOnly {
        kdf: Option<KdfParams>,
    }
    let k: KdfOnly = serde_json::from_slice(&raw.manifest_bytes).map_err(|e| {
        bad(
            &raw.path,
            Kind::Corrupted,
            format!("manifest is not valid: {e}"),
        )
    })?;
    Ok(k.encryption.and_then(|e| e.kdf))
}

/// Whether `key` passes the key check of a raw backup's manifest (not
/// authenticated yet): `None` when the manifest has no readable key check.
/// Only used to tell a wrong key from an altered file once the MAC failed:
/// the key check is the file's own, so it matching means the key is right.
fn key_check_matches(raw: &Raw, key: &[u8; 32]) -> Option<bool> {
    #[derive(serde::Deserialize)]
    struct EncOnly {
        encryption: Option<KeyCheck>,
    }
    #[derive(serde::Deserialize)]
    struct KeyCheck {
        nonce_prefix: String,
        key_check: String,
    }
    let m: EncOnly = serde_json::from_slice(&raw.manifest_bytes).ok()?;
    let enc = m.encryption?;
    let prefix: [u8; NONCE_PREFIX_LEN] = format::hex_decode(&enc.nonce_prefix)?.try_into().ok()?;
    let check = format::hex_decode(&enc.key_check)?;
    Some(check == codec::key_check(&codec::cipher(key), &prefix))
}

/// Checks the MAC trailer against `key` (the backup key; the MAC key is
/// derived from it). Constant-time comparison. A mismatch is a wrong key,
/// unless the key passes the file's key check: then the header or the
/// manifest was altered (and the checksum recomputed).
pub(crate) fn check_mac(raw: &Raw, key: &[u8; 32]) -> Result<()> {
    let Some(stored) = &raw.mac else {
        return Err(bad(
            &raw.path,
            Kind::Unauthenticated,
            "backup carries no MAC",
        ));
    };
    let expected = codec::backup_mac(&codec::mac_key(key), &raw.header_bytes, &raw.manifest_bytes);
    if !codec::mac_eq(&expected, stored) {
        let kind = if key_check_matches(raw, key) == Some(true) {
            Kind::Corrupted
        } else {
            Kind::WrongKey
        };
        return Err(bad(
            &raw.path,
            kind,
            "wrong key or corrupted data: the header and manifest failed authentication \
             (HMAC-SHA256 mismatch: a wrong key or passphrase, or a file altered or forged)",
        ));
    }
    Ok(())
}

/// Parses and checks the manifest of a raw backup.
pub(crate) fn parse(raw: Raw) -> Result<(Opened, File)> {
    let path = raw.path;
    let manifest: Manifest = serde_json::from_slice(&raw.manifest_bytes).map_err(|e| {
        bad(
            &path,
            Kind::Corrupted,
            format!("manifest is not valid: {e}"),
        )
    })?;
    manifest.check(&raw.header).map_err(|m| {
        bad(
            &path,
            Kind::Corrupted,
            format!("manifest is not valid: {m}"),
        )
    })?;
    let manifest_sha: [u8; 32] = Sha256::digest(&raw.manifest_bytes).into();
    Ok((
        Opened {
            path,
            header: raw.header,
            checksum: raw.checksum,
            manifest,
            manifest_sha,
            file_len: raw.file_len,
            authenticated: false,
        },
        raw.file,
    ))
}

type Source = Take<BufReader<File>>;
type Plain = BufReader<HashingReader<MaybeGunzip<BufReader<MaybeDecrypt<Source>>>>>;

/// The records of one backup, checked as they are read.
pub(crate) struct Payload {
    path: PathBuf,
    records: RecordReader<Plain>,
    rows: u64,
    deletes: u64,
    manifest: Manifest,
    done: bool,
}

/// A row or a delete (the END record is consumed and checked internally).
pub(crate) enum Item {
    Row(Vec<Value>),
    Delete(Vec<u8>),
}

/// Starts reading the payload. `key` must be given for encrypted files;
/// it is checked against the manifest's key-check tag first.
pub(crate) fn payload(opened: &Opened, mut file: File, key: Option<&[u8; 32]>) -> Result<Payload> {
    let path = &opened.path;
    let m = &opened.manifest;
    file.seek(SeekFrom::Start(HEADER_LEN as u64))
        .map_err(|e| io_err(path, e))?;
    let source = BufReader::with_capacity(128 * 1024, file).take(opened.header.payload_len);
    let dec = match &m.encryption {
        None => MaybeDecrypt::Plain(source),
        Some(enc) => {
            if enc.algorithm != codec::ENCRYPTION_ALGORITHM
                || enc.segment_size as usize != SEGMENT_SIZE
            {
                return Err(bad(
                    path,
                    Kind::Unsupported,
                    format!(
                        "unsupported encryption {} with {}-byte segments",
                        enc.algorithm, enc.segment_size
                    ),
                ));
            }
            let key = key.ok_or_else(|| {
                bad(
                    path,
                    Kind::KeyRequired,
                    "backup is encrypted; a key file or passphrase is required",
                )
            })?;
            let prefix: [u8; NONCE_PREFIX_LEN] = format::hex_decode(&enc.nonce_prefix)
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| {
                    bad(
                        path,
                        Kind::Corrupted,
                        "manifest is not valid: bad nonce prefix",
                    )
                })?;
            let cipher = codec::cipher(key);
            let check = format::hex_decode(&enc.key_check).ok_or_else(|| {
                bad(
                    path,
                    Kind::Corrupted,
                    "manifest is not valid: bad key check",
                )
            })?;
            if check != codec::key_check(&cipher, &prefix) {
                return Err(bad(
                    path,
                    Kind::WrongKey,
                    format!(
                        "wrong key or passphrase: the key check does not match (key source: {})",
                        enc.key_source
                    ),
                ));
            }
            MaybeDecrypt::Decrypt(Box::new(DecryptReader::new(
                source,
                cipher,
                prefix,
                opened.header.payload_len,
                opened.manifest_sha,
            )))
        }
    };
    let gun = MaybeGunzip::new(
        BufReader::with_capacity(64 * 1024, dec),
        m.compression.is_some(),
    );
    let plain = BufReader::with_capacity(64 * 1024, HashingReader::new(gun));
    Ok(Payload {
        path: path.clone(),
        records: RecordReader::new(plain, m.ncols()),
        rows: 0,
        deletes: 0,
        manifest: m.clone(),
        done: false,
    })
}

impl Payload {
    /// The next row or delete; `None` once the END record has been read and
    /// every check passed (counts, trailing bytes, final segment, SHA-256).
    pub(crate) fn next_item(&mut self) -> Result<Option<Item>> {
        if self.done {
            return Ok(None);
        }
        let rec = self
            .records
            .next_record()
            .map_err(|e| payload_err(&self.path, e))?;
        match rec {
            Record::Row(v) => {
                self.rows += 1;
                if self.rows > self.manifest.row_count {
                    return Err(bad(
                        &self.path,
                        Kind::Corrupted,
                        "payload holds more rows than the manifest says",
                    ));
                }
                Ok(Some(Item::Row(v)))
            }
            Record::Delete(k) => {
                self.deletes += 1;
                if self.deletes > self.manifest.deleted_count {
                    return Err(bad(
                        &self.path,
                        Kind::Corrupted,
                        "payload holds more deletes than the manifest says",
                    ));
                }
                Ok(Some(Item::Delete(k)))
            }
            Record::End { rows, deletes } => {
                self.finish(rows, deletes)?;
                Ok(None)
            }
        }
    }

    fn finish(&mut self, rows: u64, deletes: u64) -> Result<()> {
        let path = self.path.clone();
        if rows != self.rows || deletes != self.deletes {
            return Err(bad(
                &path,
                Kind::Corrupted,
                "corrupted payload: END record counts do not match the records",
            ));
        }
        if rows != self.manifest.row_count || deletes != self.manifest.deleted_count {
            return Err(bad(
                &path,
                Kind::Corrupted,
                format!(
                    "row count mismatch: payload has {rows} rows/{deletes} deletes, manifest says {}/{}",
                    self.manifest.row_count, self.manifest.deleted_count
                ),
            ));
        }
        // Nothing may follow END in the plaintext ...
        let mut extra = [0u8; 1];
        let plain = self.records.get_mut();
        if plain.read(&mut extra).map_err(|e| payload_err(&path, e))? != 0 {
            return Err(bad(
                &path,
                Kind::Corrupted,
                "corrupted payload: data after the END record",
            ));
        }
        // ... nor after the gzip member; draining also opens (and so
        // authenticates) the final encrypted segment.
        let compressed_rest = plain.get_mut().get_mut().inner_mut();
        if !compressed_rest
            .fill_buf()
            .map_err(|e| payload_err(&path, e))?
            .is_empty()
        {
            return Err(bad(
                &path,
                Kind::Corrupted,
                "corrupted payload: data after the compressed stream",
            ));
        }
        let (sha, n) = plain.get_ref().digest();
        if format::hex_encode(&sha) != self.manifest.payload_sha256
            || n != self.manifest.payload_plain_bytes
        {
            return Err(bad(
                &path,
                Kind::Corrupted,
                "corrupted payload: SHA-256 of the payload does not match the manifest",
            ));
        }
        self.done = true;
        Ok(())
    }

    /// Reads to the end, checking everything.
    pub(crate) fn drain(&mut self) -> Result<()> {
        while self.next_item()?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::backup::codec::{EncryptWriter, MaybeGzip};
    use crate::backup::encoding;

    /// A gzip-compressed, STREAM-encrypted record stream of `rows` rows of
    /// one 1 KiB blob (several segments), sealed with `aad`.
    fn sealed(key: &[u8; 32], prefix: [u8; NONCE_PREFIX_LEN], aad: &[u8; 32]) -> Vec<u8> {
        let enc = EncryptWriter::new(Vec::new(), codec::cipher(key), prefix);
        let mut gz = MaybeGzip::new(enc, Some(0));
        let mut buf = Vec::new();
        for i in 0..200u32 {
            encoding::begin_row(&mut buf);
            encoding::put_value(&mut buf, &Value::Blob(vec![i as u8; 1024]));
        }
        encoding::put_end(&mut buf, 200, 0);
        gz.write_all(&buf).unwrap();
        gz.finish().unwrap().finish(aad).unwrap()
    }

    /// Reads the records the way [`payload`] does and returns the first
    /// error, mapped by [`payload_err`].
    fn first_error(ct: &[u8], declared: u64, key: &[u8; 32], aad: [u8; 32]) -> Error {
        let dec = MaybeDecrypt::Decrypt(Box::new(DecryptReader::new(
            ct,
            codec::cipher(key),
            [1; NONCE_PREFIX_LEN],
            declared,
            aad,
        )));
        let gun = MaybeGunzip::new(BufReader::new(dec), true);
        let mut records = RecordReader::new(BufReader::new(HashingReader::new(gun)), 1);
        loop {
            match records.next_record() {
                Ok(Record::End { .. }) => panic!("read to the end"),
                Ok(_) => {}
                Err(e) => return payload_err(Path::new("x.dmbak"), e),
            }
        }
    }

    #[test]
    fn codec_faults_keep_their_kind_through_gunzip_and_the_record_reader() {
        let key = [7u8; 32];
        let aad = [9u8; 32];
        let ct = sealed(&key, [1; NONCE_PREFIX_LEN], &aad);
        assert!(ct.len() > 2 * SEGMENT_SIZE, "several segments");

        // The final segment sealed with other associated data.
        let err = first_error(&ct, ct.len() as u64, &key, [8u8; 32]);
        assert_eq!(err.backup_kind(), Some(Kind::Corrupted), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(": wrong key or corrupted data: segment ") && !msg.contains("payload:"),
            "{msg}"
        );

        // Fewer bytes than declared: the codec's own truncation fault.
        let cut = &ct[..SEGMENT_SIZE + 100];
        let err = first_error(cut, ct.len() as u64, &key, aad);
        assert_eq!(err.backup_kind(), Some(Kind::Truncated), "{err}");
        assert!(
            err.to_string()
                .ends_with(": truncated: payload ends inside a segment"),
            "{err}"
        );
    }
}
