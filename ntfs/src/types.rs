//! Public value types handed to the FUSE layer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A file's identity: its base MFT record number. Every hard link of a file has the same
/// `FileId`, so it doubles as an inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u64);

impl FileId {
    pub const ROOT: FileId = FileId(5);
}

/// An NTFS timestamp: 100 ns intervals since 1601-01-01 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct NtfsTime(pub u64);

/// 100 ns intervals between 1601-01-01 and 1970-01-01.
const UNIX_EPOCH_AS_NTFS: u64 = 116_444_736_000_000_000;

impl NtfsTime {
    /// Seconds and nanoseconds since the Unix epoch (seconds negative before 1970).
    pub fn to_unix(self) -> (i64, u32) {
        let rel = self.0 as i128 - UNIX_EPOCH_AS_NTFS as i128;
        let secs = rel.div_euclid(10_000_000) as i64;
        let nanos = (rel.rem_euclid(10_000_000) * 100) as u32;
        (secs, nanos)
    }

    pub fn to_system_time(self) -> SystemTime {
        let (s, n) = self.to_unix();
        if s >= 0 {
            UNIX_EPOCH + Duration::new(s as u64, n)
        } else {
            UNIX_EPOCH - Duration::from_secs(s.unsigned_abs()) + Duration::from_nanos(n as u64)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Directory,
    /// A symlink or junction; [`crate::Volume::read_link`] decodes it.
    Symlink,
    /// A file carrying a reparse point owned by some other filter (dedup, cloud files,
    /// HSM…); its tag is in [`Metadata::reparse_tag`]. Its own `$DATA` is still readable.
    OtherReparse,
    /// A FIFO: an Interix one (an empty system file, as ntfs-3g writes it) or WSL's.
    Fifo,
    /// A device, Interix or WSL; [`Metadata::device`] holds its numbers.
    CharDevice,
    BlockDevice,
}

/// DOS/Win32 file attribute bits (FILE_ATTRIBUTE_*), as stored in $STANDARD_INFORMATION.
pub mod attr {
    pub const READONLY: u32 = 0x0001;
    pub const HIDDEN: u32 = 0x0002;
    pub const SYSTEM: u32 = 0x0004;
    pub const DIRECTORY: u32 = 0x0010;
    pub const ARCHIVE: u32 = 0x0020;
    pub const SPARSE_FILE: u32 = 0x0200;
    pub const REPARSE_POINT: u32 = 0x0400;
    pub const COMPRESSED: u32 = 0x0800;
    pub const OFFLINE: u32 = 0x1000;
    pub const NOT_CONTENT_INDEXED: u32 = 0x2000;
    pub const ENCRYPTED: u32 = 0x4000;
}

#[derive(Debug, Clone)]
pub struct Metadata {
    pub id: FileId,
    /// The record's sequence number (bumped each time the record is reused).
    pub sequence: u16,
    pub kind: FileKind,
    /// Logical size of the unnamed data stream (0 for directories). For WOF-compressed
    /// files this is the uncompressed size.
    pub size: u64,
    /// Bytes of clusters actually allocated to the unnamed stream (sparse and compressed
    /// files use less than `size`; resident data reports 0).
    pub allocated_size: u64,
    pub created: NtfsTime,
    pub modified: NtfsTime,
    /// Last change of the MFT record itself (ctime).
    pub mft_modified: NtfsTime,
    pub accessed: NtfsTime,
    /// FILE_ATTRIBUTE_* bits as Windows reports them, see [`attr`]: those stored in
    /// $STANDARD_INFORMATION plus DIRECTORY for directories.
    pub attributes: u32,
    /// Number of hard links (names outside the DOS 8.3 namespace).
    pub link_count: u32,
    pub reparse_tag: Option<u32>,
    pub security_id: Option<u32>,
    /// (major, minor) of a [`FileKind::CharDevice`] or [`FileKind::BlockDevice`].
    pub device: Option<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name, with invalid UTF-16 mapped reversibly as described in [`crate::name`].
    pub name: String,
    pub id: FileId,
    /// From the index entry's copy of $FILE_NAME: cheap but can be stale for reparse
    /// points; `stat` is authoritative.
    pub kind_hint: FileKind,
}

impl DirEntry {
    /// NTFS's own metadata files ($MFT, $Bitmap, $Extend, ...) as seen in the root.
    pub fn is_metafile(&self) -> bool {
        self.id.0 < 24 && self.name.starts_with('$')
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub name: String,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct VolumeInfo {
    pub label: String,
    pub major_version: u8,
    pub minor_version: u8,
    /// The dirty bit in $Volume: set by a crash-consistent snapshot of a running system.
    pub dirty: bool,
    /// hiberfil.sys carries a live hibernation (or Fast Startup) header: the volume's
    /// on-disk state may lag what the suspended Windows had in memory.
    pub hibernated: bool,
    pub cluster_size: u32,
    pub sector_size: u32,
    pub file_record_size: u32,
    pub total_clusters: u64,
    pub serial_number: u64,
}

/// Cache-miss counters of a [`crate::Volume`], for observability and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// MFT records read and parsed (parsed files are cached).
    pub records_read: u64,
    /// INDX blocks read and parsed.
    pub index_blocks_read: u64,
    /// LZNT1 compression units and WOF chunks decompressed.
    pub units_decoded: u64,
}
