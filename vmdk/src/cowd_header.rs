//! The header of a "COWD" redo log (ESX 2/3 `vmfsSparse` snapshot extents).

use vmsnapfs_io::le::u32_at;

pub const MAGIC: &[u8; 4] = b"COWD";
/// The part of the header the reader needs (the full header is 2048 bytes).
pub const SIZE: usize = 44;
/// COWD grain tables always hold 4096 entries.
pub const GTES_PER_GT: u32 = 4096;
pub const MAX_GRAIN_SECTORS: u32 = 65536;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CowdHeader {
    pub version: u32,
    pub flags: u32,
    /// Sectors.
    pub capacity: u32,
    /// Sectors.
    pub grain_size: u32,
    /// Sector of the grain directory.
    pub gd_offset: u32,
    pub num_gd_entries: u32,
    pub free_sector: u32,
}

impl CowdHeader {
    pub fn parse(b: &[u8; SIZE]) -> Result<Self, String> {
        if &b[0..4] != MAGIC {
            return Err("no COWD magic".into());
        }
        let f = |offset| u32_at(b, offset).map_err(|e| format!("COWD header: {e}"));
        let h = Self {
            version: f(4)?,
            flags: f(8)?,
            capacity: f(12)?,
            grain_size: f(16)?,
            gd_offset: f(20)?,
            num_gd_entries: f(24)?,
            free_sector: f(28)?,
        };
        if h.grain_size == 0 || h.grain_size > MAX_GRAIN_SECTORS {
            return Err(format!("grain size {} sectors out of range", h.grain_size));
        }
        Ok(h)
    }
}
