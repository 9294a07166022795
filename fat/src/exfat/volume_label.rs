//! The Volume Label directory entry (exFAT spec §7.3).

use crate::bytes::{u16_at, u8_at};

pub(crate) const TYPE: u8 = 0x83;

pub(crate) fn parse(e: &[u8]) -> String {
    let count = usize::from(u8_at(e, 1)).min(11);
    let units: Vec<u16> = (0..count).map(|i| u16_at(e, 2 + 2 * i)).collect();
    String::from_utf16_lossy(&units)
}
