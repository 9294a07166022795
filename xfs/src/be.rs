//! Big-endian fields (XFS stores everything big-endian) and the CRC32C that v5
//! metadata carries, little-endian, in each block.
use vmsnapfs_io::le::array_at;
pub use vmsnapfs_io::le::{bytes_at, u8_at};
use vmsnapfs_io::ShortBuffer;

pub fn u16_at(b: &[u8], offset: usize) -> Result<u16, ShortBuffer> {
    array_at(b, offset).map(u16::from_be_bytes)
}

pub fn u32_at(b: &[u8], offset: usize) -> Result<u32, ShortBuffer> {
    array_at(b, offset).map(u32::from_be_bytes)
}

pub fn u64_at(b: &[u8], offset: usize) -> Result<u64, ShortBuffer> {
    array_at(b, offset).map(u64::from_be_bytes)
}

static CRC32C: vmsnapfs_io::crc::Crc32 = vmsnapfs_io::crc::Crc32::reflected(0x82F6_3B78);

fn crc32c_update(crc: u32, data: &[u8]) -> u32 {
    CRC32C.update(crc, data)
}

/// Whether the CRC32C stored (little-endian) at `crc_off` of `buf` matches the rest of
/// `buf` (the CRC field counted as zeros), as xfs_verify_cksum checks it.
pub fn crc_ok(buf: &[u8], crc_off: usize) -> bool {
    let Some(stored) = buf.get(crc_off..crc_off + 4) else {
        return false;
    };
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let mut c = crc32c_update(!0, &buf[..crc_off]);
    c = crc32c_update(c, &[0; 4]);
    c = crc32c_update(c, &buf[crc_off + 4..]);
    !c == stored
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32c_check_value() {
        assert_eq!(!super::crc32c_update(!0, b"123456789"), 0xE306_9283);
    }
}
