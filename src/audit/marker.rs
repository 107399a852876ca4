//! Interrupted-run detection: a run marker file beside the database for
//! the duration of a run, and cleanup of stale temporary files.
//!
//! `tabMigrationHistory` cannot show a run that was killed: its rows are
//! written in the run's transaction, which SQLite rolls back (hot journal)
//! when the process dies. So a run also leaves a marker file,
//! `<db file name>.dm-run.<pid>-<nanos>.json`, created by
//! [`RunMarker::begin`] before `BEGIN IMMEDIATE` and removed by
//! [`RunMarker::finish`] (or on drop) after COMMIT or ROLLBACK.
//!
//! Each run has its own marker, so concurrent starts never touch each
//! other's. A live run holds an exclusive advisory lock (`flock`) on its
//! marker; the kernel drops the lock when the process dies, however it
//! dies. A marker whose lock can be taken therefore belongs to a dead run:
//! [`stale_runs`] reports exactly those, and holding their lock while
//! reporting and removing them means two processes never report the same
//! interrupted run. (PIDs are recorded for the operator but not trusted for
//! liveness: they are reused.) On platforms without `flock` no marker is
//! ever reported stale.
//!
//! Whoever can write the database's directory can put anything at a
//! marker's name. A marker is created with `O_CREAT | O_EXCL |
//! O_NOFOLLOW` and renamed into place only when nothing is at its name;
//! a scan opens candidates with `O_NOFOLLOW | O_NONBLOCK` and reads only
//! regular files with a single name, from the open descriptor. Anything
//! else (a symbolic link, a FIFO, a directory, a hard link) is refused:
//! reported by [`scan_markers`], never followed, opened, read or removed.
//! [`clean_temp_files`] removes entries of the directory it is given, by
//! name relative to that directory, and never through a symbolic link.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::fsguard;
use crate::error::{Error, Result};
pub use crate::events::RunInfo;

/// What a marker's file name holds between the database file name and the
/// run id: `app.db` → `app.db.dm-run.<pid>-<nanos>.json`.
pub const MARKER_INFIX: &str = ".dm-run.";

/// The marker of a run in progress. Created by [`RunMarker::begin`];
/// removed by [`RunMarker::finish`] or, failing that, when dropped.
#[derive(Debug)]
pub struct RunMarker {
    path: PathBuf,
    #[cfg_attr(not(test), allow(dead_code))]
    info: RunInfo,
    /// Holds the run's lock on the marker; closing it releases the lock.
    lock: Option<File>,
}

impl RunMarker {
    /// Writes and locks this run's marker beside the database at `db_path`.
    /// Call before taking the write lock. An error (for example a read-only
    /// directory) means only that this run cannot be detected if it is
    /// interrupted: callers should warn and go on.
    ///
    /// Nothing is ever written through a symbolic link: the marker is
    /// created under a fresh temporary name (`O_EXCL`, `O_NOFOLLOW`), and
    /// anything already at either name (a link, a FIFO, a file) is refused
    /// with an error naming the reason.
    pub fn begin(db_path: &Path) -> Result<RunMarker> {
        let pid = std::process::id();
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        RunMarker::begin_as(db_path, format!("{pid}-{nanos}"))
    }

