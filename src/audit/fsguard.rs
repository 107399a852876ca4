//! Files in a directory that someone else may be able to write.
//!
//! The audit log and the run markers live beside the database, and the
//! engine often runs as root. Whoever can write the database's directory
//! can put anything at those names: a symbolic link to `/etc/passwd`, a
//! hard link to a root-owned file, a FIFO, a file of their own. They must
//! gain nothing beyond the database, so the engine never follows a link
//! there, never opens a FIFO or a device there, and appends only to a file
//! that is its own: a regular file with one name, owned by the effective
//! uid, writable by nobody else.
//!
//! Every check is made on the open descriptor (`fstat`), after an open with
//! `O_NOFOLLOW | O_NONBLOCK`, so swapping the file between a check and the
//! write gains nothing. A `symlink_metadata` before opening only keeps the
//! engine from opening a FIFO or a device at all.

use std::fs::{File, FileType, Metadata};
use std::path::Path;

/// Why a directory entry of this type is refused: a symbolic link or
/// anything but a regular file. None for a regular file.
pub(super) fn kind_refusal(file_type: FileType) -> Option<String> {
    if file_type.is_symlink() {
        return Some("is a symbolic link (never followed)".into());
    }
    if file_type.is_file() {
        return None;
    }
    Some(format!(
        "is not a regular file (a {})",
        kind_name(file_type)
    ))
}

#[cfg(unix)]
fn kind_name(file_type: FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn kind_name(file_type: FileType) -> &'static str {
    if file_type.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

/// The refusal of `path` as it is now in its directory (not followed), if
/// it exists and is not a regular file.
pub(super) fn path_refusal(path: &Path) -> Option<String> {
    std::fs::symlink_metadata(path)
        .ok()
        .and_then(|meta| kind_refusal(meta.file_type()))
}

/// Why an open file is not one the engine may append to or read as its
/// own. Checked on the descriptor (`fstat`): a regular file with a single
/// name; with `owned`, also owned by the effective uid and writable by
/// neither group nor others.
pub(super) fn open_file_refusal(meta: &Metadata, owned: bool) -> Option<String> {
    if let Some(refusal) = kind_refusal(meta.file_type()) {
        return Some(refusal);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if owned {
            let euid = effective_uid();
            if meta.uid() != euid {
                return Some(format!(
                    "is owned by uid {}, not by this process (uid {euid})",
                    meta.uid()
                ));
            }
            let mode = meta.mode() & 0o7777;
            if mode & 0o002 != 0 {
                return Some(format!("is writable by others (mode {mode:04o})"));
            }
            if mode & 0o020 != 0 {
                return Some(format!(
                    "is writable by its group, not only its owner (mode {mode:04o})"
                ));
            }
        }
        if meta.nlink() > 1 {
            return Some(format!(
                "has {} hard links (another name may be outside this directory)",
                meta.nlink()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = owned;
    None
}

#[cfg(unix)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Flags for every open of a file beside the database: never through a
/// symbolic link (`ELOOP` instead), never blocking on a FIFO, never taking
/// a terminal as the controlling one.
#[cfg(unix)]
pub(super) const SAFE_OPEN_FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;

/// The text of a failed open: the refusal when the path is a symbolic link
/// or not a regular file (`ELOOP`, `ENXIO`, ... from the flags above), the
/// OS error otherwise.
pub(super) fn open_error(path: &Path, error: &std::io::Error) -> String {
    match path_refusal(path) {
        Some(refusal) => format!("refused: it {refusal}"),
        None => error.to_string(),
    }
}

/// Opens the audit log at `path` for appending, creating it (mode 0600)
/// when missing. Refused (with the reason) when it is a symbolic link, not
/// a regular file, has another name, is owned by another uid or is writable
/// by group or others.
pub(super) fn open_log_for_append(path: &Path) -> Result<File, String> {
    // A FIFO or a device is never even opened (an open can block or act).
    if let Some(refusal) = path_refusal(path) {
        return Err(format!("refused: it {refusal}"));
    }
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(SAFE_OPEN_FLAGS);
    }
    let file = options.open(path).map_err(|e| open_error(path, &e))?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if let Some(refusal) = open_file_refusal(&meta, true) {
        return Err(format!("refused: it {refusal}"));
    }
    #[cfg(unix)]
    clear_nonblock(&file).map_err(|e| e.to_string())?;
    Ok(file)
}

/// Why [`open_for_read`] gave no file.
#[derive(Debug)]
pub(super) enum ReadOpenError {
    /// The path holds something the engine does not open: a symbolic
    /// link, a FIFO, a directory, a file with several names (the reason).
    Refused(String),
    /// The open itself failed (missing file, permissions, ...).
    Io(std::io::Error),
}

impl ReadOpenError {
    /// As an I/O error (a refusal is `InvalidInput`, with its reason).
    pub(super) fn into_io(self) -> std::io::Error {
        match self {
            ReadOpenError::Refused(refusal) => std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("refused: it {refusal}"),
            ),
            ReadOpenError::Io(e) => e,
        }
    }
}

/// Opens an existing file beside the database for reading, with the same
/// flags, and refuses it unless it is a regular file with a single name
/// (ownership is not checked: a reader trusts nothing it reads).
pub(super) fn open_for_read(path: &Path) -> Result<File, ReadOpenError> {
    if let Some(refusal) = path_refusal(path) {
        return Err(ReadOpenError::Refused(refusal));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(SAFE_OPEN_FLAGS);
    }
    let file = options.open(path).map_err(|e| match path_refusal(path) {
        Some(refusal) => ReadOpenError::Refused(refusal),
        None => ReadOpenError::Io(e),
    })?;
    let meta = file.metadata().map_err(ReadOpenError::Io)?;
    if let Some(refusal) = open_file_refusal(&meta, false) {
        return Err(ReadOpenError::Refused(refusal));
    }
    #[cfg(unix)]
    clear_nonblock(&file).map_err(ReadOpenError::Io)?;
    Ok(file)
}

/// Turns `O_NONBLOCK` off again once the file is known to be regular (it
/// only guarded the open).
#[cfg(unix)]
fn clear_nonblock(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` keeps open; F_GETFL/F_SETFL take
    // and return plain integers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_fresh_log_is_created_private_and_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        open_log_for_append(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        open_log_for_append(&path).expect("its own file is accepted again");
    }

    #[test]
    fn links_and_loose_modes_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_log_for_append(&link).unwrap_err();
        assert!(err.contains("is a symbolic link"), "{err}");
        // A dangling link is not created through either.
        let dangling = dir.path().join("dangling.jsonl");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let err = open_log_for_append(&dangling).unwrap_err();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(!dir.path().join("nowhere").exists());

        let hard = dir.path().join("hard.jsonl");
        std::fs::hard_link(&target, &hard).unwrap();
        let err = open_log_for_append(&hard).unwrap_err();
        assert!(err.contains("has 2 hard links"), "{err}");

        let loose = dir.path().join("loose.jsonl");
        std::fs::write(&loose, b"").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o620)).unwrap();
        let err = open_log_for_append(&loose).unwrap_err();
        assert!(err.contains("writable by its group"), "{err}");
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o606)).unwrap();
        let err = open_log_for_append(&loose).unwrap_err();
        assert!(err.contains("is writable by others (mode 0606)"), "{err}");

        let err = open_log_for_append(dir.path()).unwrap_err();
        assert!(err.contains("is not a regular file (a directory)"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn reading_refuses_links_but_not_other_owners() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_for_read(&link).unwrap_err().into_io();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666)).unwrap();
        open_for_read(&target).expect("loose modes do not matter to a reader");
    }
}
