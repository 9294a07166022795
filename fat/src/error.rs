use crate::FileId;

/// Everything that can go wrong reading a volume. Variants carry the cluster or byte
/// offset involved so that a damaged file can be located on disk from the log alone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("I/O error reading {len} bytes at volume offset {offset}: {source}")]
    Io {
        offset: u64,
        len: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("not a FAT or exFAT volume: {0}")]
    NotFat(String),
    #[error(
        "exFAT boot region checksum mismatch: computed {computed:#010x}, stored {stored:#010x}"
    )]
    BootChecksum { computed: u32, stored: u32 },
    #[error("chain starting at cluster {first}: cluster {cluster} out of range (valid 2..={max})")]
    ClusterOutOfRange { first: u32, cluster: u32, max: u32 },
    #[error(
        "chain starting at cluster {first}: {what} at cluster {cluster} after {index} clusters"
    )]
    ChainBroken {
        first: u32,
        cluster: u32,
        index: u64,
        what: &'static str,
    },
    #[error("chain starting at cluster {first} loops or is cross-linked at cluster {cluster}")]
    ChainLoop { first: u32, cluster: u32 },
    #[error("chain starting at cluster {first} is longer than {limit} clusters")]
    ChainTooLong { first: u32, limit: u64 },
    #[error("file of {size} bytes starting at cluster {first} is larger than the volume")]
    FileTooLarge { first: u32, size: u64 },
    #[error("corrupt directory entry at volume offset {offset}: {reason}")]
    CorruptEntry { offset: u64, reason: String },
    #[error(
        "exFAT entry set at volume offset {offset}: checksum {computed:#06x}, stored {stored:#06x}"
    )]
    SetChecksum {
        offset: u64,
        computed: u16,
        stored: u16,
    },
    #[error("{0:?} is not a directory")]
    NotADirectory(FileId),
    #[error("{0:?} is a directory")]
    IsADirectory(FileId),
    #[error("{0:?} does not name a file on this volume")]
    InvalidFileId(FileId),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// For a directory entry at volume `offset` too short for one of its fields.
    pub(crate) fn short_entry(offset: u64) -> impl Fn(vmsnapfs_io::ShortBuffer) -> Error {
        move |e| Error::CorruptEntry {
            offset,
            reason: format!("entry truncated: {e}"),
        }
    }

    /// True when the error comes from the data on the volume rather than from the
    /// underlying source: the FUSE layer can map these to EIO/EUCLEAN per file.
    pub fn is_corruption(&self) -> bool {
        !matches!(
            self,
            Error::Io { .. }
                | Error::NotADirectory(_)
                | Error::IsADirectory(_)
                | Error::InvalidFileId(_)
        )
    }
}

/// For callers that speak `std::io` (the FUSE layer): the underlying I/O error keeps
/// its kind, damage on the volume is `InvalidData`, and the message keeps the context.
impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match &e {
            Error::Io { source, .. } => source.kind(),
            Error::NotADirectory(_) => ErrorKind::NotADirectory,
            Error::IsADirectory(_) => ErrorKind::IsADirectory,
            Error::InvalidFileId(_) => ErrorKind::NotFound,
            _ => ErrorKind::InvalidData,
        };
        std::io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds() {
        let e: std::io::Error = Error::IsADirectory(FileId::ROOT).into();
        assert_eq!(e.kind(), std::io::ErrorKind::IsADirectory);
        let e: std::io::Error = Error::ChainLoop {
            first: 5,
            cluster: 9,
        }
        .into();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("cluster 5"));
    }
}