    /// [`RunMarker::begin`] with a given run id.
    fn begin_as(db_path: &Path, run_id: String) -> Result<RunMarker> {
        let (dir, name) = split(db_path)?;
        let pid = std::process::id();
        let info = RunInfo {
            run_id,
            pid,
            started: crate::history::store::now(),
            database: db_path.display().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let path = dir.join(format!("{name}{MARKER_INFIX}{}.json", info.run_id));
        // Written and locked under a temporary name, then renamed: a
        // detector never sees the final name unlocked while this run lives.
        let tmp = tmp_name(&path);
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| Error::Io { path: p, source }
        };
        let refused = |p: &Path, refusal: String| Error::Io {
            path: p.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("refused: it {refusal}"),
            ),
        };
        let mut options = OpenOptions::new();
        // create_new is O_CREAT | O_EXCL: it fails on anything already at
        // the name, a dangling symbolic link included; O_NOFOLLOW says so.
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600).custom_flags(fsguard::SAFE_OPEN_FLAGS);
        }
        let mut file = options
            .open(&tmp)
            .map_err(|e| match fsguard::path_refusal(&tmp) {
                Some(refusal) => refused(&tmp, refusal),
                None => io(&tmp)(e),
            })?;
        let written = try_lock(&file)
            .and_then(|locked| {
                if locked {
                    Ok(())
                } else {
                    Err(std::io::Error::other("a fresh marker file is locked"))
                }
            })
            .and_then(|()| {
                let text = serde_json::to_vec_pretty(&info).map_err(std::io::Error::other)?;
                file.write_all(&text)
            })
            .map_err(io(&tmp))
            .and_then(|()| {
                // rename never follows a link at the target name, it would
                // replace it; but nothing belongs at a fresh run's name, so
                // whatever is there is refused, not replaced.
                match std::fs::symlink_metadata(&path) {
                    Ok(meta) => Err(refused(
                        &path,
                        fsguard::kind_refusal(meta.file_type())
                            .unwrap_or_else(|| "already exists".into()),
                    )),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        std::fs::rename(&tmp, &path).map_err(io(&path))
                    }
                    Err(e) => Err(io(&path)(e)),
                }
            });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(RunMarker {
            path,
            info,
            lock: Some(file),
        })
    }

    /// The marker file.
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the marker records.
    #[cfg(test)]
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// Ends the run: removes the marker, then releases its lock. Call after
    /// COMMIT or ROLLBACK. An error leaves a marker that the next run will
    /// report as interrupted (a false alarm, never a missed one).
    pub fn finish(mut self) -> Result<()> {
        let result = std::fs::remove_file(&self.path).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        });
        self.lock = None;
        result
    }

    /// The first interrupted run of the database at `db_path` (oldest
    /// first), if any; see [`stale_runs`].
    #[cfg(test)]
    pub fn detect_stale(db_path: &Path) -> Option<StaleRun> {
        stale_runs(db_path).into_iter().next()
    }
}

impl Drop for RunMarker {
    /// A run that returns (even by an error or a panic that unwinds) has
    /// ended: its transaction was committed or rolled back. Only a process
    /// that dies leaves its marker.
    fn drop(&mut self) {
        if self.lock.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A run that started and never finished: its marker is still there and
/// no live process holds it. While this value lives, this process holds
/// the marker's lock, so no other process reports the same run.
#[derive(Debug)]
#[non_exhaustive]
pub struct StaleRun {
    /// The marker file left behind.
    pub marker: PathBuf,
    /// What it records (None when it is unreadable, e.g. the run died while
    /// writing it).
    pub info: Option<RunInfo>,
    lock: File,
}

impl StaleRun {
    /// Details for the audit entry ([`crate::audit::Action::InterruptedRunDetected`]).
    pub fn details(&self) -> Value {
        json!({
            "marker": self.marker.display().to_string(),
            "run_id": self.info.as_ref().map(|i| i.run_id.clone()),
            "pid": self.info.as_ref().map(|i| i.pid),
            "started": self.info.as_ref().map(|i| i.started.clone()),
            "version": self.info.as_ref().map(|i| i.version.clone()),
        })
    }

    /// One line for the run's output.
    pub fn describe(&self) -> String {
        match &self.info {
            Some(i) => format!(
                "an earlier run (pid {}, started {}) did not finish; its transaction was rolled back by SQLite",
                i.pid, i.started
            ),
            None => format!(
                "an earlier run did not finish (unreadable marker {})",
                self.marker.display()
            ),
        }
    }

    /// Removes the marker (after reporting it).
    pub fn clear(self) -> Result<()> {
        let result = match std::fs::remove_file(&self.marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
                path: self.marker.clone(),
                source: e,
            }),
            _ => Ok(()),
        };
        drop(self.lock);
        result
    }
}

/// Every interrupted run of the database at `db_path`, oldest first:
/// markers (and marker temporaries) beside it whose lock no live process
/// holds. Best effort: an unreadable directory gives none. Entries that
/// are not regular files with one name (symbolic links, FIFOs, directories,
/// hard links) are refused and skipped.
pub fn stale_runs(db_path: &Path) -> Vec<StaleRun> {
    scan_markers(db_path).stale
}

