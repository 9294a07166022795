//! Read-only FAT12, FAT16, FAT32 and exFAT, parsed in-process over a positional byte
//! source, for a FUSE view of frozen guest volumes.
//!
//! One [`Volume`] type serves all four variants. Every method takes `&self`, so many
//! FUSE threads can share one volume. Nothing on disk is trusted: lengths, offsets and
//! chain links are checked, allocations are bounded, and damage to one file's chain or
//! entry is an error for that file only.
//!
//! # File identifiers
//! A [`FileId`] is the byte offset, on the volume, of the file's short directory entry
//! (FAT) or File directory entry (exFAT); the root is `0`. It is stable across opens of
//! the same image, cheap to copy, and resolved by re-reading that entry, never by
//! walking from the root. On exFAT, bit 0 (entry offsets are multiples of 32) records
//! that the parent directory is NoFatChain, which is what locates the rest of an entry
//! set that straddles a cluster boundary. Treat the value as opaque.
//!
//! # Times
//! FAT stores local time with no zone; those times are reported as if they were UTC.
//! exFAT times with a valid UTC offset are converted to UTC; without one they too are
//! taken as UTC.
#![forbid(unsafe_code)]

mod bpb;
mod dir_cache;
mod dir_data;
mod dir_entry;
mod error;
mod exfat;
mod fat;
mod fat_dir;
mod fsinfo;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod lfn_entry;
mod oem;
#[cfg(test)]
mod random_tests;
mod time;
mod volume;

pub use error::{Error, Result};
pub use time::Timestamp;
pub use volume::Volume;

use vmsnapfs_io::ReadAt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
    ExFat,
}

/// Cheap detection from the first sector (at least 512 bytes). Accepts only boot
/// sectors whose parameters are self-consistent, so NTFS (no FATs, no reserved
/// sectors) and random data are rejected.
pub fn probe(boot_sector: &[u8]) -> Option<FatType> {
    if exfat::boot_sector::parse(boot_sector).is_ok() {
        return Some(FatType::ExFat);
    }
    bpb::parse(boot_sector).ok().map(|b| b.fat_type)
}

/// Identifies a file or directory on one volume; see the crate docs for its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(u64);

impl FileId {
    pub const ROOT: FileId = FileId(0);

    pub fn as_u64(self) -> u64 {
        self.0
    }
    /// Rebuilds an id from [`FileId::as_u64`]; an id that does not name an entry is
    /// rejected by the volume methods with [`Error::InvalidFileId`].
    pub fn from_u64(raw: u64) -> FileId {
        FileId(raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Directory,
}

/// FAT/exFAT attribute bits (the same values in both formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attributes(pub u16);

impl Attributes {
    pub const READ_ONLY: u16 = 0x01;
    pub const HIDDEN: u16 = 0x02;
    pub const SYSTEM: u16 = 0x04;
    pub const DIRECTORY: u16 = 0x10;
    pub const ARCHIVE: u16 = 0x20;

    pub fn contains(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub kind: FileKind,
    /// File length in bytes. FAT directories record no length: reported as 0.
    pub size: u64,
    /// exFAT ValidDataLength: bytes past it read as zeros. Equals `size` on FAT.
    pub valid_data_length: u64,
    pub created: Option<Timestamp>,
    pub modified: Option<Timestamp>,
    /// FAT records only the date of last access.
    pub accessed: Option<Timestamp>,
    pub attributes: Attributes,
    /// First cluster of the data (0 when the file has none).
    pub first_cluster: u32,
}

impl Metadata {
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Directory
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The long name when a valid one exists, else the 8.3 name with NT case flags
    /// applied. '/' and NUL from a damaged entry are replaced with U+FFFD.
    pub name: String,
    /// FAT only: the 8.3 alias as stored (upper case), which lookups also accept.
    pub short_name: Option<String>,
    pub id: FileId,
    pub kind: FileKind,
    /// `None` when the entry is damaged (e.g. exFAT set checksum mismatch): `stat` and
    /// `read` on `id` then return the error, while the rest of the directory is usable.
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub fat_type: FatType,
    pub label: Option<String>,
    pub serial: Option<u32>,
    pub bytes_per_sector: u32,
    pub cluster_size: u32,
    pub total_clusters: u32,
    /// FAT12/16 and exFAT: counted at open; FAT32: the FSInfo hint when it is sane.
    pub free_clusters: Option<u32>,
    /// FAT16/32: the clean-shutdown bit of FAT entry 1 or the NT flag; exFAT:
    /// VolumeDirty. `None` on FAT12, which has no such bit.
    pub dirty: Option<bool>,
    /// Which FAT copy is read (mirroring flags, exFAT ActiveFat).
    pub active_fat: u32,
    /// True when the primary boot sector was unusable and a backup was read.
    pub used_backup_boot_sector: bool,
}

/// Reads exactly `buf.len()` bytes at `offset`, attaching the offset to any error.
pub(crate) fn read_exact(reader: &dyn ReadAt, offset: u64, buf: &mut [u8]) -> Result<()> {
    reader.read_at(offset, buf).map_err(|source| Error::Io {
        offset,
        len: buf.len(),
        source,
    })
}
