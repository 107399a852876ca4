//! Hostile backup files: damaged, truncated, spliced, swapped,
//! forged and random `.dmbak` files fed to every reader of the public API.
//!
//! Once per key flavour (no key, a key file, a passphrase) a fixture takes
//! genuine backups into one directory: a full and a column backup of `t`,
//! a full backup of `u`, an incremental chain of two links on the full
//! backup of `t` and one on the column backup
//! (`BackupManager::backup_table_incremental`), and a backup of `t` taken
//! from another database. Each case lays the files out in a fresh
//! directory, replaces one of them (the victim) by a hostile version, and
//! calls, on the victim or on the head of the chain it belongs to (so a
//! damaged base is a damaged link): `BackupManager::verify`, `verify_for`,
//! `restore` into the original table, into a new table and into the
//! original table dropped beforehand (a full restore then runs the backup's
//! schema SQL), `MigrationApplier::restore_backup` into the original and a
//! new table, and `backup_table_incremental` on top of it. Usually with the
//! flavour's own key; sometimes with another reader's. A fourth property
//! reads only forged unencrypted files without a key, so that most cases
//! get past authentication into restore's own checks.
//!
//! The hostile files: bits flipped anywhere (header, payload, manifest,
//! MAC), with or without the header checksum recomputed as someone who
//! knows the format would; truncation; garbage appended; splices of two
//! genuine backups (the header of one with the rest of another, a payload
//! under another's header and manifest, another's manifest and MAC); a
//! genuine backup of another table or another database renamed into place;
//! random bytes, with or without a valid magic and version; an empty file;
//! manifests edited field by field (tables, columns, keys, strategies,
//! schema SQL, counts, KDF parameters, base links, database ids) or
//! replaced by junk; and fully forged files: an edited manifest over a
//! payload the test encodes itself (the record format of
//! `docs/reference/backup-format.md`) with random rows and deletes, correct
//! hashes and counts, so that restore's own logic meets hostile input.
//!
//! Properties, for every call:
//!
//! * it does not panic;
//! * an error is an `Error::Backup`, of a kind other than `Other` (which
//!   means the random source or argon2 failed, never the file). `Error::Io`
//!   is the documented answer only where a file cannot be opened or read
//!   (missing, no permission, an I/O error); the files here are always
//!   readable, so none is accepted;
//! * after an error nothing was restored: the database file is
//!   byte-identical, no journal is left, no transaction is open, no TEMP
//!   scratch table is left, and no file was added to the backup directory;
//! * a success is one a genuine backup gives: `verify` reports a genuine
//!   file's header checksum, and a restore leaves the database exactly as
//!   the restore of one of the genuine backups does. The exception is a
//!   forged file read without a key: nothing authenticates an unencrypted
//!   backup (see `docs/reference/backup-format.md`), so a forged file may
//!   restore; then the database must still pass `PRAGMA integrity_check`;
//! * readers agree: when `verify` refuses, every other call refuses too,
//!   and a restore succeeds only where `verify_for` does.
//!
//! Cases: 64 per property by default, so `cargo test` stays quick (about
//! 6 s for the four properties on two cores, in a debug build). Run it long
//! with `PROPTEST_CASES`, e.g.
//! `PROPTEST_CASES=5000 cargo test --test integration backup_fuzz:: -- --nocapture`
//! (2000 cases of each take about 3 minutes); `DM_FUZZ_STATS=1` prints how
//! often each outcome (error kind and message) was seen, to check that the
//! cases reach the code they are meant for. A failing case is shrunk and
//! printed; the runner keeps no regression file, so a bug it finds gets a
//! named regression test beside the code it concerns.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use doctype_migrate::{
    BackupErrorKind, BackupKey, BackupManager, BackupStrategy, Error, MigrationApplier,
    RestoreTarget,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use crate::backup_support::builder;

const NEW_TABLE: &str = "t_fuzz_new";
const PASSPHRASE: &str = "correct horse battery staple";
const HEADER: usize = 64;
const MAGIC: &[u8; 8] = b"DMBAK\r\n\x1a";

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

// ------------------------------------------------------------ the fixture

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Plain,
    KeyFile,
    Passphrase,
}

const FLAVOURS: [Flavour; 3] = [Flavour::Plain, Flavour::KeyFile, Flavour::Passphrase];

/// The genuine backups of a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    FullT,
    ColsT,
    FullU,
    /// Incremental on `FullT`.
    Incr1,
    /// Incremental on `Incr1`.
    Incr2,
    /// Incremental on `ColsT`.
    IncrCols,
    /// A full backup of `t` taken from another database.
    OtherT,
}

const SOURCES: [Src; 7] = [
    Src::FullT,
    Src::ColsT,
    Src::FullU,
    Src::Incr1,
    Src::Incr2,
    Src::IncrCols,
    Src::OtherT,
];

impl Src {
    fn idx(self) -> usize {
        SOURCES.iter().position(|s| *s == self).unwrap()
    }

    /// The head of the incremental chain this file is a link of.
    fn chain_head(self) -> Src {
        match self {
            Src::FullT | Src::Incr1 => Src::Incr2,
            Src::ColsT => Src::IncrCols,
            s => s,
        }
    }
}

struct Genuine {
    name: String,
    bytes: Vec<u8>,
    header_sha256: String,
    payload_sha256: String,
}

