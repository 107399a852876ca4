//! Writing one backup file: temp name, streamed payload, manifest, header,
//! fsync, rename, directory fsync.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Row;
use sha2::{Digest, Sha256};

use super::codec::{
    self, CountingWriter, ENCRYPTION_ALGORITHM, EncryptWriter, HashingWriter, KdfParams,
    MaybeEncrypt, MaybeGzip, NONCE_PREFIX_LEN, SEGMENT_SIZE, SecretKey,
};
use super::encoding::{self, Value};
use super::format::{
    self, CompressionMeta, EncryptionMeta, FLAG_ENCRYPTED, FLAG_GZIP, FLAG_MAC, HEADER_LEN, Header,
    MAX_MANIFEST_LEN, Manifest,
};
use super::safefs;
use crate::error::{BackupErrorKind, Error, Result};

/// Key material for writing.
pub(crate) struct EncryptSetup {
    /// Wiped when the setup is dropped (with its manager).
    pub key: SecretKey,
    pub kdf: Option<KdfParams>,
}

/// Where and how to write.
pub(crate) struct WriterConfig<'a> {
    pub dir: &'a Path,
    pub level: Option<u32>,
    pub encryption: Option<&'a EncryptSetup>,
}

/// A file written and renamed into place.
pub(crate) struct Written {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub bytes: u64,
    /// The header checksum.
    pub checksum: [u8; 32],
    /// Whether it carries a MAC under this writer's key.
    pub authenticated: bool,
}

type Pipeline = HashingWriter<MaybeGzip<MaybeEncrypt<CountingWriter<BufWriter<File>>>>>;

/// Batch size before handing encoded rows to the codec layers.
const FLUSH_AT: usize = 64 * 1024;

/// Receives records and streams them through the codec layers, which run
/// on a thread of their own (hash, compress, encrypt, write), so reading
/// and encoding rows overlaps with them.
pub(crate) struct RecordSink {
    /// Full batches to the codec thread; `None` once it was stopped.
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    /// Emptied batches coming back, so memory stays bounded.
    spare: mpsc::Receiver<Vec<u8>>,
    codec: Option<JoinHandle<(Pipeline, std::io::Result<()>)>>,
    buf: Vec<u8>,
    rows: u64,
    deletes: u64,
    path: PathBuf,
}

/// Batches of encoded records waiting for the codec thread; with the one
/// it works on and the one being filled, at most this many plus two
/// batches (of about [`FLUSH_AT`] bytes) exist at a time.
const IN_FLIGHT: usize = 4;

