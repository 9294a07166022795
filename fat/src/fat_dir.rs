//! Turns the bytes of a FAT12/16/32 directory into entries: long names matched to
//! their 8.3 entry, labels, deleted and dot entries set aside.

use crate::dir_data::DirData;
use crate::dir_entry::{slot_kind, ShortEntry, SlotKind, ATTR_READ_ONLY};
use crate::error::{Error, Result};
use crate::lfn_entry::{LfnAssembler, LfnEntry};
use crate::oem::sanitize;
use crate::{Attributes, DirEntry, FileId, FileKind, Metadata};

pub(crate) fn metadata(s: &ShortEntry) -> Metadata {
    let kind = if s.is_dir() {
        FileKind::Directory
    } else {
        FileKind::File
    };
    let size = if s.is_dir() { 0 } else { u64::from(s.size) };
    Metadata {
        kind,
        size,
        valid_data_length: size,
        created: s.created(),
        modified: s.modified(),
        accessed: s.accessed(),
        attributes: Attributes(u16::from(
            s.attr & (ATTR_READ_ONLY | 0x02 | 0x04 | 0x10 | 0x20),
        )),
        first_cluster: s.first_cluster,
    }
}

/// Returns the entries and, for the root, the volume label entry's text.
pub(crate) fn parse(
    data: &DirData,
    fat32: bool,
    is_root: bool,
) -> Result<(Vec<DirEntry>, Option<String>)> {
    let mut entries = Vec::new();
    let mut label = None;
    let mut lfn = LfnAssembler::default();
    for (i, e) in data.bytes.chunks_exact(32).enumerate() {
        let short = |e| Error::short_entry(data.offset(i * 32))(e);
        match slot_kind(e).map_err(short)? {
            SlotKind::End => break,
            SlotKind::Deleted => lfn.reset(),
            SlotKind::LongName => lfn.push(&LfnEntry::parse(e).map_err(short)?),
            SlotKind::Short => {
                let s = ShortEntry::parse(e, fat32).map_err(short)?;
                let long = lfn.finish(s.checksum());
                if s.is_volume_label() {
                    if is_root && label.is_none() {
                        label = Some(s.label());
                    }
                    continue;
                }
                if s.is_dot() || s.name[0] == b' ' {
                    continue;
                }
                let short = s.stored_name();
                let name = sanitize(long.unwrap_or_else(|| s.display_name()));
                if name.is_empty() || name == "." || name == ".." {
                    continue;
                }
                let meta = metadata(&s);
                entries.push(DirEntry {
                    name,
                    short_name: Some(sanitize(short)),
                    id: FileId::from_u64(data.offset(i * 32)),
                    kind: meta.kind,
                    metadata: Some(meta),
                });
            }
        }
    }
    Ok((entries, label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dir_data::DirMap;

    fn short(name: &[u8; 11], attr: u8, nt: u8) -> [u8; 32] {
        let mut e = [0u8; 32];
        e[..11].copy_from_slice(name);
        e[11] = attr;
        e[12] = nt;
        e
    }

    fn lfn(ord: u8, sum: u8, text: &str) -> [u8; 32] {
        let mut units = [0xffffu16; 13];
        let enc: Vec<u16> = text.encode_utf16().collect();
        units[..enc.len()].copy_from_slice(&enc);
        if enc.len() < 13 {
            units[enc.len()] = 0;
        }
        let mut e = [0u8; 32];
        e[0] = ord;
        e[11] = 0x0F;
        e[13] = sum;
        let offs = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
        for (u, o) in units.iter().zip(offs) {
            e[o..o + 2].copy_from_slice(&u.to_le_bytes());
        }
        e
    }

    #[test]
    fn slots_in_order() {
        let target = ShortEntry::parse(&short(b"HELLOW~1TXT", 0x20, 0), false).unwrap();
        let sum = target.checksum();
        let slots: Vec<[u8; 32]> = vec![
            short(b"MYVOLUME   ", 0x08, 0),
            short(b".          ", 0x10, 0),
            short(b"..         ", 0x10, 0),
            // A deleted file and its (deleted) long name.
            lfn(0xE5, sum, "gone"),
            short(b"\xE5ONE    TXT", 0x20, 0),
            // Orphan: slot 2 without slot 1, then an unrelated short entry.
            lfn(0x42, 0x99, "orphan"),
            short(b"PLAIN   TXT", 0x20, 0x18),
            // A proper two-slot name with a surrogate pair.
            lfn(0x42, sum, "d \u{1F600}.txt"),
            lfn(0x01, sum, "hello, world "),
            short(b"HELLOW~1TXT", 0x20, 0),
            short(b"SUBDIR     ", 0x10, 0x08),
            [0u8; 32],
            short(b"AFTER   END", 0x20, 0),
        ];
        let bytes: Vec<u8> = slots.iter().flatten().copied().collect();
        let data = DirData::new(bytes, DirMap::Linear(1024), 512, 1024);
        let (entries, label) = parse(&data, false, true).unwrap();
        assert_eq!(label.as_deref(), Some("MYVOLUME"));
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["plain.txt", "hello, world d \u{1F600}.txt", "subdir"]
        );
        assert_eq!(entries[1].short_name.as_deref(), Some("HELLOW~1.TXT"));
        assert_eq!(entries[1].id, FileId::from_u64(1024 + 9 * 32));
        assert_eq!(entries[2].kind, FileKind::Directory);
    }
}
