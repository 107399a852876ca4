//! [`BackupManager`]: the public entry point, and its builder.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;
use zeroize::{Zeroize, Zeroizing};

use super::codec::{self, KdfParams, SecretKey};
use super::format::{self, FORMAT_NAME, Manifest};
use super::prune::PruneReport;
use super::reader::{self, Opened, bad};
use super::restore::{self, ChainFile};
use super::safefs;
use super::tableinfo;
use super::writer::{self, EncryptSetup, WriterConfig, Written};
use super::{BackupInfo, BackupStrategy, PrunePolicy, RestoreTarget, incremental, prune};
use crate::error::{BackupErrorKind as Kind, Error, Result};
use crate::history::MigrationId;

/// Default gzip level: fast (level 1 measured about 4x faster than level 6).
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 1;

/// Longest incremental chain followed (guards against cycles).
const MAX_CHAIN: usize = 10_000;

/// Longest argon2 salt accepted from a manifest (the writer uses 16 bytes).
const MAX_SALT_LEN: usize = 64;

/// The key that encrypts and authenticates backups: a key file or a
/// passphrase. The one backup-key type of the crate (the applier, the
/// backup manager and the CLI all take it).
///
/// Its `Debug` output never shows the passphrase, and the passphrase is
/// wiped from memory when the key is dropped (each clone wipes its own
/// copy), so the type implements `Drop`: match it by reference.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackupKey {
    /// A file holding 32 raw bytes or 64 hex characters.
    KeyFile(PathBuf),
    /// A passphrase, stretched with argon2id.
    Passphrase(String),
}

impl Drop for BackupKey {
    fn drop(&mut self) {
        if let BackupKey::Passphrase(p) = self {
            p.zeroize();
        }
    }
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupKey::KeyFile(p) => f.debug_tuple("KeyFile").field(p).finish(),
            BackupKey::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
        }
    }
}

/// The default backup directory for a database: `<db file name>.backups`
/// beside the database file (`/data/app.db` → `/data/app.db.backups`).
pub fn default_dir_for(db_path: &Path) -> PathBuf {
    let name = db_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "database".into());
    let parent = db_path.parent().unwrap_or(Path::new(""));
    parent.join(format!("{name}.backups"))
}

/// This manager's key material, wiped from memory when dropped.
enum Secret {
    None,
    Key(SecretKey),
    Passphrase(Zeroizing<String>),
}

/// Builder for [`BackupManager`]; every check happens in [`build`](Self::build).
#[derive(Default)]
pub struct BackupManagerBuilder {
    dir: Option<PathBuf>,
    level: Option<u32>,
    no_compression: bool,
    key_file: Option<PathBuf>,
    key: Option<SecretKey>,
    passphrase: Option<Zeroizing<String>>,
    argon2: Option<(u32, u32, u32)>,
}

impl fmt::Debug for BackupManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupManagerBuilder")
            .field("dir", &self.dir)
            .field("level", &self.level)
            .field("no_compression", &self.no_compression)
            .field("key_file", &self.key_file)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("argon2", &self.argon2)
            .finish()
    }
}

impl BackupManagerBuilder {
    /// The backup directory (created with mode 0700 on first write). Use
    /// [`default_dir_for`] for the default beside the database.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// gzip level 0-9 (default 1).
    pub fn compression_level(mut self, level: u32) -> Self {
        self.level = Some(level);
        self
    }

    /// Store the payload without gzip.
    pub fn no_compression(mut self) -> Self {
        self.no_compression = true;
        self
    }

    /// Encrypt with the key in this file: 32 raw bytes, or 64 hex digits
    /// (surrounding whitespace ignored). Read by [`build`](Self::build).
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// Encrypt with this 32-byte key. The manager's copy is wiped from
    /// memory when it is dropped (the caller's is the caller's).
    pub fn key(mut self, key: [u8; 32]) -> Self {
        self.key = Some(Zeroizing::new(key));
        self
    }

