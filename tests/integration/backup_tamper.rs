//! Tampering: wrong key, one flipped byte in header, manifest and payload,
//! truncation at many offsets, a dropped final segment. Each is a clear
//! `Error::Backup` of the expected kind, `verify` and `restore` agree, and
//! the table is unchanged.

use std::path::PathBuf;

use crate::backup_support::*;
use doctype_migrate::BackupErrorKind::{self, Corrupted, NotABackup, Truncated, Unsupported};
use doctype_migrate::{BackupManager, BackupStrategy, Error, RestoreTarget};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

const HEADER: usize = 64;
const SEG: usize = 64 * 1024 + 16;

struct Case {
    _tmp: tempfile::TempDir,
    conn: Connection,
    mgr: BackupManager,
    file: PathBuf,
    bytes: Vec<u8>,
    /// The table as it is while the tests run (differs from the backup, so a
    /// restore that went through would show).
    current: Vec<Vec<V>>,
}

fn case(encrypted: bool, compressed: bool) -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let conn = open(&tmp.path().join("app.db"));
    // ~400 KB of incompressible data: several 64 KiB segments.
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB, s TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO t SELECT i, randomblob(120), 'row ' || i FROM n;",
    )
    .unwrap();
    let mut b = builder(&tmp.path().join("b"));
    if encrypted {
        b = b.key([0x42; 32]);
    }
    if !compressed {
        b = b.no_compression();
    }
    let mgr = b.build().unwrap();
    let info = mgr
        .backup_table(&conn, "t", BackupStrategy::FullTable, None)
        .unwrap();
    conn.execute_batch(
        "UPDATE t SET s = 'changed' WHERE id % 2 = 0; DELETE FROM t WHERE id > 2900",
    )
    .unwrap();
    let current = snapshot(&conn, "t", true);
    let bytes = std::fs::read(&info.path).unwrap();
    assert!(
        bytes.len() > HEADER + 4 * SEG,
        "want several segments, got {}",
        bytes.len()
    );
    Case {
        _tmp: tmp,
        conn,
        mgr,
        file: info.path,
        bytes,
        current,
    }
}

/// Writes `bytes` over the backup, then checks verify and restore both fail
/// with a backup error containing one of `expect`, of one of the `kinds`,
/// and the table is intact.
fn assert_rejected(c: &Case, bytes: &[u8], expect: &[&str], kinds: &[BackupErrorKind], what: &str) {
    std::fs::write(&c.file, bytes).unwrap();
    for (op, res) in [
        ("verify", c.mgr.verify(&c.file).map(|_| 0)),
        (
            "restore",
            c.mgr.restore(&c.conn, &c.file, RestoreTarget::Original),
        ),
        (
            "restore new",
            c.mgr
                .restore(&c.conn, &c.file, RestoreTarget::NewTable("t_new".into())),
        ),
    ] {
        let err = match res {
            Ok(_) => panic!("{what}: {op} accepted a tampered file"),
            Err(e) => e,
        };
        assert!(
            matches!(err, Error::Backup { .. }),
            "{what}: {op}: not a backup error: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            expect.iter().any(|e| msg.contains(e)),
            "{what}: {op}: unclear error {msg:?}"
        );
        let kind = err.backup_kind().unwrap();
        assert!(
            kinds.contains(&kind),
            "{what}: {op}: kind {kind:?}, expected one of {kinds:?}: {msg:?}"
        );
        assert_eq!(
            snapshot(&c.conn, "t", true),
            c.current,
            "{what}: {op} changed the table"
        );
        let exists: i64 = c
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 't_new'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(exists, 0, "{what}: {op} left a new table behind");
    }
    assert!(c.conn.is_autocommit(), "{what}: savepoint left open");
}

fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 0x01;
    b
}

fn manifest_len(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize
}

fn payload_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize
}

/// Length of the MAC trailer after the manifest (flag bit 2: backups
/// written with a key).
fn mac_len(bytes: &[u8]) -> usize {
    if u16::from_le_bytes([bytes[10], bytes[11]]) & 4 != 0 {
        32
    } else {
        0
    }
}

/// The manifest bytes (between the payload and the MAC trailer, if any).
fn manifest_of(bytes: &[u8]) -> &[u8] {
    let end = HEADER + payload_len(bytes);
    &bytes[end..end + manifest_len(bytes)]
}

#[test]
fn untouched_files_pass() {
    for (enc, gz) in [(true, true), (true, false), (false, true), (false, false)] {
        let c = case(enc, gz);
        c.mgr.verify(&c.file).unwrap();
    }
}

