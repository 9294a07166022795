//! LVM2's checksum (lib/misc/crc.c): the reflected CRC-32 polynomial 0xEDB88320, started
//! at [`INITIAL_CRC`] and without the final inversion zlib's CRC-32 applies.

pub const INITIAL_CRC: u32 = 0xf597_a6cf;

const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Continues a checksum `crc` over `buf`.
pub fn calc_crc(crc: u32, buf: &[u8]) -> u32 {
    buf.iter().fold(crc, |c, &b| {
        (c >> 8) ^ TABLE[((c ^ b as u32) & 0xff) as usize]
    })
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
