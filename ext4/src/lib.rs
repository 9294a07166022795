#![forbid(unsafe_code)]
//! Read-only ext2/ext3/ext4, parsed in-process from any positional byte source.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use vmsnapfs_ext4::Volume;
//! # fn demo(src: Arc<dyn vmsnapfs_io::ReadAt>) -> vmsnapfs_ext4::Result<()> {
//! let vol = Volume::open(src)?; // one partition window
//! for e in vol.read_dir(vol.root())? {
//!     let md = vol.stat(e.ino)?;
//!     let mut buf = vec![0u8; 4096];
//!     let n = vol.read(e.ino, 0, &mut buf)?;
//!     let xattrs = vol.xattrs(e.ino)?;
//! }
//! # Ok(()) }
//! ```
//!
//! API:
//! * [`Volume::open`]`(Arc<dyn ReadAt>) -> Result<Volume>`; [`probe`]`(&[u8]) -> bool`
//!   on the first 2 KiB, by superblock only.
//! * `root() -> u32` (2), `stat(ino) -> Result<Metadata>`, `read_dir(ino) ->
//!   Result<Vec<DirEntry>>` (without `.`/`..`), `lookup(dir, &[u8]) ->
//!   Result<Option<DirEntry>>` (`.` and `..` resolve), `parent(dir)`, `lookup_path`,
//!   `read(ino, offset, &mut [u8]) -> Result<usize>`, `read_link(ino) ->
//!   Result<Vec<u8>>`, `xattrs(ino) -> Result<Vec<(String, Vec<u8>)>>`,
//!   `data_ranges(ino) -> Result<Vec<Range<u64>>>`, `info() -> VolumeInfo`.
//! * Files are identified by inode number; hard links share it.
//! * [`Volume`] is `Send + Sync`, every method takes `&self`; all reads are positional;
//!   metadata blocks, inodes, file maps and directory listings sit in small sharded LRU
//!   caches; there is no lock on the data path beyond a cache shard's.
//! * A dirty journal (needs_recovery) is replayed in memory at open: the newest
//!   committed copy of each block, honouring revoke records, is served instead of the
//!   block's home location for every read ([`VolumeInfo::journal_replayed`]). Nothing
//!   is ever written.
//! * Checksums (metadata_csum, gdt_csum, jbd2 csum v2/v3) are not verified; structure
//!   is checked instead: every length, offset and count from disk is bounded before
//!   use, extent trees by depth (5) and by never visiting a block twice, block maps
//!   likewise, symlinks by PATH_MAX, xattr values by 64 KiB.
//! * INCOMPAT features not implemented (compression, journal_dev, dirdata, encrypt,
//!   casefold, unknown bits) make `open` fail with [`Error::Unsupported`] naming them.
//! * Orphan-list inodes (s_last_orphan) have no links and no directory entry: they are
//!   `NotInUse` and never listed.
//!
//! Modules are named after the on-disk structures they parse; the parsers are public
//! (hidden from docs) so fuzz targets can drive them directly.

mod error;
mod types;
mod volume;

#[doc(hidden)]
pub mod block_map;
#[doc(hidden)]
pub mod dir_entry;
#[doc(hidden)]
pub mod extent_tree;
#[doc(hidden)]
pub mod group_descriptor;
#[doc(hidden)]
pub mod htree;
#[doc(hidden)]
pub mod inline_data;
#[doc(hidden)]
pub mod inode;
#[doc(hidden)]
pub mod journal;
pub mod superblock;
#[doc(hidden)]
pub mod xattr;

pub use error::{Error, Result};
pub use superblock::probe;
pub use types::{DirEntry, FileKind, Metadata, Time, VolumeInfo};
pub use volume::{Volume, ROOT};

/// Whether a source looks like an ext2/3/4 volume (reads its first 2 KiB).
pub fn probe_source(src: &dyn vmsnapfs_io::ReadAt) -> bool {
    let mut b = vec![0u8; 2048];
    src.read_at(0, &mut b).is_ok() && probe(&b)
}

#[cfg(test)]
mod send_sync {
    #[test]
    fn volume_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Volume>();
    }
}
