//! $VOLUME_INFORMATION (in $Volume): NTFS version and the dirty flag.

use vmsnapfs_io::le::{u16_at, u8_at};
use vmsnapfs_io::ShortBuffer;

pub const FLAG_DIRTY: u16 = 0x0001;

/// (major version, minor version, flags).
pub fn parse(b: &[u8]) -> Result<(u8, u8, u16), ShortBuffer> {
    Ok((u8_at(b, 8)?, u8_at(b, 9)?, u16_at(b, 10)?))
}
