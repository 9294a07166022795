//! The constant and volatile headers of an SEsparse extent (ESXi 6.5+ snapshot deltas).
//! The format is undocumented; qemu's strict checks are the reference: anything it would not
//! accept, neither do we.

use vmsnapfs_io::le;

pub const CONST_MAGIC: u64 = 0x0000_0000_cafe_babe;
pub const VOLATILE_MAGIC: u64 = 0x0000_0000_cafe_cafe;
pub const VERSION: u64 = 0x0000_0002_0000_0001;
pub const SIZE: usize = 512;
pub const GRAIN_SECTORS: u64 = 8;
pub const GT_SECTORS: u64 = 64;
pub const GTES_PER_GT: u64 = GT_SECTORS * 512 / 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeSparseConstHeader {
    pub version: u64,
    /// Sectors.
    pub capacity: u64,
    pub grain_size: u64,
    pub grain_table_size: u64,
    pub flags: u64,
    pub volatile_header_offset: u64,
    pub volatile_header_size: u64,
    pub journal_header_offset: u64,
    pub journal_header_size: u64,
    pub journal_offset: u64,
    pub journal_size: u64,
    pub grain_dir_offset: u64,
    pub grain_dir_size: u64,
    pub grain_tables_offset: u64,
    pub grain_tables_size: u64,
    pub free_bitmap_offset: u64,
    pub free_bitmap_size: u64,
    pub backmap_offset: u64,
    pub backmap_size: u64,
    pub grains_offset: u64,
    pub grains_size: u64,
}

impl SeSparseConstHeader {
    pub fn parse(b: &[u8; SIZE]) -> Result<Self, String> {
        let f = |i: usize| field(b, i * 8);
        let magic = f(0)?;
        if magic != CONST_MAGIC {
            return Err(format!("bad SEsparse constant header magic {magic:#x}"));
        }
        let h = Self {
            version: f(1)?,
            capacity: f(2)?,
            grain_size: f(3)?,
            grain_table_size: f(4)?,
            flags: f(5)?,
            volatile_header_offset: f(10)?,
            volatile_header_size: f(11)?,
            journal_header_offset: f(12)?,
            journal_header_size: f(13)?,
            journal_offset: f(14)?,
            journal_size: f(15)?,
            grain_dir_offset: f(16)?,
            grain_dir_size: f(17)?,
            grain_tables_offset: f(18)?,
            grain_tables_size: f(19)?,
            free_bitmap_offset: f(20)?,
            free_bitmap_size: f(21)?,
            backmap_offset: f(22)?,
            backmap_size: f(23)?,
            grains_offset: f(24)?,
            grains_size: f(25)?,
        };
        if h.version != VERSION {
            return Err(format!("unsupported SEsparse version {:#018x}", h.version));
        }
        if h.grain_size != GRAIN_SECTORS {
            return Err(format!("unsupported SEsparse grain size {}", h.grain_size));
        }
        if h.grain_table_size != GT_SECTORS {
            return Err(format!(
                "unsupported SEsparse grain table size {}",
                h.grain_table_size
            ));
        }
        if h.flags != 0 {
            return Err(format!("unsupported SEsparse flags {:#x}", h.flags));
        }
        for i in 6..10 {
            if f(i)? != 0 {
                return Err("SEsparse reserved fields are not zero".into());
            }
        }
        Ok(h)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeSparseVolatileHeader {
    pub free_gt_number: u64,
    pub next_txn_seq_number: u64,
    pub replay_journal: u64,
}

impl SeSparseVolatileHeader {
    pub fn parse(b: &[u8; SIZE]) -> Result<Self, String> {
        let magic = field(b, 0)?;
        if magic != VOLATILE_MAGIC {
            return Err(format!("bad SEsparse volatile header magic {magic:#x}"));
        }
        Ok(Self {
            free_gt_number: field(b, 8)?,
            next_txn_seq_number: field(b, 16)?,
            replay_journal: field(b, 24)?,
        })
    }
}

/// A header field, its failure in the reason the caller turns into a `Corrupt` error
/// at the header's offset.
fn field(b: &[u8], offset: usize) -> Result<u64, String> {
    le::u64_at(b, offset).map_err(|e| format!("SEsparse header: {e}"))
}

/// A grain directory entry: 0, or type nibble 1 with the grain table's index in the low
/// 32 bits (qemu insists the rest is zero: 64 TB / 16 MiB tables fit in 32 bits).
pub fn gd_entry_table_index(e: u64) -> Result<Option<u64>, String> {
    if e == 0 {
        Ok(None)
    } else if e & 0xffff_ffff_0000_0000 == 0x1000_0000_0000_0000 {
        Ok(Some(e & 0xffff_ffff))
    } else {
        Err(format!("bad SEsparse grain directory entry {e:#018x}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeGte {
    Unallocated,
    Unmapped,
    Zero,
    /// Index of the grain in the grains area.
    Allocated(u64),
}

/// A grain table entry: the top nibble is the type; an allocated grain's index is stored
/// with its low 12 bits in bits 48..60 and the rest in bits 0..48.
pub fn decode_gte(e: u64) -> Result<SeGte, String> {
    match e >> 60 {
        0 if e == 0 => Ok(SeGte::Unallocated),
        1 => Ok(SeGte::Unmapped),
        2 => Ok(SeGte::Zero),
        3 => Ok(SeGte::Allocated(
            ((e & 0x0fff_0000_0000_0000) >> 48) | ((e & 0x0000_ffff_ffff_ffff) << 12),
        )),
        _ => Err(format!("bad SEsparse grain table entry {e:#018x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gte_index_split() {
        let idx: u64 = 0x12345;
        let e = 0x3000_0000_0000_0000 | ((idx & 0xfff) << 48) | (idx >> 12);
        assert_eq!(decode_gte(e), Ok(SeGte::Allocated(idx)));
        assert_eq!(decode_gte(0), Ok(SeGte::Unallocated));
        assert!(decode_gte(5).is_err());
        assert_eq!(decode_gte(0x2000_0000_0000_0000), Ok(SeGte::Zero));
        assert_eq!(gd_entry_table_index(0x1000_0000_0000_0007), Ok(Some(7)));
        assert!(gd_entry_table_index(0x1000_0001_0000_0007).is_err());
    }
}
