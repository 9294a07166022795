/// What an inode is, from the file type bits of its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDev,
    BlockDev,
    Socket,
}

impl FileKind {
    pub fn from_mode(mode: u16) -> Option<FileKind> {
        Some(match mode & 0o170000 {
            0o100000 => FileKind::File,
            0o040000 => FileKind::Dir,
            0o120000 => FileKind::Symlink,
            0o010000 => FileKind::Fifo,
            0o020000 => FileKind::CharDev,
            0o060000 => FileKind::BlockDev,
            0o140000 => FileKind::Socket,
            _ => return None,
        })
    }

    /// The directory entry file type byte (XFS_DIR3_FT_*).
    pub fn from_ftype(ft: u8) -> Option<FileKind> {
        Some(match ft {
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

/// Seconds (negative before 1970) and nanoseconds since the Unix epoch.
pub type Timestamp = (i64, u32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub ino: u64,
    pub kind: FileKind,
    /// Permission bits and file type, as `st_mode`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub nlink: u32,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    /// Creation time: v5 (v3 inodes) only.
    pub crtime: Option<Timestamp>,
    /// Device number for device nodes, glibc `makedev` encoding; 0 otherwise.
    pub rdev: u64,
    /// Bytes of blocks the inode owns (data, mapping tree and attribute blocks).
    pub allocated: u64,
    pub generation: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    /// From the entry's ftype byte, or from the child's inode on volumes without one
    /// (`File` when that inode cannot be read: `stat` then reports why).
    pub kind: FileKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub label: String,
    pub uuid: String,
    /// 4 or 5 (v5: CRC-protected metadata).
    pub version: u16,
    pub block_size: u32,
    pub total_blocks: u64,
    /// Free blocks summed from the AG headers (AGF free extents, free lists and btree
    /// blocks, as the kernel counts them), or the superblock's counter if an AGF is
    /// unreadable.
    pub free_blocks: u64,
    /// The superblock's own counter (`sb_fdblocks`; updated lazily, so it can lag on a
    /// snapshot of a mounted volume).
    pub free_blocks_sb: u64,
    pub inode_size: u16,
    pub ag_count: u32,
    /// The journal holds transactions not yet written back (crash-consistent snapshot of
    /// a mounted volume). It is not replayed: files are served as they are on disk.
    pub log_dirty: bool,
    /// The journal is on another device, so `log_dirty` could not be checked.
    pub log_external: bool,
    pub bigtime: bool,
    pub ftype: bool,
}