    /// Encrypt (and authenticate) with `key`: a key file or a passphrase.
    pub fn backup_key(self, key: &BackupKey) -> Self {
        match key {
            BackupKey::KeyFile(p) => self.key_file(p.clone()),
            BackupKey::Passphrase(p) => self.passphrase(p.clone()),
        }
    }

    /// Encrypt with a key derived from this passphrase (argon2id, random
    /// 16-byte salt recorded in each manifest). The passphrase and the keys
    /// derived from it are wiped from memory when the manager is dropped.
    pub fn passphrase(mut self, passphrase: impl Into<String>) -> Self {
        self.passphrase = Some(Zeroizing::new(passphrase.into()));
        self
    }

    /// argon2id cost for new backups: memory in KiB, iterations, lanes.
    /// Default 19456 KiB, 2, 1 (the OWASP baseline).
    pub fn argon2_params(mut self, m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Self {
        self.argon2 = Some((m_cost_kib, t_cost, p_cost));
        self
    }

    /// Checks the options and builds the manager.
    ///
    /// Errors: no directory; more than one of key file, key and passphrase;
    /// an empty passphrase; a level above 9; a key file that cannot be read
    /// or is not 32 raw bytes or 64 hex digits; argon2 parameters out of range.
    pub fn build(self) -> Result<BackupManager> {
        let dir = self.dir.ok_or_else(|| {
            Error::config(
                "dir",
                "backup directory not set (see backup::default_dir_for)",
            )
        })?;
        let level = if self.no_compression {
            if self.level.is_some() {
                return Err(Error::config(
                    "no_compression",
                    "both no_compression and compression_level given",
                ));
            }
            None
        } else {
            let l = self.level.unwrap_or(DEFAULT_COMPRESSION_LEVEL);
            if l > 9 {
                return Err(Error::config(
                    "compression_level",
                    format!("gzip compression level {l} is not in 0..=9"),
                ));
            }
            Some(l)
        };
        let sources = usize::from(self.key_file.is_some())
            + usize::from(self.key.is_some())
            + usize::from(self.passphrase.is_some());
        if sources > 1 {
            return Err(Error::config(
                "key",
                "give at most one of key_file, key and passphrase",
            ));
        }
        let secret = if let Some(path) = &self.key_file {
            Secret::Key(read_key_file(path)?)
        } else if let Some(k) = self.key {
            Secret::Key(k)
        } else if let Some(p) = self.passphrase {
            if p.is_empty() {
                return Err(Error::config("passphrase", "empty backup passphrase"));
            }
            Secret::Passphrase(p)
        } else {
            Secret::None
        };
        let (m, t, p) = self.argon2.unwrap_or((
            argon2::Params::DEFAULT_M_COST,
            argon2::Params::DEFAULT_T_COST,
            argon2::Params::DEFAULT_P_COST,
        ));
        if m > codec::MAX_M_COST_KIB || t > codec::MAX_T_COST || p > codec::MAX_P_COST {
            return Err(Error::config(
                "argon2_params",
                format!(
                    "argon2 parameters m={m} KiB, t={t}, p={p} exceed the limits readers accept ({}, {}, {})",
                    codec::MAX_M_COST_KIB,
                    codec::MAX_T_COST,
                    codec::MAX_P_COST
                ),
            ));
        }
        argon2::Params::new(m, t, p, Some(32))
            .map_err(|e| Error::config("argon2_params", format!("argon2 parameters: {e}")))?;
        Ok(BackupManager {
            dir,
            level,
            secret,
            argon2: (m, t, p),
            write_setup: Mutex::new(None),
            derived: Mutex::new(HashMap::new()),
        })
    }
}

/// The key in a key file. The bytes read are wiped once the key is taken
/// from them (and the key when the manager is dropped).
fn read_key_file(path: &Path) -> Result<SecretKey> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?);
    if bytes.len() == 32 {
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&bytes);
        return Ok(k);
    }
    let text = std::str::from_utf8(&bytes).unwrap_or("").trim();
    if let Some(k) = hex_key(text) {
        return Ok(k);
    }
    Err(Error::config(
        "key_file",
        format!(
            "key file {} must hold 32 raw bytes or 64 hex digits (it has {} bytes)",
            path.display(),
            bytes.len()
        ),
    ))
}