#[test]
fn wrong_key_is_reported_and_nothing_restored() {
    let c = case(true, true);
    let wrong = builder(c.file.parent().unwrap())
        .key([0x43; 32])
        .build()
        .unwrap();
    let err = wrong.verify(&c.file).unwrap_err();
    assert!(err.to_string().contains("wrong key"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::WrongKey), "{err}");
    let err = wrong
        .restore(&c.conn, &c.file, RestoreTarget::Original)
        .unwrap_err();
    assert!(err.to_string().contains("wrong key"), "{err}");
    assert_eq!(err.backup_kind(), Some(BackupErrorKind::WrongKey), "{err}");
    assert_eq!(snapshot(&c.conn, "t", true), c.current);
}

#[test]
fn flipped_header_bytes_are_detected() {
    for (enc, gz) in [(true, true), (false, true), (false, false)] {
        let c = case(enc, gz);
        for at in [0, 7, 8, 10, 11, 12, 16, 20, 24, 31, 32, 50, 63] {
            let kinds: &[BackupErrorKind] = match at {
                // Magic.
                0..8 => &[NotABackup],
                // Version.
                8 => &[Unsupported],
                // Lengths: the file no longer matches its header.
                12 | 16 | 20 => &[Truncated, Corrupted],
                // Flags, reserved bytes, the checksum: checksum mismatch.
                _ => &[Corrupted],
            };
            assert_rejected(
                &c,
                &flipped(&c.bytes, at),
                &[
                    "corrupted",
                    "truncated",
                    "not a doctype-migrate backup",
                    "version",
                    "header",
                ],
                kinds,
                &format!("enc={enc} gz={gz} header byte {at}"),
            );
        }
    }
}

#[test]
fn flipped_manifest_bytes_are_detected() {
    for (enc, gz) in [(true, true), (false, true), (false, false)] {
        let c = case(enc, gz);
        let end = c.bytes.len() - mac_len(&c.bytes);
        let start = end - manifest_len(&c.bytes);
        for at in [
            start,
            start + 1,
            start + 40,
            (start + end) / 2,
            end - 2,
            end - 1,
        ] {
            assert_rejected(
                &c,
                &flipped(&c.bytes, at),
                &["header or manifest corrupted"],
                &[Corrupted],
                &format!("enc={enc} gz={gz} manifest byte {at}"),
            );
        }
        // The MAC trailer of a backup written with a key: the right key
        // (it passes the key check), so the file was altered.
        for at in end..c.bytes.len() {
            assert_rejected(
                &c,
                &flipped(&c.bytes, at),
                &["failed authentication"],
                &[Corrupted],
                &format!("enc={enc} gz={gz} MAC byte {at}"),
            );
        }
    }
}

#[test]
fn flipped_payload_bytes_are_detected() {
    for (enc, gz) in [(true, true), (true, false), (false, true), (false, false)] {
        let c = case(enc, gz);
        let end = HEADER + payload_len(&c.bytes);
        let expect: &[&str] = if enc {
            &["wrong key or corrupted data"]
        } else {
            &["corrupted payload"]
        };
        for at in [
            HEADER,
            HEADER + 1,
            HEADER + SEG - 1,
            HEADER + SEG,
            (HEADER + end) / 2,
            end - 17,
            end - 1,
        ] {
            assert_rejected(
                &c,
                &flipped(&c.bytes, at),
                expect,
                &[Corrupted],
                &format!("enc={enc} gz={gz} payload byte {at}"),
            );
        }
    }
}

#[test]
fn truncation_anywhere_is_detected() {
    for (enc, gz) in [(true, true), (false, true), (false, false)] {
        let c = case(enc, gz);
        let end = HEADER + payload_len(&c.bytes);
        let n_full = (end - HEADER) / SEG;
        let last_boundary = HEADER + n_full * SEG;
        let cuts = [
            0,
            1,
            10,
            HEADER - 1,
            HEADER,
            HEADER + 1,
            HEADER + SEG,     // exactly at a segment boundary
            HEADER + 2 * SEG, // another boundary
            last_boundary,    // the final segment missing entirely
            last_boundary + 5,
            end - 1, // inside the last segment's tag
            end,     // manifest missing
            end + 10,
            c.bytes.len() - 1,
        ];
        for cut in cuts {
            assert_rejected(
                &c,
                &c.bytes[..cut],
                &["truncated"],
                &[Truncated],
                &format!("enc={enc} gz={gz} cut at {cut}"),
            );
        }
        // Appended garbage is reported too.
        let mut longer = c.bytes.clone();
        longer.extend_from_slice(b"junk");
        assert_rejected(
            &c,
            &longer,
            &["extra bytes"],
            &[Corrupted],
            &format!("enc={enc} gz={gz} appended"),
        );
    }
}