/// The database as seen through SQL: every `sqlite_schema` entry and every
/// row of every table, exactly (storage class and bytes).
type State = (
    Vec<(String, String, String, Option<String>)>,
    Vec<(String, Vec<Vec<Cell>>)>,
);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Cell {
    Null,
    Int(i64),
    Real(u64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

struct Fixture {
    flavour: Flavour,
    root: tempfile::TempDir,
    key_file: PathBuf,
    /// The pristine `app.db`.
    db: Vec<u8>,
    files: Vec<Genuine>,
    this_db_id: String,
    other_db_id: String,
    /// Header checksums of every genuine file.
    headers: BTreeSet<String>,
    /// The pristine `app.db` with `t` and `u` dropped: a full restore into
    /// the original table recreates it from the backup's schema SQL.
    db_dropped: Vec<u8>,
    /// The database after each genuine restore that succeeds, by target.
    restored: [Vec<State>; 3],
}

impl Fixture {
    fn file(&self, s: Src) -> &Genuine {
        &self.files[s.idx()]
    }
}

fn manager(f: Flavour, dir: &Path, key_file: &Path) -> BackupManager {
    let b = builder(dir);
    match f {
        Flavour::Plain => b,
        Flavour::KeyFile => b.key_file(key_file),
        Flavour::Passphrase => b.passphrase(PASSPHRASE),
    }
    .build()
    .unwrap()
}

fn applier(f: Flavour, db: &Path, dir: &Path, key_file: &Path) -> MigrationApplier {
    let b = MigrationApplier::builder(db).backup_dir(dir).no_audit_log();
    match f {
        Flavour::Plain => b,
        Flavour::KeyFile => b.backup_key(BackupKey::KeyFile(key_file.to_path_buf())),
        Flavour::Passphrase => b.backup_key(BackupKey::Passphrase(PASSPHRASE.into())),
    }
    .build()
    .unwrap()
}

const SCHEMA: &str = "
    CREATE TABLE t (id INTEGER PRIMARY KEY, a, s TEXT NOT NULL DEFAULT '', b BLOB, r REAL);
    CREATE INDEX t_s ON t(s);
    CREATE TRIGGER t_trg AFTER UPDATE ON t BEGIN SELECT 1; END;
    CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT);
    INSERT INTO u VALUES (1, 'one'), (2, 'two'), (3, 'three');";

/// 30 rows of every storage class; row 7 holds 70 kB of random bytes, so
/// an encrypted payload has two STREAM segments.
const ROWS: &str = "
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30)
    INSERT INTO t SELECT i,
        CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN i WHEN 2 THEN i * 1.5
                   WHEN 3 THEN 'text ' || i ELSE x'00ff' END,
        'row ' || i,
        CASE WHEN i = 7 THEN randomblob(70000) ELSE zeroblob(i % 3) END,
        i / 4.0
    FROM n;";

fn fixture(flavour: Flavour) -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let key_file = root.path().join("backup.key");
    std::fs::write(&key_file, format!("{}\n", "5a".repeat(32))).unwrap();
    let dir = root.path().join("b");
    let db_path = root.path().join("app.db");
    let conn = Connection::open(&db_path).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    conn.execute_batch(ROWS).unwrap();
    let mgr = manager(flavour, &dir, &key_file);
    let full = |c: &Connection, table: &str| {
        mgr.backup_table(c, table, BackupStrategy::FullTable, None)
            .unwrap()
    };
    let full_t = full(&conn, "t");
    let cols_t = mgr
        .backup_table(
            &conn,
            "t",
            BackupStrategy::Columns(vec!["a".into(), "s".into()]),
            None,
        )
        .unwrap();
    let full_u = full(&conn, "u");
    conn.execute_batch(
        "UPDATE t SET s = 's1 ' || id WHERE id % 3 = 0; DELETE FROM t WHERE id IN (4, 5);
         INSERT INTO t (id, a, s) VALUES (100, 'new', 'n');",
    )
    .unwrap();
    let incr = |base: &Path| {
        mgr.backup_table_incremental(&conn, "t", base, None)
            .unwrap()
    };
    let incr1 = incr(&full_t.path);
    let incr_cols = incr(&cols_t.path);
    conn.execute_batch(
        "UPDATE t SET a = -id WHERE id % 4 = 0; DELETE FROM t WHERE id = 100;
         INSERT INTO t (id, a, s) VALUES (101, 1.25, 'm');",
    )
    .unwrap();
    let incr2 = incr(&incr1.path);
    let other = Connection::open(root.path().join("other.db")).unwrap();
    other
        .execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a, s TEXT NOT NULL DEFAULT '', b BLOB, r REAL);
             INSERT INTO t (id, a, s) VALUES (1, 'other', 'o'), (2, 'db', 'd');",
        )
        .unwrap();
    let other_t = full(&other, "t");
    // The table as it is when the cases run: every restore changes it.
    conn.execute_batch(
        "UPDATE t SET a = 'current', s = 'current'; DELETE FROM t WHERE id > 25;
         UPDATE u SET name = 'changed';",
    )
    .unwrap();
    drop(conn);
    drop(other);
    let infos = [full_t, cols_t, full_u, incr1, incr2, incr_cols, other_t];
    let files: Vec<Genuine> = infos
        .iter()
        .map(|i| Genuine {
            name: i.path.file_name().unwrap().to_string_lossy().into_owned(),
            bytes: std::fs::read(&i.path).unwrap(),
            header_sha256: i.header_sha256.clone(),
            payload_sha256: i.sha256.clone(),
        })
        .collect();
    let mut fx = Fixture {
        flavour,
        key_file,
        db: std::fs::read(&db_path).unwrap(),
        headers: files.iter().map(|g| g.header_sha256.clone()).collect(),
        files,
        this_db_id: infos[0].database_id.clone().unwrap(),
        other_db_id: infos[6].database_id.clone().unwrap(),
        db_dropped: Vec::new(),
        restored: Default::default(),
        root,
    };
    let lay = lay_out(&fx, None);
    Connection::open(&lay.db)
        .unwrap()
        .execute_batch("DROP TABLE t; DROP TABLE u;")
        .unwrap();
    fx.db_dropped = std::fs::read(&lay.db).unwrap();
    // What each genuine restore gives.
    for src in SOURCES {
        for tgt in TARGETS {
            let lay = lay_out(&fx, None);
            std::fs::write(&lay.db, fx.db_for(tgt)).unwrap();
            let conn = Connection::open(&lay.db).unwrap();
            let mgr = manager(flavour, &lay.dir, &fx.key_file);
            let entry = lay.dir.join(&fx.file(src).name);
            if mgr.restore(&conn, &entry, tgt.target()).is_ok() {
                let s = state(&conn);
                let set = &mut fx.restored[tgt as usize];
                if !set.contains(&s) {
                    set.push(s);
                }
            }
        }
    }
    // Every backup but the other database's; into a missing table, the
    // full backups only (a column backup needs the table).
    let counts = fx.restored.each_ref().map(Vec::len);
    assert_eq!(counts, [6, 6, 4], "genuine restores by target");
    fx
}

/// Where a restore goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tgt {
    /// The original table.
    Original,
    /// A new table, `NEW_TABLE`.
    New,
    /// The original table, dropped before the restore.
    Missing,
}

const TARGETS: [Tgt; 3] = [Tgt::Original, Tgt::New, Tgt::Missing];

impl Tgt {
    fn target(self) -> RestoreTarget {
        match self {
            Tgt::New => RestoreTarget::NewTable(NEW_TABLE.into()),
            Tgt::Original | Tgt::Missing => RestoreTarget::Original,
        }
    }
}

impl Fixture {
    fn db_for(&self, tgt: Tgt) -> &[u8] {
        match tgt {
            Tgt::Missing => &self.db_dropped,
            Tgt::Original | Tgt::New => &self.db,
        }
    }
}

