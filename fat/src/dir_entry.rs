//! The 32-byte short (8.3) directory entry (FAT spec §6).

use crate::oem;
use crate::time::{self, Timestamp};
use vmsnapfs_io::le::{array_at, u16_at, u32_at, u8_at};
use vmsnapfs_io::ShortBuffer;

pub(crate) const ATTR_READ_ONLY: u8 = 0x01;
pub(crate) const ATTR_VOLUME_ID: u8 = 0x08;
pub(crate) const ATTR_DIRECTORY: u8 = 0x10;
pub(crate) const ATTR_LONG_NAME: u8 = 0x0F;
const ATTR_LONG_NAME_MASK: u8 = 0x3F;

/// NT stores "display this part in lower case" in DIR_NTRes instead of a long name.
const NT_LOWER_BASE: u8 = 0x08;
const NT_LOWER_EXT: u8 = 0x10;

/// What a 32-byte directory slot holds, decided from its first byte and attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotKind {
    /// 0x00: this and all following slots are free.
    End,
    /// 0xE5: deleted.
    Deleted,
    LongName,
    Short,
}

pub(crate) fn slot_kind(e: &[u8]) -> Result<SlotKind, ShortBuffer> {
    Ok(match u8_at(e, 0)? {
        0x00 => SlotKind::End,
        0xE5 => SlotKind::Deleted,
        _ if u8_at(e, 11)? & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME => SlotKind::LongName,
        _ => SlotKind::Short,
    })
}

#[derive(Debug, Clone)]
pub(crate) struct ShortEntry {
    pub name: [u8; 11],
    pub attr: u8,
    pub nt_res: u8,
    pub crt_time_tenth: u8,
    pub crt_time: u16,
    pub crt_date: u16,
    pub acc_date: u16,
    pub first_cluster: u32,
    pub wrt_time: u16,
    pub wrt_date: u16,
    pub size: u32,
}

impl ShortEntry {
    /// `fat32` decides whether DIR_FstClusHI counts: FAT12/16 leave it to OS/2 EAs.
    pub fn parse(e: &[u8], fat32: bool) -> Result<ShortEntry, ShortBuffer> {
        let name = array_at(e, 0)?;
        let hi = if fat32 { u32::from(u16_at(e, 20)?) } else { 0 };
        Ok(ShortEntry {
            name,
            attr: u8_at(e, 11)?,
            nt_res: u8_at(e, 12)?,
            crt_time_tenth: u8_at(e, 13)?,
            crt_time: u16_at(e, 14)?,
            crt_date: u16_at(e, 16)?,
            acc_date: u16_at(e, 18)?,
            first_cluster: (hi << 16) | u32::from(u16_at(e, 26)?),
            wrt_time: u16_at(e, 22)?,
            wrt_date: u16_at(e, 24)?,
            size: u32_at(e, 28)?,
        })
    }

    pub fn is_dir(&self) -> bool {
        self.attr & ATTR_DIRECTORY != 0
    }

    pub fn is_volume_label(&self) -> bool {
        self.attr & (ATTR_VOLUME_ID | ATTR_DIRECTORY) == ATTR_VOLUME_ID
    }

    pub fn is_dot(&self) -> bool {
        &self.name == b".          " || &self.name == b"..         "
    }

    /// The checksum that every long-name slot of this entry must carry (FAT spec §7.2).
    pub fn checksum(&self) -> u8 {
        self.name
            .iter()
            .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
    }

    fn part(&self, range: std::ops::Range<usize>, lower: bool) -> String {
        let bytes = &self.name[range.clone()];
        let end = bytes.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
        bytes[..end]
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                // 0x05 in the first byte stands for a real 0xE5 (a KANJI lead byte).
                let b = if range.start == 0 && i == 0 && b == 0x05 {
                    0xE5
                } else {
                    b
                };
                let c = oem::decode_byte(b);
                if lower {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect()
    }

    fn join(base: String, ext: String) -> String {
        if ext.is_empty() {
            base
        } else {
            format!("{base}.{ext}")
        }
    }

    /// The name as Windows shows it when there is no long name: NT case flags applied.
    pub fn display_name(&self) -> String {
        Self::join(
            self.part(0..8, self.nt_res & NT_LOWER_BASE != 0),
            self.part(8..11, self.nt_res & NT_LOWER_EXT != 0),
        )
    }

    /// The name exactly as stored (upper case), the alias lookups also match.
    pub fn stored_name(&self) -> String {
        Self::join(self.part(0..8, false), self.part(8..11, false))
    }

    pub fn label(&self) -> String {
        self.part(0..11, false)
    }

    pub fn created(&self) -> Option<Timestamp> {
        time::decode(self.crt_date, self.crt_time, self.crt_time_tenth)
    }
    pub fn modified(&self) -> Option<Timestamp> {
        time::decode(self.wrt_date, self.wrt_time, 0)
    }
    pub fn accessed(&self) -> Option<Timestamp> {
        time::decode(self.acc_date, 0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &[u8; 11], nt: u8) -> ShortEntry {
        let mut e = [0u8; 32];
        e[..11].copy_from_slice(name);
        e[12] = nt;
        ShortEntry::parse(&e, true).unwrap()
    }

    #[test]
    fn names_and_case_flags() {
        assert_eq!(entry(b"README  TXT", 0).display_name(), "README.TXT");
        assert_eq!(entry(b"README  TXT", 0x08).display_name(), "readme.TXT");
        assert_eq!(entry(b"README  TXT", 0x18).display_name(), "readme.txt");
        assert_eq!(entry(b"NOEXT      ", 0x10).display_name(), "NOEXT");
        assert_eq!(entry(b"\x05BC     TXT", 0).display_name(), "\u{3c3}BC.TXT");
        assert!(entry(b"..         ", 0).is_dot());
    }

    #[test]
    fn checksum_matches_spec_example() {
        // Computed by hand with the spec's algorithm.
        let e = entry(b"FOO     BAR", 0);
        let mut sum = 0u8;
        for &b in b"FOO     BAR" {
            sum = (if sum & 1 != 0 { 0x80u8 } else { 0 })
                .wrapping_add(sum >> 1)
                .wrapping_add(b);
        }
        assert_eq!(e.checksum(), sum);
    }
}