/// 64 hex digits (either case) decoded straight into a wiped key, so no
/// partly decoded copy is left behind.
fn hex_key(text: &str) -> Option<SecretKey> {
    let b = text.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut k = Zeroizing::new([0u8; 32]);
    for (i, pair) in b.chunks(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        k[i] = (hi * 16 + lo) as u8;
    }
    Some(k)
}

/// Takes, verifies, restores, lists and prunes table backups.
///
/// Cheap to share by reference; methods take `&self`. Derived passphrase
/// keys are cached per (salt, parameters). The key, the passphrase and
/// every key derived from them are wiped from memory when the manager is
/// dropped.
pub struct BackupManager {
    dir: PathBuf,
    level: Option<u32>,
    secret: Secret,
    argon2: (u32, u32, u32),
    write_setup: Mutex<Option<std::sync::Arc<EncryptSetup>>>,
    derived: Mutex<HashMap<KdfParams, SecretKey>>,
}

impl fmt::Debug for BackupManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupManager")
            .field("dir", &self.dir)
            .field("compression_level", &self.level)
            .field(
                "encryption",
                &match self.secret {
                    Secret::None => "none",
                    Secret::Key(_) => "key",
                    Secret::Passphrase(_) => "passphrase",
                },
            )
            .finish()
    }
}

impl BackupManager {
    /// Starts a builder.
    pub fn builder() -> BackupManagerBuilder {
        BackupManagerBuilder::default()
    }

    /// The backup directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether new backups are encrypted.
    pub fn encrypts(&self) -> bool {
        !matches!(self.secret, Secret::None)
    }

    fn encrypt_setup(&self) -> Result<Option<std::sync::Arc<EncryptSetup>>> {
        let mut guard = self.write_setup.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = guard.as_ref() {
            return Ok(Some(s.clone()));
        }
        let setup = match &self.secret {
            Secret::None => return Ok(None),
            Secret::Key(k) => EncryptSetup {
                key: k.clone(),
                kdf: None,
            },
            Secret::Passphrase(p) => {
                let mut salt = [0u8; 16];
                codec::random_bytes(&mut salt).map_err(|f| f.at(&self.dir))?;
                let (m, t, pc) = self.argon2;
                let params = KdfParams {
                    algorithm: "argon2id".into(),
                    version: 0x13,
                    m_cost_kib: m,
                    t_cost: t,
                    p_cost: pc,
                    salt: format::hex_encode(&salt),
                };
                let key = codec::derive_key(p.as_bytes(), &params).map_err(|f| f.at(&self.dir))?;
                self.derived
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(params.clone(), key.clone());
                EncryptSetup {
                    key,
                    kdf: Some(params),
                }
            }
        };
        let setup = std::sync::Arc::new(setup);
        *guard = Some(setup.clone());
        Ok(Some(setup))
    }

    /// The key derived from this manager's passphrase with `params` read
    /// from a backup, from the cache or computed. The file's cost may not
    /// exceed the cost this manager writes with: the parameters come from
    /// a manifest that is not authenticated yet, and a forged one must not
    /// make a check take minutes and gigabytes.
    fn passphrase_key(
        &self,
        passphrase: &str,
        params: &KdfParams,
        path: &Path,
    ) -> Result<SecretKey> {
        if let Some(k) = self
            .derived
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(params)
        {
            return Ok(k.clone());
        }
        let (m, t, p) = self.argon2;
        if params.m_cost_kib > m || params.t_cost > t || params.p_cost > p {
            return Err(bad(
                path,
                Kind::Unsupported,
                format!(
                    "refused: the backup asks for an argon2 cost (m={} KiB, t={}, p={}) above the one \
                     this manager writes with (m={m} KiB, t={t}, p={p}); the cost is read before \
                     the file is authenticated, so it is capped (build the manager with \
                     argon2_params at least that high if the file is genuine)",
                    params.m_cost_kib, params.t_cost, params.p_cost
                ),
            ));
        }
        if params.salt.len() > 2 * MAX_SALT_LEN {
            return Err(bad(
                path,
                Kind::Corrupted,
                "manifest is not valid: KDF salt too long",
            ));
        }
        let k = codec::derive_key(passphrase.as_bytes(), params).map_err(|f| f.at(path))?;
        self.derived
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(params.clone(), k.clone());
        Ok(k)
    }

