//! The File Name directory entry: 15 UTF-16 units of the name each (exFAT spec §7.7).

use crate::bytes::u16_at;

pub(crate) const TYPE: u8 = 0xC1;
pub(crate) const UNITS: usize = 15;

pub(crate) fn units(e: &[u8]) -> [u16; UNITS] {
    let mut out = [0u16; UNITS];
    for (i, u) in out.iter_mut().enumerate() {
        *u = u16_at(e, 2 + 2 * i);
    }
    out
}
