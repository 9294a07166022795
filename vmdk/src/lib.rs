#![forbid(unsafe_code)]
//! Reads VMware virtual disks in-process: every extent flavour a VMware estate produces
//! (flat, hosted sparse, streamOptimized, COWD redo logs, SEsparse snapshot deltas) and the
//! snapshot chains they form, through positional `&self` reads that many threads may issue
//! at once.
//!
//! ```no_run
//! use vmsnapfs_io::ReadAt;
//! use vmsnapfs_vmdk::Disk;
//!
//! let disk = Disk::open_path(std::path::Path::new("vm/vm-000002.vmdk"))?;
//! println!("{} bytes, chain {:?}", disk.capacity(), disk.chain());
//! let mut mbr = [0u8; 512];
//! disk.read_at(0, &mut mbr)?;
//! for r in disk.allocated_ranges()? {
//!     println!("data in {r:?}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Chain files are opened through a [`Resolver`], so the same code reads local files
//! ([`LocalResolver`]) or any other byte source.

mod compressed_grain;
pub mod cowd_header;
pub mod descriptor;
mod disk;
mod error;
mod extent;
mod grain_directory;
mod link;
pub mod marker;
mod ranges;
mod resolver;
pub mod sesparse_header;
mod sparse_extent;
pub mod sparse_extent_header;

pub use descriptor::Descriptor;
pub use disk::Disk;
pub use error::{Error, Result};
pub use resolver::{LocalResolver, Resolver};

/// What a range of one link holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Data,
    Zero,
    Unallocated,
}

/// Parsers exposed for the fuzz targets only; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::cowd_header::CowdHeader;
    pub use crate::marker::{check_footer, Marker};
    pub use crate::sesparse_header::{
        decode_gte, gd_entry_table_index, SeSparseConstHeader, SeSparseVolatileHeader,
    };
    pub use crate::sparse_extent_header::SparseExtentHeader;

    /// Opens a chain from in-memory files (the first is the head) and reads up to `limit`
    /// bytes of it, as a fuzz target does with mutated files. Returns whether every step
    /// succeeded.
    pub fn open_and_read(files: &[(&str, Vec<u8>)], limit: u64) -> bool {
        use std::sync::Arc;
        struct Mem(Vec<(String, Arc<Vec<u8>>)>);
        impl crate::Resolver for Mem {
            fn open(&self, name: &str) -> std::io::Result<Arc<dyn vmsnapfs_io::ReadAt>> {
                self.0
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, d)| d.clone() as Arc<dyn vmsnapfs_io::ReadAt>)
                    .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
            }
        }
        let Some(head) = files.first() else {
            return false;
        };
        let mem = Mem(files
            .iter()
            .map(|(n, d)| (n.to_string(), Arc::new(d.clone())))
            .collect());
        let Ok(disk) = crate::Disk::open(Arc::new(mem), head.0) else {
            return false;
        };
        let mut ok = disk.allocated_ranges().is_ok();
        let cap = disk.capacity().min(limit);
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0;
        while off < cap {
            let n = (cap - off).min(buf.len() as u64) as usize;
            if disk.read(off, &mut buf[..n]).is_err() {
                ok = false;
                break;
            }
            off += n as u64;
        }
        // An unaligned read straddling grains takes the other code paths.
        if cap > 70_000 {
            ok &= disk.read(cap / 2 - 33_333, &mut buf[..66_667]).is_ok();
        }
        // Placing walks the same grain tables and chain (in-memory files place nothing,
        // so it stops at the first data grain; holes and zeros go on to the parent).
        let mut places = vmsnapfs_io::Places::new();
        let _ = vmsnapfs_io::ReadAt::place(&disk, 0, cap, &mut places);
        places.clear();
        let _ = vmsnapfs_io::ReadAt::place(&disk, cap / 3, cap / 3 + 1, &mut places);
        ok
    }
}
