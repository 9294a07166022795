//! exFAT: the on-disk structures, one module each, and directory parsing on top.

pub(crate) mod allocation_bitmap;
pub(crate) mod boot_sector;
pub(crate) mod entry_set;
pub(crate) mod file_directory_entry;
pub(crate) mod file_name_entry;
pub(crate) mod stream_extension;
pub(crate) mod upcase_table;
pub(crate) mod volume_label;

use std::collections::HashMap;
use std::sync::Mutex;

use vmsnapfs_io::ReadAt;

use crate::dir_data::DirData;
use crate::error::{Error, Result};
use crate::read_exact;
use crate::{DirEntry, FileId, Metadata};
use entry_set::{MAX_SECONDARY, MIN_SECONDARY};
use upcase_table::{UpcaseLocation, UpcaseTable};

/// exFAT directories are at most 256 MiB (spec §6.2).
pub(crate) const MAX_DIR_BYTES: u64 = 256 * 1024 * 1024;
/// The free count is read from the bitmap at open only while that is cheap: 16 MiB
/// covers 128 Mi clusters (512 GiB at 4 KiB). Larger volumes report it as unknown.
pub(crate) const MAX_BITMAP_BYTES: u64 = 16 * 1024 * 1024;

/// What a `FileId` resolves to when its entry set cannot be re-read in place.
#[derive(Clone)]
enum Pinned {
    Ok(Metadata, bool),
    Damaged { computed: u16, stored: u16 },
}

pub(crate) struct ExFat {
    /// The volume's own table; `None` when missing or damaged (fallback used).
    pub upcase: Option<UpcaseTable>,
    pub root_cluster: u32,
    /// Entry sets that straddle a cluster boundary: the next cluster of a directory is
    /// only known from its chain, so these are remembered when listed. At most one per
    /// directory cluster listed, so this grows with what was listed, not with files.
    pinned: Mutex<HashMap<u64, Pinned>>,
}

pub(crate) struct RootMetadata {
    pub label: Option<String>,
    pub bitmap: Option<(u32, u64)>,
    pub upcase: Option<UpcaseLocation>,
}

/// `active_fat` picks the bitmap: TexFAT volumes keep one per FAT (BitmapFlags bit 0).
pub(crate) fn scan_root_metadata(root: &DirData, active_fat: u32) -> RootMetadata {
    let mut out = RootMetadata {
        label: None,
        bitmap: None,
        upcase: None,
    };
    for e in root.bytes.chunks_exact(32) {
        match e[0] {
            0 => break,
            allocation_bitmap::TYPE
                if out.bitmap.is_none() && u32::from(e[1] & 1) == active_fat =>
            {
                out.bitmap = Some((crate::bytes::u32_at(e, 20), crate::bytes::u64_at(e, 24)))
            }
            upcase_table::TYPE if out.upcase.is_none() => {
                out.upcase = Some(upcase_table::location(e))
            }
            volume_label::TYPE if out.label.is_none() => {
                out.label = Some(volume_label::parse(e)).filter(|l| !l.is_empty())
            }
            _ => {}
        }
    }
    out
}

impl ExFat {
    pub fn new(root_cluster: u32) -> ExFat {
        ExFat {
            upcase: None,
            root_cluster,
            pinned: Mutex::new(HashMap::new()),
        }
    }

    pub fn fold(&self, name: &str) -> String {
        self.upcase
            .as_ref()
            .unwrap_or_else(|| UpcaseTable::fallback())
            .fold(name)
    }

    pub fn parse_dir(&self, data: &DirData) -> Vec<DirEntry> {
        let bytes = &data.bytes;
        let slots = bytes.len() / 32;
        let mut entries = Vec::new();
        let mut i = 0;
        while i < slots {
            let t = bytes[i * 32];
            if t == 0 {
                break;
            }
            if t != file_directory_entry::TYPE {
                // Unused, deleted, other primaries and stray secondaries: their own
                // secondaries fail this same test, so stepping one slot is enough.
                i += 1;
                continue;
            }
            let count = usize::from(bytes[i * 32 + 1]);
            if !(MIN_SECONDARY..=MAX_SECONDARY).contains(&count) || i + 1 + count > slots {
                i += 1;
                continue;
            }
            let set = &bytes[i * 32..(i + 1 + count) * 32];
            let offset = data.offset(i * 32);
            let parsed = match entry_set::parse(set, offset) {
                Ok(p) => p,
                Err(_) => {
                    i += 1;
                    continue;
                }
            };
            let Some(name) = parsed.name.filter(|n| n != "." && n != "..") else {
                i += 1;
                continue;
            };
            let crosses = data
                .offset_in_cluster(i * 32)
                .is_some_and(|within| within + set.len() as u64 > data_cluster_size(data));
            if crosses {
                let pin = match &parsed.damage {
                    Some(Error::SetChecksum {
                        computed, stored, ..
                    }) => Pinned::Damaged {
                        computed: *computed,
                        stored: *stored,
                    },
                    _ => Pinned::Ok(parsed.meta.clone(), parsed.contiguous),
                };
                self.pinned
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(offset, pin);
            }
            entries.push(DirEntry {
                name,
                short_name: None,
                id: FileId::from_u64(offset),
                kind: parsed.meta.kind,
                metadata: parsed.damage.is_none().then_some(parsed.meta),
            });
            i += 1 + count;
        }
        entries
    }

    /// Resolves a File entry at volume offset `id` whose position within its cluster
    /// is `in_cluster`.
    pub fn node(
        &self,
        reader: &dyn ReadAt,
        id: FileId,
        in_cluster: u64,
        cluster_size: u64,
    ) -> Result<(Metadata, bool)> {
        let off = id.as_u64();
        let mut head = [0u8; 32];
        read_exact(reader, off, &mut head)?;
        if head[0] != file_directory_entry::TYPE {
            return Err(Error::InvalidFileId(id));
        }
        let count = usize::from(head[1]);
        if !(MIN_SECONDARY..=MAX_SECONDARY).contains(&count) {
            return Err(Error::InvalidFileId(id));
        }
        let len = 32 * (1 + count as u64);
        if in_cluster + len > cluster_size {
            let pinned = self
                .pinned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&off)
                .cloned();
            return match pinned {
                Some(Pinned::Ok(m, c)) => Ok((m, c)),
                Some(Pinned::Damaged { computed, stored }) => Err(Error::SetChecksum {
                    offset: off,
                    computed,
                    stored,
                }),
                None => Err(Error::InvalidFileId(id)),
            };
        }
        let mut set = vec![0u8; len as usize];
        read_exact(reader, off, &mut set)?;
        let parsed = entry_set::parse(&set, off)?;
        match parsed.damage {
            Some(e) => Err(e),
            None => Ok((parsed.meta, parsed.contiguous)),
        }
    }
}

fn data_cluster_size(data: &DirData) -> u64 {
    data.cluster_size()
}
