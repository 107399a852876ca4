//! Building a [`MigrationApplier`]: options with fallible `build()`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::execution::retry_busy;
use crate::ident::check_fieldname;

use super::MigrationApplier;

/// A rename hint given to the applier: in `doctype`, column `from` is now `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenameHint {
    /// The DocType.
    pub doctype: String,
    /// The old column name.
    pub from: String,
    /// The new column name.
    pub to: String,
}

/// Options of a [`MigrationApplier`].
#[derive(Debug, Clone)]
pub struct ApplierOptions {
    /// Continue with the other DocTypes when one fails (it is rolled back to
    /// its savepoint and recorded as `failed`). Default: all-or-nothing.
    pub continue_on_error: bool,
    /// Drop columns a DocType no longer declares. Default: keep them (orphans).
    pub drop_orphan_columns: bool,
    /// Let data-loss findings (DL*) through. Default: they block.
    pub allow_data_loss: bool,
    /// Rename hints on top of the fields' `renamed_from`.
    pub renames: Vec<RenameHint>,
    /// SQLite busy timeout for each statement.
    pub busy_timeout: Duration,
    /// How long to wait for the write lock in total before giving up.
    pub lock_timeout: Duration,
    /// Recorded as `applied_by` in history.
    pub applied_by: String,
}

impl Default for ApplierOptions {
    fn default() -> Self {
        ApplierOptions {
            continue_on_error: false,
            drop_orphan_columns: false,
            allow_data_loss: false,
            renames: Vec::new(),
            busy_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(60),
            applied_by: default_applied_by(),
        }
    }
}

fn default_applied_by() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map(|u| format!("{u} (doctype-migrate)"))
        .unwrap_or_else(|_| "doctype-migrate".to_string())
}

/// How to open the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenMode {
    ReadWrite,
    CreateIfMissing,
    ReadOnly,
}

/// Builder for [`MigrationApplier`].
#[derive(Debug, Clone)]
pub struct ApplierBuilder {
    path: PathBuf,
    mode: OpenMode,
    options: ApplierOptions,
}

impl ApplierBuilder {
    pub(super) fn new(path: &Path) -> Self {
        ApplierBuilder {
            path: path.to_path_buf(),
            mode: OpenMode::ReadWrite,
            options: ApplierOptions::default(),
        }
    }

    /// Create the database file if it does not exist (default: it must exist).
    pub fn create_if_missing(mut self, yes: bool) -> Self {
        if yes {
            self.mode = OpenMode::CreateIfMissing;
        } else if self.mode == OpenMode::CreateIfMissing {
            self.mode = OpenMode::ReadWrite;
        }
        self
    }

    /// Open read-only, for planning: the file is never written, and a
    /// missing file plans against an empty database.
    pub fn read_only(mut self, yes: bool) -> Self {
        self.mode = if yes {
            OpenMode::ReadOnly
        } else {
            OpenMode::ReadWrite
        };
        self
    }

    /// See [`ApplierOptions::continue_on_error`].
    pub fn continue_on_error(mut self, yes: bool) -> Self {
        self.options.continue_on_error = yes;
        self
    }

    /// See [`ApplierOptions::drop_orphan_columns`]. Destroys data in those
    /// columns; only with [`ApplierBuilder::allow_data_loss`] when they hold values.
    pub fn drop_orphan_columns(mut self, yes: bool) -> Self {
        self.options.drop_orphan_columns = yes;
        self
    }

    /// See [`ApplierOptions::allow_data_loss`].
    pub fn allow_data_loss(mut self, yes: bool) -> Self {
        self.options.allow_data_loss = yes;
        self
    }

    /// Adds a rename hint: in `doctype`, column `from` was renamed to `to`.
    pub fn rename_column(mut self, doctype: &str, from: &str, to: &str) -> Self {
        self.options.renames.push(RenameHint {
            doctype: doctype.to_string(),
            from: from.to_string(),
            to: to.to_string(),
        });
        self
    }

    /// See [`ApplierOptions::busy_timeout`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.options.busy_timeout = timeout;
        self
    }

    /// See [`ApplierOptions::lock_timeout`].
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.options.lock_timeout = timeout;
        self
    }

    /// See [`ApplierOptions::applied_by`].
    pub fn applied_by(mut self, who: &str) -> Self {
        self.options.applied_by = who.to_string();
        self
    }

    /// Checks the options and opens the database.
    pub fn build(self) -> Result<MigrationApplier> {
        for hint in &self.options.renames {
            for name in [&hint.from, &hint.to] {
                check_fieldname(name).map_err(|m| {
                    Error::Config(format!("rename hint for DocType {:?}: {m}", hint.doctype))
                })?;
            }
            if hint.from.eq_ignore_ascii_case(&hint.to) {
                return Err(Error::Config(format!(
                    "rename hint for DocType {:?} renames {:?} to itself",
                    hint.doctype, hint.from
                )));
            }
        }
        if self.options.lock_timeout.is_zero() {
            return Err(Error::Config(
                "lock_timeout must be greater than zero".into(),
            ));
        }
        let conn = open(&self.path, self.mode)?;
        conn.busy_timeout(self.options.busy_timeout)
            .map_err(|source| Error::open(&self.path, source))?;
        // Opening is lazy: read the schema once so that a file that is not a
        // database fails here, with its path, before anything else. Another
        // process's long write may hold the file busy: wait within the lock bound.
        retry_busy(&self.path, self.options.lock_timeout, || {
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|source| Error::open(&self.path, source))
        })?;
        Ok(MigrationApplier {
            conn,
            path: self.path,
            options: self.options,
        })
    }
}

fn open(path: &Path, mode: OpenMode) -> Result<Connection> {
    let open_err = |source| Error::open(path, source);
    if path.is_dir() {
        return Err(Error::UnsupportedSchema {
            path: path.to_path_buf(),
            message: "is a directory, not a database file".into(),
        });
    }
    let exists = path.exists();
    let conn = match mode {
        OpenMode::ReadOnly if !exists => Connection::open_in_memory().map_err(open_err)?,
        OpenMode::ReadOnly => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?,
        OpenMode::ReadWrite if !exists => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "database file does not exist",
                ),
            });
        }
        OpenMode::ReadWrite => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?,
        OpenMode::CreateIfMissing => Connection::open(path).map_err(open_err)?,
    };
    Ok(conn)
}