/// One case's directory: the database and the backup directory.
struct Layout {
    _tmp: tempfile::TempDir,
    db: PathBuf,
    dir: PathBuf,
}

/// The genuine files in a fresh directory, `victim` replaced by `bytes`.
fn lay_out(fx: &Fixture, victim: Option<(Src, &[u8])>) -> Layout {
    let tmp = tempfile::tempdir_in(fx.root.path()).unwrap();
    let dir = tmp.path().join("b");
    std::fs::create_dir(&dir).unwrap();
    for (src, g) in SOURCES.iter().zip(&fx.files) {
        let bytes = match victim {
            Some((v, b)) if v == *src => b,
            _ => &g.bytes[..],
        };
        std::fs::write(dir.join(&g.name), bytes).unwrap();
    }
    let db = tmp.path().join("app.db");
    std::fs::write(&db, &fx.db).unwrap();
    Layout { _tmp: tmp, db, dir }
}

fn state(conn: &Connection) -> State {
    let mut schema: Vec<(String, String, String, Option<String>)> = conn
        .prepare("SELECT type, name, tbl_name, sql FROM main.sqlite_schema")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    schema.sort();
    let tables: Vec<String> = schema
        .iter()
        .filter(|s| s.0 == "table" && !s.1.starts_with("sqlite_"))
        .map(|s| s.1.clone())
        .collect();
    let rows = tables
        .into_iter()
        .map(|t| {
            let q = format!("\"{}\"", t.replace('"', "\"\""));
            let mut st = conn
                .prepare(&format!("SELECT rowid, * FROM main.{q}"))
                .or_else(|_| conn.prepare(&format!("SELECT * FROM main.{q}")))
                .unwrap();
            let n = st.column_count();
            let mut rows: Vec<Vec<Cell>> = st
                .query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                ValueRef::Null => Cell::Null,
                                ValueRef::Integer(x) => Cell::Int(x),
                                ValueRef::Real(f) => Cell::Real(f.to_bits()),
                                ValueRef::Text(t) => Cell::Text(t.to_vec()),
                                ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                            })
                        })
                        .collect()
                })
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            rows.sort();
            (t, rows)
        })
        .collect();
    (schema, rows)
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ------------------------------------------------------- file surgery

/// `(payload length, manifest length, MAC length)` of a genuine file.
fn layout_of(bytes: &[u8]) -> (usize, usize, usize) {
    let ml = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let pl = u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize;
    let mac = if u16::from_le_bytes([bytes[10], bytes[11]]) & 4 != 0 {
        32
    } else {
        0
    };
    assert_eq!(bytes.len(), HEADER + pl + ml + mac);
    (pl, ml, mac)
}

fn payload_of(bytes: &[u8]) -> &[u8] {
    let (pl, _, _) = layout_of(bytes);
    &bytes[HEADER..HEADER + pl]
}

fn manifest_of(bytes: &[u8]) -> &[u8] {
    let (pl, ml, _) = layout_of(bytes);
    &bytes[HEADER + pl..HEADER + pl + ml]
}

fn mac_of(bytes: &[u8]) -> &[u8] {
    let (_, _, mac) = layout_of(bytes);
    &bytes[bytes.len() - mac..]
}

fn flags_of(bytes: &[u8]) -> u16 {
    u16::from_le_bytes([bytes[10], bytes[11]])
}

/// A file with a consistent header (lengths and checksum) around the parts,
/// as anyone who knows the format can write; a MAC needs the key, so a
/// given one is copied as is.
fn assemble(flags: u16, payload: &[u8], manifest: &[u8], mac: &[u8]) -> Vec<u8> {
    let mut prefix = [0u8; 32];
    prefix[..8].copy_from_slice(MAGIC);
    prefix[8..10].copy_from_slice(&1u16.to_le_bytes());
    prefix[10..12].copy_from_slice(&flags.to_le_bytes());
    prefix[12..16].copy_from_slice(&(manifest.len() as u32).to_le_bytes());
    prefix[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut out = prefix.to_vec();
    out.extend_from_slice(&checksum(&prefix, manifest));
    out.extend_from_slice(payload);
    out.extend_from_slice(manifest);
    out.extend_from_slice(mac);
    out
}

fn checksum(prefix: &[u8], manifest: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prefix);
    h.update(manifest);
    h.finalize().into()
}

/// Recomputes the header checksum over the manifest where the (possibly
/// damaged) header says it is, when that is inside the file.
fn reseal(bytes: &mut [u8]) {
    if bytes.len() < HEADER {
        return;
    }
    let ml = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let pl = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    let Some(start) = usize::try_from(pl).ok().and_then(|p| p.checked_add(HEADER)) else {
        return;
    };
    let Some(end) = start.checked_add(ml) else {
        return;
    };
    if end > bytes.len() {
        return;
    }
    let sum = checksum(&bytes[..32], &bytes[start..end]);
    bytes[32..64].copy_from_slice(&sum);
}

// ------------------------------------------------------------ mutations

#[derive(Debug, Clone, Copy)]
enum Region {
    Header,
    Payload,
    Manifest,
    Mac,
    Anywhere,
}

/// A JSON path in the manifest and the value to put there (`None`: remove
/// the field). Strings `@name:N`, `@header:N`, `@payload:N` (file `N` of
/// [`SOURCES`]) and `@dbid:this`, `@dbid:other` are resolved per fixture.
#[derive(Debug, Clone)]
struct Edit {
    path: Vec<&'static str>,
    value: Option<Json>,
}

