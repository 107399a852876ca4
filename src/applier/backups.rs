//! Backup operations that need the database as well as the backup
//! directory: restoring one backup under the write lock, and pruning with
//! the backups history still needs protected.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::MigrationApplier;
use crate::backup::{BackupStrategy, PrunePolicy, PruneReport, RestoreTarget, same_file};
use crate::error::{BackupErrorKind, Error, Result};
use crate::history::store;

/// What [`MigrationApplier::restore_backup`] restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The backup file.
    pub path: PathBuf,
    /// The table the backup was taken from.
    pub table: String,
    /// What the backup holds.
    pub strategy: BackupStrategy,
    /// The table restored into.
    pub target: String,
    /// Rows inserted (full backup) or updated (column backup).
    pub rows: u64,
}

impl MigrationApplier {
    /// Restores one backup file into this database, in one transaction
    /// taken with `BEGIN IMMEDIATE` (the applier's lock timeout applies).
    ///
    /// Only a file inside this applier's backup directory is read. The
    /// whole backup (and its incremental chain) is verified before the
    /// target is touched, and it must come from this database (see
    /// [`crate::BackupManager::restore`]); the write stops if a trigger or
    /// view sits on the engine's tables. Any failure rolls the transaction
    /// back and leaves the database unchanged. Refused with
    /// [`Error::ReadOnly`] on a database this applier can only read.
    pub fn restore_backup(&self, file: &Path, target: RestoreTarget) -> Result<RestoreReport> {
        self.refuse_read_only()?;
        if let RestoreTarget::NewTable(t) = &target {
            if t.trim().is_empty() {
                return Err(Error::config(
                    "target",
                    "a restore into a new table needs a table name",
                ));
            }
        }
        if !file.is_file() {
            return Err(Error::backup(
                file,
                BackupErrorKind::NotABackup,
                "backup file does not exist",
            ));
        }
        let manager = self.backup_manager()?;
        let dir = manager.dir();
        let parent = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let inside = match (std::fs::canonicalize(parent), std::fs::canonicalize(dir)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !inside {
            return Err(Error::backup(
                file,
                BackupErrorKind::UnsafePath,
                format!(
                    "is not in the backup directory {} (copy it there, or name the \
                     directory it is in as the backup directory)",
                    dir.display()
                ),
            ));
        }
        // The manifest (header checksum checked) tells the source table.
        let Some(info) = manager
            .list()?
            .into_iter()
            .find(|i| same_file(&i.path, file))
        else {
            // Unreadable: the reason the scan found, or verify's.
            return Err(manager
                .list_unreadable()?
                .into_iter()
                .find(|(p, _)| same_file(p, file))
                .map(|(_, e)| e)
                .unwrap_or_else(|| match manager.verify(file) {
                    Err(e) => e,
                    Ok(_) => Error::backup(
                        file,
                        BackupErrorKind::NotABackup,
                        "not a backup file (expected a .dmbak file)",
                    ),
                }));
        };
        let into = match &target {
            RestoreTarget::NewTable(t) => t.clone(),
            RestoreTarget::Original => info.table.clone(),
        };
        let rows = self.write_locked(|conn| {
            store::check_engine_tables(conn)?;
            Ok((manager.restore(conn, file, target)?, true))
        })?;
        Ok(RestoreReport {
            path: file.to_path_buf(),
            table: info.table,
            strategy: info.strategy,
            target: into,
            rows,
        })
    }

    /// Deletes the backups `policy` selects from this applier's backup
    /// directory. A backup that a `completed` migration in history names is
    /// protected (it is what rolling that migration back restores): kept
    /// unless `force`. A base that a kept incremental backup depends on is
    /// always kept, and an unreadable file is never deleted. The report
    /// says what was deleted and what was kept, and why.
    ///
    /// Holds the database's write lock (`BEGIN IMMEDIATE`, nothing
    /// written) while it selects and deletes: an apply writes its backups
    /// under that lock and completes their history rows before it lets go,
    /// so a prune never sees (and deletes) the backup of a migration that
    /// is still running.
    pub fn prune_backups(&self, policy: PrunePolicy, force: bool) -> Result<PruneReport> {
        let manager = self.backup_manager()?;
        self.write_locked(|_| Ok((self.prune_locked(&manager, policy, force)?, false)))
    }

    fn prune_locked(
        &self,
        manager: &crate::backup::BackupManager,
        policy: PrunePolicy,
        force: bool,
    ) -> Result<PruneReport> {
        let in_use = store::backup_paths_in_use(&self.conn)?;
        // History may name files by a path relative to another working
        // directory: a file of this directory with the same name is
        // protected too.
        let mut protected = in_use.clone();
        protected.extend(
            in_use
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| manager.dir().join(n)),
        );
        manager.prune(policy, &protected, force)
    }
}
