//! The Volume Label directory entry (exFAT spec §7.3).

use vmsnapfs_io::le::{u16s_at, u8_at};
use vmsnapfs_io::ShortBuffer;

pub(crate) const TYPE: u8 = 0x83;

pub(crate) fn parse(e: &[u8]) -> Result<String, ShortBuffer> {
    let count = usize::from(u8_at(e, 1)?).min(11);
    Ok(String::from_utf16_lossy(&u16s_at(e, 2, count)?))
}
