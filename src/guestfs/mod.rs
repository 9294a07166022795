//! A file-system-neutral view of one guest volume, so the FUSE layer serves NTFS, FAT and
//! exFAT, ext2/3/4 and XFS the same way. Nodes are named by a `u64` id the file system picks: an id must be
//! stable for the life of the volume and shared by hard links (NTFS uses the MFT record),
//! because the FUSE layer turns it into the inode number.

use std::io;
use std::sync::Arc;

use vmsnapfs_io::ReadAt;

mod api;
mod ext4;
mod fat;
pub mod names;
mod ntfs;
mod unix;
mod xfs;

pub use api::{DirEntry, GuestFs, GuestOwner, Kind, Stat, VolumeInfo};

/// Opens the file system `kind` (as `detect` named it) on a volume.
pub fn open(kind: crate::detect::FsKind, vol: Arc<dyn ReadAt>) -> io::Result<Arc<dyn GuestFs>> {
    use crate::detect::FsKind;
    Ok(match kind {
        FsKind::Ntfs => Arc::new(ntfs::Ntfs::open(vol)?),
        FsKind::Fat12 | FsKind::Fat16 | FsKind::Fat32 | FsKind::ExFat => {
            Arc::new(fat::Fat::open(vol)?)
        }
        FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 => {
            Arc::new(ext4::Ext4::open(vol, kind.as_str())?)
        }
        FsKind::Xfs => Arc::new(xfs::Xfs::open(vol)?),
        FsKind::Swap => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "swap holds no files",
            ))
        }
    })
}