#[derive(Debug, Clone)]
enum FV {
    Null,
    Int(i64),
    Real(u64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Mutation {
    /// XOR masks (never 0) at offsets in a region; `reseal` recomputes the
    /// header checksum afterwards.
    Flip {
        region: Region,
        flips: Vec<(u64, u8)>,
        reseal: bool,
    },
    Truncate {
        at: u64,
    },
    Append {
        garbage: Vec<u8>,
    },
    /// The header of another file over this file's payload and manifest.
    SpliceHeader {
        other: Src,
    },
    /// This file's header and payload, another's manifest and MAC.
    SpliceTail {
        other: Src,
        reseal: bool,
    },
    /// Another file's payload in this file.
    SplicePayload {
        other: Src,
        reseal: bool,
    },
    /// A genuine file of another table, chain or database put in its place.
    Renamed {
        other: Src,
    },
    Random {
        bytes: Vec<u8>,
        magic: bool,
        version: bool,
    },
    Empty,
    /// Manifest fields edited, the payload (and MAC) kept.
    EditManifest {
        edits: Vec<Edit>,
    },
    /// The manifest replaced by junk.
    RawManifest {
        json: Vec<u8>,
    },
    /// A whole file written by the test: the victim's manifest, edited,
    /// over rows of the test's choosing, with correct hash and counts
    /// (when `fit`: every row has as many values as the manifest says).
    Forge {
        edits: Vec<Edit>,
        rows: Vec<Vec<FV>>,
        deletes: Vec<Vec<u8>>,
        fit: bool,
        gzip: bool,
        table_row_count: Option<u64>,
        trailing: Vec<u8>,
    },
}

impl Mutation {
    /// Whether the result has a recomputed header checksum (so only a MAC
    /// can tell it from a genuine file).
    fn forged(&self) -> bool {
        match self {
            Mutation::Flip { reseal, .. }
            | Mutation::SpliceTail { reseal, .. }
            | Mutation::SplicePayload { reseal, .. } => *reseal,
            Mutation::EditManifest { .. }
            | Mutation::RawManifest { .. }
            | Mutation::Forge { .. } => true,
            _ => false,
        }
    }
}

fn pick(seed: u64, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (seed % len as u64) as usize
    }
}

fn resolve(fx: &Fixture, v: &Json) -> Json {
    let placeholder = |s: &str| -> Option<String> {
        let (what, arg) = s.strip_prefix('@')?.split_once(':')?;
        let file = || fx.files.get(arg.parse::<usize>().ok()?);
        Some(match (what, arg) {
            ("name", _) => file()?.name.clone(),
            ("header", _) => file()?.header_sha256.clone(),
            ("payload", _) => file()?.payload_sha256.clone(),
            ("dbid", "this") => fx.this_db_id.clone(),
            ("dbid", "other") => fx.other_db_id.clone(),
            _ => return None,
        })
    };
    match v {
        Json::String(s) => Json::String(placeholder(s).unwrap_or_else(|| s.clone())),
        Json::Array(a) => Json::Array(a.iter().map(|x| resolve(fx, x)).collect()),
        Json::Object(o) => {
            Json::Object(o.iter().map(|(k, x)| (k.clone(), resolve(fx, x))).collect())
        }
        other => other.clone(),
    }
}

fn apply_edits(fx: &Fixture, m: &mut Json, edits: &[Edit]) {
    for e in edits {
        let (last, parents) = e.path.split_last().unwrap();
        let mut cur = &mut *m;
        for p in parents {
            if !cur.is_object() {
                *cur = json!({});
            }
            let obj = cur.as_object_mut().unwrap();
            cur = obj.entry(p.to_string()).or_insert(Json::Null);
        }
        if !cur.is_object() {
            *cur = json!({});
        }
        let obj = cur.as_object_mut().unwrap();
        match &e.value {
            Some(v) => {
                obj.insert(last.to_string(), resolve(fx, v));
            }
            None => {
                obj.remove(*last);
            }
        }
    }
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_value(buf: &mut Vec<u8>, v: &FV) {
    let bytes = |buf: &mut Vec<u8>, tag: u8, b: &[u8]| {
        buf.push(tag);
        put_varint(buf, b.len() as u64);
        buf.extend_from_slice(b);
    };
    match v {
        FV::Null => buf.push(0),
        FV::Int(i) => {
            buf.push(1);
            put_varint(buf, ((i << 1) ^ (i >> 63)) as u64);
        }
        FV::Real(bits) => {
            buf.push(2);
            buf.extend_from_slice(&bits.to_le_bytes());
        }
        FV::Text(t) => bytes(buf, 3, t),
        FV::Blob(b) => bytes(buf, 4, b),
    }
}

/// The hostile bytes for `victim`.
fn hostile(fx: &Fixture, victim: Src, m: &Mutation) -> Vec<u8> {
    let orig = &fx.file(victim).bytes;
    let (pl, ml, mac) = layout_of(orig);
    match m {
        Mutation::Flip {
            region,
            flips,
            reseal: again,
        } => {
            let (start, len) = match region {
                Region::Header => (0, HEADER),
                Region::Payload if pl > 0 => (HEADER, pl),
                Region::Manifest => (HEADER + pl, ml),
                Region::Mac if mac > 0 => (orig.len() - mac, mac),
                _ => (0, orig.len()),
            };
            let mut b = orig.clone();
            for (at, mask) in flips {
                b[start + pick(*at, len)] ^= mask;
            }
            if *again {
                reseal(&mut b);
            }
            b
        }
        Mutation::Truncate { at } => orig[..pick(*at, orig.len())].to_vec(),
        Mutation::Append { garbage } => {
            let mut b = orig.clone();
            b.extend_from_slice(garbage);
            b
        }
        Mutation::SpliceHeader { other } => {
            let mut b = fx.file(*other).bytes[..HEADER].to_vec();
            b.extend_from_slice(&orig[HEADER..]);
            b
        }
        Mutation::SpliceTail { other, reseal } => {
            let o = &fx.file(*other).bytes;
            if *reseal {
                assemble(flags_of(orig), payload_of(orig), manifest_of(o), mac_of(o))
            } else {
                let mut b = orig[..HEADER + pl].to_vec();
                b.extend_from_slice(&o[HEADER + payload_of(o).len()..]);
                b
            }
        }
        Mutation::SplicePayload { other, reseal } => {
            let o = &fx.file(*other).bytes;
            if *reseal {
                assemble(
                    flags_of(orig),
                    payload_of(o),
                    manifest_of(orig),
                    mac_of(orig),
                )
            } else {
                let mut b = orig[..HEADER].to_vec();
                b.extend_from_slice(payload_of(o));
                b.extend_from_slice(&orig[HEADER + pl..]);
                b
            }
        }
        Mutation::Renamed { other } => fx.file(*other).bytes.clone(),
        Mutation::Random {
            bytes,
            magic,
            version,
        } => {
            let mut b = Vec::new();
            if *magic {
                b.extend_from_slice(MAGIC);
                if *version {
                    b.extend_from_slice(&1u16.to_le_bytes());
                }
            }
            b.extend_from_slice(bytes);
            b
        }
        Mutation::Empty => Vec::new(),
        Mutation::EditManifest { edits } => {
            let mut j: Json = serde_json::from_slice(manifest_of(orig)).unwrap();
            apply_edits(fx, &mut j, edits);
            let manifest = serde_json::to_vec(&j).unwrap();
            assemble(flags_of(orig), payload_of(orig), &manifest, mac_of(orig))
        }
        Mutation::RawManifest { json } => {
            assemble(flags_of(orig), payload_of(orig), json, mac_of(orig))
        }
        Mutation::Forge {
            edits,
            rows,
            deletes,
            fit,
            gzip,
            table_row_count,
            trailing,
        } => {
            let mut j: Json = serde_json::from_slice(manifest_of(orig)).unwrap();
            j["encryption"] = Json::Null;
            j["compression"] = if *gzip {
                json!({"algorithm": "gzip", "level": 1})
            } else {
                Json::Null
            };
            if let Some(n) = table_row_count {
                j["table_row_count"] = json!(n);
            }
            apply_edits(fx, &mut j, edits);
            let ncols = j["columns"].as_array().map_or(0, Vec::len)
                + usize::from(j["has_rowid"].as_bool().unwrap_or(false));
            let mut plain = Vec::new();
            for row in rows {
                plain.push(1);
                let mut row = row.clone();
                if *fit {
                    row.resize(ncols, FV::Null);
                }
                for v in &row {
                    put_value(&mut plain, v);
                }
            }
            for k in deletes {
                plain.push(2);
                put_varint(&mut plain, k.len() as u64);
                plain.extend_from_slice(k);
            }
            plain.push(0);
            put_varint(&mut plain, rows.len() as u64);
            put_varint(&mut plain, deletes.len() as u64);
            plain.extend_from_slice(trailing);
            if *fit {
                j["row_count"] = json!(rows.len());
                j["deleted_count"] = json!(deletes.len());
            }
            j["payload_sha256"] = json!(hex(&Sha256::digest(&plain)));
            j["payload_plain_bytes"] = json!(plain.len());
            let payload = if *gzip {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&plain).unwrap();
                gz.finish().unwrap()
            } else {
                plain
            };
            let manifest = serde_json::to_vec(&j).unwrap();
            assemble(u16::from(*gzip), &payload, &manifest, &[])
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ----------------------------------------------------------- strategies

fn src() -> impl Strategy<Value = Src> {
    prop::sample::select(SOURCES.to_vec())
}

fn region() -> impl Strategy<Value = Region> {
    prop_oneof![
        Just(Region::Header),
        Just(Region::Payload),
        Just(Region::Manifest),
        Just(Region::Mac),
        Just(Region::Anywhere),
    ]
}

fn fv() -> impl Strategy<Value = FV> {
    prop_oneof![
        Just(FV::Null),
        (-3i64..40).prop_map(FV::Int),
        any::<i64>().prop_map(FV::Int),
        any::<u64>().prop_map(FV::Real),
        Just(FV::Real(f64::NAN.to_bits())),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(FV::Text),
        "[a-z0-9 ]{0,8}".prop_map(|s| FV::Text(s.into_bytes())),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(FV::Blob),
    ]
}

fn any_json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>().prop_map(Json::from),
        "[a-z_@:0-9 ]{0,12}".prop_map(Json::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "format",
    "table",
    "strategy",
    "has_rowid",
    "key_columns",
    "columns",
    "schema_sql",
    "row_count",
    "deleted_count",
    "table_row_count",
    "created_at",
    "migration_id",
    "compression",
    "encryption",
    "payload_sha256",
    "payload_plain_bytes",
    "base",
    "database_id",
];

const T_CREATE: &str =
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a, s TEXT NOT NULL DEFAULT '', b BLOB, r REAL)";

/// Edits that mean something to the reader (plus any value anywhere).
fn curated_edits() -> Vec<Edit> {
    let set = |path: &[&'static str], v: Json| Edit {
        path: path.to_vec(),
        value: Some(v),
    };
    let col = |name: &str, decl: &str, pk: u32| json!({"name": name, "decl_type": decl, "pk": pk});
    let t_cols = || {
        vec![
            col("id", "INTEGER", 1),
            col("a", "", 0),
            col("s", "TEXT", 0),
            col("b", "BLOB", 0),
            col("r", "REAL", 0),
        ]
    };
    let schema = |extra: &[&str]| {
        let mut v = vec![Json::from(T_CREATE)];
        v.extend(extra.iter().map(|s| Json::from(*s)));
        Json::Array(v)
    };
    let link = |file: &str, h: &str, p: &str| json!({"file": file, "header_sha256": h, "payload_sha256": p});
    let kdf = |m: u64, t: u64, p: u64, salt: &str| json!({"algorithm": "argon2id", "version": 19, "m_cost_kib": m, "t_cost": t, "p_cost": p, "salt": salt});
    let mut e = vec![
        set(&["format"], json!("doctype-migrate backup v0")),
        set(&["table"], json!("u")),
        set(&["table"], json!(NEW_TABLE)),
        set(&["table"], json!("T")),
        set(&["table"], json!("sqlite_schema")),
        set(&["table"], json!("tabMigrationMeta")),
        set(&["table"], json!("")),
        set(&["table"], json!("t\"; DROP TABLE u; --")),
        set(&["strategy"], json!({"kind": "full_table"})),
        set(&["strategy"], json!({"kind": "columns", "columns": ["a"]})),
        set(
            &["strategy"],
            json!({"kind": "columns", "columns": ["nope"]}),
        ),
        set(&["strategy"], json!({"kind": "columns", "columns": []})),
        set(&["strategy"], json!({"kind": "columns", "columns": ["id"]})),
        set(
            &["strategy"],
            json!({"kind": "columns", "columns": ["a", "a"]}),
        ),
        set(&["strategy"], json!({"kind": "everything"})),
        set(&["has_rowid"], json!(true)),
        set(&["has_rowid"], json!(false)),
        set(&["key_columns"], json!([])),
        set(&["key_columns"], json!(["id"])),
        set(&["key_columns"], json!(["a"])),
        set(&["key_columns"], json!(["s", "a"])),
        set(&["key_columns"], json!(["nope"])),
        set(&["key_columns"], json!(["id", "id"])),
        set(&["columns"], json!([])),
        set(&["columns"], Json::Array(t_cols())),
        set(&["columns"], json!([col("id", "INTEGER", 1)])),
        set(&["columns"], json!([col("a", "", 0), col("a", "", 0)])),
        set(
            &["columns"],
            json!([
                col("id", "INTEGER", 1),
                col("a", "int); DROP TABLE u; --", 0)
            ]),
        ),
        set(
            &["columns"],
            json!([col("id", "INTEGER", 1), col("x y\"z", "TEXT", 0)]),
        ),
        set(
            &["columns"],
            json!([col("id", "INTEGER", 1), col("nope", "decimal(21,9)", 0)]),
        ),
        set(
            &["columns"],
            json!([
                col("rowid", "", 0),
                col("oid", "", 0),
                col("_rowid_", "", 0)
            ]),
        ),
        set(
            &["columns"],
            json!([
                col("id", "INTEGER", 1),
                col("a", "INTEGER", 0),
                col("s", "TEXT", 0)
            ]),
        ),
        set(&["schema_sql"], json!([])),
        set(&["schema_sql"], json!(["CREATE TABLE t (x)"])),
        set(&["schema_sql"], json!(["CREATE TABLE t (((("])),
        set(
            &["schema_sql"],
            json!(["CREATE TABLE t AS SELECT * FROM u"]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT)"]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE TABLE t (id INTEGER PRIMARY KEY, a NOT NULL, s, b, r)"]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE TABLE t (id INTEGER PRIMARY KEY, a, s UNIQUE, b, r)"]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE TABLE t (id INTEGER PRIMARY KEY, a, s, b, r, CHECK (0))"]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE TABLE t (id INTEGER PRIMARY KEY, a, s, b, r) WITHOUT ROWID"]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE TABLE t (id TEXT PRIMARY KEY, a, s, b, r) WITHOUT ROWID"]),
        ),
        set(
            &["schema_sql"],
            json!([
                "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, s INTEGER, b INTEGER, r INTEGER)"
            ]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE TABLE t (id INTEGER PRIMARY KEY, a AS (1), s, b, r)"]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE TABLE t (id INTEGER PRIMARY KEY, a REFERENCES u(id), s, b, r)"]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE TABLE t (id, a, s, b, r, PRIMARY KEY (a, s))"]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE TABLE t (id INTEGER PRIMARY KEY, a, s, b, r); DROP TABLE u"]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE TEMP TABLE t (id INTEGER PRIMARY KEY, a, s, b, r)"]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE TABLE main.t (id INTEGER PRIMARY KEY, a, s, b, r)"]),
        ),
        set(
            &["schema_sql"],
            json!(["CREATE VIRTUAL TABLE t USING fts5(a)"]),
        ),
        set(
            &["schema_sql"],
            schema(&["CREATE INDEX t_s ON t(s)", "CREATE INDEX t_s ON t(s)"]),
        ),
        set(&["schema_sql"], schema(&["CREATE INDEX t_x ON u(name)"])),
        set(&["schema_sql"], schema(&["CREATE INDEX t_x ON t(nope)"])),
        set(
            &["schema_sql"],
            schema(&["CREATE UNIQUE INDEX t_u ON t(s)"]),
        ),
        set(
            &["schema_sql"],
            schema(&["CREATE UNIQUE INDEX t_u ON t(id)"]),
        ),
        set(
            &["schema_sql"],
            schema(&["CREATE TRIGGER g AFTER INSERT ON u BEGIN DELETE FROM u; END"]),
        ),
        set(
            &["schema_sql"],
            schema(&[
                "CREATE TRIGGER g AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1000, 'x'); END",
            ]),
        ),
        set(
            &["schema_sql"],
            schema(&["CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT load_extension('x'); END"]),
        ),
        set(&["schema_sql"], schema(&["CREATE VIEW v AS SELECT 1"])),
        set(&["schema_sql"], schema(&["CREATE INDEX i ON t(a); VACUUM"])),
        set(
            &["schema_sql"],
            schema(&["CREATE TEMP TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; END"]),
        ),
        set(&["row_count"], json!(0)),
        set(&["row_count"], json!(1)),
        set(&["row_count"], json!(u64::MAX)),
        set(&["row_count"], json!(-1)),
        set(&["deleted_count"], json!(1)),
        set(&["deleted_count"], json!(u64::MAX)),
        set(&["table_row_count"], json!(0)),
        set(&["table_row_count"], json!(u64::MAX)),
        set(&["created_at"], json!("yesterday")),
        set(&["created_at"], json!("9999-12-31T23:59:59Z")),
        set(&["created_at"], json!("+262143-12-31T23:59:59Z")),
        set(&["migration_id"], json!(1)),
        set(&["migration_id"], json!(-1)),
        set(&["migration_id"], json!(u64::MAX)),
        set(&["migration_id"], json!("x")),
        set(&["compression"], Json::Null),
        set(&["compression"], json!({"algorithm": "gzip", "level": 1})),
        set(&["compression"], json!({"algorithm": "zstd", "level": 99})),
        set(&["encryption"], Json::Null),
        set(&["encryption", "algorithm"], json!("ChaCha20")),
        set(&["encryption", "segment_size"], json!(0)),
        set(&["encryption", "segment_size"], json!(1)),
        set(&["encryption", "segment_size"], json!(u32::MAX)),
        set(&["encryption", "nonce_prefix"], json!("")),
        set(&["encryption", "nonce_prefix"], json!("zz")),
        set(&["encryption", "nonce_prefix"], json!("0000000000000000")),
        set(&["encryption", "key_check"], json!("")),
        set(&["encryption", "key_check"], json!("zz")),
        set(&["encryption", "key_source"], json!("passphrase")),
        set(&["encryption", "key_source"], json!("key")),
        set(&["encryption", "kdf"], Json::Null),
        set(&["encryption", "kdf"], kdf(1024, 1, 1, "")),
        set(&["encryption", "kdf"], kdf(1024, 1, 1, "00")),
        set(&["encryption", "kdf"], kdf(1024, 1, 1, "zz")),
        set(&["encryption", "kdf"], kdf(1024, 1, 1, &"ab".repeat(100))),
        set(&["encryption", "kdf"], kdf(1024, 1, 1, &"ab".repeat(64))),
        set(
            &["encryption", "kdf"],
            kdf(u32::MAX.into(), 1, 1, &"00".repeat(16)),
        ),
        set(&["encryption", "kdf"], kdf(8, 1, 16, &"00".repeat(16))),
        set(&["encryption", "kdf"], kdf(0, 0, 0, &"00".repeat(16))),
        set(&["encryption", "kdf"], kdf(1024, 1, 1, &"00".repeat(16))),
        set(&["encryption", "kdf", "version"], json!(16)),
        set(&["encryption", "kdf", "algorithm"], json!("scrypt")),
        set(&["payload_sha256"], json!("")),
        set(&["payload_sha256"], json!("00".repeat(32))),
        set(&["payload_plain_bytes"], json!(0)),
        set(&["payload_plain_bytes"], json!(u64::MAX)),
        set(&["base"], Json::Null),
        set(&["base"], link("@name:0", "@header:0", "@payload:0")),
        set(&["base"], link("@name:1", "@header:1", "@payload:1")),
        set(&["base"], link("@name:2", "@header:2", "@payload:2")),
        set(&["base"], link("@name:3", "@header:3", "@payload:3")),
        set(&["base"], link("@name:4", "@header:4", "@payload:4")),
        set(&["base"], link("@name:6", "@header:6", "@payload:6")),
        set(&["base"], link("@name:0", "@header:1", "@payload:0")),
        set(&["base"], link("../app.db", "@header:0", "@payload:0")),
        set(&["base"], link("/etc/passwd", "@header:0", "@payload:0")),
        set(&["base"], link("", "@header:0", "@payload:0")),
        set(&["base"], link(".", "@header:0", "@payload:0")),
        set(&["base"], link("missing.dmbak", "@header:0", "@payload:0")),
        set(&["base", "header_sha256"], json!("00".repeat(32))),
        set(&["base", "file"], json!("@name:4")),
        set(&["database_id"], Json::Null),
        set(&["database_id"], json!("@dbid:this")),
        set(&["database_id"], json!("@dbid:other")),
        set(&["database_id"], json!("0123456789abcdef0123456789abcdef")),
        set(&["database_id"], json!("0123456789ABCDEF0123456789ABCDEF")),
        set(&["database_id"], json!("x")),
        set(&["extra_field"], json!(1)),
    ];
    e.extend(FIELDS.iter().map(|f| Edit {
        path: vec![*f],
        value: None,
    }));
    e
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => prop::sample::select(curated_edits()),
        1 => (prop::sample::select(FIELDS.to_vec()), any_json()).prop_map(|(f, v)| Edit {
            path: vec![f],
            value: Some(v),
        }),
    ]
}

