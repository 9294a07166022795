//! LVM2's checksum (lib/misc/crc.c): the reflected CRC-32 polynomial 0xEDB88320, started
//! at [`INITIAL_CRC`] and without the final inversion zlib's CRC-32 applies.

pub const INITIAL_CRC: u32 = 0xf597_a6cf;

static TABLE: vmsnapfs_io::crc::Crc32 = vmsnapfs_io::crc::Crc32::reflected(0xedb8_8320);

/// Continues a checksum `crc` over `buf`.
pub fn calc_crc(crc: u32, buf: &[u8]) -> u32 {
    TABLE.update(crc, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_zlib_crc32_up_to_the_inversions() {
        // zlib's CRC-32 of "123456789" is 0xcbf43926: initial !0, final inversion.
        assert_eq!(!calc_crc(!0, b"123456789"), 0xcbf4_3926);
        // Continuing over two pieces is one pass over both.
        let a = calc_crc(INITIAL_CRC, b"1234");
        assert_eq!(calc_crc(a, b"56789"), calc_crc(INITIAL_CRC, b"123456789"));
    }
}