/// Rebuilds a file with a consistent header around `payload` and `manifest`,
/// as an attacker who knows the format (but not the key) could. A MAC
/// trailer cannot be recomputed without the key: the original one is kept.
fn reframe(orig: &[u8], payload: &[u8], manifest: &[u8]) -> Vec<u8> {
    let mut prefix = [0u8; 32];
    prefix.copy_from_slice(&orig[..32]);
    prefix[12..16].copy_from_slice(&(manifest.len() as u32).to_le_bytes());
    prefix[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut h = Sha256::new();
    h.update(prefix);
    h.update(manifest);
    let mut out = prefix.to_vec();
    out.extend_from_slice(&h.finalize());
    out.extend_from_slice(payload);
    out.extend_from_slice(manifest);
    out.extend_from_slice(&orig[orig.len() - mac_len(orig)..]);
    out
}

#[test]
fn dropped_final_segment_with_a_consistent_header_is_detected() {
    let c = case(true, true);
    let end = HEADER + payload_len(&c.bytes);
    let manifest = manifest_of(&c.bytes);
    let n_full = (end - HEADER) / SEG;
    for keep in [1, n_full] {
        let payload = &c.bytes[HEADER..HEADER + keep * SEG];
        assert_rejected(
            &c,
            &reframe(&c.bytes, payload, manifest),
            &["wrong key or corrupted data"],
            &[Corrupted],
            &format!("first {keep} segments only"),
        );
    }
}

#[test]
fn rewritten_manifest_with_a_valid_checksum_is_detected() {
    // Unencrypted: the header checksum is recomputed, but the manifest's
    // payload hash and row count still have to match the payload.
    // Encrypted: the MAC over header and manifest (checked first), and the
    // final segment authenticates sha256(manifest).
    for enc in [false, true] {
        let c = case(enc, true);
        let end = HEADER + payload_len(&c.bytes);
        let manifest = String::from_utf8(manifest_of(&c.bytes).to_vec()).unwrap();
        let edited = manifest.replace("\"row_count\":3000", "\"row_count\":2999");
        assert_ne!(edited, manifest);
        let expect: &[&str] = if enc {
            &["wrong key or corrupted data"]
        } else {
            &["more rows than the manifest", "row count mismatch"]
        };
        assert_rejected(
            &c,
            &reframe(&c.bytes, &c.bytes[HEADER..end], edited.as_bytes()),
            expect,
            &[Corrupted],
            &format!("enc={enc} edited manifest"),
        );
        // Swapping in another file's manifest (a different nonce prefix) fails too.
        if enc {
            let other = c
                .mgr
                .backup_table(&c.conn, "t", BackupStrategy::FullTable, None)
                .unwrap();
            let ob = std::fs::read(&other.path).unwrap();
            assert_rejected(
                &c,
                &reframe(&c.bytes, &c.bytes[HEADER..end], manifest_of(&ob)),
                &["wrong key or corrupted data", "key check"],
                &[Corrupted],
                "foreign manifest",
            );
        }
    }
}

/// Regression (found by `backup_fuzz`): an unencrypted column
/// backup whose manifest (checksum recomputed) names no column to restore,
/// or one it does not store, made `restore` run `UPDATE .. SET  FROM ..`
/// and fail with an untyped SQL syntax error. The manifest check refuses
/// it, so `verify` does too.
#[test]
fn a_column_backup_naming_no_stored_column_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = open(&tmp.path().join("app.db"));
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a); INSERT INTO t VALUES (1, 'x');",
    )
    .unwrap();
    let mgr = builder(&tmp.path().join("b")).build().unwrap();
    let info = mgr
        .backup_table(&conn, "t", BackupStrategy::Columns(vec!["a".into()]), None)
        .unwrap();
    let bytes = std::fs::read(&info.path).unwrap();
    let end = HEADER + payload_len(&bytes);
    let manifest = String::from_utf8(manifest_of(&bytes).to_vec()).unwrap();
    let named = r#""strategy":{"kind":"columns","columns":["a"]}"#;
    assert!(manifest.contains(named), "{manifest}");
    conn.execute("UPDATE t SET a = 'changed'", []).unwrap();
    for forged in [r#"[]"#, r#"["nope"]"#] {
        let edited = manifest.replace(
            named,
            &format!(r#""strategy":{{"kind":"columns","columns":{forged}}}"#),
        );
        std::fs::write(
            &info.path,
            reframe(&bytes, &bytes[HEADER..end], edited.as_bytes()),
        )
        .unwrap();
        let err = mgr.verify(&info.path).unwrap_err();
        assert_eq!(err.backup_kind(), Some(Corrupted), "{forged}: {err:?}");
        assert!(err.to_string().contains("manifest is not valid"), "{err}");
        let err = mgr
            .restore(&conn, &info.path, RestoreTarget::Original)
            .unwrap_err();
        assert_eq!(err.backup_kind(), Some(Corrupted), "{forged}: {err:?}");
        let a: String = conn.query_row("SELECT a FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(a, "changed");
    }
}

#[test]
fn not_a_backup_is_a_clear_error() {
    let c = case(false, true);
    assert_rejected(
        &c,
        b"SQLite format 3\0 and then some more bytes to pass the header length, plenty more",
        &["not a doctype-migrate backup"],
        &[NotABackup],
        "other file",
    );
}