/// Edits for a forged file: mostly ones that keep the manifest valid, so
/// that restore's own checks are reached.
fn forge_edit() -> impl Strategy<Value = Edit> {
    let sets: Vec<Edit> = curated_edits()
        .into_iter()
        .filter(|e| e.value.is_some())
        .collect();
    prop_oneof![
        19 => prop::sample::select(sets),
        1 => edit(),
    ]
}

/// A forged row: a rowid-like integer first, most of the time.
fn forge_row() -> impl Strategy<Value = Vec<FV>> {
    (
        prop_oneof![7 => (-3i64..40).prop_map(FV::Int), 3 => fv()],
        prop::collection::vec(fv(), 0..7),
    )
        .prop_map(|(first, mut rest)| {
            rest.insert(0, first);
            rest
        })
}

fn raw_manifest() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (1usize..5000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        Just(b"null".to_vec()),
        Just(b"{}".to_vec()),
        Just(b"[]".to_vec()),
        Just(br#"{"format": "doctype-migrate backup", "format": "x"}"#.to_vec()),
        any_json().prop_map(|j| serde_json::to_vec(&j).unwrap()),
    ]
}

fn edit_manifest() -> impl Strategy<Value = Mutation> {
    prop::collection::vec(edit(), 1..4).prop_map(|edits| Mutation::EditManifest { edits })
}

