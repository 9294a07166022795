//! The File directory entry, primary of a file's entry set (exFAT spec §7.4).

use crate::time::{self, Timestamp};
use vmsnapfs_io::le::{u16_at, u32_at, u8_at};
use vmsnapfs_io::ShortBuffer;

pub(crate) const TYPE: u8 = 0x85;

#[derive(Debug, Clone, Copy)]
pub(crate) struct FileDirectoryEntry {
    pub secondary_count: u8,
    pub set_checksum: u16,
    pub attributes: u16,
    create: u32,
    modify: u32,
    access: u32,
    create_10ms: u8,
    modify_10ms: u8,
    create_utc: u8,
    modify_utc: u8,
    access_utc: u8,
}

fn stamp(ts: u32, ten_ms: u8, utc: u8) -> Option<Timestamp> {
    time::decode((ts >> 16) as u16, ts as u16, ten_ms).map(|t| time::apply_utc_offset(t, utc))
}

impl FileDirectoryEntry {
    pub fn parse(e: &[u8]) -> Result<FileDirectoryEntry, ShortBuffer> {
        Ok(FileDirectoryEntry {
            secondary_count: u8_at(e, 1)?,
            set_checksum: u16_at(e, 2)?,
            attributes: u16_at(e, 4)?,
            create: u32_at(e, 8)?,
            modify: u32_at(e, 12)?,
            access: u32_at(e, 16)?,
            create_10ms: u8_at(e, 20)?,
            modify_10ms: u8_at(e, 21)?,
            create_utc: u8_at(e, 22)?,
            modify_utc: u8_at(e, 23)?,
            access_utc: u8_at(e, 24)?,
        })
    }
    pub fn created(&self) -> Option<Timestamp> {
        stamp(self.create, self.create_10ms, self.create_utc)
    }
    pub fn modified(&self) -> Option<Timestamp> {
        stamp(self.modify, self.modify_10ms, self.modify_utc)
    }
    pub fn accessed(&self) -> Option<Timestamp> {
        stamp(self.access, 0, self.access_utc)
    }
}
