//! The Up-case Table (exFAT spec §7.2), which defines case-insensitive name matching
//! on this volume. Stored compressed: 0xFFFF followed by a count of identity mappings.

use vmsnapfs_io::le::{u16_at, u32_at, u64_at};
use vmsnapfs_io::ShortBuffer;

pub(crate) const TYPE: u8 = 0x82;
/// An uncompressed table is 128 KiB; anything larger is not a valid table.
pub(crate) const MAX_BYTES: u64 = 128 * 1024;

pub(crate) struct UpcaseTable {
    map: Vec<u16>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct UpcaseLocation {
    pub checksum: u32,
    pub first_cluster: u32,
    pub data_length: u64,
}

pub(crate) fn location(e: &[u8]) -> Result<UpcaseLocation, ShortBuffer> {
    Ok(UpcaseLocation {
        checksum: u32_at(e, 4)?,
        first_cluster: u32_at(e, 20)?,
        data_length: u64_at(e, 24)?,
    })
}

pub(crate) fn checksum(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0u32, |s, &b| s.rotate_right(1).wrapping_add(u32::from(b)))
}

impl UpcaseTable {
    /// Used when the volume's table is missing or damaged: Unicode simple upper-casing
    /// for the BMP, which matches the spec's recommended table closely. Built once per
    /// process, since most volumes never need it.
    pub fn fallback() -> &'static UpcaseTable {
        static TABLE: std::sync::OnceLock<UpcaseTable> = std::sync::OnceLock::new();
        TABLE.get_or_init(Self::build_fallback)
    }

    fn build_fallback() -> Self {
        let map = (0..=0xFFFFu32)
            .map(|u| {
                char::from_u32(u)
                    .map(crate::oem::simple_upper)
                    .and_then(|c| u16::try_from(u32::from(c)).ok())
                    .unwrap_or(u as u16)
            })
            .collect();
        UpcaseTable { map }
    }
}

impl UpcaseTable {
    /// Decompresses `bytes` if its checksum matches; `None` means "use the default".
    pub fn load(bytes: &[u8], expected: u32) -> Option<UpcaseTable> {
        if bytes.len() < 2 || checksum(bytes) != expected {
            return None;
        }
        let mut map: Vec<u16> = (0..=0xFFFFu32).map(|u| u as u16).collect();
        let mut idx = 0usize;
        let n = bytes.len() / 2;
        let mut i = 0;
        while i < n && idx < map.len() {
            // In bounds by the loop's own limits; a miss would be a damaged table, which
            // like a bad checksum means the default one.
            let u = u16_at(bytes, 2 * i).ok()?;
            if u == 0xFFFF && i + 1 < n {
                idx += usize::from(u16_at(bytes, 2 * i + 2).ok()?);
                i += 2;
            } else {
                map[idx] = u;
                idx += 1;
                i += 1;
            }
        }
        Some(UpcaseTable { map })
    }

    pub fn fold(&self, name: &str) -> String {
        let units: Vec<u16> = name
            .encode_utf16()
            .map(|u| self.map.get(usize::from(u)).copied().unwrap_or(u))
            .collect();
        String::from_utf16_lossy(&units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_form() {
        // 'a'..'c' map to 'A'..'C', the rest is identity.
        let mut words: Vec<u16> = vec![0xFFFF, 0x61];
        words.extend([0x41, 0x42, 0x43]);
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let t = UpcaseTable::load(&bytes, checksum(&bytes)).unwrap();
        assert_eq!(t.fold("abcd"), "ABCd");
        assert!(UpcaseTable::load(&bytes, 1).is_none());
        assert_eq!(UpcaseTable::fallback().fold("straße é"), "STRAßE É");
    }
}
