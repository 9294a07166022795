//! exFAT: the on-disk structures, one module each, and directory parsing on top.

pub(crate) mod allocation_bitmap;
pub(crate) mod boot_sector;
pub(crate) mod entry_set;
pub(crate) mod file_directory_entry;
pub(crate) mod file_name_entry;
pub(crate) mod stream_extension;
pub(crate) mod upcase_table;
pub(crate) mod volume_label;

use vmsnapfs_io::le::{u32_at, u64_at};
use vmsnapfs_io::ReadAt;

use crate::dir_data::DirData;
use crate::error::{Error, Result};
use crate::fat::FatTable;
use crate::read_exact;
use crate::{DirEntry, FileId, Metadata};
use entry_set::{MAX_SECONDARY, MIN_SECONDARY};
use upcase_table::{UpcaseLocation, UpcaseTable};

/// exFAT directories are at most 256 MiB (spec §6.2).
pub(crate) const MAX_DIR_BYTES: u64 = 256 * 1024 * 1024;
/// The free count is read from the bitmap at open only while that is cheap: 16 MiB
/// covers 128 Mi clusters (512 GiB at 4 KiB). Larger volumes report it as unknown.
pub(crate) const MAX_BITMAP_BYTES: u64 = 16 * 1024 * 1024;

pub(crate) struct ExFat {
    /// The volume's own table; `None` when missing or damaged (fallback used).
    pub upcase: Option<UpcaseTable>,
    pub root_cluster: u32,
}

/// Bit 0 of an exFAT `FileId` (entry offsets are multiples of 32) records that the
/// parent directory is NoFatChain. An entry set can straddle a cluster boundary, and
/// then its continuation is the next cluster (contiguous parent) or the FAT link of
/// this one: either way found without walking the directory from its start.
const CONTIGUOUS_PARENT: u64 = 1;

pub(crate) struct RootMetadata {
    pub label: Option<String>,
    pub bitmap: Option<(u32, u64)>,
    pub upcase: Option<UpcaseLocation>,
}

/// `active_fat` picks the bitmap: TexFAT volumes keep one per FAT (BitmapFlags bit 0).
pub(crate) fn scan_root_metadata(root: &DirData, active_fat: u32) -> Result<RootMetadata> {
    let mut out = RootMetadata {
        label: None,
        bitmap: None,
        upcase: None,
    };
    for (i, e) in root.bytes.chunks_exact(32).enumerate() {
        let short = |e| Error::short_entry(root.offset(i * 32))(e);
        match e[0] {
            0 => break,
            allocation_bitmap::TYPE
                if out.bitmap.is_none() && u32::from(e[1] & 1) == active_fat =>
            {
                let first = u32_at(e, 20).map_err(short)?;
                out.bitmap = Some((first, u64_at(e, 24).map_err(short)?))
            }
            upcase_table::TYPE if out.upcase.is_none() => {
                out.upcase = Some(upcase_table::location(e).map_err(short)?)
            }
            volume_label::TYPE if out.label.is_none() => {
                out.label = Some(volume_label::parse(e).map_err(short)?).filter(|l| !l.is_empty())
            }
            _ => {}
        }
    }
    Ok(out)
}

impl ExFat {
    pub fn new(root_cluster: u32) -> ExFat {
        ExFat {
            upcase: None,
            root_cluster,
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
            entries.push(DirEntry {
                name,
                short_name: None,
                id: FileId::from_u64(if data.contiguous {
                    offset | CONTIGUOUS_PARENT
                } else {
                    offset
                }),
                kind: parsed.meta.kind,
                metadata: parsed.damage.is_none().then_some(parsed.meta),
            });
            i += 1 + count;
        }
        entries
    }

    /// Resolves a `FileId` by re-reading its entry set, following the parent's
    /// cluster chain one link at a time where the set crosses into the next cluster.
    pub fn node(&self, geo: &Geometry<'_>, id: FileId) -> Result<(Metadata, bool)> {
        let raw = id.as_u64();
        let off = raw & !31;
        if raw & 31 & !CONTIGUOUS_PARENT != 0 || off < geo.data_start {
            return Err(Error::InvalidFileId(id));
        }
        let mut head = [0u8; 32];
        read_exact(geo.reader, off, &mut head)?;
        if head[0] != file_directory_entry::TYPE {
            return Err(Error::InvalidFileId(id));
        }
        let count = usize::from(head[1]);
        if !(MIN_SECONDARY..=MAX_SECONDARY).contains(&count) {
            return Err(Error::InvalidFileId(id));
        }
        let cs = geo.cluster_size;
        let rel = off - geo.data_start;
        let mut cluster = u32::try_from(rel / cs + 2).map_err(|_| Error::InvalidFileId(id))?;
        geo.fat.check_cluster(cluster, cluster)?;
        let mut set = vec![0u8; 32 * (1 + count)];
        let mut filled = 0;
        let mut pos = off;
        let mut room = (cs - rel % cs) as usize;
        loop {
            let take = room.min(set.len() - filled);
            read_exact(geo.reader, pos, &mut set[filled..filled + take])?;
            filled += take;
            if filled == set.len() {
                break;
            }
            let first = cluster;
            cluster = if raw & CONTIGUOUS_PARENT != 0 {
                cluster.saturating_add(1)
            } else {
                geo.fat.next(cluster)?.ok_or(Error::CorruptEntry {
                    offset: off,
                    reason: "entry set runs past the end of its directory".into(),
                })?
            };
            geo.fat.check_cluster(first, cluster)?;
            pos = geo.data_start + u64::from(cluster - 2) * cs;
            room = cs as usize;
        }
        let parsed = entry_set::parse(&set, off)?;
        match parsed.damage {
            Some(e) => Err(e),
            None => Ok((parsed.meta, parsed.contiguous)),
        }
    }
}

/// What resolving an id needs to know about the volume.
pub(crate) struct Geometry<'a> {
    pub reader: &'a dyn ReadAt,
    pub fat: &'a FatTable,
    pub data_start: u64,
    pub cluster_size: u64,
}
