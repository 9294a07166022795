//! Update sequence arrays ("fixups"): the last two bytes of every 512-byte stride of a
//! multi-sector structure are replaced on disk by a sequence number, so a write torn
//! between sectors is detectable. Undoing them is the first thing done to a record.

use crate::fields::short;
use vmsnapfs_io::le::u16_at;

/// Strides are 512 bytes regardless of the volume's sector size (NTFS_BLOCK_SIZE).
const STRIDE: usize = 512;

pub fn apply_fixups(buf: &mut [u8]) -> Result<(), String> {
    let usa_off = u16_at(buf, 4).map_err(short("record too short for header"))? as usize;
    let usa_count = u16_at(buf, 6).map_err(short("record too short for header"))? as usize;
    if !buf.len().is_multiple_of(STRIDE) || usa_count == 0 {
        return Err(format!("bad update sequence count {usa_count}"));
    }
    let strides = buf.len() / STRIDE;
    if usa_count - 1 != strides {
        return Err(format!(
            "update sequence count {usa_count} does not match {} byte record",
            buf.len()
        ));
    }
    // The array must sit in the first stride, before that stride's own fixup slot.
    usa_off
        .checked_add(usa_count * 2)
        .filter(|&e| e <= STRIDE - 2 && usa_off >= 8 && usa_off.is_multiple_of(2))
        .ok_or_else(|| format!("update sequence array at {usa_off} out of bounds"))?;
    let usn = u16_at(buf, usa_off).map_err(short("truncated"))?;
    for i in 0..strides {
        let pos = (i + 1) * STRIDE - 2;
        let on_disk = u16_at(buf, pos).map_err(short("truncated"))?;
        if on_disk != usn {
            return Err(format!(
                "torn write: sector {i} ends with {on_disk:#06x}, expected update sequence {usn:#06x}"
            ));
        }
        let fix = u16_at(buf, usa_off + 2 + 2 * i).map_err(short("truncated"))?;
        buf[pos..pos + 2].copy_from_slice(&fix.to_le_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_torn() {
        let mut b = vec![0u8; 1024];
        b[4] = 0x30; // usa offset 48
        b[6] = 3;
        b[48] = 0x07; // usn
        b[50] = 0xAA;
        b[52] = 0xBB;
        b[510] = 0x07;
        b[1022] = 0x07;
        let mut c = b.clone();
        apply_fixups(&mut c).unwrap();
        assert_eq!(c[510], 0xAA);
        assert_eq!(c[1022], 0xBB);
        b[1022] = 0x08;
        assert!(apply_fixups(&mut b).unwrap_err().contains("torn"));
    }
}
