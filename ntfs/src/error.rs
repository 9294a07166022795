use std::io;

/// Everything that can go wrong reading a volume. Errors about one file carry its MFT
/// record number so the FUSE layer can log something actionable and keep serving the rest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error reading {len} bytes at volume offset {offset}: {source}")]
    Io {
        offset: u64,
        len: usize,
        #[source]
        source: io::Error,
    },
    #[error("not a usable NTFS boot sector: {0}")]
    BootSector(String),
    #[error("MFT record {record}: {msg}")]
    Corrupt { record: u64, msg: String },
    #[error("MFT record {record} is not in use (deleted or never allocated)")]
    NotInUse { record: u64 },
    #[error("MFT record {record} does not exist (the MFT has {count} records)")]
    NoSuchRecord { record: u64, count: u64 },
    #[error("MFT record {record} is an extension record of {base}, not a file")]
    ExtensionRecord { record: u64, base: u64 },
    #[error("MFT record {record}: not a directory")]
    NotADirectory { record: u64 },
    #[error("MFT record {record}: no data stream {stream:?}")]
    NoSuchStream { record: u64, stream: String },
    #[error("MFT record {record}: not a symlink or junction (reparse tag {tag:#010x})")]
    NotALink { record: u64, tag: u32 },
    #[error("MFT record {record}: file is EFS-encrypted; its plaintext cannot be read without the user's key")]
    Encrypted { record: u64 },
    #[error("MFT record {record}: unsupported: {msg}")]
    Unsupported { record: u64, msg: String },
    #[error("MFT record {record}: decompressing {what} at byte {offset} failed: {msg}")]
    Decompress {
        record: u64,
        what: &'static str,
        offset: u64,
        msg: String,
    },
}

impl Error {
    pub(crate) fn corrupt(record: u64, msg: impl Into<String>) -> Self {
        Error::Corrupt {
            record,
            msg: msg.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// For callers that speak `std::io` (the FUSE layer): the underlying I/O error keeps its
/// kind, a name or stream that is not there is `NotFound`, a call that does not apply
/// (not a directory, not a link) keeps that meaning, and damage on the volume is
/// `InvalidData`; the message keeps the record number.
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io { source, .. } => source.kind(),
            Error::NoSuchStream { .. } => io::ErrorKind::NotFound,
            Error::NotADirectory { .. } => io::ErrorKind::NotADirectory,
            Error::NotALink { .. } => io::ErrorKind::InvalidInput,
            Error::Encrypted { .. } | Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod io_kind_tests {
    use super::*;

    #[test]
    fn kinds_keep_their_meaning() {
        let e: io::Error = Error::corrupt(7, "bad fixup").into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("MFT record 7"));
        let e: io::Error = Error::NoSuchStream {
            record: 5,
            stream: "x".into(),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
