#![forbid(unsafe_code)]
//! Read-only NTFS, parsed in-process from any positional byte source.
//!
//! [`Volume::open`] takes an `Arc<dyn ReadAt>` covering one volume (a partition window)
//! and exposes files by [`FileId`] (the base MFT record number, shared by every hard
//! link): `stat`, `read_dir`, `lookup`, positional `read` of the unnamed or a named
//! stream, `streams`, `read_link`, `security_descriptor`, `allocated_ranges`. Names are
//! `String`s; see [`name`] for how invalid UTF-16 is represented.
//!
//! Modules are named after the on-disk structures they parse. The structure parsers are
//! public (but hidden from docs) so fuzz targets can drive them directly.

mod bytes;
mod cache;
mod error;
mod file_info;
mod types;
mod volume;

#[doc(hidden)]
pub mod attribute_header;
#[doc(hidden)]
pub mod attribute_list;
pub mod boot_sector;
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

pub use error::{Error, Result};
pub use reparse_point::{LinkKind, ReparseTarget};
pub use types::{
    attr, DirEntry, FileId, FileKind, Metadata, NtfsTime, Stats, StreamInfo, VolumeInfo,
};
pub use volume::Volume;

#[cfg(test)]
mod tests {
    #[test]
    fn volume_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Volume>();
    }
}
