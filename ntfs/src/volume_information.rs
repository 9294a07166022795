//! $VOLUME_INFORMATION (in $Volume): NTFS version and the dirty flag.

use crate::bytes::{u16_at, u8_at};

pub const FLAG_DIRTY: u16 = 0x0001;

pub fn parse(b: &[u8]) -> Option<(u8, u8, u16)> {
    Some((u8_at(b, 8)?, u8_at(b, 9)?, u16_at(b, 10)?))
}
