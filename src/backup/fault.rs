//! A backup problem found where the file's path is not known (the codec,
//! the header parser, key derivation): its [`BackupErrorKind`] and message.
//! [`Fault::at`] makes it an [`Error::Backup`]. From the payload pipeline,
//! which speaks `io::Error`, it travels as the io error's inner error and is
//! recovered by type ([`Fault::of_io`]), never by its text.

use std::fmt;
use std::io;
use std::path::Path;

use crate::error::{BackupErrorKind, Error};

/// A kind and a message, without a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub kind: BackupErrorKind,
    pub message: String,
}

impl Fault {
    pub(crate) fn new(kind: BackupErrorKind, message: impl Into<String>) -> Self {
        Fault {
            kind,
            message: message.into(),
        }
    }

    /// The backup error for the file at `path`.
    pub(crate) fn at(self, path: &Path) -> Error {
        Error::backup(path, self.kind, self.message)
    }

    /// As an `io::Error` of `kind`, for the `Read` pipeline.
    pub(crate) fn into_io(self, kind: io::ErrorKind) -> io::Error {
        io::Error::new(kind, self)
    }

    /// The fault an `io::Error` carries, if it was made by
    /// [`into_io`](Self::into_io).
    pub(crate) fn of_io(e: &io::Error) -> Option<&Fault> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<Fault>())
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fault {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_survives_the_io_layers_by_type() {
        let f = Fault::new(BackupErrorKind::Truncated, "truncated: x");
        let e = f.clone().into_io(io::ErrorKind::UnexpectedEof);
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(e.to_string(), "truncated: x");
        assert_eq!(Fault::of_io(&e), Some(&f));
        // A plain io error with the same text is not a fault.
        let plain = io::Error::new(io::ErrorKind::UnexpectedEof, "truncated: x");
        assert_eq!(Fault::of_io(&plain), None);
        let err = f.at(Path::new("b.dmbak"));
        assert_eq!(err.backup_kind(), Some(BackupErrorKind::Truncated));
        assert_eq!(err.to_string(), "backup b.dmbak: truncated: x");
    }
}
