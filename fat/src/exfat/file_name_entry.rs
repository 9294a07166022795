//! The File Name directory entry: 15 UTF-16 units of the name each (exFAT spec §7.7).

use vmsnapfs_io::le::u16_at;
use vmsnapfs_io::ShortBuffer;

pub(crate) const TYPE: u8 = 0xC1;
pub(crate) const UNITS: usize = 15;

pub(crate) fn units(e: &[u8]) -> Result<[u16; UNITS], ShortBuffer> {
    let mut out = [0u16; UNITS];
    for (i, u) in out.iter_mut().enumerate() {
        *u = u16_at(e, 2 + 2 * i)?;
    }
    Ok(out)
}
