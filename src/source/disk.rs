//! Opening a local disk chain head as a `DiskImage` through the VMDK reader.

use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use vmsnapfs_io::{Lent, ReadAt};
use vmsnapfs_vmdk::Disk;

use super::api::DiskImage;

/// A VMDK chain as a frozen disk, whatever resolver its files came through.
pub(crate) struct VmdkImage(pub(crate) Disk);

impl ReadAt for VmdkImage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.0.capacity()
    }
    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<Lent>> {
        self.0.lend(offset, len)
    }
}

impl DiskImage for VmdkImage {
    fn data_ranges(&self) -> io::Result<Vec<Range<u64>>> {
        self.0.allocated_ranges().map_err(io::Error::from)
    }
    fn adapter_type(&self) -> Option<String> {
        self.0
            .descriptor()
            .and_then(|d| d.get("ddb.adapterType"))
            .map(|s| s.trim_matches('"').to_owned())
    }
}

/// Opens the chain headed by `path`; returns the image and the chain's files, head first.
pub fn open(path: &Path) -> io::Result<(Arc<dyn DiskImage>, Vec<String>)> {
    let disk = Disk::open_path(path).map_err(io::Error::from)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let chain = disk
        .chain()
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect();
    Ok((Arc::new(VmdkImage(disk)), chain))
}