impl RecordSink {
    /// Starts the codec thread over `pipeline`.
    fn start(mut pipeline: Pipeline, path: PathBuf) -> Result<RecordSink> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (spare_tx, spare) = mpsc::channel();
        let codec = std::thread::Builder::new()
            .name("dm-backup-codec".into())
            .spawn(move || {
                for mut batch in rx {
                    if let Err(e) = pipeline.write_all(&batch) {
                        // Dropping `rx` makes the next send fail.
                        return (pipeline, Err(e));
                    }
                    batch.clear();
                    let _ = spare_tx.send(batch);
                }
                (pipeline, Ok(()))
            })
            .map_err(|e| Error::Io {
                path: path.clone(),
                source: e,
            })?;
        Ok(RecordSink {
            tx: Some(tx),
            spare,
            codec: Some(codec),
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            rows: 0,
            deletes: 0,
            path,
        })
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::Io {
            path: self.path.clone(),
            source: e,
        }
    }

    fn maybe_flush(&mut self) -> Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the current batch to the codec thread.
    fn flush(&mut self) -> Result<()> {
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(FLUSH_AT + 4096));
        let batch = std::mem::replace(&mut self.buf, next);
        if let Some(tx) = &self.tx {
            if tx.send(batch).is_ok() {
                return Ok(());
            }
        }
        // The codec thread stopped on an error: report it.
        self.stop().map(drop)?;
        Err(self.io(std::io::Error::other("the backup codec thread stopped")))
    }

    /// Writes what is left and gives the pipeline back, ready to finish.
    fn into_pipeline(mut self) -> Result<Pipeline> {
        if !self.buf.is_empty() {
            self.flush()?;
        }
        self.stop()
    }

    /// Stops the codec thread and returns its pipeline, or the error it
    /// stopped on.
    fn stop(&mut self) -> Result<Pipeline> {
        drop(self.tx.take());
        let Some(codec) = self.codec.take() else {
            return Err(self.io(std::io::Error::other("the backup codec thread stopped")));
        };
        match codec.join() {
            Ok((p, Ok(()))) => Ok(p),
            Ok((_, Err(e))) => Err(self.io(e)),
            Err(_) => Err(self.io(std::io::Error::other("the backup codec thread panicked"))),
        }
    }

    /// Writes the first `ncols` values of a SQLite row.
    pub(crate) fn row(&mut self, row: &Row<'_>, ncols: usize, sql: &str) -> Result<()> {
        encoding::begin_row(&mut self.buf);
        for i in 0..ncols {
            let v = row.get_ref(i).map_err(|e| Error::sql(sql, e))?;
            encoding::put_value_ref(&mut self.buf, v);
        }
        self.rows += 1;
        self.maybe_flush()
    }

    /// Writes a row of owned values.
    pub(crate) fn row_values(&mut self, values: &[Value]) -> Result<()> {
        encoding::begin_row(&mut self.buf);
        for v in values {
            encoding::put_value(&mut self.buf, v);
        }
        self.rows += 1;
        self.maybe_flush()
    }

    /// Writes a delete record for an encoded key.
    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<()> {
        encoding::put_delete(&mut self.buf, key);
        self.deletes += 1;
        self.maybe_flush()
    }
}

impl Drop for RecordSink {
    /// A backup given up half-way (an error reading the table) still waits
    /// for its codec thread, so nothing writes after the caller returned.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(codec) = self.codec.take() {
            let _ = codec.join();
        }
    }
}

/// Removes the temporary file unless disarmed.
struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Creates the backup directory (mode 0700 on unix, parents too) if
/// missing, then checks it (see `safefs::check_dir`: not a symbolic link,
/// not writable by others, owned by this user or root).
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    if safefs::check_dir(dir)?.is_some() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| Error::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    safefs::existing_dir(dir).map(drop)
}

