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

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static TABLE: [u32; 256] = table();

fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
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
