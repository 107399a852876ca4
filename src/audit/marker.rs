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

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// What a marker's file name holds between the database file name and the
/// run id: `app.db` → `app.db.dm-run.<pid>-<nanos>.json`.
pub const MARKER_INFIX: &str = ".dm-run.";

/// The contents of a run marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `<pid>-<nanoseconds since the epoch>`, unique per run.
    pub run_id: String,
    /// The process that ran.
    pub pid: u32,
    /// When the run started (RFC 3339, UTC).
    pub started: String,
    /// The database path as given to the run.
    pub database: String,
    /// The doctype-migrate version that ran.
    pub version: String,
}

/// The marker of a run in progress. Created by [`RunMarker::begin`];
/// removed by [`RunMarker::finish`] or, failing that, when dropped.
#[derive(Debug)]
pub struct RunMarker {
    path: PathBuf,
    info: RunInfo,
    /// Holds the run's lock on the marker; closing it releases the lock.
    lock: Option<File>,
}

impl RunMarker {
    /// Writes and locks this run's marker beside the database at `db_path`.
    /// Call before taking the write lock. An error (for example a read-only
    /// directory) means only that this run cannot be detected if it is
    /// interrupted: callers should warn and go on.
    pub fn begin(db_path: &Path) -> Result<RunMarker> {
        let (dir, name) = split(db_path)?;
        let pid = std::process::id();
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let info = RunInfo {
            run_id: format!("{pid}-{nanos}"),
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
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(io(&tmp))?;
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
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(io(&path)));
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
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the marker records.
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
/// holds. Best effort: an unreadable directory gives none.
pub fn stale_runs(db_path: &Path) -> Vec<StaleRun> {
    let Ok((dir, name)) = split(db_path) else {
        return Vec::new();
    };
    let prefix = format!("{name}{MARKER_INFIX}");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut stale = Vec::new();
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
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if !matches!(try_lock(&file), Ok(true)) || !still_at(&file, &path) {
            continue;
        }
        let info = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<RunInfo>(&bytes).ok());
        stale.push(StaleRun {
            marker: path,
            info,
            lock: file,
        });
    }
    stale.sort_by(|a, b| {
        let key = |s: &StaleRun| s.info.as_ref().map(|i| i.started.clone());
        key(a).cmp(&key(b)).then_with(|| a.marker.cmp(&b.marker))
    });
    stale
}

/// Removes regular files in `dir` (not below it) whose names end with
/// `suffix` and that were last modified at least `min_age` ago; returns
/// the removed paths. Symbolic links and directories are left alone; a
/// missing directory gives an empty list.
///
/// A temporary file may belong to a run in progress: call this while
/// holding the database's write lock (runs write their temporaries under
/// it), or with a `min_age` longer than any run.
pub fn clean_temp_files(dir: &Path, suffix: &str, min_age: Duration) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
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
        let matches_suffix = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(suffix) && n.len() > suffix.len());
        if !matches_suffix {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let old_enough = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= min_age)
            || min_age.is_zero();
        if !meta.file_type().is_file() || !old_enough {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path, source }),
        }
    }
    removed.sort();
    Ok(removed)
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