    /// Checks the MAC of a raw backup with this manager's key, before its
    /// manifest is parsed; returns the key. A manager with a key refuses a
    /// backup without a MAC; a manager without one refuses a backup with
    /// one (it is encrypted).
    fn authenticate(&self, raw: &reader::Raw) -> Result<Option<SecretKey>> {
        let path = &raw.path;
        match (&self.secret, &raw.mac) {
            (Secret::None, None) => Ok(None),
            (Secret::None, Some(_)) => Err(bad(
                path,
                Kind::KeyRequired,
                "backup is encrypted and authenticated with a key file or passphrase; none was given",
            )),
            (_, None) => Err(bad(
                path,
                Kind::Unauthenticated,
                "refused: the backup is not authenticated (it carries no MAC: it was written \
                 without a key, or by an older release); a key or passphrase is configured, so \
                 only backups written with it are accepted",
            )),
            (Secret::Key(k), Some(_)) => {
                if reader::kdf_params(raw)?.is_some() {
                    return Err(bad(
                        path,
                        Kind::WrongKey,
                        "wrong key: backup was encrypted with a passphrase, a key was given",
                    ));
                }
                reader::check_mac(raw, k)?;
                Ok(Some(k.clone()))
            }
            (Secret::Passphrase(p), Some(_)) => {
                let Some(params) = reader::kdf_params(raw)? else {
                    return Err(bad(
                        path,
                        Kind::WrongKey,
                        "wrong key: backup was encrypted with a key file, a passphrase was given",
                    ));
                };
                let k = self.passphrase_key(p, &params, path)?;
                reader::check_mac(raw, &k)?;
                Ok(Some(k))
            }
        }
    }

    /// Opens a backup for reading: the path must name a regular file in
    /// the backup directory (see `safefs`); then header, sizes and
    /// checksum; then the MAC with this manager's key; only then is the
    /// manifest parsed and checked. Returns the key for the payload.
    fn open_backup(&self, path: &Path) -> Result<(Opened, File, Option<SecretKey>)> {
        let checked = safefs::check_backup_path(&self.dir, path)?;
        let file = safefs::open_checked(path, &checked)?;
        let raw = reader::open_raw_file(path, file)?;
        let key = self.authenticate(&raw)?;
        let (mut opened, file) = reader::parse(raw)?;
        opened.authenticated = key.is_some();
        Ok((opened, file, key))
    }

    fn writer_config<'a>(&'a self, setup: Option<&'a EncryptSetup>) -> WriterConfig<'a> {
        WriterConfig {
            dir: &self.dir,
            level: self.level,
            encryption: setup,
        }
    }

