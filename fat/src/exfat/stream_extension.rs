//! The Stream Extension directory entry: where a file's data lives (exFAT spec §7.6).

use vmsnapfs_io::le::{u32_at, u64_at, u8_at};
use vmsnapfs_io::ShortBuffer;

pub(crate) const TYPE: u8 = 0xC0;

#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamExtension {
    pub flags: u8,
    pub name_length: u8,
    pub valid_data_length: u64,
    pub first_cluster: u32,
    pub data_length: u64,
}

impl StreamExtension {
    pub fn parse(e: &[u8]) -> Result<StreamExtension, ShortBuffer> {
        Ok(StreamExtension {
            flags: u8_at(e, 1)?,
            name_length: u8_at(e, 3)?,
            valid_data_length: u64_at(e, 8)?,
            first_cluster: u32_at(e, 20)?,
            data_length: u64_at(e, 24)?,
        })
    }
    /// The data is one contiguous run and the FAT entries for it are undefined.
    pub fn no_fat_chain(&self) -> bool {
        self.flags & 0x02 != 0
    }
}
