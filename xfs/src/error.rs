use std::io;

/// Damage found by a structure parser, before the caller adds where the bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage(pub String);

impl Damage {
    pub fn new(msg: impl Into<String>) -> Self {
        Damage(msg.into())
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<vmsnapfs_io::ShortBuffer> for Damage {
    fn from(e: vmsnapfs_io::ShortBuffer) -> Self {
        Damage(e.to_string())
    }
}

/// Where on the volume something went wrong: the inode concerned (if any), the
/// filesystem block or byte offset of the structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    pub ino: Option<u64>,
    /// Byte offset on the volume of the structure being parsed.
    pub offset: Option<u64>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.ino, self.offset) {
            (Some(i), Some(o)) => write!(f, "inode {i}, volume offset {o}"),
            (Some(i), None) => write!(f, "inode {i}"),
            (None, Some(o)) => write!(f, "volume offset {o}"),
            (None, None) => f.write_str("volume"),
        }
    }
}

/// Everything that can go wrong reading an XFS volume. Errors about one file carry its
/// inode number so that the rest of the volume stays readable.
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
    #[error("not a usable XFS superblock: {0}")]
    Superblock(String),
    #[error("{at}: {msg}")]
    Corrupt { at: Location, msg: String },
    #[error("inode {ino} does not exist on this volume")]
    NoSuchInode { ino: u64 },
    #[error("inode {ino} is not in use")]
    NotInUse { ino: u64 },
    #[error("inode {ino}: not a directory")]
    NotADirectory { ino: u64 },
    #[error("inode {ino}: not a symlink")]
    NotALink { ino: u64 },
    #[error("directory inode {dir}: no entry {name:?}")]
    NotFound { dir: u64, name: String },
    #[error("inode {ino}: unsupported: {msg}")]
    Unsupported { ino: u64, msg: String },
}

impl Error {
    pub(crate) fn corrupt(ino: Option<u64>, offset: Option<u64>, msg: impl Into<String>) -> Self {
        Error::Corrupt {
            at: Location { ino, offset },
            msg: msg.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// For callers that speak `std::io` (the FUSE layer): I/O errors keep their kind, a
/// missing name or inode is `NotFound`, a call that does not apply keeps that meaning,
/// damage is `InvalidData` (EIO for the file concerned); the message keeps the inode.
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io { source, .. } => source.kind(),
            Error::NotFound { .. } | Error::NoSuchInode { .. } | Error::NotInUse { .. } => {
                io::ErrorKind::NotFound
            }
            Error::NotADirectory { .. } => io::ErrorKind::NotADirectory,
            Error::NotALink { .. } => io::ErrorKind::InvalidInput,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
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
        let e: io::Error = Error::corrupt(Some(131), Some(4096), "bad magic").into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("inode 131"));
        let e: io::Error = Error::NotFound {
            dir: 128,
            name: "x".into(),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e: io::Error = Error::Io {
            offset: 0,
            len: 1,
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "eof"),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
