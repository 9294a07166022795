//! A file-system-neutral view of one guest volume, so the FUSE layer serves NTFS, FAT and
//! exFAT the same way. Nodes are named by a `u64` id the file system picks: an id must be
//! stable for the life of the volume and shared by hard links (NTFS uses the MFT record),
//! because the FUSE layer turns it into the inode number.

use std::io;
use std::sync::Arc;

use vmsnapfs_io::ReadAt;

mod api;
mod fat;
pub mod names;
mod ntfs;

pub use api::{DirEntry, GuestFs, GuestOwner, Kind, Stat, VolumeInfo};

/// Opens the file system `kind` (as `detect` named it) on a volume.
pub fn open(kind: crate::detect::FsKind, vol: Arc<dyn ReadAt>) -> io::Result<Arc<dyn GuestFs>> {
    use crate::detect::FsKind;
    Ok(match kind {
        FsKind::Ntfs => Arc::new(ntfs::Ntfs::open(vol)?),
        FsKind::Fat12 | FsKind::Fat16 | FsKind::Fat32 | FsKind::ExFat => {
            Arc::new(fat::Fat::open(vol)?)
        }
        FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 | FsKind::Xfs => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("reading {} volumes' files is not built yet", kind.as_str()),
            ))
        }
        FsKind::Swap => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "swap holds no files",
            ))
        }
    })
}
