#![forbid(unsafe_code)]
//! Read-only NTFS, parsed in-process from any positional byte source.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use vmsnapfs_ntfs::{Volume, FileId};
//! # fn demo(src: Arc<dyn vmsnapfs_io::ReadAt>) -> vmsnapfs_ntfs::Result<()> {
//! let vol = Volume::open(src)?; // one partition window
//! for e in vol.read_dir(vol.root())? {
//!     let md = vol.stat(e.id)?;
//!     let mut buf = vec![0u8; 4096];
//!     let n = vol.read(e.id, None, 0, &mut buf)?; // unnamed stream
//!     for s in vol.streams(e.id)? {
//!         vol.read(e.id, Some(&s.name), 0, &mut buf)?; // alternate data streams
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! * Files are identified by [`FileId`], the base MFT record number: every hard link of a
//!   file has the same id, so it can serve as the inode number. [`FileId::ROOT`] is 5.
//! * [`Volume`] is `Send + Sync`, every method takes `&self`; parsed files, index blocks
//!   and decompressed units are kept in small sharded LRU caches.
//! * Names are `String`s; invalid UTF-16 (lone surrogates) is mapped reversibly, see
//!   [`name`]. `lookup` is exact (case-sensitive) and descends the B+ tree with the
//!   volume's `$UpCase` collation; DOS 8.3 aliases are neither listed nor looked up.
//! * `read` is positional and returns fewer bytes than asked only at end of stream. It
//!   decompresses LZNT1 (NTFS compression) and WOF (XPRESS4K/8K/16K, LZX) transparently.
//!   EFS-encrypted streams, and dedup/cloud/HSM files whose content is off-volume, are
//!   errors rather than garbage.
//! * Links and special files are what ntfs-3g shows: Windows symlinks and junctions, WSL
//!   (LX) symlinks, FIFOs and devices, and Interix ones (system files with an `Intx`
//!   magic, ntfs-3g's default); [`Volume::lx_metadata`] gives WSL's POSIX owners and mode.
//! * Errors name the MFT record they concern; corruption of one file's structures is an
//!   error for that file only.
//!
//! Modules are named after the on-disk structures they parse. The structure parsers are
//! public (but hidden from docs) so fuzz targets can drive them directly.

mod error;
mod fields;
mod file_info;
mod types;
mod volume;

#[doc(hidden)]
pub mod attribute_header;
#[doc(hidden)]
pub mod attribute_list;
pub mod boot_sector;
pub mod ea;
#[doc(hidden)]
pub mod file_name;
#[doc(hidden)]
pub mod file_record;
#[doc(hidden)]
pub mod fixup;
#[doc(hidden)]
pub mod index_allocation;
#[doc(hidden)]
pub mod index_entry;
#[doc(hidden)]
pub mod index_root;
pub mod interix;
pub mod lznt1;
pub mod lzx;
pub mod name;
pub mod reparse_point;
#[doc(hidden)]
pub mod runlist;
#[doc(hidden)]
pub mod security;
#[doc(hidden)]
pub mod standard_information;
#[doc(hidden)]
pub mod upcase;
#[doc(hidden)]
pub mod volume_information;
pub mod wof;
pub mod xpress_huffman;

pub use ea::{Ea, LxMetadata};
pub use error::{Error, Result};
pub use reparse_point::{LinkKind, ReparseTarget};
pub use types::{
    attr, DirEntry, FileId, FileKind, Metadata, NtfsTime, Stats, StreamInfo, VolumeInfo,
};
pub use volume::Volume;

#[cfg(test)]
mod tests {
    /// `len` pseudo-random bytes from `seed` (a small LCG): input for the decompressors'
    /// garbage tests, the same on every run.
    pub(crate) fn garbage(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect()
    }

    #[test]
    fn volume_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Volume>();
    }
}