    /// Backs up `table` (in the `main` schema) into a new file in the backup
    /// directory, named `<table>__<m<id> | timestamp>__<full|columns>.dmbak`.
    ///
    /// Only reads the database, with one `SELECT` (a consistent snapshot), so
    /// it can run inside the caller's transaction. Rows are streamed: memory
    /// does not grow with the table.
    pub fn backup_table(
        &self,
        conn: &Connection,
        table: &str,
        strategy: BackupStrategy,
        migration_id: Option<MigrationId>,
    ) -> Result<BackupInfo> {
        let info = tableinfo::inspect(conn, table)?;
        let columns = info.stored_columns(&strategy)?;
        let strategy = info.normalise(&strategy);
        let database_id = crate::history::store::ensure_database_id(conn)?;
        let now = chrono::Utc::now();
        let manifest = Manifest {
            database_id: Some(database_id),
            format: FORMAT_NAME.into(),
            table: info.name.clone(),
            has_rowid: info.rowid_alias.is_some(),
            key_columns: info.key_columns.clone(),
            columns: columns.clone(),
            schema_sql: match strategy {
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
            base: None,
            strategy: strategy.clone(),
        };
        let stem = format::file_stem(&info.name, migration_id, &now, strategy.short_name());
        let setup = self.encrypt_setup()?;
        let cfg = self.writer_config(setup.as_deref());
        let sql = info.select_sql(&columns);
        let ncols = manifest.ncols();
        let written = writer::write_backup(&cfg, &stem, manifest, |sink| {
            let mut stmt = conn.prepare(&sql).map_err(|e| Error::sql(&sql, e))?;
            let mut rows = stmt.query([]).map_err(|e| Error::sql(&sql, e))?;
            let mut n = 0u64;
            while let Some(row) = rows.next().map_err(|e| Error::sql(&sql, e))? {
                sink.row(row, ncols, &sql)?;
                n += 1;
            }
            Ok(n)
        })?;
        Ok(info_of(&written))
    }

    /// Backs up only the rows of `table` added, changed or deleted since the
    /// state recorded by `base` (a backup of the same table, itself full,
    /// column or incremental; it must be in the backup directory's folder
    /// together with its own bases). The new file links to `base` by name and
    /// checksum, uses the base's strategy, and is named `..__incr.dmbak`.
    ///
    /// Reads the whole chain (verifying it) and scans the table once; the
    /// chain's state is kept in a TEMP table, not in memory.
    pub fn backup_table_incremental(
        &self,
        conn: &Connection,
        table: &str,
        base: &Path,
        migration_id: Option<MigrationId>,
    ) -> Result<BackupInfo> {
        // The link stores the base's file name only, so it must live in the
        // directory the increment is written to.
        let base_dir = base
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let same_dir = match (
            std::fs::canonicalize(base_dir),
            std::fs::canonicalize(&self.dir),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same_dir {
            return Err(bad(
                base,
                Kind::UnsafePath,
                format!(
                    "the base of an incremental backup must be in the backup directory {}",
                    self.dir.display()
                ),
            ));
        }
        let chain = self.open_chain(base)?;
        crate::history::store::ensure_database_id(conn)?;
        check_database(conn, &chain)?;
        let setup = self.encrypt_setup()?;
        let cfg = self.writer_config(setup.as_deref());
        let written = incremental::backup_incremental(conn, &cfg, table, chain, migration_id)?;
        Ok(info_of(&written))
    }

    /// Opens `path` and its chain of bases; returns base first. Every link's
    /// checksum is compared with the base found on disk.
    fn open_chain(&self, path: &Path) -> Result<Vec<ChainFile>> {
        let mut chain: Vec<ChainFile> = Vec::new();
        let mut cur = path.to_path_buf();
        let mut expected: Option<(format::BaseLink, Manifest)> = None;
        loop {
            if chain.len() >= MAX_CHAIN {
                return Err(bad(
                    path,
                    Kind::Chain,
                    "incremental chain too long (a cycle?)",
                ));
            }
            let (opened, file, key) = match self.open_backup(&cur) {
                Ok(x) => x,
                Err(e) if expected.is_some() => {
                    let why = match &e {
                        Error::Io { source, .. }
                            if source.kind() == std::io::ErrorKind::NotFound =>
                        {
                            "is missing".to_string()
                        }
                        other => format!("cannot be read: {other}"),
                    };
                    return Err(bad(
                        path,
                        Kind::Chain,
                        format!("base {} of the incremental chain {why}", cur.display()),
                    ));
                }
                Err(e) => return Err(e),
            };
            if let Some((link, child)) = &expected {
                if format::hex_encode(&opened.checksum) != link.header_sha256
                    || opened.manifest.payload_sha256 != link.payload_sha256
                {
                    return Err(bad(
                        path,
                        Kind::Replaced,
                        format!(
                            "base {} was altered or replaced: its checksum differs from the one recorded in the incremental backup",
                            cur.display()
                        ),
                    ));
                }
                let bm = &opened.manifest;
                // Table names compare as SQLite compares them (ASCII case
                // folded), as `backup_table_incremental` does: a table
                // renamed in case only is the same table.
                if !bm.table.eq_ignore_ascii_case(&child.table)
                    || bm.strategy != child.strategy
                    || bm.columns != child.columns
                    || bm.has_rowid != child.has_rowid
                    || bm.key_columns != child.key_columns
                {
                    return Err(bad(
                        path,
                        Kind::Chain,
                        format!(
                            "base {} does not match its incremental backup",
                            cur.display()
                        ),
                    ));
                }
            }
            let next = opened
                .manifest
                .base
                .clone()
                .map(|l| (l, opened.manifest.clone()));
            chain.push(ChainFile { opened, file, key });
            match next {
                None => break,
                Some((link, child)) => {
                    let name = Path::new(&link.file);
                    if link.file.is_empty()
                        || name.components().count() != 1
                        || name.file_name().is_none()
                    {
                        return Err(bad(
                            path,
                            Kind::Chain,
                            format!("invalid base file name {:?}", link.file),
                        ));
                    }
                    cur = cur.parent().unwrap_or(Path::new(".")).join(name);
                    expected = Some((link, child));
                }
            }
        }
        chain.reverse();
        Ok(chain)
    }

    /// Verifies a backup without a database: decrypts, decompresses, checks
    /// the SHA-256 and the row count, and for an incremental backup does the
    /// same for every base in its chain and checks each link.
    ///
    /// Refused when the path is not a regular file in the backup directory
    /// (a symbolic link, a FIFO, a file elsewhere), and, when this manager
    /// has a key or passphrase, when the backup does not carry a valid MAC
    /// under it (checked before the manifest is parsed). The manifest must
    /// be well-formed, its schema SQL single `CREATE` statements.
    pub fn verify(&self, path: &Path) -> Result<BackupInfo> {
        let chain = self.open_chain(path)?;
        self.verify_chain(path, chain)
    }

    fn verify_chain(&self, path: &Path, chain: Vec<ChainFile>) -> Result<BackupInfo> {
        let info = chain
            .last()
            .map(|c| BackupInfo::from_opened(&c.opened))
            .ok_or_else(|| bad(path, Kind::Chain, "empty chain"))?;
        for cf in chain {
            let mut p = reader::payload(&cf.opened, cf.file, cf.key.as_deref())?;
            p.drain()?;
        }
        Ok(info)
    }

    /// Restores a backup (and, for an incremental one, its chain) into
    /// `target`, returning the number of rows restored (inserted for a full
    /// backup, updated for a column backup; rows deleted since a column
    /// backup are skipped).
    ///
    /// Runs in a SAVEPOINT, so it nests in a caller's transaction. The whole
    /// chain is read and verified into a TEMP table before the target is
    /// touched; any failure (corrupt file, wrong key, a value whose storage
    /// class the target's affinity would change) rolls back to the savepoint
    /// and leaves the target unchanged. The table's triggers do not fire
    /// (they are dropped and recreated within the savepoint). Replacing the
    /// rows of a table that other tables reference is refused while
    /// `PRAGMA foreign_keys` is ON (it would cascade).
    ///
    /// Refused (nothing restored) when the path is not a regular file in the
    /// backup directory, when this manager has a key and the backup is not
    /// authenticated with it, or when the backup was taken from another
    /// database (its database id differs from this one's).
    pub fn restore(&self, conn: &Connection, path: &Path, target: RestoreTarget) -> Result<u64> {
        self.restore_inner(conn, path, target, None)
    }

    /// [`restore`](Self::restore), refusing unless the backup's header
    /// checksum ([`BackupInfo::header_sha256`]) is `header_sha256`: the
    /// file recorded in history (or verified while planning), not one put
    /// in its place since.
    pub fn restore_exact(
        &self,
        conn: &Connection,
        path: &Path,
        target: RestoreTarget,
        header_sha256: &str,
    ) -> Result<u64> {
        self.restore_inner(conn, path, target, Some(header_sha256))
    }

    fn restore_inner(
        &self,
        conn: &Connection,
        path: &Path,
        target: RestoreTarget,
        expected: Option<&str>,
    ) -> Result<u64> {
        let chain = self.open_chain(path)?;
        if let (Some(want), Some(last)) = (expected, chain.last()) {
            check_identity(&last.opened, want)?;
        }
        check_database(conn, &chain)?;
        restore::restore(conn, chain, &target)
    }

    /// [`verify`](Self::verify), and refuses a backup taken from another
    /// database than the one `conn` is connected to (see
    /// [`restore`](Self::restore)). Reads the database only.
    pub fn verify_for(&self, conn: &Connection, path: &Path) -> Result<BackupInfo> {
        let chain = self.open_chain(path)?;
        check_database(conn, &chain)?;
        self.verify_chain(path, chain)
    }

    /// Every readable backup in the directory, sorted by table then creation
    /// time. Reads headers and manifests only. Files that cannot be read are
    /// skipped; see [`list_unreadable`](Self::list_unreadable).
    pub fn list(&self) -> Result<Vec<BackupInfo>> {
        Ok(prune::scan(&self.dir)?.0)
    }

    /// The `.dmbak` files in the directory whose header or manifest cannot be
    /// read, with the reason.
    pub fn list_unreadable(&self) -> Result<Vec<(PathBuf, Error)>> {
        Ok(prune::scan(&self.dir)?.1)
    }

    /// Deletes the backups selected by `policy`; the report lists them and
    /// what the rule selected but kept, and why.
    ///
    /// Never deletes a backup listed in `protected` (those a still-rollbackable
    /// migration needs) unless `force`; never deletes a base that a kept
    /// incremental backup depends on, even with `force`; never deletes a file
    /// it cannot read.
    pub fn prune(
        &self,
        policy: PrunePolicy,
        protected: &[PathBuf],
        force: bool,
    ) -> Result<PruneReport> {
        prune::prune(&self.dir, &policy, protected, force, chrono::Utc::now())
    }
}

fn info_of(w: &Written) -> BackupInfo {
    let mut info = BackupInfo::from_manifest(&w.path, &w.manifest, w.bytes, &w.checksum);
    info.authenticated = w.authenticated;
    info
}

/// Refuses `opened` unless its header checksum is `want` (hex).
fn check_identity(opened: &Opened, want: &str) -> Result<()> {
    let have = format::hex_encode(&opened.checksum);
    if !have.eq_ignore_ascii_case(want) {
        return Err(bad(
            &opened.path,
            Kind::Replaced,
            format!(
                "refused: it is not the backup that was recorded (its SHA-256 is {have}, {want} was recorded); it was replaced"
            ),
        ));
    }
    Ok(())
}

/// Refuses a chain unless every file was taken from the database `conn`
/// is connected to (same database id, see `history::store::database_id`).
fn check_database(conn: &Connection, chain: &[ChainFile]) -> Result<()> {
    let here = crate::history::store::database_id(conn)?;
    for cf in chain {
        let path = &cf.opened.path;
        match (&cf.opened.manifest.database_id, &here) {
            (Some(theirs), Some(ours)) if theirs == ours => {}
            (Some(theirs), Some(ours)) => {
                return Err(bad(
                    path,
                    Kind::OtherDatabase,
                    format!(
                        "refused: the backup was taken from another database (database id {theirs}; \
                         this database's is {ours})"
                    ),
                ));
            }
            (Some(theirs), None) => {
                return Err(bad(
                    path,
                    Kind::OtherDatabase,
                    format!(
                        "refused: the backup was taken from database {theirs}, and this database has \
                         no database id (table {}), so it is not that one",
                        crate::history::store::META_TABLE
                    ),
                ));
            }
            (None, _) => {
                return Err(bad(
                    path,
                    Kind::OtherDatabase,
                    "refused: the backup records no database id (written by an older release), so \
                     it cannot be tied to this database",
                ));
            }
        }
    }
    Ok(())
}
