//! The public, decoded types.

/// A time as stored: seconds since the Unix epoch (signed, with the epoch bits for
/// dates after 2038) and nanoseconds (0 where the inode has no extra fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time {
    pub secs: i64,
    pub nanos: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDev,
    BlockDev,
    Socket,
    /// A mode whose type bits name none of the above.
    Unknown,
}

impl FileKind {
    pub fn from_mode(mode: u16) -> FileKind {
        match mode & 0o170000 {
            0o100000 => FileKind::File,
            0o040000 => FileKind::Dir,
            0o120000 => FileKind::Symlink,
            0o010000 => FileKind::Fifo,
            0o020000 => FileKind::CharDev,
            0o060000 => FileKind::BlockDev,
            0o140000 => FileKind::Socket,
            _ => FileKind::Unknown,
        }
    }

    /// From a directory entry's file_type byte (None when 0: look at the inode).
    pub fn from_dir_type(t: u8) -> Option<FileKind> {
        Some(match t {
            1 => FileKind::File,
            2 => FileKind::Dir,
            3 => FileKind::CharDev,
            4 => FileKind::BlockDev,
            5 => FileKind::Fifo,
            6 => FileKind::Socket,
            7 => FileKind::Symlink,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub ino: u32,
    pub kind: FileKind,
    /// The full i_mode (type and permission bits, as stored).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub nlink: u32,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
    /// Creation time, on inodes large enough to hold it (256-byte inodes).
    pub crtime: Option<Time>,
    /// Device number (Linux makedev form) of character and block devices, else 0.
    pub rdev: u64,
    /// Bytes allocated (from i_blocks, including xattr and indirect/extent blocks).
    pub allocated: u64,
    pub flags: u32,
    pub generation: u32,
}

impl Metadata {
    /// Permission bits (with setuid, setgid, sticky).
    pub fn permissions(&self) -> u16 {
        self.mode & 0o7777
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u32,
    pub kind: FileKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub label: String,
    pub uuid: [u8; 16],
    pub block_size: u32,
    pub blocks_count: u64,
    pub free_blocks: u64,
    pub inodes_count: u32,
    pub free_inodes: u32,
    pub inode_size: u16,
    pub feature_compat: u32,
    pub feature_incompat: u32,
    pub feature_ro_compat: u32,
    /// The superblock says the journal needs recovery (needs_recovery / RECOVER).
    pub needs_recovery: bool,
    /// The journal was replayed in memory at open (never written back).
    pub journal_replayed: bool,
    /// Committed transactions replayed.
    pub journal_transactions: u32,
    /// File system blocks served from the journal instead of their home location.
    pub journal_blocks: usize,
    /// s_state has the "errors detected" bit.
    pub has_errors: bool,
    /// s_state lacks the "cleanly unmounted" bit.
    pub not_clean: bool,
    pub error_count: u32,
    /// Head of the orphan list (s_last_orphan): unlinked-but-open inodes, not reachable
    /// from any directory and so never shown.
    pub last_orphan: u32,
    /// Checksums (metadata_csum, gdt_csum, journal csum) are never verified.
    pub checksums_verified: bool,
}
