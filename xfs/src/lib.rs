#![forbid(unsafe_code)]
//! Read-only XFS (v4 and v5), parsed in-process from any positional byte source.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use vmsnapfs_xfs::Volume;
//! # fn demo(src: Arc<dyn vmsnapfs_io::ReadAt>) -> vmsnapfs_xfs::Result<()> {
//! let vol = Volume::open(src)?; // one partition window
//! for e in vol.read_dir(vol.root())? {
//!     let md = vol.stat(e.ino)?;
//!     let mut buf = vec![0u8; 4096];
//!     let n = vol.read(e.ino, 0, &mut buf)?;
//!     let attrs = vol.xattrs(e.ino)?; // (Linux name, value)
//! }
//! # Ok(()) }
//! ```
//!
//! API:
//!
//! * [`probe`]`(&dyn ReadAt) -> bool`: the "XFSB" superblock magic.
//! * [`Volume::open`]`(Arc<dyn ReadAt>) -> Result<Volume>`; `root() -> u64`;
//!   `info() -> VolumeInfo` (label, UUID, version, block size, total/free blocks,
//!   `log_dirty`).
//! * `stat(ino) -> Result<Metadata>`: kind, mode, uid, gid, size, nlink, a/m/c times and
//!   (v5) crtime as (secs, nanos), rdev, allocated bytes.
//! * `read_dir(ino) -> Result<Vec<DirEntry>>` (no "." / ".."), `lookup(dir, name)`,
//!   `parent(dir)`.
//! * `read(ino, offset, buf) -> Result<usize>`: short only at end of file; holes and
//!   unwritten extents are zeros. `data_ranges(ino)` gives the written byte ranges.
//! * `read_link(ino) -> Result<Vec<u8>>`, `xattrs(ino) -> Result<Vec<(String, Vec<u8>)>>`.
//!
//! Notes:
//!
//! * Inode numbers are XFS's own (AG number, AG block, index in block); hard links share
//!   one. [`Volume`] is `Send + Sync`, every method takes `&self`; inodes, extent maps and
//!   directory listings are kept in small sharded LRU caches.
//! * v5 metadata CRCs (superblock, inodes, btree, directory, attribute, remote symlink and
//!   value blocks) are verified, and owners checked; a damaged structure is an error for
//!   the file it belongs to ([`Error`] names the inode and volume offset), never a panic.
//! * Every directory format (shortform, block, leaf, node) is listed by scanning its data
//!   blocks; lookup searches the (cached) listing. Reflinked extents are ordinary extents
//!   to a reader. Realtime-device file data is not supported.
//! * The journal is not replayed: [`VolumeInfo::log_dirty`] says whether it holds
//!   transactions (walking record headers to the head, checking for a clean unmount
//!   record); files are served as they are on disk.
//! * POSIX ACLs (XFS's big-endian `xfs_acl` in SGI_ACL_FILE / SGI_ACL_DEFAULT) come out
//!   as `system.posix_acl_access` / `system.posix_acl_default` in the Linux format.
//!
//! Modules are named after the on-disk structures they parse; the parsers are public
//! (hidden from docs) so fuzz targets can drive them directly.

#[doc(hidden)]
pub mod acl;
#[doc(hidden)]
pub mod attr_leaf;
#[doc(hidden)]
pub mod attr_sf;
#[doc(hidden)]
pub mod be;
#[doc(hidden)]
pub mod bmbt;
#[doc(hidden)]
pub mod dinode;
#[doc(hidden)]
pub mod dir2_data;
#[doc(hidden)]
pub mod dir2_sf;
mod error;
#[doc(hidden)]
pub mod log;
pub mod sb;
#[doc(hidden)]
pub mod symlink;
mod types;
mod volume;

pub use error::{Damage, Error, Location, Result};
pub use types::{DirEntry, FileKind, Metadata, Timestamp, VolumeInfo};
pub use volume::{probe, Volume};

#[cfg(test)]
mod tests {
    #[test]
    fn volume_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Volume>();
    }
}