fn forge() -> impl Strategy<Value = Mutation> {
    (
        prop::collection::vec(forge_edit(), 0..4),
        prop::collection::vec(forge_row(), 0..10),
        prop_oneof![
            4 => Just(Vec::new()),
            1 => prop::collection::vec(prop::collection::vec(any::<u8>(), 0..10), 1..3),
        ],
        prop::bool::weighted(0.85),
        any::<bool>(),
        prop::option::of(0u64..40),
        prop_oneof![9 => Just(Vec::new()), 1 => prop::collection::vec(any::<u8>(), 1..3)],
    )
        .prop_map(
            |(edits, rows, deletes, fit, gzip, table_row_count, trailing)| Mutation::Forge {
                edits,
                rows,
                deletes,
                fit,
                gzip,
                table_row_count,
                trailing,
            },
        )
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let flips = prop::collection::vec((any::<u64>(), 1u8..=255), 1..5);
    prop_oneof![
        6 => (region(), flips, any::<bool>()).prop_map(|(region, flips, reseal)| Mutation::Flip {
            region,
            flips,
            reseal,
        }),
        2 => any::<u64>().prop_map(|at| Mutation::Truncate { at }),
        1 => prop::collection::vec(any::<u8>(), 1..100).prop_map(|garbage| Mutation::Append { garbage }),
        1 => src().prop_map(|other| Mutation::SpliceHeader { other }),
        2 => (src(), any::<bool>()).prop_map(|(other, reseal)| Mutation::SpliceTail { other, reseal }),
        2 => (src(), any::<bool>()).prop_map(|(other, reseal)| Mutation::SplicePayload { other, reseal }),
        2 => src().prop_map(|other| Mutation::Renamed { other }),
        2 => (prop::collection::vec(any::<u8>(), 0..300), any::<bool>(), any::<bool>())
            .prop_map(|(bytes, magic, version)| Mutation::Random { bytes, magic, version }),
        1 => Just(Mutation::Empty),
        5 => edit_manifest(),
        2 => raw_manifest().prop_map(|json| Mutation::RawManifest { json }),
        8 => forge(),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    victim: Src,
    /// Call the readers on the head of the victim's chain.
    via_chain: bool,
    /// Read with this flavour's key instead of the fixture's.
    reader: Option<usize>,
    mutation: Mutation,
}

fn case() -> impl Strategy<Value = Case> {
    (
        src(),
        any::<bool>(),
        prop_oneof![5 => Just(None), 1 => (0usize..3).prop_map(Some)],
        mutation(),
    )
        .prop_map(|(victim, via_chain, reader, mutation)| Case {
            victim,
            via_chain,
            reader,
            mutation,
        })
}

// ------------------------------------------------------------ the checks

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Verify,
    VerifyFor,
    Restore(Tgt),
    Apply(Tgt),
    Incremental,
}

