//! The grain directory (GD) and the grain tables (GTs) it points to: the two-level map from
//! a grain of an extent to where its data lives. Shared by hosted sparse, streamOptimized,
//! COWD and SEsparse extents, which differ only in entry width and encoding.

use std::sync::Arc;

use vmsnapfs_io::{fits, ReadAt};

use crate::error::{Error, Result};
use crate::sesparse_header::{self, SeGte};
use vmsnapfs_io::ShardedLru;

/// qemu's bound on GD entries; also far above any real disk (2 TB at 64 KiB grains is 64 Ki).
pub(crate) const MAX_GD_ENTRIES: u64 = 32 * 1024 * 1024;
/// Decoded grain tables kept per extent.
const GT_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Stands for a GD entry that cannot be followed; lookups through it fail.
const BAD_ENTRY: u64 = u64::MAX;

#[derive(Debug, Clone, Copy)]
pub(crate) enum TableFormat {
    /// KDMV and COWD: 32-bit sector numbers, 0 = unallocated.
    Sector32 {
        /// GTE 1 means "zeroed grain" (KDMV flag bit 2).
        zero_grain: bool,
        compressed: bool,
    },
    /// SEsparse: 64-bit typed entries; offsets in sectors.
    SeSparse {
        tables_offset: u64,
        grains_offset: u64,
    },
}

/// Where one grain's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grain {
    /// Not in this link: the parent decides.
    Unallocated,
    Zero,
    /// Byte offset of the grain in the extent file.
    Data(u64),
    /// Byte offset of the grain's marker (or deflate stream) in the extent file.
    Compressed(u64),
}

pub(crate) struct GrainDirectory {
    file: String,
    src: Arc<dyn ReadAt>,
    /// Byte offset of each grain table, 0 when absent.
    tables: Vec<u64>,
    gtes_per_gt: u64,
    entry_len: u64,
    grain_sectors: u64,
    format: TableFormat,
    cache: ShardedLru<u64, Arc<[u64]>>,
}

impl GrainDirectory {
    /// Reads `entries` GD entries at `gd_offset` (bytes). The directory must lie inside the
    /// file, which bounds the allocation by the file's real size.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn load(
        file: &str,
        src: Arc<dyn ReadAt>,
        gd_offset: u64,
        entries: u64,
        entry_len: u64,
        gtes_per_gt: u64,
        grain_sectors: u64,
        format: TableFormat,
    ) -> Result<Self> {
        if entries > MAX_GD_ENTRIES {
            return Err(Error::corrupt(
                file,
                gd_offset,
                format!("grain directory of {entries} entries is implausibly large"),
            ));
        }
        let bytes = entries * entry_len;
        if !fits(gd_offset, bytes, src.size()) {
            return Err(Error::corrupt(
                file,
                gd_offset,
                format!(
                    "grain directory of {bytes} bytes lies past the end of the {}-byte file",
                    src.size()
                ),
            ));
        }
        let mut raw = vec![0u8; bytes as usize];
        read_exact(file, &*src, gd_offset, &mut raw)?;
        let tables = raw
            .chunks_exact(entry_len as usize)
            .map(|c| match format {
                TableFormat::Sector32 { .. } => {
                    let v = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64;
                    v * 512
                }
                TableFormat::SeSparse { tables_offset, .. } => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    match sesparse_header::gd_entry_table_index(u64::from_le_bytes(a)) {
                        Ok(None) => 0,
                        Ok(Some(i)) => i
                            .checked_mul(sesparse_header::GT_SECTORS)
                            .and_then(|s| s.checked_add(tables_offset))
                            .and_then(|s| s.checked_mul(512))
                            .unwrap_or(BAD_ENTRY),
                        Err(_) => BAD_ENTRY,
                    }
                }
            })
            .collect();
        let gt_bytes = gtes_per_gt * 8;
        let cache_entries = (GT_CACHE_BYTES / gt_bytes).max(64) as usize;
        Ok(Self {
            file: file.to_string(),
            src,
            tables,
            gtes_per_gt,
            entry_len,
            grain_sectors,
            format,
            cache: ShardedLru::new(cache_entries),
        })
    }

    pub(crate) fn entries(&self) -> u64 {
        self.tables.len() as u64
    }

    pub(crate) fn gtes_per_gt(&self) -> u64 {
        self.gtes_per_gt
    }

    /// The raw entries of grain table `gd_index`, or None when the whole table is absent.
    pub(crate) fn table(&self, gd_index: u64) -> Result<Option<Arc<[u64]>>> {
        let Some(&at) = self.tables.get(gd_index as usize) else {
            return Err(Error::corrupt(
                &self.file,
                0,
                format!(
                    "grain table {gd_index} is beyond the {}-entry grain directory",
                    self.tables.len()
                ),
            ));
        };
        if at == 0 {
            return Ok(None);
        }
        if at == BAD_ENTRY {
            return Err(Error::corrupt(
                &self.file,
                0,
                format!("grain directory entry {gd_index} is invalid"),
            ));
        }
        if let Some(t) = self.cache.get(&gd_index) {
            return Ok(Some(t));
        }
        let bytes = self.gtes_per_gt * self.entry_len;
        if !fits(at, bytes, self.src.size()) {
            return Err(Error::corrupt(
                &self.file,
                at,
                format!(
                    "grain table {gd_index} lies past the end of the {}-byte file",
                    self.src.size()
                ),
            ));
        }
        let mut raw = vec![0u8; bytes as usize];
        read_exact(&self.file, &*self.src, at, &mut raw)?;
        let t: Arc<[u64]> = raw
            .chunks_exact(self.entry_len as usize)
            .map(|c| {
                if c.len() == 4 {
                    u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64
                } else {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    u64::from_le_bytes(a)
                }
            })
            .collect();
        self.cache.put(gd_index, t.clone());
        Ok(Some(t))
    }

    /// Decodes one grain table entry.
    pub(crate) fn decode(&self, e: u64) -> Result<Grain> {
        match self.format {
            TableFormat::Sector32 {
                zero_grain,
                compressed,
            } => Ok(match e {
                0 => Grain::Unallocated,
                1 if zero_grain => Grain::Zero,
                s if compressed => Grain::Compressed(s * 512),
                s => Grain::Data(s * 512),
            }),
            TableFormat::SeSparse { grains_offset, .. } => {
                match sesparse_header::decode_gte(e)
                    .map_err(|r| Error::corrupt(&self.file, 0, r))?
                {
                    SeGte::Unallocated => Ok(Grain::Unallocated),
                    SeGte::Unmapped | SeGte::Zero => Ok(Grain::Zero),
                    SeGte::Allocated(i) => i
                        .checked_mul(self.grain_sectors)
                        .and_then(|s| s.checked_add(grains_offset))
                        .and_then(|s| s.checked_mul(512))
                        .map(Grain::Data)
                        .ok_or_else(|| {
                            Error::corrupt(&self.file, 0, format!("grain index {i} overflows"))
                        }),
                }
            }
        }
    }
}

pub(crate) fn read_exact(file: &str, src: &dyn ReadAt, offset: u64, buf: &mut [u8]) -> Result<()> {
    src.read_at(offset, buf).map_err(|source| Error::Read {
        file: file.to_string(),
        offset,
        len: buf.len() as u64,
        source,
    })
}
