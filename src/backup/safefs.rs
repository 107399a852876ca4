//! The backup directory and the files in it, as an attacker may have left
//! them.
//!
//! Whoever can drop files into the backup directory must gain nothing
//! beyond the database, so:
//!
//! * the directory itself must be a real directory (not a symbolic link),
//!   not writable by others (`mode & 0o002`), and owned by the effective
//!   uid or by root; the engine creates it with mode 0700;
//! * a backup path is accepted only if it names a regular file directly in
//!   that directory, after canonicalization (so `../`, absolute paths
//!   elsewhere and symbolic links out of the directory are refused);
//! * a FIFO, a device, a socket or a symbolic link is refused from its
//!   `lstat` before any open, and the open itself uses
//!   `O_NOFOLLOW | O_NONBLOCK` and is checked again on the descriptor
//!   (`fstat`: a regular file, the same inode as the one checked), so
//!   swapping the entry between the check and the open gains nothing and
//!   a FIFO never blocks.

use std::fs::{File, FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{BackupErrorKind, Error, Result};

fn refused(path: &Path, message: impl Into<String>) -> Error {
    Error::backup(path, BackupErrorKind::UnsafePath, message)
}

/// What kind of entry a file type is, for messages.
fn kind_name(t: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

#[cfg(unix)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why `meta` (from `lstat` of the backup directory) is not a directory
/// the engine trusts, if it is not.
fn dir_refusal(meta: &Metadata) -> Option<String> {
    let t = meta.file_type();
    if t.is_symlink() {
        return Some(
            "is a symbolic link; give the real directory (a link could be repointed at \
             another directory)"
                .into(),
        );
    }
    if !t.is_dir() {
        return Some(format!("is not a directory (it is {})", kind_name(t)));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode() & 0o7777;
        if mode & 0o002 != 0 {
            return Some(format!(
                "is writable by everyone (mode {mode:04o}); anyone could plant or replace backups \
                 there (chmod o-w it, or use a private directory)"
            ));
        }
        let euid = effective_uid();
        if meta.uid() != euid && meta.uid() != 0 {
            return Some(format!(
                "is owned by uid {}, neither this process's (uid {euid}) nor root's",
                meta.uid()
            ));
        }
    }
    None
}

/// Checks the backup directory (see the module docs) and returns its
/// canonical path. `Ok(None)` when it does not exist.
pub(crate) fn check_dir(dir: &Path) -> Result<Option<PathBuf>> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: e,
            });
        }
    };
    if let Some(why) = dir_refusal(&meta) {
        return Err(refused(dir, format!("backup directory refused: it {why}")));
    }
    std::fs::canonicalize(dir).map(Some).map_err(|e| Error::Io {
        path: dir.to_path_buf(),
        source: e,
    })
}

/// Like [`check_dir`], but a missing directory is an error.
pub(crate) fn existing_dir(dir: &Path) -> Result<PathBuf> {
    check_dir(dir)?.ok_or_else(|| Error::Io {
        path: dir.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::NotFound,
            "the backup directory does not exist",
        ),
    })
}

/// A backup file that passed the path checks: where to open it, and the
/// inode that was checked.
#[derive(Debug, Clone)]
pub(crate) struct CheckedPath {
    /// The canonical path (inside the canonical backup directory).
    pub canonical: PathBuf,
    #[cfg(unix)]
    dev_ino: (u64, u64),
}

/// Accepts `path` only if it is a regular file (not a symbolic link, FIFO,
/// device, socket or directory) directly inside the backup directory
/// `dir`, after canonicalization. A missing file is an `Error::Io` with
/// `NotFound`, so callers can tell "missing" from "refused".
pub(crate) fn check_backup_path(dir: &Path, path: &Path) -> Result<CheckedPath> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let t = meta.file_type();
    if !t.is_file() {
        return Err(refused(
            path,
            format!(
                "refused: it is {}, not a regular file (backups are regular files in the backup directory)",
                kind_name(t)
            ),
        ));
    }
    let canonical_dir = existing_dir(dir)?;
    let canonical = std::fs::canonicalize(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if canonical.parent() != Some(canonical_dir.as_path()) {
        return Err(refused(
            path,
            format!(
                "refused: it is outside the backup directory {} (backups are read only from there)",
                dir.display()
            ),
        ));
    }
    Ok(CheckedPath {
        canonical,
        #[cfg(unix)]
        dev_ino: {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        },
    })
}

/// Opens a checked backup path for reading: `O_NOFOLLOW | O_NONBLOCK`
/// (a FIFO swapped in never blocks, a link swapped in is not followed),
/// then `fstat` must show a regular file, the same one that was checked.
pub(crate) fn open_checked(shown: &Path, checked: &CheckedPath) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(&checked.canonical).map_err(|e| {
        if e.raw_os_error() == Some(libc_eloop()) {
            refused(shown, "refused: it was replaced by a symbolic link")
        } else {
            Error::Io {
                path: shown.to_path_buf(),
                source: e,
            }
        }
    })?;
    let meta = file.metadata().map_err(|e| Error::Io {
        path: shown.to_path_buf(),
        source: e,
    })?;
    if !meta.file_type().is_file() {
        return Err(refused(
            shown,
            format!(
                "refused: it is {}, not a regular file",
                kind_name(meta.file_type())
            ),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (meta.dev(), meta.ino()) != checked.dev_ino {
            return Err(refused(
                shown,
                "refused: the file was replaced while it was being opened",
            ));
        }
    }
    Ok(file)
}

#[cfg(unix)]
fn libc_eloop() -> i32 {
    libc::ELOOP
}

#[cfg(not(unix))]
fn libc_eloop() -> i32 {
    -1
}

/// Whether a directory entry (not followed) is a regular file.
pub(crate) fn is_regular_entry(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn directory_checks() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("b");
        assert!(check_dir(&dir).unwrap().is_none());
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_dir(&dir).unwrap().is_some());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_dir(&dir).unwrap_err();
        assert_eq!(err.backup_kind(), Some(BackupErrorKind::UnsafePath));
        let err = err.to_string();
        assert!(err.contains("writable by everyone"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let err = check_dir(&link).unwrap_err();
        assert_eq!(err.backup_kind(), Some(BackupErrorKind::UnsafePath));
        let err = err.to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn only_regular_files_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("b");
        std::fs::create_dir(&dir).unwrap();
        let inside = dir.join("x.dmbak");
        std::fs::write(&inside, b"x").unwrap();
        let c = check_backup_path(&dir, &inside).unwrap();
        open_checked(&inside, &c).unwrap();
        // Through `..`: still inside.
        let dotted = dir.join("..").join("b").join("x.dmbak");
        check_backup_path(&dir, &dotted).unwrap();

        let outside = tmp.path().join("y.dmbak");
        std::fs::write(&outside, b"y").unwrap();
        let err = check_backup_path(&dir, &outside).unwrap_err();
        assert_eq!(err.backup_kind(), Some(BackupErrorKind::UnsafePath));
        let err = err.to_string();
        assert!(err.contains("outside the backup directory"), "{err}");
        let link = dir.join("l.dmbak");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let err = check_backup_path(&dir, &link).unwrap_err();
        assert_eq!(err.backup_kind(), Some(BackupErrorKind::UnsafePath));
        let err = err.to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let missing = check_backup_path(&dir, &dir.join("none.dmbak")).unwrap_err();
        assert!(
            matches!(&missing, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
    }
}
