use std::io;

/// Every failure names the chain file it concerns, so that a backup job's log line alone
/// tells an admin which file of which VM to look at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {what} not found")]
    NotFound { file: String, what: &'static str },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("{file}: read of {len} bytes at offset {offset} failed: {source}")]
    Read {
        file: String,
        offset: u64,
        len: u64,
        #[source]
        source: io::Error,
    },
    #[error("{file}: corrupt at offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("{file}: unsupported: {reason}")]
    Unsupported { file: String, reason: String },
    #[error("{file}: raw device mapping not supported")]
    RawDeviceMapping { file: String },
    #[error("{file}: parentCID {parent_cid:08x} does not match CID {cid:08x} of parent {parent}")]
    CidMismatch {
        file: String,
        parent: String,
        parent_cid: u32,
        cid: u32,
    },
    #[error("{file}: parent chain loops back to {parent}")]
    ParentLoop { file: String, parent: String },
    #[error(
        "{file}: SEsparse journal needs replay (snapshot not closed cleanly); replay not supported"
    )]
    JournalReplay { file: String },
}

impl Error {
    pub(crate) fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            file: file.to_string(),
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(file: &str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            file: file.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(file: &str, reason: impl Into<String>) -> Self {
        Error::Unsupported {
            file: file.to_string(),
            reason: reason.into(),
        }
    }

    /// The file this error is about.
    pub fn file(&self) -> &str {
        match self {
            Error::NotFound { file, .. }
            | Error::Io { file, .. }
            | Error::Read { file, .. }
            | Error::Corrupt { file, .. }
            | Error::Invalid { file, .. }
            | Error::Unsupported { file, .. }
            | Error::RawDeviceMapping { file }
            | Error::CidMismatch { file, .. }
            | Error::ParentLoop { file, .. }
            | Error::JournalReplay { file } => file,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::NotFound { .. } => io::ErrorKind::NotFound,
            Error::Io { source, .. } | Error::Read { source, .. } => source.kind(),
            Error::Unsupported { .. } | Error::RawDeviceMapping { .. } => {
                io::ErrorKind::Unsupported
            }
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
