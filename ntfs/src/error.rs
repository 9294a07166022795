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