const OPS: [Op; 8] = [
    Op::Verify,
    Op::VerifyFor,
    Op::Restore(Tgt::Original),
    Op::Restore(Tgt::New),
    Op::Restore(Tgt::Missing),
    Op::Apply(Tgt::Original),
    Op::Apply(Tgt::New),
    Op::Incremental,
];

/// How often each outcome was seen (`DM_FUZZ_STATS=1` prints them): the
/// kind and the first words of each error, per call.
#[derive(Default)]
struct Stats(std::cell::RefCell<std::collections::BTreeMap<String, usize>>);

impl Stats {
    fn record<T>(&self, op: Op, r: &Result<T, Error>) {
        let key = match r {
            Ok(_) => format!("{op:?}: ok"),
            Err(e) => {
                let msg = e.to_string();
                let msg = msg.split_once(": ").map_or(&msg[..], |m| m.1);
                let words: Vec<&str> = msg
                    .split_whitespace()
                    .map(|w| if w.contains('/') { "<path>" } else { w })
                    .take(6)
                    .collect();
                format!("{op:?}: {:?} {}", e.backup_kind(), words.join(" "))
            }
        };
        *self.0.borrow_mut().entry(key).or_default() += 1;
    }

    fn print(&self, flavour: Flavour) {
        for (k, n) in self.0.borrow().iter() {
            eprintln!("{flavour:?} {n:6} {k}");
        }
    }
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// Runs one case; `Err` describes the first property broken.
fn run_case(fx: &Fixture, c: &Case, stats: &Stats) -> Result<(), TestCaseError> {
    let bytes = hostile(fx, c.victim, &c.mutation);
    let lay = lay_out(fx, Some((c.victim, &bytes)));
    let entry_src = if c.via_chain {
        c.victim.chain_head()
    } else {
        c.victim
    };
    let entry = lay.dir.join(&fx.file(entry_src).name);
    let reader = c.reader.map_or(fx.flavour, |i| FLAVOURS[i]);
    // A forged file read without a key may be accepted: nothing
    // authenticates an unencrypted backup.
    let may_forge = c.mutation.forged() && reader == Flavour::Plain;
    let mgr = manager(reader, &lay.dir, &fx.key_file);
    let entries_before = dir_entries(&lay.dir);
    let mut ok = Vec::new();
    for op in OPS {
        let db = match op {
            Op::Restore(t) | Op::Apply(t) => fx.db_for(t),
            _ => &fx.db,
        };
        std::fs::write(&lay.db, db).unwrap();
        let conn = Connection::open(&lay.db).unwrap();
        let result: Result<Option<String>, Error> = match op {
            Op::Verify => mgr.verify(&entry).map(|i| Some(i.header_sha256)),
            Op::VerifyFor => mgr.verify_for(&conn, &entry).map(|i| Some(i.header_sha256)),
            Op::Restore(t) => mgr.restore(&conn, &entry, t.target()).map(|_| None),
            Op::Apply(t) => {
                let a = applier(reader, &lay.db, &lay.dir, &fx.key_file);
                a.restore_backup(&entry, t.target()).map(|_| None)
            }
            Op::Incremental => mgr
                .backup_table_incremental(&conn, "t", &entry, None)
                .map(|i| {
                    mgr.verify(&i.path).expect("a new increment verifies");
                    std::fs::remove_file(&i.path).unwrap();
                    None
                }),
        };
        if !conn.is_autocommit() {
            return Err(fail(format!("{op:?}: left a transaction open")));
        }
        let temp: i64 = conn
            .query_row("SELECT count(*) FROM temp.sqlite_schema", [], |r| r.get(0))
            .unwrap();
        if temp != 0 {
            return Err(fail(format!("{op:?}: left {temp} TEMP object(s)")));
        }
        stats.record(op, &result);
        match result {
            Err(e) => {
                if !matches!(e, Error::Backup { .. }) {
                    return Err(fail(format!("{op:?}: not a backup error: {e:?}")));
                }
                // `Other` is the random source or argon2 failing, never
                // what a file holds.
                if e.backup_kind() == Some(BackupErrorKind::Other) {
                    return Err(fail(format!(
                        "{op:?}: a hostile file reads as `Other`: {e}"
                    )));
                }
                drop(conn);
                let now = std::fs::read(&lay.db).unwrap();
                if now != db {
                    let diff: Vec<usize> = (0..now.len().min(db.len()))
                        .filter(|&i| now[i] != db[i])
                        .take(20)
                        .collect();
                    return Err(fail(format!(
                        "{op:?} failed ({e}) but changed the database: len {} vs {}, offsets {diff:?}",
                        now.len(),
                        db.len()
                    )));
                }
                if lay.db.with_extension("db-journal").exists() {
                    return Err(fail(format!("{op:?}: left a journal")));
                }
            }
            Ok(header) => {
                ok.push(op);
                if let Some(h) = header {
                    if !may_forge && !fx.headers.contains(&h) {
                        return Err(fail(format!(
                            "{op:?} accepted a file that is no genuine backup (header {h})"
                        )));
                    }
                }
                if let Op::Restore(t) | Op::Apply(t) = op {
                    let after = Connection::open(&lay.db).unwrap();
                    if may_forge {
                        let check: String = after
                            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                            .unwrap();
                        prop_assert_eq!(check, "ok");
                    } else {
                        if !fx.restored[t as usize].contains(&state(&after)) {
                            return Err(fail(format!(
                                "{op:?} succeeded with a state no genuine backup gives"
                            )));
                        }
                    }
                }
            }
        }
        if dir_entries(&lay.dir) != entries_before {
            return Err(fail(format!("{op:?}: changed the backup directory")));
        }
    }
    // The readers agree.
    if !ok.contains(&Op::Verify) && !ok.is_empty() {
        return Err(fail(format!("verify refused but {ok:?} accepted")));
    }
    if ok
        .iter()
        .any(|o| matches!(o, Op::Restore(_) | Op::Apply(_)))
        && !ok.contains(&Op::VerifyFor)
    {
        return Err(fail(format!("verify_for refused but {ok:?} accepted")));
    }
    Ok(())
}

fn run_property(flavour: Flavour, strategy: impl Strategy<Value = Case>) {
    let start = std::time::Instant::now();
    let fx = fixture(flavour);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let stats = Stats::default();
    if let Err(e) = runner.run(&strategy, |c| run_case(&fx, &c, &stats)) {
        panic!("{flavour:?}: {e}");
    }
    if std::env::var_os("DM_FUZZ_STATS").is_some() {
        stats.print(flavour);
    }
    eprintln!(
        "backup_fuzz {flavour:?}: {} cases in {:.1?}",
        cases(),
        start.elapsed()
    );
}

#[test]
fn hostile_unencrypted_backups_are_refused_or_restore_genuine_data() {
    run_property(Flavour::Plain, case());
}

#[test]
fn hostile_key_file_backups_are_refused_or_restore_genuine_data() {
    run_property(Flavour::KeyFile, case());
}

#[test]
fn hostile_passphrase_backups_are_refused_or_restore_genuine_data() {
    run_property(Flavour::Passphrase, case());
}

/// Forged unencrypted files only, read without a key: restore's own
/// checks (schema SQL, columns, keys, values) meet hostile input.
#[test]
fn forged_unencrypted_backups_never_panic_or_half_restore() {
    let victim = prop_oneof![
        3 => Just(Src::FullT),
        3 => Just(Src::ColsT),
        1 => Just(Src::FullU),
        1 => Just(Src::Incr2),
        1 => Just(Src::IncrCols),
    ];
    let forged = (
        victim,
        prop::bool::weighted(0.2),
        prop_oneof![1 => edit_manifest(), 3 => forge()],
    )
        .prop_map(|(victim, via_chain, mutation)| Case {
            victim,
            via_chain,
            reader: None,
            mutation,
        });
    run_property(Flavour::Plain, forged);
}