/// Something at a run marker's name that is not a marker: a symbolic link,
/// a FIFO, a directory, a file with several names. Never followed, opened,
/// read or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedMarker {
    /// The entry beside the database.
    pub path: PathBuf,
    /// Why it was refused (`is a symbolic link (never followed)`, ...).
    pub reason: String,
}

impl RefusedMarker {
    /// One line for the run's output.
    pub fn describe(&self) -> String {
        format!(
            "run marker {} refused: it {}",
            self.path.display(),
            self.reason
        )
    }
}

/// What [`scan_markers`] found beside a database.
#[derive(Debug, Default)]
pub struct MarkerScan {
    /// Interrupted runs, oldest first (as [`stale_runs`]).
    pub stale: Vec<StaleRun>,
    /// Entries named like markers that were refused, by path.
    pub refused: Vec<RefusedMarker>,
}

/// The markers beside the database at `db_path`: interrupted runs (see
/// [`stale_runs`]), and entries named like markers that are refused because
/// whoever can write the directory may have put them there (a symbolic link
/// to a file elsewhere, a FIFO that would block an open, a directory, a
/// hard link). A candidate is opened with `O_NOFOLLOW | O_NONBLOCK` and
/// read from its descriptor (at most 64 KiB) only when `fstat` shows a
/// regular file with one name. Best effort: an unreadable directory gives
/// nothing.
pub fn scan_markers(db_path: &Path) -> MarkerScan {
    let mut scan = MarkerScan::default();
    let Ok((dir, name)) = split(db_path) else {
        return scan;
    };
    let prefix = format!("{name}{MARKER_INFIX}");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return scan;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if !file_name.starts_with(&prefix)
            || !(file_name.ends_with(".json") || file_name.ends_with(".json.tmp"))
        {
            continue;
        }
        let path = entry.path();
        let file = match fsguard::open_for_read(&path) {
            Ok(file) => file,
            Err(fsguard::ReadOpenError::Refused(reason)) => {
                scan.refused.push(RefusedMarker { path, reason });
                continue;
            }
            // Gone meanwhile (a run finished), unreadable: not ours to judge.
            Err(fsguard::ReadOpenError::Io(_)) => continue,
        };
        if !matches!(try_lock(&file), Ok(true)) || !still_at(&file, &path) {
            continue;
        }
        let mut bytes = Vec::new();
        let info = (&file)
            .take(MAX_MARKER_BYTES)
            .read_to_end(&mut bytes)
            .ok()
            .and_then(|_| serde_json::from_slice::<RunInfo>(&bytes).ok());
        scan.stale.push(StaleRun {
            marker: path,
            info,
            lock: file,
        });
    }
    scan.stale.sort_by(|a, b| {
        let key = |s: &StaleRun| s.info.as_ref().map(|i| i.started.clone());
        key(a).cmp(&key(b)).then_with(|| a.marker.cmp(&b.marker))
    });
    scan.refused.sort_by(|a, b| a.path.cmp(&b.path));
    scan
}

/// A marker is a few hundred bytes; more than this is not one.
const MAX_MARKER_BYTES: u64 = 64 * 1024;

