use std::io;

/// Everything that can go wrong reading an ext2/3/4 volume. Errors about one file carry
/// its inode number, and where on the volume it happened (block, offset), so the FUSE
/// layer can log something actionable and keep serving the rest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("I/O error reading {len} bytes at volume offset {offset}: {source}")]
    Io {
        offset: u64,
        len: usize,
        #[source]
        source: io::Error,
    },
    #[error("not a usable ext2/3/4 superblock: {0}")]
    Superblock(String),
    #[error("unsupported ext4 feature(s): {0}")]
    Unsupported(String),
    /// Damage in the structures of one inode (0: not about an inode), found in `block`
    /// (0: not in a block of its own, e.g. the inode's i_block) at byte `offset` of it.
    #[error("inode {ino}, block {block}, offset {offset}: {msg}")]
    Corrupt {
        ino: u32,
        block: u64,
        offset: u64,
        msg: String,
    },
    #[error("journal block {block}: {msg}")]
    Journal { block: u64, msg: String },
    #[error("inode {ino} does not exist (the volume has {count} inodes)")]
    NoSuchInode { ino: u32, count: u32 },
    #[error("inode {ino} is not in use (deleted, orphaned or never allocated)")]
    NotInUse { ino: u32 },
    #[error("inode {ino}: not a directory")]
    NotADirectory { ino: u32 },
    #[error("inode {ino}: not a symlink")]
    NotASymlink { ino: u32 },
    #[error("inode {ino}: unsupported: {msg}")]
    UnsupportedInode { ino: u32, msg: String },
}

impl Error {
    pub(crate) fn corrupt(ino: u32, block: u64, offset: u64, msg: impl Into<String>) -> Self {
        Error::Corrupt {
            ino,
            block,
            offset,
            msg: msg.into(),
        }
    }

    /// A short-buffer error from a field reader, as damage in `ino`'s `block`.
    pub(crate) fn short(ino: u32, block: u64, what: &str, e: vmsnapfs_io::ShortBuffer) -> Self {
        Error::corrupt(ino, block, e.offset as u64, format!("{what}: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// For callers that speak `std::io` (the FUSE layer): the underlying I/O error keeps its
/// kind, an inode that is not there is `NotFound`, a call that does not apply keeps that
/// meaning, unsupported features are `Unsupported`, and damage is `InvalidData`; the
/// message keeps the inode number and location.
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io { source, .. } => source.kind(),
            Error::NoSuchInode { .. } | Error::NotInUse { .. } => io::ErrorKind::NotFound,
            Error::NotADirectory { .. } => io::ErrorKind::NotADirectory,
            Error::NotASymlink { .. } => io::ErrorKind::InvalidInput,
            Error::Unsupported(_) | Error::UnsupportedInode { .. } => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_meaning() {
        let e: io::Error = Error::corrupt(12, 345, 6, "bad extent header").into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("inode 12, block 345"));
        let e: io::Error = Error::NotInUse { ino: 5 }.into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e: io::Error = Error::Io {
            offset: 0,
            len: 1,
            source: io::Error::from(io::ErrorKind::UnexpectedEof),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
