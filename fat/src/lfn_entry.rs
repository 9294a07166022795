//! VFAT long-name slots (FAT spec §7) and the rules that tie them to their 8.3 entry.

use vmsnapfs_io::le::{u16_at, u8_at};
use vmsnapfs_io::ShortBuffer;

const LAST_LONG_ENTRY: u8 = 0x40;
/// 255 UCS-2 characters need at most 20 slots of 13.
const MAX_SLOTS: usize = 20;

#[derive(Debug, Clone, Copy)]
pub(crate) struct LfnEntry {
    pub ord: u8,
    pub checksum: u8,
    pub units: [u16; 13],
}

impl LfnEntry {
    pub fn parse(e: &[u8]) -> Result<LfnEntry, ShortBuffer> {
        let mut units = [0u16; 13];
        let offs = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
        for (u, off) in units.iter_mut().zip(offs) {
            *u = u16_at(e, off)?;
        }
        Ok(LfnEntry {
            ord: u8_at(e, 0)?,
            checksum: u8_at(e, 13)?,
            units,
        })
    }
}

/// Collects long-name slots, which precede their short entry in reverse order. Any
/// break in the sequence (wrong ordinal, different checksum, deleted slot) drops what
/// was collected: those slots are orphans and the short name is used instead.
#[derive(Debug, Default)]
pub(crate) struct LfnAssembler {
    parts: Vec<[u16; 13]>,
    total: usize,
    next: usize,
    checksum: u8,
    active: bool,
}

impl LfnAssembler {
    pub fn reset(&mut self) {
        self.active = false;
    }

    pub fn push(&mut self, e: &LfnEntry) {
        let n = usize::from(e.ord & 0x1f);
        // Ordinals run 1..=20; any other bit, or 0, cannot belong to a sequence.
        if n == 0 || n > MAX_SLOTS || e.ord & !(LAST_LONG_ENTRY | 0x1f) != 0 {
            self.active = false;
            return;
        }
        if e.ord & LAST_LONG_ENTRY != 0 {
            self.parts.clear();
            self.parts.resize(n, [0xffff; 13]);
            self.total = n;
            self.next = n;
            self.checksum = e.checksum;
            self.active = true;
        } else if !self.active || n != self.next || e.checksum != self.checksum {
            self.active = false;
            return;
        }
        self.parts[n - 1] = e.units;
        self.next = n - 1;
    }

    /// The long name for the short entry with `checksum`, if a complete, matching
    /// sequence precedes it. Consumes the collected slots either way.
    pub fn finish(&mut self, checksum: u8) -> Option<String> {
        if !self.active || self.next != 0 || self.checksum != checksum {
            self.active = false;
            return None;
        }
        self.active = false;
        let units: Vec<u16> = self.parts[..self.total]
            .iter()
            .flatten()
            .copied()
            .take_while(|&u| u != 0)
            .collect();
        if units.is_empty() || units.len() > 255 {
            return None;
        }
        Some(String::from_utf16_lossy(&units))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(ord: u8, sum: u8, text: &str) -> LfnEntry {
        let mut units = [0xffffu16; 13];
        let enc: Vec<u16> = text.encode_utf16().collect();
        for (i, u) in enc.iter().enumerate() {
            units[i] = *u;
        }
        if enc.len() < 13 {
            units[enc.len()] = 0;
        }
        LfnEntry {
            ord,
            checksum: sum,
            units,
        }
    }

    #[test]
    fn assembles_and_rejects() {
        let mut a = LfnAssembler::default();
        a.push(&slot(0x42, 7, "world.txt"));
        a.push(&slot(1, 7, "hello, there "));
        assert_eq!(a.finish(7).as_deref(), Some("hello, there world.txt"));
        a.push(&slot(0x42, 7, "world.txt"));
        a.push(&slot(1, 7, "hello, there "));
        assert_eq!(a.finish(8), None, "checksum mismatch");
        a.push(&slot(0x42, 7, "x"));
        assert_eq!(a.finish(7), None, "missing slot 1");
        a.push(&slot(1, 7, "orphan"));
        assert_eq!(a.finish(7), None, "no first slot");
        // Ordinal 0 (0x20 is a valid first byte) after a complete sequence.
        a.push(&slot(0x41, 7, "x"));
        a.push(&slot(0x20, 7, "y"));
        assert_eq!(a.finish(7), None);
        a.push(&slot(0x41, 7, "x"));
        a.push(&slot(0x80 | 0x41, 7, "y"));
        assert_eq!(a.finish(7), None);
        a.push(&slot(0x41 + 21, 7, "too many"));
        assert_eq!(a.finish(7), None);
    }
}