/// fsyncs a directory so a rename or unlink in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn open_temp(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Writes a backup file. `manifest` carries everything but the counts and
/// hashes, which are filled in here; `body` streams the records and returns
/// the table's row count at backup time.
pub(crate) fn write_backup(
    cfg: &WriterConfig<'_>,
    stem: &str,
    mut manifest: Manifest,
    body: impl FnOnce(&mut RecordSink) -> Result<u64>,
) -> Result<Written> {
    ensure_dir(cfg.dir)?;
    let mut rnd = [0u8; 8];
    codec::random_bytes(&mut rnd).map_err(|f| f.at(cfg.dir))?;
    let tmp_path = cfg.dir.join(format!(
        ".{stem}.{}.{}.tmp",
        std::process::id(),
        format::hex_encode(&rnd)
    ));
    let io = |e: std::io::Error| Error::Io {
        path: tmp_path.clone(),
        source: e,
    };
    let mut file = open_temp(&tmp_path).map_err(io)?;
    let mut guard = TempGuard {
        path: tmp_path.clone(),
        armed: true,
    };
    file.write_all(&[0u8; HEADER_LEN]).map_err(io)?;

    let counting = CountingWriter {
        inner: BufWriter::with_capacity(256 * 1024, file),
        bytes: 0,
    };
    let mut flags = 0u16;
    let enc = match cfg.encryption {
        Some(setup) => {
            flags |= FLAG_ENCRYPTED | FLAG_MAC;
            let mut prefix = [0u8; NONCE_PREFIX_LEN];
            codec::random_bytes(&mut prefix).map_err(|f| f.at(&tmp_path))?;
            let cipher = codec::cipher(&setup.key);
            manifest.encryption = Some(EncryptionMeta {
                algorithm: ENCRYPTION_ALGORITHM.into(),
                segment_size: SEGMENT_SIZE as u32,
                nonce_prefix: format::hex_encode(&prefix),
                key_check: format::hex_encode(&codec::key_check(&cipher, &prefix)),
                key_source: if setup.kdf.is_some() {
                    "passphrase"
                } else {
                    "key"
                }
                .into(),
                kdf: setup.kdf.clone(),
            });
            MaybeEncrypt::Encrypt(Box::new(EncryptWriter::new(counting, cipher, prefix)))
        }
        None => {
            manifest.encryption = None;
            MaybeEncrypt::Plain(counting)
        }
    };
    manifest.compression = cfg.level.map(|level| {
        flags |= FLAG_GZIP;
        CompressionMeta {
            algorithm: "gzip".into(),
            level,
        }
    });
    let mut sink = RecordSink::start(
        HashingWriter::new(MaybeGzip::new(enc, cfg.level)),
        tmp_path.clone(),
    )?;

    let table_rows = body(&mut sink)?;

    encoding::put_end(&mut sink.buf, sink.rows, sink.deletes);
    let (rows, deletes) = (sink.rows, sink.deletes);
    let (gz, sha, plain_bytes) = sink.into_pipeline()?.finish();
    let enc = gz.finish().map_err(io)?;
    manifest.row_count = rows;
    manifest.deleted_count = deletes;
    manifest.table_row_count = table_rows;
    manifest.payload_sha256 = format::hex_encode(&sha);
    manifest.payload_plain_bytes = plain_bytes;
    let manifest_json = serde_json::to_vec(&manifest).map_err(|e| {
        Error::backup(
            &tmp_path,
            BackupErrorKind::Write,
            format!("cannot serialise manifest: {e}"),
        )
    })?;
    if manifest_json.len() > MAX_MANIFEST_LEN as usize {
        return Err(Error::backup(
            &tmp_path,
            BackupErrorKind::Write,
            format!(
                "manifest is {} bytes, more than {MAX_MANIFEST_LEN}",
                manifest_json.len()
            ),
        ));
    }
    let aad: [u8; 32] = Sha256::digest(&manifest_json).into();
    let counting = enc.finish(&aad).map_err(io)?;
    let payload_len = counting.bytes;
    let mut file = counting
        .inner
        .into_inner()
        .map_err(|e| io(e.into_error()))?;
    file.write_all(&manifest_json).map_err(io)?;
    let header = Header {
        flags,
        manifest_len: manifest_json.len() as u32,
        payload_len,
    };
    let header_bytes = header.encode(&manifest_json);
    // With a key: the MAC over header and manifest, after the manifest.
    let mac_len = match cfg.encryption {
        Some(setup) => {
            let mac = codec::backup_mac(&codec::mac_key(&setup.key), &header_bytes, &manifest_json);
            file.write_all(&mac).map_err(io)?;
            mac.len() as u64
        }
        None => 0,
    };
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(&header_bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);

    // Pick a free final name; the caller holds the migration lock, so the
    // check-then-rename window is not contended by other writers.
    let mut n = 1u32;
    let final_path = loop {
        let name = if n == 1 {
            format!("{stem}.{}", format::EXTENSION)
        } else {
            format!("{stem}-{n}.{}", format::EXTENSION)
        };
        let p = cfg.dir.join(name);
        // `symlink_metadata`: any entry at the name is skipped, a dangling
        // symbolic link included (`exists` would follow it).
        if fs::symlink_metadata(&p).is_err() {
            break p;
        }
        n += 1;
    };
    fs::rename(&tmp_path, &final_path).map_err(io)?;
    guard.armed = false;
    sync_dir(cfg.dir)?;

    Ok(Written {
        path: final_path,
        bytes: HEADER_LEN as u64 + payload_len + manifest_json.len() as u64 + mac_len,
        checksum: header_bytes[32..].try_into().unwrap_or([0; 32]),
        authenticated: mac_len > 0,
        manifest,
    })
}