/// Removes regular files in `dir` (not below it) whose names end with
/// `suffix` and that were last modified at least `min_age` ago; returns
/// the removed paths. Symbolic links and directories are left alone; a
/// missing directory gives an empty list.
///
/// Nothing outside `dir` is ever removed: when `dir` itself is a symbolic
/// link the cleanup is refused (an error naming the reason), and on Unix
/// each entry is checked and removed relative to the directory opened with
/// `O_NOFOLLOW` (`fstatat` without following, `unlinkat`), so a directory
/// swapped for a link meanwhile redirects nothing.
///
/// A temporary file may belong to a run in progress: call this while
/// holding the database's write lock (runs write their temporaries under
/// it), or with a `min_age` longer than any run.
pub fn clean_temp_files(dir: &Path, suffix: &str, min_age: Duration) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let is_link = || std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    let refused = || {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "refused: it is a symbolic link (never followed); temporary files are only \
             removed from a real directory",
        ))
    };
    if is_link() {
        return Err(refused());
    }
    let handle = match TempDir::open(dir) {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        // Swapped for a link since the check (O_NOFOLLOW: ELOOP).
        Err(_) if is_link() => return Err(refused()),
        Err(e) => return Err(io(e)),
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let file_name = entry.file_name();
        let matches_suffix = file_name
            .to_str()
            .is_some_and(|n| n.ends_with(suffix) && n.len() > suffix.len());
        if !matches_suffix {
            continue;
        }
        // The listing only names candidates: what is checked and removed is
        // the entry of that name in the directory `handle` holds open.
        let Some(modified) = handle.regular_file_mtime(&file_name) else {
            continue;
        };
        let old_enough =
            now.duration_since(modified).is_ok_and(|age| age >= min_age) || min_age.is_zero();
        if !old_enough {
            continue;
        }
        let path = dir.join(&file_name);
        match handle.remove(&file_name) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path, source }),
        }
    }
    removed.sort();
    Ok(removed)
}

/// The directory [`clean_temp_files`] cleans, held open: entries are
/// looked at and removed relative to it, never by a path that a symbolic
/// link could redirect.
#[cfg(unix)]
struct TempDir(File);

#[cfg(unix)]
impl TempDir {
    fn open(dir: &Path) -> std::io::Result<TempDir> {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | fsguard::SAFE_OPEN_FLAGS)
            .open(dir)
            .map(TempDir)
    }

    fn c_name(name: &std::ffi::OsStr) -> std::io::Result<std::ffi::CString> {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::CString::new(name.as_bytes()).map_err(std::io::Error::other)
    }

    /// The modification time of the entry `name` if it is a regular file
    /// (not following a symbolic link); None otherwise or when it is gone.
    fn regular_file_mtime(&self, name: &std::ffi::OsStr) -> Option<SystemTime> {
        use std::os::fd::AsRawFd;
        let c_name = TempDir::c_name(name).ok()?;
        // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: the descriptor is open for the life of `self`, `c_name`
        // is a NUL-terminated string and `st` a valid, writable stat.
        let rc = unsafe {
            libc::fstatat(
                self.0.as_raw_fd(),
                c_name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
            return None;
        }
        let secs = u64::try_from(st.st_mtime).ok()?;
        let nanos = u32::try_from(st.st_mtime_nsec).unwrap_or(0);
        SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
    }

    /// Removes the entry `name` (unlinkat: a symbolic link swapped in
    /// meanwhile is removed itself, never its target; a directory is not
    /// removed).
    fn remove(&self, name: &std::ffi::OsStr) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let c_name = TempDir::c_name(name)?;
        // SAFETY: as in `regular_file_mtime`.
        let rc = unsafe { libc::unlinkat(self.0.as_raw_fd(), c_name.as_ptr(), 0) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// Without `*at` calls: by path, after `symlink_metadata`.
#[cfg(not(unix))]
struct TempDir(PathBuf);

#[cfg(not(unix))]
impl TempDir {
    fn open(dir: &Path) -> std::io::Result<TempDir> {
        Ok(TempDir(dir.to_path_buf()))
    }

    fn regular_file_mtime(&self, name: &std::ffi::OsStr) -> Option<SystemTime> {
        let meta = std::fs::symlink_metadata(self.0.join(name)).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        meta.modified().ok()
    }

    fn remove(&self, name: &std::ffi::OsStr) -> std::io::Result<()> {
        std::fs::remove_file(self.0.join(name))
    }
}

/// The directory and file name of a database path.
fn split(db_path: &Path) -> Result<(PathBuf, String)> {
    let name = db_path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Io {
            path: db_path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the database path has no UTF-8 file name",
            ),
        })?;
    let dir = match db_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_string()))
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Takes an exclusive advisory lock without waiting: Ok(false) when
/// another open file (this process's or another's) holds it.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for
    // the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Without `flock`, liveness cannot be told: every marker counts as live
/// (never reported stale), and a fresh marker counts as locked.
#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

