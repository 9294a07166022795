//! Table-driven reflected CRC-32s, one table per polynomial, built at compile time:
//! XFS's CRC32C (0x82F63B78) and LVM2's CRC-32 (0xEDB88320, its own start value) are the
//! same loop over different tables.

pub struct Crc32 {
    table: [u32; 256],
}

impl Crc32 {
    /// The table of a reflected polynomial.
    pub const fn reflected(poly: u32) -> Crc32 {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        Crc32 { table }
    }

    /// Continues the register `crc` over `data` (no inversions: callers apply their
    /// format's start value and final step).
    pub fn update(&self, crc: u32, data: &[u8]) -> u32 {
        data.iter().fold(crc, |c, &b| {
            (c >> 8) ^ self.table[((c ^ b as u32) & 0xff) as usize]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Crc32;

    #[test]
    fn check_values() {
        // The catalogue's check values for "123456789": CRC-32 (zlib) and CRC-32C.
        const ZLIB: Crc32 = Crc32::reflected(0xEDB8_8320);
        const CASTAGNOLI: Crc32 = Crc32::reflected(0x82F6_3B78);
        assert_eq!(!ZLIB.update(!0, b"123456789"), 0xCBF4_3926);
        assert_eq!(!CASTAGNOLI.update(!0, b"123456789"), 0xE306_9283);
        let a = ZLIB.update(7, b"1234");
        assert_eq!(ZLIB.update(a, b"56789"), ZLIB.update(7, b"123456789"));
    }
}
