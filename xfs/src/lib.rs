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
//!   `info() -> VolumeInfo` (label, UUID, version, block size, total blocks, free blocks
//!   from the AGFs and from the superblock, `log_dirty`).
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
pub mod agf;
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
    /// `len` pseudo-random bytes from `seed`, the same on every run.
    fn garbage(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect()
    }

    /// What the fuzz targets do, on a fixed set of garbage inputs: no parser panics.
    #[test]
    fn parsers_survive_garbage() {
        for seed in 0..300u32 {
            let mut b = garbage(4096, seed);
            // Give the magic-checked parsers a chance to get past their first check.
            match seed % 6 {
                0 => b[..4].copy_from_slice(b"XFSB"),
                1 => b[..2].copy_from_slice(&crate::dinode::MAGIC.to_be_bytes()),
                2 => b[..4].copy_from_slice(&crate::bmbt::MAGIC_V4.to_be_bytes()),
                3 => b[..4].copy_from_slice(&crate::dir2_data::BLOCK_MAGIC_V4.to_be_bytes()),
                4 => b[8..10].copy_from_slice(&crate::attr_leaf::LEAF_MAGIC_V4.to_be_bytes()),
                _ => b[8..10].copy_from_slice(&crate::attr_leaf::NODE_MAGIC_V4.to_be_bytes()),
            }
            let _ = crate::sb::parse(&b);
            let _ = crate::agf::parse(&b[..512], seed & 1 == 1);
            for size in [256, 512, 1024, 2048] {
                if let Ok(d) = crate::dinode::parse(&b[..size], seed & 1 == 1) {
                    let _ = crate::bmbt::parse_root(&d.data_fork);
                    let _ = crate::dir2_sf::parse(&d.data_fork, d.size, true);
                    let _ = crate::attr_sf::parse(&d.attr_fork);
                }
            }
            let _ = crate::bmbt::parse_block(&b, false, 0);
            let _ = crate::bmbt::parse_records(&b, 24, (seed as usize) * 7);
            let _ = crate::dir2_sf::parse(&b, b.len() as u64, seed & 2 != 0);
            let _ = crate::dir2_data::parse(&b, false, seed & 2 != 0, 0);
            let _ = crate::attr_sf::parse(&b);
            let _ = crate::attr_leaf::parse(&b, false, 0);
            let _ = crate::attr_leaf::rmt_payload(&b, 0);
            let _ = crate::acl::to_linux(&b);
            let _ = crate::log::parse_header(&b[..512]);
            let _ = crate::symlink::remote_payload(&b, 0);
        }
    }

    #[test]
    fn volume_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Volume>();
    }
}