/// Whether `path` still names the file `file` has open (a detector that
/// locked a marker just removed by another must not report it).
#[cfg(unix)]
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_at(_file: &File, _path: &Path) -> bool {
    false
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn begin_refuses_a_link_at_the_marker_name_and_writes_nothing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let db = dir.path().join("app.db");
        let final_name = dir.path().join("app.db.dm-run.1-2.json");
        std::os::unix::fs::symlink(&target, &final_name).unwrap();
        let err = RunMarker::begin_as(&db, "1-2".into()).unwrap_err();
        let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(text.contains("is a symbolic link"), "{text}");
        assert!(text.contains("app.db.dm-run.1-2.json"), "{text}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(
            std::fs::symlink_metadata(&final_name)
                .unwrap()
                .file_type()
                .is_symlink(),
            "the link is refused, not replaced"
        );
        assert_eq!(
            names(dir.path()),
            ["app.db.dm-run.1-2.json"],
            "no temporary left"
        );

        // A (dangling) link at the temporary name is never created through.
        let tmp_link = dir.path().join("app.db.dm-run.3-4.json.tmp");
        let created = outside.path().join("created");
        std::os::unix::fs::symlink(&created, &tmp_link).unwrap();
        let err = RunMarker::begin_as(&db, "3-4".into()).unwrap_err();
        let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(text.contains("is a symbolic link"), "{text}");
        assert!(!created.exists());
        assert!(!dir.path().join("app.db.dm-run.3-4.json").exists());
    }

    #[test]
    fn a_scan_refuses_links_fifos_directories_and_hard_links() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let info = r#"{"run_id": "9-9", "pid": 9, "started": "2024-01-01T00:00:00Z", "database": "app.db", "version": "0.1.0"}"#;
        let target = outside.path().join("looks-like-a-marker.json");
        std::fs::write(&target, info).unwrap();
        let fifo = outside.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink(&target, dir.path().join("app.db.dm-run.1-1.json")).unwrap();
        std::os::unix::fs::symlink(&fifo, dir.path().join("app.db.dm-run.2-1.json")).unwrap();
        std::fs::create_dir(dir.path().join("app.db.dm-run.3-1.json")).unwrap();
        let hard_target = outside.path().join("hard.json");
        std::fs::write(&hard_target, info).unwrap();
        std::fs::hard_link(&hard_target, dir.path().join("app.db.dm-run.4-1.json")).unwrap();
        let local_fifo = dir.path().join("app.db.dm-run.5-1.json.tmp");
        let c = std::ffi::CString::new(local_fifo.to_str().unwrap()).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

        let scan = scan_markers(&db);
        assert!(scan.stale.is_empty(), "{:?}", scan.stale);
        let reasons: Vec<(String, &str)> = scan
            .refused
            .iter()
            .map(|r| {
                (
                    r.path.file_name().unwrap().to_string_lossy().into_owned(),
                    r.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    "app.db.dm-run.1-1.json".into(),
                    "is a symbolic link (never followed)"
                ),
                (
                    "app.db.dm-run.2-1.json".into(),
                    "is a symbolic link (never followed)"
                ),
                (
                    "app.db.dm-run.3-1.json".into(),
                    "is not a regular file (a directory)"
                ),
                (
                    "app.db.dm-run.4-1.json".into(),
                    "has 2 hard links (another name may be outside this directory)"
                ),
                (
                    "app.db.dm-run.5-1.json.tmp".into(),
                    "is not a regular file (a FIFO)"
                ),
            ]
        );
        assert!(
            scan.refused[0]
                .describe()
                .contains("refused: it is a symbolic link")
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), info);
        assert_eq!(std::fs::read_to_string(&hard_target).unwrap(), info);
        assert_eq!(names(dir.path()).len(), 5, "nothing refused is removed");
    }

    #[test]
    fn temp_cleanup_refuses_a_linked_directory() {
        let base = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious.tmp"), b"keep").unwrap();
        let link = base.path().join("backups");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        let err = clean_temp_files(&link, ".tmp", Duration::ZERO).unwrap_err();
        let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(text.contains("is a symbolic link"), "{text}");
        assert!(outside.path().join("precious.tmp").exists());
    }
}
