//! Listing and pruning the backup directory.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::format;
use super::reader;
use super::safefs;
use super::writer::sync_dir;
use super::{BackupInfo, PrunePolicy};
use crate::error::{Error, Result};

/// Readable backups, and unreadable `.dmbak` files with the reason.
pub(crate) type Scan = (Vec<BackupInfo>, Vec<(PathBuf, Error)>);

/// Reads every `.dmbak` manifest in `dir` (header checksum included, payload
/// not read). Returns the readable backups sorted by table then creation
/// time, and the files that could not be read with the reason.
pub(crate) fn scan(dir: &Path) -> Result<Scan> {
    let io = |e: std::io::Error| Error::Io {
        path: dir.to_path_buf(),
        source: e,
    };
    if safefs::check_dir(dir)?.is_none() {
        return Ok((Vec::new(), Vec::new()));
    }
    let entries = fs::read_dir(dir).map_err(io)?;
    let mut infos = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        let path = entry.map_err(io)?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        // Symbolic links, FIFOs and other non-regular entries are not
        // backups (and are never opened).
        if hidden || !format::is_backup_file(&path) || !safefs::is_regular_entry(&path) {
            continue;
        }
        match open_unauthenticated(dir, &path) {
            Ok(o) => infos.push(BackupInfo::from_opened(&o)),
            Err(e) => errors.push((path, e)),
        }
    }
    infos.sort_by(|a, b| {
        (a.table.as_str(), a.created_at, &a.path).cmp(&(b.table.as_str(), b.created_at, &b.path))
    });
    Ok((infos, errors))
}

/// Header and manifest of a listed file, without a key: the header
/// checksum is checked, the MAC (if any) is not. Listing and pruning
/// decide on this; verify and restore authenticate.
fn open_unauthenticated(dir: &Path, path: &Path) -> Result<reader::Opened> {
    let checked = safefs::check_backup_path(dir, path)?;
    let file = safefs::open_checked(path, &checked)?;
    let raw = reader::open_raw_file(path, file)?;
    Ok(reader::parse(raw)?.0)
}

/// Whether two paths name the same file: equal as given, or equal once
/// canonicalized (history may name a file by another relative path).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// What a prune did, and what its rule selected but kept, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PruneReport {
    /// Files deleted, sorted.
    pub deleted: Vec<PathBuf>,
    /// Files deleted although they were protected (only with `force`).
    pub deleted_protected: Vec<PathBuf>,
    /// Files the rule selected but that were kept because they are
    /// protected (a completed migration names them), without `force`.
    pub kept_protected: Vec<PathBuf>,
    /// Files the rule selected but that were kept because a kept
    /// incremental backup is based on them.
    pub kept_as_base: Vec<PathBuf>,
}

/// The backups `policy` selects before protection and chains are taken
/// into account. `infos` is sorted by table, then creation time (as
/// [`scan`] returns it).
fn select(infos: &[BackupInfo], policy: &PrunePolicy, now: DateTime<Utc>) -> Vec<PathBuf> {
    match policy {
        PrunePolicy::KeepNewest(n) => {
            let mut out = Vec::new();
            for group in infos.chunk_by(|a, b| a.table == b.table) {
                let drop = group.len().saturating_sub(*n);
                out.extend(group[..drop].iter().map(|i| i.path.clone()));
            }
            out
        }
        PrunePolicy::OlderThan(age) => {
            let cutoff = now - *age;
            infos
                .iter()
                .filter(|i| i.created_at < cutoff)
                .map(|i| i.path.clone())
                .collect()
        }
    }
}

/// Deletes the backups `policy` selects, except protected ones (unless
/// `force`) and bases that a kept incremental backup depends on (always).
/// Unreadable files are never deleted.
pub(crate) fn prune(
    dir: &Path,
    policy: &PrunePolicy,
    protected: &[PathBuf],
    force: bool,
    now: DateTime<Utc>,
) -> Result<PruneReport> {
    let (infos, _unreadable) = scan(dir)?;
    let selected = select(&infos, policy, now);
    let is_protected = |p: &Path| protected.iter().any(|q| same_file(p, q));
    let mut report = PruneReport::default();
    let mut doomed: HashSet<PathBuf> = HashSet::new();
    for p in &selected {
        if !force && is_protected(p) {
            report.kept_protected.push(p.clone());
        } else {
            doomed.insert(p.clone());
        }
    }
    // A kept incremental keeps its whole chain.
    loop {
        let mut changed = false;
        for info in &infos {
            if let Some(base) = &info.base {
                if !doomed.contains(&info.path) {
                    changed |= doomed.remove(base);
                }
            }
        }
        if !changed {
            break;
        }
    }
    report.kept_as_base = selected
        .iter()
        .filter(|p| !doomed.contains(*p) && !report.kept_protected.contains(p))
        .cloned()
        .collect();
    let mut deleted: Vec<PathBuf> = doomed.into_iter().collect();
    deleted.sort();
    for p in &deleted {
        fs::remove_file(p).map_err(|e| Error::Io {
            path: p.clone(),
            source: e,
        })?;
    }
    if !deleted.is_empty() {
        sync_dir(dir)?;
    }
    report.deleted_protected = deleted
        .iter()
        .filter(|p| is_protected(p))
        .cloned()
        .collect();
    report.deleted = deleted;
    Ok(report)
}
