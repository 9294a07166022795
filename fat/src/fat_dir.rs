//! Turns the bytes of a FAT12/16/32 directory into entries: long names matched to
//! their 8.3 entry, labels, deleted and dot entries set aside.

use crate::dir_data::DirData;
use crate::dir_entry::{slot_kind, ShortEntry, SlotKind, ATTR_READ_ONLY};
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
pub(crate) fn parse(data: &DirData, fat32: bool, is_root: bool) -> (Vec<DirEntry>, Option<String>) {
    let mut entries = Vec::new();
    let mut label = None;
    let mut lfn = LfnAssembler::default();
    for (i, e) in data.bytes.chunks_exact(32).enumerate() {
        match slot_kind(e) {
            SlotKind::End => break,
            SlotKind::Deleted => lfn.reset(),
            SlotKind::LongName => lfn.push(&LfnEntry::parse(e)),
            SlotKind::Short => {
                let s = ShortEntry::parse(e, fat32);
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
    (entries, label)
}
